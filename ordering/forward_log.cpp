#include "ordering/forward_log.hpp"

#include "base/assert.hpp"

#include <algorithm>

namespace rcpg::ordering {

const ForwardLog::Record& ForwardLog::add_data(std::span<const transport::LocalSlice> parts, uint64_t batch)
{
    RCPG_ASSERT(parts.size() <= transport::kMaxSourcesPerWrite, "a record of {} parts", parts.size());
    RCPG_ASSERT(records_.empty() || records_.back().batch <= batch, "batch {} after batch {}", batch,
                records_.back().batch);
    Record& record = records_.emplace_back();
    record.origin_seq = next_origin_++;
    record.batch = batch;
    record.type = wire::InboundType::data;
    std::copy(parts.begin(), parts.end(), record.parts.begin());
    record.part_count = parts.size();
    return record;
}

const ForwardLog::Record& ForwardLog::add_copy(wire::InboundType type, std::vector<std::byte> bytes, uint64_t batch)
{
    RCPG_ASSERT(records_.empty() || records_.back().batch <= batch, "batch {} after batch {}", batch,
                records_.back().batch);
    Record& record = records_.emplace_back();
    record.origin_seq = next_origin_++;
    record.batch = batch;
    record.type = type;
    record.bytes = std::move(bytes);
    return record;
}

void ForwardLog::sequenced(uint64_t origin_seq)
{
    RCPG_ASSERT(origin_seq < next_origin_, "record {} sequenced, but only {} were sent", origin_seq,
                next_origin_ - 1);
    while (!records_.empty() && records_.front().origin_seq <= origin_seq) {
        records_.pop_front();
    }
}

uint64_t ForwardLog::released(uint64_t completed_batch) const
{
    // The first record still waiting keeps its batch, and every later one, the caller's.
    return records_.empty() ? completed_batch : std::min(completed_batch, records_.front().batch - 1);
}

uint64_t ForwardLog::newly_released(uint64_t completed_batch)
{
    const uint64_t batch = released(completed_batch);
    if (batch <= reported_batch_) {
        return 0;
    }
    reported_batch_ = batch;
    return batch;
}

const ForwardLog::Record* ForwardLog::next_resend()
{
    if (resend_next_ == 0) {
        return nullptr;
    }
    if (records_.empty() || resend_next_ > records_.back().origin_seq) {
        resend_next_ = 0;
        return nullptr;
    }
    resend_next_ = std::max(resend_next_, records_.front().origin_seq);
    return &records_[resend_next_ - records_.front().origin_seq];
}

}  // namespace rcpg::ordering
