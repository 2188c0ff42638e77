// Without backlogs (client_backlog_mib 0; slow_reader_test has them) a client that stops
// reading holds the delivery ring: senders get CS_ERR_TRY_AGAIN. With a stuck-client timeout the daemon cuts it off once it read nothing
// for that long while the ring was full because of it: its group sees PROCDOWN, senders
// go on, and rcpg-cpgtool counts it. Without one (0) senders wait as long as it stays.
#include "tests/support/daemon_process.hpp"

#include <corosync/cpg.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Seen {
    std::vector<cpg_address> left;
};

void on_confchg(cpg_handle_t handle, const cpg_name*, const cpg_address*, size_t, const cpg_address* left,
                size_t n_left, const cpg_address*, size_t)
{
    void* context = nullptr;
    cpg_context_get(handle, &context);
    static_cast<Seen*>(context)->left.insert(static_cast<Seen*>(context)->left.end(), left, left + n_left);
}

void on_deliver(cpg_handle_t, const cpg_name*, uint32_t, uint32_t, void*, size_t) {}

cpg_name group_named(const char* text)
{
    cpg_name name{};
    name.length = static_cast<uint32_t>(std::strlen(text));
    std::memcpy(name.value, text, name.length);
    return name;
}

// A member that joins and then never reads again (its process lives on).
pid_t start_stuck_member(const cpg_name& group)
{
    int ready[2];
    if (::pipe(ready) != 0) {
        return -1;
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
        cpg_handle_t handle = 0;
        char byte = 'x';
        if (cpg_initialize(&handle, nullptr) == CS_OK && cpg_join(handle, &group) == CS_OK) {
            byte = 'j';
        }
        ::write(ready[1], &byte, 1);
        ::pause();
        ::_exit(0);
    }
    char byte = 0;
    const bool joined = ::read(ready[0], &byte, 1) == 1 && byte == 'j';
    ::close(ready[0]);
    ::close(ready[1]);
    return joined ? pid : -1;
}

struct Outcome {
    uint64_t try_again = 0;
    uint64_t sent_after_cut = 0;
    bool cut_off = false;
    cpg_reason_t reason = CPG_REASON_UNDEFINED;
};

// Sends 64 KiB messages (reading its own deliveries) until the stuck member is gone and
// `after_cut` more went out, or until `limit` passed.
Outcome flood_against(pid_t stuck, const cpg_name& group, Clock::duration limit, uint64_t after_cut)
{
    Outcome outcome;
    Seen seen;
    cpg_callbacks_t callbacks{on_deliver, on_confchg};
    cpg_handle_t sender = 0;
    EXPECT_EQ(cpg_initialize(&sender, &callbacks), CS_OK);
    cpg_context_set(sender, &seen);
    EXPECT_EQ(cpg_join(sender, &group), CS_OK);
    std::vector<char> payload(64 * 1024, 's');
    iovec iov{payload.data(), payload.size()};
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline && outcome.sent_after_cut < after_cut) {
        const cs_error_t result = cpg_mcast_joined(sender, CPG_TYPE_AGREED, &iov, 1);
        if (result == CS_OK) {
            outcome.sent_after_cut += outcome.cut_off ? 1 : 0;
        } else {
            EXPECT_EQ(result, CS_ERR_TRY_AGAIN);
            ++outcome.try_again;
        }
        cpg_dispatch(sender, CS_DISPATCH_ALL);
        for (const cpg_address& left : seen.left) {
            if (left.pid == static_cast<uint32_t>(stuck) && !outcome.cut_off) {
                outcome.cut_off = true;
                outcome.reason = static_cast<cpg_reason_t>(left.reason);
            }
        }
    }
    cpg_finalize(sender);
    return outcome;
}

TEST(StuckClient, IsCutOffWithProcdownAndSendersGoOn)
{
    // Without backlogs: a reader that does not read holds the ring.
    rcpg::testing::DaemonProcess daemon(
        {"--ring-mib", "8", "--stuck-client-timeout-ms", "300", "--client-backlog-mib", "0"});
    ASSERT_TRUE(daemon.running());
    const cpg_name group = group_named("stuck");
    const pid_t stuck = start_stuck_member(group);
    ASSERT_GT(stuck, 0);
    const Outcome outcome = flood_against(stuck, group, std::chrono::seconds(30), 200);
    EXPECT_GT(outcome.try_again, 0u) << "the stuck member never held the senders back";
    ASSERT_TRUE(outcome.cut_off) << "the stuck member was never cut off";
    EXPECT_EQ(outcome.reason, CPG_REASON_PROCDOWN);
    EXPECT_EQ(outcome.sent_after_cut, 200u) << "senders did not go on after the stuck member was cut off";
    const std::string kv = rcpg::testing::cpgtool_kv();
    EXPECT_NE(kv.find("stuck_clients_disconnected=1\n"), std::string::npos) << kv;
    EXPECT_NE(daemon.log().find("read nothing for"), std::string::npos);
    ::kill(stuck, SIGKILL);
    ::waitpid(stuck, nullptr, 0);
}

TEST(StuckClient, WithoutATimeoutSendersWaitUntilItGoes)
{
    // Without backlogs: a reader that does not read holds the ring.
    rcpg::testing::DaemonProcess daemon(
        {"--ring-mib", "8", "--stuck-client-timeout-ms", "0", "--client-backlog-mib", "0"});
    ASSERT_TRUE(daemon.running());
    const cpg_name group = group_named("stuck");
    const pid_t stuck = start_stuck_member(group);
    ASSERT_GT(stuck, 0);
    // Far longer than the other test needed to cut it off.
    const Outcome waiting = flood_against(stuck, group, std::chrono::seconds(3), 1);
    EXPECT_GT(waiting.try_again, 0u);
    EXPECT_FALSE(waiting.cut_off) << "cut off although the timeout is 0";
    EXPECT_NE(rcpg::testing::cpgtool_kv().find("stuck_clients_disconnected=0\n"), std::string::npos);
    ::kill(stuck, SIGKILL);
    ::waitpid(stuck, nullptr, 0);
}

}  // namespace
