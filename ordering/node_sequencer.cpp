#include "ordering/node_internal.hpp"

#include "base/assert.hpp"

#include "transport/ring_layout.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>

#include <fmt/ranges.h>

namespace rcpg::ordering {

using delivery::ConfchgPayload;
using delivery::EntryHeader;
using delivery::EntryKind;
using namespace node_detail;

// ---------------------------------------------------------------------------------------
// Sequencer: the other nodes

std::vector<RemoteStatus> Node::remote_status()
{
    const uint64_t tail = ring_.unpublished_tail();
    std::vector<RemoteStatus> out;
    for (auto& [nodeid, node] : remotes_) {
        RemoteStatus& status = out.emplace_back();
        status.nodeid = nodeid;
        status.state = node.state;
        if (node.stream) {
            status.unsent_bytes = tail - node.stream->sent();
            status.unreleased_bytes = tail - node.stream->credit();
        }
        if (node.inbound) {
            status.inbound_used_bytes = node.inbound->committed_tail() - node.inbound->released();
        }
    }
    return out;
}

void Node::replicate()
{
    replication_blocked_ = false;
    flush_device_copies();
    const uint64_t tail = complete_tail();
    for (auto& [nodeid, node] : remotes_) {
        if (!node.stream) {
            continue;
        }
        // Below it while copies before an admission are in flight. A call may stop after
        // some skips (DeliveryStream::replicate): each goes further.
        while (tail > node.stream->sent()) {
            transport::Status status = node.stream->replicate(tail, ring_.skip_insides());
            if (status.code() == transport::Errc::try_again) {
                replication_blocked_ = true;
                break;
            }
            if (!status) {
                ++counters_.rdma_errors;
                log(LogLevel::warning, "replicating to node {}: {}", nodeid, status.message());
                break;
            }
        }
        // A cleanly leaving node got its own removal: its stream ends.
        if (node.stream_end && node.stream->sent() >= *node.stream_end) {
            node.stream.reset();
            node.stream_end.reset();
        }
    }
}

uint64_t Node::complete_tail() const
{
    const uint64_t tail = copier_.complete_tail(ring_.unpublished_tail());
    RCPG_DEBUG_ASSERT(tail <= ring_.unpublished_tail(), "complete tail {} past the ring's tail {}", tail,
                      ring_.unpublished_tail());
    return tail;
}

uint64_t Node::publishable_tail()
{
    return safe_.publishable(role_ == Role::member ? applier_.processed() : complete_tail());
}

bool Node::copies_by_device(uint64_t payload_bytes) const
{
    return copier_.attached() && payload_bytes > transport_->max_inline_bytes();
}

void Node::flush_device_copies()
{
    if (!copier_.has_staged()) {
        return;
    }
    if (transport::Status status = copier_.flush(*transport_, config_.nodeid, next_batch_); !status) {
        if (status.code() == transport::Errc::try_again) {
            replication_blocked_ = true;  // completions free the queue: look again soon
        } else {
            ++counters_.rdma_errors;
            log(LogLevel::error, "device copy into the ring: {}; this node cannot go on", status.message());
            fail();
        }
        return;
    }
    ++next_batch_;
}

void Node::on_batch_completed(uint64_t batch)
{
    completed_batch_ = std::max(completed_batch_, batch);
    if (role_ == Role::member) {
        report_released();
        return;
    }
    copier_.completed(completed_batch_);
    for (auto& [nodeid, node] : remotes_) {
        node.release_held(completed_batch_);
    }
    local_.on_batch_completed(completed_batch_);
}

bool Node::sequence_removals()
{
    // One membership change for every node gone since the last: per group one NODEDOWN
    // confchg listing all their processes, then one totem confchg (corosync's order).
    std::vector<uint32_t> gone(pending_removals_.begin(), pending_removals_.end());
    for (const auto& [name, lost] : groups_.processes_of_nodes(gone)) {
        if (!sequence_removal(name, lost, delivery::reason_node_down)) {
            return false;  // the ring is full: the groups not done yet follow next time
        }
    }
    std::vector<uint32_t> members = view_.members;
    std::erase_if(members, [&](uint32_t nodeid) { return std::find(gone.begin(), gone.end(), nodeid) != gone.end(); });
    if (!removals_failed_.empty() && !has_quorum(members, config_.nodes.size(), order_.front())) {
        // The failed nodes may be alive on the other side of a partition, and the side
        // with the majority goes on there: this one must not, or the order splits.
        log(LogLevel::error, "only nodes {} of {} configured remain: no majority; this node stops sequencing",
            fmt::join(members, " "), config_.nodes.size());
        fail();
        return false;
    }
    if (members != view_.members) {
        std::swap(members, view_.members);
        const uint32_t ring_nodeid = view_.ring_nodeid;
        ++view_.ring_seq;
        view_.ring_nodeid = config_.nodeid;
        if (!sequence_totem()) {
            std::swap(members, view_.members);
            --view_.ring_seq;
            view_.ring_nodeid = ring_nodeid;
            return false;
        }
        log(LogLevel::info, "node{} {} left the view; members now {}", gone.size() > 1 ? "s" : "", fmt::join(gone, " "),
            fmt::join(view_.members, " "));
    }
    pending_removals_.clear();
    removals_failed_.clear();
    for (uint32_t nodeid : gone) {
        last_origin_.erase(nodeid);
        // A cleanly leaving node gets its own removal, then its stream ends (replicate()).
        if (auto found = remotes_.find(nodeid); found != remotes_.end() && found->second.stream) {
            found->second.stream_end = ring_.unpublished_tail();
        }
    }
    replicate();
    return true;
}

bool Node::drain_inbound(bool& blocked)
{
    ring_was_blocked_ = false;
    if (role_ != Role::sequencer || failed()) {
        return false;
    }
    bool worked = false;
    if (!election_) {
        // Nodes that left or failed: NODEDOWN for their processes, then the new view.
        if (!pending_removals_.empty()) {
            if (sequence_removals()) {
                worked = true;
            } else {
                ring_was_blocked_ = true;
            }
        }
        // After a failover: what this node had forwarded to the failed sequencer.
        if (!forwarded_.empty() && !ring_was_blocked_) {
            worked |= resequence_own();
        }
        release_member_batches();
    }
    for (auto& [nodeid, node] : remotes_) {
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
                    log(LogLevel::error, "node {} wrote a malformed inbound record: {}", nodeid,
                        next.status().message());
                    ++counters_.protocol_violations;
                    transport_->disconnect(nodeid);
                    break;
                }
                if (!*next) {
                    break;
                }
                record = **next;
            }
            auto decoded = wire::decode_inbound(record.type, record.payload);
            if (!decoded) {
                log(LogLevel::error, "node {} sent a malformed record of type {}; disconnecting", nodeid, record.type);
                ++counters_.protocol_violations;
                transport_->disconnect(nodeid);
                break;
            }
            if (decoded->type == wire::InboundType::hello &&
                !granted_for_hello(node, std::get<wire::Hello>(decoded->body))) {
                // Its grant went before the hello on the same queue pair, but may be
                // polled after it: wait for it, not for ever.
                node.pending = record;
                if (node.grant_deadline_ms == 0) {
                    node.grant_deadline_ms = now_ms_ + config_.failure_timeout_ms;
                } else if (now_ms_ >= node.grant_deadline_ms) {
                    log(LogLevel::error, "node {} asks to be a member but exposes no ring to node {}", nodeid,
                        config_.nodeid);
                    ++counters_.protocol_violations;
                    transport_->disconnect(nodeid);
                }
                break;
            }
            node.grant_deadline_ms = 0;
            record_copied_by_device_ = false;
            if (!sequence_inbound(node, *decoded)) {
                node.pending = record;
                // While collecting tails, records wait for the new view, not for room.
                ring_was_blocked_ |= !election_.has_value();
                break;
            }
            node.pending.reset();
            if (record_copied_by_device_ || !node.held.empty()) {
                // In order behind a record whose payload the device still reads.
                node.hold(record_copied_by_device_ ? next_batch_ : 0, record);
            } else if (node.inbound) {
                node.inbound->release(record);
            }
            worked = true;
            if (!node.inbound) {
                break;
            }
        }
    }
    blocked |= ring_was_blocked_;
    return worked;
}

bool Node::granted_for_hello(const RemoteNode& node, const wire::Hello& hello) const
{
    // What the sequencer writes into a member's memory, and what it reads of a survivor's
    // ring in a repair (one asking to continue) or writes once (one asking to be admitted).
    std::vector<uint32_t> tags{wire::kTagDeliveryRing, wire::kTagRingControl};
    tags.push_back(hello.ring_seq != 0 ? wire::kTagRepairRing : wire::kTagSnapshot);
    return std::all_of(tags.begin(), tags.end(),
                       [&](uint32_t tag) { return transport_->remote_region(node.nodeid, tag).has_value(); });
}

bool Node::sequence_inbound(RemoteNode& node, const wire::InboundRecord& record)
{
    const bool member = node.state == RemoteStatus::State::member;
    if (election_) {
        // Only the survivors' requests to continue count now; everything else waits.
        return record.type == wire::InboundType::hello && take_rejoin(node, std::get<wire::Hello>(record.body));
    }
    switch (record.type) {
    case wire::InboundType::hello:
        return admit(node, std::get<wire::Hello>(record.body));
    case wire::InboundType::node_leave:
        if (member) {
            node.state = RemoteStatus::State::leaving;
            pending_removals_.push_back(node.nodeid);
        }
        return true;
    case wire::InboundType::data:
    case wire::InboundType::join:
    case wire::InboundType::leave:
    case wire::InboundType::procdown:
        if (!member) {
            return true;  // sent before admission or after removal: no number, no effect
        }
        break;
    }
    // A forwarded record: every one gets an entry with its number, so its sender learns
    // which of its records the ring holds (and resends the rest to a new sequencer).
    current_origin_ = node.next_origin;
    const uint64_t tail_before = ring_.unpublished_tail();
    bool done = sequence_counted(node, record);
    if (done && ring_.unpublished_tail() == tail_before) {
        done = append_dropped(node.nodeid);
    }
    current_origin_ = 0;
    if (!done) {
        return false;  // nothing changed: the same record comes again
    }
    last_origin_[node.nodeid] = node.next_origin++;
    return true;
}

bool Node::data_record_admitted(const wire::DataPrefix& prefix, ProcessId process) const
{
    if ((prefix.flags & ~delivery::kSubmissionFlags) != 0) {
        return false;  // a flag no sender may set
    }
    if (prefix.group_id == delivery::kEvsGroupId || (prefix.flags & delivery::kFlagEvs) != 0) {
        // EVS: any process of a node in the view may send to any groups; an EVS message is
        // one entry, with the EVS number and flag (delivery::check_entry).
        return prefix.group_id == delivery::kEvsGroupId && (prefix.flags & delivery::kFlagEvs) != 0 &&
               (prefix.flags & delivery::kFragmentFlags) == 0;
    }
    // A CPG message of a process that is no member is dropped, as corosync drops it.
    const GroupName* name = groups_.name_of(prefix.group_id);
    return name != nullptr && groups_.is_member(*name, process);
}

bool Node::append_dropped(uint32_t nodeid)
{
    EntryHeader* entry = ring_.append(EntryKind::dropped, 0, 0, reclaim_limit());
    if (entry == nullptr) {
        ++counters_.ring_full_events;
        return false;
    }
    entry->nodeid = nodeid;
    entry->origin_seq = current_origin_;
    return true;
}

bool Node::sequence_counted(RemoteNode& node, const wire::InboundRecord& record)
{
    switch (record.type) {
    case wire::InboundType::data: {
        const auto& data = std::get<wire::Data>(record.body);
        const ProcessId process{node.nodeid, data.prefix.pid};
        if (!data_record_admitted(data.prefix, process)) {
            return true;  // dropped
        }
        if (copies_by_device(data.payload.size())) {
            const auto offset = static_cast<uint64_t>(data.payload.data() - node.inbound_memory.data());
            if (!sequence_data_by_device(data.prefix.group_id, process, data.prefix.flags, data.prefix.total_bytes,
                                         node.inbound_memory.slice(offset, static_cast<uint32_t>(data.payload.size())))) {
                return false;
            }
            record_copied_by_device_ = true;
            return true;
        }
        return sequence_data(data.prefix.group_id, process, data.prefix.flags, data.prefix.total_bytes, data.payload);
    }
    case wire::InboundType::join:
    case wire::InboundType::leave:
    case wire::InboundType::procdown: {
        const auto& op = std::get<wire::GroupOp>(record.body);
        const ProcessId process{node.nodeid, op.pid};
        if (record.type == wire::InboundType::join) {
            if (groups_.check_join(op.group, process) == JoinCheck::already_member) {
                return true;
            }
            return sequence_change(op.group, process, delivery::reason_join);
        }
        return sequence_removal(op.group, {process},
                                record.type == wire::InboundType::leave ? delivery::reason_leave : delivery::reason_process_down);
    }
    case wire::InboundType::hello:
    case wire::InboundType::node_leave:
        break;
    }
    return true;
}

bool Node::admit(RemoteNode& node, const wire::Hello& hello)
{
    transport::Transport& transport = *transport_;
    // A node that lost a sequencer this one did not take over from asks to continue a view
    // this node does not continue: refused like any hello that does not fit.
    if (base::Status fits = wire::check_admission(hello, node.nodeid, ring_.data_bytes());
        !fits || node.state != RemoteStatus::State::connected) {
        log(LogLevel::warning, "node {} cannot be admitted: {}", node.nodeid, fits ? "not connected" : fits.context());
        transport.disconnect(node.nodeid);
        return true;
    }
    const uint64_t totem_bytes = sizeof(delivery::TotemPayload) + (view_.members.size() + 1) * sizeof(uint32_t);
    if (!ring_.has_room(0, static_cast<uint32_t>(totem_bytes), reclaim_limit())) {
        return false;
    }
    wire::Snapshot snapshot;
    snapshot.start_position = ring_.unpublished_tail();
    snapshot.next_seq = ring_.next_seq();
    snapshot.ring_seq = view_.ring_seq;
    snapshot.sequencer = config_.nodeid;
    snapshot.members = view_.members;
    for (uint32_t member : view_.members) {
        auto found = last_origin_.find(member);
        snapshot.last_origins.push_back(found == last_origin_.end() ? 0 : found->second);
    }
    snapshot.groups = groups_.snapshot();
    const std::vector<std::byte> bytes = wire::encode_snapshot(snapshot);
    auto remote_snapshot = transport.remote_region(node.nodeid, wire::kTagSnapshot);
    auto remote_ring = transport.remote_region(node.nodeid, wire::kTagDeliveryRing);
    auto remote_control = transport.remote_region(node.nodeid, wire::kTagRingControl);
    if (!remote_snapshot || !remote_ring || !remote_control ||
        bytes.size() + wire::kSnapshotReadyBytes > std::min(remote_snapshot->bytes, wire::kSnapshotRegionBytes)) {
        log(LogLevel::error, "node {} cannot be admitted: its snapshot region is missing or too small", node.nodeid);
        transport.disconnect(node.nodeid);
        return true;
    }
    auto snapshot_memory = transport::RegisteredMemory::create(transport, wire::kSnapshotReadyBytes + bytes.size(),
                                                               transport::RegionAccess::local);
    if (!snapshot_memory) {
        log(LogLevel::error, "node {} cannot be admitted: {}", node.nodeid, snapshot_memory.status().message());
        transport.disconnect(node.nodeid);
        return true;
    }
    node.snapshot_memory = std::move(*snapshot_memory);
    const uint64_t ready = bytes.size();
    std::memcpy(node.snapshot_memory.data(), &ready, sizeof(ready));
    std::memcpy(node.snapshot_memory.data() + wire::kSnapshotReadyBytes, bytes.data(), bytes.size());
    const transport::LocalSlice body = node.snapshot_memory.slice(wire::kSnapshotReadyBytes, static_cast<uint32_t>(bytes.size()));
    const transport::LocalSlice ready_word = node.snapshot_memory.slice(0, sizeof(ready));
    transport::WriteRequest writes[2];
    writes[0].sources = {&body, 1};
    writes[0].destination = remote_snapshot->at(wire::kSnapshotReadyBytes);
    writes[1].sources = {&ready_word, 1};
    writes[1].destination = remote_snapshot->at(0);
    node.line->credit.store(snapshot.start_position);
    node.line->held.store(snapshot.start_position);  // nothing before it is its to hold
    // A node being admitted holds nothing yet (it writes its hold words only once in);
    // what an earlier incarnation left there must not be taken for holds.
    for (transport::PeerWord& hold : node.line->holds) {
        hold.store(0);
    }
    auto stream = DeliveryStream::create(transport, node.nodeid, *remote_ring, *remote_control,
                                         ring_data_registration_.id(), ring_.data_bytes(), &node.line->credit,
                                         snapshot.start_position);
    transport::Status posted = stream ? transport.post_writes(node.nodeid, writes) : stream.status();
    if (!posted) {
        log(LogLevel::error, "node {} cannot be admitted: {}", node.nodeid, posted.message());
        transport.disconnect(node.nodeid);
        return true;
    }
    node.stream.emplace(std::move(*stream));
    node.state = RemoteStatus::State::member;
    node.next_origin = 1;
    node.liveness.restart(now_ms_);
    last_origin_[node.nodeid] = 0;
    view_.members.insert(std::upper_bound(view_.members.begin(), view_.members.end(), node.nodeid), node.nodeid);
    ++view_.ring_seq;
    view_.ring_nodeid = config_.nodeid;
    if (!sequence_totem()) {
        // has_room said yes and nothing was appended since: cannot happen.
        log(LogLevel::error, "no room for the totem confchg that admits node {}", node.nodeid);
    }
    log(LogLevel::info, "node {} admitted at ring position {}; members now {}", node.nodeid, snapshot.start_position,
        fmt::join(view_.members, " "));
    return true;
}

}  // namespace rcpg::ordering
