#include "libcpg/evs_groups.hpp"

#include <algorithm>
#include <cstring>

namespace rcpg::libcpg {

void EvsGroups::join(std::span<const EvsKey> keys, uint64_t from_seq)
{
    for (const EvsKey& key : keys) {
        joined_.push_back(key);
        intervals_[key].push_back({from_seq, UINT64_MAX});
    }
}

void EvsGroups::leave(std::span<const EvsKey> keys, size_t count, uint64_t until_seq, uint64_t read_seq)
{
    seen_seq_ = std::max(seen_seq_, read_seq);
    for (const EvsKey& key : keys.first(std::min(count, keys.size()))) {
        auto found = std::find(joined_.begin(), joined_.end(), key);
        if (found == joined_.end()) {
            continue;  // the daemon left it, so it was joined: cannot happen
        }
        joined_.erase(found);
        // One of the key's open intervals closes (duplicates each have one).
        std::vector<Interval>& intervals = intervals_[key];
        auto open = std::find_if(intervals.begin(), intervals.end(),
                                 [](const Interval& interval) { return interval.until_seq == UINT64_MAX; });
        if (open != intervals.end()) {
            open->until_seq = until_seq;
        }
        prune(intervals, seen_seq_);
        if (intervals.empty()) {
            intervals_.erase(key);
        }
    }
}

void EvsGroups::prune(std::vector<Interval>& intervals, uint64_t seq)
{
    std::erase_if(intervals, [seq](const Interval& interval) {
        return interval.until_seq <= seq || interval.until_seq <= interval.from_seq;
    });
}

bool EvsGroups::would_deliver(std::span<const std::byte> keys, uint64_t seq) const
{
    for (size_t offset = 0; offset + sizeof(EvsKey) <= keys.size(); offset += sizeof(EvsKey)) {
        EvsKey key;
        std::memcpy(key.data(), keys.data() + offset, key.size());
        auto found = intervals_.find(key);
        if (found != intervals_.end() &&
            std::any_of(found->second.begin(), found->second.end(), [seq](const Interval& interval) {
                return interval.from_seq <= seq && seq < interval.until_seq;
            })) {
            return true;
        }
    }
    return false;
}

bool EvsGroups::delivers(std::span<const std::byte> keys, uint64_t seq)
{
    seen_seq_ = std::max(seen_seq_, seq);
    bool delivered = false;
    for (size_t offset = 0; offset + sizeof(EvsKey) <= keys.size(); offset += sizeof(EvsKey)) {
        EvsKey key;
        std::memcpy(key.data(), keys.data() + offset, key.size());
        auto found = intervals_.find(key);
        if (found == intervals_.end()) {
            continue;
        }
        std::vector<Interval>& intervals = found->second;
        prune(intervals, seq);
        if (intervals.empty()) {
            intervals_.erase(found);
            continue;
        }
        delivered |= std::any_of(intervals.begin(), intervals.end(), [seq](const Interval& interval) {
            return interval.from_seq <= seq && seq < interval.until_seq;
        });
        if (delivered) {
            return true;
        }
    }
    return false;
}

}  // namespace rcpg::libcpg
