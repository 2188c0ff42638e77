#include "libcpg/ipc/fd_passing.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <pwd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace rcpg::ipc {
namespace {

// The client gives the daemon this long to hand over its descriptors before it reports
// the daemon dead. The daemon serves hand-outs one at a time, so a crowd of clients
// starting at once on a busy machine waits its turn; its other requests wait without
// limit, as corosync's (CS_IPC_TIMEOUT_MS).
constexpr int kReceiveTimeoutMs = 60'000;

socklen_t abstract_address(const std::string& name, sockaddr_un& address)
{
    std::memset(&address, 0, sizeof(address));
    address.sun_family = AF_UNIX;
    const size_t length = std::min(name.size(), sizeof(address.sun_path) - 1);
    std::memcpy(address.sun_path + 1, name.data(), length);
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + length);
}

}  // namespace

std::string fd_socket_name(const std::string& ipc_name) { return "rcpg-shm." + ipc_name; }

bool trusted_server_uid(uid_t uid)
{
    if (uid == 0 || uid == ::geteuid()) {
        return true;
    }
    const char* daemon_user = ::secure_getenv("RCPG_DAEMON_USER");
    if (daemon_user == nullptr || *daemon_user == '\0') {
        return false;
    }
    char* end = nullptr;
    const unsigned long number = std::strtoul(daemon_user, &end, 10);
    if (*end == '\0') {
        return number == uid;
    }
    passwd entry{};
    passwd* found = nullptr;
    std::vector<char> buffer(16384);
    return ::getpwnam_r(daemon_user, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr &&
           found->pw_uid == uid;
}

std::string ipc_service_name()
{
    const char* name = std::getenv("RCPG_IPC");
    return (name != nullptr && *name != '\0') ? std::string(name) : std::string("rcpg");
}

int receive_client_fds(const std::string& ipc_name, const Token& token,
                       std::array<UniqueFd, fd_count>& fds)
{
    UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!sock) {
        return -errno;
    }
    sockaddr_un address;
    const socklen_t address_length = abstract_address(fd_socket_name(ipc_name), address);
    if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&address), address_length) != 0) {
        return -errno;
    }
    // The token goes only to rcpgd: whoever else holds the name gets nothing, and gives
    // nothing that is mapped.
    PeerCredentials server{};
    if (peer_credentials(sock.get(), server) != 0 || !trusted_server_uid(server.uid)) {
        return -EPERM;
    }
    if (::send(sock.get(), token.data(), token.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(token.size())) {
        return -EPIPE;
    }
    pollfd readable{sock.get(), POLLIN, 0};
    int ready;
    do {
        ready = ::poll(&readable, 1, kReceiveTimeoutMs);
    } while (ready < 0 && errno == EINTR);
    if (ready <= 0) {
        return ready == 0 ? -ETIMEDOUT : -errno;
    }
    uint8_t status = 0;
    iovec payload{&status, sizeof(status)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * fd_count)];
    msghdr message{};
    message.msg_iov = &payload;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    const ssize_t received = ::recvmsg(sock.get(), &message, MSG_CMSG_CLOEXEC);
    if (received != 1) {
        return received < 0 ? -errno : -ECONNRESET;
    }
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    if (status != 0 || header == nullptr || header->cmsg_level != SOL_SOCKET ||
        header->cmsg_type != SCM_RIGHTS || header->cmsg_len != CMSG_LEN(sizeof(int) * fd_count)) {
        if (header != nullptr && header->cmsg_type == SCM_RIGHTS) {
            const size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            int* received_fds = reinterpret_cast<int*>(CMSG_DATA(header));
            for (size_t i = 0; i < count; ++i) {
                ::close(received_fds[i]);
            }
        }
        return -EACCES;
    }
    int raw[fd_count];
    std::memcpy(raw, CMSG_DATA(header), sizeof(raw));
    for (size_t i = 0; i < fd_count; ++i) {
        fds[i].reset(raw[i]);
    }
    return 0;
}

UniqueFd listen_fd_socket(const std::string& ipc_name)
{
    UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!sock) {
        return {};
    }
    sockaddr_un address;
    const socklen_t address_length = abstract_address(fd_socket_name(ipc_name), address);
    if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&address), address_length) != 0 ||
        ::listen(sock.get(), 64) != 0) {
        return {};
    }
    return sock;
}

int send_fds(int socket, std::span<const int> fds)
{
    uint8_t status = 0;
    iovec payload{&status, sizeof(status)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * fd_count)];
    msghdr message{};
    message.msg_iov = &payload;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(header), fds.data(), sizeof(int) * fds.size());
    if (::sendmsg(socket, &message, MSG_NOSIGNAL | MSG_DONTWAIT) != 1) {
        return -errno;
    }
    return 0;
}

int peer_credentials(int socket, PeerCredentials& credentials)
{
    ucred peer{};
    socklen_t length = sizeof(peer);
    if (::getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0) {
        return -errno;
    }
    credentials = {peer.pid, peer.uid, peer.gid};
    return 0;
}

}  // namespace rcpg::ipc
