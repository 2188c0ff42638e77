// RingApplier: a member's walk over what its sequencer wrote. Entries the sequencer's
// own ring placed are taken in order, fillers adopted on the way; a committed position
// past a lap or unaligned, an entry out of order, malformed or reaching past what was
// committed each stop the walk with the ring as it was before that entry.
#include "ordering/ring_applier.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace rcpg::ordering {
namespace {

constexpr uint64_t kRingBytes = uint64_t{8} << 20;

// A sequencer's ring and a member's, as a replicated pair: what the sequencer appends is
// copied (as its RDMA write would) into the member's.
struct Pair {
    Pair()
    {
        EXPECT_TRUE(sequencer.valid() && member.valid());
    }
    delivery::EntryHeader* append(uint32_t payload_bytes, delivery::EntryKind kind = delivery::EntryKind::data)
    {
        const uint16_t flags = payload_bytes >= delivery::kInPlaceDeliveryMinBytes ? delivery::kFlagPayloadOnPage : 0;
        delivery::EntryHeader* entry = sequencer.append(kind, flags, payload_bytes, sequencer.unpublished_tail());
        EXPECT_NE(entry, nullptr);
        entry->group_id = 1;
        entry->nodeid = 1;
        entry->pid = 100;
        return entry;
    }
    // The replication: the data area, then the committed position.
    uint64_t replicate()
    {
        std::memcpy(const_cast<std::byte*>(member.data()), sequencer.data(), kRingBytes);
        return sequencer.unpublished_tail();
    }
    std::byte* member_bytes(uint64_t position) { return const_cast<std::byte*>(member.data()) + (position & (kRingBytes - 1)); }

    DeliveryRing sequencer{kRingBytes, 1};
    DeliveryRing member{kRingBytes, 2};
    RingApplier applier{member};
};

TEST(RingApplier, TakesTheSequencersEntriesInOrderAndAdoptsThemIntoTheRing)
{
    Pair pair;
    pair.append(10);
    pair.append(5000);
    pair.append(0, delivery::EntryKind::dropped);
    const uint64_t committed = pair.replicate();
    ASSERT_TRUE(pair.applier.check_committed(committed).ok());
    std::vector<uint64_t> seqs;
    for (;;) {
        auto next = pair.applier.next(committed);
        ASSERT_TRUE(next.ok()) << next.status().message();
        if (!*next) {
            break;
        }
        seqs.push_back((*next)->header.seq);
        EXPECT_EQ(pair.member.unpublished_tail(), (*next)->position + (*next)->header.entry_bytes)
            << "adopted: the ring's tail is past it";
    }
    EXPECT_EQ(seqs, (std::vector<uint64_t>{1, 2, 3}));
    EXPECT_EQ(pair.applier.processed(), committed);
    EXPECT_EQ(pair.member.next_seq(), 4u);
}

TEST(RingApplier, APadToTheRingsEndIsAdoptedAndSkipped)
{
    Pair pair;
    const uint64_t near_end = kRingBytes - 256;
    pair.sequencer.start_at(near_end, 7);
    pair.applier.start_at(near_end, 7);
    pair.append(1000);  // does not fit before the end: a pad, then the entry on the next lap
    const uint64_t committed = pair.replicate();
    auto next = pair.applier.next(committed);
    ASSERT_TRUE(next.ok() && *next) << next.status().message();
    EXPECT_EQ((*next)->position, kRingBytes);
    EXPECT_EQ((*next)->header.seq, 7u);
    EXPECT_EQ((*next)->payload.size(), 1000u);
    next = pair.applier.next(committed);
    ASSERT_TRUE(next.ok());
    EXPECT_FALSE(*next);
}

TEST(RingApplier, ACommittedPositionPastALapOrUnalignedIsRefused)
{
    Pair pair;
    EXPECT_FALSE(pair.applier.check_committed(kRingBytes + delivery::kEntryAlignBytes).ok())
        << "it would have written over what this node has not applied";
    EXPECT_FALSE(pair.applier.check_committed(delivery::kEntryAlignBytes + 1).ok());
    EXPECT_TRUE(pair.applier.check_committed(kRingBytes).ok());
}

TEST(RingApplier, AnEntryOutOfOrderStopsTheWalkBeforeIt)
{
    Pair pair;
    pair.append(10);
    delivery::EntryHeader* second = pair.append(10);
    const uint64_t second_position = pair.sequencer.last_position();
    second->seq = 5;  // 2 is due
    const uint64_t committed = pair.replicate();
    auto next = pair.applier.next(committed);
    ASSERT_TRUE(next.ok() && *next);
    next = pair.applier.next(committed);
    ASSERT_FALSE(next.ok());
    EXPECT_NE(next.status().context().find("seq 5 where 2 was due"), std::string::npos) << next.status().context();
    EXPECT_EQ(pair.applier.processed(), second_position);
    EXPECT_EQ(pair.member.unpublished_tail(), second_position) << "the ring stays as it was before that entry";
    EXPECT_EQ(pair.member.next_seq(), 2u);
}

TEST(RingApplier, AnEntryReachingPastWhatWasCommittedIsRefused)
{
    Pair pair;
    pair.append(100);
    const uint64_t end = pair.replicate();
    const uint64_t short_of_it = end - delivery::kEntryAlignBytes;  // the sequencer's tail word lies
    EXPECT_TRUE(pair.applier.check_committed(short_of_it).ok());
    auto next = pair.applier.next(short_of_it);
    EXPECT_FALSE(next.ok());
    EXPECT_EQ(pair.applier.processed(), 0u);
}

TEST(RingApplier, AMalformedEntryIsRefused)
{
    Pair pair;
    pair.append(100);
    const uint64_t committed = pair.replicate();
    delivery::EntryHeader entry{};
    std::memcpy(&entry, pair.member_bytes(0), sizeof(entry));
    entry.payload_bytes = 1 << 24;  // past the entry, and past the ring
    std::memcpy(pair.member_bytes(0), &entry, sizeof(entry));
    auto next = pair.applier.next(committed);
    EXPECT_FALSE(next.ok());
    EXPECT_EQ(pair.member.unpublished_tail(), 0u);
}

}  // namespace
}  // namespace rcpg::ordering
