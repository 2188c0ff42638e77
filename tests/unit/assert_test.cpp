// The always-on tier of assertions stops the process with the place and the values; a
// protocol invariant broken on purpose (a member's ring going back) is caught by it.
#include "base/assert.hpp"
#include "ordering/delivery_ring.hpp"

#include <gtest/gtest.h>

namespace {

TEST(AssertDeathTest, ABrokenInvariantStopsWithItsValues)
{
    const int credit = 7;
    EXPECT_DEATH(RCPG_ASSERT(credit < 5, "credit {} past the tail {}", credit, 5),
                 "assert_test.cpp:[0-9]+: invariant broken: credit 7 past the tail 5 \\(credit < 5\\)");
    RCPG_ASSERT(credit > 5, "never formatted: {}", credit);  // holds: nothing happens
}

TEST(AssertDeathTest, AMembersRingNeverGoesBack)
{
    rcpg::ordering::DeliveryRing ring(8ull << 20, 2);
    ASSERT_TRUE(ring.valid());
    ring.start_at(4096, 10);
    ring.adopt(4096, 4160, 11);
    EXPECT_DEATH(ring.adopt(4096, 4096, 11), "invariant broken: adopting tail 4096");
}

}  // namespace
