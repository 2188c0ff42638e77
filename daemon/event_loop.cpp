#include "daemon/event_loop.hpp"

#include <sys/epoll.h>

#include <array>
#include <cerrno>

namespace rcpg::daemon {
namespace {

// libqb's loop owner: one process-wide loop, since libqb's hooks carry no context.
EventLoop* g_qb_loop = nullptr;

uint64_t pack(int fd, uint64_t generation) { return (generation << 32) | static_cast<uint32_t>(fd); }

}  // namespace

EventLoop::EventLoop() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {}

int EventLoop::add(int fd, uint32_t events, Handler handler)
{
    const uint64_t generation = next_generation_++;
    epoll_event event{};
    event.events = events;
    event.data.u64 = pack(fd, generation);
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
        return -errno;
    }
    registrations_[fd] = Registration{generation, std::move(handler)};
    return 0;
}

int EventLoop::modify(int fd, uint32_t events)
{
    auto found = registrations_.find(fd);
    if (found == registrations_.end()) {
        return -EBADF;
    }
    epoll_event event{};
    event.events = events;
    event.data.u64 = pack(fd, found->second.generation);
    return ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &event) == 0 ? 0 : -errno;
}

int EventLoop::remove(int fd)
{
    if (registrations_.erase(fd) == 0) {
        return -EBADF;
    }
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    return 0;
}

void EventLoop::post(std::function<void()> job) { jobs_.push_back(std::move(job)); }

int EventLoop::run_once(int timeout_ms)
{
    int ran = 0;
    // Jobs posted by handlers run in this same step, but a job that posts another job
    // leaves it for the next step, so a step always ends.
    size_t pending_jobs = jobs_.size();
    while (pending_jobs-- > 0 && !jobs_.empty()) {
        auto job = std::move(jobs_.front());
        jobs_.pop_front();
        job();
        ++ran;
    }
    if (!jobs_.empty()) {
        timeout_ms = 0;
    }
    std::array<epoll_event, 64> events;
    const int count = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout_ms);
    for (int i = 0; i < count; ++i) {
        const int fd = static_cast<int>(static_cast<uint32_t>(events[i].data.u64));
        const uint64_t generation = events[i].data.u64 >> 32;
        auto found = registrations_.find(fd);
        // A handler earlier in this batch may have removed or replaced this registration.
        if (found == registrations_.end() || (found->second.generation & 0xffffffffu) != generation) {
            continue;
        }
        Handler handler = found->second.handler;  // may remove itself while running
        handler(events[i].events);
        ++ran;
    }
    return ran;
}

qb_ipcs_poll_handlers EventLoop::qb_handlers()
{
    g_qb_loop = this;
    qb_ipcs_poll_handlers handlers{};
    handlers.job_add = [](enum qb_loop_priority, void* data, qb_loop_job_dispatch_fn fn) -> int32_t {
        g_qb_loop->post([fn, data] { fn(data); });
        return 0;
    };
    handlers.dispatch_add = [](enum qb_loop_priority, int32_t fd, int32_t events, void* data,
                               qb_ipcs_dispatch_fn_t fn) -> int32_t {
        return g_qb_loop->add(fd, static_cast<uint32_t>(events),
                              [fd, data, fn](uint32_t revents) { fn(fd, static_cast<int32_t>(revents), data); });
    };
    handlers.dispatch_mod = [](enum qb_loop_priority, int32_t fd, int32_t events, void*,
                               qb_ipcs_dispatch_fn_t) -> int32_t {
        return g_qb_loop->modify(fd, static_cast<uint32_t>(events));
    };
    handlers.dispatch_del = [](int32_t fd) -> int32_t { return g_qb_loop->remove(fd); };
    return handlers;
}

}  // namespace rcpg::daemon
