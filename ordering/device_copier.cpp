#include "ordering/device_copier.hpp"

#include "base/assert.hpp"

namespace rcpg::ordering {

void DeviceCopier::stage(uint64_t entry_position, transport::LocalSlice source, uint64_t payload_offset)
{
    RCPG_ASSERT(own_ring_.has_value() && !full(), "staging a device copy with {} staged{}", staged_.size(),
                own_ring_ ? "" : " and no loopback");
    RCPG_ASSERT(staged_.empty() || entry_position > last_staged_position_,
                "device copy for the entry at {} staged after one at {}", entry_position, last_staged_position_);
    if (staged_.empty()) {
        first_staged_position_ = entry_position;
    }
    last_staged_position_ = entry_position;
    sources_[staged_.size()] = source;
    transport::WriteRequest& copy = staged_.emplace_back();
    copy.sources = {&sources_[staged_.size() - 1], 1};
    copy.destination = own_ring_->at(payload_offset);
}

transport::Status DeviceCopier::flush(transport::Transport& transport, transport::NodeId self, uint64_t batch)
{
    if (staged_.empty()) {
        return {};
    }
    RCPG_ASSERT(in_flight_.empty() || batch > in_flight_.back().batch, "device copy batch {} after batch {}", batch,
                in_flight_.back().batch);
    staged_.back().signaled = true;
    staged_.back().wr_id = batch;
    if (transport::Status status = transport.post_writes(self, staged_); !status) {
        staged_.back().signaled = false;
        return status;
    }
    in_flight_.push_back({batch, first_staged_position_});
    staged_.clear();
    return {};
}

void DeviceCopier::completed(uint64_t batch)
{
    while (!in_flight_.empty() && in_flight_.front().batch <= batch) {
        in_flight_.pop_front();
    }
}

uint64_t DeviceCopier::complete_tail(uint64_t tail) const
{
    if (!in_flight_.empty()) {
        return in_flight_.front().first_position;
    }
    return staged_.empty() ? tail : first_staged_position_;
}

}  // namespace rcpg::ordering
