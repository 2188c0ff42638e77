#include "libcpg/ipc/protocol.hpp"

#include <algorithm>
#include <cstring>

namespace rcpg::ipc {
namespace {

template <typename T>
std::optional<T> copy_exact(std::span<const std::byte> bytes)
{
    if (bytes.size() != sizeof(T)) {
        return std::nullopt;
    }
    T value;
    std::memcpy(&value, bytes.data(), sizeof(T));
    return value;
}

bool group_name_valid(const cpg_name& group) { return group.length <= CPG_MAX_NAME_LENGTH; }

}  // namespace

std::optional<DecodedRequest> decode_request(std::span<const std::byte> bytes)
{
    qb_ipc_request_header header;
    if (bytes.size() < sizeof(header)) {
        return std::nullopt;
    }
    std::memcpy(&header, bytes.data(), sizeof(header));
    if (header.size < 0 || static_cast<size_t>(header.size) != bytes.size()) {
        return std::nullopt;
    }
    const auto id = static_cast<RequestId>(header.id);
    switch (id) {
    case RequestId::init: {
        auto request = copy_exact<InitRequest>(bytes);
        if (!request || request->protocol_version != kProtocolVersion ||
            (request->flags & ~(kInitFlagTotemCallback | kInitFlagEvs)) != 0) {
            return std::nullopt;
        }
        return DecodedRequest{id, *request};
    }
    case RequestId::finalize:
    case RequestId::local_get:
    case RequestId::wake_me:
    case RequestId::status:
    case RequestId::view_get:
    case RequestId::evs_groups: {
        auto request = copy_exact<BareRequest>(bytes);
        if (!request) {
            return std::nullopt;
        }
        return DecodedRequest{id, *request};
    }
    case RequestId::join:
    case RequestId::leave:
    case RequestId::membership_get: {
        auto request = copy_exact<GroupRequest>(bytes);
        if (!request || !group_name_valid(request->group)) {
            return std::nullopt;
        }
        const uint32_t allowed_flags = id == RequestId::join ? kJoinFlagInitialTotemConf : 0;
        if ((request->flags & ~allowed_flags) != 0) {
            return std::nullopt;
        }
        return DecodedRequest{id, *request};
    }
    case RequestId::evs_join:
    case RequestId::evs_leave: {
        EvsGroupsRequestHeader fixed;
        if (bytes.size() < sizeof(fixed)) {
            return std::nullopt;
        }
        std::memcpy(&fixed, bytes.data(), sizeof(fixed));
        if (fixed.reserved != 0 || bytes.size() != sizeof(fixed) + uint64_t{fixed.count} * sizeof(EvsKey)) {
            return std::nullopt;
        }
        EvsGroupsRequest request;
        request.keys.resize(fixed.count);
        if (fixed.count != 0) {
            std::memcpy(request.keys.data(), bytes.data() + sizeof(fixed), fixed.count * sizeof(EvsKey));
        }
        return DecodedRequest{id, std::move(request)};
    }
    case RequestId::iteration_snapshot: {
        auto request = copy_exact<IterationRequest>(bytes);
        if (!request || request->has_group > 1 || !group_name_valid(request->group) ||
            request->iteration_type < CPG_ITERATION_NAME_ONLY ||
            request->iteration_type > CPG_ITERATION_ALL) {
            return std::nullopt;
        }
        return DecodedRequest{id, *request};
    }
    }
    return std::nullopt;
}

std::optional<InitResponse> decode_init_response(std::span<const std::byte> reply)
{
    const std::optional<InitResponse> response = copy_exact<InitResponse>(reply);
    if (!response || !delivery::is_power_of_two(response->ring_data_bytes) || response->ring_data_bytes < kMinRingDataBytes ||
        response->ring_data_bytes > kMaxRingDataBytes || !delivery::is_power_of_two(response->submission_capacity) ||
        response->submission_capacity > kMaxSubmissionCapacity || response->arena_bytes > kMaxArenaBytes ||
        response->arena_copy_bytes > response->arena_bytes || (response->backlog_bytes != 0 && (!delivery::is_power_of_two(response->backlog_bytes) ||
        response->backlog_bytes < kMinBacklogBytes || response->backlog_bytes > kMaxBacklogBytes)) ||
        response->control_bytes != control_block_bytes(response->submission_capacity)) {
        return std::nullopt;
    }
    return response;
}

std::optional<JoinReply> decode_join_response(std::span<const std::byte> reply)
{
    JoinReply join;
    if (reply.size() < sizeof(join.header)) {
        return std::nullopt;
    }
    std::memcpy(&join.header, reply.data(), sizeof(join.header));
    if (reply.size() != sizeof(join.header) + uint64_t{join.header.ring.member_count} * sizeof(uint32_t)) {
        return std::nullopt;
    }
    join.ring_members.resize(join.header.ring.member_count);
    if (!join.ring_members.empty()) {
        std::memcpy(join.ring_members.data(), reply.data() + sizeof(join.header),
                    join.ring_members.size() * sizeof(uint32_t));
    }
    return join;
}

namespace {

template <typename Row>
std::optional<std::vector<Row>> decode_rows(std::span<const std::byte> reply)
{
    ListResponse header;
    if (reply.size() < sizeof(header)) {
        return std::nullopt;
    }
    std::memcpy(&header, reply.data(), sizeof(header));
    if (reply.size() != sizeof(header) + uint64_t{header.count} * sizeof(Row)) {
        return std::nullopt;
    }
    std::vector<Row> rows(header.count);
    if (!rows.empty()) {
        std::memcpy(rows.data(), reply.data() + sizeof(header), rows.size() * sizeof(Row));
    }
    return rows;
}

}  // namespace

std::optional<std::vector<cpg_address>> decode_membership(std::span<const std::byte> reply)
{
    return decode_rows<cpg_address>(reply);
}

std::optional<std::vector<cpg_iteration_description_t>> decode_iteration(std::span<const std::byte> reply)
{
    auto rows = decode_rows<cpg_iteration_description_t>(reply);
    if (rows && std::any_of(rows->begin(), rows->end(), [](const cpg_iteration_description_t& row) {
            return !group_name_valid(row.group);
        })) {
        return std::nullopt;  // an application would read past the name
    }
    return rows;
}

std::optional<EvsGroupsResponse> decode_evs_groups_response(std::span<const std::byte> reply)
{
    std::optional<EvsGroupsResponse> response = copy_exact<EvsGroupsResponse>(reply);
    if (!response || response->done > kEvsMaxGroupsPerHandle) {
        return std::nullopt;
    }
    return response;
}

std::optional<ViewReply> decode_view_response(std::span<const std::byte> reply)
{
    ViewReply view;
    if (reply.size() < sizeof(view.header)) {
        return std::nullopt;
    }
    std::memcpy(&view.header, reply.data(), sizeof(view.header));
    if (reply.size() != sizeof(view.header) + uint64_t{view.header.ring.member_count} * sizeof(uint32_t)) {
        return std::nullopt;
    }
    view.members.resize(view.header.ring.member_count);
    if (!view.members.empty()) {
        std::memcpy(view.members.data(), reply.data() + sizeof(view.header), view.members.size() * sizeof(uint32_t));
    }
    for (size_t i = 0; i < view.members.size(); ++i) {
        if (view.members[i] == 0 || (i > 0 && view.members[i - 1] >= view.members[i])) {
            return std::nullopt;
        }
    }
    return view;
}

std::optional<EvsGroupsListing> decode_evs_groups_list(std::span<const std::byte> reply)
{
    EvsGroupsList header;
    if (reply.size() < sizeof(header)) {
        return std::nullopt;
    }
    std::memcpy(&header, reply.data(), sizeof(header));
    if (reply.size() != sizeof(header) + uint64_t{header.count} * sizeof(EvsGroupRow) || header.total < header.count) {
        return std::nullopt;
    }
    EvsGroupsListing listing;
    listing.total = header.total;
    listing.rows.resize(header.count);
    if (header.count != 0) {
        std::memcpy(listing.rows.data(), reply.data() + sizeof(header), header.count * sizeof(EvsGroupRow));
    }
    for (const EvsGroupRow& row : listing.rows) {
        if (row.has_key > 1 || row.first_of_client > 1 || row.reserved[0] != 0 || row.reserved[1] != 0) {
            return std::nullopt;
        }
    }
    return listing;
}

uint64_t reader_position(uint64_t reported, uint64_t& furthest, uint64_t pin_floor, uint64_t tail)
{
    furthest = std::max(furthest, std::min(reported, tail));
    return std::clamp(furthest, std::min(pin_floor, tail), tail);
}

bool submission_valid(const SubmissionDescriptor& descriptor, uint64_t arena_bytes, uint64_t copy_bytes)
{
    // A message lies in one part of the arena: copied sends in the first, zero-copy
    // buffers in the second.
    const bool straddles = descriptor.arena_offset < copy_bytes && descriptor.arena_offset + descriptor.length > copy_bytes;
    return descriptor.length <= delivery::kMaxAtomicMessageBytes && descriptor.arena_offset <= arena_bytes &&
           descriptor.length <= arena_bytes - descriptor.arena_offset && !straddles &&
           (descriptor.flags & ~delivery::kSubmissionFlags) == 0;
}

}  // namespace rcpg::ipc
