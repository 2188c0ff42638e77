#include "ordering/election.hpp"

#include "base/assert.hpp"

#include <algorithm>

namespace rcpg::ordering {

std::vector<PositionRange> repair_reads(uint64_t from, uint64_t to, uint64_t ring_bytes,
                                        std::span<const PositionRange> holds)
{
    RCPG_ASSERT(from <= to && to - from <= ring_bytes, "a repair of [{}, {}) in a ring of {}", from, to, ring_bytes);
    // Where the holds come round within [from, to), by position.
    std::vector<PositionRange> skipped;
    for (const PositionRange& hold : holds) {
        if (hold.begin >= hold.end || hold.end > from) {
            continue;  // not of an entry this node applied: it cannot come round yet
        }
        // The laps of it that can reach [from, to): from the one ending past `from` on.
        for (uint64_t lap = std::max<uint64_t>(1, (from - hold.begin) / ring_bytes); hold.begin + lap * ring_bytes < to;
             ++lap) {
            const uint64_t begin = std::max(from, hold.begin + lap * ring_bytes);
            const uint64_t end = std::min(to, hold.end + lap * ring_bytes);
            if (begin < end) {
                skipped.push_back({begin, end});
            }
        }
    }
    std::sort(skipped.begin(), skipped.end(),
              [](const PositionRange& a, const PositionRange& b) { return a.begin < b.begin; });
    std::vector<PositionRange> reads;
    const auto add = [&](uint64_t begin, uint64_t end) {
        while (begin < end) {  // split where the ring wraps
            const uint64_t lap_end = (begin / ring_bytes + 1) * ring_bytes;
            reads.push_back({begin, std::min(end, lap_end)});
            begin = std::min(end, lap_end);
        }
    };
    uint64_t next = from;
    for (const PositionRange& range : skipped) {
        add(next, std::max(next, range.begin));
        next = std::max(next, range.end);
    }
    add(next, to);
    return reads;
}

Election::Election(uint32_t self, std::vector<uint32_t> members, uint64_t started_ms, uint64_t deadline_ms)
    : self_(self), members_(std::move(members)), started_ms_(started_ms), deadline_ms_(deadline_ms)
{
    // Views are checked where they come in (wire::decode_totem, decode_snapshot).
    RCPG_ASSERT(std::is_sorted(members_.begin(), members_.end()), "an unsorted view");
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
        unposted_.clear();
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
    RCPG_ASSERT(rejoined_.contains(self_), "node {} fixes a target without its own tail", self_);
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
    unposted_.clear();
    reads_pending_ = 0;
}

void Election::read_posted()
{
    RCPG_ASSERT(!unposted_.empty(), "a repair read posted that was not planned");
    unposted_.pop_front();
    ++reads_pending_;
}

void Election::read_completed(uint32_t peer)
{
    if (target_ && peer == holder_ && reads_pending_ > 0) {
        --reads_pending_;
    }
}

}  // namespace rcpg::ordering
