// rdma_cm resources and events. The event channel is non-blocking: poll() drains it
// without waiting. Each event is copied (type, status, ids, private data) and acked at
// once, because rdma_destroy_id waits for every event of its id to be acked — holding an
// event while tearing a connection down would hang.
#pragma once

#include "transport/status.hpp"

#include <netinet/in.h>
#include <rdma/rdma_cma.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rcpg::transport {

struct EventChannelDeleter {
    void operator()(rdma_event_channel* channel) const { rdma_destroy_event_channel(channel); }
};
using EventChannel = std::unique_ptr<rdma_event_channel, EventChannelDeleter>;

struct CmIdDeleter {
    void operator()(rdma_cm_id* id) const { rdma_destroy_id(id); }
};
using CmId = std::unique_ptr<rdma_cm_id, CmIdDeleter>;

Result<EventChannel> create_event_channel();  // non-blocking
Result<CmId> create_cm_id(rdma_event_channel* channel, void* context);

struct CmEvent {
    rdma_cm_event_type type = RDMA_CM_EVENT_ADDR_RESOLVED;
    int status = 0;
    rdma_cm_id* id = nullptr;         // for CONNECT_REQUEST: the new id, now ours to destroy
    rdma_cm_id* listen_id = nullptr;  // for CONNECT_REQUEST: the listening id
    std::vector<std::byte> private_data;
    // The other side's queue pair number, from its REQ (CONNECT_REQUEST) or REP
    // (ESTABLISHED on the active side): the handshake binds its proofs to it.
    uint32_t remote_qp_num = 0;
};

// The next event, or nullopt when none is pending (or the channel failed: `error` set).
std::optional<CmEvent> next_cm_event(rdma_event_channel* channel, Status& error);

Result<sockaddr_in> ipv4_address(const std::string& host, uint16_t port);

}  // namespace rcpg::transport
