// The daemon's part in a cluster: the sequencer's admission of nodes, its sequencing of
// their submissions and its replication into their rings; a member's forwarding of its
// clients' submissions and its checking and applying of what the sequencer wrote.
// The protocol and its invariants: ordering/NOTES.md.
#include "daemon/client_session.hpp"
#include "daemon/daemon.hpp"
#include "daemon/log.hpp"
#include "transport/ring_layout.hpp"
#include "transport/verbs_transport.hpp"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

#include <fmt/ranges.h>

namespace rcpg::daemon {

namespace wire = ordering::wire;
using ipc::EntryHeader;
using ipc::EntryKind;

namespace {

constexpr uint64_t kReconnectIntervalMs = 500;
constexpr uint64_t kLeaveTimeoutMs = 2000;
constexpr size_t kCreditLineBytes = 64;  // one credit word per node, each on its own line
constexpr uint32_t kInboundBudgetPerNode = 256;
// A member publishes its consumed position when it moved this fraction of the ring (or
// when the sequencer asks): credits stay off the latency path.
constexpr uint64_t kCreditPublishDivisor = 8;
// Commits to the sequencer carry an immediate: it wakes a sequencer asleep on wait_fd().
constexpr uint32_t kWakeImmediate = 1;

uint64_t coarse_now_ms()
{
    timespec now;
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return static_cast<uint64_t>(now.tv_sec) * 1000u + static_cast<uint64_t>(now.tv_nsec) / 1'000'000u;
}

uint64_t load_word(const void* address)
{
    return std::atomic_ref<uint64_t>(*static_cast<uint64_t*>(const_cast<void*>(address))).load(std::memory_order_acquire);
}

void store_word(void* address, uint64_t value)
{
    std::atomic_ref<uint64_t>(*static_cast<uint64_t*>(address)).store(value, std::memory_order_release);
}

}  // namespace

bool Daemon::start_cluster(std::string& error)
{
    const ClusterOptions& cluster = options_.cluster;
    cluster_ = std::make_unique<ClusterState>();
    ClusterState& state = *cluster_;
    state.sequencer = cluster.sequencer_order.empty() ? cluster.nodes.front().nodeid : cluster.sequencer_order.front();
    role_ = state.sequencer == options_.nodeid ? Role::sequencer : Role::member;
    ring_nodeid_ = state.sequencer;

    transport::TransportConfig config;
    config.self = options_.nodeid;
    for (const ClusterNode& node : cluster.nodes) {
        config.nodes.push_back({node.nodeid, node.address, node.port});
    }
    config.cluster_key = cluster.cluster_key;
    config.device_name = cluster.device;
    config.connect_timeout_ms = cluster.connect_timeout_ms;
    auto created = transport::VerbsTransport::create(config);
    if (!created) {
        error = "RDMA transport: " + created.status().message();
        return false;
    }
    state.transport = std::move(*created);
    transport::Transport& transport = *state.transport;
    if (const int wait_fd = transport.wait_fd(); wait_fd >= 0) {
        // Only a wake-up: the loop polls the transport on every turn.
        loop_.add(wait_fd, POLLIN, [](uint32_t) {});
    }

    const auto access = role_ == Role::member ? transport::RegionAccess::remote_write : transport::RegionAccess::local;
    auto ring_region = transport.register_region(ring_->mapping_address(), ring_->mapping_bytes(), access);
    if (!ring_region) {
        error = "cannot register the delivery ring: " + ring_region.status().message();
        return false;
    }
    state.ring_region = Registration(transport, *ring_region);

    if (role_ == Role::sequencer) {
        state.credit_memory = AnonymousMemory(ipc::align_up(cluster.nodes.size() * kCreditLineBytes, ipc::kPageBytes));
        auto credit_region = transport.register_region(state.credit_memory.bytes(), state.credit_memory.size(),
                                                       transport::RegionAccess::remote_write);
        if (!state.credit_memory || !credit_region) {
            error = "cannot register the credit words";
            return false;
        }
        state.credit_region = Registration(transport, *credit_region);
        const uint64_t inbound_bytes = transport::ring::region_bytes(cluster.inbound_ring_bytes);
        for (size_t index = 0; index < cluster.nodes.size(); ++index) {
            const uint32_t nodeid = cluster.nodes[index].nodeid;
            if (nodeid == options_.nodeid) {
                continue;
            }
            RemoteNode& node = state.remotes[nodeid];
            node.nodeid = nodeid;
            node.credit_word = reinterpret_cast<uint64_t*>(state.credit_memory.bytes() + index * kCreditLineBytes);
            node.inbound_memory = AnonymousMemory(ipc::align_up(inbound_bytes, ipc::kPageBytes));
            if (!node.inbound_memory) {
                error = "cannot allocate the inbound rings";
                return false;
            }
            auto inbound = transport.register_region(node.inbound_memory.bytes(), node.inbound_memory.size(),
                                                     transport::RegionAccess::remote_write);
            if (!inbound) {
                error = "cannot register an inbound ring: " + inbound.status().message();
                return false;
            }
            node.inbound_region = Registration(transport, *inbound);
            transport::Status exposed = transport.expose(nodeid, wire::kTagInboundRing, *inbound, 0, inbound_bytes);
            if (exposed) {
                exposed = transport.expose(nodeid, wire::kTagDeliveryCredit, *credit_region, index * kCreditLineBytes,
                                           sizeof(uint64_t));
            }
            if (!exposed) {
                error = exposed.message();
                return false;
            }
        }
        if (transport::Status listening = transport.listen(); !listening) {
            error = "cannot listen for the other nodes: " + listening.message();
            return false;
        }
        RCPG_LOG_INFO("node {} is the sequencer of {} configured nodes", options_.nodeid, cluster.nodes.size());
        return true;
    }

    // Member: the inbound credit word, then the snapshot region.
    state.member_memory = AnonymousMemory(ipc::kPageBytes + wire::kSnapshotRegionBytes);
    auto member_region = transport.register_region(state.member_memory.bytes(), state.member_memory.size(),
                                                   transport::RegionAccess::remote_write);
    if (!state.member_memory || !member_region) {
        error = "cannot register the member's regions";
        return false;
    }
    state.member_region = Registration(transport, *member_region);
    transport::Status exposed =
        transport.expose(state.sequencer, wire::kTagDeliveryRing, *ring_region, 0, ring_->mapping_bytes());
    if (exposed) {
        exposed = transport.expose(state.sequencer, wire::kTagSnapshot, *member_region, ipc::kPageBytes,
                                   wire::kSnapshotRegionBytes);
    }
    if (exposed) {
        exposed = transport.expose(state.sequencer, wire::kTagInboundCredit, *member_region, 0, sizeof(uint64_t));
    }
    if (!exposed) {
        error = exposed.message();
        return false;
    }
    RCPG_LOG_INFO("node {} joins the cluster through sequencer {}; clients are served once it is admitted",
                  options_.nodeid, state.sequencer);
    return true;
}

Daemon::ClusterSleep Daemon::prepare_cluster_sleep()
{
    ClusterState& state = *cluster_;
    transport::Transport& transport = *state.transport;
    if (transport.wait_fd() < 0) {
        return ClusterSleep::poll_soon;  // nothing would wake us: look every millisecond
    }
    // Connection set-up has deadlines only poll() checks; replication held back by a
    // full send queue waits for completions we would sleep through otherwise.
    if ((role_ == Role::member && (!state.connected || !state.admitted || state.forwarded_uncommitted)) ||
        state.replication_blocked) {
        return ClusterSleep::poll_soon;
    }
    // The sequencer waits for credit this node could not give yet: its clients free ring
    // space without waking the daemon, so look again soon instead of sleeping until the
    // idle wake-up while the whole cluster stands still.
    if (role_ == Role::member && state.admitted &&
        load_word(&ring_->header().credit_request) > state.published_credit) {
        return ClusterSleep::poll_soon;
    }
    if (!transport.arm_wait()) {
        return ClusterSleep::busy;
    }
    // What landed before the arming raised no wake-up: look once more.
    return cluster_step() ? ClusterSleep::busy : ClusterSleep::sleep;
}

bool Daemon::cluster_step()
{
    ClusterState& state = *cluster_;
    state.clock_ms = coarse_now_ms();
    state.events.clear();
    state.transport->poll(state.clock_ms, state.events);
    bool worked = !state.events.empty();
    for (const transport::Event& event : state.events) {
        on_transport_event(event);
    }
    if (role_ == Role::member) {
        if (!state.connected && !state.connecting && !state.leaving && state.clock_ms >= state.next_connect_ms) {
            if (state.transport->connect(state.sequencer)) {
                state.connecting = true;
            } else {
                state.next_connect_ms = state.clock_ms + kReconnectIntervalMs;
            }
        }
        worked |= apply_delivered();
        if (state.admitted) {
            publish_member_credit();
        }
        return worked;
    }
    // Sequencer: retry what a full send queue held back; ask for credits when blocked.
    replicate();
    for (auto& [nodeid, node] : state.remotes) {
        if (node.stream && ring_blocked_) {
            node.stream->request_credit(node.stream->sent());
        }
        if (node.inbound) {
            (void)node.inbound->publish_credits();
        }
    }
    return worked;
}

void Daemon::on_transport_event(const transport::Event& event)
{
    ClusterState& state = *cluster_;
    transport::Transport& transport = *state.transport;
    switch (event.kind) {
    case transport::EventKind::connected:
        if (role_ == Role::sequencer) {
            auto found = state.remotes.find(event.peer);
            if (found == state.remotes.end()) {
                transport.disconnect(event.peer);
                return;
            }
            RemoteNode& node = found->second;
            // The control block is zero here (fresh memory, or cleared when the previous
            // connection went): the node's hello may already have landed — it writes as
            // soon as its side is connected — so it must not be cleared now.
            auto credit = transport.remote_region(event.peer, wire::kTagInboundCredit);
            if (!credit) {
                RCPG_LOG_WARN("node {} connected without its credit word; refused", event.peer);
                transport.disconnect(event.peer);
                return;
            }
            auto reader = transport::RingReader::create(
                transport, event.peer,
                {node.inbound_memory.bytes(), transport::ring::region_bytes(options_.cluster.inbound_ring_bytes)},
                credit->at(0));
            if (!reader) {
                RCPG_LOG_ERROR("node {}: {}", event.peer, reader.status().message());
                transport.disconnect(event.peer);
                return;
            }
            node.inbound.emplace(std::move(*reader));
            node.state = RemoteNode::State::connected;
            RCPG_LOG_INFO("node {} connected", event.peer);
        } else if (event.peer == state.sequencer) {
            state.connecting = false;
            auto* credit_word = reinterpret_cast<uint64_t*>(state.member_memory.bytes());
            store_word(credit_word, 0);
            auto inbound = transport.remote_region(state.sequencer, wire::kTagInboundRing);
            state.delivery_credit = transport.remote_region(state.sequencer, wire::kTagDeliveryCredit);
            if (!inbound || !state.delivery_credit) {
                RCPG_LOG_ERROR("the sequencer did not expose its rings to node {}", options_.nodeid);
                failed_ = true;
                return;
            }
            auto writer = transport::RingWriter::create(transport, state.sequencer, *inbound, credit_word);
            if (!writer) {
                RCPG_LOG_ERROR("inbound ring: {}", writer.status().message());
                failed_ = true;
                return;
            }
            state.writer.emplace(std::move(*writer));
            state.writer->wake_reader_for_credits(kWakeImmediate);
            state.connected = true;
            const wire::Hello hello{wire::kClusterProtocolVersion, options_.nodeid, ring_->data_bytes()};
            if (!state.writer->append_copy(static_cast<uint32_t>(wire::InboundType::hello),
                                           std::as_bytes(std::span(&hello, 1))) ||
                !state.writer->commit(false, 0, kWakeImmediate)) {
                RCPG_LOG_ERROR("cannot send the hello to the sequencer");
                failed_ = true;
                return;
            }
            RCPG_LOG_INFO("connected to sequencer {}; asking to be admitted", state.sequencer);
        }
        return;
    case transport::EventKind::disconnected:
    case transport::EventKind::refused:
        if (event.reason != transport::DisconnectReason::local_close) {
            ++counters_.rdma_errors;
        }
        if (role_ == Role::sequencer) {
            auto found = state.remotes.find(event.peer);
            if (found == state.remotes.end() || found->second.state == RemoteNode::State::absent) {
                return;
            }
            RemoteNode& node = found->second;
            RCPG_LOG_INFO("node {} disconnected ({}: {})", event.peer, transport::to_string(event.reason),
                          event.detail.message());
            node.inbound.reset();
            // The next incarnation of the node's writer starts at position 0. No write of
            // the old connection can land any more (its queue pair is gone), and a new one
            // cannot be set up before this event has been handled.
            std::memset(node.inbound_memory.bytes() + options_.cluster.inbound_ring_bytes, 0,
                        transport::ring::kControlBytes);
            node.pending.reset();
            node.stream.reset();
            node.snapshot_region.reset();
            if (node.state == RemoteNode::State::member || node.state == RemoteNode::State::leaving) {
                state.pending_removals.push_back(node.nodeid);
            }
            node.state = RemoteNode::State::absent;
            return;
        }
        if (event.peer != state.sequencer) {
            return;
        }
        state.connecting = false;
        state.connected = false;
        state.writer.reset();
        if (state.leaving) {
            state.left = true;
        } else if (state.admitted) {
            RCPG_LOG_ERROR("lost the sequencer (node {}): {} {}; this node cannot go on", state.sequencer,
                           transport::to_string(event.reason), event.detail.message());
            failed_ = true;
        } else {
            RCPG_LOG_DEBUG("sequencer {} not reachable yet ({}); retrying", state.sequencer,
                           transport::to_string(event.reason));
            state.next_connect_ms = state.clock_ms + kReconnectIntervalMs;
        }
        return;
    case transport::EventKind::write_completed:
        if (role_ == Role::member && event.peer == state.sequencer) {
            state.completed_batch = std::max(state.completed_batch, event.wr_id);
            auto release = [&](ClientSession& session) {
                auto& heads = session.cluster.pending_heads;
                std::optional<uint64_t> head;
                while (!heads.empty() && heads.front().first <= state.completed_batch) {
                    head = heads.front().second;
                    heads.pop_front();
                }
                if (head && session.control != nullptr) {
                    publish_sub_head(session, *head);
                }
            };
            for (auto& [connection, session] : sessions_) {
                release(*session);
            }
            for (auto& session : closing_) {
                release(*session);
            }
        }
        return;
    case transport::EventKind::read_completed:
    case transport::EventKind::imm_received:
        return;  // a wake-up only: the tail word says what landed
    }
}

// ---------------------------------------------------------------------------------------
// Member: forwarding to the sequencer

bool Daemon::forward_data(ClientSession& session, const ipc::SubmissionDescriptor& descriptor, uint32_t total_bytes)
{
    ClusterState& state = *cluster_;
    if (!state.writer) {
        return false;
    }
    const wire::DataPrefix prefix{static_cast<uint32_t>(session.pid), session.group_id, descriptor.flags, 0,
                                  total_bytes};
    // The prefix lives in daemon memory the client cannot touch, in the slot of this
    // submission: the client cannot reuse the slot before the write completed.
    const uint64_t prefix_offset = (session.sub_head & session.submission_mask) * sizeof(prefix);
    std::memcpy(session.cluster.staging.bytes() + prefix_offset, &prefix, sizeof(prefix));
    const transport::LocalSlice parts[2] = {
        {session.cluster.staging_region.id(), prefix_offset, sizeof(prefix)},
        {session.cluster.arena.id(), descriptor.arena_offset, descriptor.length},
    };
    transport::Status status = state.writer->append(static_cast<uint32_t>(wire::InboundType::data), parts);
    if (!status) {
        if (status.code() != transport::Errc::try_again) {
            ++counters_.rdma_errors;
            RCPG_LOG_WARN("forwarding to the sequencer: {}", status.message());
        }
        return false;
    }
    ++counters_.messages_forwarded;
    counters_.bytes_forwarded += descriptor.length;
    state.forwarded_uncommitted = true;
    return true;
}

void Daemon::note_forwarded(ClientSession& session)
{
    auto& heads = session.cluster.pending_heads;
    const uint64_t batch = cluster_->next_batch;
    if (!heads.empty() && heads.back().first == batch) {
        heads.back().second = session.sub_head;
    } else {
        heads.emplace_back(batch, session.sub_head);
    }
    cluster_->forwarded_uncommitted = true;
}

bool Daemon::commit_forwarded()
{
    ClusterState& state = *cluster_;
    if (!state.forwarded_uncommitted || !state.writer) {
        return true;
    }
    // Signalled: its completion says the device has read every arena byte of the batch.
    if (transport::Status status = state.writer->commit(true, state.next_batch, kWakeImmediate); !status) {
        return false;  // send queue full: the next loop retries
    }
    ++state.next_batch;
    state.forwarded_uncommitted = false;
    return true;
}

bool Daemon::forward_change(ClientSession& session, const ordering::GroupName& name, cpg_reason_t reason)
{
    ClusterState& state = *cluster_;
    if (!state.writer || session.cluster.op_in_flight) {
        return false;
    }
    const wire::InboundType type = reason == CPG_REASON_JOIN    ? wire::InboundType::join
                                   : reason == CPG_REASON_LEAVE ? wire::InboundType::leave
                                                                : wire::InboundType::procdown;
    const std::vector<std::byte> record = wire::encode_group_op(static_cast<uint32_t>(session.pid), name);
    transport::Status status;
    if (record.size() <= state.writer->max_inline_payload_bytes()) {
        status = state.writer->append_copy(static_cast<uint32_t>(type), record);
    } else {
        // One operation per client is in flight at a time, so one slot is enough.
        const uint64_t offset = size_t{options_.submission_capacity} * sizeof(wire::DataPrefix);
        std::memcpy(session.cluster.staging.bytes() + offset, record.data(), record.size());
        const transport::LocalSlice slice{session.cluster.staging_region.id(), offset,
                                          static_cast<uint32_t>(record.size())};
        status = state.writer->append(static_cast<uint32_t>(type), {&slice, 1});
    }
    if (!status) {
        return false;
    }
    session.cluster.op_in_flight = true;
    state.forwarded_uncommitted = true;
    commit_forwarded();
    return true;
}

// ---------------------------------------------------------------------------------------
// Member: what the sequencer wrote

bool Daemon::apply_delivered()
{
    ClusterState& state = *cluster_;
    if (!state.admitted) {
        const std::byte* region = state.member_memory.bytes() + ipc::kPageBytes;
        const uint64_t ready = load_word(region);
        if (ready == 0) {
            return false;
        }
        auto snapshot = ready <= wire::kSnapshotRegionBytes - wire::kSnapshotReadyBytes
                            ? wire::decode_snapshot({region + wire::kSnapshotReadyBytes, ready})
                            : std::nullopt;
        if (!snapshot || !groups_.restore(snapshot->groups) || snapshot->sequencer != state.sequencer) {
            RCPG_LOG_ERROR("the sequencer's admission snapshot is malformed; this node cannot join");
            failed_ = true;
            return false;
        }
        ring_->start_at(snapshot->start_position, snapshot->next_seq);
        state.processed = state.published_credit = snapshot->start_position;
        view_ = snapshot->members;
        ring_seq_ = snapshot->ring_seq;
        ring_nodeid_ = snapshot->sequencer;
        reclaim_limit_ = snapshot->start_position;
        state.admitted = true;
        std::string error;
        if (!start_ipc(error)) {
            RCPG_LOG_ERROR("cannot serve clients: {}", error);
            failed_ = true;
            return false;
        }
        RCPG_LOG_INFO("node {} admitted by sequencer {} at ring position {}", options_.nodeid, state.sequencer,
                      snapshot->start_position);
    }
    const uint64_t ring_bytes = ring_->data_bytes();
    const uint64_t committed = load_word(&ring_->header().cluster_tail);
    if (committed <= state.processed) {
        return false;
    }
    if (committed - state.processed > ring_bytes || committed % ipc::kEntryAlignBytes != 0) {
        ++counters_.protocol_violations;
        RCPG_LOG_ERROR("the sequencer committed position {} beyond what it may write (have {}); leaving", committed,
                       state.processed);
        failed_ = true;
        return false;
    }
    while (state.processed < committed) {
        const uint64_t position = state.processed;
        const uint64_t offset = position & (ring_bytes - 1);
        const std::byte* at = ring_->data() + offset;
        auto entry = wire::check_entry({at, ring_bytes - offset}, position, ring_bytes, committed - position);
        const bool in_order = entry && (entry->kind == EntryKind::pad || entry->seq == ring_->next_seq());
        if (!in_order) {
            ++counters_.protocol_violations;
            RCPG_LOG_ERROR("the sequencer wrote a malformed or out-of-order entry at position {}; leaving", position);
            failed_ = true;
            return false;
        }
        state.processed = position + entry->entry_bytes;
        if (entry->kind == EntryKind::pad) {
            ring_->adopt(ring_->last_position(), state.processed, ring_->next_seq());
            continue;
        }
        ring_->adopt(position, state.processed, entry->seq + 1);
        const std::span<const std::byte> payload(at + entry->payload_offset, entry->payload_bytes);
        switch (entry->kind) {
        case EntryKind::data:
            ++counters_.messages_delivered;
            counters_.bytes_delivered += entry->payload_bytes;
            note_batch_entry(entry->group_id);
            break;
        case EntryKind::confchg:
            apply_confchg(*entry, position, payload);
            break;
        case EntryKind::totem_confchg: {
            auto totem = wire::decode_totem(payload);
            if (!totem) {
                ++counters_.protocol_violations;
                RCPG_LOG_ERROR("malformed totem confchg at position {}; leaving", position);
                failed_ = true;
                return false;
            }
            view_ = totem->members;
            ring_seq_ = totem->ring_seq;
            ring_nodeid_ = totem->ring_nodeid;
            if (std::find(view_.begin(), view_.end(), options_.nodeid) == view_.end() && state.leaving) {
                state.left = true;
            }
            break;
        }
        case EntryKind::pad:
            break;
        }
        if (failed_) {
            return false;
        }
    }
    publish_and_wake();
    for (auto& [connection, session] : sessions_) {
        if (session->leave_end && !session->group && session->wake_group_id != 0 &&
            *session->leave_end <= ring_->published_tail()) {
            session->wake_group_id = 0;  // its own leave was the last entry it reads
        }
    }
    return true;
}

void Daemon::apply_confchg(const ipc::EntryHeader& entry, uint64_t position, std::span<const std::byte> payload)
{
    auto confchg = wire::decode_confchg(payload);
    const bool join = confchg && confchg->joined.size() == 1 && confchg->left.empty();
    const bool removal = confchg && confchg->joined.empty() && !confchg->left.empty();
    if (!join && !removal) {
        ++counters_.protocol_violations;
        RCPG_LOG_ERROR("malformed confchg at position {}; leaving", position);
        failed_ = true;
        return;
    }
    const ordering::GroupName& name = confchg->group;
    auto sessions_of = [&](uint32_t pid, auto&& visit) {
        for (auto& [connection, session] : sessions_) {
            if (static_cast<uint32_t>(session->pid) == pid) {
                visit(*session, true);
            }
        }
        for (auto& session : closing_) {
            if (static_cast<uint32_t>(session->pid) == pid) {
                visit(*session, false);
            }
        }
    };
    if (join) {
        const ordering::ProcessId process{confchg->joined[0].nodeid, confchg->joined[0].pid};
        if (groups_.is_member(name, process) || groups_.join(name, process).group_id != entry.group_id) {
            ++counters_.protocol_violations;
            RCPG_LOG_ERROR("the sequencer's join at position {} contradicts this node's group table; leaving",
                           position);
            failed_ = true;
            return;
        }
        if (process.nodeid == options_.nodeid) {
            sessions_of(process.pid, [&](ClientSession& session, bool alive) {
                if (!session.pending_join || !(*session.pending_join == name)) {
                    return;
                }
                session.pending_join.reset();
                session.cluster.op_in_flight = false;
                session.group = name;
                session.group_id = entry.group_id;
                session.wake_group_id = entry.group_id;
                if (alive) {
                    send_join_response(session, position, entry.seq);
                }
            });
        }
    } else {
        std::vector<ordering::ProcessId> processes;
        for (const cpg_address& address : confchg->left) {
            processes.push_back({address.nodeid, address.pid});
        }
        if (!groups_.remove(name, processes, static_cast<cpg_reason_t>(confchg->left[0].reason))) {
            ++counters_.protocol_violations;
            RCPG_LOG_ERROR("the sequencer removed a process at position {} that is no member; leaving", position);
            failed_ = true;
            return;
        }
        for (const ordering::ProcessId& process : processes) {
            if (process.nodeid != options_.nodeid) {
                continue;
            }
            sessions_of(process.pid, [&](ClientSession& session, bool alive) {
                const bool own_leave = session.pending_leave && session.group && *session.group == name;
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
    }
    note_batch_entry(entry.group_id);
}

void Daemon::publish_member_credit()
{
    ClusterState& state = *cluster_;
    if (!state.connected || !state.delivery_credit) {
        return;
    }
    const uint64_t limit = std::min(reclaim_limit(), state.processed);
    if (limit <= state.published_credit) {
        return;
    }
    const uint64_t requested = load_word(&ring_->header().credit_request);
    if (limit - state.published_credit < ring_->data_bytes() / kCreditPublishDivisor &&
        requested <= state.published_credit) {
        return;
    }
    const uint64_t word = limit;
    transport::WriteRequest write;
    write.inline_bytes = std::as_bytes(std::span<const uint64_t>(&word, 1));
    write.destination = state.delivery_credit->at(0);
    if (state.transport->post_write(state.sequencer, write)) {
        state.published_credit = limit;
    }
}

void Daemon::leave_cluster()
{
    ClusterState& state = *cluster_;
    if (!state.connected || !state.admitted || !state.writer) {
        return;
    }
    state.leaving = true;
    if (!state.writer->append_copy(static_cast<uint32_t>(wire::InboundType::node_leave), {}) ||
        !state.writer->commit(false, 0, kWakeImmediate)) {
        return;
    }
    RCPG_LOG_INFO("node {} leaving the cluster", options_.nodeid);
    const uint64_t deadline = coarse_now_ms() + kLeaveTimeoutMs;
    while (!state.left && !failed_ && coarse_now_ms() < deadline) {
        cluster_step();
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    state.transport->disconnect(state.sequencer);
    if (state.left) {
        RCPG_LOG_INFO("node {} left the cluster", options_.nodeid);
    } else {
        RCPG_LOG_WARN("node {} stopped without seeing its removal from the view", options_.nodeid);
    }
}

// ---------------------------------------------------------------------------------------
// Sequencer

uint64_t Daemon::cluster_reclaim_limit(uint64_t local_limit)
{
    for (auto& [nodeid, node] : cluster_->remotes) {
        if (node.stream) {
            local_limit = std::min(local_limit, node.stream->credit());
        }
    }
    return local_limit;
}

void Daemon::status_of_remotes(ipc::StatusResponse& response)
{
    const uint64_t tail = ring_->unpublished_tail();
    response.remote_count = static_cast<uint32_t>(cluster_->remotes.size());
    size_t index = 0;
    for (auto& [nodeid, node] : cluster_->remotes) {
        if (index == ipc::kStatusMaxNodes) {
            break;
        }
        ipc::StatusRemote& out = response.remotes[index++];
        out.nodeid = nodeid;
        out.state = static_cast<uint8_t>(node.state == RemoteNode::State::absent      ? ipc::RemoteState::absent
                                         : node.state == RemoteNode::State::connected ? ipc::RemoteState::connected
                                         : node.state == RemoteNode::State::member    ? ipc::RemoteState::member
                                                                                      : ipc::RemoteState::leaving);
        if (node.stream) {
            out.unsent_bytes = tail - node.stream->sent();
            out.unreleased_bytes = tail - node.stream->credit();
        }
        out.inbound_capacity_bytes = options_.cluster.inbound_ring_bytes;
        if (node.inbound) {
            out.inbound_used_bytes = node.inbound->committed_tail() - node.inbound->released();
        }
    }
}

void Daemon::replicate()
{
    const uint64_t tail = ring_->unpublished_tail();
    cluster_->replication_blocked = false;
    for (auto& [nodeid, node] : cluster_->remotes) {
        if (!node.stream || node.stream->sent() == tail) {
            continue;
        }
        transport::Status status = node.stream->replicate(tail);
        if (status.code() == transport::Errc::try_again) {
            cluster_->replication_blocked = true;
        } else if (!status) {
            ++counters_.rdma_errors;
            RCPG_LOG_WARN("replicating to node {}: {}", nodeid, status.message());
        }
    }
}

bool Daemon::sequence_totem()
{
    const wire::TotemConf totem{options_.nodeid, ring_seq_, view_};
    const std::vector<std::byte> payload = wire::encode_totem(totem);
    EntryHeader* entry =
        ring_->append(EntryKind::totem_confchg, 0, static_cast<uint32_t>(payload.size()), reclaim_limit());
    if (entry == nullptr) {
        ++counters_.ring_full_events;
        return false;
    }
    entry->nodeid = options_.nodeid;
    std::memcpy(ring_->payload(entry), payload.data(), payload.size());
    return true;
}

bool Daemon::drain_inbound()
{
    ClusterState& state = *cluster_;
    bool worked = false;
    // Nodes that left or failed: NODEDOWN for their processes, then the new view.
    while (!state.pending_removals.empty()) {
        const uint32_t nodeid = state.pending_removals.front();
        bool done = true;
        for (auto& [name, processes] : groups_.processes_of_node(nodeid)) {
            if (!sequence_removal(name, processes, CPG_REASON_NODEDOWN)) {
                done = false;
                break;
            }
        }
        if (!done) {
            ring_blocked_ = true;
            break;
        }
        std::vector<uint32_t> view = view_;
        std::erase(view, nodeid);
        if (view != view_) {
            std::swap(view, view_);
            ++ring_seq_;
            if (!sequence_totem()) {
                std::swap(view, view_);
                --ring_seq_;
                ring_blocked_ = true;
                break;
            }
            RCPG_LOG_INFO("node {} left the view; members now {}", nodeid, fmt::join(view_, " "));
        }
        state.pending_removals.pop_front();
        worked = true;
        // A cleanly leaving node gets its own removal, then its stream ends.
        if (auto found = state.remotes.find(nodeid); found != state.remotes.end() && found->second.stream) {
            replicate();
            found->second.stream.reset();
        }
    }
    for (auto& [nodeid, node] : state.remotes) {
        if (!node.inbound) {
            continue;
        }
        for (uint32_t budget = kInboundBudgetPerNode; budget > 0; --budget) {
            transport::RingReader::Record record;
            if (node.pending) {
                record = *node.pending;
            } else {
                auto next = node.inbound->next();
                if (!next) {
                    RCPG_LOG_ERROR("node {} wrote a malformed inbound record: {}", nodeid, next.status().message());
                    ++counters_.protocol_violations;
                    state.transport->disconnect(nodeid);
                    break;
                }
                if (!*next) {
                    break;
                }
                record = **next;
            }
            auto decoded = wire::decode_inbound(record.type, record.payload);
            if (!decoded) {
                RCPG_LOG_ERROR("node {} sent a malformed record of type {}; disconnecting", nodeid, record.type);
                ++counters_.protocol_violations;
                state.transport->disconnect(nodeid);
                break;
            }
            if (!sequence_inbound(node, *decoded)) {
                node.pending = record;
                ring_blocked_ = true;
                break;
            }
            node.pending.reset();
            if (node.inbound) {
                node.inbound->release(record);
            }
            worked = true;
            if (!node.inbound) {
                break;
            }
        }
    }
    return worked;
}

bool Daemon::sequence_inbound(RemoteNode& node, const wire::InboundRecord& record)
{
    const bool member = node.state == RemoteNode::State::member;
    switch (record.type) {
    case wire::InboundType::hello:
        return admit(node, std::get<wire::Hello>(record.body));
    case wire::InboundType::data: {
        const auto& data = std::get<wire::Data>(record.body);
        const ordering::ProcessId process{node.nodeid, data.prefix.pid};
        const ordering::GroupName* name = groups_.name_of(data.prefix.group_id);
        if (!member || name == nullptr || !groups_.is_member(*name, process) ||
            (data.prefix.flags & ~ipc::kSubmissionFlags) != 0) {
            return true;  // sent while not a member: dropped, as corosync does
        }
        return sequence_data(data.prefix.group_id, process, data.prefix.flags, data.prefix.total_bytes, data.payload);
    }
    case wire::InboundType::join:
    case wire::InboundType::leave:
    case wire::InboundType::procdown: {
        const auto& op = std::get<wire::GroupOp>(record.body);
        const ordering::ProcessId process{node.nodeid, op.pid};
        if (!member) {
            return true;
        }
        if (record.type == wire::InboundType::join) {
            if (groups_.check_join(op.group, process) == ordering::JoinCheck::already_member) {
                return true;
            }
            return sequence_change(op.group, process, CPG_REASON_JOIN);
        }
        return sequence_removal(op.group, {process},
                                record.type == wire::InboundType::leave ? CPG_REASON_LEAVE : CPG_REASON_PROCDOWN);
    }
    case wire::InboundType::node_leave:
        if (member) {
            node.state = RemoteNode::State::leaving;
            cluster_->pending_removals.push_back(node.nodeid);
        }
        return true;
    }
    return true;
}

bool Daemon::admit(RemoteNode& node, const wire::Hello& hello)
{
    ClusterState& state = *cluster_;
    transport::Transport& transport = *state.transport;
    if (node.state != RemoteNode::State::connected || hello.nodeid != node.nodeid ||
        hello.protocol_version != wire::kClusterProtocolVersion || hello.ring_bytes != ring_->data_bytes()) {
        RCPG_LOG_ERROR("node {} cannot be admitted: protocol {} (need {}), ring {} bytes (need {})", node.nodeid,
                       hello.protocol_version, wire::kClusterProtocolVersion, hello.ring_bytes, ring_->data_bytes());
        transport.disconnect(node.nodeid);
        return true;
    }
    const uint64_t totem_bytes = sizeof(ipc::TotemPayload) + (view_.size() + 1) * sizeof(uint32_t);
    if (!ring_->has_room(0, static_cast<uint32_t>(totem_bytes), reclaim_limit())) {
        return false;
    }
    wire::Snapshot snapshot;
    snapshot.start_position = ring_->unpublished_tail();
    snapshot.next_seq = ring_->next_seq();
    snapshot.ring_seq = ring_seq_;
    snapshot.sequencer = options_.nodeid;
    snapshot.members = view_;
    snapshot.groups = groups_.snapshot();
    const std::vector<std::byte> bytes = wire::encode_snapshot(snapshot);
    auto remote_snapshot = transport.remote_region(node.nodeid, wire::kTagSnapshot);
    auto remote_ring = transport.remote_region(node.nodeid, wire::kTagDeliveryRing);
    if (!remote_snapshot || !remote_ring ||
        bytes.size() + wire::kSnapshotReadyBytes > std::min(remote_snapshot->bytes, wire::kSnapshotRegionBytes)) {
        RCPG_LOG_ERROR("node {} cannot be admitted: its snapshot region is missing or too small", node.nodeid);
        transport.disconnect(node.nodeid);
        return true;
    }
    node.snapshot_memory = AnonymousMemory(ipc::align_up(wire::kSnapshotReadyBytes + bytes.size(), ipc::kPageBytes));
    auto region = node.snapshot_memory
                      ? transport.register_region(node.snapshot_memory.bytes(), node.snapshot_memory.size(),
                                                  transport::RegionAccess::local)
                      : transport::Result<transport::RegionId>(transport::Status{transport::Errc::device_error,
                                                                                 transport::Layer::memory, "mmap"});
    if (!region) {
        RCPG_LOG_ERROR("node {} cannot be admitted: {}", node.nodeid, region.status().message());
        transport.disconnect(node.nodeid);
        return true;
    }
    node.snapshot_region = Registration(transport, *region);
    const uint64_t ready = bytes.size();
    std::memcpy(node.snapshot_memory.bytes(), &ready, sizeof(ready));
    std::memcpy(node.snapshot_memory.bytes() + wire::kSnapshotReadyBytes, bytes.data(), bytes.size());
    const transport::LocalSlice body{*region, wire::kSnapshotReadyBytes, static_cast<uint32_t>(bytes.size())};
    const transport::LocalSlice ready_word{*region, 0, sizeof(ready)};
    transport::WriteRequest writes[2];
    writes[0].sources = {&body, 1};
    writes[0].destination = remote_snapshot->at(wire::kSnapshotReadyBytes);
    writes[1].sources = {&ready_word, 1};
    writes[1].destination = remote_snapshot->at(0);
    store_word(node.credit_word, snapshot.start_position);
    auto stream = ordering::DeliveryStream::create(transport, node.nodeid, *remote_ring, state.ring_region.id(),
                                                   ring_->data_bytes(), node.credit_word, snapshot.start_position);
    transport::Status posted = stream ? transport.post_writes(node.nodeid, writes) : stream.status();
    if (!posted) {
        RCPG_LOG_ERROR("node {} cannot be admitted: {}", node.nodeid, posted.message());
        transport.disconnect(node.nodeid);
        return true;
    }
    node.stream.emplace(std::move(*stream));
    node.state = RemoteNode::State::member;
    view_.insert(std::upper_bound(view_.begin(), view_.end(), node.nodeid), node.nodeid);
    ++ring_seq_;
    if (!sequence_totem()) {
        // has_room said yes and nothing was appended since: cannot happen.
        RCPG_LOG_ERROR("no room for the totem confchg that admits node {}", node.nodeid);
    }
    RCPG_LOG_INFO("node {} admitted at ring position {}; members now {}", node.nodeid, snapshot.start_position,
                  fmt::join(view_, " "));
    return true;
}

}  // namespace rcpg::daemon
