// Shared helpers of the conformance suite: a recording CPG client, bounded waits,
// forked child processes and pipes to synchronise with them.
//
// Rules the helpers follow so that tests stay deterministic:
//  - every wait is bounded (a hang becomes a failure, not a stuck test run);
//  - children are forked before the test creates any thread, use only handles they
//    open themselves, report through pipes or their exit code and leave with _exit();
//  - events are collected with cpg_dispatch(CS_DISPATCH_ALL) after poll() on the fd,
//    so a broken readiness signal slows a test down but does not hide events.
#pragma once

#include "tests/support/daemon_process.hpp"
#ifdef RCPG_EMBEDDED_DAEMON
#include "tests/support/embedded_daemon.hpp"
#endif

#include <corosync/cpg.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace rcpg::conformance {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// How long a test waits for something that must happen: a bound for a hang, far above
// what a slow, busy machine under a sanitizer takes (a pass never waits it out).
inline constexpr auto kEventTimeout = 60s;
inline constexpr int kEventTimeoutMs = 60'000;
// How long a helper process stays (joined, holding a handle) until the test releases it:
// past everything the test does meanwhile; the test kills it at the end anyway.
inline constexpr auto kHoldTimeout = 300s;
// How long a test watches for something that must not happen (or a poll timeout).
inline constexpr int kQuietMs = 300;

// A group name of `text` bytes (binary-safe: the length is the string's size).
inline cpg_name group_named(std::string_view text)
{
    cpg_name name{};
    name.length = static_cast<uint32_t>(text.size());
    std::memcpy(name.value, text.data(), std::min(text.size(), sizeof(name.value)));
    return name;
}

inline std::string name_text(const cpg_name& name)
{
    return std::string(name.value, std::min<size_t>(name.length, CPG_MAX_NAME_LENGTH));
}

inline uint32_t self_pid() { return static_cast<uint32_t>(::getpid()); }

// poll() for readability of `fd`; true when readable within `timeout_ms`.
inline bool fd_readable(int fd, int timeout_ms)
{
    pollfd entry{fd, POLLIN, 0};
    const int ready = ::poll(&entry, 1, timeout_ms);
    return ready == 1 && (entry.revents & POLLIN) != 0;
}

// ---------------------------------------------------------------------------------------
// Recording callbacks

struct Event {
    enum Kind { message, confchg, totem } kind = message;
    std::string group;
    // message
    uint32_t nodeid = 0;
    uint32_t pid = 0;
    std::string body;
    // confchg
    std::vector<cpg_address> members, left, joined;
    // totem
    cpg_ring_id ring{};
    std::vector<uint32_t> totem_members;
};

struct Recorder {
    std::vector<Event> events;
    // Called after an event was recorded (on the dispatching thread). The deliver hook
    // also sees the writable message buffer.
    std::function<void(cpg_handle_t, const Event&)> hook;
    std::function<void(cpg_handle_t, void* msg, size_t len)> deliver_hook;

    std::vector<const Event*> of(Event::Kind kind) const
    {
        std::vector<const Event*> out;
        for (const Event& event : events) {
            if (event.kind == kind) {
                out.push_back(&event);
            }
        }
        return out;
    }
    size_t count(Event::Kind kind) const { return of(kind).size(); }
    std::vector<std::string> bodies() const
    {
        std::vector<std::string> out;
        for (const Event* event : of(Event::message)) {
            out.push_back(event->body);
        }
        return out;
    }
    bool has_body(std::string_view body) const
    {
        for (const Event* event : of(Event::message)) {
            if (event->body == body) {
                return true;
            }
        }
        return false;
    }
};

inline Recorder* recorder_of(cpg_handle_t handle)
{
    void* context = nullptr;
    cpg_context_get(handle, &context);
    return static_cast<Recorder*>(context);
}

inline void record_deliver(cpg_handle_t handle, const cpg_name* group, uint32_t nodeid, uint32_t pid, void* msg,
                           size_t len)
{
    Recorder* recorder = recorder_of(handle);
    if (recorder == nullptr) {
        return;
    }
    Event event;
    event.kind = Event::message;
    event.group = name_text(*group);
    event.nodeid = nodeid;
    event.pid = pid;
    event.body.assign(static_cast<const char*>(msg), len);
    recorder->events.push_back(std::move(event));
    if (recorder->deliver_hook) {
        recorder->deliver_hook(handle, msg, len);
    }
    if (recorder->hook) {
        recorder->hook(handle, recorder->events.back());
    }
}

inline void record_confchg(cpg_handle_t handle, const cpg_name* group, const cpg_address* members, size_t n_members,
                           const cpg_address* left, size_t n_left, const cpg_address* joined, size_t n_joined)
{
    Recorder* recorder = recorder_of(handle);
    if (recorder == nullptr) {
        return;
    }
    Event event;
    event.kind = Event::confchg;
    event.group = name_text(*group);
    event.members.assign(members, members + n_members);
    event.left.assign(left, left + n_left);
    event.joined.assign(joined, joined + n_joined);
    recorder->events.push_back(std::move(event));
    if (recorder->hook) {
        recorder->hook(handle, recorder->events.back());
    }
}

inline void record_totem(cpg_handle_t handle, cpg_ring_id ring, uint32_t n_members, const uint32_t* members)
{
    Recorder* recorder = recorder_of(handle);
    if (recorder == nullptr) {
        return;
    }
    Event event;
    event.kind = Event::totem;
    event.ring = ring;
    event.totem_members.assign(members, members + n_members);
    recorder->events.push_back(std::move(event));
    if (recorder->hook) {
        recorder->hook(handle, recorder->events.back());
    }
}

// ---------------------------------------------------------------------------------------
// A handle whose callbacks record into `rec` (the handle's context points to it).

class Client {
public:
    struct Options {
        bool totem = false;        // register a totem confchg callback
        unsigned int flags = 0;    // cpg_model_v1_data_t.flags
        // Retry CS_ERR_TRY_AGAIN from initialization, as Pacemaker does. For many
        // processes connecting at once: libqb's non-blocking connect() then finds the
        // daemon's listen backlog full and reports EAGAIN.
        bool retry_init = false;
    };

    Client() : Client(Options{}) {}
    explicit Client(Options options)
    {
        cpg_model_v1_data_t model{};
        model.model = CPG_MODEL_V1;
        model.cpg_deliver_fn = record_deliver;
        model.cpg_confchg_fn = record_confchg;
        model.cpg_totem_confchg_fn = options.totem ? record_totem : nullptr;
        model.flags = options.flags;
        const auto deadline = Clock::now() + kEventTimeout;
        while (true) {
            init_result =
                cpg_model_initialize(&handle, CPG_MODEL_V1, reinterpret_cast<cpg_model_data_t*>(&model), &rec);
            if (init_result != CS_ERR_TRY_AGAIN || !options.retry_init || Clock::now() > deadline) {
                break;
            }
            ++init_retries;
            std::this_thread::sleep_for(1ms);
        }
    }
    ~Client()
    {
        if (init_result == CS_OK && !finalized) {
            cpg_finalize(handle);
        }
    }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    bool ok() const { return init_result == CS_OK; }

    cs_error_t finalize()
    {
        finalized = true;
        return cpg_finalize(handle);
    }

    cs_error_t join(std::string_view group)
    {
        const cpg_name name = group_named(group);
        return cpg_join(handle, &name);
    }
    cs_error_t leave(std::string_view group)
    {
        const cpg_name name = group_named(group);
        return cpg_leave(handle, &name);
    }
    // Sends `body`, retrying while flow control says CS_ERR_TRY_AGAIN (and dispatching
    // meanwhile, so our own backlog can drain).
    cs_error_t send(std::string_view body, cpg_guarantee_t guarantee = CPG_TYPE_AGREED)
    {
        iovec part{const_cast<char*>(body.data()), body.size()};
        const auto deadline = Clock::now() + kEventTimeout;
        while (true) {
            const cs_error_t result = cpg_mcast_joined(handle, guarantee, &part, 1);
            if (result != CS_ERR_TRY_AGAIN || Clock::now() > deadline) {
                return result;
            }
            cpg_dispatch(handle, CS_DISPATCH_ALL);
            std::this_thread::sleep_for(100us);
        }
    }

    int fd() const
    {
        int value = -1;
        cpg_fd_get(handle, &value);
        return value;
    }

    // Dispatches (poll + CS_DISPATCH_ALL) until `done()` holds; false on timeout or on
    // a dispatch error (kept in last_dispatch_error).
    bool pump_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = kEventTimeout)
    {
        const auto deadline = Clock::now() + timeout;
        const int descriptor = fd();
        while (true) {
            if (done()) {
                return true;
            }
            if (Clock::now() > deadline) {
                return false;
            }
            fd_readable(descriptor, 20);
            const cs_error_t result = cpg_dispatch(handle, CS_DISPATCH_ALL);
            if (result != CS_OK) {
                last_dispatch_error = result;
                return done();
            }
        }
    }
    bool pump_until_count(Event::Kind kind, size_t count, std::chrono::milliseconds timeout = kEventTimeout)
    {
        return pump_until([&] { return rec.count(kind) >= count; }, timeout);
    }
    bool pump_until_body(std::string_view body, std::chrono::milliseconds timeout = kEventTimeout)
    {
        return pump_until([&] { return rec.has_body(body); }, timeout);
    }
    // Dispatches what arrives within `quiet_ms` (for checks that something does NOT come).
    void pump_for(int quiet_ms)
    {
        const auto deadline = Clock::now() + std::chrono::milliseconds(quiet_ms);
        const int descriptor = fd();
        while (Clock::now() < deadline) {
            fd_readable(descriptor, 20);
            if (cpg_dispatch(handle, CS_DISPATCH_ALL) != CS_OK) {
                return;
            }
        }
    }

    cpg_handle_t handle = 0;
    cs_error_t init_result = CS_ERR_LIBRARY;
    bool finalized = false;
    cs_error_t last_dispatch_error = CS_OK;
    int init_retries = 0;
    Recorder rec;
};

// The current members of `group` as seen through `handle` (capacity 384).
inline std::vector<cpg_address> members_of(cpg_handle_t handle, std::string_view group, cs_error_t* result = nullptr)
{
    cpg_name name = group_named(group);
    std::vector<cpg_address> list(384);
    int count = static_cast<int>(list.size());
    const cs_error_t error = cpg_membership_get(handle, &name, list.data(), &count);
    if (result != nullptr) {
        *result = error;
    }
    list.resize(error == CS_OK ? static_cast<size_t>(std::max(count, 0)) : 0);
    return list;
}

inline bool contains(const std::vector<cpg_address>& list, uint32_t nodeid, uint32_t pid)
{
    return std::any_of(list.begin(), list.end(),
                       [&](const cpg_address& a) { return a.nodeid == nodeid && a.pid == pid; });
}

inline bool sorted_by_node_pid(const std::vector<cpg_address>& list)
{
    return std::is_sorted(list.begin(), list.end(), [](const cpg_address& a, const cpg_address& b) {
        return a.nodeid != b.nodeid ? a.nodeid < b.nodeid : a.pid < b.pid;
    });
}

// ---------------------------------------------------------------------------------------
// Bounded waits for calls that might hang.

// Runs `fn` on a detached thread; wait() gives its result, or nullopt if it has not
// finished in time (the thread is then left behind: the test has failed anyway).
template <typename R>
class Background {
public:
    explicit Background(std::function<R()> fn)
    {
        auto promise = std::make_shared<std::promise<R>>();
        future_ = promise->get_future();
        std::thread([promise, fn = std::move(fn)] { promise->set_value(fn()); }).detach();
    }
    std::optional<R> wait(std::chrono::milliseconds timeout)
    {
        if (future_.wait_for(timeout) != std::future_status::ready) {
            return std::nullopt;
        }
        return future_.get();
    }
    bool finished_within(std::chrono::milliseconds timeout)
    {
        return future_.wait_for(timeout) == std::future_status::ready;
    }

private:
    std::future<R> future_;
};

// ---------------------------------------------------------------------------------------
// Processes

class Pipe {
public:
    Pipe()
    {
        if (::pipe(fds_) != 0) {
            fds_[0] = fds_[1] = -1;
        }
    }
    ~Pipe()
    {
        close_read();
        close_write();
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;

    void close_read()
    {
        if (fds_[0] >= 0) {
            ::close(fds_[0]);
            fds_[0] = -1;
        }
    }
    void close_write()
    {
        if (fds_[1] >= 0) {
            ::close(fds_[1]);
            fds_[1] = -1;
        }
    }
    bool write_bytes(const void* data, size_t bytes)
    {
        return ::write(fds_[1], data, bytes) == static_cast<ssize_t>(bytes);
    }
    bool write_byte(char c) { return write_bytes(&c, 1); }
    // Reads exactly `bytes` within `timeout`; false on timeout or EOF.
    bool read_bytes(void* data, size_t bytes, std::chrono::milliseconds timeout = kEventTimeout)
    {
        const auto deadline = Clock::now() + timeout;
        auto* out = static_cast<char*>(data);
        size_t got = 0;
        while (got < bytes) {
            if (!wait_input(deadline)) {
                return false;
            }
            const ssize_t n = ::read(fds_[0], out + got, bytes - got);
            if (n <= 0) {
                return false;
            }
            got += static_cast<size_t>(n);
        }
        return true;
    }
    std::optional<char> read_byte(std::chrono::milliseconds timeout = kEventTimeout)
    {
        char c;
        if (!read_bytes(&c, 1, timeout)) {
            return std::nullopt;
        }
        return c;
    }
    // Blocks (bounded) until the writer closes its end; used to hold children.
    bool wait_eof(std::chrono::milliseconds timeout)
    {
        const auto deadline = Clock::now() + timeout;
        char buffer[64];
        while (wait_input(deadline)) {
            if (::read(fds_[0], buffer, sizeof(buffer)) <= 0) {
                return true;
            }
        }
        return false;
    }

private:
    // True when the read end has data or a hang-up before `deadline`.
    bool wait_input(Clock::time_point deadline)
    {
        while (true) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() < 0) {
                return false;
            }
            pollfd entry{fds_[0], POLLIN, 0};
            const int ready = ::poll(&entry, 1, static_cast<int>(left.count()));
            if (ready > 0) {
                return true;
            }
            if (ready == 0) {
                return false;
            }
        }
    }

    int fds_[2];
};

// A forked child running `body`; its return value is the exit code. The child never
// returns into the test framework.
class ChildProcess {
public:
    explicit ChildProcess(const std::function<int()>& body)
    {
        pid_ = ::fork();
        if (pid_ == 0) {
            int code = 99;
            try {
                code = body();
            } catch (...) {
                code = 98;
            }
            ::_exit(code);
        }
    }
    ~ChildProcess()
    {
        if (pid_ > 0 && !reaped_) {
            ::kill(pid_, SIGKILL);
            int status;
            ::waitpid(pid_, &status, 0);
        }
    }
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    pid_t pid() const { return pid_; }
    bool started() const { return pid_ > 0; }

    // Exit code, 128 + signal when killed, or -1 if it did not end in time (it is then
    // killed).
    int wait(std::chrono::milliseconds timeout = kEventTimeout)
    {
        if (pid_ <= 0) {
            return -1;
        }
        if (reaped_) {
            return status_code_;
        }
        const auto deadline = Clock::now() + timeout;
        int status = 0;
        while (true) {
            const pid_t got = ::waitpid(pid_, &status, WNOHANG);
            if (got == pid_) {
                reaped_ = true;
                status_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                return status_code_;
            }
            if (Clock::now() > deadline) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                reaped_ = true;
                status_code_ = -1;
                return -1;
            }
            std::this_thread::sleep_for(2ms);
        }
    }
    void kill(int signal) { ::kill(pid_, signal); }

private:
    pid_t pid_ = -1;
    bool reaped_ = false;
    int status_code_ = -1;
};

// Fixture: every test gets its own daemon, so groups never leak between tests. Test
// binaries that fork no clients run it inside the test process (RCPG_EMBEDDED_DAEMON,
// set in CMakeLists.txt); the others start rcpgd.
class Conformance : public ::testing::Test {
protected:
#ifdef RCPG_EMBEDDED_DAEMON
    rcpg::testing::EmbeddedDaemon daemon_;
#else
    rcpg::testing::DaemonProcess daemon_;
#endif
};

}  // namespace rcpg::conformance
