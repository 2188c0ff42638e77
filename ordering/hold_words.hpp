// HoldWords: which of a member's held payloads its sequencer knows of.
//
// A reader may keep a delivered payload in place past the credit (zero-copy delivery
// hands out pointers into the ring): a hold. Where this node writes its own ring the
// writer simply goes round the holds. A member's ring is written by the sequencer, so
// the member tells it of its holds in wire::kHoldWords words of its line there, and the
// sequencer's writer goes round those. Each hold keeps its word while it lasts (a hold
// the writer went round must never lose it: the credit could not stay before it a lap
// on); an ended hold frees its word; a new one takes a free word. More holds than words:
// the first ones by position get one, and the credit stays before the first without.
// The writes are Node's (node_member.cpp); this decides what they carry.
#pragma once

#include "ordering/cluster_wire.hpp"
#include "ordering/delivery_ring.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace rcpg::ordering {

class HoldWords {
public:
    using Words = std::array<uint64_t, wire::kHoldWords>;
    struct Plan {
        Words words{};
        size_t placed = 0;   // how many of the holds, the first ones by position, have a word
        bool write = false;  // the words must be written (changed, or not yet to this sequencer)
    };

    // Nothing to do: no holds now, none published, and this sequencer knows that.
    bool settled(bool no_holds) const { return no_holds && published_ == Words{} && !unwritten_; }
    // The words for `holds`, sorted by position.
    Plan plan(std::span<const DeliveryRing::Hold> holds, uint64_t ring_bytes) const;
    // The words of a plan reached the sequencer's send queue.
    void written(const Words& words)
    {
        published_ = words;
        unwritten_ = false;
    }
    // Under a new sequencer nothing is known of what its words say: the next plan writes
    // them all. The holds keep their words.
    void new_sequencer() { unwritten_ = true; }
    // Whether the sequencer goes round `hold`: it has a word there.
    bool published(const DeliveryRing::Hold& hold, uint64_t ring_bytes) const;

    // `limit`, kept before the first hold (of `holds`, by position) from `placed` on: the
    // sequencer does not know of those, so it must not come round to them. A filler's
    // header fits before the held bytes (DeliveryRing::slot_for).
    static uint64_t credit_before(uint64_t limit, std::span<const DeliveryRing::Hold> holds, size_t placed);

private:
    Words published_{};
    bool unwritten_ = true;
};

}  // namespace rcpg::ordering
