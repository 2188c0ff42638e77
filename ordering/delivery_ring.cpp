#include "ordering/delivery_ring.hpp"

#include "base/assert.hpp"

#include <algorithm>
#include <cstring>
#include <new>

namespace rcpg::ordering {

using delivery::EntryHeader;
using delivery::kPageBytes;

DeliveryRing::DeliveryRing(uint64_t data_bytes, uint32_t nodeid) : data_bytes_(data_bytes)
{
    if (!valid_size(data_bytes)) {
        return;
    }
    fd_ = ipc::create_sealed_memfd("rcpg-delivery-ring", kPageBytes + data_bytes, false);
    if (!fd_) {
        return;
    }
    mapping_ = ipc::map_fd(fd_.get(), kPageBytes + data_bytes, 0, ipc::Access::read_write);
    // This mapping is the only way anyone writes the ring: clients get descriptors of it
    // that nothing they do makes writable.
    if (!mapping_ || !ipc::seal_writes(fd_.get())) {
        mapping_.reset();
        return;
    }
    auto* ring = new (mapping_.get()) delivery::RingHeader{};
    ring->magic = delivery::kRingMagic;
    ring->version = delivery::kRingFormatVersion;
    ring->data_bytes = data_bytes;
    ring->nodeid = nodeid;
    data_ = mapping_.bytes() + kPageBytes;
}

uint64_t DeliveryRing::held_until(uint64_t position, uint64_t bytes) const
{
    // The same bytes come round once a lap: the held ones are at hold.position + k laps.
    for (const std::vector<Hold>* set : {&holds_, &remote_holds_}) {
        for (const Hold& hold : *set) {
            if (position + bytes <= hold.position + data_bytes_) {
                continue;  // not past the held bytes' own lap
            }
            const uint64_t last_lap = (position + bytes - 1 - hold.position) / data_bytes_;
            for (uint64_t lap = last_lap - 1; lap <= last_lap; ++lap) {
                const uint64_t start = hold.position + lap * data_bytes_;
                if (lap != 0 && position < start + hold.bytes && start < position + bytes) {
                    return start + hold.bytes;
                }
            }
        }
    }
    return 0;
}

void DeliveryRing::write_filler(uint64_t position, uint64_t bytes, delivery::EntryKind kind)
{
    // Only the size and kind: a reader reads nothing else of a filler, and a skip's other
    // bytes are a held entry's.
    auto* filler = reinterpret_cast<EntryHeader*>(at(position));
    filler->entry_bytes = static_cast<uint32_t>(bytes);
    filler->kind = kind;
    if (kind == delivery::EntryKind::skip && bytes > delivery::kEntryAlignBytes) {
        // A stream never lags more than a lap (credits): older insides are not needed.
        while (!skip_insides_.empty() && skip_insides_.front().end + data_bytes_ <= position) {
            skip_insides_.pop_front();
        }
        skip_insides_.push_back({position + delivery::kEntryAlignBytes, position + bytes});
    }
}

DeliveryRing::Slot DeliveryRing::slot_for(uint16_t flags, uint32_t payload_bytes, bool write_fillers)
{
    const bool on_page = (flags & delivery::kFlagPayloadOnPage) != 0;
    Slot slot{tail_, delivery::place_entry(tail_, payload_bytes, on_page)};
    while (true) {
        const uint64_t room_to_end = data_bytes_ - (slot.position & (data_bytes_ - 1));
        uint64_t filler_end = 0;
        delivery::EntryKind filler = delivery::EntryKind::pad;
        if (slot.placement.entry_bytes > room_to_end) {
            // Entries never wrap: fill the end of the ring and start again at its beginning.
            filler_end = slot.position + room_to_end;
        } else if (!holds_.empty() || !remote_holds_.empty()) {
            // An entry that would end right where held bytes begin is refused too: the
            // next one could not start there, not even as a filler (whose own 8 bytes
            // must not land on held bytes), and the writer would find no room until the
            // hold ends. The skip starts here instead.
            filler_end = held_until(slot.position, slot.placement.entry_bytes + delivery::kEntryAlignBytes);
            filler = delivery::EntryKind::skip;
        }
        if (filler_end == 0) {
            return slot;
        }
        if (filler == delivery::EntryKind::skip && held_until(slot.position, delivery::kEntryAlignBytes) != 0) {
            // Inside held bytes (the payload of an entry held in place): cannot be, since the
            // writer never passes a hold it knows of; find no room rather than write there.
            slot.position = UINT64_MAX / 2;
            return slot;
        }
        if (write_fillers) {
            write_filler(slot.position, filler_end - slot.position, filler);
        }
        slot.position = filler_end;
        slot.placement = delivery::place_entry(slot.position, payload_bytes, on_page);
    }
}

bool DeliveryRing::has_room(uint16_t flags, uint32_t payload_bytes, uint64_t reclaim_limit) const
{
    return fits(find_slot(flags, payload_bytes), reclaim_limit);
}

EntryHeader* DeliveryRing::append(delivery::EntryKind kind, uint16_t flags, uint32_t payload_bytes,
                                  uint64_t reclaim_limit)
{
    const Slot found = find_slot(flags, payload_bytes);
    if (!fits(found, reclaim_limit)) {
        return nullptr;
    }
    const Slot slot = slot_for(flags, payload_bytes, true);
    const uint64_t position = slot.position;
    const delivery::EntryPlacement placement = slot.placement;
    // The room was judged on the same placement, and the writer never goes back.
    RCPG_ASSERT(position == found.position && position >= tail_, "entry placed at {}, room judged at {}, tail {}",
                position, found.position, tail_);
    RCPG_DEBUG_ASSERT(held_until(position, placement.entry_bytes) == 0, "entry at {} over held bytes", position);
    auto* entry = reinterpret_cast<EntryHeader*>(at(position));
    entry->entry_bytes = placement.entry_bytes;
    entry->kind = kind;
    entry->flags = flags;
    entry->seq = next_seq_++;
    entry->group_id = 0;
    entry->nodeid = 0;
    entry->pid = 0;
    entry->payload_bytes = payload_bytes;
    entry->payload_offset = placement.payload_offset;
    entry->total_bytes = payload_bytes;
    entry->origin_seq = 0;
    last_position_ = position;
    tail_ = position + placement.entry_bytes;
    return entry;
}

void DeliveryRing::start_at(uint64_t position, uint64_t next_seq)
{
    tail_ = published_tail_ = last_position_ = position;
    next_seq_ = next_seq;
    header().tail.store(position, std::memory_order_seq_cst);
    // cluster_tail is the sequencer's word: its tail of the entries that follow the
    // snapshot may have landed already, and must not be undone here (Node::begin_session
    // clears the word before asking to be admitted).
}

void DeliveryRing::adopt(uint64_t last_position, uint64_t tail, uint64_t next_seq)
{
    // What a member applies only goes forward, one checked entry after the other.
    RCPG_ASSERT(tail >= tail_ && last_position < tail && next_seq >= next_seq_,
                "adopting tail {} (last entry {}, next seq {}) after tail {}, next seq {}", tail, last_position,
                next_seq, tail_, next_seq_);
    last_position_ = last_position;
    tail_ = tail;
    next_seq_ = next_seq;
}

void DeliveryRing::publish() { publish(tail_); }

void DeliveryRing::publish(uint64_t up_to)
{
    const uint64_t tail = std::min(up_to, tail_);
    RCPG_DEBUG_ASSERT(tail % delivery::kEntryAlignBytes == 0, "publishing up to {}, not an entry boundary", tail);
    if (tail > published_tail_) {
        published_tail_ = tail;
        header().tail.store(tail, std::memory_order_seq_cst);  // see Daemon::publish_and_wake
    }
}

}  // namespace rcpg::ordering
