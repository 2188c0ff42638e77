// What the tests on a real rxe device share: the device and address scripts/softroce.sh
// provides (RCPG_RDMA_DEV, RCPG_RDMA_ADDR), configurations on it, and a pump that polls
// endpoints until something happened or a generous step timeout passed.
#pragma once

#include "transport/verbs_transport.hpp"
#include "tests/transport/transport_test_support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace rcpg::transport::rdma_testing {

inline constexpr uint64_t kStepTimeoutMs = 60000;  // any single expectation; TCG guests are slow, more so on a busy host

inline uint64_t now_ms()
{
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

inline const char* device_env() { return std::getenv("RCPG_RDMA_DEV"); }
inline const char* address_env() { return std::getenv("RCPG_RDMA_ADDR"); }

#define SKIP_WITHOUT_DEVICE()                                                                                        \
    if (device_env() == nullptr || address_env() == nullptr) {                                                      \
        GTEST_SKIP() << "RCPG_RDMA_DEV/RCPG_RDMA_ADDR unset: run through scripts/softroce.sh run -- <this binary>"; \
    }

inline TransportConfig config_for(NodeId self, int nodes, uint16_t base_port, const std::string& key = testing::kClusterKey)
{
    TransportConfig config = testing::make_config(self, nodes, address_env(), base_port, key);
    config.device_name = device_env();
    config.connect_timeout_ms = 10000;
    return config;
}

inline std::unique_ptr<VerbsTransport> open(const TransportConfig& config)
{
    auto transport = VerbsTransport::create(config);
    EXPECT_TRUE(transport.ok()) << transport.status().message();
    return transport.ok() ? std::move(transport).value() : nullptr;
}

// Polls every endpoint until `done` holds or the step times out; returns done().
struct Pump {
    std::vector<Transport*> endpoints;
    std::map<NodeId, std::vector<Event>> events;
    bool until(const std::function<bool()>& done, uint64_t timeout_ms = kStepTimeoutMs)
    {
        const uint64_t deadline = now_ms() + timeout_ms;
        while (!done()) {
            if (now_ms() > deadline) {
                return false;
            }
            poll_once();
        }
        return true;
    }
    void poll_once()
    {
        for (Transport* endpoint : endpoints) {
            endpoint->poll(now_ms(), events[endpoint->self()]);
        }
    }
    bool saw(NodeId at, EventKind kind, NodeId peer) { return testing::has_event(events[at], kind, peer); }
};

}  // namespace rcpg::transport::rdma_testing
