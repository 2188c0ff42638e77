#include "libcpg/handle.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <memory>

namespace rcpg::libcpg {
namespace {

// Whether the file behind `fd` has at least `bytes`: a mapping past a file's end faults.
bool file_holds(int fd, uint64_t bytes)
{
    struct stat status{};
    return ::fstat(fd, &status) == 0 && status.st_size >= 0 && static_cast<uint64_t>(status.st_size) >= bytes;
}

}  // namespace


Handle::~Handle()
{
    if (ipc_ != nullptr) {
        qb_ipcc_disconnect(ipc_);
    }
}

cs_error_t Handle::connect(const cpg_model_v1_data_t& requested_model, void* initial_context)
{
    model = requested_model;
    context.store(initial_context);
    const bool totem = model.cpg_totem_confchg_fn != nullptr;
    if (cs_error_t error = connect_common(totem ? ipc::kInitFlagTotemCallback : 0); error != CS_OK) {
        return error;
    }
    // A new handle is idle: armed, so its first event (its own join confchg, usually)
    // makes the fd readable.
    control_->waiting.store(cursor_ + 1, std::memory_order_seq_cst);
    armed_ = true;
    return CS_OK;
}

cs_error_t Handle::connect_common(uint32_t init_flags)
{
    const std::string service = ipc::ipc_service_name();
    ipc_ = qb_ipcc_connect(service.c_str(), ipc::kIpcMaxMessageBytes);
    if (ipc_ == nullptr) {
        // EMFILE: rcpgd's cap on clients (max_clients, max_clients_per_uid), or this
        // process out of descriptors; qb_to_cs_error, as corosync's, says CS_ERR_LIBRARY.
        return errno == EMFILE ? CS_ERR_NO_RESOURCES : qb_to_cs_error(-errno);
    }
    // Anyone may hold the name while rcpgd is down: nothing is sent to, or taken from, a
    // server that is not rcpgd's user (ipc::trusted_server_uid).
    pid_t server_pid = 0;
    uid_t server_uid = 0;
    gid_t server_gid = 0;
    if (qb_ipcc_auth_get(ipc_, &server_pid, &server_uid, &server_gid) != 0 || !ipc::trusted_server_uid(server_uid)) {
        return CS_ERR_LIBRARY;
    }
    ipc::InitRequest init{};
    init.header = {static_cast<int32_t>(ipc::RequestId::init), sizeof(init)};
    init.protocol_version = ipc::kProtocolVersion;
    init.flags = init_flags;
    ipc::InitResponse reply{};
    ssize_t received = 0;
    if (cs_error_t error = request(&init, sizeof(init), &reply, sizeof(reply), &received); error != CS_OK) {
        return error;
    }
    const std::optional<ipc::InitResponse> checked =
        ipc::decode_init_response({reinterpret_cast<const std::byte*>(&reply), static_cast<size_t>(received)});
    if (!checked) {
        return CS_ERR_LIBRARY;
    }
    const ipc::InitResponse& response = *checked;
    nodeid = response.nodeid;

    ipc::Token token;
    std::memcpy(token.data(), response.token, token.size());
    std::array<ipc::UniqueFd, ipc::fd_count> fds;
    if (int rc = ipc::receive_client_fds(service, token, fds); rc != 0) {
        return rc == -EACCES ? CS_ERR_ACCESS : CS_ERR_LIBRARY;
    }
    // Mapped only within the files: past their end a read would be a SIGBUS.
    if (!file_holds(fds[ipc::ring_fd].get(), delivery::kPageBytes + response.ring_data_bytes) ||
        !file_holds(fds[ipc::control_fd].get(), response.control_bytes) ||
        !file_holds(fds[ipc::arena_fd].get(), response.arena_bytes) ||
        !file_holds(fds[ipc::backlog_fd].get(), response.backlog_bytes)) {
        return CS_ERR_LIBRARY;
    }
    ring_bytes_ = response.ring_data_bytes;
    ring_header_map_ = ipc::map_fd(fds[ipc::ring_fd].get(), delivery::kPageBytes, 0, ipc::Access::read_only);
    ring_data_map_ = ipc::map_fd(fds[ipc::ring_fd].get(), ring_bytes_, delivery::kPageBytes, ipc::Access::copy_on_write);
    control_map_ = ipc::map_fd(fds[ipc::control_fd].get(), response.control_bytes, 0, ipc::Access::read_write);
    arena_map_ = ipc::map_fd(fds[ipc::arena_fd].get(), response.arena_bytes, 0, ipc::Access::read_write);
    if (response.backlog_bytes != 0) {
        backlog_map_ = ipc::map_fd(fds[ipc::backlog_fd].get(), response.backlog_bytes, 0, ipc::Access::read_only);
    }
    if (!ring_header_map_ || !ring_data_map_ || !control_map_ || !arena_map_ ||
        (response.backlog_bytes != 0 && !backlog_map_)) {
        return CS_ERR_NO_MEMORY;
    }
    doorbell_ = std::move(fds[ipc::doorbell_fd]);
    ring_ = static_cast<const delivery::RingHeader*>(ring_header_map_.get());
    ring_data_ = ring_data_map_.bytes();
    control_ = static_cast<ipc::ControlBlock*>(control_map_.get());
    if (ring_->magic != delivery::kRingMagic || ring_->version != delivery::kRingFormatVersion || ring_->data_bytes != ring_bytes_ ||
        control_->magic != ipc::kControlMagic || control_->submission_capacity != response.submission_capacity) {
        return CS_ERR_VERSION;
    }
    descriptors_ = reinterpret_cast<ipc::SubmissionDescriptor*>(control_map_.bytes() + ipc::kControlDescriptorsOffset);
    submission_mask_ = response.submission_capacity - 1;
    copy_end_.assign(response.submission_capacity, 0);
    arena_ = arena_map_.bytes();
    arena_bytes_ = response.arena_bytes;
    copy_bytes_ = response.arena_copy_bytes;
    zcb.attach(arena_, copy_bytes_, arena_bytes_ - copy_bytes_);
    backlog_data_ = backlog_map_.bytes();
    backlog_bytes_ = response.backlog_bytes;
    small_copy_.resize(delivery::kInPlaceDeliveryMinBytes);

    // A handle that reads totem confchgs (EVS handles read them too) reads from init on.
    if ((init_flags & (ipc::kInitFlagTotemCallback | ipc::kInitFlagEvs)) != 0) {
        reading_ = true;
        cursor_ = published_consumed_ = response.start_position;
    }
    qb_ipcc_fd_get(ipc_, &fd);
    return CS_OK;
}

cs_error_t Handle::request(const void* message, size_t bytes, void* response, size_t response_bytes,
                           ssize_t* received)
{
    std::lock_guard lock(request_mutex_);
    iovec part{const_cast<void*>(message), bytes};
    const ssize_t result = qb_ipcc_sendv_recv(ipc_, &part, 1, response, response_bytes, CS_IPC_TIMEOUT_MS);
    if (result < 0) {
        return qb_to_cs_error(static_cast<int>(result));
    }
    if (received != nullptr) {
        *received = result;
    }
    if (static_cast<size_t>(result) < sizeof(qb_ipc_response_header)) {
        return CS_ERR_LIBRARY;
    }
    const auto* header = static_cast<const qb_ipc_response_header*>(response);
    return static_cast<cs_error_t>(header->error);
}

cs_error_t Handle::join(const cpg_name& group)
{
    std::lock_guard state(state_mutex_);
    if (membership_) {
        // A leave this handle has not yet seen delivered keeps the old membership alive.
        return membership_->leave_requested ? CS_ERR_TRY_AGAIN : CS_ERR_EXIST;
    }
    ipc::GroupRequest join_request{};
    join_request.header = {static_cast<int32_t>(ipc::RequestId::join), sizeof(join_request)};
    join_request.group = group;
    const bool initial_totem = (model.flags & CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF) != 0;
    join_request.flags = initial_totem ? ipc::kJoinFlagInitialTotemConf : 0;
    std::vector<std::byte> reply(sizeof(ipc::JoinResponse) + 4096 * sizeof(uint32_t));
    ssize_t received = 0;
    if (cs_error_t error = request(&join_request, sizeof(join_request), reply.data(), reply.size(), &received);
        error != CS_OK) {
        return error;
    }
    std::optional<ipc::JoinReply> decoded =
        ipc::decode_join_response({reply.data(), static_cast<size_t>(std::max<ssize_t>(received, 0))});
    if (!decoded) {
        return CS_ERR_LIBRARY;
    }
    const ipc::JoinResponse& response = decoded->header;
    Membership joined;
    joined.group_id = response.group_id;
    joined.name = group;
    joined.from_seq = response.join_seq;
    joined.initial_totem_pending = initial_totem;
    joined.ring = response.ring;
    joined.ring_members = std::move(decoded->ring_members);
    membership_ = std::move(joined);
    joined_.store(true);
    if (!reading_) {
        reading_ = true;
        cursor_ = published_consumed_ = response.join_position;
        control_->consumed.store(cursor_, std::memory_order_release);
    }
    return CS_OK;
}

cs_error_t Handle::leave(const cpg_name& group)
{
    std::lock_guard state(state_mutex_);
    if (!membership_ || membership_->leave_requested || membership_->name.length != group.length ||
        std::memcmp(membership_->name.value, group.value, group.length) != 0) {
        return CS_ERR_NOT_EXIST;
    }
    ipc::GroupRequest leave_request{};
    leave_request.header = {static_cast<int32_t>(ipc::RequestId::leave), sizeof(leave_request)};
    leave_request.group = group;
    qb_ipc_response_header response{};
    if (cs_error_t error = request(&leave_request, sizeof(leave_request), &response, sizeof(response));
        error != CS_OK) {
        return error;
    }
    membership_->leave_requested = true;
    joined_.store(false);
    return CS_OK;
}

cs_error_t Handle::finalize()
{
    ipc::BareRequest finalize_request{};
    finalize_request.header = {static_cast<int32_t>(ipc::RequestId::finalize), sizeof(finalize_request)};
    qb_ipc_response_header response{};
    return request(&finalize_request, sizeof(finalize_request), &response, sizeof(response));
}

template <typename Row>
cs_error_t Handle::request_list(const void* message, size_t bytes, std::vector<Row>& rows,
                                std::optional<std::vector<Row>> (*decode)(std::span<const std::byte>))
{
    // Not zero-filled: only the part the daemon writes is read, and zeroing the whole
    // IPC-sized buffer would cost more than the request itself.
    const auto reply = std::make_unique_for_overwrite<std::byte[]>(ipc::kIpcMaxMessageBytes);
    ssize_t received = 0;
    if (cs_error_t error = request(message, bytes, reply.get(), ipc::kIpcMaxMessageBytes, &received);
        error != CS_OK) {
        return error;
    }
    std::optional<std::vector<Row>> decoded = decode({reply.get(), static_cast<size_t>(std::max<ssize_t>(received, 0))});
    if (!decoded) {
        return CS_ERR_LIBRARY;
    }
    rows = std::move(*decoded);
    return CS_OK;
}

cs_error_t Handle::membership(const cpg_name& group, std::vector<cpg_address>& members)
{
    ipc::GroupRequest membership_request{};
    membership_request.header = {static_cast<int32_t>(ipc::RequestId::membership_get), sizeof(membership_request)};
    membership_request.group = group;
    return request_list(&membership_request, sizeof(membership_request), members, ipc::decode_membership);
}

cs_error_t Handle::iteration_snapshot(cpg_iteration_type_t type, const cpg_name* group,
                                      std::vector<cpg_iteration_description_t>& rows)
{
    ipc::IterationRequest snapshot_request{};
    snapshot_request.header = {static_cast<int32_t>(ipc::RequestId::iteration_snapshot), sizeof(snapshot_request)};
    snapshot_request.iteration_type = static_cast<uint32_t>(type);
    snapshot_request.has_group = group != nullptr ? 1 : 0;
    if (group != nullptr) {
        snapshot_request.group = *group;
    }
    return request_list(&snapshot_request, sizeof(snapshot_request), rows, ipc::decode_iteration);
}

cs_error_t Handle::local_nodeid(unsigned int& nodeid_out)
{
    ipc::BareRequest local_request{};
    local_request.header = {static_cast<int32_t>(ipc::RequestId::local_get), sizeof(local_request)};
    ipc::LocalGetResponse response{};
    ssize_t received = 0;
    if (cs_error_t error = request(&local_request, sizeof(local_request), &response, sizeof(response), &received);
        error != CS_OK) {
        return error;
    }
    if (received != sizeof(response)) {
        return CS_ERR_LIBRARY;
    }
    nodeid_out = response.nodeid;
    return CS_OK;
}

}  // namespace rcpg::libcpg
