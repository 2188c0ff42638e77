// Reading the delivery ring: what every reader (libcpg, a member's rcpgd checking what the
// sequencer wrote) checks of an entry before it uses a byte of it.
//
// The ring's writer (rcpgd's DeliveryRing) writes only canonical entries: each starts on
// an 8-byte boundary, never wraps (a pad entry fills the ring's end), and is placed
// exactly as place_entry() places it, which also fixes where its payload starts; a data
// entry's payload is on whole pages exactly when it is kInPlaceDeliveryMinBytes or more,
// and carries only the flags a sender may set plus kFlagPayloadOnPage; every other kind
// has no flags; confchg and totem payloads have exactly the size their counts give. So
// anything else in a ring was not written by rcpgd's writer, and a reader takes it for
// a broken ring (the daemon's failure), never as data. Fragment fields (total_bytes, the
// first/last markers) come from the sender, which the daemon does not vouch for: the
// reassembly checks them.
#pragma once

#include "delivery/ring_format.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace rcpg::delivery {

// Bytes of one member record in a confchg payload.
inline constexpr size_t kConfchgAddressBytes = sizeof(MemberAddress);

// The entry at ring `position` of a ring of `ring_bytes` (a power of two), given the bytes
// from that position to the ring's end (`to_end`) and how many bytes from there are
// published (`available`, tail - position). Its header when the entry is canonical and
// lies wholly within what is published; nullopt when it is not.
std::optional<EntryHeader> check_entry(std::span<const std::byte> to_end, uint64_t position, uint64_t ring_bytes,
                                       uint64_t available);

// The header of a confchg payload whose size matches its counts exactly and whose group
// name fits; nullopt otherwise. The addresses follow the header: left, joined, members.
std::optional<ConfchgPayload> check_confchg_payload(std::span<const std::byte> payload);

// The header of a totem confchg payload whose size matches its member count exactly;
// the node ids (uint32) follow it.
std::optional<TotemPayload> check_totem_payload(std::span<const std::byte> payload);

// One step of a reader's walk: the checked entry at `position` (< tail) and its payload.
struct RingEntry {
    EntryHeader header;
    std::span<const std::byte> payload;
};
enum class RingStep { entry, end, corrupt };

// Reads the entry at `position` of the ring `data` (of `ring_bytes`, a power of two)
// whose writer has published up to `tail`: `end` when position == tail or the tail is
// behind it by at most a ring (published later), `corrupt` when the positions cannot be
// (tail more than a ring behind or ahead) or the entry is not canonical, else `entry`
// with `out` filled in.
RingStep read_entry(const std::byte* data, uint64_t ring_bytes, uint64_t position, uint64_t tail, RingEntry& out);

}  // namespace rcpg::delivery
