// What a member node keeps per local client to forward its submissions to the
// sequencer (daemon/cluster.cpp). The protocol is described in ordering/NOTES.md.
#pragma once

#include "transport/registered_memory.hpp"

#include <cstdint>
#include <deque>
#include <utility>

namespace rcpg::daemon {

struct ClusterSessionState {
    transport::Registration arena;      // the client's send arena, source of forwarded payloads
    transport::RegisteredMemory staging;  // a DataPrefix per submission slot
    // (batch, sub_head): what the client may reuse once that forwarded batch completed.
    std::deque<std::pair<uint64_t, uint64_t>> pending_heads;
    bool op_in_flight = false;  // a join, leave or procdown not yet seen delivered
};

}  // namespace rcpg::daemon
