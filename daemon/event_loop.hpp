// The daemon's epoll loop. It also serves as libqb's poll integration
// (qb_ipcs_poll_handlers), so IPC, the fd-passing socket, the doorbell and signals are
// all handled on one thread, and the loop can be stepped by tests.
#pragma once

#include "libcpg/ipc/shm.hpp"

#include <qb/qbipcs.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <unordered_map>

namespace rcpg::daemon {

class EventLoop {
public:
    using Handler = std::function<void(uint32_t events)>;

    EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    bool valid() const { return static_cast<bool>(epoll_); }

    // Registers `fd` for poll-style `events` (POLLIN, POLLOUT; errors always reported).
    int add(int fd, uint32_t events, Handler handler);
    int modify(int fd, uint32_t events);
    int remove(int fd);
    void post(std::function<void()> job);

    // Waits up to `timeout_ms` (-1: forever, 0: not at all) and runs what is ready.
    // Returns the number of handlers and jobs run.
    int run_once(int timeout_ms);

    // libqb's hooks, routed into this loop.
    qb_ipcs_poll_handlers qb_handlers();

private:
    struct Registration {
        uint64_t generation;
        Handler handler;
    };
    ipc::UniqueFd epoll_;
    std::unordered_map<int, Registration> registrations_;
    std::deque<std::function<void()>> jobs_;
    uint64_t next_generation_ = 1;
};

}  // namespace rcpg::daemon
