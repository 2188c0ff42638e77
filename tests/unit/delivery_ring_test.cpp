// The delivery ring's writer around payloads a reader holds in a callback (DeliveryRing::
// set_holds), read back with the reader every client uses (delivery::read_entry).
#include "delivery/ring_entry.hpp"
#include "ordering/delivery_ring.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace {

using rcpg::ordering::DeliveryRing;
namespace ipc = rcpg::ipc;
namespace delivery = rcpg::delivery;

constexpr uint64_t kRingBytes = 8ull << 20;
constexpr uint32_t kPayloadBytes = 65536;  // delivered in place: on whole pages

struct Written {
    uint64_t position;
    uint64_t payload_position;
    uint64_t payload_bytes;
};

Written append(DeliveryRing& ring, unsigned char fill)
{
    delivery::EntryHeader* entry =
        ring.append(delivery::EntryKind::data, delivery::kFlagPayloadOnPage, kPayloadBytes, ring.unpublished_tail());
    EXPECT_NE(entry, nullptr);
    if (entry == nullptr) {
        return {};
    }
    entry->group_id = 1;
    entry->pid = 1;
    std::memset(ring.payload(entry), fill, kPayloadBytes);
    ring.publish();
    return {ring.last_position(), ring.last_position() + entry->payload_offset,
            entry->entry_bytes - uint64_t{entry->payload_offset}};
}

// Walks the published entries from `from` (an entry's position; by default a lap back,
// which is one where every entry has the same size) with the clients' reader: every
// entry canonical.
std::vector<delivery::EntryKind> read_lap(const DeliveryRing& ring, uint64_t from = UINT64_MAX)
{
    std::vector<delivery::EntryKind> kinds;
    const uint64_t tail = ring.published_tail();
    if (from == UINT64_MAX) {
        from = tail > kRingBytes ? tail - kRingBytes : 0;
    }
    for (uint64_t position = from; position < tail;) {
        delivery::RingEntry entry{};
        if (delivery::read_entry(ring.data(), kRingBytes, position, tail, entry) != delivery::RingStep::entry) {
            ADD_FAILURE() << "no entry at " << position;
            break;
        }
        kinds.push_back(entry.header.kind);
        position += entry.header.entry_bytes;
    }
    return kinds;
}

TEST(DeliveryRingHolds, TheWriterGoesRoundAHeldPayloadLapAfterLap)
{
    DeliveryRing ring(kRingBytes, 1);
    ASSERT_TRUE(ring.valid());
    Written held{};
    for (int i = 0; i < 20; ++i) {
        const Written written = append(ring, static_cast<unsigned char>(i));
        if (i == 10) {
            held = written;
        }
    }
    ring.set_holds({{held.payload_position, held.payload_bytes}});
    // Five laps, everything else reclaimed at once: the held bytes never change.
    const uint64_t offset = held.payload_position & (kRingBytes - 1);
    for (int i = 0; i < 5 * 130; ++i) {
        append(ring, 0xee);
        const auto* bytes = reinterpret_cast<const unsigned char*>(ring.data()) + offset;
        ASSERT_EQ(bytes[0], 10) << "after " << i << " entries";
        ASSERT_EQ(bytes[held.payload_bytes - 1], 10) << "after " << i << " entries";
    }
    const std::vector<delivery::EntryKind> kinds = read_lap(ring);
    EXPECT_NE(std::find(kinds.begin(), kinds.end(), delivery::EntryKind::skip), kinds.end())
        << "no skip entry in the last lap";
}

// The writer's tail may come to stand exactly where held bytes begin a lap later (an
// entry ends there). No entry, not even a skip's header, may start there: the writer must
// have gone round them from before, or it finds no room until the hold ends.
TEST(DeliveryRingHolds, AnEntryEndingRightAtTheHeldBytesDoesNotStopTheWriter)
{
    DeliveryRing ring(kRingBytes, 1);
    ASSERT_TRUE(ring.valid());
    append(ring, 1);
    const Written held = append(ring, 2);
    ring.set_holds({{held.payload_position, held.payload_bytes}});
    const uint64_t target = held.payload_position + kRingBytes;
    // Small entries (payloads off the page), the last one sized to end exactly at target.
    constexpr uint32_t kSmallPayloadBytes = 2048;
    int appended = 0;
    uint64_t after_target = 0;  // the first entry past the held bytes
    while (ring.unpublished_tail() < target + kRingBytes / 2) {
        const uint64_t tail = ring.unpublished_tail();
        uint32_t payload_bytes = kSmallPayloadBytes;
        if (tail < target && target - tail < 3 * kSmallPayloadBytes) {
            const uint64_t left = target - tail;
            payload_bytes = static_cast<uint32_t>(left > 2 * kSmallPayloadBytes ? kSmallPayloadBytes
                                                                                 : left - sizeof(delivery::EntryHeader));
        }
        delivery::EntryHeader* entry = ring.append(delivery::EntryKind::data, 0, payload_bytes, ring.unpublished_tail());
        ASSERT_NE(entry, nullptr) << "no room at " << tail << " (" << appended << " entries; held bytes at "
                                  << target << ")";
        entry->group_id = 1;
        entry->pid = 1;
        std::memset(ring.payload(entry), 0xee, payload_bytes);
        ring.publish();
        ++appended;
        if (after_target == 0 && ring.last_position() > target) {
            after_target = ring.last_position();
        }
        const auto* bytes = reinterpret_cast<const unsigned char*>(ring.data()) + (target & (kRingBytes - 1));
        ASSERT_EQ(bytes[0], 2) << "after " << appended << " entries";
    }
    read_lap(ring, after_target);  // every entry since canonical
}

TEST(DeliveryRingHolds, WithoutHoldsNoSkipIsWrittenAndTheBytesAreReused)
{
    DeliveryRing ring(kRingBytes, 1);
    ASSERT_TRUE(ring.valid());
    const Written first = append(ring, 7);
    for (int i = 0; i < 200; ++i) {
        append(ring, 0xee);
    }
    const auto* bytes = reinterpret_cast<const unsigned char*>(ring.data()) + (first.payload_position & (kRingBytes - 1));
    EXPECT_NE(bytes[0], 7) << "the test's laps did not reach the first entry's bytes";
    const std::vector<delivery::EntryKind> kinds = read_lap(ring);
    EXPECT_EQ(std::find(kinds.begin(), kinds.end(), delivery::EntryKind::skip), kinds.end());
}

TEST(RingEntry, ASkipIsReadAsFillerAndMayNotLeaveTheRingOrThePublished)
{
    std::vector<std::byte> ring(1 << 16);
    delivery::EntryHeader skip{};
    skip.entry_bytes = 4096;
    skip.kind = delivery::EntryKind::skip;
    std::memcpy(ring.data() + 8192, &skip, 8);
    delivery::RingEntry entry{};
    EXPECT_EQ(delivery::read_entry(ring.data(), ring.size(), 8192, 8192 + 4096, entry), delivery::RingStep::entry);
    EXPECT_EQ(entry.header.kind, delivery::EntryKind::skip);
    EXPECT_TRUE(entry.payload.empty());
    // Past what is published, or past the ring's end: not an entry rcpgd writes.
    EXPECT_EQ(delivery::read_entry(ring.data(), ring.size(), 8192, 8192 + 4088, entry), delivery::RingStep::corrupt);
    skip.entry_bytes = static_cast<uint32_t>(ring.size());
    std::memcpy(ring.data() + 8192, &skip, 8);
    EXPECT_EQ(delivery::read_entry(ring.data(), ring.size(), 8192, 8192 + ring.size(), entry), delivery::RingStep::corrupt);
}

}  // namespace
