// The delivery ring's format: the node's replicated log and its clients' delivery format
// at once. The sequencer writes it into every node's ring (by RDMA at the members), a
// member checks what it finds there before applying it, and every local client (libcpg)
// reads it. Entry kinds and flags, the entry header, the confchg and totem payloads, the
// ring header page, and where an entry of a given size is placed.
//
// Ownership (who may write what, and when):
//  - Only the node's daemon writes its ring, or its sequencer's writes land there (a
//    member checks them before it publishes `tail`). Clients map the header page shared
//    and read-only, and the data area privately (copy-on-write), so a callback that
//    modifies a message in place changes only its own handle's view (libcpg/dispatch.cpp).
//  - An entry at ring position p may be overwritten only once every reader that keeps it
//    has passed p (the daemon computes the minimum when it needs space), and never while
//    a reader holds its payload in a callback (ordering/NOTES.md, "Held payloads").
//
// Nothing here depends on the client API: the confchg records have corosync's
// `struct cpg_address` layout, which libcpg checks at compile time.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace rcpg::delivery {

inline constexpr uint32_t kRingMagic = 0x72637067;  // "rcpg"
// The ring's format version (RingHeader::version), raised whenever a struct here changes.
inline constexpr uint32_t kRingFormatVersion = 4;

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
// An EVS message (libevs): its payload starts with the groups it is for
// (delivery/evs_payload.hpp), its group_id is kEvsGroupId, and it is never fragmented.
inline constexpr uint16_t kFlagEvs = 1u << 6;
// The flags a sender may set on a submission (the rest are the daemon's).
inline constexpr uint16_t kSubmissionFlags =
    kFlagSafe | kFlagFragment | kFlagFragmentFirst | kFlagFragmentLast | kFlagFragmentAbort | kFlagEvs;
inline constexpr uint16_t kFragmentFlags = kFlagFragment | kFlagFragmentFirst | kFlagFragmentLast | kFlagFragmentAbort;

// The group_id of every EVS data entry. EVS groups are chosen per message by the sender
// and joined per handle by the node's clients alone, so the daemons number none of them:
// every EVS client reads every EVS entry and its library keeps those of its groups. No
// CPG group is ever given this number (ordering/group_table.cpp).
inline constexpr uint32_t kEvsGroupId = 0xFFFFFFFFu;

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

// Why a process is in a confchg's left or joined list (corosync's cpg_reason_t values).
enum Reason : uint32_t {
    reason_undefined = 0,
    reason_join = 1,
    reason_leave = 2,
    reason_node_down = 3,
    reason_node_up = 4,
    reason_process_down = 5,
};

// One process record of a confchg payload: corosync's `struct cpg_address`.
struct MemberAddress {
    uint32_t nodeid;
    uint32_t pid;
    uint32_t reason;  // a Reason
};
static_assert(sizeof(MemberAddress) == 12);

// The most bytes of a group name (CPG_MAX_NAME_LENGTH).
inline constexpr uint32_t kMaxGroupNameBytes = 128;

// Payload of a confchg entry, followed by (left + joined + members) MemberAddress records.
struct ConfchgPayload {
    uint32_t left_count;
    uint32_t joined_count;
    uint32_t member_count;
    uint32_t group_length;
    char group_value[kMaxGroupNameBytes];
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

}  // namespace rcpg::delivery
