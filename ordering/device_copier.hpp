// The sequencer's device copies into its own ring: a payload above the inline limit goes
// from the sender's registered memory (a local client's arena, a member's inbound ring)
// into the ring by an RDMA write over the loopback connection, so no CPU touches it.
// Copies are staged as their entries are appended and posted as one list, whose last
// write alone is signalled with a batch number (RC completes a list in order). Until a
// batch completed, the entries it fills are not complete: publication and replication
// stop at the first of them (complete_tail).
#pragma once

#include "transport/transport.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace rcpg::ordering {

class DeviceCopier {
public:
    // Copies staged at most before they must be posted (one post list).
    static constexpr size_t kMaxStaged = 64;

    DeviceCopier() { staged_.reserve(kMaxStaged); }
    DeviceCopier(const DeviceCopier&) = delete;
    DeviceCopier& operator=(const DeviceCopier&) = delete;

    // The ring as the loopback connection reaches it; copies only once it is known.
    void attach(transport::RemoteRegion own_ring) { own_ring_ = own_ring; }
    void detach() { own_ring_.reset(); }
    bool attached() const { return own_ring_.has_value(); }

    bool full() const { return staged_.size() == kMaxStaged; }
    bool has_staged() const { return !staged_.empty(); }
    // Stages the copy of `source` to `payload_offset` in the ring, for the entry that
    // starts at ring position `entry_position` (appended after every staged one). Only
    // while attached() and not full().
    void stage(uint64_t entry_position, transport::LocalSlice source, uint64_t payload_offset);
    // Posts the staged copies to `self` (the loopback) as batch `batch`. On an error
    // (try_again: the send queue is full) nothing was posted and the copies stay staged.
    transport::Status flush(transport::Transport& transport, transport::NodeId self, uint64_t batch);
    // Every batch up to `batch` completed: the entries they fill are complete.
    void completed(uint64_t batch);
    // Where the complete entries end, given the ring's tail: at the first entry a copy
    // staged or in flight still fills, else the tail.
    uint64_t complete_tail(uint64_t tail) const;

private:
    struct Batch {
        uint64_t batch;
        uint64_t first_position;  // of the first entry it fills
    };
    std::optional<transport::RemoteRegion> own_ring_;
    std::vector<transport::WriteRequest> staged_;
    // The writes point at these: stable storage for as long as they are staged.
    std::array<transport::LocalSlice, kMaxStaged> sources_{};
    uint64_t first_staged_position_ = 0;
    uint64_t last_staged_position_ = 0;
    std::deque<Batch> in_flight_;
};

}  // namespace rcpg::ordering
