// A member that stops reading (SIGSTOP, a debugger, a long page-in) while another floods
// its group, as corosync's applications expect it to go:
//  - It costs the senders nothing: its unread entries move out of the ring into its
//    backlog, the flood completes while it is still stopped (on a ring that holds an
//    eighth of it), and it is not cut off although it stays stopped far longer than the
//    stuck-client timeout. When it continues it gets every message, in order, whole, and
//    rcpg-cpgtool showed the backlog meanwhile.
//  - Over its backlog budget it is cut off: its group sees PROCDOWN, and when it
//    continues its next call returns CS_ERR_LIBRARY at once. It delivers nothing it no
//    longer owns (what it delivered is a gapless, intact prefix of the flood), and it
//    never spins: it ends by itself.
//  - The same without backlogs (client_backlog_mib 0) once the stuck-client timeout cuts
//    it off.
// Message sizes below and above the in-place size: the large ones are delivered from the
// ring in place, so a member stopped inside its callback holds that one entry.
//
// Nothing races the clock: the flood's end, the PROCDOWN and the member's own end are
// waited for with bounds far above what they take; the member's pause only lasts longer
// on a slow machine, which changes nothing.
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
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

cpg_name group_named(const char* text)
{
    cpg_name name{};
    name.length = static_cast<uint32_t>(std::strlen(text));
    std::memcpy(name.value, text, name.length);
    return name;
}

// Every message: its number, then bytes derived from it.
void fill_message(std::vector<unsigned char>& message, uint64_t number)
{
    std::memcpy(message.data(), &number, sizeof(number));
    for (size_t i = sizeof(number); i < message.size(); ++i) {
        message[i] = static_cast<unsigned char>(number * 131 + i);
    }
}

bool message_intact(const unsigned char* bytes, size_t length, uint64_t& number)
{
    if (length < sizeof(number)) {
        return false;
    }
    std::memcpy(&number, bytes, sizeof(number));
    for (size_t i = sizeof(number); i < length; ++i) {
        if (bytes[i] != static_cast<unsigned char>(number * 131 + i)) {
            return false;
        }
    }
    return true;
}

// What the member reports when it ends.
struct MemberReport {
    uint64_t delivered = 0;     // messages of the flood, in order from 0
    uint64_t out_of_order = 0;  // a number other than the next one, or damaged bytes
    int last_result = 0;        // the dispatch result that ended it (CS_OK: it got them all)
    int mcast_after = 0;        // a send after that result
};

struct MemberState {
    uint64_t expected = 0;
    uint64_t total = 0;
    MemberReport report;
};

MemberState g_member;

void member_deliver(cpg_handle_t, const cpg_name*, uint32_t, uint32_t, void* msg, size_t len)
{
    uint64_t number = 0;
    if (!message_intact(static_cast<const unsigned char*>(msg), len, number) || number != g_member.expected) {
        ++g_member.report.out_of_order;
        return;
    }
    ++g_member.expected;
    ++g_member.report.delivered;
}

void member_confchg(cpg_handle_t, const cpg_name*, const cpg_address*, size_t, const cpg_address*, size_t,
                    const cpg_address*, size_t)
{
}

// A member that joins, says so on `ready`, then dispatches until it has the whole flood
// or a call fails; it reports on `result` and exits.
pid_t start_member(const cpg_name& group, uint64_t total, int ready, int result)
{
    const pid_t pid = ::fork();
    if (pid != 0) {
        return pid;
    }
    g_member.total = total;
    cpg_callbacks_t callbacks{member_deliver, member_confchg};
    cpg_handle_t handle = 0;
    char byte = 'x';
    if (cpg_initialize(&handle, &callbacks) == CS_OK && cpg_join(handle, &group) == CS_OK &&
        cpg_dispatch(handle, CS_DISPATCH_ALL) == CS_OK) {
        byte = 'j';
    }
    [[maybe_unused]] ssize_t written = ::write(ready, &byte, 1);
    cs_error_t dispatched = CS_OK;
    while (g_member.expected < total) {
        dispatched = cpg_dispatch(handle, CS_DISPATCH_ONE);
        if (dispatched != CS_OK && dispatched != CS_ERR_TRY_AGAIN) {
            break;
        }
    }
    g_member.report.last_result = dispatched;
    const char text[] = "after";
    iovec iov{const_cast<char*>(text), sizeof text};
    g_member.report.mcast_after = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
    written = ::write(result, &g_member.report, sizeof g_member.report);
    ::_exit(0);
}

struct SenderView {
    bool member_left = false;
    cpg_reason_t reason = CPG_REASON_UNDEFINED;
    pid_t member = 0;
};

void sender_deliver(cpg_handle_t, const cpg_name*, uint32_t, uint32_t, void*, size_t) {}

void sender_confchg(cpg_handle_t handle, const cpg_name*, const cpg_address*, size_t, const cpg_address* left,
                    size_t left_count, const cpg_address*, size_t)
{
    void* context = nullptr;
    cpg_context_get(handle, &context);
    auto* view = static_cast<SenderView*>(context);
    for (size_t i = 0; i < left_count; ++i) {
        if (left[i].pid == static_cast<uint32_t>(view->member)) {
            view->member_left = true;
            view->reason = static_cast<cpg_reason_t>(left[i].reason);
        }
    }
}

uint64_t kv_number(const std::string& kv, const std::string& key)
{
    const size_t at = kv.find("\n" + key + "=");
    return at == std::string::npos ? UINT64_MAX : std::stoull(kv.substr(at + key.size() + 2));
}

struct Flood {
    uint64_t sent = 0;
    bool member_left = false;
    cpg_reason_t reason = CPG_REASON_UNDEFINED;
};

// Sends `total` messages of `bytes` (reading its own deliveries), or stops early once the
// member left; waits at most `limit`. After `stop_after` messages it stops the member
// (SIGSTOP), which is then reading the flood: it may stop inside a callback.
Flood flood(const cpg_name& group, pid_t member, uint64_t total, size_t bytes, Clock::duration limit,
            uint64_t stop_after = UINT64_MAX)
{
    SenderView view;
    view.member = member;
    cpg_callbacks_t callbacks{sender_deliver, sender_confchg};
    cpg_handle_t sender = 0;
    EXPECT_EQ(cpg_initialize(&sender, &callbacks), CS_OK);
    cpg_context_set(sender, &view);
    EXPECT_EQ(cpg_join(sender, &group), CS_OK);
    std::vector<unsigned char> message(bytes);
    // The sender reads its own deliveries every 256 KiB, so that it never lags itself.
    const uint64_t read_every = std::max<uint64_t>(1, (256u << 10) / bytes);
    Flood result;
    const auto deadline = Clock::now() + limit;
    while (result.sent < total && Clock::now() < deadline && !view.member_left) {
        fill_message(message, result.sent);
        iovec iov{message.data(), message.size()};
        const cs_error_t sent = cpg_mcast_joined(sender, CPG_TYPE_AGREED, &iov, 1);
        if (sent == CS_OK) {
            if (++result.sent == stop_after) {
                EXPECT_EQ(::kill(member, SIGSTOP), 0);
            }
        } else {
            EXPECT_EQ(sent, CS_ERR_TRY_AGAIN);
            if (sent != CS_ERR_TRY_AGAIN) {
                break;
            }
            std::this_thread::sleep_for(100us);
        }
        if (sent != CS_OK || result.sent % read_every == 0) {
            cpg_dispatch(sender, CS_DISPATCH_ALL);
        }
    }
    // A PROCDOWN that follows the last message is waited for by the caller when it must.
    cpg_dispatch(sender, CS_DISPATCH_ALL);
    result.member_left = view.member_left;
    result.reason = view.reason;
    cpg_finalize(sender);
    return result;
}

// Waits for the member to end by itself (bounded: a spinning member fails here).
bool member_report(pid_t member, int result_fd, MemberReport& report, Clock::duration limit)
{
    const auto deadline = Clock::now() + limit;
    int status = 0;
    while (Clock::now() < deadline) {
        if (::waitpid(member, &status, WNOHANG) == member) {
            return ::read(result_fd, &report, sizeof report) == static_cast<ssize_t>(sizeof report);
        }
        std::this_thread::sleep_for(20ms);
    }
    ::kill(member, SIGKILL);
    ::waitpid(member, &status, 0);
    return false;
}

struct Member {
    pid_t pid = -1;
    int ready[2] = {-1, -1};
    int result[2] = {-1, -1};
    ~Member()
    {
        if (pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        for (int fd : {ready[0], ready[1], result[0], result[1]}) {
            if (fd >= 0) {
                ::close(fd);
            }
        }
    }
};

void start(Member& member, const cpg_name& group, uint64_t total)
{
    ASSERT_EQ(::pipe(member.ready), 0);
    ASSERT_EQ(::pipe(member.result), 0);
    member.pid = start_member(group, total, member.ready[1], member.result[1]);
    ASSERT_GT(member.pid, 0);
    char byte = 0;
    ASSERT_EQ(::read(member.ready[0], &byte, 1), 1);
    ASSERT_EQ(byte, 'j');
}

// A member cut off while stopped, continued: its calls return CS_ERR_LIBRARY, it ends by
// itself (a spinning member fails here), and what it delivered is an intact, gapless
// prefix of the flood: nothing of a slot it no longer owned.
void expect_clean_end(Member& member, uint64_t total)
{
    ASSERT_EQ(::kill(member.pid, SIGCONT), 0);
    MemberReport report;
    ASSERT_TRUE(member_report(member.pid, member.result[0], report, 120s)) << "the cut-off member did not end";
    EXPECT_EQ(report.last_result, CS_ERR_LIBRARY);
    EXPECT_EQ(report.mcast_after, CS_ERR_LIBRARY);
    EXPECT_EQ(report.out_of_order, 0u) << "it delivered bytes of slots it no longer owned";
    EXPECT_LT(report.delivered, total);
}

class SlowReader : public ::testing::TestWithParam<size_t> {};

// The flood is four rings' worth: it can complete while the member is stopped only if the
// member's entries leave the ring.
TEST_P(SlowReader, APausedMemberCostsSendersNothingAndGetsEveryMessage)
{
    const size_t bytes = GetParam();
    const uint64_t total = (32ull << 20) / bytes;
    rcpg::testing::DaemonProcess daemon({"--ring-mib", "8", "--stuck-client-timeout-ms", "300"});
    ASSERT_TRUE(daemon.running());
    const cpg_name group = group_named("slow-reader");
    Member member;
    start(member, group, total);

    const Flood sent = flood(group, member.pid, total, bytes, 300s, total / 8);
    EXPECT_EQ(sent.sent, total) << "the flood did not complete while the member was stopped";
    EXPECT_FALSE(sent.member_left) << "the stopped member was cut off (reason " << sent.reason << "): "
                                   << daemon.log();
    const std::string kv = rcpg::testing::cpgtool_kv();
    EXPECT_GT(kv_number(kv, "backlog_moves"), 0u) << kv;
    EXPECT_GT(kv_number(kv, "backlog_bytes"), 0u) << kv;
    EXPECT_EQ(kv_number(kv, "backlogged_clients"), 1u) << kv;
    EXPECT_EQ(kv_number(kv, "client_backlog_budget_bytes"), 256ull << 20) << kv;
    EXPECT_EQ(kv_number(kv, "stuck_clients_disconnected"), 0u) << kv;

    ASSERT_EQ(::kill(member.pid, SIGCONT), 0);
    MemberReport report;
    ASSERT_TRUE(member_report(member.pid, member.result[0], report, 300s)) << "the member did not end";
    EXPECT_EQ(report.delivered, total);
    EXPECT_EQ(report.out_of_order, 0u);
    EXPECT_EQ(report.last_result, CS_OK);
    EXPECT_EQ(report.mcast_after, CS_OK);
    EXPECT_EQ(kv_number(rcpg::testing::cpgtool_kv(), "backlog_bytes"), 0u) << "the backlog was read and is empty";
}

// Two and a half rings' worth against an 8 MiB backlog: the member must be cut off. (The
// ring is large enough that the sender, with up to 8 MiB of its own sends in flight,
// never lags a quarter of it and needs no backlog itself.)
TEST_P(SlowReader, OverItsBacklogBudgetItIsCutOffAndEndsCleanly)
{
    const size_t bytes = GetParam();
    const uint64_t total = (160ull << 20) / bytes;
    rcpg::testing::DaemonProcess daemon({"--ring-mib", "64", "--client-backlog-mib", "8"});
    ASSERT_TRUE(daemon.running());
    const cpg_name group = group_named("slow-reader");
    Member member;
    start(member, group, total);

    const Flood sent = flood(group, member.pid, total, bytes, 300s, total / 8);
    ASSERT_TRUE(sent.member_left) << "the member was never cut off: " << daemon.log();
    EXPECT_EQ(sent.reason, CPG_REASON_PROCDOWN);
    EXPECT_EQ(kv_number(rcpg::testing::cpgtool_kv(), "backlog_overflows"), 1u) << daemon.log();
    EXPECT_NE(daemon.log().find("its backlog (8 MiB) is full"), std::string::npos) << daemon.log();

    expect_clean_end(member, total);
}

// Without backlogs the stuck-client timeout cuts the member off; the same clean end.
TEST_P(SlowReader, CutOffByTheStuckTimeoutItEndsCleanlyWithoutBacklogs)
{
    const size_t bytes = GetParam();
    const uint64_t total = (80ull << 20) / bytes;
    rcpg::testing::DaemonProcess daemon(
        {"--ring-mib", "8", "--client-backlog-mib", "0", "--stuck-client-timeout-ms", "300"});
    ASSERT_TRUE(daemon.running());
    const cpg_name group = group_named("slow-reader");
    Member member;
    start(member, group, total);

    const Flood sent = flood(group, member.pid, total, bytes, 300s, total / 8);
    ASSERT_TRUE(sent.member_left) << "the member was never cut off";
    EXPECT_EQ(sent.reason, CPG_REASON_PROCDOWN);
    // The ring goes round several times after the cut-off, over the member's slots.
    const Flood after = flood(group, 0, (32ull << 20) / bytes, bytes, 300s);
    EXPECT_EQ(after.sent, (32ull << 20) / bytes);

    expect_clean_end(member, total);
}

// 320 bytes as in corosync's own flood tests; 64 KiB is delivered in place.
INSTANTIATE_TEST_SUITE_P(Sizes, SlowReader, ::testing::Values(size_t{320}, size_t{65536}),
                         [](const ::testing::TestParamInfo<size_t>& size) {
                             return std::to_string(size.param) + "B";
                         });

}  // namespace
