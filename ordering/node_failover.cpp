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
// Failover. A member that loses its sequencer fences it (tears its queue pair down, so
// nothing the old sequencer still sends can land), applies what it had committed, and
// asks the next node of the view in the sequencer order to continue, telling it where
// its ring ends. That node collects the survivors' tails, repairs its own ring from the
// survivor with the longest one, removes the nodes that did not answer (the failed
// sequencer first) and continues: it writes each survivor the part of the ring it
// misses, then the new view. The survivors send again what they had forwarded and do not
// find in the ring. Invariants: ordering/NOTES.md, "Failover".

void Node::keep_mesh(uint64_t now_ms)
{
    for (uint32_t peer : view_.members) {
        if (peer <= config_.nodeid || peer == sequencer_ || transport_->is_connected(peer)) {
            continue;
        }
        uint64_t& next_ms = mesh_next_ms_[peer];
        if (now_ms < next_ms) {
            continue;
        }
        next_ms = now_ms + kReconnectIntervalMs;
        (void)transport_->connect(peer);  // one already under way or up: refused, and fine
    }
}

void Node::next_join_candidate()
{
    if (join_->advance()) {
        // A whole round in which every other node was unreachable or refused.
        if (join_->may_start_cluster()) {
            start_cluster();
            return;
        }
        next_connect_ms_ = now_ms_ + std::min<uint64_t>(kReconnectIntervalMs, config_.failure_timeout_ms);
    } else {
        next_connect_ms_ = now_ms_;
    }
    sequencer_ = join_->current();
}

void Node::start_cluster()
{
    withdraw_grants();  // from the last node it asked to join through
    set_state(NodeState::sequencing);
    sequencer_ = config_.nodeid;
    view_ = {{config_.nodeid}, config_.first_ring_seq, config_.nodeid};
    log(LogLevel::info, "node {} found no running cluster; it sequences for the {} configured nodes", config_.nodeid,
        config_.nodes.size());
    if (!local_.on_admitted()) {
        fail();
    }
}

void Node::refuse_admission_requests()
{
    // Only the sequencer admits: a node asking this one is told no (its connection
    // closes) and asks the next. A request to continue after a failover is kept, in case
    // this node is about to take over.
    for (auto& [nodeid, node] : remotes_) {
        if (!node.inbound || node.pending) {
            continue;
        }
        auto next = node.inbound->next();
        if (!next || !*next) {
            if (!next) {
                transport_->disconnect(nodeid);
            }
            continue;
        }
        auto decoded = wire::decode_inbound((**next).type, (**next).payload);
        if (!decoded || (decoded->type == wire::InboundType::hello &&
                         std::get<wire::Hello>(decoded->body).ring_seq == 0)) {
            log(LogLevel::debug, "node {} asks to be admitted, but node {} does not sequence", nodeid, config_.nodeid);
            transport_->disconnect(nodeid);
            continue;
        }
        node.pending = **next;
    }
}

void Node::lose_sequencer(const std::string& why)
{
    if (state_ == NodeState::leaving) {
        set_state(NodeState::left);
        return;
    }
    const uint32_t lost = sequencer_;
    log(LogLevel::warning, "lost sequencer {} ({}); the next node of the view takes over", lost, why);
    suspects_.insert(lost);
    transport_->disconnect(lost);
    withdraw_grants();  // fenced: nothing it still sends may land
    retire_writer();
    delivery_credit_.reset();
    sequencer_heartbeat_.reset();
    set_state(NodeState::failover_waiting);
    failover_started_ms_ = now_ms_;
    apply_delivered();  // everything it committed before the fence
    if (!failed()) {
        next_candidate();
    }
}

void Node::next_candidate()
{
    for (uint32_t nodeid : order_) {
        if (!std::binary_search(view_.members.begin(), view_.members.end(), nodeid) || suspects_.contains(nodeid)) {
            continue;
        }
        if (nodeid == config_.nodeid) {
            promote();
            return;
        }
        sequencer_ = nodeid;
        failover_deadline_ms_ = now_ms_ + kFailoverWaitTimeouts * config_.failure_timeout_ms;
        next_connect_ms_ = now_ms_;
        log(LogLevel::info, "node {} asks node {} to take over", config_.nodeid, nodeid);
        return;
    }
    log(LogLevel::error, "no node of the view is left to take over; this node cannot go on");
    fail();
}

void Node::promote()
{
    withdraw_grants();  // it sequences itself: no one writes its ring from now on
    sequencer_ = config_.nodeid;
    // Member-era batches end here: once its own forwarded records are in its ring, all of
    // them are released together; device copies number on after them.
    member_batches_end_ = next_batch_;
    ++next_batch_;
    forwarded_uncommitted_ = false;
    election_.emplace(config_.nodeid, view_.members, failover_started_ms_, now_ms_ + config_.failure_timeout_ms);
    set_state(NodeState::electing);
    const uint64_t processed = applier_.processed();
    election_->add_own({processed, ring_.next_seq(), std::min(reclaim_limit(), processed)});
    log(LogLevel::info, "node {} takes over sequencing at ring position {}; collecting the survivors' tails",
        config_.nodeid, processed);
    for (uint32_t peer : election_->members()) {
        auto found = remotes_.find(peer);
        if (peer == config_.nodeid || suspects_.contains(peer) || found == remotes_.end() ||
            !found->second.heartbeat_target) {
            continue;
        }
        const uint64_t word = heartbeats_.counter();
        transport::WriteRequest notice;
        notice.inline_bytes = std::as_bytes(std::span<const uint64_t>(&word, 1));
        notice.destination = *found->second.heartbeat_target;
        notice.imm = kTakeOverImmediate;
        (void)transport_->post_write(peer, notice);  // it still notices by itself otherwise
    }
}

bool Node::take_rejoin(RemoteNode& node, const wire::Hello& hello)
{
    if (hello.ring_seq == 0) {
        return false;  // asks to be admitted: after the new view
    }
    // The repair reads up to the longest tail into this ring: a tail past what this node's
    // own readers leave free is refused (check_rejoin says why none genuine is).
    base::Status fits = wire::check_rejoin(hello, node.nodeid, ring_.data_bytes(), local_.local_reclaim_limit());
    if (fits && !election_->accepts(node.nodeid, suspects_)) {
        fits = {base::Errc::refused, base::Layer::protocol, "not of the view, suspected, or late"};
    }
    if (!fits) {
        log(LogLevel::warning, "node {} cannot continue here: {}", node.nodeid, fits.context());
        transport_->disconnect(node.nodeid);
        return true;
    }
    election_->add(node.nodeid, {hello.tail, hello.next_seq, hello.reclaim_limit});
    log(LogLevel::info, "node {} continues from ring position {}", node.nodeid, hello.tail);
    return true;
}

bool Node::election_step(uint64_t now_ms)
{
    Election& election = *election_;
    if (!election.target()) {
        if (!election.answers_in(suspects_, now_ms)) {
            return false;
        }
        finish_election();
        return true;
    }
    if (!election.repaired()) {
        return post_repair_reads();
    }
    install_after_failover();
    return true;
}

void Node::finish_election()
{
    Election& election = *election_;
    const std::vector<uint32_t> survivors = election.survivors();
    if (!has_quorum(survivors, config_.nodes.size(), order_.front())) {
        log(LogLevel::error, "only nodes {} of {} configured answered: no majority; this node does not take over",
            fmt::join(survivors, " "), config_.nodes.size());
        fail();
        return;
    }
    election.fix_target();
    const uint64_t target = *election.target();
    const uint32_t holder = election.holder();
    const uint64_t processed = applier_.processed();
    RCPG_ASSERT(target >= processed, "election target {} behind this node's own tail {}", target, processed);
    if (holder == config_.nodeid) {
        return;
    }
    // The end of the ring this node misses, read from the survivor that has it, into the
    // same positions: every ring holds the same entries at the same positions. Not where
    // this node's readers' holds come round: reclaim_limit() brings them up to date.
    reclaim_limit();
    std::vector<PositionRange> holds;
    for (const DeliveryRing::Hold& hold : ring_.holds()) {
        holds.push_back({hold.position, hold.position + hold.bytes});
    }
    election.plan_reads(repair_reads(processed, target, ring_.data_bytes(), holds));
    log(LogLevel::info, "repairing ring positions {}..{} from node {}", processed, target, holder);
    post_repair_reads();
}

// Posts the repair's reads the send queue takes now (one a piece, as many pieces as
// holds split the range into); the rest at the next steps.
bool Node::post_repair_reads()
{
    Election& election = *election_;
    const uint32_t holder = election.holder();
    auto remote = transport_->remote_region(holder, wire::kTagRepairRing);
    if (!remote || remote->bytes != ring_.data_bytes()) {
        log(LogLevel::error, "node {} does not expose its ring for the repair", holder);
        election.lose(holder);
        transport_->disconnect(holder);
        return true;
    }
    bool posted = false;
    while (const PositionRange* piece = election.next_read()) {
        const uint64_t offset = piece->begin & (ring_.data_bytes() - 1);
        const transport::LocalSlice destination{ring_data_registration_.id(), offset,
                                                static_cast<uint32_t>(piece->end - piece->begin)};
        transport::Status read = transport_->post_read(holder, destination, remote->at(offset), 0);
        if (!read && read.code() == transport::Errc::try_again) {
            break;  // the send queue is full: the next step goes on
        }
        if (!read) {
            log(LogLevel::error, "cannot read the ring's end from node {}: {}", holder, read.message());
            election.lose(holder);
            transport_->disconnect(holder);
            return true;
        }
        election.read_posted();
        posted = true;
    }
    return posted;
}

void Node::install_after_failover()
{
    Election& election = *election_;
    const uint64_t target = *election.target();
    if (applier_.processed() < target) {
        // Checked and applied as any member checks what a sequencer wrote.
        ring_.header().cluster_tail.store(target, std::memory_order_release);
        apply_delivered();
        if (failed() || applier_.processed() != target) {
            log(LogLevel::error, "the repaired ring end does not check out; this node cannot go on");
            fail();
            return;
        }
    }
    transport::Transport& transport = *transport_;
    for (const auto& [nodeid, rejoin] : election.rejoined()) {
        auto found = remotes_.find(nodeid);
        if (nodeid == config_.nodeid || found == remotes_.end() || !found->second.inbound) {
            continue;
        }
        RemoteNode& node = found->second;
        auto remote_ring = transport.remote_region(nodeid, wire::kTagDeliveryRing);
        auto remote_control = transport.remote_region(nodeid, wire::kTagRingControl);
        node.line->credit.store(rejoin.reclaim_limit);
        node.line->held.store(rejoin.tail);
        auto stream = remote_ring && remote_control
                          ? DeliveryStream::create(transport, nodeid, *remote_ring, *remote_control,
                                                   ring_data_registration_.id(), ring_.data_bytes(), &node.line->credit,
                                                   rejoin.tail, rejoin.reclaim_limit)
                          : transport::Result<DeliveryStream>(transport::Status{
                                transport::Errc::not_found, transport::Layer::api, "no ring exposed"});
        if (!stream) {
            log(LogLevel::error, "node {} cannot continue: {}", nodeid, stream.status().message());
            transport.disconnect(nodeid);
            continue;
        }
        node.stream.emplace(std::move(*stream));
        node.state = RemoteStatus::State::member;
        node.next_origin = last_origin_[nodeid] + 1;
        node.liveness.restart(now_ms_, node.heartbeat->counter.load());
    }
    for (uint32_t nodeid : election.members()) {
        auto found = remotes_.find(nodeid);
        const bool continues = found != remotes_.end() && found->second.state == RemoteStatus::State::member;
        if (nodeid != config_.nodeid && !continues) {
            pending_removals_.push_back(nodeid);
            removals_failed_.insert(nodeid);
            ++counters_.nodes_failed;
        }
    }
    counters_.last_failover_ms = now_ms_ - election.started_ms();
    ++counters_.failovers;
    log(LogLevel::info, "node {} sequences from ring position {} after {} ms; {} of {} nodes continue", config_.nodeid,
        target, counters_.last_failover_ms, view_.members.size() - pending_removals_.size(),
        election.members().size());
    election_.reset();
    set_state(NodeState::sequencing);
    reclaim_limit();
    suspects_.clear();
    heartbeats_.due_now(now_ms_);
}

bool Node::resequence_own()
{
    resequencing_ = true;
    bool worked = false;
    while (!forwarded_.empty()) {
        const ForwardLog::Record& forwarded = forwarded_.front();
        if (forwarded.type == wire::InboundType::data) {
            // The prefix and the payload are still where the caller put them.
            std::vector<std::byte> record;
            for (size_t index = 0; index < forwarded.part_count; ++index) {
                const transport::LocalSlice& part = forwarded.parts[index];
                const std::span<const std::byte> bytes = transport_->region_bytes(part.region).subspan(part.offset, part.bytes);
                record.insert(record.end(), bytes.begin(), bytes.end());
            }
            auto decoded = wire::decode_inbound(static_cast<uint32_t>(forwarded.type), record);
            if (decoded) {
                const auto& data = std::get<wire::Data>(decoded->body);
                const ProcessId process{config_.nodeid, data.prefix.pid};
                // Admitted as the old sequencer would have (an EVS record needs no group).
                if (data_record_admitted(data.prefix, process) &&
                    !sequence_data(data.prefix.group_id, process, data.prefix.flags, data.prefix.total_bytes,
                                   data.payload)) {
                    break;
                }
            }
        } else if (auto decoded = wire::decode_inbound(static_cast<uint32_t>(forwarded.type), forwarded.bytes)) {
            const auto& op = std::get<wire::GroupOp>(decoded->body);
            const ProcessId process{config_.nodeid, op.pid};
            if (forwarded.type == wire::InboundType::join) {
                if (groups_.check_join(op.group, process) != JoinCheck::already_member) {
                    if (!sequence_change(op.group, process, delivery::reason_join)) {
                        break;
                    }
                    local_.on_own_join(op.group, op.pid, *groups_.group_id(op.group), ring_.last_position(),
                                       ring_.next_seq() - 1);
                }
            } else if (groups_.is_member(op.group, process)) {
                const delivery::Reason reason =
                    forwarded.type == wire::InboundType::leave ? delivery::reason_leave : delivery::reason_process_down;
                if (!sequence_removal(op.group, {process}, reason)) {
                    break;
                }
                local_.on_own_removal(op.group, op.pid);
            }
        }
        forwarded_.pop_front();
        ++counters_.records_resent;
        worked = true;
    }
    resequencing_ = false;
    return worked;
}

void Node::release_member_batches()
{
    if (member_batches_end_ == 0 || !forwarded_.empty()) {
        return;
    }
    // Everything handed over as a member is in the ring (the repair brought some, the
    // rest was sequenced here). Device copies have later numbers: none is covered.
    completed_batch_ = std::max(completed_batch_, member_batches_end_);
    member_batches_end_ = 0;
    local_.on_batch_completed(completed_batch_);
}

void Node::resend_unsequenced()
{
    while (writer_) {
        const ForwardLog::Record* forwarded = forwarded_.next_resend();
        if (forwarded == nullptr) {
            break;
        }
        const bool appended = forwarded->type == wire::InboundType::data
                                  ? writer_->append(static_cast<uint32_t>(forwarded->type), forwarded->sources()).ok()
                                  : writer_->append_copy(static_cast<uint32_t>(forwarded->type), forwarded->bytes).ok();
        if (!appended) {
            break;  // the inbound ring or the send queue is full: the next turn goes on
        }
        ++counters_.records_resent;
        forwarded_.resent();
        forwarded_uncommitted_ = true;
    }
    commit_forwarded();
}

void Node::note_origin(uint32_t nodeid, uint64_t origin_seq)
{
    uint64_t& last = last_origin_[nodeid];
    if (nodeid == config_.nodeid) {
        // The ring names this node's records in the order they were sent, and none that
        // was not.
        if (origin_seq != last + 1 || origin_seq >= forwarded_.next_origin()) {
            ++counters_.protocol_violations;
            log(LogLevel::error, "the sequencer wrote this node's record {} after record {} ({} sent); leaving",
                origin_seq, last, forwarded_.next_origin() - 1);
            fail();
            return;
        }
        forwarded_.sequenced(origin_seq);
        report_released();
    }
    last = origin_seq;
}

void Node::report_released()
{
    if (role_ != Role::member) {
        return;
    }
    // Released only once in the ring: until then the next sequencer may need it again.
    if (const uint64_t released = forwarded_.newly_released(completed_batch_); released != 0) {
        local_.on_batch_completed(released);
    }
}

}  // namespace rcpg::ordering
