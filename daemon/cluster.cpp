// The daemon's side of ordering::Node: it creates the transport, hands the node its
// clients' submissions and group operations, and carries out what the node reports for
// those clients (answers to joins and leaves, released submissions, wake-ups).
// The protocol and its invariants: ordering/NOTES.md.
#include "daemon/client_session.hpp"
#include "daemon/daemon.hpp"
#include "daemon/log.hpp"
#include "transport/verbs_transport.hpp"

#include <time.h>

#include <algorithm>
#include <cstring>
#include <thread>

namespace rcpg::daemon {

namespace {

constexpr uint64_t kLeaveTimeoutMs = 2000;

void log_from_node(ordering::LogLevel level, std::string_view text)
{
    const int priority = level == ordering::LogLevel::error     ? LOG_ERR
                         : level == ordering::LogLevel::warning ? LOG_WARNING
                         : level == ordering::LogLevel::info    ? LOG_INFO
                                                                : LOG_DEBUG;
    qb_log(priority, "%.*s", static_cast<int>(text.size()), text.data());
}

}  // namespace

uint64_t coarse_clock_ms()
{
    timespec now;
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return static_cast<uint64_t>(now.tv_sec) * 1000u + static_cast<uint64_t>(now.tv_nsec) / 1'000'000u;
}

base::Status Daemon::start_node()
{
    ordering::NodeConfig config;
    config.nodeid = options_.nodeid;
    config.log = log_from_node;
    config.first_ring_seq = saved_ring_seq_ + 1;
    std::unique_ptr<transport::Transport> transport;
    const ClusterOptions& cluster = options_.cluster;
    if (cluster.multi_node()) {
        for (const ClusterNode& node : cluster.nodes) {
            config.nodes.push_back(node.nodeid);
        }
        config.sequencer_order = cluster.sequencer_order;
        config.failure_timeout_ms = cluster.failure_timeout_ms;
        config.inbound_ring_bytes = cluster.inbound_ring_bytes;

        transport::TransportConfig transport_config;
        transport_config.self = options_.nodeid;
        for (const ClusterNode& node : cluster.nodes) {
            transport_config.nodes.push_back({node.nodeid, node.address, node.port});
        }
        transport_config.cluster_key = cluster.cluster_key;
        transport_config.device_name = cluster.device;
        transport_config.connect_timeout_ms = cluster.connect_timeout_ms;
        auto created = transport::VerbsTransport::create(transport_config);
        if (!created) {
            return created.status().in("RDMA transport");
        }
        const std::string& device = (*created)->device().name;
        const bool software_device = device.starts_with("rxe") || device.starts_with("siw");
        config.device_copies = cluster.sequencer_copy == SequencerCopy::device ||
                               (cluster.sequencer_copy == SequencerCopy::automatic && !software_device);
        transport = std::move(*created);
    }
    auto node = ordering::Node::create(std::move(config), *ring_, *this, std::move(transport));
    if (!node) {
        return node.status();
    }
    node_ = std::move(*node);
    if (transport::Transport* node_transport = node_->transport(); node_transport != nullptr) {
        if (const int wait_fd = node_transport->wait_fd(); wait_fd >= 0) {
            // Only a wake-up: the loop steps the node on every turn.
            loop_.add(wait_fd, POLLIN, [](uint32_t) {});
        }
    }
    return {};
}

// ---------------------------------------------------------------------------------------
// Member: forwarding this node's clients

base::Status Daemon::prepare_cluster_session(ClientSession& session)
{
    // The device reads payloads from the arena: a member's to forward them, the
    // sequencer's to copy them into its ring. Each part gets a mapping of its own for
    // that (mapping costs nothing until pinned). The copy part starts pinning in the
    // background now, so that it is usually ready by the first send; the zero-copy part
    // only once the client sends from it, since most clients never do. A sequencer whose
    // CPU copies never reads the arena by device (and never becomes a member again), so
    // it pins nothing: on a software device that saves the costliest step of an init.
    for (const ArenaPart part : {ArenaPart::copy, ArenaPart::zcb}) {
        const auto [offset, bytes] = arena_part_range(session, part);
        if (bytes == 0) {
            continue;
        }
        session.cluster.unpinned_views[static_cast<size_t>(part)] =
            ipc::map_fd(session.arena_fd.get(), bytes, offset, ipc::Access::read_write);
        if (!session.cluster.unpinned_views[static_cast<size_t>(part)]) {
            return base::errno_status(base::Errc::io_error, base::Layer::system,
                                      fmt::format("pid {}: cannot map the send arena", session.pid), errno);
        }
    }
    if (node_->role() == Role::member || node_->device_copies_configured()) {
        start_pinning(session, ArenaPart::copy);
    }
    if (node_->role() != Role::member) {
        return {};
    }
    auto staging = transport::RegisteredMemory::create(
        *node_->transport(), size_t{options_.submission_capacity} * sizeof(ordering::wire::DataPrefix),
        transport::RegionAccess::local);
    if (!staging) {
        return staging.status().in(fmt::format("pid {}: cannot register forwarding staging", session.pid));
    }
    session.cluster.staging = std::move(*staging);
    return {};
}

std::pair<uint64_t, uint64_t> Daemon::arena_part_range(const ClientSession& session, ArenaPart part) const
{
    const uint64_t copy_bytes = std::min(options_.arena_copy_bytes, session.arena_bytes);
    return part == ArenaPart::copy ? std::pair{uint64_t{0}, copy_bytes}
                                   : std::pair{copy_bytes, session.arena_bytes - copy_bytes};
}

void Daemon::start_pinning(ClientSession& session, ArenaPart part)
{
    const auto index = static_cast<size_t>(part);
    ClusterSessionState& cluster = session.cluster;
    if (cluster.parts[index].registration || cluster.pinning_parts[index] || cluster.pinning_failed[index]) {
        return;
    }
    if (!cluster.unpinned_views[index]) {
        cluster.pinning_failed[index] = true;  // an empty part: nothing can be sent from it
        return;
    }
    auto pinning = std::make_shared<PartPinning>();
    pinning->view = std::move(cluster.unpinned_views[index]);
    const bool started = background_.run(
        [pinning, transport = node_->transport()] {
            if (pinning->wanted.load(std::memory_order_relaxed)) {
                pinning->prepared =
                    transport->prepare_region(pinning->view.get(), pinning->view.size(), transport::RegionAccess::local);
            }
        },
        [this, pinning, serial = session.serial, part] { finish_pinning(serial, part, *pinning); });
    if (!started) {
        cluster.pinning_failed[index] = true;
        RCPG_LOG_ERROR("pid {}: cannot start the registration thread", session.pid);
        return;
    }
    cluster.pinning_parts[index] = std::move(pinning);
}

void Daemon::finish_pinning(uint64_t serial, ArenaPart part, PartPinning& pinning)
{
    ClientSession* session = session_by_serial(serial);
    if (session == nullptr) {
        return;  // gone meanwhile: the registration goes with `pinning`
    }
    const auto index = static_cast<size_t>(part);
    ClusterSessionState& cluster = session->cluster;
    cluster.pinning_parts[index].reset();
    cluster.waiting_for_part = false;
    auto registration = pinning.prepared ? transport::Registration::adopt(*node_->transport(),
                                                                         std::move(pinning.prepared).value())
                                         : transport::Result<transport::Registration>(pinning.prepared.status());
    if (!registration) {
        cluster.pinning_failed[index] = true;
        RCPG_LOG_ERROR("pid {}: cannot register its send arena ({} part): {}", session->pid,
                       part == ArenaPart::copy ? "copy" : "zero-copy", registration.status().message());
        return;
    }
    cluster.parts[index] = PinnedPart{std::move(pinning.view), std::move(*registration)};
}

void Daemon::retire_arena(ClientSession& session)
{
    // Unpinning is as slow as pinning: the parts leave the transport here and are
    // unpinned and unmapped in the background.
    for (PinnedPart& pinned : session.cluster.parts) {
        if (!pinned.registration) {
            continue;
        }
        auto released = pinned.registration.release();
        if (!released) {
            RCPG_LOG_WARN("pid {}: releasing its send arena: {}", session.pid, released.status().message());
            continue;
        }
        auto retired = std::make_shared<PinnedPart>(std::move(pinned));
        auto unpinned = std::make_shared<std::unique_ptr<transport::PreparedRegion>>(std::move(released).value());
        // If no background thread can run, both go right here instead.
        background_.run([retired, unpinned] { unpinned->reset(); retired->view = {}; }, [] {});
    }
}

template <typename Visit>
void Daemon::for_each_session(Visit&& visit)
{
    for (auto& [connection, session] : sessions_) {
        visit(*session, true);
    }
    for (auto& session : closing_) {
        visit(*session, false);
    }
}

uint64_t Daemon::client_pinned_bytes()
{
    uint64_t bytes = 0;
    for_each_session([&bytes](const ClientSession& session, bool) {
        for (const PinnedPart& pinned : session.cluster.parts) {
            if (pinned.registration) {
                bytes += pinned.view.size();
            }
        }
    });
    return bytes;
}

ClientSession* Daemon::session_by_serial(uint64_t serial)
{
    ClientSession* found = nullptr;
    for_each_session([&](ClientSession& session, bool) {
        if (session.serial == serial) {
            found = &session;
        }
    });
    return found;
}

ArenaPart Daemon::arena_part_of(const ipc::SubmissionDescriptor& descriptor) const
{
    return descriptor.arena_offset >= options_.arena_copy_bytes ? ArenaPart::zcb : ArenaPart::copy;
}

bool Daemon::device_can_read(ClientSession& session, const ipc::SubmissionDescriptor& descriptor)
{
    if (descriptor.length == 0) {
        return true;
    }
    const ArenaPart part = arena_part_of(descriptor);
    const auto index = static_cast<size_t>(part);
    ClusterSessionState& cluster = session.cluster;
    // The sequencer's CPU copies what its device does not.
    if (cluster.parts[index].registration ||
        (node_->role() != Role::member && !node_->copies_by_device(descriptor.length))) {
        return true;
    }
    if (cluster.pinning_failed[index]) {
        if (node_->role() != Role::member) {
            return true;  // submit_data copies by CPU without a registration
        }
        // Nothing of this client can reach the sequencer: it is cut off, as a client
        // that breaks the protocol is, rather than left to hold its group back.
        session.violated = true;
        RCPG_LOG_ERROR("pid {}: its sends cannot be forwarded without a registered arena; disconnecting", session.pid);
        disconnect_later(session);
        return false;
    }
    start_pinning(session, part);
    cluster.waiting_for_part = true;
    return false;
}

std::optional<transport::LocalSlice> Daemon::arena_slice(const ClientSession& session,
                                                         const ipc::SubmissionDescriptor& descriptor) const
{
    const ArenaPart part = arena_part_of(descriptor);
    const PinnedPart& pinned = session.cluster.parts[static_cast<size_t>(part)];
    if (!pinned.registration || descriptor.length == 0) {
        return std::nullopt;
    }
    const uint64_t base = arena_part_range(session, part).first;
    return transport::LocalSlice{pinned.registration.id(), descriptor.arena_offset - base, descriptor.length};
}

bool Daemon::forward_data(ClientSession& session, const ipc::SubmissionDescriptor& descriptor, uint32_t total_bytes)
{
    const ordering::wire::DataPrefix prefix{static_cast<uint32_t>(session.pid), session.group_id, descriptor.flags, 0,
                                            total_bytes};
    // The prefix lives in daemon memory the client cannot touch, in the slot of this
    // submission: the client cannot reuse the slot before the write completed.
    const uint64_t prefix_offset = (session.sub_head & session.submission_mask) * sizeof(prefix);
    std::memcpy(session.cluster.staging.data() + prefix_offset, &prefix, sizeof(prefix));
    // A zero-length payload reads nothing: the prefix goes alone.
    const std::optional<transport::LocalSlice> payload = arena_slice(session, descriptor);
    const transport::LocalSlice parts[2] = {
        session.cluster.staging.slice(prefix_offset, sizeof(prefix)),
        payload.value_or(transport::LocalSlice{}),
    };
    return node_->forward_data(std::span(parts, payload ? 2 : 1), descriptor.length);
}

void Daemon::note_forwarded(ClientSession& session)
{
    auto& heads = session.cluster.pending_heads;
    const uint64_t batch = node_->releasing_batch();
    if (batch <= node_->completed_batch()) {
        // Sequencer: what the device read for this client is copied already, and no
        // later completion would report it.
        publish_sub_head(session, session.sub_head);
        return;
    }
    if (!heads.empty() && heads.back().first == batch) {
        heads.back().second = session.sub_head;
    } else {
        heads.emplace_back(batch, session.sub_head);
    }
    if (node_->role() == Role::member) {
        // Also when everything taken was dropped: the heads are released by a completion.
        node_->request_commit();
    }
}

bool Daemon::request_change(ClientSession& session, const ordering::GroupName& name, delivery::Reason reason)
{
    if (node_->role() != Role::member) {
        return node_->sequence_change(name, session.process(options_.nodeid), reason);
    }
    // One operation per client at a time: its answer is the confchg coming back.
    if (session.cluster.op_in_flight || !node_->forward_group_op(static_cast<uint32_t>(session.pid), name, reason)) {
        return false;
    }
    session.cluster.op_in_flight = true;
    return true;
}

void Daemon::leave_cluster()
{
    if (!node_->begin_leave()) {
        return;
    }
    const uint64_t deadline = coarse_clock_ms() + kLeaveTimeoutMs;
    while (!node_->left() && !node_->failed() && coarse_clock_ms() < deadline) {
        node_->step(coarse_clock_ms());
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    node_->disconnect_from_sequencer();
    if (node_->left()) {
        RCPG_LOG_INFO("node {} left the cluster", options_.nodeid);
    } else {
        RCPG_LOG_WARN("node {} stopped without seeing its removal from the view", options_.nodeid);
    }
}

void Daemon::status_of_remotes(ipc::StatusResponse& response)
{
    const std::vector<ordering::RemoteStatus> remotes = node_->remote_status();
    response.remote_count = static_cast<uint32_t>(remotes.size());
    for (size_t index = 0; index < std::min<size_t>(remotes.size(), ipc::kStatusMaxNodes); ++index) {
        const ordering::RemoteStatus& remote = remotes[index];
        ipc::StatusRemote& out = response.remotes[index];
        using State = ordering::RemoteStatus::State;
        out.nodeid = remote.nodeid;
        out.state = static_cast<uint8_t>(remote.state == State::absent      ? ipc::RemoteState::absent
                                         : remote.state == State::connected ? ipc::RemoteState::connected
                                         : remote.state == State::member    ? ipc::RemoteState::member
                                                                            : ipc::RemoteState::leaving);
        out.unsent_bytes = remote.unsent_bytes;
        out.unreleased_bytes = remote.unreleased_bytes;
        out.inbound_capacity_bytes = options_.cluster.inbound_ring_bytes;
        out.inbound_used_bytes = remote.inbound_used_bytes;
    }
}

// ---------------------------------------------------------------------------------------
// What the node reports for this node's clients

template <typename Visit>
void Daemon::for_each_session_of(uint32_t pid, Visit&& visit)
{
    for_each_session([&](ClientSession& session, bool open) {
        if (static_cast<uint32_t>(session.pid) == pid) {
            visit(session, open);
        }
    });
}

bool Daemon::on_admitted()
{
    if (base::Status serving = start_ipc(); !serving) {
        RCPG_LOG_ERROR("cannot serve clients: {}", serving.message());
        return false;
    }
    return true;
}

void Daemon::on_own_join(const ordering::GroupName& group, uint32_t pid, uint32_t group_id, uint64_t position,
                         uint64_t seq)
{
    for_each_session_of(pid, [&](ClientSession& session, bool alive) {
        if (!session.pending_join || !(*session.pending_join == group)) {
            return;
        }
        session.pending_join.reset();
        session.cluster.op_in_flight = false;
        session.group = group;
        session.group_id = group_id;
        session.wake_group_id = group_id;
        session.read_group_id = group_id;
        if (alive) {
            send_join_response(session, position, seq);
        }
    });
}

void Daemon::on_own_removal(const ordering::GroupName& group, uint32_t pid)
{
    for_each_session_of(pid, [&](ClientSession& session, bool alive) {
        const bool own_leave = session.pending_leave && session.group && *session.group == group;
        const bool own_procdown = !alive && session.cluster.op_in_flight && !session.pending_join;
        if (!own_leave && !own_procdown) {
            return;
        }
        session.cluster.op_in_flight = false;
        if (own_leave) {
            session.pending_leave = false;
            session.group.reset();
            session.group_id = 0;
            session.leave_end = ring_->unpublished_tail();
            if (alive) {
                respond_status(session, static_cast<int32_t>(ipc::RequestId::leave), CS_OK);
            }
        }
    });
}

void Daemon::on_batch_completed(uint64_t batch)
{
    for_each_session([&](ClientSession& session, bool) {
        auto& heads = session.cluster.pending_heads;
        std::optional<uint64_t> head;
        while (!heads.empty() && heads.front().first <= batch) {
            head = heads.front().second;
            heads.pop_front();
        }
        if (head && session.control != nullptr) {
            publish_sub_head(session, *head);
        }
    });
}

void Daemon::on_applied()
{
    publish_and_wake();
    for (auto& [connection, session] : sessions_) {
        if (session->leave_end && !session->group && session->wake_group_id != 0 &&
            *session->leave_end <= ring_->published_tail()) {
            session->wake_group_id = 0;  // its own leave was the last entry it reads
        }
    }
}

}  // namespace rcpg::daemon
