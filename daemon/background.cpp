#include "daemon/background.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <poll.h>

#include <cstdint>
#include <system_error>

namespace rcpg::daemon {

bool Background::run(std::function<void()> work, std::function<void()> then)
{
    if (stopped_) {
        return false;
    }
    if (!worker_.joinable()) {
        done_fd_ = ipc::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!done_fd_ || loop_.add(done_fd_.get(), POLLIN, [this](uint32_t) { on_done(); }) != 0) {
            done_fd_ = {};
            return false;
        }
        try {
            worker_ = std::thread([this] { worker_main(); });
        } catch (const std::system_error&) {
            loop_.remove(done_fd_.get());
            done_fd_ = {};
            return false;
        }
    }
    {
        std::lock_guard lock(mutex_);
        queued_.push_back({std::move(work), std::move(then)});
    }
    wake_.notify_one();
    return true;
}

void Background::worker_main()
{
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return stopping_ || !queued_.empty(); });
        if (stopping_) {
            return;
        }
        Task task = std::move(queued_.front());
        queued_.pop_front();
        lock.unlock();
        task.work();
        task.work = nullptr;
        lock.lock();
        done_.push_back(std::move(task));
        const uint64_t one = 1;
        // A full counter (never, in practice) still leaves the fd readable.
        (void)!::write(done_fd_.get(), &one, sizeof(one));
    }
}

void Background::on_done()
{
    uint64_t count = 0;
    (void)!::read(done_fd_.get(), &count, sizeof(count));
    std::deque<Task> done;
    {
        std::lock_guard lock(mutex_);
        done.swap(done_);
    }
    for (Task& task : done) {
        task.then();
    }
}

void Background::stop()
{
    stopped_ = true;
    if (!worker_.joinable()) {
        return;
    }
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    worker_.join();
    loop_.remove(done_fd_.get());
    done_fd_ = {};
    std::deque<Task> dropped_queued;
    std::deque<Task> dropped_done;
    {
        std::lock_guard lock(mutex_);
        dropped_queued.swap(queued_);
        dropped_done.swap(done_);
    }
}

}  // namespace rcpg::daemon
