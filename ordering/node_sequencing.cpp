#include "ordering/node_internal.hpp"

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
// Sequencing (single and sequencer)

uint64_t Node::reclaim_limit()
{
    uint64_t limit = local_.local_reclaim_limit();
    std::vector<DeliveryRing::Hold>& holds = ring_.remote_holds();
    holds.clear();
    for (auto& [nodeid, node] : remotes_) {
        if (!node.stream) {
            continue;
        }
        // The credit first (acquire): a hold it passes landed before it.
        limit = std::min(limit, node.stream->credit());
        for (size_t slot = 0; slot < wire::kHoldWords; ++slot) {
            if (const uint64_t word = node.line->holds[slot].load(); word != 0) {
                // A word that is no hold is ignored: only that member's reader can lose by it.
                if (auto held = wire::decode_hold(word, ring_.data_bytes(), ring_.unpublished_tail())) {
                    holds.push_back({held->position, held->bytes});
                }
            }
        }
    }
    reclaim_limit_ = limit;
    return limit;
}

EntryHeader* Node::append_data(uint32_t group_id, ProcessId process, uint16_t flags, uint32_t total_bytes,
                               uint32_t length)
{
    if (length >= delivery::kInPlaceDeliveryMinBytes) {
        flags |= delivery::kFlagPayloadOnPage;
    }
    // The last computed limit is still safe (readers only move forward); recompute it
    // only when it is in the way.
    EntryHeader* entry = ring_.append(EntryKind::data, flags, length, reclaim_limit_);
    if (entry == nullptr) {
        entry = ring_.append(EntryKind::data, flags, length, reclaim_limit());
        if (entry == nullptr) {
            ++counters_.ring_full_events;
            return nullptr;
        }
    }
    entry->group_id = group_id;
    entry->nodeid = process.nodeid;
    entry->pid = process.pid;
    entry->total_bytes = total_bytes;
    entry->origin_seq = current_origin_;
    note_safe(ring_.last_position(), ring_.unpublished_tail(), flags);
    ++counters_.messages_sequenced;
    counters_.bytes_sequenced += length;
    // Sequencing writes into this node's own ring: delivered here as on every other node.
    ++counters_.messages_delivered;
    counters_.bytes_delivered += length;
    return entry;
}

bool Node::local_sequencing_blocked() const
{
    // A new sequencer first repairs its ring, announces the nodes that are gone, and
    // sequences what its own clients had forwarded to the failed one: their later
    // submissions belong after the new view and must not overtake those. A node removal
    // comes before anything new as well.
    return !resequencing_ && current_origin_ == 0 &&
           (election_.has_value() || !forwarded_.empty() || !pending_removals_.empty());
}

bool Node::sequence_data(uint32_t group_id, ProcessId process, uint16_t flags, uint32_t total_bytes,
                         std::span<const std::byte> payload)
{
    if (local_sequencing_blocked()) {
        return false;
    }
    EntryHeader* entry = append_data(group_id, process, flags, total_bytes, static_cast<uint32_t>(payload.size()));
    if (entry == nullptr) {
        return false;
    }
    std::memcpy(ring_.payload(entry), payload.data(), payload.size());
    local_.on_entry(group_id);
    return true;
}

bool Node::sequence_data_by_device(uint32_t group_id, ProcessId process, uint16_t flags, uint32_t total_bytes,
                                   transport::LocalSlice source)
{
    if (local_sequencing_blocked()) {
        return false;
    }
    if (copier_.full()) {
        flush_device_copies();
        if (copier_.full()) {
            return false;  // the send queue is full: retry once copies completed
        }
    }
    EntryHeader* entry = append_data(group_id, process, flags, total_bytes, source.bytes);
    if (entry == nullptr) {
        return false;
    }
    copier_.stage(ring_.last_position(), source, static_cast<uint64_t>(ring_.payload(entry) - ring_.data()));
    ++counters_.messages_copied_by_device;
    counters_.bytes_copied_by_device += source.bytes;
    local_.on_entry(group_id);
    return true;
}

bool Node::sequence_change(const GroupName& name, ProcessId process, delivery::Reason reason)
{
    if (local_sequencing_blocked()) {
        return false;
    }
    if (reason != delivery::reason_join) {
        return sequence_removal(name, {process}, reason);
    }
    const uint32_t payload_bytes = confchg_payload_bytes(0, 1, groups_.members(name).size() + 1);
    // Room first, so a full ring leaves the membership untouched.
    const uint64_t limit = reclaim_limit();
    if (!ring_.has_room(0, payload_bytes, limit)) {
        ++counters_.ring_full_events;
        return false;
    }
    write_confchg(groups_.join(name, process), process, limit);
    return true;
}

bool Node::sequence_removal(const GroupName& name, const std::vector<ProcessId>& processes, delivery::Reason reason)
{
    size_t leaving = 0;
    for (ProcessId process : processes) {
        leaving += groups_.is_member(name, process) ? 1 : 0;
    }
    if (leaving == 0) {
        return true;  // nothing to announce
    }
    const uint32_t payload_bytes = confchg_payload_bytes(leaving, 0, groups_.members(name).size() - leaving);
    const uint64_t limit = reclaim_limit();
    if (!ring_.has_room(0, payload_bytes, limit)) {
        ++counters_.ring_full_events;
        return false;
    }
    write_confchg(*groups_.remove(name, processes, reason), processes.front(), limit);
    return true;
}

void Node::write_confchg(const GroupChange& change, ProcessId process, uint64_t limit)
{
    const uint32_t payload_bytes = confchg_payload_bytes(change.left.size(), change.joined.size(), change.members.size());
    EntryHeader* entry = ring_.append(EntryKind::confchg, 0, payload_bytes, limit);
    entry->group_id = change.group_id;
    entry->nodeid = process.nodeid;
    entry->pid = process.pid;
    entry->origin_seq = current_origin_;
    ConfchgPayload header{};
    header.left_count = static_cast<uint32_t>(change.left.size());
    header.joined_count = static_cast<uint32_t>(change.joined.size());
    header.member_count = static_cast<uint32_t>(change.members.size());
    header.group_length = change.name.length;
    std::memcpy(header.group_value, change.name.value.data(), change.name.length);
    std::byte* out = ring_.payload(entry);
    std::memcpy(out, &header, sizeof(header));
    out += sizeof(header);
    for (const auto* list : {&change.left, &change.joined, &change.members}) {
        if (!list->empty()) {
            std::memcpy(out, list->data(), list->size() * sizeof(delivery::MemberAddress));
        }
        out += list->size() * sizeof(delivery::MemberAddress);
    }
    ++counters_.confchgs_sequenced;
    local_.on_entry(change.group_id);
}

bool Node::sequence_totem()
{
    const wire::TotemConf totem{config_.nodeid, view_.ring_seq, view_.members};
    const std::vector<std::byte> payload = wire::encode_totem(totem);
    EntryHeader* entry =
        ring_.append(EntryKind::totem_confchg, 0, static_cast<uint32_t>(payload.size()), reclaim_limit());
    if (entry == nullptr) {
        ++counters_.ring_full_events;
        return false;
    }
    entry->nodeid = config_.nodeid;
    std::memcpy(ring_.payload(entry), payload.data(), payload.size());
    local_.on_entry(LocalSide::kTotemEntries);
    return true;
}

}  // namespace rcpg::ordering
