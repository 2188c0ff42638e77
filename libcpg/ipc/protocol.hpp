// The control protocol between libcpg and rcpgd over libqb IPC. Bulk data never travels
// here: messages go through the shared-memory send arena and delivery ring.
//
// Every request starts with qb_ipc_request_header {id, size}; every response with
// qb_ipc_response_header {id, size, error}, where error is a cs_error_t. The daemon
// decodes requests with decode_request(), which accepts only a request whose size
// matches its id exactly and whose fields are in range: anything else is answered with
// CS_ERR_MESSAGE_ERROR without touching daemon state.
//
// Every request but init needs a prior init on the connection (CS_ERR_INIT otherwise),
// except the two read-only queries of daemon-wide state, status and iteration_snapshot:
// they create nothing for the connection, so an operator tool (tools/rcpg-cpgtool.cpp)
// asks them without becoming a client: no shared memory, no send arena registered with
// the RDMA device, no hold on the delivery ring. Who may connect at all is checked when
// the connection is accepted, for tools as for clients.
#pragma once

#include "delivery/evs_payload.hpp"
#include "delivery/ring_format.hpp"
#include "libcpg/ipc/control_block.hpp"

#include <qb/qbipc_common.h>

#include <corosync/cpg.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <variant>
#include <vector>

namespace rcpg::ipc {

// The delivery ring's confchg records and group names are the client API's, byte for
// byte: libcpg hands them to callbacks as they are, and rcpgd answers membership requests
// with the protocol's lists.
static_assert(sizeof(delivery::MemberAddress) == sizeof(cpg_address) &&
              offsetof(delivery::MemberAddress, nodeid) == offsetof(cpg_address, nodeid) &&
              offsetof(delivery::MemberAddress, pid) == offsetof(cpg_address, pid) &&
              offsetof(delivery::MemberAddress, reason) == offsetof(cpg_address, reason));
static_assert(uint32_t{delivery::reason_join} == CPG_REASON_JOIN && uint32_t{delivery::reason_leave} == CPG_REASON_LEAVE &&
              uint32_t{delivery::reason_node_down} == CPG_REASON_NODEDOWN &&
              uint32_t{delivery::reason_node_up} == CPG_REASON_NODEUP &&
              uint32_t{delivery::reason_process_down} == CPG_REASON_PROCDOWN &&
              uint32_t{delivery::reason_undefined} == CPG_REASON_UNDEFINED);
static_assert(delivery::kMaxGroupNameBytes == CPG_MAX_NAME_LENGTH);

inline constexpr uint32_t kProtocolVersion = 3;

// The libqb IPC buffer size: the largest control message either way.
inline constexpr size_t kIpcMaxMessageBytes = 1024 * 1024;

enum class RequestId : int32_t {
    init = 1,
    finalize = 2,
    join = 3,
    leave = 4,
    membership_get = 5,
    local_get = 6,
    iteration_snapshot = 7,
    wake_me = 8,  // one-way: the daemon answers with a wake event, not a response
    status = 9,   // a BareRequest, answered with a StatusResponse
    // EVS (libevs) clients only, which in turn send none of join, leave, membership_get.
    evs_join = 10,   // an EvsGroupsRequest, answered with an EvsGroupsResponse
    evs_leave = 11,  // likewise
    view_get = 12,   // a BareRequest, answered with a ViewResponse (any client)
    evs_groups = 13, // a BareRequest, answered with an EvsGroupsList: every EVS client's groups
};

// Whether a request of this id may come before init (see the file comment).
constexpr bool needs_init(RequestId id)
{
    return id != RequestId::init && id != RequestId::status && id != RequestId::iteration_snapshot &&
           id != RequestId::evs_groups;
}

enum class EventId : int32_t {
    wake = 1,
};

inline constexpr uint32_t kInitFlagTotemCallback = 1u << 0;
// An EVS handle: it reads every EVS message (its library keeps those of its groups) and
// every totem confchg, from init on, and sends EVS messages only.
inline constexpr uint32_t kInitFlagEvs = 1u << 1;

struct InitRequest {
    qb_ipc_request_header header;
    uint32_t protocol_version;
    uint32_t flags;  // kInitFlag*
};

struct InitResponse {
    qb_ipc_response_header header;
    uint32_t nodeid;
    uint32_t submission_capacity;
    uint64_t ring_data_bytes;
    uint64_t arena_bytes;
    uint64_t arena_copy_bytes;  // [0, copy) for copied sends, [copy, arena) for zcb buffers
    uint64_t control_bytes;
    uint64_t start_position;    // where a client with a totem callback starts reading
    uint64_t backlog_bytes;     // the client's backlog (a power of two), 0: none
    uint8_t token[16];          // presented on the fd-passing socket
};

inline constexpr uint32_t kJoinFlagInitialTotemConf = 1u << 0;

struct GroupRequest {  // join, leave, membership_get
    qb_ipc_request_header header;
    cpg_name group;
    uint32_t flags;
};

struct RingIdWire {
    uint32_t nodeid;
    uint32_t member_count;
    uint64_t seq;
};

// Followed by member_count node ids of the current ring.
struct JoinResponse {
    qb_ipc_response_header header;
    uint32_t group_id;
    uint32_t reserved;
    uint64_t join_position;  // ring position of this handle's own join confchg
    uint64_t join_seq;
    RingIdWire ring;
};

// Followed by count cpg_address records (membership) or iteration descriptions.
struct ListResponse {
    qb_ipc_response_header header;
    uint32_t count;
    uint32_t reserved;
};

struct LocalGetResponse {
    qb_ipc_response_header header;
    uint32_t nodeid;
    uint32_t reserved;
};

struct IterationRequest {
    qb_ipc_request_header header;
    uint32_t iteration_type;  // cpg_iteration_type_t
    uint32_t has_group;
    cpg_name group;
};

struct BareRequest {  // finalize, local_get, wake_me, status, view_get, evs_groups
    qb_ipc_request_header header;
};

// ---- EVS ----

using EvsKey = std::array<char, delivery::kEvsGroupKeyBytes>;

// corosync's limit on the groups of one evs_join (CS_ERR_TOO_MANY_GROUPS beyond), and
// rcpg's on the groups one handle holds (the daemon keeps them for rcpg-cpgtool).
inline constexpr uint32_t kEvsMaxGroupsPerJoin = 50;
inline constexpr uint32_t kEvsMaxGroupsPerHandle = 8192;

// Followed by `count` keys. evs_join: count <= kEvsMaxGroupsPerJoin is checked by the
// daemon (an error code, not a malformed request); both are bounded by the IPC size.
struct EvsGroupsRequestHeader {
    qb_ipc_request_header header;
    uint32_t count;
    uint32_t reserved;
};

struct EvsGroupsRequest {
    std::vector<EvsKey> keys;
};

struct EvsGroupsResponse {
    qb_ipc_response_header header;
    // Entries with this seq or later are the first after the change: a joined group's
    // messages from there on are delivered, a left one's no longer.
    uint64_t next_seq;
    uint32_t done;  // groups joined, or left before the first not joined (CS_ERR_NOT_EXIST)
    uint32_t reserved;
};

// Followed by ring.member_count node ids: the node's current view.
struct ViewResponse {
    qb_ipc_response_header header;
    uint32_t nodeid;
    uint32_t reserved;
    RingIdWire ring;
};

// One row of the EVS listing (rcpg-cpgtool): a group an EVS client joined, or a client
// with no group (has_key 0). A client's rows come together, the first marked (a process
// may hold several EVS handles).
struct EvsGroupRow {
    uint32_t pid;
    uint8_t has_key;
    uint8_t first_of_client;
    uint8_t reserved[2];
    char key[delivery::kEvsGroupKeyBytes];
};
static_assert(sizeof(EvsGroupRow) == 40);

// Followed by `count` rows; `total` rows there were (count is cut to the IPC size).
struct EvsGroupsList {
    qb_ipc_response_header header;
    uint32_t count;
    uint32_t total;
};

// The status response: the daemon's own state, for operators. One fixed-size record
// (no variable tail), so a reader checks one size; lists are bounded, with the full
// count beside them so a reader knows when one was cut.
inline constexpr uint32_t kStatusMaxNodes = 64;

enum class NodeRole : uint8_t {
    single = 1,     // a one-node cluster: sequences locally, no RDMA
    sequencer = 2,  // sequences for the whole cluster
    member = 3,     // forwards to the sequencer
};

// The sequencer's view of another configured node (ordering::RemoteStatus).
enum class RemoteState : uint8_t {
    absent = 1,     // not connected
    connected = 2,  // connected, waiting for its hello to be admitted
    member = 3,     // in the view
    leaving = 4,    // asked to leave, gets its own removal
};

struct StatusCounters {  // daemon::Counters, since the daemon started
    uint64_t messages_sequenced;
    uint64_t bytes_sequenced;
    uint64_t confchgs_sequenced;
    uint64_t messages_delivered;  // data entries that reached this node's ring
    uint64_t bytes_delivered;
    uint64_t messages_forwarded;  // sent to the sequencer (members)
    uint64_t bytes_forwarded;
    uint64_t flow_control_events;
    uint64_t ring_full_events;
    uint64_t rdma_errors;
    uint64_t protocol_violations;
    uint64_t messages_copied_by_device;  // sequencer: payloads its loopback copied into its ring
    uint64_t bytes_copied_by_device;
    uint64_t nodes_failed;      // sequencer: nodes it removed from the view for failing
    uint64_t failovers;         // times this node went on under a new sequencer
    uint64_t last_failover_ms;  // the last one, from losing the sequencer to the new view
    uint64_t records_resent;    // forwarded records sent again to a new sequencer
    uint64_t stuck_clients_disconnected;  // read nothing while they held a full ring back
    uint64_t clients_refused;  // connections over a cap, or on the descriptor socket unawaited
    uint64_t handshakes_refused;  // fabric connection attempts that did not prove the cluster key
    uint64_t backlog_moves;          // times a slow reader's entries were moved to its backlog
    uint64_t backlog_entries_moved;  // entries moved so
    uint64_t backlog_overflows;      // clients cut off because their backlog was full
};
static_assert(sizeof(StatusCounters) == 23 * sizeof(uint64_t));

// At the sequencer, one per other configured node. Positions are the shared ring's.
struct StatusRemote {
    uint32_t nodeid;
    uint8_t state;  // RemoteState
    uint8_t reserved[3];
    // Replication lag: sequenced here, not yet posted into its ring.
    uint64_t unsent_bytes;
    // Written into its ring and not yet released there, as it last published (lazily,
    // so at most this much): the sequencer appends no further than a ring beyond it.
    uint64_t unreleased_bytes;
    // Its inbound ring here: committed by it, not yet sequenced.
    uint64_t inbound_used_bytes;
    uint64_t inbound_capacity_bytes;
};
static_assert(sizeof(StatusRemote) == 40);

struct StatusResponse {
    qb_ipc_response_header header;
    uint32_t nodeid;
    uint8_t role;          // NodeRole
    uint8_t flow_control;  // 1 while senders are refused with CS_ERR_TRY_AGAIN
    uint8_t reserved[2];
    uint32_t sequencer;    // with ring_seq, the totem ring id of the current view
    uint32_t local_clients;
    uint64_t ring_seq;
    // The delivery ring: bytes between the oldest position a reader still needs (locally,
    // and at the sequencer on any node of the view) and the tail, out of its capacity.
    uint64_t ring_used_bytes;
    uint64_t ring_capacity_bytes;
    StatusCounters counters;
    uint32_t view_count;    // nodes in the view; the first min(count, kStatusMaxNodes) below
    uint32_t remote_count;  // other configured nodes (sequencer only); likewise
    uint32_t view[kStatusMaxNodes];  // ascending
    StatusRemote remotes[kStatusMaxNodes];  // ascending nodeid
    // Clients' send memory now registered with the RDMA device: locked memory, which
    // rcpgd's RLIMIT_MEMLOCK must hold unless it has CAP_IPC_LOCK.
    uint64_t client_pinned_bytes;
    // Slow readers' backlogs: each client's budget, what they hold now (entries moved out
    // of the ring and not read yet) and how many clients hold some.
    uint64_t client_backlog_budget_bytes;
    uint64_t backlog_bytes;
    uint32_t backlogged_clients;
    uint32_t reserved1;
};
static_assert(sizeof(qb_ipc_response_header) == 24);
static_assert(offsetof(StatusResponse, nodeid) == 24);
static_assert(offsetof(StatusResponse, ring_seq) == 40);
static_assert(offsetof(StatusResponse, counters) == 64);
static_assert(offsetof(StatusResponse, view_count) == 248);
static_assert(offsetof(StatusResponse, view) == 256);
static_assert(offsetof(StatusResponse, remotes) == 256 + 4 * kStatusMaxNodes);
static_assert(offsetof(StatusResponse, client_pinned_bytes) == 256 + 44 * kStatusMaxNodes);
static_assert(sizeof(StatusResponse) == 288 + 44 * kStatusMaxNodes);

struct WakeEvent {
    qb_ipc_response_header header;
};

using Request = std::variant<InitRequest, BareRequest, GroupRequest, IterationRequest, EvsGroupsRequest>;

struct DecodedRequest {
    RequestId id;
    Request body;
};

// Validates and copies a request out of `bytes` (which may be changed concurrently by a
// hostile peer: it is read once). Returns nothing for anything malformed.
std::optional<DecodedRequest> decode_request(std::span<const std::byte> bytes);

// ---------------------------------------------------------------------------------------
// The other direction: the client's reading of rcpgd's replies (libcpg/handle.cpp). Each
// accepts exactly what rcpgd sends, sizes included, so anything else is taken for a broken
// daemon (CS_ERR_LIBRARY), never mapped or copied on trust.

// The most a delivery ring (--ring-mib 2048), a submission ring and a send arena can be.
inline constexpr uint64_t kMaxRingDataBytes = 2048ull << 20;
inline constexpr uint64_t kMinRingDataBytes = 8ull << 20;
// A client's backlog: a power of two between these (it holds at least a few of the largest entries).
inline constexpr uint64_t kMinBacklogBytes = 8ull << 20;
inline constexpr uint64_t kMaxBacklogBytes = 16ull << 30;
inline constexpr uint32_t kMaxSubmissionCapacity = 1u << 20;
inline constexpr uint64_t kMaxArenaBytes = 16ull << 30;

std::optional<InitResponse> decode_init_response(std::span<const std::byte> reply);

struct JoinReply {
    JoinResponse header;
    std::vector<uint32_t> ring_members;
};
std::optional<JoinReply> decode_join_response(std::span<const std::byte> reply);

// A ListResponse and its rows: members of a group, or iteration rows (whose group names
// must fit a cpg_name).
std::optional<std::vector<cpg_address>> decode_membership(std::span<const std::byte> reply);
std::optional<std::vector<cpg_iteration_description_t>> decode_iteration(std::span<const std::byte> reply);

std::optional<EvsGroupsResponse> decode_evs_groups_response(std::span<const std::byte> reply);

struct ViewReply {
    ViewResponse header;
    std::vector<uint32_t> members;
};
// The view: members ascending, distinct, non-zero, as the daemon keeps them.
std::optional<ViewReply> decode_view_response(std::span<const std::byte> reply);

struct EvsGroupsListing {
    std::vector<EvsGroupRow> rows;
    uint32_t total = 0;
};
std::optional<EvsGroupsListing> decode_evs_groups_list(std::span<const std::byte> reply);

// The daemon's reading of a descriptor a client wrote into its submission ring: inside
// the arena of `arena_bytes`, inside one of its two parts (copied sends below
// `copy_bytes`, zero-copy buffers above), at most the atomic message size, and only the
// flags a sender may set. Anything else is the client's protocol violation.
bool submission_valid(const SubmissionDescriptor& descriptor, uint64_t arena_bytes, uint64_t copy_bytes);

// The daemon's reading of a client's `consumed` (a ring position the client writes): the
// furthest it ever reported (`furthest`, kept by the daemon, is raised here), not behind
// its pin floor, not past the published tail. So moving it back and forth is neither
// progress nor a way to make the ring overwrite what another client reads.
uint64_t reader_position(uint64_t reported, uint64_t& furthest, uint64_t pin_floor, uint64_t tail);

}  // namespace rcpg::ipc
