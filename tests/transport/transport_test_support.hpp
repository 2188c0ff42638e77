// Helpers shared by the transport tests: configurations, and a two-node pair on the
// memory fabric that tests step by hand (time is driven, never slept).
#pragma once

#include "transport/memory_transport.hpp"
#include "transport/transport.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace rcpg::transport::testing {

inline std::vector<std::byte> key_bytes(const std::string& text)
{
    std::vector<std::byte> key;
    for (char c : text) {
        key.push_back(static_cast<std::byte>(c));
    }
    return key;
}

inline const std::string kClusterKey = "rcpg-test-cluster-key-0123456789";

// Nodes 1..count on `host`, ports base_port + node.
inline TransportConfig make_config(NodeId self, int count, const std::string& host = "198.18.0.1", uint16_t base_port = 20100,
                                   const std::string& key = kClusterKey)
{
    TransportConfig config;
    config.self = self;
    for (int node = 1; node <= count; ++node) {
        config.nodes.push_back({static_cast<NodeId>(node), host, static_cast<uint16_t>(base_port + node)});
    }
    config.cluster_key = key_bytes(key);
    return config;
}

inline bool has_event(const std::vector<Event>& events, EventKind kind, NodeId peer)
{
    return std::any_of(events.begin(), events.end(), [&](const Event& e) { return e.kind == kind && e.peer == peer; });
}

inline std::string describe(const std::vector<Event>& events)
{
    std::string text;
    for (const Event& e : events) {
        text += std::string(to_string(e.kind)) + "(peer " + std::to_string(e.peer) + ", wr " + std::to_string(e.wr_id) +
                (e.detail.ok() ? "" : ", " + e.detail.message()) + ") ";
    }
    return text;
}

}  // namespace rcpg::transport::testing
