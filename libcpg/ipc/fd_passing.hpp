// Handing shared-memory descriptors from rcpgd to a client. libqb IPC cannot carry file
// descriptors, so the daemon also listens on an abstract unix socket: the client
// connects, presents the one-time token it got in its init response, and the daemon
// answers with SCM_RIGHTS after checking that the peer is the same process
// (SO_PEERCRED) that made the IPC connection.
#pragma once

#include "libcpg/ipc/shm.hpp"

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <span>
#include <string>

namespace rcpg::ipc {

using Token = std::array<uint8_t, 16>;

// Descriptors a client receives, in this order.
enum FdSlot : size_t { ring_fd = 0, control_fd = 1, arena_fd = 2, doorbell_fd = 3, backlog_fd = 4, fd_count = 5 };

// The abstract socket name for the IPC service `ipc_name` (without the leading NUL).
std::string fd_socket_name(const std::string& ipc_name);

// The IPC service name clients and daemon use: $RCPG_IPC, or "rcpg".
std::string ipc_service_name();

// Client side: connects, sends the token and receives the descriptors. Returns 0 or -errno.
int receive_client_fds(const std::string& ipc_name, const Token& token,
                       std::array<UniqueFd, fd_count>& fds);

// Daemon side: listening socket (non-blocking, close-on-exec). Returns -1 and errno on failure.
UniqueFd listen_fd_socket(const std::string& ipc_name);

// Daemon side: sends `fds` on a connected socket. Returns 0 or -errno.
int send_fds(int socket, std::span<const int> fds);

// Whether a server running as `uid` may be rcpgd for this process. Anyone can bind the
// abstract socket names while rcpgd is down, so a client checks who answers before it
// takes anything from it: root; this process's own effective uid (a daemon of its own
// user is no more than it is itself); or the user $RCPG_DAEMON_USER names (a name or a
// number), for an rcpgd run as a user of its own. The variable is ignored in set-user-id
// and other secure-execution programs (secure_getenv).
bool trusted_server_uid(uid_t uid);

// Peer credentials of a connected unix socket.
struct PeerCredentials {
    pid_t pid;
    uid_t uid;
    gid_t gid;
};
int peer_credentials(int socket, PeerCredentials& credentials);

}  // namespace rcpg::ipc
