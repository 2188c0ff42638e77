#include "libcpg/ipc/protocol.hpp"

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
            (request->flags & ~kInitFlagTotemCallback) != 0) {
            return std::nullopt;
        }
        return DecodedRequest{id, *request};
    }
    case RequestId::finalize:
    case RequestId::local_get:
    case RequestId::wake_me:
    case RequestId::status: {
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

}  // namespace rcpg::ipc
