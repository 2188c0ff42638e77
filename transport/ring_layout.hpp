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

#include <bit>
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

}  // namespace rcpg::transport::ring
