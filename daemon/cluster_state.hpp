// What a cluster node keeps per local client so the device can read its sends: a
// member forwards them to the sequencer, the sequencer's loopback copies them into its
// ring (daemon/cluster.cpp). The protocol is described in ordering/NOTES.md.
#pragma once

#include "transport/registered_memory.hpp"

#include <cstdint>
#include <deque>
#include <utility>

namespace rcpg::daemon {

struct ClusterSessionState {
    transport::Registration arena;        // the client's send arena, source of device reads
    transport::RegisteredMemory staging;  // member: a DataPrefix per submission slot
    // (batch, sub_head): what the client may reuse once that forwarded batch completed.
    std::deque<std::pair<uint64_t, uint64_t>> pending_heads;
    bool op_in_flight = false;  // a join, leave or procdown not yet seen delivered
    bool device_copied = false;  // sequencer: this drain left a payload to a device copy
};

}  // namespace rcpg::daemon
