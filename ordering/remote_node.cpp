#include "ordering/remote_node.hpp"

#include "base/assert.hpp"
#include "transport/ring_layout.hpp"

#include <cstring>

namespace rcpg::ordering {

void RemoteNode::release_held(uint64_t completed_batch)
{
    while (!held.empty() && held.front().first <= completed_batch) {
        if (inbound) {
            inbound->release(held.front().second);
        }
        held.pop_front();
    }
}

void RemoteNode::disconnected(uint64_t inbound_ring_bytes)
{
    inbound.reset();
    // The next incarnation of the node's writer starts at position 0. No write of the old
    // connection can land any more (its queue pair is gone), and a new one cannot be set
    // up before this has run.
    if (inbound_memory) {
        RCPG_ASSERT(inbound_memory.size() >= inbound_ring_bytes + transport::ring::kControlBytes,
                    "node {}: an inbound ring of {} bytes", nodeid, inbound_memory.size());
        std::memset(inbound_memory.data() + inbound_ring_bytes, 0, transport::ring::kControlBytes);
    }
    pending.reset();
    grant_deadline_ms = 0;
    // `held` stays: device copies may still read those bytes, so the node may not
    // reconnect (and its new writer overwrite them) before they completed.
    stream.reset();
    stream_end.reset();
    snapshot_memory.reset();
    heartbeat_target.reset();
    state = RemoteStatus::State::absent;
}

}  // namespace rcpg::ordering
