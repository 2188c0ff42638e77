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
    if (!writer_ || is_member_failover(state_) || resend_next_ != 0 || parts.size() > transport::kMaxSourcesPerWrite) {
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
    Forwarded& forwarded = unsequenced_.emplace_back();
    forwarded.origin_seq = next_origin_seq_++;
    forwarded.batch = next_batch_;
    forwarded.type = wire::InboundType::data;
    std::copy(parts.begin(), parts.end(), forwarded.parts.begin());
    forwarded.part_count = parts.size();
    return true;
}

bool Node::forward_group_op(uint32_t pid, const GroupName& name, delivery::Reason reason)
{
    if (!writer_ || is_member_failover(state_) || resend_next_ != 0) {
        return false;
    }
    const wire::InboundType type = reason == delivery::reason_join    ? wire::InboundType::join
                                   : reason == delivery::reason_leave ? wire::InboundType::leave
                                                                : wire::InboundType::procdown;
    std::vector<std::byte> record = wire::encode_group_op(pid, name);
    if (!writer_->append_copy(static_cast<uint32_t>(type), record)) {
        return false;
    }
    Forwarded& forwarded = unsequenced_.emplace_back();
    forwarded.origin_seq = next_origin_seq_++;
    forwarded.batch = next_batch_;
    forwarded.type = type;
    forwarded.bytes = std::move(record);
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
    ring_.start_at(snapshot->start_position, snapshot->next_seq);
    processed_ = published_credit_ = snapshot->start_position;
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
    const uint64_t ring_bytes = ring_.data_bytes();
    const uint64_t committed = ring_.header().cluster_tail.load(std::memory_order_acquire);
    if (committed <= processed_) {
        return false;
    }
    if (committed - processed_ > ring_bytes || committed % delivery::kEntryAlignBytes != 0) {
        ++counters_.protocol_violations;
        log(LogLevel::error, "the sequencer committed position {} beyond what it may write (have {}); leaving",
            committed, processed_);
        fail();
        return false;
    }
    while (processed_ < committed) {
        const uint64_t position = processed_;
        const uint64_t offset = position & (ring_bytes - 1);
        const std::byte* at = ring_.data() + offset;
        auto entry = wire::check_entry({at, ring_bytes - offset}, position, ring_bytes, committed - position);
        const bool filler = entry && (entry->kind == EntryKind::pad || entry->kind == EntryKind::skip);
        const bool in_order = entry && (filler || entry->seq == ring_.next_seq());
        if (!in_order) {
            ++counters_.protocol_violations;
            // What lies there, raw (the first words of an entry header), for the post-mortem.
            delivery::EntryHeader raw{};
            std::memcpy(&raw, at, std::min<uint64_t>(sizeof(raw), ring_bytes - offset));
            log(LogLevel::error,
                "the sequencer wrote a malformed or out-of-order entry at position {} (committed {}; there: {} bytes, "
                "kind {}, flags {:#x}, seq {} where {} was due, payload {} at {}); leaving",
                position, committed, raw.entry_bytes, static_cast<unsigned>(raw.kind), raw.flags, raw.seq,
                ring_.next_seq(), raw.payload_bytes, raw.payload_offset);
            fail();
            return false;
        }
        processed_ = position + entry->entry_bytes;
        if (filler) {
            ring_.adopt(ring_.last_position(), processed_, ring_.next_seq());
            continue;
        }
        ring_.adopt(position, processed_, entry->seq + 1);
        if (entry->origin_seq != 0) {
            note_origin(entry->nodeid, entry->origin_seq);
            if (failed()) {
                return false;
            }
        }
        const std::span<const std::byte> payload(at + entry->payload_offset, entry->payload_bytes);
        switch (entry->kind) {
        case EntryKind::data:
            ++counters_.messages_delivered;
            counters_.bytes_delivered += entry->payload_bytes;
            note_safe(position, processed_, entry->flags);
            local_.on_entry(entry->group_id);
            break;
        case EntryKind::confchg:
            if (!apply_confchg(*entry, position, payload)) {
                return false;
            }
            break;
        case EntryKind::totem_confchg: {
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
            if (std::find(view_.members.begin(), view_.members.end(), config_.nodeid) == view_.members.end() &&
                state_ == NodeState::leaving) {
                set_state(NodeState::left);
            }
            // Only once connected to the candidate: a view of the lost sequencer's, applied
            // as this node fences it (lose_sequencer), is no new sequencer's.
            if (state_ == NodeState::failover_hello_sent && totem->ring_nodeid == sequencer_) {
                // The new sequencer's view: everything the failed one wrote that any
                // survivor had is here now; what is not, this node sends again.
                set_state(NodeState::following);
                // Its ring was readable for the repair only, which is over.
                transport_->withdraw(sequencer_, wire::kTagRepairRing);
                suspects_.clear();
                sequencer_liveness_.restart(now_ms_);
                counters_.last_failover_ms = now_ms_ - failover_started_ms_;
                ++counters_.failovers;
                resend_next_ = unsequenced_.empty() ? 0 : unsequenced_.front().origin_seq;
                forwarded_uncommitted_ = true;  // releases what waited for the lost commits
                log(LogLevel::info, "node {} continues under sequencer {} after {} ms; {} record{} to send again",
                    config_.nodeid, sequencer_, counters_.last_failover_ms, unsequenced_.size(),
                    unsequenced_.size() == 1 ? "" : "s");
            }
            break;
        }
        case EntryKind::pad:
        case EntryKind::skip:
        case EntryKind::dropped:
            break;
        }
    }
    // Every entry was checked to lie within what was committed: the walk ends exactly there.
    RCPG_ASSERT(processed_ == committed, "node {} applied up to {}, committed {}", config_.nodeid, processed_, committed);
    local_.on_applied();
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

// The words for this node's holds (wire::kHoldWords): a hold that lasts keeps its word,
// an ended one frees it, a new one takes a free one. Returns how many holds found a word
// (the first ones by position: the credit must stay before the others).
size_t Node::assign_hold_words(std::array<uint64_t, wire::kHoldWords>& words) const
{
    const std::vector<DeliveryRing::Hold> holds = holds_by_position();
    std::vector<uint64_t> wanted;
    for (const DeliveryRing::Hold& hold : holds) {
        wanted.push_back(wire::encode_hold(hold.position, hold.bytes, ring_.data_bytes()));
    }
    for (uint64_t& word : words) {
        if (std::find(wanted.begin(), wanted.end(), word) == wanted.end()) {
            word = 0;
        }
    }
    size_t placed = 0;
    for (const uint64_t word : wanted) {
        if (std::find(words.begin(), words.end(), word) == words.end()) {
            auto free = std::find(words.begin(), words.end(), uint64_t{0});
            if (free == words.end()) {
                break;
            }
            *free = word;
        }
        ++placed;
    }
    return placed;
}

// `limit`, kept before the first of this node's holds from `first_unpublished` on (by
// position): the sequencer does not know of those, so it must not come round to them. A
// filler's header fits before the held bytes (DeliveryRing::slot_for).
uint64_t Node::credit_before_holds(uint64_t limit, size_t first_unpublished) const
{
    if (first_unpublished >= ring_.holds().size()) {
        return limit;
    }
    const std::vector<DeliveryRing::Hold> holds = holds_by_position();
    return std::min(limit, holds[first_unpublished].position - delivery::kEntryAlignBytes);
}

bool Node::hold_published(const DeliveryRing::Hold& hold) const
{
    if (role_ != Role::member) {
        return true;
    }
    const uint64_t word = wire::encode_hold(hold.position, hold.bytes, ring_.data_bytes());
    return std::find(published_holds_.begin(), published_holds_.end(), word) != published_holds_.end();
}

// Writes this node's hold words at the sequencer when they changed, or were not yet
// written to this sequencer; `placed`: how many of the holds, by position, have a word.
// False when the send queue is full (nothing written).
bool Node::publish_hold_words(size_t& placed)
{
    constexpr std::array<uint64_t, wire::kHoldWords> kNoHolds{};
    placed = 0;
    if (ring_.holds().empty() && published_holds_ == kNoHolds && !hold_words_unwritten_) {
        return true;  // nearly always: no holds, none published
    }
    std::array<uint64_t, wire::kHoldWords> words = published_holds_;
    placed = assign_hold_words(words);
    if (words != published_holds_ || hold_words_unwritten_) {
        transport::WriteRequest write;
        write.inline_bytes = std::as_bytes(std::span<const uint64_t>(words));
        write.destination = delivery_credit_->at(offsetof(wire::MemberLine, holds));
        if (!transport_->post_write(sequencer_, write)) {
            return false;
        }
        published_holds_ = words;
        hold_words_unwritten_ = false;
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
    const uint64_t readers_limit = std::min(reclaim_limit(), processed_);
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
