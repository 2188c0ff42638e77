// SAFE delivery's bookkeeping at one node: which SAFE entries of its ring are not yet
// held by every node of the view, and the position up to which every node holds the
// ring ("stable"). A SAFE message reaches this node's clients only once stable, and
// nothing after it before it (total order): publishable() is where the clients' view of
// the ring must stop. Where the stable position comes from is the node's business (the
// sequencer: the lowest of what every member says it holds; a member: what the
// sequencer writes into its ring header); this only keeps it and never lets it go back
// (a new sequencer may know less than the old one did, and what was stable stays so).
#pragma once

#include "base/assert.hpp"

#include <cstdint>
#include <deque>
#include <utility>

namespace rcpg::ordering {

class SafeStability {
public:
    // A SAFE entry [position, end) entered this node's ring (in ring order). One already
    // stable is not waited for.
    void note(uint64_t position, uint64_t end)
    {
        RCPG_ASSERT(position < end && (waiting_.empty() || position >= waiting_.back().second),
                    "SAFE entry [{}, {}) out of ring order", position, end);
        if (end > stable_) {
            waiting_.emplace_back(position, end);
        }
    }
    // Every node holds the ring up to `held`. True when that is more than was stable.
    bool advance(uint64_t held)
    {
        if (held <= stable_) {
            return false;
        }
        stable_ = held;
        return true;
    }
    uint64_t stable() const { return stable_; }
    // A SAFE entry was noted that publishable() has not yet passed.
    bool waiting() const { return !waiting_.empty(); }
    // Of the complete entries [.., complete), how far the clients may read: up to the
    // first SAFE entry not yet stable.
    uint64_t publishable(uint64_t complete)
    {
        while (!waiting_.empty() && waiting_.front().second <= stable_) {
            waiting_.pop_front();
        }
        return waiting_.empty() || complete < waiting_.front().first ? complete : waiting_.front().first;
    }

private:
    std::deque<std::pair<uint64_t, uint64_t>> waiting_;  // (position, end), in ring order
    uint64_t stable_ = 0;
};

}  // namespace rcpg::ordering
