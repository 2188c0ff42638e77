// has_quorum: the majority rule that keeps two disjoint sides from both going on.
#include "ordering/membership.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace {

using rcpg::ordering::has_quorum;

TEST(Membership, MoreThanHalfOfTheConfiguredNodesGoesOn)
{
    EXPECT_TRUE(has_quorum(std::vector<uint32_t>{2, 3}, 3, 1));
    EXPECT_FALSE(has_quorum(std::vector<uint32_t>{3}, 3, 1));
    EXPECT_TRUE(has_quorum(std::vector<uint32_t>{1, 2, 3}, 5, 1));
    EXPECT_FALSE(has_quorum(std::vector<uint32_t>{}, 1, 1));
}

TEST(Membership, ExactlyHalfGoesOnOnlyWithTheFirstNodeOfTheOrder)
{
    EXPECT_TRUE(has_quorum(std::vector<uint32_t>{1, 4}, 4, 1));
    EXPECT_FALSE(has_quorum(std::vector<uint32_t>{2, 3}, 4, 1));
    // Of any two disjoint halves, exactly one goes on.
    const std::vector<uint32_t> all{1, 2, 3, 4};
    for (uint32_t mask = 0; mask < 16; ++mask) {
        std::vector<uint32_t> side, other;
        for (uint32_t i = 0; i < 4; ++i) {
            ((mask >> i) & 1 ? side : other).push_back(all[i]);
        }
        EXPECT_FALSE(has_quorum(side, 4, 1) && has_quorum(other, 4, 1)) << "mask " << mask;
        if (side.size() == 2) {
            EXPECT_TRUE(has_quorum(side, 4, 1) || has_quorum(other, 4, 1)) << "mask " << mask;
        }
    }
}

}  // namespace
