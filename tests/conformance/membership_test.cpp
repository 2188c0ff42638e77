// Group membership: cpg_join (one group per handle, one handle per (process, group),
// EXIST otherwise), cpg_leave (NOT_EXIST when not joined or for a wrong name, the own
// leave confchg, nothing delivered afterwards, re-join allowed: rcpg's documented
// difference from 3.1.7), binary group names ("foo" and "foo\0" differ),
// cpg_membership_get (any group, empty group, sorted, reason 0, NULL arguments,
// capacity) and the contents of join/leave confchgs, including groups of more than
// CPG_MEMBERS_MAX (128) processes.
#include "tests/conformance/conformance.hpp"

#include <set>

namespace rcpg::conformance {
namespace {

using Membership = Conformance;

// A child that opens a handle, joins `group`, reports on `ready` and stays joined until
// `release` is closed. The report is two bytes: 'j' and 0, or 'i' (initialize) or 'e'
// (join) and the cs_error_t.
int stay_joined(const std::string& group, Pipe& ready, Pipe& release)
{
    ready.close_read();
    release.close_write();
    Client child(Client::Options{.retry_init = true});
    if (!child.ok()) {
        const char report[2] = {'i', static_cast<char>(child.init_result)};
        ready.write_bytes(report, 2);
        return 2;
    }
    if (const cs_error_t result = child.join(group); result != CS_OK) {
        const char report[2] = {'e', static_cast<char>(result)};
        ready.write_bytes(report, 2);
        return 3;
    }
    ready.write_bytes("j", 2);
    release.wait_eof(kHoldTimeout);
    return 0;
}

// Reads one report of stay_joined() as text: "j0" when joined, else e.g. "i6".
std::string read_report(Pipe& ready, std::chrono::milliseconds timeout = kEventTimeout)
{
    char report[2];
    if (!ready.read_bytes(report, 2, timeout)) {
        return "no report";
    }
    return std::string(1, report[0]) + std::to_string(static_cast<int>(report[1]));
}

TEST_F(Membership, SecondJoinOnTheSameHandleGivesExist)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("first"), CS_OK);
    EXPECT_EQ(client.join("first"), CS_ERR_EXIST) << "same group again";
    EXPECT_EQ(client.join("second"), CS_ERR_EXIST) << "one group per handle";
    ASSERT_TRUE(client.pump_until_count(Event::confchg, 1));
    EXPECT_EQ(client.join("first"), CS_ERR_EXIST) << "after the join confchg";
    EXPECT_EQ(client.join("second"), CS_ERR_EXIST);
    client.pump_for(50);
    EXPECT_EQ(client.rec.count(Event::confchg), 1u);
    EXPECT_EQ(members_of(client.handle, "second").size(), 0u);
}

TEST_F(Membership, AnotherHandleOfTheSameProcessCannotJoinTheSameGroup)
{
    Client a;
    Client b;
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE(b.ok());
    ASSERT_EQ(a.join("shared"), CS_OK);
    EXPECT_EQ(b.join("shared"), CS_ERR_EXIST);
    ASSERT_TRUE(a.pump_until_count(Event::confchg, 1));
    EXPECT_EQ(b.join("shared"), CS_ERR_EXIST);
    // b may still join some other group.
    EXPECT_EQ(b.join("not-shared"), CS_OK);
    ASSERT_TRUE(b.pump_until_count(Event::confchg, 1));
    EXPECT_EQ(b.rec.events[0].group, "not-shared");
    EXPECT_EQ(members_of(a.handle, "shared").size(), 1u);
    EXPECT_EQ(members_of(a.handle, "not-shared").size(), 1u);
}

TEST_F(Membership, LeaveWhenNotJoinedGivesNotExist)
{
    Client client;
    ASSERT_TRUE(client.ok());
    EXPECT_EQ(client.leave("never-joined"), CS_ERR_NOT_EXIST);
    ASSERT_EQ(client.join("joined"), CS_OK);
    ASSERT_EQ(client.leave("joined"), CS_OK);
    EXPECT_EQ(client.leave("joined"), CS_ERR_NOT_EXIST) << "second leave";
    ASSERT_TRUE(client.pump_until_count(Event::confchg, 2));
    EXPECT_EQ(client.leave("joined"), CS_ERR_NOT_EXIST) << "after the leave confchg";
}

TEST_F(Membership, LeaveWithAWrongNameGivesNotExistAndLeavesNothing)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("right"), CS_OK);
    ASSERT_TRUE(client.pump_until_count(Event::confchg, 1));
    EXPECT_EQ(client.leave("wrong"), CS_ERR_NOT_EXIST);
    EXPECT_EQ(client.leave("righ"), CS_ERR_NOT_EXIST);
    EXPECT_EQ(client.leave(std::string("right\0", 6)), CS_ERR_NOT_EXIST);
    client.pump_for(50);
    EXPECT_EQ(client.rec.count(Event::confchg), 1u) << "a wrong-name leave produced a confchg";
    const auto members = members_of(client.handle, "right");
    ASSERT_EQ(members.size(), 1u) << "still a member";
    EXPECT_EQ(members[0].pid, self_pid());
    // Still joined: messages flow and the right name leaves.
    ASSERT_EQ(client.send("still here"), CS_OK);
    ASSERT_TRUE(client.pump_until_body("still here"));
    EXPECT_EQ(client.leave("right"), CS_OK);
    ASSERT_TRUE(client.pump_until_count(Event::confchg, 2));
}

TEST_F(Membership, OwnLeaveConfchgListsSelfAsLeftWithReasonLeave)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("leaving"), CS_OK);
    ASSERT_EQ(client.send("before leave"), CS_OK);
    ASSERT_EQ(client.leave("leaving"), CS_OK);
    ASSERT_TRUE(client.pump_until_count(Event::confchg, 2));
    // Everything the leaver sent before cpg_leave comes before its leave.
    ASSERT_EQ(client.rec.events.size(), 3u);
    EXPECT_EQ(client.rec.events[0].kind, Event::confchg);
    EXPECT_EQ(client.rec.events[1].body, "before leave");
    const Event& leave = client.rec.events[2];
    ASSERT_EQ(leave.kind, Event::confchg);
    EXPECT_EQ(leave.group, "leaving");
    ASSERT_EQ(leave.left.size(), 1u);
    EXPECT_EQ(leave.left[0].nodeid, 1u);
    EXPECT_EQ(leave.left[0].pid, self_pid());
    EXPECT_EQ(leave.left[0].reason, static_cast<uint32_t>(CPG_REASON_LEAVE));
    EXPECT_TRUE(leave.joined.empty());
    EXPECT_FALSE(contains(leave.members, 1, self_pid()));
    EXPECT_TRUE(leave.members.empty());
    EXPECT_TRUE(members_of(client.handle, "leaving").empty());
}

TEST_F(Membership, OtherMembersSeeALeaveWithReasonLeave)
{
    Pipe ready;
    Pipe left;
    Pipe release;
    Client parent;
    ASSERT_TRUE(parent.ok());
    ASSERT_EQ(parent.join("watched-leave"), CS_OK);
    ASSERT_TRUE(parent.pump_until_count(Event::confchg, 1));
    ChildProcess child([&]() -> int {
        ready.close_read();
        left.close_read();
        release.close_write();
        Client leaver;
        if (!leaver.ok() || leaver.join("watched-leave") != CS_OK) {
            return 2;
        }
        if (!leaver.pump_until_count(Event::confchg, 1)) {
            return 3;
        }
        ready.write_byte('j');
        if (leaver.leave("watched-leave") != CS_OK) {
            return 4;
        }
        // The leaver's own view: itself left, the parent remains.
        if (!leaver.pump_until_count(Event::confchg, 2)) {
            return 5;
        }
        const Event& own = leaver.rec.events.back();
        const bool good = own.left.size() == 1 && own.left[0].pid == self_pid() &&
                          own.left[0].reason == CPG_REASON_LEAVE && own.members.size() == 1 &&
                          !contains(own.members, 1, self_pid());
        left.write_byte(good ? 'l' : 'x');
        release.wait_eof(kEventTimeout);
        return 0;
    });
    ASSERT_TRUE(child.started());
    ready.close_write();
    left.close_write();
    release.close_read();
    ASSERT_EQ(ready.read_byte(), 'j');
    EXPECT_EQ(left.read_byte(), 'l') << "the leaver's own leave confchg was wrong";
    ASSERT_TRUE(parent.pump_until_count(Event::confchg, 3));
    const Event& leave = parent.rec.events.back();
    ASSERT_EQ(leave.left.size(), 1u);
    EXPECT_EQ(leave.left[0].pid, static_cast<uint32_t>(child.pid()));
    EXPECT_EQ(leave.left[0].nodeid, 1u);
    EXPECT_EQ(leave.left[0].reason, static_cast<uint32_t>(CPG_REASON_LEAVE));
    ASSERT_EQ(leave.members.size(), 1u);
    EXPECT_EQ(leave.members[0].pid, self_pid());
    EXPECT_EQ(leave.members[0].reason, 0u);
    EXPECT_TRUE(leave.joined.empty());
    release.close_write();
    EXPECT_EQ(child.wait(), 0);
    // A process that left and then exits is not reported again.
    parent.pump_for(kQuietMs);
    EXPECT_EQ(parent.rec.count(Event::confchg), 3u) << "a PROCDOWN followed the LEAVE";
}

TEST_F(Membership, NothingOfTheGroupIsDeliveredAfterTheLeave)
{
    Client leaver;
    ASSERT_TRUE(leaver.ok());
    ASSERT_EQ(leaver.join("after-leave"), CS_OK);
    ASSERT_EQ(leaver.leave("after-leave"), CS_OK);
    ASSERT_TRUE(leaver.pump_until_count(Event::confchg, 2));
    const size_t events_before = leaver.rec.events.size();
    // Having left, this process may join again on another handle; that handle's join
    // and messages are the group's traffic the leaver must not see.
    Client stayer;
    ASSERT_TRUE(stayer.ok());
    ASSERT_EQ(stayer.join("after-leave"), CS_OK);
    ASSERT_EQ(stayer.send("after the leave"), CS_OK);
    ASSERT_TRUE(stayer.pump_until_body("after the leave"));
    // Sent while not a member: dropped, still OK.
    ASSERT_EQ(leaver.send("leaver after leave"), CS_OK);
    ASSERT_EQ(stayer.send("sync"), CS_OK);
    ASSERT_TRUE(stayer.pump_until_body("sync"));
    EXPECT_FALSE(stayer.rec.has_body("leaver after leave"));
    EXPECT_FALSE(fd_readable(leaver.fd(), kQuietMs));
    EXPECT_EQ(cpg_dispatch(leaver.handle, CS_DISPATCH_ONE_NONBLOCKING), CS_ERR_TRY_AGAIN);
    EXPECT_EQ(cpg_dispatch(leaver.handle, CS_DISPATCH_ALL), CS_OK);
    EXPECT_EQ(leaver.rec.events.size(), events_before) << "the handle heard the group after its leave";
}

TEST_F(Membership, RejoinAfterTheLeaveConfchgWorks)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("again"), CS_OK);
    ASSERT_EQ(client.leave("again"), CS_OK);
    ASSERT_TRUE(client.pump_until_count(Event::confchg, 2));
    ASSERT_EQ(client.join("again"), CS_OK) << "re-join of the same group";
    ASSERT_TRUE(client.pump_until_count(Event::confchg, 3));
    const Event& rejoin = client.rec.events.back();
    ASSERT_EQ(rejoin.joined.size(), 1u);
    EXPECT_EQ(rejoin.joined[0].pid, self_pid());
    EXPECT_EQ(rejoin.joined[0].reason, static_cast<uint32_t>(CPG_REASON_JOIN));
    ASSERT_EQ(client.send("back again"), CS_OK);
    ASSERT_TRUE(client.pump_until_body("back again"));
    ASSERT_EQ(client.rec.count(Event::message), 1u);
    // And then a different group on the same handle.
    ASSERT_EQ(client.leave("again"), CS_OK);
    ASSERT_TRUE(client.pump_until_count(Event::confchg, 4));
    ASSERT_EQ(client.join("elsewhere"), CS_OK) << "join of another group after a leave";
    ASSERT_TRUE(client.pump_until_count(Event::confchg, 5));
    EXPECT_EQ(client.rec.events.back().group, "elsewhere");
    ASSERT_EQ(client.send("elsewhere too"), CS_OK);
    ASSERT_TRUE(client.pump_until_body("elsewhere too"));
    EXPECT_EQ(client.rec.of(Event::message).back()->group, "elsewhere");
}

TEST_F(Membership, RejoinBeforeTheLeaveConfchgIsDispatchedAsksToRetry)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("quick-rejoin"), CS_OK);
    ASSERT_EQ(client.leave("quick-rejoin"), CS_OK);
    // The old membership is still being removed: TRY_AGAIN (never EXIST, never a hang).
    const cpg_handle_t handle = client.handle;
    const auto early = Background<cs_error_t>([handle] {
                           const cpg_name name = group_named("quick-rejoin");
                           return cpg_join(handle, &name);
                       }).wait(kEventTimeout);
    ASSERT_TRUE(early.has_value()) << "cpg_join hung";
    EXPECT_TRUE(*early == CS_ERR_TRY_AGAIN || *early == CS_OK) << "returned " << *early;
    if (*early == CS_ERR_TRY_AGAIN) {
        ASSERT_TRUE(client.pump_until_count(Event::confchg, 2));
        ASSERT_EQ(client.join("quick-rejoin"), CS_OK);
    }
    ASSERT_TRUE(client.pump_until_count(Event::confchg, 3));
    const auto confchgs = client.rec.of(Event::confchg);
    EXPECT_EQ(confchgs[0]->joined.size(), 1u);
    EXPECT_EQ(confchgs[1]->left.size(), 1u);
    EXPECT_EQ(confchgs[2]->joined.size(), 1u);
    const auto members = members_of(client.handle, "quick-rejoin");
    ASSERT_EQ(members.size(), 1u);
    EXPECT_EQ(members[0].pid, self_pid());
}

TEST_F(Membership, NamesWithAndWithoutTheTrailingNulAreDifferentGroups)
{
    Client plain;
    Client with_nul;
    Client embedded;
    ASSERT_TRUE(plain.ok() && with_nul.ok() && embedded.ok());
    const std::string foo = "foo";
    const std::string foo_nul("foo\0", 4);
    const std::string foo_embedded("fo\0o", 4);
    // All in one process: EXIST if any two were the same group.
    ASSERT_EQ(plain.join(foo), CS_OK);
    ASSERT_EQ(with_nul.join(foo_nul), CS_OK);
    ASSERT_EQ(embedded.join(foo_embedded), CS_OK);
    EXPECT_EQ(members_of(plain.handle, foo).size(), 1u);
    EXPECT_EQ(members_of(plain.handle, foo_nul).size(), 1u);
    EXPECT_EQ(members_of(plain.handle, foo_embedded).size(), 1u);
    ASSERT_TRUE(with_nul.pump_until_count(Event::confchg, 1));
    EXPECT_EQ(with_nul.rec.events[0].group, foo_nul);
    ASSERT_TRUE(embedded.pump_until_count(Event::confchg, 1));
    EXPECT_EQ(embedded.rec.events[0].group, foo_embedded);

    ASSERT_EQ(plain.send("to foo"), CS_OK);
    ASSERT_TRUE(plain.pump_until_body("to foo"));
    ASSERT_EQ(with_nul.send("to foo nul"), CS_OK);
    ASSERT_TRUE(with_nul.pump_until_body("to foo nul"));
    ASSERT_EQ(embedded.send("to fo nul o"), CS_OK);
    ASSERT_TRUE(embedded.pump_until_body("to fo nul o"));
    plain.pump_for(50);
    EXPECT_EQ(plain.rec.bodies(), std::vector<std::string>{"to foo"});
    EXPECT_EQ(with_nul.rec.bodies(), std::vector<std::string>{"to foo nul"});
    EXPECT_EQ(embedded.rec.bodies(), std::vector<std::string>{"to fo nul o"});
}

TEST_F(Membership, MembershipGetWorksForAnyGroupWithoutJoining)
{
    Pipe ready;
    Pipe release;
    ChildProcess child([&] { return stay_joined("theirs", ready, release); });
    ASSERT_TRUE(child.started());
    ready.close_write();
    release.close_read();
    ASSERT_EQ(read_report(ready), "j0");
    Client observer;
    ASSERT_TRUE(observer.ok());
    cs_error_t result = CS_ERR_LIBRARY;
    const auto members = members_of(observer.handle, "theirs", &result);
    EXPECT_EQ(result, CS_OK);
    ASSERT_EQ(members.size(), 1u);
    EXPECT_EQ(members[0].nodeid, 1u);
    EXPECT_EQ(members[0].pid, static_cast<uint32_t>(child.pid()));
    EXPECT_EQ(members[0].reason, 0u);
    release.close_write();
    EXPECT_EQ(child.wait(), 0);
}

TEST_F(Membership, MembershipGetOfAnEmptyGroupGivesZero)
{
    Client client;
    ASSERT_TRUE(client.ok());
    cpg_name name = group_named("nobody-here");
    cpg_address list[4];
    int count = 4;
    ASSERT_EQ(cpg_membership_get(client.handle, &name, list, &count), CS_OK);
    EXPECT_EQ(count, 0);
    cpg_name empty{};
    count = 4;
    ASSERT_EQ(cpg_membership_get(client.handle, &empty, list, &count), CS_OK);
    EXPECT_EQ(count, 0);
}

TEST_F(Membership, MembershipGetWithNullListOrCountGivesInvalidParam)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("nulls"), CS_OK);
    cpg_name name = group_named("nulls");
    cpg_address list[4];
    int count = 4;
    EXPECT_EQ(cpg_membership_get(client.handle, &name, nullptr, &count), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_membership_get(client.handle, &name, list, nullptr), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_membership_get(client.handle, &name, nullptr, nullptr), CS_ERR_INVALID_PARAM);
}

// Forks `count` children that join `group` in the reverse order of their pids, so a
// list sorted by pid is not just the join order.
class Members {
public:
    Members(const std::string& group, size_t count) : go_(count)
    {
        for (size_t i = 0; i < count; ++i) {
            Pipe& go = go_[i];
            children_.push_back(std::make_unique<ChildProcess>([&]() -> int {
                ready_.close_read();
                release_.close_write();
                Client child(Client::Options{.retry_init = true});
                if (!child.ok()) {
                    ready_.write_byte('i');
                    return 2;
                }
                if (!go.read_byte(kEventTimeout)) {
                    return 3;
                }
                if (child.join(group) != CS_OK) {
                    ready_.write_byte('e');
                    return 4;
                }
                ready_.write_byte('j');
                release_.wait_eof(kHoldTimeout);
                return 0;
            }));
        }
        ready_.close_write();
        release_.close_read();
        for (auto& go : go_) {
            go.close_read();
        }
    }
    // Lets the children join one at a time, highest pid first.
    bool join_all()
    {
        std::vector<size_t> order(children_.size());
        for (size_t i = 0; i < order.size(); ++i) {
            order[i] = i;
        }
        std::sort(order.begin(), order.end(),
                  [&](size_t a, size_t b) { return children_[a]->pid() > children_[b]->pid(); });
        for (size_t index : order) {
            go_[index].write_byte('g');
            if (ready_.read_byte() != 'j') {
                return false;
            }
        }
        return true;
    }
    void release() { release_.close_write(); }
    std::vector<uint32_t> pids() const
    {
        std::vector<uint32_t> out;
        for (const auto& child : children_) {
            out.push_back(static_cast<uint32_t>(child->pid()));
        }
        return out;
    }
    ChildProcess& child(size_t i) { return *children_[i]; }
    size_t size() const { return children_.size(); }

private:
    Pipe ready_;
    Pipe release_;
    std::vector<Pipe> go_;
    std::vector<std::unique_ptr<ChildProcess>> children_;
};

TEST_F(Membership, MembershipGetIsSortedByNodeAndPidWithReasonZero)
{
    Client parent;
    ASSERT_TRUE(parent.ok());
    ASSERT_EQ(parent.join("sorted"), CS_OK);
    Members members("sorted", 6);
    ASSERT_TRUE(members.join_all());
    const auto list = members_of(parent.handle, "sorted");
    ASSERT_EQ(list.size(), 7u);
    EXPECT_TRUE(sorted_by_node_pid(list));
    for (const auto& entry : list) {
        EXPECT_EQ(entry.nodeid, 1u);
        EXPECT_EQ(entry.reason, 0u);
    }
    EXPECT_TRUE(contains(list, 1, self_pid()));
    for (uint32_t pid : members.pids()) {
        EXPECT_TRUE(contains(list, 1, pid)) << pid;
    }
    // Every confchg the parent saw on the way lists the members sorted, reason 0.
    ASSERT_TRUE(parent.pump_until_count(Event::confchg, 7));
    for (const Event* confchg : parent.rec.of(Event::confchg)) {
        EXPECT_TRUE(sorted_by_node_pid(confchg->members));
        for (const auto& entry : confchg->members) {
            EXPECT_EQ(entry.reason, 0u);
        }
    }
    members.release();
    for (size_t i = 0; i < members.size(); ++i) {
        EXPECT_EQ(members.child(i).wait(), 0);
    }
}

TEST_F(Membership, MembershipGetHonoursTheCapacity)
{
    Client parent;
    ASSERT_TRUE(parent.ok());
    ASSERT_EQ(parent.join("capacity"), CS_OK);
    Members members("capacity", 4);
    ASSERT_TRUE(members.join_all());
    const auto all = members_of(parent.handle, "capacity");
    ASSERT_EQ(all.size(), 5u);
    cpg_name name = group_named("capacity");
    for (int capacity : {1, 2, 4}) {
        SCOPED_TRACE("capacity " + std::to_string(capacity));
        std::vector<cpg_address> list(8, cpg_address{0xaaaa, 0xbbbb, 0xcccc});
        int count = capacity;
        ASSERT_EQ(cpg_membership_get(parent.handle, &name, list.data(), &count), CS_OK);
        EXPECT_EQ(count, capacity);
        for (int i = 0; i < capacity; ++i) {
            EXPECT_EQ(list[i].pid, all[i].pid) << i;
        }
        for (size_t i = static_cast<size_t>(capacity); i < list.size(); ++i) {
            EXPECT_EQ(list[i].pid, 0xbbbbu) << "written beyond the capacity at " << i;
        }
    }
    // Outside 1..384: the most corosync writes (384).
    for (int capacity : {0, -1, 385, 100000}) {
        SCOPED_TRACE("capacity " + std::to_string(capacity));
        std::vector<cpg_address> list(400);
        int count = capacity;
        ASSERT_EQ(cpg_membership_get(parent.handle, &name, list.data(), &count), CS_OK);
        EXPECT_EQ(count, 5);
    }
    members.release();
    for (size_t i = 0; i < members.size(); ++i) {
        EXPECT_EQ(members.child(i).wait(), 0);
    }
}

TEST_F(Membership, JoinOfAnotherProcessIsSeenWithReasonJoin)
{
    Pipe ready;
    Pipe release;
    Client parent;
    ASSERT_TRUE(parent.ok());
    ASSERT_EQ(parent.join("joining"), CS_OK);
    ASSERT_TRUE(parent.pump_until_count(Event::confchg, 1));
    // The parent's own join confchg.
    const Event& own = parent.rec.events[0];
    ASSERT_EQ(own.joined.size(), 1u);
    EXPECT_EQ(own.joined[0].pid, self_pid());
    EXPECT_EQ(own.joined[0].nodeid, 1u);
    EXPECT_EQ(own.joined[0].reason, static_cast<uint32_t>(CPG_REASON_JOIN));
    ASSERT_EQ(own.members.size(), 1u);
    EXPECT_TRUE(own.left.empty());

    ChildProcess child([&] { return stay_joined("joining", ready, release); });
    ASSERT_TRUE(child.started());
    ready.close_write();
    release.close_read();
    ASSERT_EQ(read_report(ready), "j0");
    ASSERT_TRUE(parent.pump_until_count(Event::confchg, 2));
    const Event& theirs = parent.rec.events[1];
    EXPECT_EQ(theirs.group, "joining");
    ASSERT_EQ(theirs.joined.size(), 1u);
    EXPECT_EQ(theirs.joined[0].pid, static_cast<uint32_t>(child.pid()));
    EXPECT_EQ(theirs.joined[0].nodeid, 1u);
    EXPECT_EQ(theirs.joined[0].reason, static_cast<uint32_t>(CPG_REASON_JOIN));
    EXPECT_TRUE(theirs.left.empty());
    ASSERT_EQ(theirs.members.size(), 2u);
    EXPECT_TRUE(contains(theirs.members, 1, self_pid()));
    EXPECT_TRUE(contains(theirs.members, 1, static_cast<uint32_t>(child.pid())));
    EXPECT_TRUE(sorted_by_node_pid(theirs.members));
    release.close_write();
    EXPECT_EQ(child.wait(), 0);
}

TEST_F(Membership, MoreThan128MembersAreListedAndDeliveredComplete)
{
    constexpr size_t kChildren = 150;
    Pipe ready;
    Pipe release;
    std::vector<std::unique_ptr<ChildProcess>> children;
    for (size_t i = 0; i < kChildren; ++i) {
        children.push_back(std::make_unique<ChildProcess>([&] { return stay_joined("crowd", ready, release); }));
        ASSERT_TRUE(children.back()->started());
    }
    ready.close_write();
    release.close_read();
    for (size_t i = 0; i < kChildren; ++i) {
        ASSERT_EQ(read_report(ready, kEventTimeout), "j0") << "child " << i;
    }
    Client parent;
    ASSERT_TRUE(parent.ok());
    const auto before = members_of(parent.handle, "crowd");
    EXPECT_EQ(before.size(), kChildren);
    EXPECT_TRUE(sorted_by_node_pid(before));
    // Capacity 128 is honoured even when there are more.
    {
        cpg_name name = group_named("crowd");
        std::vector<cpg_address> list(200, cpg_address{0, 0xbbbb, 0});
        int count = CPG_MEMBERS_MAX;
        ASSERT_EQ(cpg_membership_get(parent.handle, &name, list.data(), &count), CS_OK);
        EXPECT_EQ(count, CPG_MEMBERS_MAX);
        EXPECT_EQ(list[CPG_MEMBERS_MAX].pid, 0xbbbbu);
    }
    // The parent's own join confchg carries all 151 members.
    ASSERT_EQ(parent.join("crowd"), CS_OK);
    ASSERT_TRUE(parent.pump_until_count(Event::confchg, 1));
    const Event own = parent.rec.events[0];
    ASSERT_EQ(own.members.size(), kChildren + 1);
    EXPECT_TRUE(sorted_by_node_pid(own.members));
    EXPECT_TRUE(contains(own.members, 1, self_pid()));
    for (const auto& child : children) {
        EXPECT_TRUE(contains(own.members, 1, static_cast<uint32_t>(child->pid()))) << child->pid();
    }
    EXPECT_EQ(members_of(parent.handle, "crowd").size(), kChildren + 1);
    // Everyone else goes: each departure is a confchg with the full remaining list.
    release.close_write();
    ASSERT_TRUE(parent.pump_until(
        [&] {
            size_t gone = 0;
            for (const Event* confchg : parent.rec.of(Event::confchg)) {
                gone += confchg->left.size();
            }
            return gone >= kChildren;
        },
        kEventTimeout));
    size_t expected_members = kChildren + 1;
    std::set<uint32_t> left_pids;
    for (const Event* confchg : parent.rec.of(Event::confchg)) {
        if (confchg->left.empty()) {
            continue;
        }
        expected_members -= confchg->left.size();
        EXPECT_EQ(confchg->members.size(), expected_members);
        EXPECT_TRUE(sorted_by_node_pid(confchg->members));
        for (const auto& entry : confchg->left) {
            EXPECT_EQ(entry.reason, static_cast<uint32_t>(CPG_REASON_PROCDOWN));
            left_pids.insert(entry.pid);
        }
    }
    EXPECT_EQ(left_pids.size(), kChildren);
    EXPECT_EQ(parent.rec.of(Event::confchg).back()->members.size(), 1u);
    for (const auto& child : children) {
        EXPECT_EQ(child->wait(), 0);
    }
}

}  // namespace
}  // namespace rcpg::conformance
