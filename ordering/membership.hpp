// Membership rules as pure functions of the configuration and a set of nodes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>

namespace rcpg::ordering {

// Whether `members` may go on as the cluster: more than half of the `configured` nodes,
// or exactly half with the first node of the sequencer order (`first_in_order`), so
// that two disjoint halves never both go on.
inline bool has_quorum(std::span<const uint32_t> members, size_t configured, uint32_t first_in_order)
{
    if (2 * members.size() > configured) {
        return true;
    }
    return 2 * members.size() == configured &&
           std::find(members.begin(), members.end(), first_in_order) != members.end();
}

}  // namespace rcpg::ordering
