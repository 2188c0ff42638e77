// GroupTable: the confchg each membership change produces, and the join rules.
#include "ordering/group_table.hpp"

#include <gtest/gtest.h>

namespace rcpg::ordering {
namespace {

GroupName name_of(const char* text, size_t length)
{
    return GroupName::from(text, static_cast<uint32_t>(length));
}

TEST(GroupTable, JoinProducesSortedMembersAndTheJoinedProcess)
{
    GroupTable table;
    const GroupName group = name_of("g", 1);
    table.join(group, {2, 20});
    const GroupChange change = table.join(group, {1, 10});
    ASSERT_EQ(change.joined.size(), 1u);
    EXPECT_EQ(change.joined[0].nodeid, 1u);
    EXPECT_EQ(change.joined[0].pid, 10u);
    EXPECT_EQ(change.joined[0].reason, delivery::reason_join);
    ASSERT_EQ(change.members.size(), 2u);
    EXPECT_EQ(change.members[0].pid, 10u);  // sorted by (nodeid, pid)
    EXPECT_EQ(change.members[1].pid, 20u);
    EXPECT_EQ(change.members[0].reason, delivery::reason_undefined);
}

TEST(GroupTable, SameProcessCannotJoinTheSameGroupTwice)
{
    GroupTable table;
    const GroupName group = name_of("g", 1);
    table.join(group, {1, 10});
    EXPECT_EQ(table.check_join(group, {1, 10}), JoinCheck::already_member);
    EXPECT_EQ(table.check_join(group, {1, 11}), JoinCheck::allowed);
    EXPECT_EQ(table.check_join(name_of("h", 1), {1, 10}), JoinCheck::allowed);
}

TEST(GroupTable, NamesCompareByLengthAndBytesIncludingTheNul)
{
    GroupTable table;
    table.join(name_of("foo", 3), {1, 10});
    EXPECT_EQ(table.check_join(name_of("foo\0", 4), {1, 10}), JoinCheck::allowed);
    EXPECT_TRUE(table.members(name_of("foo\0", 4)).empty());
}

TEST(GroupTable, RemoveReportsReasonAndDropsEmptyGroups)
{
    GroupTable table;
    const GroupName group = name_of("g", 1);
    const uint32_t id = table.join(group, {1, 10}).group_id;
    table.join(group, {1, 11});
    auto change = table.remove(group, {{1, 10}}, delivery::reason_process_down);
    ASSERT_TRUE(change.has_value());
    EXPECT_EQ(change->group_id, id);
    ASSERT_EQ(change->left.size(), 1u);
    EXPECT_EQ(change->left[0].reason, delivery::reason_process_down);
    EXPECT_EQ(change->members.size(), 1u);
    EXPECT_FALSE(table.remove(group, {{1, 10}}, delivery::reason_leave).has_value());
    ASSERT_TRUE(table.remove(group, {{1, 11}}, delivery::reason_leave).has_value());
    EXPECT_EQ(table.group_count(), 0u);
    EXPECT_FALSE(table.group_id(group).has_value());
}

TEST(GroupTable, RowsAreGroupedByName)
{
    GroupTable table;
    table.join(name_of("b", 1), {1, 2});
    table.join(name_of("a", 1), {1, 3});
    table.join(name_of("b", 1), {1, 1});
    const auto rows = table.rows();
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[0].group, name_of("a", 1));
    EXPECT_EQ(rows[1].group, name_of("b", 1));
    EXPECT_EQ(rows[1].process.pid, 1u);
    EXPECT_EQ(rows[2].process.pid, 2u);
}

}  // namespace
}  // namespace rcpg::ordering
