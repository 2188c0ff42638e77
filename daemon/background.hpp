// Work that must not hold up the daemon's thread (pinning a client's memory for the
// device takes hundreds of milliseconds under emulation, during which a node would
// sequence and forward nothing). One worker thread runs such work in the order it was
// given; what follows it runs back on the loop's thread, woken through an eventfd.
#pragma once

#include "daemon/event_loop.hpp"
#include "libcpg/ipc/shm.hpp"

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace rcpg::daemon {

class Background {
public:
    explicit Background(EventLoop& loop) : loop_(loop) {}
    Background(const Background&) = delete;
    Background& operator=(const Background&) = delete;
    ~Background() { stop(); }

    // Runs `work` on the worker thread, then `then` on the loop's thread. Returns false
    // and runs neither, dropping both at once, when no worker can be started or after
    // stop().
    bool run(std::function<void()> work, std::function<void()> then);

    // Waits for the work under way, and drops what has not run or not been followed up:
    // their closures are destroyed here, on the caller's thread. For good: later work is
    // refused, so nothing runs once the daemon takes down what the work uses.
    void stop();

    // Whether stop() has begun (any thread): lets a test order work after it.
    bool stopping()
    {
        std::lock_guard lock(mutex_);
        return stopping_;
    }

private:
    struct Task {
        std::function<void()> work;
        std::function<void()> then;
    };
    void worker_main();
    void on_done();

    EventLoop& loop_;
    ipc::UniqueFd done_fd_;
    std::thread worker_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Task> queued_;  // under mutex_
    std::deque<Task> done_;    // under mutex_
    bool stopping_ = false;    // under mutex_
    bool stopped_ = false;     // loop's thread only
};

}  // namespace rcpg::daemon
