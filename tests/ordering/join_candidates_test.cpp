// JoinCandidates: every other node of the sequencer order in turn, round after round;
// only the first of the order starts a cluster, and only after two whole rounds.
#include "ordering/join_candidates.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace rcpg::ordering {
namespace {

std::vector<uint32_t> one_round(JoinCandidates& join)
{
    std::vector<uint32_t> asked{join.current()};
    while (!join.advance()) {
        asked.push_back(join.current());
    }
    return asked;
}

TEST(JoinCandidates, AsksEveryOtherNodeOfTheOrderInTurn)
{
    JoinCandidates join({3, 1, 2, 4}, 2);
    EXPECT_EQ(one_round(join), (std::vector<uint32_t>{3, 1, 4}));
    EXPECT_EQ(join.rounds(), 1u);
    EXPECT_EQ(join.current(), 3u) << "the next round starts over";
    EXPECT_EQ(one_round(join), (std::vector<uint32_t>{3, 1, 4}));
    EXPECT_EQ(join.rounds(), 2u);
}

TEST(JoinCandidates, OnlyTheFirstOfTheOrderStartsAClusterAndOnlyAfterTwoRounds)
{
    JoinCandidates first({3, 1, 2}, 3);
    JoinCandidates other({3, 1, 2}, 1);
    for (JoinCandidates* join : {&first, &other}) {
        EXPECT_FALSE(join->may_start_cluster());
        one_round(*join);
        EXPECT_FALSE(join->may_start_cluster()) << "one round may miss a cluster still forming";
        one_round(*join);
    }
    EXPECT_TRUE(first.may_start_cluster());
    EXPECT_FALSE(other.may_start_cluster()) << "it waits for the first of the order";
}

TEST(JoinCandidates, TwoNodesAskEachOther)
{
    JoinCandidates join({1, 2}, 1);
    EXPECT_EQ(join.current(), 2u);
    EXPECT_TRUE(join.advance()) << "a round of one";
    EXPECT_EQ(join.current(), 2u);
}

}  // namespace
}  // namespace rcpg::ordering
