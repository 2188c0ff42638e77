#include "daemon/daemon.hpp"

#include "daemon/client_session.hpp"
#include "daemon/log.hpp"
#include "libcpg/ipc/bytes.hpp"
#include "libcpg/ipc/ring_entry.hpp"

#include <corosync/corotypes.h>
#include <linux/futex.h>
#include <sys/eventfd.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <new>

namespace rcpg::daemon {

using ipc::ConfchgPayload;
using ipc::EntryHeader;
using ipc::EntryKind;

namespace {

// Control requests are looked at this often while the loop spins on submissions.
constexpr uint64_t kIpcPollIntervalNs = 20'000;
// While senders wait for ring space or a dead client's leftovers wait to be sequenced,
// the loop re-checks this often instead of sleeping until the next request.
constexpr int kBlockedRecheckMs = 1;
// Without any event the loop still wakes this often (stop requests, stale fd requests).
constexpr int kIdleWakeMs = 500;
// A client that connects to the fd socket must present its token within this time.
constexpr auto kFdRequestTimeout = std::chrono::seconds(5);
// Descriptor requests waiting for their token at once: each is a process in the middle of
// cpg_initialize, so this is far above what any node sees.
constexpr size_t kMaxFdRequests = 256;
// Submissions taken from one client before the next client gets its turn.
constexpr uint32_t kDrainBudgetPerClient = 256;

uint64_t now_ns()
{
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
}

void futex_wake_all(std::atomic<uint32_t>* word)
{
    ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

}  // namespace

std::unique_ptr<Daemon> Daemon::create(const Options& options, std::string& error)
{
    std::unique_ptr<Daemon> daemon(new Daemon(options));
    if (!daemon->start(error)) {
        return nullptr;
    }
    return daemon;
}

Daemon::Daemon(const Options& options) : options_(options), ring_ids_(options.state_dir, options.nodeid) {}

Daemon::~Daemon()
{
    // Registrations under way, and those not yet adopted, go before the transport does.
    background_.stop();
    if (service_ != nullptr) {
        qb_ipcs_destroy(service_);
    }
    // Sessions hold registrations with the cluster's transport: they go before it does.
    sessions_.clear();
    closing_.clear();
}

bool Daemon::start(std::string& error)
{
    if (!loop_.valid()) {
        error = fmt::format("epoll_create1: {}", std::strerror(errno));
        return false;
    }
    if (!ordering::DeliveryRing::valid_size(options_.ring_bytes)) {
        error = fmt::format("ring size {} bytes must be a power of two of at least {} bytes", options_.ring_bytes,
                            4 * ipc::kMaxEntryBytes);
        return false;
    }
    if (!ipc::is_power_of_two(options_.submission_capacity)) {
        error = fmt::format("submission capacity {} must be a power of two", options_.submission_capacity);
        return false;
    }
    ring_ = std::make_unique<ordering::DeliveryRing>(options_.ring_bytes, options_.nodeid);
    if (!ring_->valid()) {
        error = fmt::format("cannot create the delivery ring: {}", std::strerror(errno));
        return false;
    }
    const std::optional<uint64_t> saved = ring_ids_.load(error);
    if (!saved) {
        return false;
    }
    saved_ring_seq_ = *saved;
    if (!start_node(error)) {
        return false;
    }
    save_ring_seq();
    // A member serves clients only once it is admitted (on_admitted starts the IPC).
    return node_->role() == Role::member || start_ipc(error);
}

// Called whenever the view may have changed: a view's ring id is stored before the loop
// turns again, so no restart hands out one at or below it.
void Daemon::save_ring_seq()
{
    const uint64_t ring_seq = node_->view().ring_seq;
    if (ring_seq <= saved_ring_seq_) {
        return;
    }
    std::string error;
    if (!ring_ids_.save(ring_seq, error)) {
        // Serving goes on; only a restart's ring id may then repeat an earlier one.
        RCPG_LOG_WARN("ring id {} not kept across restarts: {}", ring_seq, error);
    }
    saved_ring_seq_ = ring_seq;
}

bool Daemon::start_ipc(std::string& error)
{
    fd_socket_ = ipc::listen_fd_socket(options_.ipc_name);
    if (!fd_socket_) {
        error = fmt::format("cannot listen on @{}: {} (is another rcpgd running with RCPG_IPC={}?)",
                            ipc::fd_socket_name(options_.ipc_name), std::strerror(errno), options_.ipc_name);
        return false;
    }
    loop_.add(fd_socket_.get(), POLLIN, [this](uint32_t) { on_fd_socket_readable(); });

    static qb_ipcs_service_handlers handlers{};
    handlers.connection_accept = [](qb_ipcs_connection_t* c, uid_t uid, gid_t gid) -> int32_t {
        return static_cast<Daemon*>(qb_ipcs_connection_service_context_get(c))->on_accept(c, uid, gid);
    };
    handlers.connection_created = [](qb_ipcs_connection_t* c) {
        static_cast<Daemon*>(qb_ipcs_connection_service_context_get(c))->on_created(c);
    };
    handlers.msg_process = [](qb_ipcs_connection_t* c, void* data, size_t size) -> int32_t {
        return static_cast<Daemon*>(qb_ipcs_connection_service_context_get(c))->on_message(c, data, size);
    };
    handlers.connection_closed = [](qb_ipcs_connection_t*) -> int32_t { return 0; };
    handlers.connection_destroyed = [](qb_ipcs_connection_t* c) {
        static_cast<Daemon*>(qb_ipcs_connection_service_context_get(c))->on_destroyed(c);
    };
    service_ = qb_ipcs_create(options_.ipc_name.c_str(), 0, QB_IPC_SHM, &handlers);
    if (service_ == nullptr) {
        error = fmt::format("qb_ipcs_create({}): {}", options_.ipc_name, std::strerror(errno));
        return false;
    }
    qb_ipcs_service_context_set(service_, this);
    qb_ipcs_enforce_buffer_size(service_, ipc::kIpcMaxMessageBytes);
    qb_ipcs_poll_handlers poll_handlers = loop_.qb_handlers();
    qb_ipcs_poll_handlers_set(service_, &poll_handlers);
    if (int32_t rc = qb_ipcs_run(service_); rc != 0) {
        error = fmt::format("cannot serve IPC '{}': {} (is another rcpgd running with RCPG_IPC={}?)",
                            options_.ipc_name, std::strerror(-rc), options_.ipc_name);
        return false;
    }
    RCPG_LOG_INFO("rcpgd serving IPC '{}' as node {} (ring {} MiB, {})", options_.ipc_name, options_.nodeid,
                  options_.ring_bytes >> 20,
                  node_->role() == Role::single ? std::string("one-node cluster")
                                        : fmt::format("cluster of {} nodes, sequencer {}",
                                                      options_.cluster.nodes.size(), node_->sequencer()));
    return true;
}

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
    if (node_->role() != Role::single && !prepare_cluster_session(session)) {
        respond_status(session, id, CS_ERR_NO_RESOURCES);
        return;
    }
    session.control = new (session.control_map.get()) ipc::ControlBlock{};
    session.control->magic = ipc::kControlMagic;
    session.control->version = ipc::kLayoutVersion;
    session.control->submission_capacity = options_.submission_capacity;
    session.descriptors = reinterpret_cast<const ipc::SubmissionDescriptor*>(session.control_map.bytes() +
                                                                             ipc::kControlDescriptorsOffset);
    session.submission_mask = options_.submission_capacity - 1;
    if (::getrandom(session.token.data(), session.token.size(), 0) != static_cast<ssize_t>(session.token.size())) {
        respond_status(session, id, CS_ERR_LIBRARY);
        return;
    }
    session.totem_callback = (request.flags & ipc::kInitFlagTotemCallback) != 0;
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
    const ordering::GroupName name = ordering::GroupName::from(request.group);
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
        if (!request_change(session, name, CPG_REASON_JOIN)) {
            respond_status(session, id, CS_ERR_TRY_AGAIN);
            return;
        }
        session.pending_join = name;
        return;
    }
    if (!node_->sequence_change(name, self, CPG_REASON_JOIN)) {
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
    const ordering::GroupName name = ordering::GroupName::from(request.group);
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
        if (!request_change(session, name, CPG_REASON_LEAVE)) {
            respond_status(session, id, CS_ERR_TRY_AGAIN);
            return;
        }
        session.pending_leave = true;
        return;
    }
    if (!node_->sequence_change(name, session.process(options_.nodeid), CPG_REASON_LEAVE)) {
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
    const std::vector<cpg_address> members = node_->groups().members(ordering::GroupName::from(request.group));
    const int32_t id = static_cast<int32_t>(ipc::RequestId::membership_get);
    const size_t bytes = sizeof(ipc::ListResponse) + members.size() * sizeof(cpg_address);
    if (bytes > ipc::kIpcMaxMessageBytes) {
        respond_status(session, id, CS_ERR_NO_RESOURCES);
        return;
    }
    ipc::ListResponse header{};
    header.header = {id, static_cast<int32_t>(bytes), CS_OK};
    header.count = static_cast<uint32_t>(members.size());
    iovec parts[2] = {{&header, sizeof(header)},
                      {const_cast<cpg_address*>(members.data()), members.size() * sizeof(cpg_address)}};
    qb_ipcs_response_sendv(session.connection, parts, 2);
}

void Daemon::handle_iteration(ClientSession& session, const ipc::IterationRequest& request)
{
    const int32_t id = static_cast<int32_t>(ipc::RequestId::iteration_snapshot);
    const auto type = static_cast<cpg_iteration_type_t>(request.iteration_type);
    const ordering::GroupName wanted = ordering::GroupName::from(request.group);
    std::vector<cpg_iteration_description_t> rows;
    std::optional<ordering::GroupName> previous;
    for (const ordering::GroupTable::Row& row : node_->groups().rows()) {
        if (type == CPG_ITERATION_ONE_GROUP && !(row.group == wanted)) {
            continue;
        }
        cpg_iteration_description_t description{};
        description.group = row.group.to_cpg();
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

// ---------------------------------------------------------------------------------------
// Handing out shared memory

void Daemon::on_fd_socket_readable()
{
    const auto now = std::chrono::steady_clock::now();
    for (auto it = fd_requests_.begin(); it != fd_requests_.end();) {
        if (now - it->second > kFdRequestTimeout) {
            loop_.remove(it->first);
            ::close(it->first);
            it = fd_requests_.erase(it);
        } else {
            ++it;
        }
    }
    while (true) {
        const int socket = ::accept4(fd_socket_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (socket < 0) {
            return;
        }
        // Kept only for a process that initialized a session and waits for its
        // descriptors, and only so many at once: nobody else holds a connection here.
        ipc::PeerCredentials peer{};
        const bool awaited = ipc::peer_credentials(socket, peer) == 0 && allowed(peer.uid, peer.gid) &&
                             std::any_of(sessions_.begin(), sessions_.end(), [&peer](const auto& entry) {
                                 return entry.second->initialized && !entry.second->fds_delivered &&
                                        entry.second->pid == peer.pid;
                             });
        if (!awaited || fd_requests_.size() >= kMaxFdRequests) {
            ::close(socket);
            ++node_->counters().clients_refused;
            continue;
        }
        fd_requests_[socket] = now;
        loop_.add(socket, POLLIN, [this, socket](uint32_t) { on_fd_request(socket); });
    }
}

void Daemon::on_fd_request(int socket)
{
    ipc::Token token{};
    const ssize_t received = ::recv(socket, token.data(), token.size(), MSG_DONTWAIT);
    if (received < 0 && errno == EAGAIN) {
        return;
    }
    loop_.remove(socket);
    fd_requests_.erase(socket);
    ipc::UniqueFd connection(socket);
    if (received != static_cast<ssize_t>(token.size())) {
        return;
    }
    ipc::PeerCredentials peer{};
    if (ipc::peer_credentials(socket, peer) != 0) {
        return;
    }
    for (auto& [qb_connection, session] : sessions_) {
        if (!session->initialized || session->fds_delivered || session->token != token) {
            continue;
        }
        if (session->pid != peer.pid) {
            RCPG_LOG_WARN("pid {} presented the shared-memory token of pid {}: refused", peer.pid, session->pid);
            return;
        }
        ipc::UniqueFd ring_fd = ring_->read_only_fd();
        // Without backlogs (client_backlog_mib 0) an empty file stands in for it.
        ipc::UniqueFd backlog_fd = session->backlog ? session->backlog->client_fd()
                                                    : ipc::create_sealed_memfd("rcpg-no-backlog", 0);
        if (!ring_fd || !backlog_fd) {
            return;
        }
        const int fds[ipc::fd_count] = {ring_fd.get(), session->control_fd.get(), session->arena_fd.get(),
                                        session->doorbell.get(), backlog_fd.get()};
        if (ipc::send_fds(socket, fds) == 0) {
            session->fds_delivered = true;
            // The mappings stay; the daemon no longer needs the files themselves.
            session->control_fd.reset();
            session->arena_fd.reset();
        }
        return;
    }
}

// ---------------------------------------------------------------------------------------
// Sequencing

void Daemon::release_pins()
{
    for (auto& [connection, session] : sessions_) {
        if (session->leave_end &&
            session->control->consumed.load(std::memory_order_acquire) >= *session->leave_end) {
            session->leave_end.reset();
            session->wake_group_id = 0;
            session->read_group_id = 0;
            if (!session->totem_callback && !session->group) {
                session->pinning = false;
            }
        }
    }
}

// Where a pinning client has read up to, as far as the ring is concerned (see
// ipc::reader_position): a reader only moves forward, so moving back and forth fakes no
// progress, and the stuck-client rule counts only real progress.
uint64_t Daemon::read_position(ClientSession& session, uint64_t tail)
{
    return ipc::reader_position(session.control->consumed.load(std::memory_order_acquire), session.consumed_high,
                                session.pin_floor, tail);
}

// The lowest ring position a pinning client may still read: where it has read up to, or
// where its backlog ends in the ring if that is further. An entry it holds in a callback
// below that (ControlBlock::holding: delivered in place, then moved) must stay as it is:
// its payload becomes a hold (`holds`) that the writer goes round (one node, the
// sequencer), or that a member publishes to the sequencer for its writer. The limit
// only rises: a new hold below it cannot be real (the client re-reads `moved_to` after
// raising it, and does not use the entry).
uint64_t Daemon::reader_limit(ClientSession& session, uint64_t tail, std::vector<ordering::DeliveryRing::Hold>* holds)
{
    uint64_t limit = std::max(read_position(session, tail), session.moved_to);
    if (session.moved_to != 0) {
        // seq_cst, after the store of `moved_to` (move_to_backlog): Dekker with the client.
        update_hold(session, limit, tail);
        if (session.held && holds != nullptr) {
            holds->push_back(session.held->payload);
        }
    }
    session.ring_floor = std::max(session.ring_floor, limit);
    return limit;
}

uint64_t Daemon::local_reclaim_limit()
{
    release_pins();
    const uint64_t tail = ring_->published_tail();
    uint64_t limit = ring_->unpublished_tail();
    std::vector<ordering::DeliveryRing::Hold> holds;
    for (auto& [connection, session] : sessions_) {
        if (!session->pinning) {
            continue;
        }
        // Untrusted: a client can only hold back the ring (as a stuck client would), never
        // let it overwrite what another client still reads.
        limit = std::min(limit, reader_limit(*session, tail, &holds));
    }
    // Clients cut off inside such a callback: their hold lasts as long as the callback (a
    // process that died cannot clear it: kill(pid, 0) tells).
    const auto still_held = [&](ClientSession& session) {
        if (!session.held) {
            return false;
        }
        const bool alive = ::kill(session.pid, 0) == 0 || errno == EPERM;
        if (!alive ||
            session.control->holding.load(std::memory_order_seq_cst) != session.held->position + 1) {
            session.held.reset();
            return false;
        }
        holds.push_back(session.held->payload);
        return true;
    };
    for (const std::unique_ptr<ClientSession>& session : closing_) {
        still_held(*session);
    }
    std::erase_if(held_after_close_,
                  [&](const std::unique_ptr<ClientSession>& session) { return !still_held(*session); });
    ring_->set_holds(std::move(holds));
    return limit;
}

// Takes the client's `holding` word (read seq_cst, after a store of `moved_to` or
// `cut_off`: Dekker with the client, which stores it and then reads those) for what it
// can be: an entry delivered in place below `limit` that the client may still read (not
// below ring_floor, whatever it claims). Once taken, the hold is kept by position as long
// as the word says so: the entry's header may be a skip's by then, its payload is not.
void Daemon::update_hold(ClientSession& session, uint64_t limit, uint64_t tail)
{
    const uint64_t holding = session.control->holding.load(std::memory_order_seq_cst);
    const uint64_t position = holding - 1;
    ipc::RingEntry entry{};
    if (holding == 0 || position >= limit) {
        session.held.reset();
    } else if (session.held && session.held->position == position) {
        return;
    } else if (position >= session.ring_floor &&
               ipc::read_entry(ring_->data(), ring_->data_bytes(), position, tail, entry) == ipc::RingStep::entry &&
               entry.header.kind == EntryKind::data && (entry.header.flags & ipc::kFlagPayloadOnPage) != 0) {
        session.held = {position, {position + entry.header.payload_offset,
                                   entry.header.entry_bytes - uint64_t{entry.header.payload_offset}}};
    } else {
        session.held.reset();  // not a hold this client can have: ignored
    }
}

// Whether an entry is one `session` reads (what its library delivers is decided there;
// copying more than that costs only room).
bool Daemon::reads_entry(const ClientSession& session, const ipc::EntryHeader& entry)
{
    switch (entry.kind) {
    case EntryKind::data:
    case EntryKind::confchg:
        return session.read_group_id != 0 && entry.group_id == session.read_group_id;
    case EntryKind::totem_confchg:
        return session.totem_callback;
    case EntryKind::pad:
    case EntryKind::skip:
    case EntryKind::dropped:
        return false;
    }
    return false;
}

// Moves the client's entries from where it may still read up to the published tail out
// of the ring into its backlog; the ring then keeps nothing below that for it. False when
// they do not fit its budget: the caller cuts it off.
bool Daemon::move_to_backlog(ClientSession& session)
{
    ipc::ControlBlock& control = *session.control;
    ClientBacklog& backlog = *session.backlog;
    const uint64_t tail = ring_->published_tail();
    backlog.note_read(control.backlog_consumed.load(std::memory_order_acquire));
    uint64_t position = std::max(read_position(session, tail), session.moved_to);
    const uint64_t start = position;
    uint64_t moved = 0;
    while (position < tail) {
        ipc::RingEntry entry{};
        if (ipc::read_entry(ring_->data(), ring_->data_bytes(), position, tail, entry) != ipc::RingStep::entry) {
            break;  // what this node published it checked: cannot happen
        }
        if (reads_entry(session, entry.header)) {
            if (!backlog.append(entry.header, entry.payload)) {
                return false;
            }
            ++moved;
        }
        position += entry.header.entry_bytes;
    }
    if (position == start) {
        return true;
    }
    // The backlog's entries before the position that says they are there; then the
    // holding word is read by the next reader_limit (Dekker, seq_cst).
    control.backlog_tail.store(backlog.tail(), std::memory_order_release);
    control.moved_to.store(position, std::memory_order_seq_cst);
    session.moved_to = position;
    Counters& counters = node_->counters();
    counters.backlog_entries_moved += moved;
    ++counters.backlog_moves;
    return true;
}

// Called while the ring is more than half full: every client that lags more than a
// quarter of the ring behind gets its entries moved to its backlog, so that nobody waits
// for it. One whose backlog is full is cut off (its groups see PROCDOWN). True when a
// client's place in the ring moved.
bool Daemon::move_slow_readers()
{
    const uint64_t tail = ring_->published_tail();
    const uint64_t lag_bytes = ring_->data_bytes() / 4;
    bool moved = false;
    for (auto& [connection, session] : sessions_) {
        if (!session->pinning || session->violated || !session->backlog || !session->fds_delivered) {
            continue;
        }
        const uint64_t lag = tail - reader_limit(*session, tail, nullptr);
        if (lag <= lag_bytes) {
            continue;
        }
        if (!move_to_backlog(*session)) {
            RCPG_LOG_WARN("pid {} fell {} MiB behind and its backlog ({} MiB) is full; disconnecting it", session->pid,
                          lag >> 20, session->backlog->capacity() >> 20);
            ++node_->counters().backlog_overflows;
            session->violated = true;
            disconnect_later(*session);
            continue;
        }
        moved = true;
    }
    return moved;
}

bool Daemon::drain_session(ClientSession& session, uint32_t budget)
{
    if (session.control == nullptr || !session.fds_delivered || session.violated) {
        return false;
    }
    ipc::ControlBlock& control = *session.control;
    const uint64_t tail = control.sub_tail.load(std::memory_order_acquire);
    if (tail - session.sub_head > session.submission_mask + 1ull) {
        session.violated = true;
        ++node_->counters().protocol_violations;
        RCPG_LOG_WARN("pid {}: submission ring index out of range; disconnecting", session.pid);
        disconnect_later(session);
        return false;
    }
    if (session.sub_head == tail) {
        return false;
    }
    const uint64_t start = session.sub_head;
    while (session.sub_head != tail && budget-- > 0) {
        ipc::SubmissionDescriptor descriptor;
        std::memcpy(&descriptor, &session.descriptors[session.sub_head & session.submission_mask],
                    sizeof(descriptor));
        if (!ipc::submission_valid(descriptor, session.arena_bytes, options_.arena_copy_bytes)) {
            session.violated = true;
            ++node_->counters().protocol_violations;
            RCPG_LOG_WARN("pid {}: malformed submission (offset {}, length {}, flags {:#x}); disconnecting",
                          session.pid, descriptor.arena_offset, descriptor.length, descriptor.flags);
            disconnect_later(session);
            break;
        }
        if (!session.group) {
            ++session.sub_head;  // sent while not a member: dropped, as corosync does
            continue;
        }
        if (node_->role() != Role::single && !device_can_read(session, descriptor)) {
            break;  // its arena part is being registered; the client waits as for ring room
        }
        if (!submit_data(session, descriptor, descriptor.flags)) {
            ring_blocked_ = true;
            break;
        }
        ++session.sub_head;
    }
    if (session.sub_head == start) {
        return false;
    }
    // What the device still reads (forwarded, or copied into the ring by the loopback) is
    // released by its batch's completion, and so is everything after it.
    const bool device_reads = node_->role() == Role::member || session.cluster.device_copied ||
                              !session.cluster.pending_heads.empty();
    session.cluster.device_copied = false;
    if (device_reads) {
        note_forwarded(session);
    } else {
        publish_sub_head(session, session.sub_head);
    }
    return true;
}

void Daemon::publish_sub_head(ClientSession& session, uint64_t sub_head)
{
    ipc::ControlBlock& control = *session.control;
    control.sub_head.store(sub_head, std::memory_order_seq_cst);
    control.sub_head_futex.store(static_cast<uint32_t>(sub_head), std::memory_order_seq_cst);
    if (control.submitter_waiting.load(std::memory_order_seq_cst) != 0) {
        futex_wake_all(&control.sub_head_futex);
    }
}

bool Daemon::submit_data(ClientSession& session, const ipc::SubmissionDescriptor& descriptor, uint16_t flags)
{
    const uint32_t total_bytes = (flags & ipc::kFlagFragment) != 0
                                     ? static_cast<uint32_t>(std::min<uint64_t>(descriptor.total_bytes, UINT32_MAX))
                                     : descriptor.length;
    if (node_->role() == Role::member) {
        return forward_data(session, descriptor, total_bytes);
    }
    const std::optional<transport::LocalSlice> payload =
        node_->role() == Role::single ? std::nullopt : arena_slice(session, descriptor);
    if (payload && node_->copies_by_device(descriptor.length)) {
        if (!node_->sequence_data_by_device(session.group_id, session.process(options_.nodeid), flags, total_bytes,
                                            *payload)) {
            return false;
        }
        session.cluster.device_copied = true;
        return true;
    }
    return node_->sequence_data(session.group_id, session.process(options_.nodeid), flags, total_bytes,
                         {session.arena_map.bytes() + descriptor.arena_offset, descriptor.length});
}

bool Daemon::drain_submissions()
{
    ring_blocked_ = false;
    bool worked = false;
    for (auto& [connection, session] : sessions_) {
        worked |= drain_session(*session, kDrainBudgetPerClient);
    }
    if (node_->role() == Role::member) {
        node_->commit_forwarded();
    } else if (node_->role() == Role::sequencer) {
        worked |= node_->drain_inbound(ring_blocked_);
    }
    publish_and_wake();
    return worked;
}

bool Daemon::submissions_pending() const
{
    for (const auto& [connection, session] : sessions_) {
        // A session waiting for its arena to be registered is woken by the registration.
        if (session->control != nullptr && session->fds_delivered && !session->violated &&
            !session->cluster.waiting_for_part &&
            session->control->sub_tail.load(std::memory_order_seq_cst) != session->sub_head) {
            return true;
        }
    }
    return false;
}

void Daemon::publish_and_wake()
{
    if (!ring_->has_unpublished()) {
        return;
    }
    if (node_->role() == Role::sequencer) {
        node_->replicate();  // the other nodes' copies go out first: they have further to travel
    }
    // Publishing is a seq_cst store and `waiting` is read seq_cst: with the client's seq_cst
    // store of `waiting` and load of the tail, either it sees the new tail or we see its flag.
    ring_->publish(node_->publishable_tail());
    std::vector<qb_ipcs_connection_t*> to_wake;
    for (auto& [connection, session] : sessions_) {
        if (session->wake_group_id == 0 || session->control == nullptr) {
            continue;
        }
        uint64_t waiting = session->control->waiting.load(std::memory_order_seq_cst);
        if (waiting == 0) {
            continue;
        }
        const uint32_t wake_group_id = session->wake_group_id;
        auto batch = std::find_if(batch_groups_.begin(), batch_groups_.end(),
                                  [wake_group_id](const BatchGroup& group) { return group.group_id == wake_group_id; });
        // Only for an entry it has not read: it may have read this batch before going idle.
        if (batch == batch_groups_.end() || waiting - 1 >= batch->end_position) {
            continue;
        }
        // Fails if the client took its flag back (it saw the entry itself) or re-armed.
        if (session->control->waiting.compare_exchange_strong(waiting, 0, std::memory_order_seq_cst)) {
            to_wake.push_back(connection);
        }
    }
    // Groups whose entries are not all published yet (device copies in flight) wake later.
    std::erase_if(batch_groups_,
                  [&](const BatchGroup& group) { return group.end_position <= ring_->published_tail(); });
    // Sent after the walk: a failed send may make libqb drop the connection, which
    // destroys its session.
    for (qb_ipcs_connection_t* connection : to_wake) {
        if (auto found = sessions_.find(connection); found != sessions_.end()) {
            send_wake(*found->second);
        }
    }
    update_flow_control();
}

void Daemon::on_entry(uint32_t group_id)
{
    const uint64_t end = ring_->unpublished_tail();
    if (!batch_groups_.empty() && batch_groups_.back().group_id == group_id) {
        batch_groups_.back().end_position = end;
        return;
    }
    for (BatchGroup& group : batch_groups_) {
        if (group.group_id == group_id) {
            group.end_position = end;
            return;
        }
    }
    batch_groups_.push_back({group_id, end});
}

void Daemon::update_flow_control()
{
    const uint64_t capacity = ring_->data_bytes();
    auto& flag = ring_->header().flow_control;
    // With the last computed limit the ring is at most this full: only a ring that may be
    // past the lower mark is worth a walk over the clients.
    uint64_t used = ring_->unpublished_tail() - node_->cached_reclaim_limit();
    if (used * 2 > capacity) {
        used = ring_->unpublished_tail() - node_->reclaim_limit();
        if (used * 2 > capacity && move_slow_readers()) {
            used = ring_->unpublished_tail() - node_->reclaim_limit();
        }
    }
    if (used * 4 >= capacity * 3) {
        if (flag.load(std::memory_order_relaxed) == 0) {
            ++node_->counters().flow_control_events;
        }
        flag.store(1, std::memory_order_relaxed);
        disconnect_stuck_clients();
    } else if (used * 10 <= capacity * 7) {
        flag.store(0, std::memory_order_relaxed);
        for (auto& [connection, session] : sessions_) {
            session->stuck_since_ms = 0;
        }
    }
}

void Daemon::disconnect_stuck_clients()
{
    if (options_.stuck_client_timeout_ms == 0) {
        return;
    }
    // The ring is full: the client at the oldest position holds every sender back (at the
    // sequencer, unless another node's credit is older still). One that does not move
    // for the timeout is taken for stuck; corosync would let it stall everybody.
    const uint64_t limit = node_->reclaim_limit();
    const uint64_t tail = ring_->published_tail();
    const uint64_t now_ms = coarse_clock_ms();
    for (auto& [connection, session] : sessions_) {
        if (!session->pinning || session->violated) {
            continue;
        }
        // With a backlog, only an entry held in a callback for the whole time (or the
        // lack of one) makes a client stuck.
        const uint64_t consumed = reader_limit(*session, tail, nullptr);
        if (consumed > limit) {
            session->stuck_since_ms = 0;
            continue;
        }
        if (session->stuck_since_ms == 0 || consumed != session->stuck_at) {
            session->stuck_at = consumed;
            session->stuck_since_ms = now_ms;
            continue;
        }
        if (now_ms - session->stuck_since_ms >= options_.stuck_client_timeout_ms) {
            RCPG_LOG_WARN("pid {} read nothing for {} ms while the ring was full because of it; disconnecting it",
                          session->pid, now_ms - session->stuck_since_ms);
            ++node_->counters().stuck_clients_disconnected;
            session->violated = true;
            disconnect_later(*session);
        }
    }
}

void Daemon::finish_closing_sessions()
{
    for (auto it = closing_.begin(); it != closing_.end();) {
        ClientSession& session = **it;
        drain_session(session, UINT32_MAX);
        if (session.control != nullptr && session.fds_delivered && !session.violated &&
            session.sub_head != session.control->sub_tail.load(std::memory_order_acquire)) {
            ++it;  // waits for ring space
            continue;
        }
        if (session.pending_join || session.pending_leave || session.cluster.op_in_flight) {
            ++it;  // its join or leave is on its way back from the sequencer
            continue;
        }
        if (session.group) {
            if (!request_change(session, *session.group, CPG_REASON_PROCDOWN)) {
                ++it;  // waits for ring space
                continue;
            }
            if (node_->role() == Role::member) {
                session.group.reset();  // the PROCDOWN is on its way; wait for it below
                ++it;
                continue;
            }
        }
        if (!session.cluster.pending_heads.empty()) {
            ++it;  // the device may still read its arena
            continue;
        }
        retire_arena(session);
        if (session.held) {
            // Cut off inside a callback on an entry delivered in place: those pages stay as
            // they are until the callback returns (the client clears `holding`) or the
            // process is gone (local_reclaim_limit); the rest of its memory goes now.
            session.backlog.reset();
            session.arena_map.reset();
            held_after_close_.push_back(std::move(*it));
        }
        it = closing_.erase(it);
    }
    if (node_->role() == Role::member) {
        node_->commit_forwarded();
    }
    publish_and_wake();
}

// ---------------------------------------------------------------------------------------
// The loop

bool Daemon::turn(uint64_t now_ms)
{
    auto& ring_header = ring_->header();
    // Clients look at it before they send: still this millisecond, the daemon is there.
    if (ring_header.alive_ms.load(std::memory_order_relaxed) != now_ms) {
        ring_header.alive_ms.store(now_ms, std::memory_order_relaxed);
    }
    bool worked = node_->role() != Role::single && node_->step(now_ms);
    if (node_->view().ring_seq > saved_ring_seq_) {
        save_ring_seq();
    }
    worked |= drain_submissions();
    if (!closing_.empty()) {
        finish_closing_sessions();
    }
    // Raised flow control clears only here once readers made room without anything
    // new being published (a zero-copy sender waits for it to clear).
    if (ring_header.flow_control.load(std::memory_order_relaxed) != 0) {
        update_flow_control();
    }
    return worked;
}

Daemon::SleepPlan Daemon::plan_sleep(uint64_t now_ms)
{
    auto& ring_header = ring_->header();
    int timeout_ms = kIdleWakeMs;
    // Raised before the last look at the submission rings: a client that publishes after
    // that look sees it and rings (Dekker, seq_cst on both sides).
    ring_header.daemon_sleeping.store(1, std::memory_order_seq_cst);
    if (ring_blocked_ || !closing_.empty() || ring_header.flow_control.load(std::memory_order_relaxed) != 0) {
        // Work that waits for readers to make room: re-check soon rather than spin.
        timeout_ms = kBlockedRecheckMs;
    } else if (submissions_pending()) {
        ring_header.daemon_sleeping.store(0, std::memory_order_relaxed);
        return {SleepPlan::Kind::again, 0};
    }
    if (node_->role() != Role::single) {
        const ordering::Node::Sleep sleep = node_->prepare_sleep(now_ms);
        if (sleep == ordering::Node::Sleep::busy) {
            ring_header.daemon_sleeping.store(0, std::memory_order_relaxed);
            return {SleepPlan::Kind::busy, 0};
        }
        if (sleep == ordering::Node::Sleep::poll_soon) {
            timeout_ms = kBlockedRecheckMs;
        }
        // Heartbeats go out and are checked on time, also when nothing else happens.
        const uint64_t timer_ms = node_->next_timer_ms();
        timeout_ms = std::min<int>(
            timeout_ms, timer_ms > now_ms ? static_cast<int>(std::min<uint64_t>(timer_ms - now_ms, kIdleWakeMs)) : 0);
    }
    return {SleepPlan::Kind::sleep, timeout_ms};
}

void Daemon::wait(int timeout_ms)
{
    loop_.run_once(timeout_ms);
    ring_->header().daemon_sleeping.store(0, std::memory_order_relaxed);
}

void Daemon::run(const std::atomic<bool>& stop)
{
    const uint64_t busy_poll_ns = uint64_t{options_.busy_poll_us} * 1000;
    uint64_t last_work_ns = now_ns();
    uint64_t last_ipc_poll_ns = 0;
    stop_ = &stop;
    while (!stop.load(std::memory_order_relaxed) && !failed()) {
        const bool worked = turn(coarse_clock_ms());
        const uint64_t now = now_ns();
        if (worked) {
            last_work_ns = now;
        }
        if (now - last_work_ns < busy_poll_ns) {
            if (now - last_ipc_poll_ns >= kIpcPollIntervalNs) {
                loop_.run_once(0);
                last_ipc_poll_ns = now;
            }
            continue;
        }
        const SleepPlan plan = plan_sleep(coarse_clock_ms());
        if (plan.kind == SleepPlan::Kind::again) {
            continue;
        }
        if (plan.kind == SleepPlan::Kind::busy) {
            last_work_ns = now_ns();
            continue;
        }
        wait(plan.timeout_ms);
        last_ipc_poll_ns = last_work_ns = now_ns();
    }
    if (node_->role() == Role::member && !failed()) {
        leave_cluster();
    }
}

}  // namespace rcpg::daemon
