// HeartbeatSchedule: rounds at a quarter of the failure timeout, each with a higher
// counter; owed writes retried until they settle, given up when the next round begins.
#include "ordering/heartbeat_schedule.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace rcpg::ordering {
namespace {

TEST(HeartbeatSchedule, RoundsComeFourTimesPerFailureTimeoutWithARisingCounter)
{
    HeartbeatSchedule schedule(1000);
    EXPECT_TRUE(schedule.due(0)) << "the first round at once";
    EXPECT_EQ(schedule.begin_round(0), 1u);
    EXPECT_FALSE(schedule.due(249));
    EXPECT_TRUE(schedule.due(250));
    EXPECT_EQ(schedule.next_ms(10), 250u);
    EXPECT_EQ(schedule.begin_round(260), 2u);
    EXPECT_EQ(schedule.counter(), 2u);
    EXPECT_EQ(schedule.next_ms(300), 510u);
    schedule.due_now(300);
    EXPECT_TRUE(schedule.due(300));
}

TEST(HeartbeatSchedule, OwedWritesAreRetriedAtEveryStepUntilTheySettle)
{
    HeartbeatSchedule schedule(1000);
    schedule.begin_round(0);
    schedule.owe(2);
    schedule.owe(3);
    EXPECT_TRUE(schedule.owes());
    EXPECT_EQ(schedule.next_ms(5), 6u) << "something owed: the next step at once";
    std::vector<uint32_t> tried;
    schedule.retry([&](uint32_t peer) {
        tried.push_back(peer);
        return peer == 2;  // node 3's send queue is still full
    });
    EXPECT_EQ(tried, (std::vector<uint32_t>{2, 3}));
    EXPECT_TRUE(schedule.owes());
    schedule.retry([](uint32_t) { return true; });
    EXPECT_FALSE(schedule.owes());
    EXPECT_EQ(schedule.next_ms(5), 250u);
}

TEST(HeartbeatSchedule, ANewRoundReplacesWhatTheLastOneOwed)
{
    HeartbeatSchedule schedule(400);
    schedule.begin_round(0);
    schedule.owe(2);
    EXPECT_EQ(schedule.begin_round(100), 2u);
    EXPECT_FALSE(schedule.owes());
}

}  // namespace
}  // namespace rcpg::ordering
