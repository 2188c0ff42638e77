// HoldWords: a hold keeps its word while it lasts, an ended one frees it, a new one
// takes a free one; with more holds than words the credit stays before the first one
// without; a new sequencer gets every word written again.
#include "ordering/hold_words.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace rcpg::ordering {
namespace {

constexpr uint64_t kRingBytes = 1 << 20;

uint64_t word_of(const DeliveryRing::Hold& hold) { return wire::encode_hold(hold.position, hold.bytes, kRingBytes); }

size_t slot_of(const HoldWords::Words& words, const DeliveryRing::Hold& hold)
{
    return static_cast<size_t>(std::find(words.begin(), words.end(), word_of(hold)) - words.begin());
}

TEST(HoldWords, NothingHeldAndNothingPublishedIsSettledOnceWrittenToThisSequencer)
{
    HoldWords words;
    EXPECT_FALSE(words.settled(true)) << "a first sequencer has not been told yet";
    const HoldWords::Plan plan = words.plan({}, kRingBytes);
    EXPECT_TRUE(plan.write);
    EXPECT_EQ(plan.placed, 0u);
    words.written(plan.words);
    EXPECT_TRUE(words.settled(true));
    EXPECT_FALSE(words.settled(false));
    words.new_sequencer();
    EXPECT_FALSE(words.settled(true));
}

TEST(HoldWords, AHoldKeepsItsWordWhileItLastsAndAnEndedOneFreesIt)
{
    HoldWords words;
    const std::vector<DeliveryRing::Hold> first{{4096, 8192}, {65536, 4096}};
    HoldWords::Plan plan = words.plan(first, kRingBytes);
    EXPECT_EQ(plan.placed, 2u);
    words.written(plan.words);
    EXPECT_TRUE(words.published(first[0], kRingBytes));
    EXPECT_TRUE(words.published(first[1], kRingBytes));
    const size_t second_slot = slot_of(plan.words, first[1]);

    // The first hold ends, a new one comes after the second: the second keeps its word.
    const std::vector<DeliveryRing::Hold> next{{65536, 4096}, {131072, 4096}};
    plan = words.plan(next, kRingBytes);
    EXPECT_TRUE(plan.write);
    EXPECT_EQ(plan.placed, 2u);
    EXPECT_EQ(slot_of(plan.words, next[0]), second_slot);
    EXPECT_EQ(std::count(plan.words.begin(), plan.words.end(), word_of(first[0])), 0);
    EXPECT_FALSE(words.published(next[1], kRingBytes)) << "not before it is written";
    words.written(plan.words);
    EXPECT_TRUE(words.published(next[1], kRingBytes));
    EXPECT_FALSE(words.published(first[0], kRingBytes));
    EXPECT_FALSE(words.plan(next, kRingBytes).write) << "nothing changed";
}

TEST(HoldWords, MoreHoldsThanWordsKeepTheCreditBeforeTheFirstWithout)
{
    HoldWords words;
    std::vector<DeliveryRing::Hold> holds;
    for (uint64_t index = 0; index < wire::kHoldWords + 2; ++index) {
        holds.push_back({(index + 1) * 16384, 4096});
    }
    const HoldWords::Plan plan = words.plan(holds, kRingBytes);
    EXPECT_EQ(plan.placed, wire::kHoldWords);
    words.written(plan.words);
    EXPECT_FALSE(words.published(holds[wire::kHoldWords], kRingBytes));
    const uint64_t first_without = holds[wire::kHoldWords].position;
    EXPECT_EQ(HoldWords::credit_before(1 << 30, holds, plan.placed), first_without - delivery::kEntryAlignBytes);
    EXPECT_EQ(HoldWords::credit_before(4096, holds, plan.placed), 4096u) << "a credit before the holds stays";
    EXPECT_EQ(HoldWords::credit_before(1 << 30, holds, holds.size()), uint64_t{1} << 30) << "every hold has a word";
}

TEST(HoldWords, UnderANewSequencerTheSameWordsAreWrittenAgainInTheSameSlots)
{
    HoldWords words;
    const std::vector<DeliveryRing::Hold> holds{{8192, 4096}};
    HoldWords::Plan plan = words.plan(holds, kRingBytes);
    words.written(plan.words);
    const HoldWords::Words before = plan.words;
    words.new_sequencer();
    plan = words.plan(holds, kRingBytes);
    EXPECT_TRUE(plan.write);
    EXPECT_EQ(plan.words, before);
    EXPECT_TRUE(words.published(holds[0], kRingBytes)) << "the hold keeps its word across sequencers";
}

}  // namespace
}  // namespace rcpg::ordering
