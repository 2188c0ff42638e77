// Election: who is waited for, when the waiting ends, which tail is the target and who
// holds it, and what losing a survivor does to a target already fixed.
#include "ordering/election.hpp"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace rcpg::ordering {
namespace {

// Node 2 takes over from node 1 in the view {1, 2, 3, 4}; its own ring ends at 1000.
Election election_at_node_2()
{
    Election election(2, {1, 2, 3, 4}, 100, 1100);
    election.add_own({1000, 10, 500});
    return election;
}

// Plans `count` one-page reads of the repair and posts them all.
void post_reads(Election& election, uint64_t count)
{
    std::vector<PositionRange> pieces;
    for (uint64_t index = 0; index < count; ++index) {
        pieces.push_back({1000 + index * 4096, 1000 + (index + 1) * 4096});
    }
    election.plan_reads(pieces);
    while (election.next_read() != nullptr) {
        election.read_posted();
    }
}

TEST(Election, WaitsForEveryUnsuspectedNodeOfTheViewUntilTheDeadline)
{
    Election election = election_at_node_2();
    const std::set<uint32_t> suspects{1};  // the lost sequencer
    EXPECT_FALSE(election.answers_in(suspects, 100));
    election.add(3, {1200, 12, 600});
    EXPECT_FALSE(election.answers_in(suspects, 1099)) << "node 4 has not answered";
    EXPECT_TRUE(election.answers_in(suspects, 1100)) << "the deadline passed";
    election.add(4, {900, 9, 400});
    EXPECT_TRUE(election.answers_in(suspects, 101));
    EXPECT_EQ(election.survivors(), (std::vector<uint32_t>{2, 3, 4}));
}

TEST(Election, TakesOnlyUnsuspectedNodesOfTheViewAndOnlyBeforeTheTargetIsFixed)
{
    Election election = election_at_node_2();
    const std::set<uint32_t> suspects{1};
    EXPECT_FALSE(election.accepts(1, suspects)) << "the lost sequencer";
    EXPECT_FALSE(election.accepts(5, suspects)) << "not of the view";
    EXPECT_FALSE(election.accepts(2, suspects)) << "this node";
    EXPECT_TRUE(election.accepts(3, suspects));
    election.fix_target();
    EXPECT_FALSE(election.accepts(3, suspects)) << "too late: the repair would have to start again";
}

TEST(Election, TheTargetIsTheLongestTailAndThisNodeHoldsItOnATie)
{
    Election election = election_at_node_2();
    election.add(3, {1000, 10, 500});
    election.fix_target();
    EXPECT_EQ(election.target(), 1000u);
    EXPECT_EQ(election.holder(), 2u) << "a tie: nothing to read";
    EXPECT_TRUE(election.repaired());

    Election longer = election_at_node_2();
    longer.add(3, {1200, 12, 600});
    longer.add(4, {1400, 14, 700});
    longer.fix_target();
    EXPECT_EQ(longer.target(), 1400u);
    EXPECT_EQ(longer.holder(), 4u);
}

TEST(Election, TheRepairIsDoneWhenEveryReadFromTheHolderLanded)
{
    Election election = election_at_node_2();
    election.add(3, {1400, 14, 700});
    election.fix_target();
    post_reads(election, 2);
    EXPECT_FALSE(election.repaired());
    election.read_completed(4);  // not the holder
    election.read_completed(3);
    EXPECT_FALSE(election.repaired());
    election.read_completed(3);
    EXPECT_TRUE(election.repaired());
}

TEST(Election, LosingTheHolderChoosesTheTargetAgainAndItsLateReadsCountForNothing)
{
    Election election = election_at_node_2();
    election.add(3, {1200, 12, 600});
    election.add(4, {1400, 14, 700});
    election.fix_target();
    post_reads(election, 1);
    election.lose(4);
    EXPECT_FALSE(election.target().has_value());
    EXPECT_EQ(election.survivors(), (std::vector<uint32_t>{2, 3}));
    election.fix_target();
    EXPECT_EQ(election.target(), 1200u);
    EXPECT_EQ(election.holder(), 3u);
    post_reads(election, 1);
    election.read_completed(4);  // the lost holder's read, landing late
    EXPECT_FALSE(election.repaired());
    election.read_completed(3);
    EXPECT_TRUE(election.repaired());
}

TEST(Election, TheRepairIsNotDoneWhileReadsWaitToBePosted)
{
    Election election = election_at_node_2();
    election.add(3, {1400, 14, 700});
    election.fix_target();
    election.plan_reads({{1000, 1200}, {1300, 1400}});
    ASSERT_NE(election.next_read(), nullptr);
    EXPECT_EQ(*election.next_read(), (PositionRange{1000, 1200}));
    election.read_posted();  // the send queue took one
    election.read_completed(3);
    EXPECT_FALSE(election.repaired()) << "one piece was never posted";
    EXPECT_EQ(*election.next_read(), (PositionRange{1300, 1400}));
    election.read_posted();
    election.read_completed(3);
    EXPECT_TRUE(election.repaired());
    election.lose(3);
    EXPECT_EQ(election.next_read(), nullptr) << "a lost holder's plan is dropped with it";
}

TEST(Election, LosingAnotherSurvivorKeepsTheTarget)
{
    Election election = election_at_node_2();
    election.add(3, {1200, 12, 600});
    election.add(4, {1100, 11, 550});
    election.fix_target();
    election.lose(4);
    EXPECT_EQ(election.target(), 1200u);
    EXPECT_EQ(election.survivors(), (std::vector<uint32_t>{2, 3}));
}

constexpr uint64_t kRing = 1 << 20;

TEST(RepairReads, WithoutHoldsThePiecesSplitOnlyWhereTheRingWraps)
{
    EXPECT_EQ(repair_reads(4096, 8192, kRing, {}), (std::vector<PositionRange>{{4096, 8192}}));
    EXPECT_EQ(repair_reads(kRing - 512, kRing + 512, kRing, {}),
              (std::vector<PositionRange>{{kRing - 512, kRing}, {kRing, kRing + 512}}));
    EXPECT_TRUE(repair_reads(4096, 4096, kRing, {}).empty());
}

TEST(RepairReads, AHeldPayloadThatComesRoundIsLeftOut)
{
    // Held at [8192, 16384) a lap ago; the repair covers where it comes round.
    const std::vector<PositionRange> holds{{8192, 16384}};
    EXPECT_EQ(repair_reads(kRing + 4096, kRing + 20480, kRing, holds),
              (std::vector<PositionRange>{{kRing + 4096, kRing + 8192}, {kRing + 16384, kRing + 20480}}));
    // Only part of it lies in the repair.
    EXPECT_EQ(repair_reads(kRing + 12288, kRing + 20480, kRing, holds),
              (std::vector<PositionRange>{{kRing + 16384, kRing + 20480}}));
    // Where it does not come round, everything is read.
    EXPECT_EQ(repair_reads(kRing + 16384, kRing + 20480, kRing, holds),
              (std::vector<PositionRange>{{kRing + 16384, kRing + 20480}}));
}

TEST(RepairReads, HoldsSeveralLapsBackAndAcrossTheWrapAreLeftOutToo)
{
    const std::vector<PositionRange> holds{{kRing - 4096, kRing}, {4096, 8192}};
    // Three laps on, the repair wraps: both holds come round in it.
    const uint64_t from = 3 * kRing + kRing - 8192;
    EXPECT_EQ(repair_reads(from, 4 * kRing + 12288, kRing, holds),
              (std::vector<PositionRange>{{from, 4 * kRing - 4096}, {4 * kRing, 4 * kRing + 4096},
                                          {4 * kRing + 8192, 4 * kRing + 12288}}));
}

TEST(RepairReads, AHoldOfNothingAppliedYetIsIgnored)
{
    const std::vector<PositionRange> holds{{kRing + 8192, kRing + 12288}};  // past `from`: no entry of this node's
    EXPECT_EQ(repair_reads(kRing + 4096, kRing + 16384, kRing, holds),
              (std::vector<PositionRange>{{kRing + 4096, kRing + 16384}}));
}

}  // namespace
}  // namespace rcpg::ordering
