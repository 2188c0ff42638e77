// What a cluster node keeps per local client so the device can read its sends: a
// member forwards them to the sequencer, the sequencer's loopback copies them into its
// ring (daemon/cluster.cpp). The protocol is described in ordering/NOTES.md.
#pragma once

#include "libcpg/ipc/shm.hpp"
#include "transport/registered_memory.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <utility>

namespace rcpg::daemon {

// The two parts of a client's send arena: [0, copy) for copied sends, [copy, end) for
// zero-copy buffers. Each is registered for the device on its own, when first needed.
enum class ArenaPart : uint8_t { copy = 0, zcb = 1 };

// A part registered for the device through a mapping of its own, which lives exactly as
// long as the registration.
struct PinnedPart {
    ipc::Mapping view;  // declared first: it outlives the registration
    transport::Registration registration;
};

// A registration under way on the background thread (pinning tens of MiB takes
// hundreds of ms under emulation).
struct PartPinning {
    ipc::Mapping view;
    transport::Result<std::unique_ptr<transport::PreparedRegion>> prepared =
        transport::Status{transport::Errc::try_again, transport::Layer::memory, "not prepared"};
    std::atomic<bool> wanted{true};  // false once the client is gone: nothing to pin
};

struct ClusterSessionState {
    ClusterSessionState() = default;
    ClusterSessionState(const ClusterSessionState&) = delete;
    ClusterSessionState& operator=(const ClusterSessionState&) = delete;
    ~ClusterSessionState()
    {
        for (const auto& pinning : pinning_parts) {
            if (pinning) {
                pinning->wanted.store(false, std::memory_order_relaxed);
            }
        }
    }

    std::array<ipc::Mapping, 2> unpinned_views;               // by ArenaPart, until pinning starts
    std::array<PinnedPart, 2> parts;                          // by ArenaPart
    std::array<std::shared_ptr<PartPinning>, 2> pinning_parts;  // under way
    std::array<bool, 2> pinning_failed{};
    bool waiting_for_part = false;  // a member's drain stopped at a part not yet registered

    transport::RegisteredMemory staging;  // member: a DataPrefix per submission slot
    // (batch, sub_head): what the client may reuse once that forwarded batch completed.
    std::deque<std::pair<uint64_t, uint64_t>> pending_heads;
    bool op_in_flight = false;  // a join, leave or procdown not yet seen delivered
    bool device_copied = false;  // sequencer: this drain left a payload to a device copy
};

}  // namespace rcpg::daemon
