// What nodes write into each other's memory, besides the delivery ring entries themselves
// (delivery/ring_format.hpp): the records a node sends to the sequencer through its
// inbound ring, and the snapshot the sequencer hands a node it admits. Every decoder here
// reads bytes another node wrote: it checks every size and range and returns nothing for
// anything malformed (tests/fuzz runs them on arbitrary bytes).
#pragma once

#include "base/status.hpp"
#include "delivery/ring_format.hpp"
#include "ordering/group_table.hpp"
#include "transport/peer_word.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <span>
#include <variant>
#include <vector>

namespace rcpg::ordering::wire {

// Raised with every change of what nodes write to each other, the delivery ring's format
// included (4: EVS entries, delivery::kFlagEvs): a node of another version is refused at
// its hello, not taken for a faulty one at its first such entry.
inline constexpr uint32_t kClusterProtocolVersion = 4;

// Tags of the regions nodes expose to each other at connection set-up.
enum Tag : uint32_t {
    kTagDeliveryRing = 1,   // node → sequencer: its delivery ring's data area, to be written
    kTagSnapshot = 2,       // node → sequencer: where its admission snapshot goes
    kTagInboundCredit = 3,  // node → sequencer: the credit word of the node's inbound writer
    kTagInboundRing = 4,    // sequencer → node: the node's inbound ring at the sequencer
    kTagDeliveryCredit = 5, // sequencer → node: where the node publishes its consumed position,
                            // then how far its ring is complete (SAFE), then its holds
    kTagOwnRing = 6,        // sequencer → itself (loopback): its ring, target of device copies
    kTagHeartbeat = 7,      // both ways: the word the other side's heartbeat counter goes to
    kTagRingControl = 8,    // node → sequencer: the words behind the entries (kRingControlOffset)
    kTagRepairRing = 9,     // node → the node it asks to take over: its ring, to be read
};
// kTagDeliveryRing and kTagRepairRing name the ring's data area only; kTagRingControl the
// sequencer's three words in the ring header (cluster_tail, credit_request, stable_tail),
// and nothing else of the header page.
inline constexpr uint64_t kRingControlOffset = delivery::kClusterTailOffset;
inline constexpr uint64_t kRingControlBytes = delivery::kStableTailOffset + sizeof(uint64_t) - delivery::kClusterTailOffset;
static_assert(delivery::kCreditRequestOffset == kRingControlOffset + 8 && delivery::kStableTailOffset == kRingControlOffset + 16,
              "the sequencer's words follow each other");

// A member's reader may hold a payload in place (delivered in place, in a callback) after
// its entries moved to a backlog: the member's credit then passes it, and the sequencer's
// writer must go round those bytes in every ring (DeliveryRing::Hold). The member
// publishes each such hold in a word of its credit line, after the credit word and the
// SAFE word: the payload's offset in the ring (high half) and its bytes (low half); 0
// for none. A hold keeps its word while it lasts, so a read that catches the words half
// rewritten still sees every hold that lasts; a new hold's word lands before the credit
// that passes it (one queue pair: in order).
inline constexpr size_t kHoldWords = 6;

// At the sequencer, one line per member (kTagDeliveryCredit): what that member writes.
struct alignas(64) MemberLine {
    transport::PeerWord credit;  // the lowest ring position its readers still need
    transport::PeerWord held;    // how far its ring is complete (SAFE)
    std::array<transport::PeerWord, kHoldWords> holds;
};
static_assert(sizeof(MemberLine) == 64);

// At every node, one line per other node (kTagHeartbeat): its rising heartbeat counter.
struct alignas(64) HeartbeatLine {
    transport::PeerWord counter;
};
static_assert(sizeof(HeartbeatLine) == 64);
struct HeldBytes {
    uint64_t position;
    uint64_t bytes;
};
uint64_t encode_hold(uint64_t position, uint64_t bytes, uint64_t ring_bytes);
// The hold a word names, placed at the one lap where its bytes lie whole before `tail`
// (the sequencer's tail: every byte a member holds was written within a lap before it).
// Nothing for 0, or for a word that cannot be a hold: not entry-aligned, empty, larger
// than an entry, past the ring's end, or not yet written.
std::optional<HeldBytes> decode_hold(uint64_t word, uint64_t ring_bytes, uint64_t tail);

// Record types in a node's inbound ring at the sequencer (transport RecordHeader.type).
enum class InboundType : uint32_t {
    hello = 1,       // first record after connecting: asks to be admitted
    data = 2,        // DataPrefix + payload
    join = 3,        // GroupOp
    leave = 4,       // GroupOp
    procdown = 5,    // GroupOp: the process ended while a member
    node_leave = 6,  // the node stops cleanly (no body)
};

struct Hello {
    uint32_t protocol_version;
    uint32_t nodeid;
    uint64_t ring_bytes;  // every node's delivery ring must have the sequencer's size
    // A node of the view that lost its sequencer and continues under a new one fills in
    // where its ring stands; a node asking to be admitted leaves them 0.
    uint64_t ring_seq;         // ring id of the last view it applied
    uint64_t tail;             // its ring is complete and checked up to here
    uint64_t next_seq;         // sequence number of the entry at `tail`
    uint64_t reclaim_limit;    // the lowest position its readers still need
};
static_assert(sizeof(Hello) == 48);

struct DataPrefix {
    uint32_t pid;
    uint32_t group_id;     // as the sending node knows it; the sequencer checks membership
    uint16_t flags;        // ipc::kFlag* of the submission
    uint16_t reserved;
    uint32_t total_bytes;  // whole message, for fragments
};
static_assert(sizeof(DataPrefix) == 16);

struct GroupOpPrefix {
    uint32_t pid;
    uint32_t name_length;  // followed by the name's bytes
};
static_assert(sizeof(GroupOpPrefix) == 8);

struct GroupOp {
    uint32_t pid = 0;
    GroupName group;
};

struct Data {
    DataPrefix prefix{};
    std::span<const std::byte> payload;
};

struct NodeLeave {};

using Inbound = std::variant<Hello, Data, GroupOp, NodeLeave>;

struct InboundRecord {
    InboundType type;
    Inbound body;
};

// Decodes one inbound record; `payload` stays in the ring (Data::payload points into it).
std::optional<InboundRecord> decode_inbound(uint32_t type, std::span<const std::byte> payload);

// What a hello may mean at the sequencer, checked before anything is done on it (the
// hello is bytes another node wrote). Empty when it may be taken, else why not.
//   - Admission: a node asking to be admitted names itself, speaks this protocol, has a
//     ring of this size, and continues nothing (ring_seq, tail, next_seq, reclaim_limit 0).
//   - Rejoin: a survivor continuing this node's view under it names itself, speaks this
//     protocol, has a ring of this size, a tail on the entry grid, readers at most a ring
//     behind its tail; and its tail is at most a ring ahead of `local_floor`, the lowest
//     position this node's own readers still need: repairing this ring up to that tail
//     overwrites nothing they read. (A genuine survivor never claims more: the sequencer
//     it lost wrote no node more than a ring past the credit that node published, which is
//     at most its local floor.)
base::Status check_admission(const Hello& hello, uint32_t nodeid, uint64_t ring_bytes);
base::Status check_rejoin(const Hello& hello, uint32_t nodeid, uint64_t ring_bytes, uint64_t local_floor);

// Encodes a group operation (join, leave, procdown) record body.
std::vector<std::byte> encode_group_op(uint32_t pid, const GroupName& group);

// ---------------------------------------------------------------------------------------
// Admission snapshot: the sequencer's state at the position where the node's ring starts.
//
//   snapshot region: [ ready word: uint64 byte count of the snapshot, 0 until written |
//                      SnapshotHeader | member node ids | their last origins (uint64) |
//                      groups ]
// The sequencer writes the snapshot, then the ready word, on the same queue pair.

inline constexpr uint32_t kSnapshotMagic = 0x72637073;  // "rcps"
inline constexpr uint64_t kSnapshotReadyBytes = 8;
inline constexpr uint64_t kSnapshotRegionBytes = 4ull << 20;

struct SnapshotHeader {
    uint32_t magic;
    uint32_t protocol_version;
    uint64_t start_position;  // the node's ring starts here (its first entry is the
                              // totem confchg that admits it)
    uint64_t next_seq;        // sequence number of that first entry
    uint64_t ring_seq;        // totem ring id sequence before the admission
    uint32_t sequencer;
    uint32_t member_count;    // node ids of the view before the admission follow
    uint32_t next_group_id;
    uint32_t group_count;
};
static_assert(sizeof(SnapshotHeader) == 48);

struct SnapshotGroupHeader {
    uint32_t id;
    uint32_t member_count;  // followed by member_count (nodeid, pid) pairs
    uint32_t name_length;
    char name[delivery::kMaxGroupNameBytes];
};
static_assert(sizeof(SnapshotGroupHeader) == 140);

struct Snapshot {
    uint64_t start_position = 0;
    uint64_t next_seq = 1;
    uint64_t ring_seq = 0;
    uint32_t sequencer = 0;
    std::vector<uint32_t> members;
    // Per member: the number of its last forwarded record in the ring before the start
    // (a node that comes to sequence numbers the survivors' records on from there).
    std::vector<uint64_t> last_origins;
    GroupTable::Snapshot groups;
};

std::vector<std::byte> encode_snapshot(const Snapshot& snapshot);
std::optional<Snapshot> decode_snapshot(std::span<const std::byte> bytes);

// ---------------------------------------------------------------------------------------
// Delivery ring entries, as a node receives them from the sequencer.

// Checks the entry at `position` of a ring of `ring_bytes`, with `available` bytes
// committed from that position on, as libcpg checks what it reads (delivery::check_entry):
// sizes, alignment, kind, flags, the writer's exact placement (a large payload on whole
// pages), payload inside the entry, no wrap. Returns the entry's header (copied) if it is
// canonical.
std::optional<delivery::EntryHeader> check_entry(std::span<const std::byte> at_position, uint64_t position,
                                            uint64_t ring_bytes, uint64_t available);

struct Confchg {
    GroupName group;
    std::vector<delivery::MemberAddress> left;
    std::vector<delivery::MemberAddress> joined;
    std::vector<delivery::MemberAddress> members;
};
std::optional<Confchg> decode_confchg(std::span<const std::byte> payload);

struct TotemConf {
    uint32_t ring_nodeid = 0;
    uint64_t ring_seq = 0;
    std::vector<uint32_t> members;
};
std::optional<TotemConf> decode_totem(std::span<const std::byte> payload);
// The payload of a totem confchg entry.
std::vector<std::byte> encode_totem(const TotemConf& totem);

}  // namespace rcpg::ordering::wire
