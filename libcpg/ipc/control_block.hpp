// The per-client control block between rcpgd and libcpg, with its submission ring, and
// the per-client send arena and backlog. The delivery ring they refer to has its own
// format (delivery/ring_format.hpp), shared with the cluster protocol.
//
// Ownership (who may write what, and when):
//  - Control block: shared read-write. The client writes `consumed`, `waiting`,
//    `sub_tail`, the descriptors, `backlog_consumed` and `holding`; the daemon writes
//    `sub_head`, `cut_off`, `backlog_tail` and `moved_to`, and reads the rest.
//    Everything the daemon reads here is untrusted: it keeps its own copy of what it
//    has consumed and validates every descriptor against the arena bounds.
//  - Backlog (per client, see ControlBlock::backlog_tail): only the daemon writes it; the
//    client maps it read-only and copies out what it delivers.
//  - Send arena: written by the client, read by the daemon. The daemon creates and seals
//    it (no shrink), so a client cannot make the daemon fault by truncating it.
#pragma once

#include "delivery/ring_format.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace rcpg::ipc {

inline constexpr uint32_t kControlMagic = 0x72637063;
// The control block's version (ControlBlock::version).
inline constexpr uint32_t kControlVersion = 3;

// One message handed from a client to the daemon: `length` bytes at `arena_offset`.
struct SubmissionDescriptor {
    uint64_t arena_offset;
    uint32_t length;
    uint16_t flags;        // delivery::kSubmissionFlags (safe, fragment markers)
    uint16_t reserved;
    uint64_t total_bytes;  // whole message size, for fragments
    uint64_t reserved2;
};
static_assert(sizeof(SubmissionDescriptor) == 32);

struct alignas(delivery::kCacheLineBytes) ControlBlock {
    uint32_t magic;
    uint32_t version;
    uint32_t submission_capacity;  // power of two
    uint32_t reserved0;
    // Ring position up to which this client has consumed entries.
    alignas(delivery::kCacheLineBytes) std::atomic<uint64_t> consumed;
    // Eventcount: 0, or 1 + the ring position the client has read up to when it went idle:
    // it wants one wake event for an entry of its group at or after that position. The
    // position lets the daemon skip a client that has already read the entries it just
    // published (so a wake event always stands for an unread entry).
    alignas(delivery::kCacheLineBytes) std::atomic<uint64_t> waiting;
    // Submissions published by the client (count, monotonic).
    alignas(delivery::kCacheLineBytes) std::atomic<uint64_t> sub_tail;
    // Submissions taken by the daemon (count, monotonic); `sub_head_futex` mirrors its
    // low 32 bits for futex waits of a client waiting for its buffer to be taken.
    alignas(delivery::kCacheLineBytes) std::atomic<uint64_t> sub_head;
    std::atomic<uint32_t> sub_head_futex;
    std::atomic<uint32_t> submitter_waiting;
    // Set by the daemon (never cleared) before it stops keeping ring entries for this
    // client: a client cut off for not reading, for breaking the rules, or whose
    // connection closed. The client checks it after copying an entry and before handing
    // it to a callback (seqlock-style: the daemon sets it before any of the client's
    // slots can be reused), so it never delivers bytes from a slot it no longer owns.
    // The client can clear it, which only misleads itself.
    alignas(delivery::kCacheLineBytes) std::atomic<uint32_t> cut_off;
    // The backlog (libcpg/NOTES.md, "A slow reader"): when this client falls far behind,
    // the daemon copies its entries out of the ring into the client's backlog, a ring of
    // its own (same entry format, positions of its own) that only the daemon writes, and
    // stops keeping them in the ring. Written by the daemon: `backlog_tail` (bytes ever
    // appended to the backlog; stored before `moved_to`), `moved_to` (the ring position
    // below which every entry of this client's is in the backlog, or was read before).
    alignas(delivery::kCacheLineBytes) std::atomic<uint64_t> backlog_tail;
    std::atomic<uint64_t> moved_to;
    // Written by the client (untrusted: a lie only holds the ring back, as a stuck reader
    // would): `backlog_consumed`, how far it has read its backlog; `holding`, 0 or 1 + the
    // ring position of an entry it is handing to a callback in place, which the daemon then
    // keeps in the ring although it was moved (the client stores it, then re-reads
    // `moved_to`; the daemon stores `moved_to`, then reads it: Dekker).
    alignas(delivery::kCacheLineBytes) std::atomic<uint64_t> backlog_consumed;
    std::atomic<uint64_t> holding;
};
static_assert(sizeof(ControlBlock) <= delivery::kPageBytes);

inline constexpr size_t kControlDescriptorsOffset = delivery::kPageBytes;

inline constexpr size_t control_block_bytes(uint32_t submission_capacity)
{
    return kControlDescriptorsOffset + size_t{submission_capacity} * sizeof(SubmissionDescriptor);
}

}  // namespace rcpg::ipc
