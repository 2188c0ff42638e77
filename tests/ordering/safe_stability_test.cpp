// SafeStability: where a node's clients must stop reading while a SAFE message is not
// yet held by every node, and that what was stable stays stable.
#include "ordering/safe_stability.hpp"

#include <gtest/gtest.h>

namespace {

using rcpg::ordering::SafeStability;

TEST(SafeStability, NothingWaitedForPublishesEverythingComplete)
{
    SafeStability safe;
    EXPECT_FALSE(safe.waiting());
    EXPECT_EQ(safe.publishable(4096), 4096u);
}

TEST(SafeStability, ClientsStopAtTheFirstSafeEntryNotYetStable)
{
    SafeStability safe;
    safe.note(100, 200);
    safe.note(300, 400);
    EXPECT_TRUE(safe.waiting());
    EXPECT_EQ(safe.publishable(1000), 100u);
    EXPECT_EQ(safe.publishable(50), 50u);  // never past what is complete
    EXPECT_TRUE(safe.advance(250));
    EXPECT_EQ(safe.publishable(1000), 300u);
    EXPECT_TRUE(safe.advance(400));
    EXPECT_EQ(safe.publishable(1000), 1000u);
    EXPECT_FALSE(safe.waiting());
}

TEST(SafeStability, AnEntryHeldUpToItsEndOnlyIsStable)
{
    SafeStability safe;
    safe.note(100, 200);
    EXPECT_TRUE(safe.advance(199));
    EXPECT_EQ(safe.publishable(1000), 100u);
    EXPECT_TRUE(safe.advance(200));
    EXPECT_EQ(safe.publishable(1000), 1000u);
}

TEST(SafeStability, WhatWasStableStaysStable)
{
    SafeStability safe;
    EXPECT_TRUE(safe.advance(500));
    EXPECT_FALSE(safe.advance(300));  // a new sequencer that knows less
    EXPECT_FALSE(safe.advance(500));
    EXPECT_EQ(safe.stable(), 500u);
    safe.note(100, 200);  // already stable: not waited for
    EXPECT_FALSE(safe.waiting());
    EXPECT_EQ(safe.publishable(1000), 1000u);
}

}  // namespace
