#include "daemon/ring_id_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace rcpg::daemon {

using base::Errc;
using base::Layer;
namespace {

// More than any ring id a file of ours holds ("18446744073709551615\n").
constexpr size_t kMaxFileBytes = 64;

}  // namespace

RingIdStore::RingIdStore(std::string state_dir, uint32_t nodeid)
    : dir_(std::move(state_dir)), path_(fmt::format("{}/ringid_{}", dir_, nodeid))
{
}

base::Result<uint64_t> RingIdStore::load() const
{
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) {
            return 0;
        }
        return base::Status{Errc::io_error, Layer::system, fmt::format("{}:1: cannot read: {}", path_, std::strerror(errno))};
    }
    char text[kMaxFileBytes + 1];
    const ssize_t got = ::read(fd, text, sizeof text);
    ::close(fd);
    if (got < 0 || static_cast<size_t>(got) > kMaxFileBytes) {
        return base::Status{got < 0 ? Errc::io_error : Errc::malformed, Layer::system,
                            fmt::format("{}:1: {}", path_, got < 0 ? std::strerror(errno) : "longer than a ring id")};
    }
    size_t length = static_cast<size_t>(got);
    if (length > 0 && text[length - 1] == '\n') {
        --length;
    }
    uint64_t value = 0;
    const auto [end, status] = std::from_chars(text, text + length, value);
    if (length == 0 || status != std::errc() || end != text + length) {
        return base::Status{Errc::malformed, Layer::system, fmt::format("{}:1: not a ring id (one decimal number)", path_)};
    }
    return value;
}

base::Status RingIdStore::save(uint64_t ring_seq) const
{
    if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
        return base::errno_status(Errc::io_error, Layer::system, "cannot create " + dir_, errno);
    }
    const std::string staged = path_ + ".new";
    const int fd = ::open(staged.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return base::errno_status(Errc::io_error, Layer::system, "cannot write " + staged, errno);
    }
    const std::string text = fmt::format("{}\n", ring_seq);
    const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    const int write_errno = errno;
    ::close(fd);
    if (!written || ::rename(staged.c_str(), path_.c_str()) != 0) {
        const int error_number = written ? errno : write_errno;
        ::unlink(staged.c_str());
        return base::errno_status(Errc::io_error, Layer::system, "cannot write " + path_, error_number);
    }
    return {};
}

}  // namespace rcpg::daemon
