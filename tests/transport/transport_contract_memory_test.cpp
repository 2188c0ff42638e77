// The transport contract (transport_contract.hpp) on the memory transport the simulation
// runs on: the same suite runs on the verbs transport on rxe (tests/rdma).
#include "transport/memory_transport.hpp"
#include "tests/transport/transport_contract.hpp"

namespace rcpg::transport::contract {
namespace {

struct MemoryEnv {
    // Seeded delays of 1..3 ms per delivery, so that nothing the suite asserts holds only
    // because everything lands at once.
    MemoryFabric fabric{11, FaultConfig{1, 3, 0.0}};
    uint64_t now = 1;

    bool available() const { return true; }
    std::string why_unavailable() const { return {}; }
    std::unique_ptr<Transport> open(NodeId self, int nodes, const std::string& key)
    {
        return std::make_unique<MemoryTransport>(fabric, testing::make_config(self, nodes, "198.18.0.1", 20100, key));
    }
    uint64_t now_ms() const { return now; }
    void advance() { ++now; }
    uint64_t wait_limit_ms() const { return 10000; }
};

}  // namespace

INSTANTIATE_TYPED_TEST_SUITE_P(Memory, TransportContract, MemoryEnv);

}  // namespace rcpg::transport::contract
