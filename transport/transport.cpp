#include "transport/transport.hpp"

#include <set>
#include <string>

namespace rcpg::transport {

const char* to_string(DisconnectReason reason)
{
    switch (reason) {
    case DisconnectReason::local_close: return "local close";
    case DisconnectReason::remote_close: return "remote close";
    case DisconnectReason::retry_exceeded: return "retry exceeded";
    case DisconnectReason::qp_error: return "queue pair error";
    case DisconnectReason::unreachable: return "unreachable";
    case DisconnectReason::refused: return "refused";
    case DisconnectReason::protocol_error: return "protocol error";
    }
    return "?";
}

const char* to_string(EventKind kind)
{
    switch (kind) {
    case EventKind::connected: return "connected";
    case EventKind::regions_changed: return "regions_changed";
    case EventKind::disconnected: return "disconnected";
    case EventKind::refused: return "refused";
    case EventKind::write_completed: return "write_completed";
    case EventKind::read_completed: return "read_completed";
    case EventKind::imm_received: return "imm_received";
    case EventKind::incoming_refused: return "incoming_refused";
    }
    return "?";
}

const NodeAddress* find_node(const TransportConfig& config, NodeId node)
{
    for (const NodeAddress& address : config.nodes) {
        if (address.node == node) {
            return &address;
        }
    }
    return nullptr;
}

Status validate_config(const TransportConfig& config)
{
    auto bad = [](const std::string& what) { return Status{Errc::invalid_argument, Layer::api, what}; };
    if (config.cluster_key.size() < kMinClusterKeyBytes) {
        return bad("cluster key shorter than " + std::to_string(kMinClusterKeyBytes) + " bytes");
    }
    std::set<NodeId> seen;
    for (const NodeAddress& address : config.nodes) {
        if (!seen.insert(address.node).second) {
            return bad("node " + std::to_string(address.node) + " listed twice");
        }
    }
    if (find_node(config, config.self) == nullptr) {
        return bad("self (node " + std::to_string(config.self) + ") is not in the node list");
    }
    const QueueConfig& q = config.queues;
    if (q.signal_interval == 0 || q.send_queue_depth < 2 * q.signal_interval ||
        q.send_queue_depth % q.signal_interval != 0) {
        return bad("send_queue_depth must be a multiple of signal_interval and at least twice it");
    }
    if (q.recv_queue_depth < 2) {
        return bad("recv_queue_depth must be at least 2");
    }
    return {};
}

namespace {

// The default two-step registration: the range, registered only when adopted.
struct DeferredRegion final : PreparedRegion {
    DeferredRegion(void* range_addr, size_t range_bytes, RegionAccess range_access)
        : addr(range_addr), bytes(range_bytes), access(range_access)
    {
    }
    void* addr;
    size_t bytes;
    RegionAccess access;
};

}  // namespace

Result<std::unique_ptr<PreparedRegion>> Transport::prepare_region(void* addr, size_t bytes, RegionAccess access)
{
    return std::unique_ptr<PreparedRegion>(std::make_unique<DeferredRegion>(addr, bytes, access));
}

Result<std::unique_ptr<PreparedRegion>> Transport::release_region(RegionId region)
{
    if (Status status = deregister_region(region); !status) {
        return status;
    }
    return std::unique_ptr<PreparedRegion>();
}

Result<RegionId> Transport::adopt_region(std::unique_ptr<PreparedRegion> prepared)
{
    const auto* deferred = dynamic_cast<const DeferredRegion*>(prepared.get());
    if (deferred == nullptr) {
        return Status{Errc::invalid_argument, Layer::api, "adopt_region: prepared by another transport"};
    }
    return register_region(deferred->addr, deferred->bytes, deferred->access);
}

}  // namespace rcpg::transport
