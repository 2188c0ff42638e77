#include "daemon/daemon.hpp"

#include "daemon/client_session.hpp"
#include "daemon/daemon_internal.hpp"
#include "daemon/log.hpp"
#include "libcpg/ipc/bytes.hpp"
#include "delivery/ring_entry.hpp"

#include <corosync/corotypes.h>
#include <sys/eventfd.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace rcpg::daemon {

using delivery::ConfchgPayload;
using delivery::EntryHeader;
using delivery::EntryKind;
using namespace daemon_detail;

// ---------------------------------------------------------------------------------------
// Handing out shared memory

void Daemon::on_fd_socket_readable()
{
    const auto now = std::chrono::steady_clock::now();
    for (auto it = fd_requests_.begin(); it != fd_requests_.end();) {
        if (now - it->second > kFdRequestTimeout) {
            loop_.remove(it->first);
            ::close(it->first);
            it = fd_requests_.erase(it);
        } else {
            ++it;
        }
    }
    while (true) {
        const int socket = ::accept4(fd_socket_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (socket < 0) {
            return;
        }
        // Kept only for a process that initialized a session and waits for its
        // descriptors, and only so many at once: nobody else holds a connection here.
        ipc::PeerCredentials peer{};
        const bool awaited = ipc::peer_credentials(socket, peer) == 0 && allowed(peer.uid, peer.gid) &&
                             std::any_of(sessions_.begin(), sessions_.end(), [&peer](const auto& entry) {
                                 return entry.second->initialized && !entry.second->fds_delivered &&
                                        entry.second->pid == peer.pid;
                             });
        if (!awaited || fd_requests_.size() >= kMaxFdRequests) {
            ::close(socket);
            ++node_->counters().clients_refused;
            continue;
        }
        fd_requests_[socket] = now;
        loop_.add(socket, POLLIN, [this, socket](uint32_t) { on_fd_request(socket); });
    }
}

void Daemon::on_fd_request(int socket)
{
    ipc::Token token{};
    const ssize_t received = ::recv(socket, token.data(), token.size(), MSG_DONTWAIT);
    if (received < 0 && errno == EAGAIN) {
        return;
    }
    loop_.remove(socket);
    fd_requests_.erase(socket);
    ipc::UniqueFd connection(socket);
    if (received != static_cast<ssize_t>(token.size())) {
        return;
    }
    ipc::PeerCredentials peer{};
    if (ipc::peer_credentials(socket, peer) != 0) {
        return;
    }
    for (auto& [qb_connection, session] : sessions_) {
        if (!session->initialized || session->fds_delivered || session->token != token) {
            continue;
        }
        if (session->pid != peer.pid) {
            RCPG_LOG_WARN("pid {} presented the shared-memory token of pid {}: refused", peer.pid, session->pid);
            return;
        }
        ipc::UniqueFd ring_fd = ring_->read_only_fd();
        // Without backlogs (client_backlog_mib 0) an empty file stands in for it.
        ipc::UniqueFd backlog_fd = session->backlog ? session->backlog->client_fd()
                                                    : ipc::create_sealed_memfd("rcpg-no-backlog", 0);
        if (!ring_fd || !backlog_fd) {
            return;
        }
        const int fds[ipc::fd_count] = {ring_fd.get(), session->control_fd.get(), session->arena_fd.get(),
                                        session->doorbell.get(), backlog_fd.get()};
        if (ipc::send_fds(socket, fds) == 0) {
            session->fds_delivered = true;
            // The mappings stay; the daemon no longer needs the files themselves.
            session->control_fd.reset();
            session->arena_fd.reset();
        }
        return;
    }
}

}  // namespace rcpg::daemon
