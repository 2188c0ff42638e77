#include "daemon/daemon.hpp"

#include "daemon/client_session.hpp"
#include "daemon/cs_error.hpp"
#include "daemon/daemon_internal.hpp"
#include "daemon/log.hpp"
#include "libcpg/ipc/bytes.hpp"
#include "delivery/ring_entry.hpp"

#include <corosync/corotypes.h>
#include <sys/eventfd.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace rcpg::daemon {

using delivery::ConfchgPayload;
using delivery::EntryHeader;
using delivery::EntryKind;
using namespace daemon_detail;

namespace {

// Between the client API's group names and the protocol's (the request's decoder checked
// the length).
ordering::GroupName group_name(const cpg_name& name) { return ordering::GroupName::from(name.value, name.length); }

cpg_name to_cpg_name(const ordering::GroupName& group)
{
    cpg_name name{};
    name.length = group.length;
    std::memcpy(name.value, group.value.data(), group.length);
    return name;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Connections and control requests

// corosync's rule: root's uid or gid, or a uid or gid the configuration allows.
bool Daemon::allowed(uid_t uid, gid_t gid) const
{
    return uid == 0 || gid == 0 ||
           std::find(options_.allowed_uids.begin(), options_.allowed_uids.end(), uid) != options_.allowed_uids.end() ||
           std::find(options_.allowed_gids.begin(), options_.allowed_gids.end(), gid) != options_.allowed_gids.end();
}

int32_t Daemon::on_accept(qb_ipcs_connection_t* connection, uid_t uid, gid_t gid)
{
    if (!allowed(uid, gid)) {
        RCPG_LOG_WARN("refused a client with uid {} gid {}: not root and not allowed by the configuration", uid, gid);
        return -EACCES;
    }
    // Every connection costs descriptors and memory: bounded, per user and in all.
    const size_t total = sessions_.size();
    const size_t of_uid = static_cast<size_t>(std::count_if(
        sessions_.begin(), sessions_.end(), [uid](const auto& entry) { return entry.second->uid == uid; }));
    if (total >= options_.max_clients || of_uid >= options_.max_clients_per_uid) {
        RCPG_LOG_WARN("refused a client with uid {}: {} connections of its user (max_clients_per_uid {}), {} in all "
                      "(max_clients {})",
                      uid, of_uid, options_.max_clients_per_uid, total, options_.max_clients);
        ++node_->counters().clients_refused;
        return -EMFILE;  // the client sees CS_ERR_NO_RESOURCES
    }
    accepted_uids_[connection] = uid;  // for on_created: libqb tells the uid only here
    return 0;
}

void Daemon::on_created(qb_ipcs_connection_t* connection)
{
    auto session = std::make_unique<ClientSession>();
    session->connection = connection;
    session->serial = next_session_serial_++;
    qb_ipcs_connection_stats stats{};
    qb_ipcs_connection_stats_get(connection, &stats, QB_FALSE);
    session->pid = stats.client_pid;
    if (auto accepted = accepted_uids_.find(connection); accepted != accepted_uids_.end()) {
        session->uid = accepted->second;
        accepted_uids_.erase(accepted);
    }
    sessions_[connection] = std::move(session);
}

void Daemon::on_destroyed(qb_ipcs_connection_t* connection)
{
    auto found = sessions_.find(connection);
    if (found == sessions_.end()) {
        return;
    }
    std::unique_ptr<ClientSession> session = std::move(found->second);
    sessions_.erase(found);
    session->connection = nullptr;
    pinning_reserved_bytes_ -= std::exchange(session->pinning_reserved_bytes, 0);
    if (session->doorbell) {
        loop_.remove(session->doorbell.get());
        session->doorbell.reset();
    }
    // A dead client no longer holds the ring; what it published is still sequenced
    // before its PROCDOWN (finish_closing_sessions). A thread of a client that is not
    // dead (its connection was closed) stops reading first.
    mark_cut_off(*session);
    if (session->pinning && session->control != nullptr) {
        // A callback it may still run on an entry in place keeps that entry's pages.
        update_hold(*session, UINT64_MAX, ring_->published_tail());
    }
    session->pinning = false;
    closing_.push_back(std::move(session));
    finish_closing_sessions();
}

int32_t Daemon::on_message(qb_ipcs_connection_t* connection, void* data, size_t size)
{
    auto found = sessions_.find(connection);
    if (found == sessions_.end()) {
        return 0;
    }
    ClientSession& session = *found->second;
    const std::span<const std::byte> bytes(static_cast<const std::byte*>(data), size);
    std::optional<ipc::DecodedRequest> request = ipc::decode_request(bytes);
    if (!request) {
        ++node_->counters().protocol_violations;
        int32_t id = 0;
        if (size >= sizeof(qb_ipc_request_header)) {
            std::memcpy(&id, data, sizeof(id));
        }
        RCPG_LOG_WARN("pid {}: malformed request (id {}, {} bytes) rejected", session.pid, id, size);
        respond_status(session, id, CS_ERR_MESSAGE_ERROR);
        return 0;
    }
    if (ipc::needs_init(request->id) && !session.initialized) {
        respond_status(session, static_cast<int32_t>(request->id), CS_ERR_INIT);
        return 0;
    }
    // Each API's group requests on its own handles only: an EVS client in a CPG group
    // would read that group as EVS, and the other way round.
    const bool cpg_group_request = request->id == ipc::RequestId::join || request->id == ipc::RequestId::leave ||
                                   request->id == ipc::RequestId::membership_get;
    const bool evs_group_request = request->id == ipc::RequestId::evs_join || request->id == ipc::RequestId::evs_leave;
    if ((cpg_group_request && session.evs) || (evs_group_request && !session.evs)) {
        respond_status(session, static_cast<int32_t>(request->id), CS_ERR_NOT_SUPPORTED);
        return 0;
    }
    switch (request->id) {
    case ipc::RequestId::init:
        handle_init(session, std::get<ipc::InitRequest>(request->body));
        break;
    case ipc::RequestId::finalize:
        respond_status(session, static_cast<int32_t>(request->id), CS_OK);
        // Closing from our side also wakes a thread of the client blocked in dispatch.
        disconnect_later(session);
        break;
    case ipc::RequestId::join:
        handle_join(session, std::get<ipc::GroupRequest>(request->body));
        break;
    case ipc::RequestId::leave:
        handle_leave(session, std::get<ipc::GroupRequest>(request->body));
        break;
    case ipc::RequestId::membership_get:
        handle_membership(session, std::get<ipc::GroupRequest>(request->body));
        break;
    case ipc::RequestId::local_get: {
        ipc::LocalGetResponse response{};
        response.header = {static_cast<int32_t>(request->id), sizeof(response), CS_OK};
        response.nodeid = options_.nodeid;
        qb_ipcs_response_send(connection, &response, sizeof(response));
        break;
    }
    case ipc::RequestId::iteration_snapshot:
        handle_iteration(session, std::get<ipc::IterationRequest>(request->body));
        break;
    case ipc::RequestId::wake_me:
        send_wake(session);
        break;
    case ipc::RequestId::status:
        handle_status(session);
        break;
    case ipc::RequestId::evs_join:
        handle_evs_join(session, std::get<ipc::EvsGroupsRequest>(request->body));
        break;
    case ipc::RequestId::evs_leave:
        handle_evs_leave(session, std::get<ipc::EvsGroupsRequest>(request->body));
        break;
    case ipc::RequestId::view_get:
        handle_view_get(session);
        break;
    case ipc::RequestId::evs_groups:
        handle_evs_groups(session);
        break;
    }
    return 0;
}

void Daemon::disconnect_later(ClientSession& session)
{
    // From now on the client reads nothing more from the ring (ControlBlock::cut_off),
    // also before its connection is gone.
    mark_cut_off(session);
    if (session.connection == nullptr) {
        return;
    }
    // Never from inside a walk over sessions_: disconnecting destroys the session. Found
    // again by serial: libqb may hand the same connection pointer to a new client.
    loop_.post([this, serial = session.serial] {
        ClientSession* found = session_by_serial(serial);
        if (found != nullptr && found->connection != nullptr) {
            qb_ipcs_disconnect(found->connection);
        }
    });
}

void Daemon::mark_cut_off(ClientSession& session)
{
    // seq_cst, and before the session stops pinning: the client's check after copying an
    // entry then sees the flag whenever the slot may have been reused.
    if (session.control != nullptr) {
        session.control->cut_off.store(1, std::memory_order_seq_cst);
    }
}

void Daemon::respond_status(ClientSession& session, int32_t id, cs_error_t error)
{
    qb_ipc_response_header header{id, sizeof(header), error};
    qb_ipcs_response_send(session.connection, &header, sizeof(header));
}

void Daemon::send_wake(ClientSession& session)
{
    ipc::WakeEvent event{};
    event.header = {static_cast<int32_t>(ipc::EventId::wake), sizeof(event), CS_OK};
    qb_ipcs_event_send(session.connection, &event, sizeof(event));
}

// A cluster node that reads client arenas with its device (a member, or a sequencer that
// copies by device) pins them: each client's whole arena counts against the budget from
// its init, so that no later zero-copy send can take the node past it.
bool Daemon::reserve_pinning(ClientSession& session)
{
    if (node_->role() == Role::single || session.pinning_reserved_bytes != 0 ||
        (node_->role() != Role::member && !node_->device_copies_configured())) {
        return true;
    }
    if (pinning_reserved_bytes_ + session.arena_bytes > options_.max_pinned_bytes) {
        RCPG_LOG_WARN("pid {}: refused: its {} MiB of send memory would take the memory pinned for clients past "
                      "max_pinned_mib ({} MiB, {} MiB taken)",
                      session.pid, session.arena_bytes >> 20, options_.max_pinned_bytes >> 20,
                      pinning_reserved_bytes_ >> 20);
        ++node_->counters().clients_refused;
        return false;
    }
    session.pinning_reserved_bytes = session.arena_bytes;
    pinning_reserved_bytes_ += session.arena_bytes;
    return true;
}

// Each client rings a doorbell of its own: one it shared with others, it could read
// (taking their wake-ups from the daemon) or block.
bool Daemon::open_doorbell(ClientSession& session)
{
    if (session.doorbell) {
        return true;  // from an earlier init that failed later on
    }
    ipc::UniqueFd doorbell(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    const int fd = doorbell.get();
    if (!doorbell || loop_.add(fd, POLLIN, [fd](uint32_t) {
            // Waking the loop is the doorbell's whole work: the loop then drains.
            uint64_t rings;
            [[maybe_unused]] ssize_t ignored = ::read(fd, &rings, sizeof(rings));
        }) != 0) {
        return false;
    }
    session.doorbell = std::move(doorbell);
    return true;
}

void Daemon::handle_init(ClientSession& session, const ipc::InitRequest& request)
{
    const int32_t id = static_cast<int32_t>(ipc::RequestId::init);
    if (session.initialized) {
        respond_status(session, id, CS_ERR_EXIST);
        return;
    }
    const uint64_t control_bytes = ipc::control_block_bytes(options_.submission_capacity);
    const uint64_t arena_bytes = options_.arena_copy_bytes + options_.arena_zcb_bytes;
    session.control_fd = ipc::create_sealed_memfd("rcpg-client-control", control_bytes);
    session.arena_fd = ipc::create_sealed_memfd("rcpg-client-arena", arena_bytes);
    if (!session.control_fd || !session.arena_fd) {
        RCPG_LOG_ERROR("pid {}: cannot create client shared memory: {}", session.pid, std::strerror(errno));
        respond_status(session, id, errno == EMFILE || errno == ENFILE ? CS_ERR_NO_RESOURCES : CS_ERR_NO_MEMORY);
        return;
    }
    session.control_map = ipc::map_fd(session.control_fd.get(), control_bytes, 0, ipc::Access::read_write);
    // What the daemon copies from; in a cluster the device reads the arena through
    // mappings of its own (prepare_cluster_session).
    session.arena_map = ipc::map_fd(session.arena_fd.get(), arena_bytes, 0, ipc::Access::read_only);
    if (!session.control_map || !session.arena_map) {
        respond_status(session, id, CS_ERR_NO_MEMORY);
        return;
    }
    session.arena_bytes = arena_bytes;
    if (!session.backlog && options_.client_backlog_bytes != 0) {
        session.backlog = ClientBacklog::create(options_.client_backlog_bytes);
        if (!session.backlog) {
            RCPG_LOG_ERROR("pid {}: cannot create its backlog: {}", session.pid, std::strerror(errno));
            respond_status(session, id, errno == EMFILE || errno == ENFILE ? CS_ERR_NO_RESOURCES : CS_ERR_NO_MEMORY);
            return;
        }
    }
    if (!reserve_pinning(session)) {
        respond_status(session, id, CS_ERR_NO_RESOURCES);
        return;
    }
    if (!open_doorbell(session)) {
        respond_status(session, id, CS_ERR_NO_RESOURCES);
        return;
    }
    if (node_->role() != Role::single) {
        if (base::Status prepared = prepare_cluster_session(session); !prepared) {
            RCPG_LOG_ERROR("{}", prepared.message());
            respond_status(session, id, to_cs_error(prepared));
            return;
        }
    }
    session.control = new (session.control_map.get()) ipc::ControlBlock{};
    session.control->magic = ipc::kControlMagic;
    session.control->version = ipc::kControlVersion;
    session.control->submission_capacity = options_.submission_capacity;
    session.descriptors = reinterpret_cast<const ipc::SubmissionDescriptor*>(session.control_map.bytes() +
                                                                             ipc::kControlDescriptorsOffset);
    session.submission_mask = options_.submission_capacity - 1;
    if (::getrandom(session.token.data(), session.token.size(), 0) != static_cast<ssize_t>(session.token.size())) {
        respond_status(session, id, CS_ERR_LIBRARY);
        return;
    }
    session.evs = (request.flags & ipc::kInitFlagEvs) != 0;
    session.totem_callback = session.evs || (request.flags & ipc::kInitFlagTotemCallback) != 0;
    if (session.evs) {
        // Every EVS entry is this client's to read (and send, from its first message on).
        session.group_id = delivery::kEvsGroupId;
        session.wake_group_id = delivery::kEvsGroupId;
        session.read_group_id = delivery::kEvsGroupId;
    }
    const uint64_t start = ring_->unpublished_tail();
    if (session.totem_callback) {
        session.pinning = true;
        session.pin_floor = start;
    }
    session.control->consumed.store(start, std::memory_order_relaxed);
    session.consumed_high = start;
    session.initialized = true;

    ipc::InitResponse response{};
    response.header = {id, sizeof(response), CS_OK};
    response.nodeid = options_.nodeid;
    response.submission_capacity = options_.submission_capacity;
    response.ring_data_bytes = options_.ring_bytes;
    response.arena_bytes = arena_bytes;
    response.arena_copy_bytes = options_.arena_copy_bytes;
    response.control_bytes = control_bytes;
    response.start_position = start;
    response.backlog_bytes = session.backlog ? session.backlog->capacity() : 0;
    std::memcpy(response.token, session.token.data(), sizeof(response.token));
    qb_ipcs_response_send(session.connection, &response, sizeof(response));
}

void Daemon::handle_join(ClientSession& session, const ipc::GroupRequest& request)
{
    const int32_t id = static_cast<int32_t>(ipc::RequestId::join);
    const ordering::GroupName name = group_name(request.group);
    const ordering::ProcessId self = session.process(options_.nodeid);
    if (session.group || session.pending_join) {
        respond_status(session, id, CS_ERR_EXIST);
        return;
    }
    if (session.pending_leave || session.cluster.op_in_flight) {
        respond_status(session, id, CS_ERR_TRY_AGAIN);
        return;
    }
    if (node_->groups().check_join(name, self) == ordering::JoinCheck::already_member) {
        respond_status(session, id, CS_ERR_EXIST);  // another handle of this process
        return;
    }
    if (session.leave_end) {
        // The client has not yet read its own leave confchg; a new membership would
        // overlap the old one in its view of the ring.
        release_pins();
        if (session.leave_end) {
            respond_status(session, id, CS_ERR_TRY_AGAIN);
            return;
        }
    }
    // What this client published before joining was sent while not a member: dropped.
    if (drain_session(session, UINT32_MAX); session.sub_head != session.control->sub_tail.load()) {
        respond_status(session, id, CS_ERR_TRY_AGAIN);
        return;
    }
    if (node_->role() == Role::member) {
        // The sequencer orders the join; the answer goes out when its confchg comes back.
        if (!request_change(session, name, delivery::reason_join)) {
            respond_status(session, id, CS_ERR_TRY_AGAIN);
            return;
        }
        session.pending_join = name;
        return;
    }
    if (!node_->sequence_change(name, self, delivery::reason_join)) {
        respond_status(session, id, CS_ERR_TRY_AGAIN);
        return;
    }
    const uint32_t group_id = *node_->groups().group_id(name);
    session.group = name;
    session.group_id = group_id;
    session.wake_group_id = group_id;
    session.read_group_id = group_id;
    const uint64_t join_position = ring_->last_position();
    const uint64_t join_seq = ring_->next_seq() - 1;
    publish_and_wake();
    send_join_response(session, join_position, join_seq);
}

void Daemon::send_join_response(ClientSession& session, uint64_t join_position, uint64_t join_seq)
{
    const int32_t id = static_cast<int32_t>(ipc::RequestId::join);
    if (!session.pinning) {
        session.pinning = true;
        session.pin_floor = join_position;
    }
    ipc::JoinResponse response{};
    const ordering::View& view = node_->view();
    response.header = {id, static_cast<int32_t>(sizeof(response) + view.members.size() * sizeof(uint32_t)), CS_OK};
    response.group_id = session.group_id;
    response.join_position = join_position;
    response.join_seq = join_seq;
    response.ring = {view.ring_nodeid, static_cast<uint32_t>(view.members.size()), view.ring_seq};
    iovec parts[2] = {{&response, sizeof(response)},
                      {const_cast<uint32_t*>(view.members.data()), view.members.size() * sizeof(uint32_t)}};
    qb_ipcs_response_sendv(session.connection, parts, 2);
}

void Daemon::handle_leave(ClientSession& session, const ipc::GroupRequest& request)
{
    const int32_t id = static_cast<int32_t>(ipc::RequestId::leave);
    const ordering::GroupName name = group_name(request.group);
    if (!session.group || !(*session.group == name) || session.pending_leave) {
        respond_status(session, id, CS_ERR_NOT_EXIST);
        return;
    }
    // Everything the leaver sent comes before its leave.
    if (drain_session(session, UINT32_MAX); session.sub_head != session.control->sub_tail.load()) {
        respond_status(session, id, CS_ERR_TRY_AGAIN);
        return;
    }
    if (node_->role() == Role::member) {
        // Answered when the leave comes back from the sequencer.
        if (!request_change(session, name, delivery::reason_leave)) {
            respond_status(session, id, CS_ERR_TRY_AGAIN);
            return;
        }
        session.pending_leave = true;
        return;
    }
    if (!node_->sequence_change(name, session.process(options_.nodeid), delivery::reason_leave)) {
        respond_status(session, id, CS_ERR_TRY_AGAIN);
        return;
    }
    session.group.reset();
    session.group_id = 0;
    session.leave_end = ring_->unpublished_tail();
    publish_and_wake();
    // Its own leave was the last entry of the group it reads: nothing later wakes it.
    session.wake_group_id = 0;
    respond_status(session, id, CS_OK);
}

void Daemon::handle_membership(ClientSession& session, const ipc::GroupRequest& request)
{
    const std::vector<delivery::MemberAddress> members = node_->groups().members(group_name(request.group));
    const int32_t id = static_cast<int32_t>(ipc::RequestId::membership_get);
    const size_t bytes = sizeof(ipc::ListResponse) + members.size() * sizeof(delivery::MemberAddress);
    if (bytes > ipc::kIpcMaxMessageBytes) {
        respond_status(session, id, CS_ERR_NO_RESOURCES);
        return;
    }
    ipc::ListResponse header{};
    header.header = {id, static_cast<int32_t>(bytes), CS_OK};
    header.count = static_cast<uint32_t>(members.size());
    iovec parts[2] = {{&header, sizeof(header)},
                      {const_cast<delivery::MemberAddress*>(members.data()), members.size() * sizeof(delivery::MemberAddress)}};
    qb_ipcs_response_sendv(session.connection, parts, 2);
}

void Daemon::handle_iteration(ClientSession& session, const ipc::IterationRequest& request)
{
    const int32_t id = static_cast<int32_t>(ipc::RequestId::iteration_snapshot);
    const auto type = static_cast<cpg_iteration_type_t>(request.iteration_type);
    const ordering::GroupName wanted = group_name(request.group);
    std::vector<cpg_iteration_description_t> rows;
    std::optional<ordering::GroupName> previous;
    for (const ordering::GroupTable::Row& row : node_->groups().rows()) {
        if (type == CPG_ITERATION_ONE_GROUP && !(row.group == wanted)) {
            continue;
        }
        cpg_iteration_description_t description{};
        description.group = to_cpg_name(row.group);
        if (type == CPG_ITERATION_NAME_ONLY) {
            if (previous && *previous == row.group) {
                continue;
            }
            previous = row.group;
        } else {
            description.nodeid = row.process.nodeid;
            description.pid = row.process.pid;
        }
        rows.push_back(description);
    }
    const size_t bytes = sizeof(ipc::ListResponse) + rows.size() * sizeof(cpg_iteration_description_t);
    if (bytes > ipc::kIpcMaxMessageBytes) {
        respond_status(session, id, CS_ERR_NO_RESOURCES);
        return;
    }
    ipc::ListResponse header{};
    header.header = {id, static_cast<int32_t>(bytes), CS_OK};
    header.count = static_cast<uint32_t>(rows.size());
    iovec parts[2] = {{&header, sizeof(header)}, {rows.data(), rows.size() * sizeof(cpg_iteration_description_t)}};
    qb_ipcs_response_sendv(session.connection, parts, 2);
}

void Daemon::handle_status(ClientSession& session)
{
    ipc::StatusResponse response{};
    response.header = {static_cast<int32_t>(ipc::RequestId::status), sizeof(response), CS_OK};
    response.nodeid = options_.nodeid;
    const Role role = node_->role();
    const ordering::View& view = node_->view();
    const Counters& counters = node_->counters();
    response.role = static_cast<uint8_t>(role == Role::single      ? ipc::NodeRole::single
                                         : role == Role::sequencer ? ipc::NodeRole::sequencer
                                                                    : ipc::NodeRole::member);
    response.flow_control = ring_->header().flow_control.load(std::memory_order_relaxed) != 0 ? 1 : 0;
    response.sequencer = view.ring_nodeid;
    // Connections that never sent init (operator tools, this one too) are no clients.
    response.local_clients = static_cast<uint32_t>(std::count_if(
        sessions_.begin(), sessions_.end(), [](const auto& entry) { return entry.second->initialized; }));
    response.client_pinned_bytes = client_pinned_bytes();
    response.ring_seq = view.ring_seq;
    response.ring_used_bytes = ring_->unpublished_tail() - node_->reclaim_limit();
    response.ring_capacity_bytes = ring_->data_bytes();
    response.counters = {
        .messages_sequenced = counters.messages_sequenced,
        .bytes_sequenced = counters.bytes_sequenced,
        .confchgs_sequenced = counters.confchgs_sequenced,
        .messages_delivered = counters.messages_delivered,
        .bytes_delivered = counters.bytes_delivered,
        .messages_forwarded = counters.messages_forwarded,
        .bytes_forwarded = counters.bytes_forwarded,
        .flow_control_events = counters.flow_control_events,
        .ring_full_events = counters.ring_full_events,
        .rdma_errors = counters.rdma_errors,
        .protocol_violations = counters.protocol_violations,
        .messages_copied_by_device = counters.messages_copied_by_device,
        .bytes_copied_by_device = counters.bytes_copied_by_device,
        .nodes_failed = counters.nodes_failed,
        .failovers = counters.failovers,
        .last_failover_ms = counters.last_failover_ms,
        .records_resent = counters.records_resent,
        .stuck_clients_disconnected = counters.stuck_clients_disconnected,
        .clients_refused = counters.clients_refused,
        .handshakes_refused = counters.handshakes_refused,
        .backlog_moves = counters.backlog_moves,
        .backlog_entries_moved = counters.backlog_entries_moved,
        .backlog_overflows = counters.backlog_overflows,
    };
    response.client_backlog_budget_bytes = options_.client_backlog_bytes;
    for (auto& [connection, client] : sessions_) {
        if (client->backlog && client->control != nullptr) {
            client->backlog->note_read(client->control->backlog_consumed.load(std::memory_order_acquire));
            response.backlog_bytes += client->backlog->used();
            response.backlogged_clients += client->backlog->used() != 0 ? 1 : 0;
        }
    }
    response.view_count = static_cast<uint32_t>(view.members.size());
    std::copy_n(view.members.begin(), std::min<size_t>(view.members.size(), ipc::kStatusMaxNodes), response.view);
    if (role == Role::sequencer) {
        status_of_remotes(response);
    }
    qb_ipcs_response_send(session.connection, &response, sizeof(response));
}

}  // namespace rcpg::daemon
