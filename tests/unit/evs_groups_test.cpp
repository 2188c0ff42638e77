// An EVS handle's groups (libcpg/evs_groups.hpp): which messages it delivers, by the seq
// at which each join and leave took effect.
#include "libcpg/evs_groups.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string_view>
#include <vector>

namespace {

using rcpg::libcpg::EvsGroups;
using rcpg::libcpg::EvsKey;

EvsKey key(std::string_view name)
{
    EvsKey out{};
    std::memcpy(out.data(), name.data(), std::min(name.size(), out.size()));
    return out;
}

// The keys a message names, as its payload carries them.
std::vector<std::byte> message_for(std::initializer_list<std::string_view> names)
{
    std::vector<std::byte> bytes;
    for (std::string_view name : names) {
        const EvsKey k = key(name);
        const auto* raw = reinterpret_cast<const std::byte*>(k.data());
        bytes.insert(bytes.end(), raw, raw + k.size());
    }
    return bytes;
}

TEST(EvsGroups, AJoinCountsFromItsSeqOn)
{
    EvsGroups groups;
    const EvsKey a = key("a");
    groups.join({&a, 1}, 10);
    EXPECT_FALSE(groups.delivers(message_for({"a"}), 9)) << "sequenced before the join";
    EXPECT_TRUE(groups.delivers(message_for({"a"}), 10));
    EXPECT_TRUE(groups.delivers(message_for({"b", "a"}), 11)) << "any one of its groups";
    EXPECT_FALSE(groups.delivers(message_for({"b"}), 12)) << "a group not joined";
    EXPECT_FALSE(groups.delivers({}, 13)) << "a message for no group";
}

TEST(EvsGroups, ALeaveStopsAtItsSeqAndMessagesBeforeItStillCount)
{
    EvsGroups groups;
    const EvsKey a = key("a");
    groups.join({&a, 1}, 1);
    groups.leave({&a, 1}, 1, 5);
    EXPECT_TRUE(groups.delivers(message_for({"a"}), 4)) << "sequenced before the leave, read after it";
    EXPECT_FALSE(groups.delivers(message_for({"a"}), 5));
    EXPECT_TRUE(groups.joined().empty());
}

TEST(EvsGroups, ADuplicateJoinNeedsTwoLeaves)
{
    EvsGroups groups;
    const EvsKey a = key("a");
    groups.join({&a, 1}, 1);
    groups.join({&a, 1}, 2);
    EXPECT_EQ(groups.joined().size(), 2u) << "kept twice, as corosync's list";
    groups.leave({&a, 1}, 1, 3);
    EXPECT_TRUE(groups.delivers(message_for({"a"}), 4)) << "still joined once";
    groups.leave({&a, 1}, 1, 5);
    EXPECT_FALSE(groups.delivers(message_for({"a"}), 6));
}

TEST(EvsGroups, OnlyTheGroupsTheDaemonLeftAreLeft)
{
    // The daemon stopped at the second group (CS_ERR_NOT_EXIST): one was left.
    EvsGroups groups;
    const std::vector<EvsKey> joined{key("a"), key("c")};
    groups.join(joined, 1);
    const std::vector<EvsKey> leaving{key("a"), key("b"), key("c")};
    groups.leave(leaving, 1, 2);
    EXPECT_FALSE(groups.delivers(message_for({"a"}), 3));
    EXPECT_TRUE(groups.delivers(message_for({"c"}), 3)) << "after the group not joined: not left";
    ASSERT_EQ(groups.joined().size(), 1u);
    EXPECT_EQ(groups.joined()[0], key("c"));
}

TEST(EvsGroups, KeysAreComparedOnAllTheirBytes)
{
    EvsGroups groups;
    EvsKey last = key("a");
    last[31] = 1;
    groups.join({&last, 1}, 1);
    EXPECT_FALSE(groups.delivers(message_for({"a"}), 2)) << "differs in byte 31 only";
    std::vector<std::byte> exact(reinterpret_cast<const std::byte*>(last.data()),
                                 reinterpret_cast<const std::byte*>(last.data()) + last.size());
    EXPECT_TRUE(groups.delivers(exact, 3));
}

TEST(EvsGroups, AJoinAndLeaveAtOneSeqCountsForNothing)
{
    EvsGroups groups;
    const EvsKey a = key("a");
    groups.join({&a, 1}, 7);
    groups.leave({&a, 1}, 1, 7);
    EXPECT_FALSE(groups.delivers(message_for({"a"}), 7));
    groups.join({&a, 1}, 8);
    EXPECT_TRUE(groups.delivers(message_for({"a"}), 8)) << "joined again";
}

}  // namespace
