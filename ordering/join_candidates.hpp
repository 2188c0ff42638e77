// JoinCandidates: whom a starting node asks to be admitted, in turn. Every node starts by
// looking for a running cluster, since after a failover its sequencer need not be the
// first of the sequencer order: it asks every other node of the order, one after the
// other; the one that sequences admits it, the others refuse. Only the first node of the
// order may start a cluster, and only after two whole rounds in which every other node
// was unreachable or refused. The connections and the waiting between rounds are Node's
// (node_failover.cpp).
#pragma once

#include "base/assert.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace rcpg::ordering {

class JoinCandidates {
public:
    // `order`: the complete sequencer order, `self` among them.
    JoinCandidates(const std::vector<uint32_t>& order, uint32_t self) : self_(self), first_in_order_(order.front())
    {
        for (uint32_t nodeid : order) {
            if (nodeid != self) {
                candidates_.push_back(nodeid);
            }
        }
        RCPG_ASSERT(!candidates_.empty(), "node {} has no other node to ask", self);
    }

    uint32_t current() const { return candidates_[next_]; }
    // Moves to the next node to ask; true when that began a new round.
    bool advance()
    {
        next_ = (next_ + 1) % candidates_.size();
        if (next_ != 0) {
            return false;
        }
        ++rounds_;
        return true;
    }
    uint32_t rounds() const { return rounds_; }
    // No cluster runs that this node can reach, and it is the one to start it.
    bool may_start_cluster() const { return self_ == first_in_order_ && rounds_ >= kRoundsBeforeStarting; }

    static constexpr uint32_t kRoundsBeforeStarting = 2;

private:
    uint32_t self_;
    uint32_t first_in_order_;
    std::vector<uint32_t> candidates_;
    size_t next_ = 0;
    uint32_t rounds_ = 0;
};

}  // namespace rcpg::ordering
