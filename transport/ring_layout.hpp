// The remote ring's memory layout, shared by RingWriter (the node that writes by RDMA)
// and RingReader (the node whose memory it is).
//
//   reader's ring region:   [ data: ring_bytes (power of two) | control: tail word,
//                                                                credit request word ]
//   writer's credit region: [ consumed word ]
//
// Positions are byte counts since the ring was created (uint64, never wrap in practice);
// a position's offset in the data is position & (ring_bytes - 1). A record is an 8-byte
// header and its payload, padded to 8 bytes, and never wraps: when it does not fit before
// the end, a padding record fills the rest and the record starts at offset 0.
#pragma once

#include "transport/peer_word.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>

namespace rcpg::transport::ring {

struct RecordHeader {
    uint32_t payload_bytes = 0;
    uint32_t type = 0;  // caller-defined; kPaddingType marks padding
};

inline constexpr uint32_t kHeaderBytes = sizeof(RecordHeader);
inline constexpr uint32_t kRecordAlignBytes = 8;
inline constexpr uint32_t kPaddingType = 0xffffffffu;
inline constexpr uint64_t kTailWordBytes = sizeof(uint64_t);
inline constexpr uint64_t kCreditWordBytes = sizeof(uint64_t);
// In the control block, behind the tail: the committed position up to which a writer
// short of room asks for credits (so the reader need not publish eagerly).
inline constexpr uint64_t kCreditRequestOffset = kTailWordBytes;
inline constexpr uint64_t kCreditRequestBytes = sizeof(uint64_t);
// The control block gets its own cache line so tail writes never share one with data.
inline constexpr uint64_t kControlBytes = 64;
inline constexpr uint64_t kMinRingBytes = 256;

static_assert(kHeaderBytes == kRecordAlignBytes, "a padding record is exactly one header");
static_assert(kCreditRequestOffset + kCreditRequestBytes <= kControlBytes);

// The control block behind the data: the words the writer writes into the reader's memory.
struct alignas(kControlBytes) Control {
    PeerWord tail;            // committed position
    PeerWord credit_request;  // kCreditRequestOffset
};
static_assert(offsetof(Control, credit_request) == kCreditRequestOffset && sizeof(Control) == kControlBytes);

constexpr uint64_t region_bytes(uint64_t ring_bytes) { return ring_bytes + kControlBytes; }
constexpr uint64_t record_bytes(uint64_t payload_bytes)
{
    return (kHeaderBytes + payload_bytes + kRecordAlignBytes - 1) & ~uint64_t{kRecordAlignBytes - 1};
}
constexpr bool valid_ring_bytes(uint64_t ring_bytes)
{
    return std::has_single_bit(ring_bytes) && ring_bytes >= kMinRingBytes;
}
// A record no larger than half the ring always fits an empty ring, wherever the tail is:
// either before the end, or after padding to the end.
constexpr uint64_t max_record_bytes(uint64_t ring_bytes) { return ring_bytes / 2; }

// The words another node writes into our memory (its NIC's aligned 8-byte stores) are
// taken only inside the window a correct writer keeps to; any other value is a torn or
// corrupt write, or a hostile one, and the last good value stays. Pure, so that
// tests/fuzz/fuzz_control_words can drive them with any sequence of values.

// A committed tail: never backwards, never more than a ring past what the reader released
// (the writer respects the reader's credits). `last` >= `released`.
constexpr uint64_t accept_tail(uint64_t value, uint64_t last, uint64_t released, uint64_t ring_bytes)
{
    return value >= last && value - released <= ring_bytes ? value : last;
}

// A consumed position (credit): never backwards, never past what the writer committed.
constexpr uint64_t accept_credit(uint64_t value, uint64_t last, uint64_t committed)
{
    return value >= last && value <= committed ? value : last;
}

// A writer's request for credits: only forwards, and never beyond the tail read after it
// (the writer posts it behind the tail write that covers it, on the same queue pair).
constexpr uint64_t accept_request(uint64_t value, uint64_t last, uint64_t tail)
{
    return value > last && value <= tail ? value : last;
}

}  // namespace rcpg::transport::ring
