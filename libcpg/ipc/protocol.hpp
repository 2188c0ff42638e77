// The control protocol between libcpg and rcpgd over libqb IPC. Bulk data never travels
// here: messages go through the shared-memory send arena and delivery ring.
//
// Every request starts with qb_ipc_request_header {id, size}; every response with
// qb_ipc_response_header {id, size, error}, where error is a cs_error_t. The daemon
// decodes requests with decode_request(), which accepts only a request whose size
// matches its id exactly and whose fields are in range: anything else is rejected
// (and the connection dropped) without touching daemon state.
#pragma once

#include <qb/qbipc_common.h>

#include <corosync/cpg.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <variant>

namespace rcpg::ipc {

inline constexpr uint32_t kProtocolVersion = 1;

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
};

enum class EventId : int32_t {
    wake = 1,
};

inline constexpr uint32_t kInitFlagTotemCallback = 1u << 0;

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

struct BareRequest {  // finalize, local_get, wake_me
    qb_ipc_request_header header;
};

struct WakeEvent {
    qb_ipc_response_header header;
};

using Request = std::variant<InitRequest, BareRequest, GroupRequest, IterationRequest>;

struct DecodedRequest {
    RequestId id;
    Request body;
};

// Validates and copies a request out of `bytes` (which may be changed concurrently by a
// hostile peer: it is read once). Returns nothing for anything malformed.
std::optional<DecodedRequest> decode_request(std::span<const std::byte> bytes);

}  // namespace rcpg::ipc
