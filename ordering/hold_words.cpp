#include "ordering/hold_words.hpp"

#include "base/assert.hpp"

#include <algorithm>
#include <vector>

namespace rcpg::ordering {

HoldWords::Plan HoldWords::plan(std::span<const DeliveryRing::Hold> holds, uint64_t ring_bytes) const
{
    RCPG_DEBUG_ASSERT(std::is_sorted(holds.begin(), holds.end(),
                                     [](const auto& a, const auto& b) { return a.position < b.position; }),
                      "holds not by position");
    std::vector<uint64_t> wanted;
    wanted.reserve(holds.size());
    for (const DeliveryRing::Hold& hold : holds) {
        wanted.push_back(wire::encode_hold(hold.position, hold.bytes, ring_bytes));
    }
    Plan plan;
    plan.words = published_;
    for (uint64_t& word : plan.words) {
        if (std::find(wanted.begin(), wanted.end(), word) == wanted.end()) {
            word = 0;
        }
    }
    for (const uint64_t word : wanted) {
        if (std::find(plan.words.begin(), plan.words.end(), word) == plan.words.end()) {
            auto free = std::find(plan.words.begin(), plan.words.end(), uint64_t{0});
            if (free == plan.words.end()) {
                break;
            }
            *free = word;
        }
        ++plan.placed;
    }
    plan.write = plan.words != published_ || unwritten_;
    return plan;
}

bool HoldWords::published(const DeliveryRing::Hold& hold, uint64_t ring_bytes) const
{
    const uint64_t word = wire::encode_hold(hold.position, hold.bytes, ring_bytes);
    return std::find(published_.begin(), published_.end(), word) != published_.end();
}

uint64_t HoldWords::credit_before(uint64_t limit, std::span<const DeliveryRing::Hold> holds, size_t placed)
{
    if (placed >= holds.size()) {
        return limit;
    }
    return std::min(limit, holds[placed].position - delivery::kEntryAlignBytes);
}

}  // namespace rcpg::ordering
