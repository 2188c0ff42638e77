// ForwardLog: origin numbers from 1, records leave once the ring shows their number,
// the memory of a batch goes back only when all its records are in the ring and its
// commit completed, and the resend after a failover walks what is left, in order.
#include "ordering/forward_log.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace rcpg::ordering {
namespace {

std::vector<transport::LocalSlice> slices(uint32_t bytes)
{
    return {{transport::RegionId{1}, 0, 16}, {transport::RegionId{2}, 64, bytes}};
}

TEST(ForwardLog, RecordsAreNumberedFromOneAndLeaveWhenTheRingShowsTheirNumber)
{
    ForwardLog log;
    EXPECT_EQ(log.next_origin(), 1u);
    EXPECT_EQ(log.add_data(slices(100), 1).origin_seq, 1u);
    EXPECT_EQ(log.add_copy(wire::InboundType::join, {std::byte{7}}, 1).origin_seq, 2u);
    EXPECT_EQ(log.add_data(slices(200), 2).origin_seq, 3u);
    EXPECT_EQ(log.size(), 3u);
    EXPECT_EQ(log.front().sources().size(), 2u);
    EXPECT_EQ(log.front().sources()[1].bytes, 100u);

    log.sequenced(2);  // number 2 in the ring: 1 was before it
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log.front().origin_seq, 3u);
    log.sequenced(3);
    EXPECT_TRUE(log.empty());
    EXPECT_EQ(log.next_origin(), 4u);
}

TEST(ForwardLog, ABatchIsReleasedOnlyWhenCompletedAndEveryRecordOfItIsInTheRing)
{
    ForwardLog log;
    log.add_data(slices(10), 1);
    log.add_data(slices(10), 2);
    log.add_data(slices(10), 2);
    log.add_data(slices(10), 3);
    EXPECT_EQ(log.released(3), 0u) << "every commit completed, nothing is in the ring";
    EXPECT_EQ(log.newly_released(3), 0u);
    log.sequenced(2);  // batch 1 all in, batch 2 half
    EXPECT_EQ(log.released(3), 1u);
    EXPECT_EQ(log.released(0), 0u) << "in the ring, but the device may still read batch 1";
    EXPECT_EQ(log.newly_released(3), 1u);
    EXPECT_EQ(log.newly_released(3), 0u) << "reported once";
    log.sequenced(4);
    EXPECT_EQ(log.released(2), 2u) << "commit 3 has not completed";
    EXPECT_EQ(log.newly_released(3), 3u);
    EXPECT_EQ(log.released(5), 5u) << "with nothing waiting, whatever completed";
}

TEST(ForwardLog, TheResendWalksWhatIsLeftInOrderAndSkipsWhatGotSequencedMeanwhile)
{
    ForwardLog log;
    for (uint64_t batch = 1; batch <= 5; ++batch) {
        log.add_data(slices(10), batch);
    }
    log.sequenced(1);
    EXPECT_FALSE(log.resending());
    EXPECT_EQ(log.next_resend(), nullptr);
    log.begin_resend();
    EXPECT_TRUE(log.resending());
    const ForwardLog::Record* record = log.next_resend();
    ASSERT_NE(record, nullptr);
    EXPECT_EQ(record->origin_seq, 2u);
    EXPECT_EQ(log.next_resend()->origin_seq, 2u) << "the same until it was sent";
    log.resent();
    EXPECT_EQ(log.next_resend()->origin_seq, 3u);
    log.sequenced(4);  // the new sequencer had 3 and 4 already (the repair brought them)
    record = log.next_resend();
    ASSERT_NE(record, nullptr);
    EXPECT_EQ(record->origin_seq, 5u);
    log.resent();
    EXPECT_EQ(log.next_resend(), nullptr);
    EXPECT_FALSE(log.resending()) << "the resend is over";
}

TEST(ForwardLog, AResendWithNothingLeftIsNoResend)
{
    ForwardLog log;
    log.add_copy(wire::InboundType::leave, {}, 1);
    log.sequenced(1);
    log.begin_resend();
    EXPECT_FALSE(log.resending());
}

TEST(ForwardLogDeathTest, ANumberNeverSentIsNeverTakenForSequenced)
{
    ForwardLog log;
    log.add_data(slices(10), 1);
    EXPECT_DEATH(log.sequenced(2), "only 1 were sent");
}

}  // namespace
}  // namespace rcpg::ordering
