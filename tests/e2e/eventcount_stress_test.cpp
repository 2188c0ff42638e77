// The readiness contract under load, with dispatch only ever driven by poll() (no
// polling in the library: RCPG_DISPATCH_SPIN_US=0), and flow control with a stuck reader.
//  - Several processes send concurrently and dispatch one event per readiness: every
//    process must deliver every message, in one identical order, FIFO per sender. A lost
//    wake-up shows as a poll() that times out while messages are missing.
//  - Readable means pending: each time poll() says readable, CS_DISPATCH_ONE_NONBLOCKING
//    must deliver something (never CS_ERR_TRY_AGAIN), else the fd woke us for nothing.
//  - Without backlogs, a member that does not dispatch holds the ring: senders get
//    CS_ERR_TRY_AGAIN and CPG_FLOW_CONTROL_ENABLED, lose nothing, and resume once it reads.
#include "tests/support/daemon_process.hpp"

#include <corosync/cpg.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kPollTimeoutMs = 60'000;

struct Tally {
    uint64_t delivered = 0;
    uint64_t order_hash = 1469598103934665603ull;  // FNV-1a over (pid, seq) in delivery order
    bool fifo_ok = true;
    bool content_ok = true;
    std::map<uint32_t, uint64_t> next_seq;
};

Tally* tally_of(cpg_handle_t handle)
{
    void* context = nullptr;
    cpg_context_get(handle, &context);
    return static_cast<Tally*>(context);
}

void on_deliver(cpg_handle_t handle, const cpg_name*, uint32_t, uint32_t pid, void* msg, size_t len)
{
    Tally& tally = *tally_of(handle);
    uint64_t seq = 0;
    std::memcpy(&seq, msg, sizeof(seq));
    // The rest of the message repeats a byte derived from (pid, seq).
    const auto fill = static_cast<unsigned char>(seq * 31 + pid);
    const auto* bytes = static_cast<const unsigned char*>(msg);
    for (size_t i = sizeof(seq); i < len; ++i) {
        if (bytes[i] != fill) {
            tally.content_ok = false;
            break;
        }
    }
    if (tally.next_seq[pid] != seq) {
        tally.fifo_ok = false;
    }
    tally.next_seq[pid] = seq + 1;
    for (uint64_t word : {uint64_t{pid}, seq}) {
        tally.order_hash = (tally.order_hash ^ word) * 1099511628211ull;
    }
    ++tally.delivered;
}

struct Report {
    uint64_t delivered;
    uint64_t order_hash;
    uint64_t spurious_wakeups;
    uint32_t fifo_ok;
    uint32_t content_ok;
    int32_t error;  // 0, or where it failed
};

// One member: joins, says so on `joined_fd`, waits for EOF on `start_fd`, then sends
// `messages` messages and delivers everybody's, poll-driven.
Report run_member(const cpg_name& group, uint64_t messages, uint64_t expected_total, uint32_t seed, int joined_fd,
                  int start_fd)
{
    Report report{};
    Tally tally;
    cpg_callbacks_t callbacks{on_deliver, nullptr};
    cpg_handle_t handle = 0;
    if (cpg_initialize(&handle, &callbacks) != CS_OK) {
        report.error = 1;
        return report;
    }
    cpg_context_set(handle, &tally);
    if (cpg_join(handle, &group) != CS_OK) {
        report.error = 2;
        return report;
    }
    char signal = 'j';
    char go;
    if (::write(joined_fd, &signal, 1) != 1 || ::read(start_fd, &go, 1) != 0) {
        report.error = 6;
        return report;
    }
    int fd = -1;
    cpg_fd_get(handle, &fd);
    std::mt19937 random(seed);
    std::vector<unsigned char> buffer(8192);
    uint64_t sent = 0;
    const auto pid = static_cast<uint32_t>(::getpid());
    while (tally.delivered < expected_total) {
        while (sent < messages) {
            const size_t length = sizeof(uint64_t) + random() % 6000;
            std::memcpy(buffer.data(), &sent, sizeof(sent));
            std::memset(buffer.data() + sizeof(sent), static_cast<unsigned char>(sent * 31 + pid),
                        length - sizeof(sent));
            iovec iov{buffer.data(), length};
            const cs_error_t result = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
            if (result == CS_ERR_TRY_AGAIN) {
                break;
            }
            if (result != CS_OK) {
                report.error = 3;
                return report;
            }
            ++sent;
            if (random() % 8 == 0) {
                break;  // let the others in
            }
        }
        pollfd readable{fd, POLLIN, 0};
        const int ready = ::poll(&readable, 1, sent < messages ? 1 : kPollTimeoutMs);
        if (ready == 0) {
            if (sent < messages) {
                continue;
            }
            report.error = 4;  // nothing readable for long while messages are missing
            break;
        }
        const cs_error_t result = cpg_dispatch(handle, CS_DISPATCH_ONE_NONBLOCKING);
        if (result == CS_ERR_TRY_AGAIN) {
            ++report.spurious_wakeups;
            if (std::getenv("RCPG_TEST_DEBUG") != nullptr) {
                int pending_bytes = -1;
                ::ioctl(fd, FIONREAD, &pending_bytes);
                std::fprintf(stderr, "spurious: pid %d delivered %llu sent %llu fionread %d\n", ::getpid(),
                             (unsigned long long)tally.delivered, (unsigned long long)sent, pending_bytes);
            }
        } else if (result != CS_OK) {
            report.error = 5;
            break;
        }
    }
    report.delivered = tally.delivered;
    report.order_hash = tally.order_hash;
    report.fifo_ok = tally.fifo_ok;
    report.content_ok = tally.content_ok;
    cpg_finalize(handle);
    return report;
}

cpg_name group_named(const char* text)
{
    cpg_name name{};
    name.length = static_cast<uint32_t>(std::strlen(text));
    std::memcpy(name.value, text, name.length);
    return name;
}

TEST(EventcountStress, PollDrivenMembersDeliverOneOrderWithoutLostOrSpuriousWakeups)
{
    ::setenv("RCPG_DISPATCH_SPIN_US", "0", 1);
    // A small ring, so that it wraps many times and flow control engages; a member that a
    // busy machine leaves unscheduled for a while must not be cut off for it.
    // Without backlogs: a reader that does not read holds the ring.
    rcpg::testing::DaemonProcess daemon(
        {"--ring-mib", "8", "--stuck-client-timeout-ms", "0", "--client-backlog-mib", "0"});
    constexpr int kMembers = 3;
    constexpr uint64_t kMessagesEach = 20000;
    const cpg_name group = group_named("eventcount");

    // Everyone joins before anyone sends, so every member sees every message.
    int start_pipe[2];
    int joined_pipe[2];
    ASSERT_EQ(::pipe(start_pipe), 0);
    ASSERT_EQ(::pipe(joined_pipe), 0);
    std::vector<std::pair<pid_t, int>> members;
    for (int i = 0; i < kMembers; ++i) {
        int report_pipe[2];
        ASSERT_EQ(::pipe(report_pipe), 0);
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::close(report_pipe[0]);
            ::close(start_pipe[1]);
            ::close(joined_pipe[0]);
            const Report report = run_member(group, kMessagesEach, kMembers * kMessagesEach, 1000 + i,
                                             joined_pipe[1], start_pipe[0]);
            const bool written = ::write(report_pipe[1], &report, sizeof(report)) == sizeof(report);
            ::_exit(written ? 0 : 8);
        }
        ::close(report_pipe[1]);
        members.emplace_back(pid, report_pipe[0]);
    }
    ::close(joined_pipe[1]);
    for (int i = 0; i < kMembers; ++i) {
        char joined;
        ASSERT_EQ(::read(joined_pipe[0], &joined, 1), 1) << "a member could not join";
    }
    ::close(joined_pipe[0]);
    ::close(start_pipe[0]);
    ::close(start_pipe[1]);  // EOF starts them together

    std::vector<Report> reports;
    for (auto& [pid, fd] : members) {
        Report report{};
        const ssize_t got = ::read(fd, &report, sizeof(report));
        ::close(fd);
        int status = 0;
        ::waitpid(pid, &status, 0);
        ASSERT_EQ(got, static_cast<ssize_t>(sizeof(report))) << "member " << pid << " died";
        reports.push_back(report);
    }
    for (const Report& report : reports) {
        EXPECT_EQ(report.error, 0);
        EXPECT_EQ(report.delivered, kMembers * kMessagesEach);
        EXPECT_EQ(report.spurious_wakeups, 0u);
        EXPECT_TRUE(report.fifo_ok);
        EXPECT_TRUE(report.content_ok);
        EXPECT_EQ(report.order_hash, reports[0].order_hash) << "members delivered different orders";
    }
}

// A member in a child process that joins `group` and then reads nothing until released
// with the number of messages to expect; it exits 0 once it has them all, in FIFO order
// and intact.
class StuckReader {
public:
    explicit StuckReader(const cpg_name& group)
    {
        if (::pipe(joined_) != 0 || ::pipe(release_) != 0) {
            return;
        }
        pid_ = ::fork();
        if (pid_ == 0) {
            ::_exit(run(group));
        }
    }
    ~StuckReader()
    {
        if (pid_ > 0 && !reaped_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    bool joined()
    {
        char byte;
        return pid_ > 0 && ::read(joined_[0], &byte, 1) == 1;
    }
    bool release(uint64_t expected)
    {
        return ::write(release_[1], &expected, sizeof(expected)) == static_cast<ssize_t>(sizeof(expected));
    }
    // The child's exit status (see waitpid).
    int wait()
    {
        int status = -1;
        ::waitpid(pid_, &status, 0);
        reaped_ = true;
        return status;
    }

private:
    int run(const cpg_name& group)
    {
        cpg_callbacks_t callbacks{on_deliver, nullptr};
        Tally tally;
        cpg_handle_t reader = 0;
        if (cpg_initialize(&reader, &callbacks) != CS_OK || cpg_join(reader, &group) != CS_OK) {
            return 2;
        }
        cpg_context_set(reader, &tally);
        const char byte = 'j';
        uint64_t expected = 0;
        if (::write(joined_[1], &byte, 1) != 1 ||
            ::read(release_[0], &expected, sizeof(expected)) != static_cast<ssize_t>(sizeof(expected))) {
            return 3;
        }
        int fd;
        cpg_fd_get(reader, &fd);
        while (tally.delivered < expected) {
            pollfd readable{fd, POLLIN, 0};
            if (::poll(&readable, 1, kPollTimeoutMs) != 1 || cpg_dispatch(reader, CS_DISPATCH_ALL) != CS_OK) {
                return 4;
            }
        }
        return tally.fifo_ok && tally.content_ok ? 0 : 5;
    }

    int joined_[2] = {-1, -1};
    int release_[2] = {-1, -1};
    pid_t pid_ = -1;
    bool reaped_ = false;
};

TEST(FlowControl, AStuckReaderHoldsSendersBackWithoutLoss)
{
    // The reader is stuck on purpose: it must not be cut off for it.
    // Without backlogs: a reader that does not read holds the ring.
    rcpg::testing::DaemonProcess daemon(
        {"--ring-mib", "8", "--stuck-client-timeout-ms", "0", "--client-backlog-mib", "0"});
    const cpg_name group = group_named("stuck");
    Tally sender_tally;
    cpg_callbacks_t callbacks{on_deliver, nullptr};
    cpg_handle_t sender = 0;
    ASSERT_EQ(cpg_initialize(&sender, &callbacks), CS_OK);
    cpg_context_set(sender, &sender_tally);
    // Two handles of one process cannot join the same group: the stuck reader is a child.
    StuckReader reader(group);
    ASSERT_TRUE(reader.joined());
    ASSERT_EQ(cpg_join(sender, &group), CS_OK);

    // Send until flow control stops us for good (the ring is full and the reader stuck);
    // the sender keeps dispatching its own copies.
    std::vector<unsigned char> buffer(16384);
    const auto pid = static_cast<uint32_t>(::getpid());
    uint64_t sent = 0;
    auto try_send = [&] {
        std::memcpy(buffer.data(), &sent, sizeof(sent));
        std::memset(buffer.data() + sizeof(sent), static_cast<unsigned char>(sent * 31 + pid), buffer.size() - 8);
        iovec iov{buffer.data(), buffer.size()};
        const cs_error_t result = cpg_mcast_joined(sender, CPG_TYPE_AGREED, &iov, 1);
        if (result == CS_OK) {
            ++sent;
        }
        cpg_dispatch(sender, CS_DISPATCH_ALL);
        return result;
    };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    auto refused_since = std::chrono::steady_clock::time_point::max();
    while (std::chrono::steady_clock::now() < deadline) {
        const cs_error_t result = try_send();
        ASSERT_TRUE(result == CS_OK || result == CS_ERR_TRY_AGAIN) << result;
        const auto now = std::chrono::steady_clock::now();
        if (result == CS_OK) {
            refused_since = std::chrono::steady_clock::time_point::max();
        } else if (refused_since == std::chrono::steady_clock::time_point::max()) {
            refused_since = now;
        } else if (now - refused_since > std::chrono::milliseconds(300)) {
            // Refused for a while and flow control raised: the ring is full, not just the
            // copy area while the daemon was slow to take it.
            cpg_flow_control_state_t raised = CPG_FLOW_CONTROL_DISABLED;
            if (cpg_flow_control_state_get(sender, &raised) == CS_OK && raised == CPG_FLOW_CONTROL_ENABLED) {
                break;
            }
        }
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the ring never filled: sent " << sent;
    cpg_flow_control_state_t state = CPG_FLOW_CONTROL_DISABLED;
    ASSERT_EQ(cpg_flow_control_state_get(sender, &state), CS_OK);
    EXPECT_EQ(state, CPG_FLOW_CONTROL_ENABLED);
    EXPECT_EQ(try_send(), CS_ERR_TRY_AGAIN);

    // Release the reader; it reads everything, and nothing new is published meanwhile.
    const uint64_t queued = sent;
    const uint64_t total = queued + 200;
    ASSERT_TRUE(reader.release(total));
    while (sender_tally.delivered < queued) {
        ASSERT_EQ(cpg_dispatch(sender, CS_DISPATCH_ONE), CS_OK);
    }
    // Flow control clears without another send, so zero-copy sends (which refuse while it
    // is raised) go through again.
    void* zcb = nullptr;
    ASSERT_EQ(cpg_zcb_alloc(sender, 64, &zcb), CS_OK);
    cs_error_t zcb_result = CS_ERR_TRY_AGAIN;
    const auto zcb_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (zcb_result == CS_ERR_TRY_AGAIN && std::chrono::steady_clock::now() < zcb_deadline) {
        std::memcpy(zcb, &sent, sizeof(sent));
        std::memset(static_cast<char*>(zcb) + 8, static_cast<unsigned char>(sent * 31 + pid), 56);
        zcb_result = cpg_zcb_mcast_joined(sender, CPG_TYPE_AGREED, zcb, 64);
        cpg_dispatch(sender, CS_DISPATCH_ALL);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_EQ(zcb_result, CS_OK);
    ++sent;
    cpg_zcb_free(sender, zcb);
    // And the rest, copied.
    while (sent < total && std::chrono::steady_clock::now() < deadline + std::chrono::seconds(120)) {
        try_send();
    }
    const int status = reader.wait();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "reader status " << status;
    while (sender_tally.delivered < total) {
        ASSERT_EQ(cpg_dispatch(sender, CS_DISPATCH_ONE), CS_OK);
    }
    EXPECT_EQ(sender_tally.delivered, total);
    EXPECT_TRUE(sender_tally.fifo_ok && sender_tally.content_ok);
    ASSERT_EQ(cpg_flow_control_state_get(sender, &state), CS_OK);
    EXPECT_EQ(state, CPG_FLOW_CONTROL_DISABLED);
    cpg_finalize(sender);
}

}  // namespace

namespace {

TEST(FlowControl, ZeroCopySendsResumeOnceAStuckReaderCatchesUp)
{
    // Zero-copy sends refuse as soon as flow control rises, so nothing is left queued
    // behind the full ring: flow control must clear from the readers' progress alone.
    // The reader is stuck on purpose: it must not be cut off for it.
    // Without backlogs: a reader that does not read holds the ring.
    rcpg::testing::DaemonProcess daemon(
        {"--ring-mib", "8", "--stuck-client-timeout-ms", "0", "--client-backlog-mib", "0"});
    const cpg_name group = group_named("stuck-zcb");
    StuckReader reader(group);
    ASSERT_TRUE(reader.joined());
    Tally tally;
    cpg_callbacks_t callbacks{on_deliver, nullptr};
    cpg_handle_t sender = 0;
    ASSERT_EQ(cpg_initialize(&sender, &callbacks), CS_OK);
    cpg_context_set(sender, &tally);
    ASSERT_EQ(cpg_join(sender, &group), CS_OK);
    void* buffer = nullptr;
    constexpr size_t kBytes = 16384;
    ASSERT_EQ(cpg_zcb_alloc(sender, kBytes, &buffer), CS_OK);
    const auto pid = static_cast<uint32_t>(::getpid());
    uint64_t sent = 0;
    auto send_zcb = [&] {
        std::memcpy(buffer, &sent, sizeof(sent));
        std::memset(static_cast<char*>(buffer) + 8, static_cast<unsigned char>(sent * 31 + pid), kBytes - 8);
        const cs_error_t result = cpg_zcb_mcast_joined(sender, CPG_TYPE_AGREED, buffer, kBytes);
        if (result == CS_OK) {
            ++sent;
        }
        cpg_dispatch(sender, CS_DISPATCH_ALL);
        return result;
    };
    cs_error_t result = CS_OK;
    for (int i = 0; i < 100000 && result == CS_OK; ++i) {
        result = send_zcb();
    }
    ASSERT_EQ(result, CS_ERR_TRY_AGAIN) << "the ring never filled";
    cpg_flow_control_state_t state = CPG_FLOW_CONTROL_DISABLED;
    ASSERT_EQ(cpg_flow_control_state_get(sender, &state), CS_OK);
    EXPECT_EQ(state, CPG_FLOW_CONTROL_ENABLED);

    const uint64_t total = sent + 100;
    ASSERT_TRUE(reader.release(total));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (sent < total && std::chrono::steady_clock::now() < deadline) {
        if (send_zcb() != CS_OK) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    EXPECT_EQ(sent, total) << "zero-copy sends did not resume";
    const int status = reader.wait();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "reader status " << status;
    while (tally.delivered < sent && std::chrono::steady_clock::now() < deadline) {
        cpg_dispatch(sender, CS_DISPATCH_ALL);
    }
    EXPECT_EQ(tally.delivered, total);
    EXPECT_TRUE(tally.fifo_ok && tally.content_ok);
    cpg_finalize(sender);
}

}  // namespace
