// RemoteNode: held records go back in order once their batch completed (a record with
// no batch of its own waits behind one that has); the end of a connection resets what
// lived as long as it, zeroes the inbound ring's control block for the next writer, and
// keeps what device copies may still read.
#include "ordering/remote_node.hpp"
#include "transport/memory_transport.hpp"
#include "transport/ring_layout.hpp"
#include "tests/transport/transport_test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace rcpg::ordering {
namespace {

transport::RingReader::Record record_at(uint64_t position) { return {0, {}, position, position + 64}; }

std::vector<uint64_t> held_positions(const RemoteNode& node)
{
    std::vector<uint64_t> positions;
    for (const auto& [batch, record] : node.held) {
        positions.push_back(record.position);
    }
    return positions;
}

TEST(RemoteNode, HeldRecordsGoBackInOrderOnceTheirBatchCompleted)
{
    RemoteNode node;
    node.hold(3, record_at(0));
    node.hold(0, record_at(64));  // copied by the CPU, but after one the device reads
    node.hold(5, record_at(128));
    node.hold(0, record_at(192));
    node.release_held(2);
    EXPECT_EQ(held_positions(node), (std::vector<uint64_t>{0, 64, 128, 192}));
    node.release_held(3);
    EXPECT_EQ(held_positions(node), (std::vector<uint64_t>{128, 192})) << "the record behind batch 3 goes with it";
    node.release_held(4);
    EXPECT_EQ(held_positions(node), (std::vector<uint64_t>{128, 192}));
    node.release_held(5);
    EXPECT_TRUE(node.held.empty());
}

TEST(RemoteNode, TheEndOfAConnectionResetsWhatLivedAsLongAsItAndKeepsWhatTheDeviceMayRead)
{
    transport::MemoryFabric fabric{1, transport::FaultConfig{0, 0, 0.0}};
    transport::MemoryTransport transport{fabric, transport::testing::make_config(1, 2)};
    constexpr uint64_t kInboundRingBytes = 1 << 16;
    auto memory = transport::RegisteredMemory::create(transport, kInboundRingBytes + transport::ring::kControlBytes,
                                                      transport::RegionAccess::remote_write);
    ASSERT_TRUE(memory.ok());

    RemoteNode node;
    node.nodeid = 2;
    node.state = RemoteStatus::State::member;
    node.inbound_memory = std::move(*memory);
    // What the last connection's writer left in the control block.
    std::memset(node.inbound_memory.data() + kInboundRingBytes, 0xab, transport::ring::kControlBytes);
    std::memset(node.inbound_memory.data(), 0xcd, 64);  // a record a device copy still reads
    node.pending = record_at(0);
    node.grant_deadline_ms = 1234;
    node.stream_end = 4096;
    node.heartbeat_target = transport::RemoteAddr{};
    node.next_origin = 17;
    node.hold(9, record_at(0));
    EXPECT_TRUE(node.in_view());

    node.disconnected(kInboundRingBytes);
    EXPECT_EQ(node.state, RemoteStatus::State::absent);
    EXPECT_FALSE(node.in_view());
    EXPECT_FALSE(node.pending || node.stream || node.stream_end || node.heartbeat_target || node.inbound);
    EXPECT_EQ(node.grant_deadline_ms, 0u);
    const std::byte* control = node.inbound_memory.data() + kInboundRingBytes;
    EXPECT_TRUE(std::all_of(control, control + transport::ring::kControlBytes, [](std::byte b) { return b == std::byte{0}; }))
        << "the next writer starts at position 0";
    EXPECT_EQ(node.inbound_memory.data()[0], std::byte{0xcd}) << "the ring's records are untouched";
    EXPECT_EQ(node.held.size(), 1u) << "the device may still read it: the node may not reconnect before";
    EXPECT_EQ(node.next_origin, 17u) << "the numbering of its records outlives the connection";
}

}  // namespace
}  // namespace rcpg::ordering
