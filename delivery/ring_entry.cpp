#include "delivery/ring_entry.hpp"

#include <cstring>

namespace rcpg::delivery {
namespace {

// A pad entry is recognised from its first 8 bytes (size and kind).
constexpr size_t kPadHeaderBytes = 8;
constexpr uint16_t kDataFlags = kSubmissionFlags | kFlagPayloadOnPage;

bool data_entry_ok(const EntryHeader& entry)
{
    const bool on_page = (entry.flags & kFlagPayloadOnPage) != 0;
    // An EVS message is exactly one with the EVS group number, and is never fragmented.
    const bool evs = (entry.flags & kFlagEvs) != 0;
    if (evs != (entry.group_id == kEvsGroupId) || (evs && (entry.flags & kFragmentFlags) != 0)) {
        return false;
    }
    return (entry.flags & ~kDataFlags) == 0 && entry.payload_bytes <= kMaxAtomicMessageBytes &&
           on_page == (entry.payload_bytes >= kInPlaceDeliveryMinBytes) && entry.group_id != 0 && entry.pid != 0;
}

}  // namespace

std::optional<EntryHeader> check_entry(std::span<const std::byte> to_end, uint64_t position, uint64_t ring_bytes,
                                       uint64_t available)
{
    if (!is_power_of_two(ring_bytes) || position % kEntryAlignBytes != 0) {
        return std::nullopt;
    }
    const uint64_t room_to_end = ring_bytes - (position & (ring_bytes - 1));
    if (available < kPadHeaderBytes || to_end.size() < kPadHeaderBytes) {
        return std::nullopt;
    }
    EntryHeader entry{};
    std::memcpy(&entry, to_end.data(), kPadHeaderBytes);
    if (entry.entry_bytes < kPadHeaderBytes || entry.entry_bytes % kEntryAlignBytes != 0 ||
        entry.entry_bytes > available || entry.entry_bytes > room_to_end || entry.entry_bytes > to_end.size()) {
        return std::nullopt;
    }
    if (entry.kind == EntryKind::pad) {
        // Padding always fills the ring up to its end.
        return entry.entry_bytes == room_to_end ? std::optional(entry) : std::nullopt;
    }
    if (entry.kind == EntryKind::skip) {
        return entry;  // a size inside the ring and what is published, checked above
    }
    if (entry.entry_bytes < sizeof(EntryHeader) || entry.entry_bytes > kMaxEntryBytes) {
        return std::nullopt;
    }
    std::memcpy(&entry, to_end.data(), sizeof(entry));
    switch (entry.kind) {
    case EntryKind::data:
        if (!data_entry_ok(entry)) {
            return std::nullopt;
        }
        break;
    case EntryKind::confchg:
        if (entry.flags != 0 || entry.group_id == kEvsGroupId) {
            return std::nullopt;  // no CPG group has the EVS number
        }
        break;
    case EntryKind::totem_confchg:
        if (entry.flags != 0) {
            return std::nullopt;
        }
        break;
    case EntryKind::dropped:
        if (entry.flags != 0 || entry.payload_bytes != 0) {
            return std::nullopt;  // it only says a record is done
        }
        break;
    default:
        return std::nullopt;
    }
    // Inside the entry, in 64 bits: place_entry's 32-bit result wraps for a payload size
    // near 4 GiB, which would otherwise match a small entry.
    if (uint64_t{entry.payload_offset} + entry.payload_bytes > entry.entry_bytes) {
        return std::nullopt;
    }
    // Exactly where the writer places it: an on-page payload on whole pages.
    const EntryPlacement placement =
        place_entry(position, entry.payload_bytes, (entry.flags & kFlagPayloadOnPage) != 0);
    if (entry.payload_offset != placement.payload_offset || entry.entry_bytes != placement.entry_bytes) {
        return std::nullopt;
    }
    return entry;
}

std::optional<ConfchgPayload> check_confchg_payload(std::span<const std::byte> payload)
{
    ConfchgPayload header;
    if (payload.size() < sizeof(header)) {
        return std::nullopt;
    }
    std::memcpy(&header, payload.data(), sizeof(header));
    const uint64_t count = uint64_t{header.left_count} + header.joined_count + header.member_count;
    if (header.group_length > kMaxGroupNameBytes || sizeof(header) + count * kConfchgAddressBytes != payload.size()) {
        return std::nullopt;
    }
    return header;
}

std::optional<TotemPayload> check_totem_payload(std::span<const std::byte> payload)
{
    TotemPayload header;
    if (payload.size() < sizeof(header)) {
        return std::nullopt;
    }
    std::memcpy(&header, payload.data(), sizeof(header));
    if (sizeof(header) + uint64_t{header.member_count} * sizeof(uint32_t) != payload.size()) {
        return std::nullopt;
    }
    return header;
}

RingStep read_entry(const std::byte* data, uint64_t ring_bytes, uint64_t position, uint64_t tail, RingEntry& out)
{
    // A reader may stand ahead of the published tail by up to a ring: a join is answered
    // with its entry's position, which a member (or a sequencer holding entries back for
    // SAFE or for device copies) publishes a little later. Nothing to read yet.
    if (position == tail || (tail < position && position - tail <= ring_bytes)) {
        return RingStep::end;
    }
    if (!is_power_of_two(ring_bytes) || tail < position || tail - position > ring_bytes) {
        return RingStep::corrupt;
    }
    const uint64_t offset = position & (ring_bytes - 1);
    const std::optional<EntryHeader> entry =
        check_entry({data + offset, ring_bytes - offset}, position, ring_bytes, tail - position);
    if (!entry) {
        return RingStep::corrupt;
    }
    out.header = *entry;
    out.payload = entry->kind == EntryKind::pad
                      ? std::span<const std::byte>{}
                      : std::span<const std::byte>{data + offset + entry->payload_offset, entry->payload_bytes};
    return RingStep::entry;
}

}  // namespace rcpg::delivery
