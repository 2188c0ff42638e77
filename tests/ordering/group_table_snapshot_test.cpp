// GroupTable snapshot and restore (what a node joining a running cluster rebuilds its table
// from), and the two lookups the cluster code uses: name_of(group id) and
// processes_of_node(nodeid). A restored table must behave exactly like the original for
// every later change; an inconsistent snapshot is refused and leaves the table as it was.
#include "ordering/group_table.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>
#include <string_view>
#include <vector>

namespace rcpg::ordering {

// Readable failure messages: names as text, processes as (nodeid, pid).
void PrintTo(const GroupName& name, std::ostream* out)
{
    *out << '"' << std::string_view(name.value.data(), std::min<size_t>(name.length, name.value.size())) << "\" (length "
         << name.length << ')';
}
void PrintTo(const ProcessId& process, std::ostream* out) { *out << '(' << process.nodeid << ", " << process.pid << ')'; }

namespace {

GroupName group_named(std::string_view text)
{
    GroupName name;
    name.length = static_cast<uint32_t>(text.size());
    std::memcpy(name.value.data(), text.data(), text.size());
    return name;
}

void expect_same_change(const GroupChange& actual, const GroupChange& expected)
{
    EXPECT_EQ(actual.group_id, expected.group_id);
    EXPECT_EQ(actual.name, expected.name);
    auto same = [](const std::vector<delivery::MemberAddress>& a, const std::vector<delivery::MemberAddress>& b) {
        if (a.size() != b.size()) {
            return false;
        }
        for (size_t i = 0; i < a.size(); ++i) {
            if (a[i].nodeid != b[i].nodeid || a[i].pid != b[i].pid || a[i].reason != b[i].reason) {
                return false;
            }
        }
        return true;
    };
    EXPECT_TRUE(same(actual.left, expected.left)) << "left";
    EXPECT_TRUE(same(actual.joined, expected.joined)) << "joined";
    EXPECT_TRUE(same(actual.members, expected.members)) << "members";
}

void expect_same_snapshot(const GroupTable::Snapshot& actual, const GroupTable::Snapshot& expected)
{
    EXPECT_EQ(actual.next_group_id, expected.next_group_id);
    ASSERT_EQ(actual.groups.size(), expected.groups.size());
    for (size_t i = 0; i < expected.groups.size(); ++i) {
        EXPECT_EQ(actual.groups[i].id, expected.groups[i].id) << "group " << i;
        EXPECT_EQ(actual.groups[i].name, expected.groups[i].name) << "group " << i;
        EXPECT_EQ(actual.groups[i].members, expected.groups[i].members) << "group " << i;
    }
}

// "a" (id 1) and "c" (id 3) live; "b" (id 2) came and went, so the ids have a gap and the
// next id (4) is not one more than the number of groups.
GroupTable table_with_history()
{
    GroupTable table;
    table.join(group_named("a"), {1, 10});
    table.join(group_named("b"), {2, 20});
    table.join(group_named("c"), {2, 21});
    table.join(group_named("a"), {2, 22});
    EXPECT_TRUE(table.remove(group_named("b"), {{2, 20}}, delivery::reason_leave).has_value());
    return table;
}

TEST(GroupTableSnapshot, SnapshotListsGroupsByNameWithIdsAndTheNextId)
{
    const GroupTable::Snapshot snapshot = table_with_history().snapshot();
    EXPECT_EQ(snapshot.next_group_id, 4u) << "ids 1..3 were handed out";
    ASSERT_EQ(snapshot.groups.size(), 2u);
    EXPECT_EQ(snapshot.groups[0].name, group_named("a"));
    EXPECT_EQ(snapshot.groups[0].id, 1u);
    EXPECT_EQ(snapshot.groups[0].members, (std::vector<ProcessId>{{1, 10}, {2, 22}}));
    EXPECT_EQ(snapshot.groups[1].name, group_named("c"));
    EXPECT_EQ(snapshot.groups[1].id, 3u);
    EXPECT_EQ(snapshot.groups[1].members, (std::vector<ProcessId>{{2, 21}}));
}

TEST(GroupTableSnapshot, RestoredTableProducesTheSameChangesAsTheOriginal)
{
    GroupTable original = table_with_history();
    GroupTable restored;
    restored.join(group_named("stale"), {9, 90});  // replaced by the restore
    ASSERT_TRUE(restored.restore(original.snapshot()));
    expect_same_snapshot(restored.snapshot(), original.snapshot());
    EXPECT_FALSE(restored.group_id(group_named("stale")).has_value());

    // A new group: both hand out id 4.
    const GroupChange new_group = original.join(group_named("d"), {1, 11});
    EXPECT_EQ(new_group.group_id, 4u);
    expect_same_change(restored.join(group_named("d"), {1, 11}), new_group);
    // An existing group keeps its id and members.
    expect_same_change(restored.join(group_named("c"), {1, 12}), original.join(group_named("c"), {1, 12}));
    // Removals: same left list, same survivors, same id.
    auto removed_original = original.remove(group_named("a"), {{1, 10}, {2, 22}}, delivery::reason_node_down);
    auto removed_restored = restored.remove(group_named("a"), {{1, 10}, {2, 22}}, delivery::reason_node_down);
    ASSERT_TRUE(removed_original.has_value());
    ASSERT_TRUE(removed_restored.has_value());
    expect_same_change(*removed_restored, *removed_original);
    // "a" is gone from both; re-creating it gives the same fresh id on both.
    const GroupChange recreated = original.join(group_named("a"), {3, 30});
    EXPECT_EQ(recreated.group_id, 5u);
    expect_same_change(restored.join(group_named("a"), {3, 30}), recreated);
    expect_same_snapshot(restored.snapshot(), original.snapshot());
}

TEST(GroupTableSnapshot, RestoreKeepsANextIdBeyondTheGroupsIds)
{
    GroupTable::Snapshot snapshot;
    snapshot.next_group_id = 100;
    snapshot.groups.push_back({7, group_named("g"), {{1, 10}}});
    GroupTable table;
    ASSERT_TRUE(table.restore(snapshot));
    EXPECT_EQ(table.group_id(group_named("g")), 7u);
    EXPECT_EQ(table.join(group_named("h"), {1, 10}).group_id, 100u);
    EXPECT_EQ(table.snapshot().next_group_id, 101u);
}

TEST(GroupTableSnapshot, EmptySnapshotEmptiesTheTable)
{
    GroupTable table = table_with_history();
    ASSERT_TRUE(table.restore({}));
    EXPECT_EQ(table.group_count(), 0u);
    EXPECT_EQ(table.name_of(1), nullptr);
    EXPECT_EQ(table.join(group_named("a"), {1, 10}).group_id, 1u) << "next id 1, the default";
}

// Each inconsistent snapshot: restore returns false and the table is still table_with_history().
class GroupTableRejectedSnapshot : public ::testing::Test {
protected:
    void expect_rejected(const GroupTable::Snapshot& snapshot, const char* what)
    {
        GroupTable table = table_with_history();
        const GroupTable::Snapshot before = table.snapshot();
        EXPECT_FALSE(table.restore(snapshot)) << what;
        expect_same_snapshot(table.snapshot(), before);
        ASSERT_NE(table.name_of(3), nullptr) << what;
        EXPECT_EQ(*table.name_of(3), group_named("c")) << what;
        EXPECT_EQ(table.join(group_named("new"), {1, 1}).group_id, 4u) << what << ": the next id is unchanged";
    }
    static GroupTable::Snapshot valid()
    {
        GroupTable::Snapshot snapshot;
        snapshot.next_group_id = 10;
        snapshot.groups.push_back({5, group_named("x"), {{1, 10}}});
        snapshot.groups.push_back({6, group_named("y"), {{2, 20}}});
        return snapshot;
    }
};

TEST_F(GroupTableRejectedSnapshot, TheValidBaseIsAccepted)
{
    GroupTable table = table_with_history();
    EXPECT_TRUE(table.restore(valid())) << "so each rejection below comes from its one change";
}

TEST_F(GroupTableRejectedSnapshot, DuplicateName)
{
    GroupTable::Snapshot snapshot = valid();
    snapshot.groups[1].name = group_named("x");
    expect_rejected(snapshot, "two groups named x (ids 5, 6)");
}

TEST_F(GroupTableRejectedSnapshot, DuplicateId)
{
    GroupTable::Snapshot snapshot = valid();
    snapshot.groups[1].id = 5;
    expect_rejected(snapshot, "x and y both id 5");
}

TEST_F(GroupTableRejectedSnapshot, EmptyGroup)
{
    GroupTable::Snapshot snapshot = valid();
    snapshot.groups[1].members.clear();
    expect_rejected(snapshot, "y without members");
}

TEST_F(GroupTableRejectedSnapshot, GroupIdZero)
{
    GroupTable::Snapshot snapshot = valid();
    snapshot.groups[0].id = 0;
    expect_rejected(snapshot, "x with id 0");
}

TEST_F(GroupTableRejectedSnapshot, NextGroupIdZero)
{
    GroupTable::Snapshot snapshot = valid();
    snapshot.next_group_id = 0;
    expect_rejected(snapshot, "next_group_id 0");
}

// The next join of a new name must not hand out an id a live group has (data entries and
// clients tell groups apart by id): not when a snapshot names a live id as the next one,
// and not when ids wrap after 2^32 - 1.
TEST(GroupTableIds, NextIdOfALiveGroupIsSkipped)
{
    GroupTable::Snapshot snapshot;
    snapshot.next_group_id = 5;
    snapshot.groups.push_back({5, group_named("old"), {{1, 10}}});
    GroupTable table;
    ASSERT_TRUE(table.restore(snapshot));
    const GroupChange change = table.join(group_named("new"), {1, 11});
    EXPECT_EQ(change.group_id, 6u) << "5 is live: the next free id";
    ASSERT_NE(table.name_of(5), nullptr);
    EXPECT_EQ(*table.name_of(5), group_named("old"));
    ASSERT_NE(table.name_of(6), nullptr);
    EXPECT_EQ(*table.name_of(6), group_named("new"));
}

TEST(GroupTableIds, WrappedIdsSkipZeroTheEvsNumberAndLiveGroups)
{
    GroupTable::Snapshot snapshot;
    snapshot.next_group_id = 0xfffffffe;
    snapshot.groups.push_back({1, group_named("first"), {{1, 10}}});
    GroupTable table;
    ASSERT_TRUE(table.restore(snapshot));
    EXPECT_EQ(table.join(group_named("last"), {1, 11}).group_id, 0xfffffffeu);
    const GroupChange wrapped = table.join(group_named("wrapped"), {1, 12});
    EXPECT_EQ(wrapped.group_id, 2u) << "0xffffffff is EVS's (delivery::kEvsGroupId), 0 is never an id and 1 belongs "
                                       "to the live group \"first\"";
    ASSERT_NE(table.name_of(1), nullptr);
    EXPECT_EQ(*table.name_of(1), group_named("first"));
}

TEST(GroupTableIds, TwoTablesWithOneHistoryAgreeOnIdsAcrossTheWrap)
{
    // A member restores the sequencer's snapshot and applies the same joins after it: the
    // ids it computes must be the sequencer's, or it would refuse the sequencer's entries.
    GroupTable sequencer;
    GroupTable::Snapshot start;
    start.next_group_id = 0xfffffffe;
    start.groups.push_back({1, group_named("a"), {{1, 10}}});
    start.groups.push_back({3, group_named("b"), {{1, 11}}});
    ASSERT_TRUE(sequencer.restore(start));
    GroupTable member;
    ASSERT_TRUE(member.restore(sequencer.snapshot()));
    for (const char* name : {"c", "d", "e", "f"}) {
        const uint32_t at_sequencer = sequencer.join(group_named(name), {2, 20}).group_id;
        EXPECT_EQ(member.join(group_named(name), {2, 20}).group_id, at_sequencer) << name;
    }
    EXPECT_EQ(sequencer.snapshot().next_group_id, 6u) << "c took 0xfffffffe, d 2 (0xffffffff is EVS's), e 4, f 5";
}

TEST(GroupTableIds, ASnapshotGivingAGroupTheEvsNumberIsRefused)
{
    // EVS entries carry that number: a CPG group with it would be read as EVS traffic.
    GroupTable::Snapshot snapshot;
    snapshot.next_group_id = 1;
    snapshot.groups.push_back({delivery::kEvsGroupId, group_named("evs"), {{1, 10}}});
    GroupTable table;
    EXPECT_FALSE(table.restore(snapshot));
}

TEST(GroupTableLookups, NameOfFollowsGroupsAsTheyComeAndGo)
{
    GroupTable table = table_with_history();
    ASSERT_NE(table.name_of(1), nullptr);
    EXPECT_EQ(*table.name_of(1), group_named("a"));
    EXPECT_EQ(table.name_of(2), nullptr) << "b left: its id names nothing";
    ASSERT_NE(table.name_of(3), nullptr);
    EXPECT_EQ(*table.name_of(3), group_named("c"));
    EXPECT_EQ(table.name_of(0), nullptr);
    EXPECT_EQ(table.name_of(4), nullptr) << "not handed out yet";

    ASSERT_TRUE(table.remove(group_named("c"), {{2, 21}}, delivery::reason_process_down).has_value());
    EXPECT_EQ(table.name_of(3), nullptr) << "c's last member left";
}

TEST(GroupTableLookups, NameOfWorksAfterRestore)
{
    GroupTable table;
    ASSERT_TRUE(table.restore(table_with_history().snapshot()));
    ASSERT_NE(table.name_of(3), nullptr);
    EXPECT_EQ(*table.name_of(3), group_named("c"));
    EXPECT_EQ(table.name_of(2), nullptr);
}

TEST(GroupTableLookups, ProcessesOfNodeListsEachGroupWithThatNodesProcessesOnly)
{
    GroupTable table;
    table.join(group_named("b"), {2, 7});
    table.join(group_named("b"), {1, 5});
    table.join(group_named("b"), {2, 3});
    table.join(group_named("a"), {2, 9});
    table.join(group_named("c"), {3, 1});
    table.join(group_named("c"), {1, 1});

    const auto of_two = table.processes_of_node(2);
    ASSERT_EQ(of_two.size(), 2u) << "a and b have processes of node 2, c does not";
    EXPECT_EQ(of_two[0].first, group_named("a"));
    EXPECT_EQ(of_two[0].second, (std::vector<ProcessId>{{2, 9}}));
    EXPECT_EQ(of_two[1].first, group_named("b"));
    EXPECT_EQ(of_two[1].second, (std::vector<ProcessId>{{2, 3}, {2, 7}})) << "sorted by pid, node 1's 5 left out";

    const auto of_three = table.processes_of_node(3);
    ASSERT_EQ(of_three.size(), 1u);
    EXPECT_EQ(of_three[0].first, group_named("c"));
    EXPECT_EQ(of_three[0].second, (std::vector<ProcessId>{{3, 1}}));

    EXPECT_TRUE(table.processes_of_node(4).empty()) << "a node with no processes";
    EXPECT_TRUE(table.processes_of_node(0).empty());
}

TEST(GroupTableLookups, ProcessesOfNodeFindsTheHighestNodeId)
{
    GroupTable table;
    table.join(group_named("g"), {0xffffffff, 0xffffffff});
    table.join(group_named("g"), {0xfffffffe, 1});
    const auto found = table.processes_of_node(0xffffffff);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].second, (std::vector<ProcessId>{{0xffffffff, 0xffffffff}}));
}

TEST(GroupTableLookups, ProcessesOfNodeDrivesANodeDownRemoval)
{
    // What the sequencer does when a node leaves: remove each group's processes of it.
    GroupTable table = table_with_history();
    for (const auto& [group, processes] : table.processes_of_node(2)) {
        auto change = table.remove(group, processes, delivery::reason_node_down);
        ASSERT_TRUE(change.has_value());
        EXPECT_EQ(change->left.size(), processes.size());
    }
    EXPECT_TRUE(table.processes_of_node(2).empty());
    ASSERT_EQ(table.group_count(), 1u) << "c had only node 2's process";
    EXPECT_EQ(table.members(group_named("a")).size(), 1u);
}

}  // namespace
}  // namespace rcpg::ordering
