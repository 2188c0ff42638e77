// RingApplier: a member's checks of what its sequencer wrote into its ring, entry by
// entry, and how far it applied.
//
// The sequencer writes entries into the member's ring and then the position they end at
// (the ring header's cluster_tail, "committed"). Nothing there is trusted: the committed
// position must lie within one lap of what was applied and be aligned; every entry up to
// it must pass the same checks libcpg makes of what it reads (delivery/ring_entry.hpp),
// lie whole before the committed position, and carry the next sequence number (fillers
// carry none). A checked entry is adopted: the ring's tail and next sequence number move
// past it, ready for publication. What an entry means (a message, a confchg, a view) is
// Node's to apply (node_member.cpp). The same walk checks what a node taking over read
// from a survivor's ring to repair its own (node_failover.cpp).
#pragma once

#include "base/status.hpp"
#include "delivery/ring_format.hpp"
#include "ordering/delivery_ring.hpp"

#include <cstdint>
#include <optional>
#include <span>

namespace rcpg::ordering {

class RingApplier {
public:
    struct Entry {
        delivery::EntryHeader header{};
        uint64_t position = 0;
        std::span<const std::byte> payload;  // in the ring
    };

    explicit RingApplier(DeliveryRing& ring) : ring_(ring) {}

    // How far the ring was checked and applied.
    uint64_t processed() const { return processed_; }
    // Admitted with a snapshot: the ring starts at `position`, with `next_seq` due next.
    void start_at(uint64_t position, uint64_t next_seq);

    // Whether `committed` can be the sequencer's: aligned, and at most one lap past what
    // was applied (it never writes over what this node has not applied).
    base::Status check_committed(uint64_t committed) const;
    // The next entry that is not a filler, checked and adopted; nothing once `committed`
    // is reached (which check_committed accepted). An error says what lies there: the
    // ring stays as it was before that entry.
    base::Result<std::optional<Entry>> next(uint64_t committed);

private:
    DeliveryRing& ring_;
    uint64_t processed_ = 0;
};

}  // namespace rcpg::ordering
