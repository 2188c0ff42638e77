// The node's delivery ring, writer side. Entries are appended in sequence order and
// become visible to clients only when publish() advances the shared tail, so a reader
// never sees a partly written entry.
#pragma once

#include "libcpg/ipc/shm.hpp"
#include "delivery/ring_format.hpp"

#include <cstdint>
#include <deque>
#include <span>
#include <vector>

namespace rcpg::ordering {

class DeliveryRing {
public:
    // `data_bytes` must be a power of two, at least four of the largest entries.
    static bool valid_size(uint64_t data_bytes)
    {
        return delivery::is_power_of_two(data_bytes) && data_bytes >= 4 * delivery::kMaxEntryBytes && data_bytes <= (1ull << 31);
    }

    DeliveryRing(uint64_t data_bytes, uint32_t nodeid);
    bool valid() const { return static_cast<bool>(mapping_); }

    // A new read-only descriptor for a client.
    ipc::UniqueFd read_only_fd() const { return ipc::reopen_read_only(fd_.get()); }

    // Reserves room for an entry with `payload_bytes` and fills its header. `reclaim_limit`
    // is the lowest position some reader still needs: nothing at or after it may be
    // overwritten. Returns nullptr when the ring has no room now.
    delivery::EntryHeader* append(delivery::EntryKind kind, uint16_t flags, uint32_t payload_bytes,
                             uint64_t reclaim_limit);

    // Whether append() with these arguments would succeed now.
    bool has_room(uint16_t flags, uint32_t payload_bytes, uint64_t reclaim_limit) const;

    // Payloads readers still hold in a callback (delivered in place) although the reclaim
    // limit has passed them (their entries were moved to a backlog meanwhile): [position,
    // position + bytes), whole pages. The writer goes round them: where a new entry would
    // overlap one on a later lap, a skip entry covers up to its end, so the held bytes stay
    // as they are (a filler's header lies before a payload's pages). Two sets: this node's
    // readers' (set_holds, by the local side: replaces the last set) and, at the
    // sequencer, the other nodes' readers' (remote_holds(), kept by the node from what
    // the members publish): every node's ring has the same layout, so a skip here is a
    // skip in every ring.
    struct Hold {
        uint64_t position;
        uint64_t bytes;
    };
    void set_holds(std::vector<Hold> holds) { holds_ = std::move(holds); }
    const std::vector<Hold>& holds() const { return holds_; }
    std::vector<Hold>& remote_holds() { return remote_holds_; }

    // The insides of the skip entries of about the last lap, in ring order: bytes no
    // reader reads, which replication leaves out. Where a member's reader holds a
    // payload, they are its bytes, and this ring may not have them (a node that took
    // over after the hold was taken was admitted after that entry, or never got it).
    struct Range {
        uint64_t begin;
        uint64_t end;
    };
    const std::deque<Range>& skip_insides() const { return skip_insides_; }

    std::byte* payload(delivery::EntryHeader* entry)
    {
        return reinterpret_cast<std::byte*>(entry) + entry->payload_offset;
    }

    // Position of the entry most recently appended.
    uint64_t last_position() const { return last_position_; }
    uint64_t unpublished_tail() const { return tail_; }
    uint64_t published_tail() const { return published_tail_; }
    uint64_t next_seq() const { return next_seq_; }
    uint64_t data_bytes() const { return data_bytes_; }
    bool has_unpublished() const { return tail_ != published_tail_; }

    // Makes everything appended so far visible to readers; or only what lies before
    // `up_to` (an entry boundary: entries after it are not complete yet).
    void publish();
    void publish(uint64_t up_to);

    // Multi-node, on a node that is not the sequencer: entries arrive by RDMA at the
    // sequencer's positions. start_at() places an empty ring at the position the node was
    // admitted at (before any client reads it), leaving the sequencer's cluster_tail
    // word as it is; adopt() takes the checked entry
    // [last_position, tail) as appended, for publish().
    void start_at(uint64_t position, uint64_t next_seq);
    void adopt(uint64_t last_position, uint64_t tail, uint64_t next_seq);

    // The whole mapping (header page, then data): what the sequencer writes into.
    void* mapping_address() const { return mapping_.get(); }
    size_t mapping_bytes() const { return mapping_.size(); }
    const std::byte* data() const { return data_; }

    delivery::RingHeader& header() { return *reinterpret_cast<delivery::RingHeader*>(mapping_.get()); }

private:
    struct Slot {
        uint64_t position;  // from tail_ to here: fillers (a pad to the ring's end, skips)
        delivery::EntryPlacement placement;
    };
    // `write_fillers`: also writes the fillers (append), else only finds the slot.
    Slot slot_for(uint16_t flags, uint32_t payload_bytes, bool write_fillers);
    Slot find_slot(uint16_t flags, uint32_t payload_bytes) const
    {
        return const_cast<DeliveryRing*>(this)->slot_for(flags, payload_bytes, false);
    }
    // The end of a hold that [position, position + bytes) overlaps on this lap, or 0.
    uint64_t held_until(uint64_t position, uint64_t bytes) const;
    void write_filler(uint64_t position, uint64_t bytes, delivery::EntryKind kind);
    bool fits(const Slot& slot, uint64_t reclaim_limit) const
    {
        return slot.position + slot.placement.entry_bytes - reclaim_limit <= data_bytes_;
    }

    std::byte* at(uint64_t position) { return data_ + (position & (data_bytes_ - 1)); }

    uint64_t data_bytes_;
    ipc::UniqueFd fd_;
    ipc::Mapping mapping_;
    std::byte* data_ = nullptr;
    uint64_t tail_ = 0;
    uint64_t published_tail_ = 0;
    uint64_t last_position_ = 0;
    uint64_t next_seq_ = 1;
    std::vector<Hold> holds_;
    std::vector<Hold> remote_holds_;
    std::deque<Range> skip_insides_;
};

}  // namespace rcpg::ordering
