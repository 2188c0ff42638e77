// An EVS handle's groups, as its library keeps them to decide which EVS messages it
// delivers.
//
// A message reaches a handle when the handle had joined at least one of its groups when
// the message was sequenced at this node, as in corosync 1.x, where the service filtered
// each message against the connection's groups at delivery. rcpgd answers a join or leave
// with the seq of the next entry it sequences or applies (ipc::EvsGroupsResponse), so each
// joining is an interval of seqs [from, until): messages already sequenced are not
// delivered after a join (though the handle reads them later), and messages sequenced
// before a leave still are. Intervals no message can fall into any more are dropped as
// the handle reads on.
//
// Not thread-safe: the handle guards it (Handle::evs_mutex_).
#pragma once

#include "delivery/evs_payload.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rcpg::libcpg {

using EvsKey = std::array<char, delivery::kEvsGroupKeyBytes>;

class EvsGroups {
public:
    // The groups joined with seq `from_seq`: messages from there on are delivered.
    void join(std::span<const EvsKey> keys, uint64_t from_seq);
    // Leaves the first `count` of `keys` (the daemon says how many it left): messages from
    // `until_seq` on are no longer delivered for them. `read_seq`: the seq the handle has
    // read up to, behind which intervals that ended are dropped.
    void leave(std::span<const EvsKey> keys, size_t count, uint64_t until_seq, uint64_t read_seq = 0);

    // Whether a message with seq `seq` for the groups `keys` (a checked EVS payload's,
    // delivery::EvsPayload::keys) is delivered to this handle. Seqs come in rising order:
    // intervals that end at or before `seq` are dropped on the way.
    bool delivers(std::span<const std::byte> keys, uint64_t seq);
    // The same decision, changing nothing (for deciding whether an entry is one of ours
    // before it is taken).
    bool would_deliver(std::span<const std::byte> keys, uint64_t seq) const;

    // The groups joined now, in join order with duplicates: what evs_mcast_joined sends to.
    const std::vector<EvsKey>& joined() const { return joined_; }

private:
    struct Interval {
        uint64_t from_seq;
        uint64_t until_seq;  // UINT64_MAX while joined
    };
    struct KeyHash {
        size_t operator()(const EvsKey& key) const
        {
            return std::hash<std::string_view>{}(std::string_view(key.data(), key.size()));
        }
    };

    // Drops the intervals of `key` that end at or before `seq`.
    void prune(std::vector<Interval>& intervals, uint64_t seq);

    std::vector<EvsKey> joined_;
    std::unordered_map<EvsKey, std::vector<Interval>, KeyHash> intervals_;
    uint64_t seen_seq_ = 0;  // the highest seq delivers() was asked about
};

}  // namespace rcpg::libcpg
