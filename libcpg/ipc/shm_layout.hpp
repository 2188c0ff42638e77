// The shared-memory layout between rcpgd and libcpg: the node delivery ring, the
// per-client control block with its submission ring, and the per-client send arena.
//
// Ownership (who may write what, and when):
//  - Delivery ring: only the daemon writes. Clients map the header page shared and
//    read-only, and the data area privately (copy-on-write), so a callback that modifies
//    a message in place changes only its own handle's view (see libcpg/dispatch.cpp).
//    An entry at ring position p may be overwritten only once every pinning client's
//    `consumed` has passed p (the daemon computes the minimum when it needs space).
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

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace rcpg::ipc {

inline constexpr uint32_t kRingMagic = 0x72637067;  // "rcpg"
inline constexpr uint32_t kControlMagic = 0x72637063;
inline constexpr uint32_t kLayoutVersion = 3;

inline constexpr size_t kPageBytes = 4096;
inline constexpr size_t kCacheLineBytes = 64;
inline constexpr size_t kEntryAlignBytes = 8;

// The largest message that travels as one ring entry; larger ones are fragmented by the
// library into pieces of at most this size and reassembled before delivery.
inline constexpr uint32_t kMaxAtomicMessageBytes = 1024 * 1024;

// Payloads of at least this size are placed on whole pages in the ring and delivered in
// place; smaller ones are copied into the handle's buffer, which is cheaper than the
// page bookkeeping that in-place writes by the application need.
inline constexpr uint32_t kInPlaceDeliveryMinBytes = 4096;

enum class EntryKind : uint16_t {
    pad = 0,          // filler up to the end of the ring; skip it
    data = 1,         // a message (or a fragment of one)
    confchg = 2,      // a group membership change
    totem_confchg = 3, // a cluster membership change
    dropped = 4,      // a node's record the sequencer did not deliver (its sender was no
                      // member); tells that node its record is done. Skip it
    skip = 5          // filler over the bytes of an older entry that a reader still holds in
                      // a callback (delivered in place); only its size and kind are written.
                      // Skip it
};

// Flags of a data entry (and of the submission that produced it).
inline constexpr uint16_t kFlagSafe = 1u << 0;
inline constexpr uint16_t kFlagFragment = 1u << 1;  // part of a message above the atomic size
inline constexpr uint16_t kFlagFragmentFirst = 1u << 2;
inline constexpr uint16_t kFlagFragmentLast = 1u << 3;
inline constexpr uint16_t kFlagFragmentAbort = 1u << 4;  // discard the partial message
inline constexpr uint16_t kFlagPayloadOnPage = 1u << 5;  // payload starts on a page boundary
// The flags a sender may set on a submission (the rest are the daemon's).
inline constexpr uint16_t kSubmissionFlags =
    kFlagSafe | kFlagFragment | kFlagFragmentFirst | kFlagFragmentLast | kFlagFragmentAbort;

// Every ring entry starts with this header; entries are 8-byte aligned and never wrap
// (a pad entry fills the end of the ring instead).
struct EntryHeader {
    uint32_t entry_bytes;  // header + padding + payload + tail padding
    EntryKind kind;
    uint16_t flags;
    uint64_t seq;          // global sequence number: one total order over all groups
    uint32_t group_id;     // the daemon's number for the group, stable while it has members
    uint32_t nodeid;       // source process (data) or 0
    uint32_t pid;
    uint32_t payload_bytes;
    uint32_t payload_offset;  // from the start of the entry
    uint32_t total_bytes;     // whole message size, for fragments
    // Entries made from another node's forwarded record: that record's number in the
    // node's forwarding stream (1, 2, ...), by which it learns after a sequencer failover
    // which of its records were sequenced and resends the rest. 0 otherwise.
    uint64_t origin_seq;
};
static_assert(sizeof(EntryHeader) == 48);
static_assert(sizeof(EntryHeader) % kEntryAlignBytes == 0);
static_assert(offsetof(EntryHeader, kind) == 4, "pad entries are recognised from 8 bytes");

// Payload of a confchg entry, followed by (left + joined + members) cpg_address records.
struct ConfchgPayload {
    uint32_t left_count;
    uint32_t joined_count;
    uint32_t member_count;
    uint32_t group_length;
    char group_value[128];
};
static_assert(sizeof(ConfchgPayload) == 144);

// Payload of a totem confchg entry, followed by member_count node ids.
struct TotemPayload {
    uint32_t ring_nodeid;
    uint32_t member_count;
    uint64_t ring_seq;
};
static_assert(sizeof(TotemPayload) == 16);

struct alignas(kCacheLineBytes) RingHeader {
    uint32_t magic;
    uint32_t version;
    uint64_t data_bytes;  // power of two; the data area follows the header page
    uint32_t nodeid;
    uint32_t reserved0;
    // Bytes ever published; entries in [consumed, tail) are complete.
    alignas(kCacheLineBytes) std::atomic<uint64_t> tail;
    // Set while the daemon is about to block: a client that publishes a submission then
    // rings the doorbell (eventcount; see daemon/daemon.cpp).
    alignas(kCacheLineBytes) std::atomic<uint32_t> daemon_sleeping;
    // The daemon's CLOCK_MONOTONIC_COARSE in milliseconds, stored by its loop on every turn
    // (while it sleeps, a client's doorbell wakes it). A sender that finds it older than
    // kDaemonSilenceMs asks the kernel whether the daemon's socket hung up, so a dead
    // daemon is noticed within that bound without a system call per message.
    std::atomic<uint64_t> alive_ms;
    // Raised while the ring is nearly full; clients report it as flow control.
    alignas(kCacheLineBytes) std::atomic<uint32_t> flow_control;
    // Multi-node only, written by the sequencer's RDMA writes (clients never read them):
    // the position up to which entries have landed in the data area (written after them
    // on the same queue pair), the position the sequencer asks to be credited when it is
    // short of room, and the position up to which every node of the view holds the
    // entries (SAFE delivery waits for it). The daemon checks what landed and then
    // publishes `tail`.
    alignas(kCacheLineBytes) std::atomic<uint64_t> cluster_tail;
    std::atomic<uint64_t> credit_request;
    std::atomic<uint64_t> stable_tail;
};
static_assert(sizeof(RingHeader) <= kPageBytes);
inline constexpr size_t kClusterTailOffset = offsetof(RingHeader, cluster_tail);
inline constexpr size_t kCreditRequestOffset = offsetof(RingHeader, credit_request);
inline constexpr size_t kStableTailOffset = offsetof(RingHeader, stable_tail);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

// How long the daemon's `alive_ms` may stand still before a sender checks the daemon's
// socket: a message accepted with CS_OK after the daemon died was sent at most this long
// (plus one tick of the coarse clock) after its death.
inline constexpr uint64_t kDaemonSilenceMs = 50;

// One message handed from a client to the daemon: `length` bytes at `arena_offset`.
struct SubmissionDescriptor {
    uint64_t arena_offset;
    uint32_t length;
    uint16_t flags;        // kFlag* (safe, fragment markers)
    uint16_t reserved;
    uint64_t total_bytes;  // whole message size, for fragments
    uint64_t reserved2;
};
static_assert(sizeof(SubmissionDescriptor) == 32);

struct alignas(kCacheLineBytes) ControlBlock {
    uint32_t magic;
    uint32_t version;
    uint32_t submission_capacity;  // power of two
    uint32_t reserved0;
    // Ring position up to which this client has consumed entries.
    alignas(kCacheLineBytes) std::atomic<uint64_t> consumed;
    // Eventcount: 0, or 1 + the ring position the client has read up to when it went idle:
    // it wants one wake event for an entry of its group at or after that position. The
    // position lets the daemon skip a client that has already read the entries it just
    // published (so a wake event always stands for an unread entry).
    alignas(kCacheLineBytes) std::atomic<uint64_t> waiting;
    // Submissions published by the client (count, monotonic).
    alignas(kCacheLineBytes) std::atomic<uint64_t> sub_tail;
    // Submissions taken by the daemon (count, monotonic); `sub_head_futex` mirrors its
    // low 32 bits for futex waits of a client waiting for its buffer to be taken.
    alignas(kCacheLineBytes) std::atomic<uint64_t> sub_head;
    std::atomic<uint32_t> sub_head_futex;
    std::atomic<uint32_t> submitter_waiting;
    // Set by the daemon (never cleared) before it stops keeping ring entries for this
    // client: a client cut off for not reading, for breaking the rules, or whose
    // connection closed. The client checks it after copying an entry and before handing
    // it to a callback (seqlock-style: the daemon sets it before any of the client's
    // slots can be reused), so it never delivers bytes from a slot it no longer owns.
    // The client can clear it, which only misleads itself.
    alignas(kCacheLineBytes) std::atomic<uint32_t> cut_off;
    // The backlog (libcpg/NOTES.md, "A slow reader"): when this client falls far behind,
    // the daemon copies its entries out of the ring into the client's backlog, a ring of
    // its own (same entry format, positions of its own) that only the daemon writes, and
    // stops keeping them in the ring. Written by the daemon: `backlog_tail` (bytes ever
    // appended to the backlog; stored before `moved_to`), `moved_to` (the ring position
    // below which every entry of this client's is in the backlog, or was read before).
    alignas(kCacheLineBytes) std::atomic<uint64_t> backlog_tail;
    std::atomic<uint64_t> moved_to;
    // Written by the client (untrusted: a lie only holds the ring back, as a stuck reader
    // would): `backlog_consumed`, how far it has read its backlog; `holding`, 0 or 1 + the
    // ring position of an entry it is handing to a callback in place, which the daemon then
    // keeps in the ring although it was moved (the client stores it, then re-reads
    // `moved_to`; the daemon stores `moved_to`, then reads it: Dekker).
    alignas(kCacheLineBytes) std::atomic<uint64_t> backlog_consumed;
    std::atomic<uint64_t> holding;
};
static_assert(sizeof(ControlBlock) <= kPageBytes);

inline constexpr size_t kControlDescriptorsOffset = kPageBytes;

inline constexpr size_t control_block_bytes(uint32_t submission_capacity)
{
    return kControlDescriptorsOffset + size_t{submission_capacity} * sizeof(SubmissionDescriptor);
}

inline constexpr uint64_t align_up(uint64_t value, uint64_t alignment)
{
    return (value + alignment - 1) & ~(alignment - 1);
}

inline constexpr bool is_power_of_two(uint64_t value) { return value != 0 && (value & (value - 1)) == 0; }

// Where an entry carrying `payload_bytes` places its payload, and how many ring bytes it
// takes, when it starts at ring position `position`.
struct EntryPlacement {
    uint32_t payload_offset;
    uint32_t entry_bytes;
};

inline constexpr EntryPlacement place_entry(uint64_t position, uint32_t payload_bytes, bool on_page)
{
    uint64_t payload_start = position + sizeof(EntryHeader);
    uint64_t end = 0;
    if (on_page) {
        payload_start = align_up(payload_start, kPageBytes);
        end = align_up(payload_start + payload_bytes, kPageBytes);
    } else {
        end = align_up(payload_start + payload_bytes, kEntryAlignBytes);
    }
    return {static_cast<uint32_t>(payload_start - position), static_cast<uint32_t>(end - position)};
}

// The most ring bytes one entry can take (an atomic-size message on whole pages).
inline constexpr uint64_t kMaxEntryBytes =
    align_up(kMaxAtomicMessageBytes + sizeof(EntryHeader) + kPageBytes, kPageBytes) + kPageBytes;

}  // namespace rcpg::ipc
