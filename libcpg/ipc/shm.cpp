#include "libcpg/ipc/shm.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace rcpg::ipc {

void UniqueFd::reset(int fd)
{
    if (fd_ >= 0) {
        ::close(fd_);
    }
    fd_ = fd;
}

void Mapping::reset()
{
    if (address_ != nullptr) {
        ::munmap(address_, bytes_);
    }
    address_ = nullptr;
    bytes_ = 0;
}

Mapping map_fd(int fd, size_t bytes, size_t offset, Access access)
{
    int protection = PROT_READ;
    int flags = MAP_SHARED;
    if (access == Access::read_write) {
        protection |= PROT_WRITE;
    } else if (access == Access::copy_on_write) {
        protection |= PROT_WRITE;
        flags = MAP_PRIVATE;
    }
    void* address = ::mmap(nullptr, bytes, protection, flags, fd, static_cast<off_t>(offset));
    if (address == MAP_FAILED) {
        return {};
    }
    return Mapping(address, bytes);
}

UniqueFd create_sealed_memfd(const char* name, size_t bytes, bool final)
{
    UniqueFd fd(::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd) {
        return {};
    }
    const int seals = F_SEAL_SHRINK | F_SEAL_GROW | (final ? F_SEAL_SEAL : 0);
    if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0 || ::fcntl(fd.get(), F_ADD_SEALS, seals) != 0) {
        return {};
    }
    return fd;
}

bool seal_writes(int fd)
{
    return ::fchmod(fd, S_IRUSR) == 0 && ::fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) == 0;
}

UniqueFd reopen_read_only(int fd)
{
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    return UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
}

}  // namespace rcpg::ipc
