#include "ordering/election.hpp"

#include "base/assert.hpp"

#include <algorithm>

namespace rcpg::ordering {

Election::Election(uint32_t self, std::vector<uint32_t> members, Rejoin own, uint64_t started_ms,
                   uint64_t deadline_ms)
    : self_(self), members_(std::move(members)), started_ms_(started_ms), deadline_ms_(deadline_ms)
{
    RCPG_ASSERT(std::is_sorted(members_.begin(), members_.end()), "an unsorted view");
    rejoined_[self_] = own;
}

bool Election::accepts(uint32_t nodeid, const std::set<uint32_t>& suspects) const
{
    return nodeid != self_ && std::binary_search(members_.begin(), members_.end(), nodeid) &&
           !suspects.contains(nodeid) && !target_;
}

void Election::add(uint32_t nodeid, Rejoin rejoin)
{
    RCPG_ASSERT(nodeid != self_ && !target_, "node {} added after the target was fixed, or as this node", nodeid);
    rejoined_[nodeid] = rejoin;
}

void Election::lose(uint32_t nodeid)
{
    if (nodeid == self_) {
        return;
    }
    rejoined_.erase(nodeid);
    if (target_ && holder_ == nodeid) {
        target_.reset();
        reads_pending_ = 0;
    }
}

bool Election::answers_in(const std::set<uint32_t>& suspects, uint64_t now_ms) const
{
    if (now_ms >= deadline_ms_) {
        return true;
    }
    return std::all_of(members_.begin(), members_.end(), [&](uint32_t nodeid) {
        return nodeid == self_ || suspects.contains(nodeid) || rejoined_.contains(nodeid);
    });
}

std::vector<uint32_t> Election::survivors() const
{
    std::vector<uint32_t> nodes;
    for (const auto& [nodeid, rejoin] : rejoined_) {
        nodes.push_back(nodeid);
    }
    return nodes;
}

void Election::fix_target()
{
    uint64_t target = rejoined_.at(self_).tail;
    uint32_t holder = self_;
    for (const auto& [nodeid, rejoin] : rejoined_) {
        if (rejoin.tail > target) {
            target = rejoin.tail;
            holder = nodeid;
        }
    }
    target_ = target;
    holder_ = holder;
    reads_pending_ = 0;
}

void Election::read_completed(uint32_t peer)
{
    if (target_ && peer == holder_ && reads_pending_ > 0) {
        --reads_pending_;
    }
}

}  // namespace rcpg::ordering
