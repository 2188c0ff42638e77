// Members that go away without cpg_leave: a process that calls cpg_finalize, exits
// (with or without finalizing) or is killed with SIGKILL while joined is reported to the
// remaining members with reason CPG_REASON_PROCDOWN (5), after its last message; the
// finalizing handle itself gets no confchg.
#include "tests/conformance/conformance.hpp"

namespace rcpg::conformance {
namespace {

using ProcDown = Conformance;

enum class Ending { finalize_then_wait, exit_without_finalize, exit_after_finalize, sigkill };

// A member process: joins `group`, sends "last words", reports 'j' once the message is
// delivered to itself, then ends as told. finalize_then_wait reports 'f' after
// cpg_finalize returned OK and stays alive until `release` closes.
int member(const std::string& group, Ending ending, Pipe& ready, Pipe& release)
{
    ready.close_read();
    release.close_write();
    auto* client = new Client(Client::Options{.retry_init = true});  // never destroyed by exit paths
    if (!client->ok() || client->join(group) != CS_OK) {
        return 2;
    }
    if (client->send("last words") != CS_OK || !client->pump_until_body("last words")) {
        return 3;
    }
    ready.write_byte('j');
    switch (ending) {
    case Ending::finalize_then_wait:
        if (client->finalize() != CS_OK) {
            ready.write_byte('x');
            return 4;
        }
        ready.write_byte('f');
        release.wait_eof(kEventTimeout);
        return 0;
    case Ending::exit_without_finalize:
        return 0;  // _exit: the connection closes with the process
    case Ending::exit_after_finalize:
        client->finalize();
        return 0;
    case Ending::sigkill:
        release.wait_eof(kHoldTimeout);  // the parent kills us meanwhile
        return 5;
    }
    return 6;
}

// Runs a member that ends as `ending` and checks what the parent (a member of the
// same group) sees: the member's join, its message, then one confchg with the member
// in the left list with reason PROCDOWN.
void expect_procdown(Ending ending, const std::string& group)
{
    Pipe ready;
    Pipe release;
    Client parent;
    ASSERT_TRUE(parent.ok());
    ASSERT_EQ(parent.join(group), CS_OK);
    ASSERT_TRUE(parent.pump_until_count(Event::confchg, 1));
    ChildProcess child([&] { return member(group, ending, ready, release); });
    ASSERT_TRUE(child.started());
    ready.close_write();
    release.close_read();
    ASSERT_EQ(ready.read_byte(), 'j');
    const auto child_pid = static_cast<uint32_t>(child.pid());
    switch (ending) {
    case Ending::finalize_then_wait:
        ASSERT_EQ(ready.read_byte(), 'f') << "cpg_finalize failed in the member";
        break;
    case Ending::exit_without_finalize:
    case Ending::exit_after_finalize:
        EXPECT_EQ(child.wait(), 0);
        break;
    case Ending::sigkill:
        child.kill(SIGKILL);
        EXPECT_EQ(child.wait(), 128 + SIGKILL);
        break;
    }
    ASSERT_TRUE(parent.pump_until([&] {
        for (const Event* confchg : parent.rec.of(Event::confchg)) {
            if (!confchg->left.empty()) {
                return true;
            }
        }
        return false;
    })) << "no confchg for the departed member";
    // join confchg (own), join confchg (member), "last words", the departure.
    ASSERT_EQ(parent.rec.events.size(), 4u);
    EXPECT_EQ(parent.rec.events[2].kind, Event::message);
    EXPECT_EQ(parent.rec.events[2].pid, child_pid);
    const Event& gone = parent.rec.events[3];
    ASSERT_EQ(gone.kind, Event::confchg);
    EXPECT_EQ(gone.group, group);
    ASSERT_EQ(gone.left.size(), 1u);
    EXPECT_EQ(gone.left[0].nodeid, 1u);
    EXPECT_EQ(gone.left[0].pid, child_pid);
    EXPECT_EQ(gone.left[0].reason, static_cast<uint32_t>(CPG_REASON_PROCDOWN));
    EXPECT_TRUE(gone.joined.empty());
    ASSERT_EQ(gone.members.size(), 1u);
    EXPECT_EQ(gone.members[0].pid, self_pid());
    EXPECT_EQ(members_of(parent.handle, group).size(), 1u);
    // Reported once.
    parent.pump_for(kQuietMs);
    EXPECT_EQ(parent.rec.events.size(), 4u);
    release.close_write();
    if (ending == Ending::finalize_then_wait) {
        EXPECT_EQ(child.wait(), 0);
    }
}

TEST_F(ProcDown, FinalizeOfAMemberIsSeenAsProcdown)
{
    expect_procdown(Ending::finalize_then_wait, "finalized");
}

TEST_F(ProcDown, ExitOfAMemberIsSeenAsProcdown) { expect_procdown(Ending::exit_without_finalize, "exited"); }

TEST_F(ProcDown, ExitAfterFinalizeIsSeenAsOneProcdown)
{
    expect_procdown(Ending::exit_after_finalize, "finalized-exited");
}

TEST_F(ProcDown, SigkillOfAMemberIsSeenAsProcdown) { expect_procdown(Ending::sigkill, "killed"); }

TEST_F(ProcDown, FinalizingHandleGetsNoConfchgForItself)
{
    Client watcher;
    ASSERT_TRUE(watcher.ok());
    Client leaver;
    ASSERT_TRUE(leaver.ok());
    ASSERT_EQ(leaver.join("self-finalize"), CS_OK);
    ASSERT_TRUE(leaver.pump_until_count(Event::confchg, 1));
    const size_t before = leaver.rec.events.size();
    ASSERT_EQ(leaver.finalize(), CS_OK);
    EXPECT_EQ(leaver.rec.events.size(), before);
    EXPECT_EQ(cpg_dispatch(leaver.handle, CS_DISPATCH_ALL), CS_ERR_BAD_HANDLE);
    // The group is empty again.
    ASSERT_TRUE(watcher.pump_until([&] { return members_of(watcher.handle, "self-finalize").empty(); }));
}

TEST_F(ProcDown, AMemberWithTwoGroupsIsReportedInBoth)
{
    Pipe ready;
    Pipe release;
    Client parent_a;
    Client parent_b;
    ASSERT_TRUE(parent_a.ok() && parent_b.ok());
    ASSERT_EQ(parent_a.join("group-a"), CS_OK);
    ASSERT_EQ(parent_b.join("group-b"), CS_OK);
    ChildProcess child([&]() -> int {
        ready.close_read();
        release.close_write();
        auto* a = new Client(Client::Options{.retry_init = true});
        auto* b = new Client(Client::Options{.retry_init = true});
        if (!a->ok() || !b->ok() || a->join("group-a") != CS_OK || b->join("group-b") != CS_OK) {
            return 2;
        }
        ready.write_byte('j');
        release.wait_eof(kHoldTimeout);
        return 0;
    });
    ASSERT_TRUE(child.started());
    ready.close_write();
    release.close_read();
    ASSERT_EQ(ready.read_byte(), 'j');
    child.kill(SIGKILL);
    EXPECT_EQ(child.wait(), 128 + SIGKILL);
    for (Client* parent : {&parent_a, &parent_b}) {
        ASSERT_TRUE(parent->pump_until([&] {
            const auto confchgs = parent->rec.of(Event::confchg);
            return !confchgs.empty() && !confchgs.back()->left.empty();
        }));
        const Event* gone = parent->rec.of(Event::confchg).back();
        ASSERT_EQ(gone->left.size(), 1u);
        EXPECT_EQ(gone->left[0].pid, static_cast<uint32_t>(child.pid()));
        EXPECT_EQ(gone->left[0].reason, static_cast<uint32_t>(CPG_REASON_PROCDOWN));
    }
}

}  // namespace
}  // namespace rcpg::conformance
