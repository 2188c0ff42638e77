// What a reader of the delivery ring accepts (libcpg/ipc/ring_entry.hpp): every entry
// the writer's placement makes, and nothing else. Each step: these bytes at this
// position → accepted or refused.
#include "delivery/ring_entry.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace {

using namespace rcpg::delivery;

constexpr uint64_t kRingBytes = 1 << 16;

class Ring {
public:
    Ring() : data_(kRingBytes) {}

    // Writes an entry of `kind` with `payload_bytes` at `position`, placed as the writer
    // places it; returns its header for the test to spoil.
    EntryHeader put(uint64_t position, EntryKind kind, uint32_t payload_bytes, uint16_t flags = 0)
    {
        const bool on_page = (flags & kFlagPayloadOnPage) != 0;
        const EntryPlacement placement = place_entry(position, payload_bytes, on_page);
        EntryHeader entry{};
        entry.entry_bytes = placement.entry_bytes;
        entry.kind = kind;
        entry.flags = flags;
        entry.seq = 1;
        entry.group_id = 7;
        entry.nodeid = 1;
        entry.pid = 99;
        entry.payload_bytes = payload_bytes;
        entry.payload_offset = placement.payload_offset;
        entry.total_bytes = payload_bytes;
        write(position, entry);
        return entry;
    }
    void write(uint64_t position, const EntryHeader& entry)
    {
        std::memcpy(data_.data() + (position & (kRingBytes - 1)), &entry, sizeof entry);
    }
    void write_bytes(uint64_t position, const void* bytes, size_t size)
    {
        std::memcpy(data_.data() + (position & (kRingBytes - 1)), bytes, size);
    }
    RingStep read(uint64_t position, uint64_t tail, RingEntry& out) const
    {
        return read_entry(data_.data(), kRingBytes, position, tail, out);
    }
    bool accepted(uint64_t position, uint64_t tail) const
    {
        RingEntry out;
        return read(position, tail, out) == RingStep::entry;
    }

private:
    std::vector<std::byte> data_;
};

TEST(RingEntry, EveryEntryTheWriterPlacesIsAccepted)
{
    Ring ring;
    const EntryHeader small = ring.put(0, EntryKind::data, 100);
    EXPECT_TRUE(ring.accepted(0, small.entry_bytes));
    const EntryHeader large = ring.put(8192, EntryKind::data, 9000, kFlagPayloadOnPage | kFlagSafe);
    RingEntry out;
    ASSERT_EQ(ring.read(8192, 8192 + large.entry_bytes, out), RingStep::entry);
    EXPECT_EQ(out.payload.size(), 9000u);
    EXPECT_EQ((8192 + out.header.payload_offset) % kPageBytes, 0u) << "a large payload starts on a page";
    const EntryHeader dropped = ring.put(40000, EntryKind::dropped, 0);
    EXPECT_TRUE(ring.accepted(40000, 40000 + dropped.entry_bytes));
    EXPECT_EQ(ring.read(5, 5, out), RingStep::end);
}

TEST(RingEntry, PaddingMustFillTheRingToItsEnd)
{
    Ring ring;
    const uint64_t position = kRingBytes - 64;
    EntryHeader pad{};
    pad.kind = EntryKind::pad;
    pad.entry_bytes = 64;
    ring.write(position, pad);
    EXPECT_TRUE(ring.accepted(position, position + 64));
    pad.entry_bytes = 56;
    ring.write(position, pad);
    EXPECT_FALSE(ring.accepted(position, position + 64)) << "padding that stops short of the end";
}

TEST(RingEntry, AnythingElseIsRefused)
{
    Ring ring;
    EntryHeader entry = ring.put(0, EntryKind::data, 100);
    const uint64_t tail = entry.entry_bytes;
    auto refused = [&](const EntryHeader& spoiled, uint64_t published) {
        ring.write(0, spoiled);
        return !ring.accepted(0, published);
    };
    EntryHeader spoiled = entry;
    spoiled.entry_bytes = 0;
    EXPECT_TRUE(refused(spoiled, tail)) << "size 0";
    spoiled = entry;
    spoiled.entry_bytes += 8;
    EXPECT_TRUE(refused(spoiled, tail + 8)) << "not where the writer puts the end";
    spoiled = entry;
    spoiled.payload_offset += 8;
    EXPECT_TRUE(refused(spoiled, tail)) << "payload moved";
    spoiled = entry;
    spoiled.payload_bytes = 5000;  // large, but not on pages: overflows a small-payload buffer
    spoiled.payload_offset = sizeof(EntryHeader);
    spoiled.entry_bytes = static_cast<uint32_t>(align_up(sizeof(EntryHeader) + 5000, kEntryAlignBytes));
    EXPECT_TRUE(refused(spoiled, spoiled.entry_bytes)) << "large payload off its pages";
    spoiled = entry;
    spoiled.flags = 0x4000;
    EXPECT_TRUE(refused(spoiled, tail)) << "unknown flag";
    spoiled = entry;
    spoiled.flags = kFlagPayloadOnPage;
    EXPECT_TRUE(refused(spoiled, tail)) << "a small payload claiming to be on pages";
    spoiled = entry;
    spoiled.kind = static_cast<EntryKind>(9);
    EXPECT_TRUE(refused(spoiled, tail)) << "unknown kind";
    spoiled = entry;
    spoiled.kind = EntryKind::confchg;
    spoiled.flags = kFlagSafe;
    EXPECT_TRUE(refused(spoiled, tail)) << "flags on a confchg";
    spoiled = entry;
    spoiled.pid = 0;
    EXPECT_TRUE(refused(spoiled, tail)) << "data of no process";
    EXPECT_TRUE(refused(entry, tail - 8)) << "more than is published";
    RingEntry out;
    ring.write(0, entry);
    EXPECT_EQ(ring.read(0, 3 * kRingBytes, out), RingStep::corrupt) << "a tail more than a ring ahead";
    // A reader ahead of the tail (a join answered before its entry was published) waits.
    EXPECT_EQ(ring.read(64, 0, out), RingStep::end) << "a tail a little behind the reader";
    EXPECT_EQ(ring.read(kRingBytes + 64, 0, out), RingStep::corrupt) << "a tail more than a ring behind the reader";
    EXPECT_EQ(ring.read(4, tail, out), RingStep::corrupt) << "a position off the 8-byte grid";
}

// EVS messages: the flag and the EVS group number come together, never with fragment
// markers (the writer never writes one otherwise), and no confchg carries the number.
// A reader that took one of these as EVS, or as a CPG group's, would deliver another
// API's traffic.
TEST(RingEntry, EvsEntriesAreExactlyTheFlaggedOnesWithTheEvsNumber)
{
    Ring ring;
    EntryHeader entry = ring.put(0, EntryKind::data, 100, kFlagEvs);
    entry.group_id = kEvsGroupId;
    ring.write(0, entry);
    const uint64_t tail = entry.entry_bytes;
    EXPECT_TRUE(ring.accepted(0, tail)) << "an EVS message";
    entry.flags = kFlagEvs | kFlagSafe;
    ring.write(0, entry);
    EXPECT_TRUE(ring.accepted(0, tail)) << "a SAFE EVS message";
    auto refused = [&](const EntryHeader& spoiled) {
        ring.write(0, spoiled);
        return !ring.accepted(0, tail);
    };
    EntryHeader spoiled = entry;
    spoiled.group_id = 7;
    EXPECT_TRUE(refused(spoiled)) << "the EVS flag on a CPG group's message";
    spoiled = entry;
    spoiled.flags = 0;
    EXPECT_TRUE(refused(spoiled)) << "a message with the EVS number but not the flag";
    spoiled = entry;
    spoiled.flags = kFlagEvs | kFlagFragment | kFlagFragmentFirst;
    EXPECT_TRUE(refused(spoiled)) << "a fragmented EVS message";
    spoiled = entry;
    spoiled.kind = EntryKind::confchg;
    spoiled.flags = 0;
    spoiled.payload_bytes = 0;
    EXPECT_TRUE(refused(spoiled)) << "a confchg with the EVS number";
}

// Found by fuzz_ring_reader: a payload size near 4 GiB wraps the 32-bit placement into a
// small entry of the right size; the payload would reach 4 GiB past the ring.
TEST(RingEntry, APayloadSizeThatWrapsThePlacementIsRefused)
{
    for (EntryKind kind : {EntryKind::confchg, EntryKind::totem_confchg}) {
        Ring ring;
        EntryHeader entry = ring.put(64, kind, 0);
        entry.payload_bytes = UINT32_MAX;  // sizeof(EntryHeader) + this wraps to 48 - 1
        const EntryPlacement wrapped = place_entry(64, entry.payload_bytes, false);
        ASSERT_EQ(wrapped.entry_bytes, entry.entry_bytes) << "the placement no longer wraps: the test shows nothing";
        ring.write(64, entry);
        EXPECT_FALSE(ring.accepted(64, 64 + entry.entry_bytes)) << static_cast<int>(kind);
    }
}

TEST(RingEntry, ConfchgAndTotemPayloadsMustHaveExactlyTheSizeTheirCountsGive)
{
    std::vector<std::byte> payload(sizeof(ConfchgPayload) + 3 * kConfchgAddressBytes);
    ConfchgPayload confchg{};
    confchg.left_count = 1;
    confchg.member_count = 2;
    confchg.group_length = 5;
    std::memcpy(payload.data(), &confchg, sizeof confchg);
    EXPECT_TRUE(check_confchg_payload(payload).has_value());
    EXPECT_FALSE(check_confchg_payload(std::span(payload).first(payload.size() - 1)).has_value());
    EXPECT_FALSE(check_confchg_payload(std::span(payload).first(sizeof(ConfchgPayload) - 1)).has_value());
    confchg.member_count = 0x40000000;
    std::memcpy(payload.data(), &confchg, sizeof confchg);
    EXPECT_FALSE(check_confchg_payload(payload).has_value()) << "more members than bytes";
    confchg.member_count = 2;
    confchg.group_length = 129;
    std::memcpy(payload.data(), &confchg, sizeof confchg);
    EXPECT_FALSE(check_confchg_payload(payload).has_value()) << "a group name longer than 128 bytes";

    std::vector<std::byte> totem_bytes(sizeof(TotemPayload) + 2 * sizeof(uint32_t));
    TotemPayload totem{};
    totem.member_count = 2;
    std::memcpy(totem_bytes.data(), &totem, sizeof totem);
    EXPECT_TRUE(check_totem_payload(totem_bytes).has_value());
    totem.member_count = 3;
    std::memcpy(totem_bytes.data(), &totem, sizeof totem);
    EXPECT_FALSE(check_totem_payload(totem_bytes).has_value());
}

}  // namespace
