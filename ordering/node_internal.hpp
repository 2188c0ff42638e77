// What the files of ordering::Node's implementation share: the protocol's timing and
// batching constants, and the node's logging. Included only by ordering/node*.cpp.
#pragma once

#include "delivery/ring_format.hpp"
#include "ordering/node.hpp"

#include <cstdint>
#include <utility>

#include <fmt/format.h>

namespace rcpg::ordering {
namespace node_detail {

inline constexpr uint64_t kReconnectIntervalMs = 500;
// A member that lost its sequencer waits this many failure timeouts for the next one's
// view: that node may need one timeout to notice the failure itself and one to collect
// the survivors' tails.
inline constexpr uint64_t kFailoverWaitTimeouts = 3;
inline constexpr uint32_t kInboundBudgetPerNode = 256;
// A member publishes its consumed position when it moved this fraction of the ring (or
// when the sequencer asks): credits stay off the latency path.
inline constexpr uint64_t kCreditPublishDivisor = 8;
// Commits to the sequencer carry an immediate: it wakes a sequencer asleep on wait_fd().
inline constexpr uint32_t kWakeImmediate = 1;
// A node taking over tells the other members at once: each may not have noticed the
// failure yet (a dead process's connections close one after another), and the new view
// waits for every survivor's tail.
inline constexpr uint32_t kTakeOverImmediate = 2;

inline uint32_t confchg_payload_bytes(size_t left, size_t joined, size_t members)
{
    return static_cast<uint32_t>(sizeof(delivery::ConfchgPayload) + (left + joined + members) * sizeof(delivery::MemberAddress));
}

}  // namespace node_detail

template <typename... Args>
void Node::log(LogLevel level, fmt::format_string<Args...> format, Args&&... args)
{
    if (config_.log) {
        config_.log(level, fmt::format(format, std::forward<Args>(args)...));
    }
}

}  // namespace rcpg::ordering
