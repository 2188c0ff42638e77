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
// Member: forwarding to the sequencer

bool Node::forward_data(std::span<const transport::LocalSlice> parts, uint32_t payload_bytes)
{
    if (!writer_ || is_member_failover(state_) || forwarded_.resending() || parts.size() > transport::kMaxSourcesPerWrite) {
        return false;
    }
    transport::Status status = writer_->append(static_cast<uint32_t>(wire::InboundType::data), parts);
    if (!status) {
        if (status.code() != transport::Errc::try_again) {
            ++counters_.rdma_errors;
            log(LogLevel::warning, "forwarding to the sequencer: {}", status.message());
        }
        return false;
    }
    ++counters_.messages_forwarded;
    counters_.bytes_forwarded += payload_bytes;
    forwarded_uncommitted_ = true;
    forwarded_.add_data(parts, next_batch_);
    return true;
}

bool Node::forward_group_op(uint32_t pid, const GroupName& name, delivery::Reason reason)
{
    if (!writer_ || is_member_failover(state_) || forwarded_.resending()) {
        return false;
    }
    const wire::InboundType type = reason == delivery::reason_join    ? wire::InboundType::join
                                   : reason == delivery::reason_leave ? wire::InboundType::leave
                                                                : wire::InboundType::procdown;
    std::vector<std::byte> record = wire::encode_group_op(pid, name);
    if (!writer_->append_copy(static_cast<uint32_t>(type), record)) {
        return false;
    }
    forwarded_.add_copy(type, std::move(record), next_batch_);
    forwarded_uncommitted_ = true;
    commit_forwarded();
    return true;
}

bool Node::commit_forwarded()
{
    if (!forwarded_uncommitted_ || !writer_ || is_member_failover(state_)) {
        return true;
    }
    // Signalled: its completion says the device has read every source byte of the batch.
    if (transport::Status status = writer_->commit(true, next_batch_, kWakeImmediate); !status) {
        return false;  // send queue full: the next turn retries
    }
    ++next_batch_;
    forwarded_uncommitted_ = false;
    return true;
}

bool Node::begin_leave()
{
    if (state_ != NodeState::following || !writer_) {
        return false;
    }
    set_state(NodeState::leaving);
    if (!writer_->append_copy(static_cast<uint32_t>(wire::InboundType::node_leave), {}) ||
        !writer_->commit(false, 0, kWakeImmediate)) {
        return false;
    }
    log(LogLevel::info, "node {} leaving the cluster", config_.nodeid);
    return true;
}

void Node::disconnect_from_sequencer()
{
    if (transport_ && role_ == Role::member) {
        transport_->disconnect(sequencer_);
    }
}

// ---------------------------------------------------------------------------------------
// Member: what the sequencer wrote

bool Node::apply_snapshot()
{
    const std::byte* region = member_memory_.data() + delivery::kPageBytes;
    const uint64_t ready = reinterpret_cast<const transport::PeerWord*>(region)->load();
    if (ready == 0) {
        return false;
    }
    auto snapshot = ready <= wire::kSnapshotRegionBytes - wire::kSnapshotReadyBytes
                        ? wire::decode_snapshot({region + wire::kSnapshotReadyBytes, ready})
                        : std::nullopt;
    if (!snapshot || !groups_.restore(snapshot->groups) || snapshot->sequencer != sequencer_) {
        log(LogLevel::error, "the sequencer's admission snapshot is malformed; this node cannot join");
        fail();
        return false;
    }
    applier_.start_at(snapshot->start_position, snapshot->next_seq);
    published_credit_ = snapshot->start_position;
    view_ = {snapshot->members, snapshot->ring_seq, snapshot->sequencer};
    last_origin_.clear();
    for (size_t index = 0; index < snapshot->members.size(); ++index) {
        last_origin_[snapshot->members[index]] = snapshot->last_origins[index];
    }
    last_origin_[config_.nodeid] = 0;
    reclaim_limit_ = snapshot->start_position;
    set_state(NodeState::following);
    if (!local_.on_admitted()) {
        fail();
        return false;
    }
    log(LogLevel::info, "node {} admitted by sequencer {} at ring position {}", config_.nodeid, sequencer_,
        snapshot->start_position);
    return true;
}

bool Node::apply_delivered()
{
    if (is_joining(state_) && !apply_snapshot()) {
        return false;
    }
    const uint64_t committed = ring_.header().cluster_tail.load(std::memory_order_acquire);
    if (committed <= applier_.processed()) {
        return false;
    }
    if (base::Status fits = applier_.check_committed(committed); !fits) {
        ++counters_.protocol_violations;
        log(LogLevel::error, "{}; leaving", fits.context());
        fail();
        return false;
    }
    for (;;) {
        auto next = applier_.next(committed);
        if (!next) {
            ++counters_.protocol_violations;
            log(LogLevel::error, "{}; leaving", next.status().context());
            fail();
            return false;
        }
        if (!*next) {
            break;  // everything committed is applied
        }
        const RingApplier::Entry& applied = **next;
        const EntryHeader& entry = applied.header;
        const uint64_t position = applied.position;
        if (entry.origin_seq != 0) {
            note_origin(entry.nodeid, entry.origin_seq);
            if (failed()) {
                return false;
            }
        }
        switch (entry.kind) {
        case EntryKind::data:
            ++counters_.messages_delivered;
            counters_.bytes_delivered += entry.payload_bytes;
            note_safe(position, position + entry.entry_bytes, entry.flags);
            local_.on_entry(entry.group_id);
            break;
        case EntryKind::confchg:
            if (!apply_confchg(entry, position, applied.payload)) {
                return false;
            }
            break;
        case EntryKind::totem_confchg:
            if (!apply_totem(position, applied.payload)) {
                return false;
            }
            break;
        case EntryKind::pad:
        case EntryKind::skip:
        case EntryKind::dropped:
            break;
        }
    }
    local_.on_applied();
    return true;
}

bool Node::apply_totem(uint64_t position, std::span<const std::byte> payload)
{
    auto totem = wire::decode_totem(payload);
    if (!totem) {
        ++counters_.protocol_violations;
        log(LogLevel::error, "malformed totem confchg at position {}; leaving", position);
        fail();
        return false;
    }
    for (uint32_t member : totem->members) {
        if (!std::binary_search(view_.members.begin(), view_.members.end(), member)) {
            last_origin_[member] = 0;  // admitted: numbers its records from 1
        }
    }
    view_ = {totem->members, totem->ring_seq, totem->ring_nodeid};
    local_.on_entry(LocalSide::kTotemEntries);
    if (std::find(view_.members.begin(), view_.members.end(), config_.nodeid) == view_.members.end() &&
        state_ == NodeState::leaving) {
        set_state(NodeState::left);
    }
    // Only once connected to the candidate: a view of the lost sequencer's, applied as
    // this node fences it (lose_sequencer), is no new sequencer's.
    if (state_ == NodeState::failover_hello_sent && totem->ring_nodeid == sequencer_) {
        // The new sequencer's view: everything the failed one wrote that any survivor
        // had is here now; what is not, this node sends again.
        set_state(NodeState::following);
        // Its ring was readable for the repair only, which is over.
        transport_->withdraw(sequencer_, wire::kTagRepairRing);
        suspects_.clear();
        sequencer_liveness_.restart(now_ms_);
        counters_.last_failover_ms = now_ms_ - failover_started_ms_;
        ++counters_.failovers;
        forwarded_.begin_resend();
        forwarded_uncommitted_ = true;  // releases what waited for the lost commits
        log(LogLevel::info, "node {} continues under sequencer {} after {} ms; {} record{} to send again",
            config_.nodeid, sequencer_, counters_.last_failover_ms, forwarded_.size(), forwarded_.size() == 1 ? "" : "s");
    }
    return true;
}

bool Node::apply_confchg(const delivery::EntryHeader& entry, uint64_t position, std::span<const std::byte> payload)
{
    auto confchg = wire::decode_confchg(payload);
    const bool join = confchg && confchg->joined.size() == 1 && confchg->left.empty();
    const bool removal = confchg && confchg->joined.empty() && !confchg->left.empty();
    if (!join && !removal) {
        ++counters_.protocol_violations;
        log(LogLevel::error, "malformed confchg at position {}; leaving", position);
        fail();
        return false;
    }
    const GroupName& name = confchg->group;
    if (join) {
        const ProcessId process{confchg->joined[0].nodeid, confchg->joined[0].pid};
        if (groups_.is_member(name, process) || groups_.join(name, process).group_id != entry.group_id) {
            ++counters_.protocol_violations;
            log(LogLevel::error, "the sequencer's join at position {} contradicts this node's group table; leaving",
                position);
            fail();
            return false;
        }
        if (process.nodeid == config_.nodeid) {
            local_.on_own_join(name, process.pid, entry.group_id, position, entry.seq);
        }
    } else {
        std::vector<ProcessId> processes;
        for (const delivery::MemberAddress& address : confchg->left) {
            processes.push_back({address.nodeid, address.pid});
        }
        if (!groups_.remove(name, processes, static_cast<delivery::Reason>(confchg->left[0].reason))) {
            ++counters_.protocol_violations;
            log(LogLevel::error, "the sequencer removed a process at position {} that is no member; leaving",
                position);
            fail();
            return false;
        }
        for (const ProcessId& process : processes) {
            if (process.nodeid == config_.nodeid) {
                local_.on_own_removal(name, process.pid);
            }
        }
    }
    local_.on_entry(entry.group_id);
    return true;
}

std::vector<DeliveryRing::Hold> Node::holds_by_position() const
{
    std::vector<DeliveryRing::Hold> holds = ring_.holds();
    std::sort(holds.begin(), holds.end(),
              [](const DeliveryRing::Hold& a, const DeliveryRing::Hold& b) { return a.position < b.position; });
    return holds;
}

uint64_t Node::credit_before_holds(uint64_t limit, size_t placed) const
{
    if (placed >= ring_.holds().size()) {
        return limit;
    }
    return HoldWords::credit_before(limit, holds_by_position(), placed);
}

bool Node::hold_published(const DeliveryRing::Hold& hold) const
{
    return role_ != Role::member || hold_words_.published(hold, ring_.data_bytes());
}

// Writes this node's hold words at the sequencer when they changed, or were not yet
// written to this sequencer; `placed`: how many of the holds, by position, have a word.
// False when the send queue is full (nothing written).
bool Node::publish_hold_words(size_t& placed)
{
    placed = 0;
    if (hold_words_.settled(ring_.holds().empty())) {
        return true;  // nearly always: no holds, none published
    }
    const HoldWords::Plan plan = hold_words_.plan(holds_by_position(), ring_.data_bytes());
    placed = plan.placed;
    if (plan.write) {
        transport::WriteRequest write;
        write.inline_bytes = std::as_bytes(std::span<const uint64_t>(plan.words));
        write.destination = delivery_credit_->at(offsetof(wire::MemberLine, holds));
        if (!transport_->post_write(sequencer_, write)) {
            placed = 0;
            return false;
        }
        hold_words_.written(plan.words);
    }
    return true;
}

void Node::publish_member_credit()
{
    if (!is_connected(state_) || !delivery_credit_) {
        return;
    }
    // reclaim_limit() also brings the holds of this node's readers up to date. Their words
    // go first: the credit may pass only holds the sequencer was told of (the write of
    // their words goes before the credit's, on the same queue pair).
    const uint64_t readers_limit = std::min(reclaim_limit(), applier_.processed());
    size_t placed = 0;
    if (!publish_hold_words(placed)) {
        return;  // send queue full: the next step
    }
    const uint64_t limit = credit_before_holds(readers_limit, placed);
    if (limit <= published_credit_) {
        return;
    }
    const uint64_t requested = ring_.header().credit_request.load(std::memory_order_acquire);
    if (limit - published_credit_ < ring_.data_bytes() / kCreditPublishDivisor && requested <= published_credit_) {
        return;
    }
    const uint64_t word = limit;
    transport::WriteRequest write;
    write.inline_bytes = std::as_bytes(std::span<const uint64_t>(&word, 1));
    write.destination = delivery_credit_->at(offsetof(wire::MemberLine, credit));
    if (transport_->post_write(sequencer_, write)) {
        published_credit_ = limit;
    }
}

}  // namespace rcpg::ordering
