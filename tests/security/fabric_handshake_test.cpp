// The fabric's trust boundary at connection set-up, on a real rxe device, each test
// written as the attack of a host without the cluster key (tests/security/rogue_peer):
//
//  - a connect request captured from a genuine node and replayed: the listener accepts it
//    at the CM level (the request carries a valid tag), but never sends the rogue a byte
//    about its memory, refuses it (forged proof at once, no proof at the set-up deadline),
//    and a genuine attempt made meanwhile connects undisturbed;
//  - an accept relayed from the real node to a node that connected to the rogue: the
//    accept is bound to the real node's queue pairs, the lured node refuses it and sends
//    neither its proof nor its hello;
//  - none of it is reported under the node id the attempts claim.
//
// Run through scripts/softroce.sh (CTest: fabric_handshake, labels rdma and security);
// without RCPG_RDMA_DEV every test skips with the reason.
#include "tests/rdma/rdma_test_support.hpp"
#include "tests/security/rogue_peer.hpp"
#include "transport/connect_private_data.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace rcpg::transport {
namespace {

using namespace rdma_testing;
using security_testing::RogueConnection;
using security_testing::RoguePeer;

constexpr uint32_t kTag = 1;
constexpr uint16_t kRoguePortOffset = 9;  // the rogue listens at base + 9; node k at base + k

size_t count(const std::vector<Event>& events, EventKind kind)
{
    return static_cast<size_t>(std::count_if(events.begin(), events.end(), [&](const Event& e) { return e.kind == kind; }));
}

bool named(const std::vector<Event>& events, NodeId peer)
{
    return std::any_of(events.begin(), events.end(), [&](const Event& e) {
        return e.peer == peer && e.kind != EventKind::connected && e.kind != EventKind::write_completed;
    });
}

// Node 2's connect request to node 1, as a rogue listening where node 2 thinks node 1 is
// captures it off the wire.
std::vector<std::byte> capture_request(RoguePeer& rogue, uint16_t base)
{
    TransportConfig lured = config_for(2, 2, base);
    lured.nodes[0].port = static_cast<uint16_t>(base + kRoguePortOffset);
    auto node2 = open(lured);
    if (!node2 || !node2->connect(1).ok()) {
        return {};
    }
    Pump pump{{node2.get()}, {}};
    RogueConnection* incoming = nullptr;
    pump.until([&] {
        rogue.poll();
        return (incoming = rogue.first_incoming_undecided()) != nullptr;
    });
    if (incoming == nullptr) {
        return {};
    }
    std::vector<std::byte> captured = incoming->peer_private_data;
    EXPECT_TRUE(rogue.reject(*incoming).ok());
    pump.until([&] { return pump.saw(2, EventKind::refused, 1) || pump.saw(2, EventKind::disconnected, 1); });
    return captured;
}

// A rogue listening at base + 9, and a pump over the real nodes that also moves the rogue.
class FabricHandshake : public ::testing::Test {
protected:
    void start(uint16_t base)
    {
        host = address_env();
        auto created = RoguePeer::create();
        ASSERT_TRUE(created.ok()) << created.status().message();
        rogue_owner = std::move(created).value();
        ASSERT_TRUE(rogue().listen(host, static_cast<uint16_t>(base + kRoguePortOffset)).ok());
    }
    RoguePeer& rogue() { return *rogue_owner; }
    bool step(Pump& pump, const std::function<bool()>& done)
    {
        return pump.until([&] {
            rogue().poll();
            return done();
        });
    }

    std::string host;
    std::unique_ptr<RoguePeer> rogue_owner;
};

TEST_F(FabricHandshake, ReplayedConnectRequestGetsNoMemoryAndDisturbsNoOne)
{
    SKIP_WITHOUT_DEVICE();
    constexpr uint16_t kBase = 20400;
    ASSERT_NO_FATAL_FAILURE(start(kBase));
    RoguePeer& rogue = this->rogue();
    const std::vector<std::byte> captured = capture_request(rogue, kBase);
    ASSERT_GE(captured.size(), wire::kConnectPrivateDataBytes) << "no request captured";

    // The real node 1 exposes memory to node 2.
    auto node1 = open(config_for(1, 2, kBase));
    auto node2 = open(config_for(2, 2, kBase));
    ASSERT_TRUE(node1 && node2);
    alignas(64) static std::array<std::byte, 4096> memory{};
    auto region = node1->register_region(memory.data(), memory.size(), RegionAccess::remote_write);
    ASSERT_TRUE(region.ok());
    ASSERT_TRUE(node1->expose(2, kTag, *region, 0, memory.size(), rcpg::transport::RegionAccess::remote_read_write).ok());
    ASSERT_TRUE(node1->listen().ok());
    Pump pump{{node1.get(), node2.get()}, {}};
    const auto step = [&](const std::function<bool()>& done) { return this->step(pump, done); };

    // The replay, before the genuine node connects: the CM accepts (the tag is genuine),
    // and the rogue then says nothing.
    auto silent = rogue.connect(host, kBase + 1, captured);
    ASSERT_TRUE(silent.ok()) << silent.status().message();
    ASSERT_TRUE(step([&] { return (*silent)->established || (*silent)->disconnected; }));
    ASSERT_TRUE((*silent)->established) << "the listener did not even accept the replayed request at the CM level";

    // The genuine node 2 connects while the replayed attempt is pending: not displaced.
    ASSERT_TRUE(node2->connect(1).ok());
    ASSERT_TRUE(step([&] { return pump.saw(1, EventKind::connected, 2) && pump.saw(2, EventKind::connected, 1); }))
        << "node 1: " << testing::describe(pump.events[1]) << "\nnode 2: " << testing::describe(pump.events[2]);

    // A second replay answers the challenge with a forged proof: refused at once.
    auto forged = rogue.connect(host, kBase + 1, captured);
    ASSERT_TRUE(forged.ok());
    ASSERT_TRUE(step([&] { return (*forged)->established || (*forged)->disconnected; }));
    const HandshakeKey guessed = *derive_handshake_key(std::vector<std::byte>(32, std::byte{0x77}));
    wire::Transcript transcript{2, 1, {}, {}, (*forged)->local_qpn, (*forged)->remote_qpn};
    ASSERT_TRUE(rogue.send(**forged, wire::encode_proof(transcript, guessed)).ok());
    ASSERT_TRUE(step([&] { return (*forged)->disconnected && count(pump.events[1], EventKind::incoming_refused) >= 1; }))
        << testing::describe(pump.events[1]);

    // The silent one: refused once the set-up deadline passed (connect_timeout_ms).
    ASSERT_TRUE(step([&] { return (*silent)->disconnected && count(pump.events[1], EventKind::incoming_refused) >= 2; }))
        << testing::describe(pump.events[1]);

    // Neither replay learnt anything: no SEND at all reached the rogue (no hello, so no
    // address, rkey or length of node 1's memory).
    EXPECT_TRUE((*silent)->received.empty());
    EXPECT_TRUE((*forged)->received.empty());
    // Nothing was said of node 2 at node 1 but its one connection, which still works.
    EXPECT_FALSE(named(pump.events[1], 2)) << testing::describe(pump.events[1]);
    ASSERT_TRUE(node1->is_connected(2) && node2->is_connected(1));
    const std::string text = "still the real node 2";
    WriteRequest write;
    write.inline_bytes = std::as_bytes(std::span(text));
    write.destination = node2->remote_region(1, kTag)->at(64);
    write.signaled = true;
    ASSERT_TRUE(node2->post_write(1, write).ok());
    ASSERT_TRUE(step([&] { return pump.saw(2, EventKind::write_completed, 1); }));
    EXPECT_EQ(std::memcmp(memory.data() + 64, text.data(), text.size()), 0);

    // A replay while node 2 is connected is refused at the request: still connected.
    auto late = rogue.connect(host, kBase + 1, captured);
    ASSERT_TRUE(late.ok());
    ASSERT_TRUE(step([&] { return (*late)->disconnected; }));
    EXPECT_TRUE((*late)->rejected);
    EXPECT_TRUE((*late)->received.empty());
    pump.poll_once();
    EXPECT_TRUE(node1->is_connected(2));
    EXPECT_FALSE(named(pump.events[1], 2)) << testing::describe(pump.events[1]);
}

TEST_F(FabricHandshake, RelayedAcceptIsRefusedAndTheLuredNodeSaysNothing)
{
    SKIP_WITHOUT_DEVICE();
    constexpr uint16_t kBase = 20420;
    ASSERT_NO_FATAL_FAILURE(start(kBase));
    RoguePeer& rogue = this->rogue();

    auto node1 = open(config_for(1, 2, kBase));
    TransportConfig lured = config_for(2, 2, kBase);
    lured.nodes[0].port = static_cast<uint16_t>(kBase + kRoguePortOffset);  // node 2 reaches the rogue
    auto node2 = open(lured);
    ASSERT_TRUE(node1 && node2);
    alignas(64) static std::array<std::byte, 4096> memory1{}, memory2{};
    auto region1 = node1->register_region(memory1.data(), memory1.size(), RegionAccess::remote_write);
    auto region2 = node2->register_region(memory2.data(), memory2.size(), RegionAccess::remote_write);
    ASSERT_TRUE(region1.ok() && region2.ok());
    ASSERT_TRUE(node1->expose(2, kTag, *region1, 0, memory1.size(), rcpg::transport::RegionAccess::remote_read_write).ok());
    ASSERT_TRUE(node2->expose(1, kTag, *region2, 0, memory2.size(), rcpg::transport::RegionAccess::remote_read_write).ok());
    ASSERT_TRUE(node1->listen().ok());
    Pump pump{{node1.get(), node2.get()}, {}};
    const auto step = [&](const std::function<bool()>& done) { return this->step(pump, done); };

    ASSERT_TRUE(node2->connect(1).ok());
    RogueConnection* from_node2 = nullptr;
    ASSERT_TRUE(step([&] { return (from_node2 = rogue.first_incoming_undecided()) != nullptr; }));
    // Relay node 2's request to the real node 1 and its fresh accept back to node 2.
    auto to_node1 = rogue.connect(host, kBase + 1, from_node2->peer_private_data);
    ASSERT_TRUE(to_node1.ok());
    ASSERT_TRUE(step([&] { return (*to_node1)->established || (*to_node1)->disconnected; }));
    ASSERT_TRUE((*to_node1)->established);
    ASSERT_TRUE(rogue.accept(*from_node2, (*to_node1)->peer_private_data).ok());

    ASSERT_TRUE(step([&] { return pump.saw(2, EventKind::refused, 1) || pump.saw(2, EventKind::connected, 1); }))
        << testing::describe(pump.events[2]);
    ASSERT_TRUE(pump.saw(2, EventKind::refused, 1)) << testing::describe(pump.events[2]);
    EXPECT_NE(pump.events[2].back().detail.context().find("accept"), std::string::npos) << pump.events[2].back().detail.message();
    // Node 1 refuses the relay's attempt when no proof comes.
    ASSERT_TRUE(step([&] { return count(pump.events[1], EventKind::incoming_refused) >= 1 && (*to_node1)->disconnected; }))
        << testing::describe(pump.events[1]);
    // Neither node told the rogue anything: node 2 sent no proof and no hello, node 1 no hello.
    EXPECT_TRUE(from_node2->received.empty()) << from_node2->received.size() << " messages from the lured node";
    EXPECT_TRUE((*to_node1)->received.empty()) << (*to_node1)->received.size() << " messages from node 1";
    EXPECT_FALSE(named(pump.events[1], 2)) << testing::describe(pump.events[1]);
    EXPECT_FALSE(node1->is_connected(2));
}

}  // namespace
}  // namespace rcpg::transport
