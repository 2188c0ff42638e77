// ForwardLog: a member's records sent to the sequencer and not yet seen in the ring.
//
// Every record a member forwards gets the next origin number (from 1), and the sequencer
// writes that number into the entry it makes of it. Entries of one node reach the ring in
// the order of their numbers, so a number the ring showed ends the wait of that record
// and of every one before it. The rest stays here: if the sequencer fails, the next one
// may never have seen them, and the member sends them again from the first one (the
// resend cursor), or sequences them itself if it takes over.
//
// A data record is sent from the caller's registered memory, which therefore stays the
// caller's until the record is in the ring *and* the commit that carried it completed:
// released() gives the last batch for which both hold. Node keeps the writer and the
// commits; this is the bookkeeping only, with no transport of its own.
#pragma once

#include "ordering/cluster_wire.hpp"
#include "transport/transport.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

namespace rcpg::ordering {

class ForwardLog {
public:
    struct Record {
        uint64_t origin_seq = 0;
        uint64_t batch = 0;  // the commit that first carried it
        wire::InboundType type = wire::InboundType::data;
        // Data: where the prefix and the payload lie (the caller's memory, until released).
        std::array<transport::LocalSlice, transport::kMaxSourcesPerWrite> parts{};
        size_t part_count = 0;
        std::vector<std::byte> bytes;  // group operations: the record, copied
        std::span<const transport::LocalSlice> sources() const { return {parts.data(), part_count}; }
    };

    // A data record gathered from `parts` (at most kMaxSourcesPerWrite), sent in `batch`.
    const Record& add_data(std::span<const transport::LocalSlice> parts, uint64_t batch);
    // A record sent as a copy (group operations).
    const Record& add_copy(wire::InboundType type, std::vector<std::byte> bytes, uint64_t batch);
    uint64_t next_origin() const { return next_origin_; }

    // The ring carried this node's record `origin_seq`: it and every earlier one are
    // sequenced. (That the number is the next one due is the caller's check: it knows
    // what the ring showed before.)
    void sequenced(uint64_t origin_seq);
    bool empty() const { return records_.empty(); }
    size_t size() const { return records_.size(); }
    const Record& front() const { return records_.front(); }
    // A record this node sequenced itself after taking over.
    void pop_front() { records_.pop_front(); }

    // The last batch whose records are all in the ring, of those up to `completed_batch`
    // (whose commits completed).
    uint64_t released(uint64_t completed_batch) const;
    // released(), once: 0 unless it moved past what was reported before.
    uint64_t newly_released(uint64_t completed_batch);

    // Under a new sequencer: every record still here is sent again, from the first.
    void begin_resend() { resend_next_ = records_.empty() ? 0 : records_.front().origin_seq; }
    bool resending() const { return resend_next_ != 0; }
    // The record to send again next (nullptr: the resend is over). Records sequenced
    // meanwhile are skipped.
    const Record* next_resend();
    // The one next_resend() gave was sent.
    void resent() { ++resend_next_; }

private:
    std::deque<Record> records_;
    uint64_t next_origin_ = 1;
    uint64_t resend_next_ = 0;  // origin of the next record to send again; 0: none
    uint64_t reported_batch_ = 0;
};

}  // namespace rcpg::ordering
