// Completion queues: one per connection, shared by its send and receive queues, busy
// polled from Transport::poll (no completion channel: the daemon spins while it has work
// and the layer above decides when to sleep). Sized so it can never overflow: every send
// and every receive of the connection can complete at once (flushes included).
#pragma once

#include "transport/status.hpp"
#include "transport/transport.hpp"

#include <infiniband/verbs.h>

#include <memory>
#include <span>
#include <string>

namespace rcpg::transport {

struct CqDeleter {
    void operator()(ibv_cq* cq) const { ibv_destroy_cq(cq); }
};
using CompletionQueue = std::unique_ptr<ibv_cq, CqDeleter>;

Result<CompletionQueue> create_cq(ibv_context* context, uint32_t entries);

// Up to wcs.size() completions; negative on a device error.
inline int poll_cq(ibv_cq* cq, std::span<ibv_wc> wcs)
{
    return ibv_poll_cq(cq, static_cast<int>(wcs.size()), wcs.data());
}

// What a failed work completion means for the connection.
DisconnectReason disconnect_reason(ibv_wc_status status);
std::string describe(const ibv_wc& wc);

}  // namespace rcpg::transport
