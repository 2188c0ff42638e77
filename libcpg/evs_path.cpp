// An EVS handle's requests: connecting, joining and leaving groups, the membership.
// (Its sends are in send_path.cpp, its deliveries in dispatch.cpp.)
#include "libcpg/handle.hpp"

#include <cstring>
#include <memory>

namespace rcpg::libcpg {

cs_error_t Handle::connect_evs(const evs_callbacks_t& callbacks, void* initial_context)
{
    evs_ = std::make_unique<Evs>();
    evs_->callbacks = callbacks;
    context.store(initial_context);
    if (cs_error_t error = connect_common(ipc::kInitFlagEvs); error != CS_OK) {
        return error;
    }
    uint32_t local = 0;
    std::vector<uint32_t> members;
    ipc::RingIdWire ring{};
    if (cs_error_t error = view(local, members, &ring); error != CS_OK) {
        return error;
    }
    // The view and its ring id, as the daemon has them now: at or after the handle's start
    // in the ring, so a totem confchg read later whose ring seq is not above it is no change.
    evs_->members = std::move(members);
    evs_->ring = ring;
    // The membership is the handle's first event, pending at once (corosync's service
    // queued it at connection): the fd is readable until it is dispatched. Not armed: the
    // wake event asked for here stands for it.
    return ask_for_wake() ? CS_OK : CS_ERR_LIBRARY;
}

cs_error_t Handle::view(uint32_t& nodeid_out, std::vector<uint32_t>& members, ipc::RingIdWire* ring)
{
    ipc::BareRequest view_request{};
    view_request.header = {static_cast<int32_t>(ipc::RequestId::view_get), sizeof(view_request)};
    // The view's size is bounded by the cluster's (a node id each); room for any.
    std::vector<std::byte> reply(sizeof(ipc::ViewResponse) + 65536 * sizeof(uint32_t));
    ssize_t received = 0;
    if (cs_error_t error = request(&view_request, sizeof(view_request), reply.data(), reply.size(), &received);
        error != CS_OK) {
        return error;
    }
    std::optional<ipc::ViewReply> decoded =
        ipc::decode_view_response({reply.data(), static_cast<size_t>(std::max<ssize_t>(received, 0))});
    if (!decoded) {
        return CS_ERR_LIBRARY;
    }
    nodeid_out = decoded->header.nodeid;
    if (ring != nullptr) {
        *ring = decoded->header.ring;
    }
    members = std::move(decoded->members);
    return CS_OK;
}

cs_error_t Handle::evs_groups_request(ipc::RequestId request_id, std::span<const EvsKey> keys, ipc::EvsGroupsResponse& out)
{
    // The IPC carries one message of at most its buffer's size.
    if (sizeof(ipc::EvsGroupsRequestHeader) + keys.size() * sizeof(EvsKey) > ipc::kIpcMaxMessageBytes) {
        return request_id == ipc::RequestId::evs_join ? CS_ERR_TOO_MANY_GROUPS : CS_ERR_INVALID_PARAM;
    }
    ipc::EvsGroupsRequestHeader header{};
    header.header = {static_cast<int32_t>(request_id),
                     static_cast<int32_t>(sizeof(header) + keys.size() * sizeof(EvsKey))};
    header.count = static_cast<uint32_t>(keys.size());
    std::vector<std::byte> message(header.header.size);
    std::memcpy(message.data(), &header, sizeof(header));
    if (!keys.empty()) {
        std::memcpy(message.data() + sizeof(header), keys.data(), keys.size() * sizeof(EvsKey));
    }
    ipc::EvsGroupsResponse reply{};
    ssize_t received = 0;
    const cs_error_t error = request(message.data(), message.size(), &reply, sizeof(reply), &received);
    // The answer counts also with an error (a leave that stopped at a group not joined).
    if (received != static_cast<ssize_t>(sizeof(reply))) {
        return error != CS_OK ? error : CS_ERR_LIBRARY;
    }
    const std::optional<ipc::EvsGroupsResponse> decoded =
        ipc::decode_evs_groups_response({reinterpret_cast<const std::byte*>(&reply), sizeof(reply)});
    if (!decoded || decoded->done > keys.size()) {
        return CS_ERR_LIBRARY;
    }
    out = *decoded;
    return error;
}

cs_error_t Handle::evs_join(std::span<const EvsKey> keys)
{
    // Held across the request, as a CPG join: the dispatching thread then reads no entry
    // between the daemon's answer and the new interval, which would miss it.
    std::lock_guard state(state_mutex_);
    ipc::EvsGroupsResponse response{};
    const cs_error_t error = evs_groups_request(ipc::RequestId::evs_join, keys, response);
    if (error != CS_OK && error != CS_ERR_TOO_MANY_GROUPS) {
        return error;
    }
    std::lock_guard lock(evs_->mutex);
    evs_->groups.join(keys.first(response.done), response.next_seq);
    return error;
}

cs_error_t Handle::evs_leave(std::span<const EvsKey> keys)
{
    std::lock_guard state(state_mutex_);
    ipc::EvsGroupsResponse response{};
    const cs_error_t error = evs_groups_request(ipc::RequestId::evs_leave, keys, response);
    if (error != CS_OK && error != CS_ERR_NOT_EXIST) {
        return error;
    }
    std::lock_guard lock(evs_->mutex);
    // What this handle has taken is behind it: intervals ending there can go.
    evs_->groups.leave(keys, response.done, response.next_seq, taken_seq_);
    return error;
}

}  // namespace rcpg::libcpg
