// When rcpgd dies, clients learn it from every call that waits on it: dispatch, control
// requests, and sends that find no room; nothing hangs. A send that would go through
// learns it too, within delivery::kDaemonSilenceMs of the death, fast stream or slow: nothing
// is accepted with CS_OK after that, and a program's reconnect (finalize, initialize,
// join) works against the restarted daemon, whose ring id is higher than before.
//
// Nothing races the clock: the bound is waited out (death, then twice the bound) before
// the sends whose result is asserted start, so a slow machine only waits longer.
#include "delivery/ring_format.hpp"
#include "tests/support/daemon_process.hpp"

#include <corosync/cpg.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <future>
#include <thread>
#include <vector>

namespace {

cpg_name group_named(const char* text)
{
    cpg_name name{};
    name.length = static_cast<uint32_t>(std::strlen(text));
    std::memcpy(name.value, text, name.length);
    return name;
}

TEST(DaemonGone, CallsReturnLibraryErrorInsteadOfHanging)
{
    rcpg::testing::DaemonProcess daemon;
    cpg_handle_t handle = 0;
    ASSERT_EQ(cpg_initialize(&handle, nullptr), CS_OK);
    const cpg_name group = group_named("gone");
    ASSERT_EQ(cpg_join(handle, &group), CS_OK);
    ASSERT_EQ(cpg_dispatch(handle, CS_DISPATCH_ALL), CS_OK);
    void* buffer = nullptr;
    ASSERT_EQ(cpg_zcb_alloc(handle, 4096, &buffer), CS_OK);

    // A thread blocked in dispatch returns when the daemon dies.
    auto blocked = std::async(std::launch::async, [&] { return cpg_dispatch(handle, CS_DISPATCH_BLOCKING); });
    ASSERT_EQ(::kill(daemon.pid(), SIGKILL), 0);
    daemon.stop();
    ASSERT_EQ(blocked.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_EQ(blocked.get(), CS_ERR_LIBRARY);

    EXPECT_EQ(cpg_dispatch(handle, CS_DISPATCH_ALL), CS_ERR_LIBRARY);
    EXPECT_EQ(cpg_dispatch(handle, CS_DISPATCH_ONE), CS_ERR_LIBRARY);
    unsigned int nodeid = 0;
    EXPECT_EQ(cpg_local_get(handle, &nodeid), CS_ERR_LIBRARY);
    EXPECT_EQ(cpg_leave(handle, &group), CS_ERR_LIBRARY);
    // A zero-copy send waits for the daemon to take the buffer: it must give up.
    auto zcb = std::async(std::launch::async,
                          [&] { return cpg_zcb_mcast_joined(handle, CPG_TYPE_AGREED, buffer, 4096); });
    ASSERT_EQ(zcb.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_EQ(zcb.get(), CS_ERR_LIBRARY);
    // Copying sends are queued in shared memory; once the queue is full they report it.
    std::vector<char> payload(64 * 1024);
    iovec iov{payload.data(), payload.size()};
    cs_error_t result = CS_OK;
    for (int i = 0; i < 100000 && result == CS_OK; ++i) {
        result = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
    }
    EXPECT_EQ(result, CS_ERR_LIBRARY);
    EXPECT_EQ(cpg_finalize(handle), CS_ERR_LIBRARY);
    EXPECT_EQ(cpg_finalize(handle), CS_ERR_BAD_HANDLE);
}

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// More than the bound (plus the coarse clock's tick) after the daemon was reaped.
constexpr auto kPastTheBound = std::chrono::milliseconds(2 * rcpg::delivery::kDaemonSilenceMs + 20);

struct SendRecord {
    Clock::time_point started;
    cs_error_t result;
};

// Sends every `interval` (0: as fast as it can, reading its own deliveries) until a send
// started after `bound` (once the test sets it) failed, or `limit` passed; returns every
// send's start and result.
std::vector<SendRecord> send_until_it_fails(cpg_handle_t handle, std::chrono::microseconds interval,
                                            const std::atomic<Clock::rep>& bound, Clock::duration limit)
{
    std::vector<SendRecord> records;
    char text[64] = "alive?";
    iovec iov{text, sizeof text};
    const Clock::time_point deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
        const Clock::time_point started = Clock::now();
        const cs_error_t result = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
        records.push_back({started, result});
        const Clock::rep after = bound.load();
        if (after != 0 && started.time_since_epoch().count() >= after && result != CS_OK) {
            break;
        }
        if (result != CS_OK && result != CS_ERR_TRY_AGAIN) {
            std::this_thread::sleep_for(5ms);  // failed: keep asking until past the bound
            continue;
        }
        if (records.size() % 64 == 0 || result == CS_ERR_TRY_AGAIN) {
            cpg_dispatch(handle, CS_DISPATCH_ALL);
        }
        if (interval.count() != 0) {
            std::this_thread::sleep_for(interval);
        }
    }
    return records;
}

void expect_death_noticed(std::chrono::microseconds interval)
{
    rcpg::testing::DaemonProcess daemon;
    ASSERT_TRUE(daemon.running());
    cpg_handle_t handle = 0;
    ASSERT_EQ(cpg_initialize(&handle, nullptr), CS_OK);
    const cpg_name group = group_named("death");
    ASSERT_EQ(cpg_join(handle, &group), CS_OK);
    // Ends by itself; a sender that never notices stops after a minute.
    std::atomic<Clock::rep> bound_ticks{0};
    auto sending =
        std::async(std::launch::async, [&] { return send_until_it_fails(handle, interval, bound_ticks, 60s); });
    std::this_thread::sleep_for(300ms);
    const Clock::time_point killed = Clock::now();
    ASSERT_EQ(::kill(daemon.pid(), SIGKILL), 0);
    daemon.stop();  // reaped: its socket is closed
    const Clock::time_point bound = Clock::now() + kPastTheBound;
    bound_ticks.store(bound.time_since_epoch().count());
    const std::vector<SendRecord> records = sending.get();
    ASSERT_FALSE(records.empty());
    size_t after_bound = 0;
    size_t accepted_before = 0;
    bool failed = false;
    for (const SendRecord& record : records) {
        if (record.started >= bound) {
            ++after_bound;
            EXPECT_EQ(record.result, CS_ERR_LIBRARY) << "a send more than the bound after the death was accepted";
        } else {
            accepted_before += record.result == CS_OK ? 1 : 0;
        }
        EXPECT_FALSE(failed && record.result != CS_ERR_LIBRARY) << "a send after the first failure did not fail";
        failed |= record.result == CS_ERR_LIBRARY;
    }
    EXPECT_GT(after_bound, 0u) << "the sender ran into the test's own limit";
    EXPECT_GT(accepted_before, 0u) << "nothing was sent before the death";
    // For the record (not asserted: it depends on the machine): how long after SIGKILL the
    // first send failed, and how many were accepted after it.
    size_t accepted_after_kill = 0;
    for (const SendRecord& record : records) {
        if (record.result == CS_ERR_LIBRARY) {
            std::printf("first CS_ERR_LIBRARY %.1f ms after SIGKILL; %zu sends accepted after SIGKILL\n",
                        std::chrono::duration<double, std::milli>(record.started - killed).count(),
                        accepted_after_kill);
            break;
        }
        accepted_after_kill += record.started >= killed && record.result == CS_OK ? 1 : 0;
    }
    EXPECT_EQ(cpg_finalize(handle), CS_ERR_LIBRARY);
}

TEST(DaemonGone, AFastSenderIsToldWithinTheBoundAndNothingIsAcceptedAfterIt)
{
    expect_death_noticed(std::chrono::microseconds(0));
}

// About a thousand a second: before, sends were accepted (and lost) until the 4096-deep
// submission queue was full, four seconds after the death.
TEST(DaemonGone, ASenderEveryMillisecondIsToldWithinTheBound)
{
    expect_death_noticed(std::chrono::milliseconds(1));
}

TEST(DaemonGone, ASenderEveryHundredMillisecondsIsToldAtItsNextSend)
{
    expect_death_noticed(std::chrono::milliseconds(100));
}

struct TotemSeen {
    uint64_t ring_seq = 0;
};

void on_totem(cpg_handle_t handle, cpg_ring_id ring_id, uint32_t, const uint32_t*)
{
    void* context = nullptr;
    cpg_context_get(handle, &context);
    static_cast<TotemSeen*>(context)->ring_seq = ring_id.seq;
}

uint64_t join_and_read_ring_seq(cpg_handle_t& handle, TotemSeen& seen, const cpg_name& group)
{
    cpg_model_v1_data_t model{};
    model.model = CPG_MODEL_V1;
    model.cpg_totem_confchg_fn = on_totem;
    model.flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF;
    EXPECT_EQ(cpg_model_initialize(&handle, CPG_MODEL_V1, reinterpret_cast<cpg_model_data_t*>(&model), &seen), CS_OK);
    EXPECT_EQ(cpg_join(handle, &group), CS_OK);
    const auto deadline = Clock::now() + 60s;
    while (seen.ring_seq == 0 && Clock::now() < deadline) {
        EXPECT_NE(cpg_dispatch(handle, CS_DISPATCH_ONE_NONBLOCKING), CS_ERR_LIBRARY);
        std::this_thread::sleep_for(1ms);
    }
    return seen.ring_seq;
}

// corosync's reconnect, as its applications write it: on the first error, finalize,
// initialize until the daemon is back, join again. The ring id rises across the restart.
TEST(DaemonGone, AProgramReconnectsToTheRestartedDaemonAndTheRingIdRises)
{
    rcpg::testing::DaemonProcess first;
    ASSERT_TRUE(first.running());
    const cpg_name group = group_named("reconnect");
    cpg_handle_t handle = 0;
    TotemSeen seen_first;
    const uint64_t ring_before = join_and_read_ring_seq(handle, seen_first, group);
    ASSERT_GT(ring_before, 0u);
    ASSERT_EQ(::kill(first.pid(), SIGKILL), 0);
    first.stop();
    std::this_thread::sleep_for(kPastTheBound);
    char text[] = "after";
    iovec iov{text, sizeof text};
    EXPECT_EQ(cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1), CS_ERR_LIBRARY);
    EXPECT_EQ(cpg_finalize(handle), CS_ERR_LIBRARY);

    rcpg::testing::DaemonProcess restarted({}, first.ipc_name());
    ASSERT_TRUE(restarted.running());
    TotemSeen seen_after;
    const uint64_t ring_after = join_and_read_ring_seq(handle, seen_after, group);
    EXPECT_GT(ring_after, ring_before) << "the ring id did not rise across the restart";
    EXPECT_EQ(cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1), CS_OK);
    EXPECT_EQ(cpg_finalize(handle), CS_OK);
}

// The library writes nothing of its own to stdout or stderr, also when the daemon dies
// under it: a program's output is its own (corosync's library prints nothing either).
TEST(DaemonGone, TheLibraryPrintsNothingOfItsOwn)
{
    rcpg::testing::DaemonProcess daemon;
    ASSERT_TRUE(daemon.running());
    const std::string output = "/tmp/" + daemon.ipc_name() + ".client-output";
    const pid_t daemon_pid = daemon.pid();
    const pid_t child = ::fork();
    if (child == 0) {
        const int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ::dup2(fd, STDOUT_FILENO);
        ::dup2(fd, STDERR_FILENO);
        const cpg_name group = group_named("quiet");
        char text[] = "quiet";
        iovec iov{text, sizeof text};
        cpg_handle_t handle = 0;
        cpg_callbacks_t callbacks{};
        int steps = 0;
        steps += cpg_initialize(&handle, &callbacks) == CS_OK;
        steps += cpg_join(handle, &group) == CS_OK;
        steps += cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1) == CS_OK;
        steps += cpg_dispatch(handle, CS_DISPATCH_ALL) == CS_OK;
        steps += cpg_leave(handle, &group) == CS_OK;
        steps += cpg_finalize(handle) == CS_OK;
        steps += cpg_initialize(&handle, &callbacks) == CS_OK;
        steps += cpg_join(handle, &group) == CS_OK;
        ::kill(daemon_pid, SIGKILL);
        std::this_thread::sleep_for(kPastTheBound + 200ms);
        steps += cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1) == CS_ERR_LIBRARY;
        steps += cpg_dispatch(handle, CS_DISPATCH_ALL) == CS_ERR_LIBRARY;
        steps += cpg_finalize(handle) == CS_ERR_LIBRARY;
        steps += cpg_initialize(&handle, &callbacks) != CS_OK;
        ::_exit(steps == 12 ? 0 : 10 + steps);
    }
    ASSERT_GT(child, 0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    daemon.stop();
    std::ifstream in(output);
    const std::string printed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ::unlink(output.c_str());
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
    EXPECT_EQ(printed, "") << "the library printed this";
}

}  // namespace
