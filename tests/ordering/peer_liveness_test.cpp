// PeerLiveness: a peer is taken for failed only when none of its words moved for longer
// than the failure timeout.
#include "ordering/peer_liveness.hpp"

#include <gtest/gtest.h>

namespace {

using rcpg::ordering::PeerLiveness;

constexpr uint64_t kTimeoutMs = 100;

TEST(PeerLiveness, SilentForTheTimeoutIsStillAliveOneMillisecondMoreIsNot)
{
    PeerLiveness peer;
    peer.restart(1000, 7);
    EXPECT_TRUE(peer.observe(7, 0, 1000 + kTimeoutMs, kTimeoutMs));
    EXPECT_FALSE(peer.observe(7, 0, 1001 + kTimeoutMs, kTimeoutMs));
    EXPECT_EQ(peer.silent_ms(1001 + kTimeoutMs), kTimeoutMs + 1);
}

TEST(PeerLiveness, EitherWordMovingCountsAsHeard)
{
    PeerLiveness peer;
    peer.restart(0, 1);
    EXPECT_TRUE(peer.observe(2, 0, 90, kTimeoutMs));    // a heartbeat
    EXPECT_TRUE(peer.observe(2, 64, 180, kTimeoutMs));  // progress alone (heartbeats held up)
    EXPECT_TRUE(peer.observe(2, 64, 280, kTimeoutMs));
    EXPECT_FALSE(peer.observe(2, 64, 281, kTimeoutMs));
    EXPECT_EQ(peer.heard_ms(), 180u);
}

TEST(PeerLiveness, ARestartCountsSilenceAnew)
{
    PeerLiveness peer;
    peer.restart(0, 5);
    EXPECT_FALSE(peer.observe(5, 0, 500, kTimeoutMs));
    peer.restart(500);  // admitted, a new view
    EXPECT_TRUE(peer.observe(5, 0, 550, kTimeoutMs));
}

}  // namespace
