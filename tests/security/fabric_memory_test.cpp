// What a peer holding the cluster key can reach of a node's memory, on a real rxe device:
// exactly what the node exposed to it, through a window bound to its own connection. Each
// test is the attack of a connected peer, and the device must refuse it:
//
//  - writing the range the node exposed to another peer, with that peer's rkey;
//  - writing beyond the range exposed to it, inside the same registered region;
//  - writing with the rkey of its previous connection, after reconnecting;
//  - writing or reading through a window after the node withdrew it, on the same
//    connection (what ordering::Node does when its sequencer is fenced, and to the read
//    window of a repair once the repair is over);
//  - writing through a window granted for reading only;
//  - a sequencer writing a delivery ring's header page: a node exposes the data area and
//    the sequencer's three words, each a registration of its own, and nothing else.
//
// A refused write kills the attacker's queue pair (a remote access error), so each attack
// ends with its connection; the memory is unchanged and the other peer's connection works.
// Run through scripts/softroce.sh (CTest: fabric_memory, labels rdma and security).
#include "delivery/ring_format.hpp"
#include "libcpg/ipc/control_block.hpp"
#include "tests/rdma/rdma_test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace rcpg::transport {
namespace {

using namespace rdma_testing;

constexpr uint32_t kTag = 1;
constexpr uint64_t kPart = 4096;  // node 2 may write [0, 4096), node 3 [4096, 8192)

bool is_zero(std::span<const std::byte> bytes)
{
    return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; });
}

// Node 1 exposes one 8 KiB region, half to node 2, half to node 3.
class FabricMemory : public ::testing::Test {
protected:
    void start(uint16_t base)
    {
        node1 = open(config_for(1, 3, base));
        node2 = open(config_for(2, 3, base));
        node3 = open(config_for(3, 3, base));
        ASSERT_TRUE(node1 && node2 && node3);
        memory.fill(std::byte{0});
        auto region = node1->register_region(memory.data(), memory.size(), RegionAccess::remote_write);
        ASSERT_TRUE(region.ok()) << region.status().message();
        ASSERT_TRUE(node1->expose(2, kTag, *region, 0, kPart, rcpg::transport::RegionAccess::remote_read_write).ok());
        ASSERT_TRUE(node1->expose(3, kTag, *region, kPart, kPart, rcpg::transport::RegionAccess::remote_read_write).ok());
        ASSERT_TRUE(node1->listen().ok());
        pump.endpoints = {node1.get(), node2.get(), node3.get()};
        ASSERT_TRUE(node2->connect(1).ok() && node3->connect(1).ok());
        ASSERT_TRUE(pump.until([&] { return node2->is_connected(1) && node3->is_connected(1); }))
            << testing::describe(pump.events[2]) << testing::describe(pump.events[3]);
    }

    // Posts one signalled write of `text` from `from` and pumps until it completed or the
    // connection went; true if it completed.
    bool write(VerbsTransport& from, RemoteAddr at, const std::string& text)
    {
        WriteRequest request;
        request.inline_bytes = std::as_bytes(std::span(text));
        request.destination = at;
        request.signaled = true;
        request.wr_id = ++wr_id;
        if (!from.post_write(1, request).ok()) {
            return false;
        }
        const uint64_t id = wr_id;
        const NodeId self = from.self();
        pump.until([&] {
            return std::any_of(pump.events[self].begin(), pump.events[self].end(), [&](const Event& e) {
                return (e.kind == EventKind::write_completed && e.wr_id == id) || e.kind == EventKind::disconnected;
            });
        });
        return std::any_of(pump.events[self].begin(), pump.events[self].end(),
                           [&](const Event& e) { return e.kind == EventKind::write_completed && e.wr_id == id; });
    }

    alignas(4096) std::array<std::byte, 2 * kPart> memory{};
    std::unique_ptr<VerbsTransport> node1, node2, node3;
    Pump pump;
    uint64_t wr_id = 0;
};

TEST_F(FabricMemory, AnotherPeersWindowIsRefusedByTheDevice)
{
    SKIP_WITHOUT_DEVICE();
    ASSERT_NO_FATAL_FAILURE(start(20440));
    const RemoteRegion of3 = *node3->remote_region(1, kTag);
    // Node 2 learnt node 3's window (a key holder can, say by reading node 3's memory):
    // it writes there on its own connection.
    EXPECT_FALSE(write(*node2, of3.at(0), "node 2 in node 3's part"));
    EXPECT_TRUE(pump.saw(2, EventKind::disconnected, 1)) << testing::describe(pump.events[2]);
    EXPECT_TRUE(is_zero(memory)) << "the write landed";
    // Node 3's own window works.
    EXPECT_TRUE(write(*node3, of3.at(0), "node 3's own"));
    EXPECT_EQ(std::memcmp(memory.data() + kPart, "node 3's own", 12), 0);
}

TEST_F(FabricMemory, BeyondTheExposedRangeIsRefusedByTheDevice)
{
    SKIP_WITHOUT_DEVICE();
    ASSERT_NO_FATAL_FAILURE(start(20450));
    const RemoteRegion of2 = *node2->remote_region(1, kTag);
    ASSERT_EQ(of2.bytes, kPart);
    // Inside the same registered region, one byte past the range node 2 was given.
    EXPECT_FALSE(write(*node2, {of2.addr + kPart, of2.rkey}, "past the end"));
    EXPECT_TRUE(is_zero(memory)) << "the write landed";
    EXPECT_TRUE(pump.saw(2, EventKind::disconnected, 1));
    EXPECT_TRUE(node3->is_connected(1));
}

TEST_F(FabricMemory, AWindowDiesWithItsConnection)
{
    SKIP_WITHOUT_DEVICE();
    ASSERT_NO_FATAL_FAILURE(start(20460));
    const RemoteRegion before = *node2->remote_region(1, kTag);
    EXPECT_TRUE(write(*node2, before.at(0), "first"));
    // Reconnect until the new window's key differs from the old one (a device may hand out
    // the same 32 bits again: then the old key is simply the new window's).
    RemoteRegion after = before;
    for (int attempt = 0; attempt < 4 && after.rkey == before.rkey; ++attempt) {
        pump.events[1].clear();
        node2->disconnect(1);
        ASSERT_TRUE(pump.until([&] { return pump.saw(1, EventKind::disconnected, 2); }));
        pump.events[2].clear();
        ASSERT_TRUE(node2->connect(1).ok());
        ASSERT_TRUE(pump.until([&] { return node2->is_connected(1); })) << testing::describe(pump.events[2]);
        after = *node2->remote_region(1, kTag);
    }
    ASSERT_NE(after.rkey, before.rkey);
    std::memset(memory.data(), 0, kPart);
    EXPECT_FALSE(write(*node2, before.at(0), "old key")) << "the old connection's window still worked";
    EXPECT_TRUE(is_zero(memory));
}

TEST_F(FabricMemory, AWithdrawnWindowIsRefusedByTheDeviceOnTheSameConnection)
{
    SKIP_WITHOUT_DEVICE();
    ASSERT_NO_FATAL_FAILURE(start(20470));
    const RemoteRegion of2 = *node2->remote_region(1, kTag);
    EXPECT_TRUE(write(*node2, of2.at(0), "granted"));
    std::memset(memory.data(), 0, kPart);
    node1->withdraw(2, kTag);
    // The peer is told, behind everything node 1 posted to it so far.
    ASSERT_TRUE(pump.until([&] { return pump.saw(2, EventKind::regions_changed, 1); }))
        << testing::describe(pump.events[2]);
    EXPECT_FALSE(node2->remote_region(1, kTag).has_value());
    // A peer that kept the key (or did not look) is refused by the device.
    EXPECT_FALSE(write(*node2, of2.at(0), "withdrawn")) << "the withdrawn window still worked";
    EXPECT_TRUE(is_zero(memory));
    EXPECT_TRUE(node3->is_connected(1));
    EXPECT_TRUE(write(*node3, node3->remote_region(1, kTag)->at(0), "node 3 still"));
}

TEST_F(FabricMemory, AReadWindowGrantedOnALiveConnectionReadsAndNeverWrites)
{
    SKIP_WITHOUT_DEVICE();
    ASSERT_NO_FATAL_FAILURE(start(20480));
    constexpr uint32_t kReadTag = 2;
    std::memcpy(memory.data() + kPart, "node 3's part, read by node 2", 29);
    auto source = node1->register_region(memory.data(), memory.size(), RegionAccess::remote_read_write);
    ASSERT_TRUE(source.ok()) << source.status().message();
    ASSERT_TRUE(node1->expose(2, kReadTag, *source, kPart, kPart, RegionAccess::remote_read).ok());
    ASSERT_TRUE(pump.until([&] { return node2->remote_region(1, kReadTag).has_value(); }))
        << testing::describe(pump.events[2]);
    const RemoteRegion readable = *node2->remote_region(1, kReadTag);
    EXPECT_EQ(readable.bytes, kPart);
    EXPECT_TRUE(node2->remote_region(1, kTag).has_value()) << "a grant names what was granted before too";

    alignas(64) std::array<std::byte, 64> landed{};
    auto local = node2->register_region(landed.data(), landed.size(), RegionAccess::local);
    ASSERT_TRUE(local.ok());
    ASSERT_TRUE(node2->post_read(1, {*local, 0, 29}, readable.at(0), 7).ok());
    ASSERT_TRUE(pump.until([&] { return pump.saw(2, EventKind::read_completed, 1); })) << testing::describe(pump.events[2]);
    EXPECT_EQ(std::memcmp(landed.data(), "node 3's part, read by node 2", 29), 0);

    EXPECT_FALSE(write(*node2, readable.at(0), "written through a read window"));
    EXPECT_EQ(std::memcmp(memory.data() + kPart, "node 3's part, read by node 2", 29), 0);
}

// Node 1 lays out memory as its delivery ring is mapped (a header page, then the data)
// and exposes to node 2, its sequencer, what ordering::Node exposes: the data area and
// the three words behind the entries, each registered on its own.
TEST_F(FabricMemory, ADeliveryRingsHeaderPageIsRefusedByTheDevice)
{
    SKIP_WITHOUT_DEVICE();
    ASSERT_NO_FATAL_FAILURE(start(20490));
    node1->withdraw(2, kTag);  // node 2 is given the ring as a sequencer is, nothing more
    constexpr uint32_t kDataTag = 3;
    constexpr uint32_t kControlTag = 4;
    constexpr uint64_t kControlBytes = delivery::kStableTailOffset + sizeof(uint64_t) - delivery::kClusterTailOffset;
    std::byte* header = memory.data();
    std::byte* data = memory.data() + delivery::kPageBytes;
    auto data_region = node1->register_region(data, kPart, RegionAccess::remote_read_write);
    auto control_region =
        node1->register_region(header + delivery::kClusterTailOffset, kControlBytes, RegionAccess::remote_write);
    ASSERT_TRUE(data_region.ok() && control_region.ok());
    ASSERT_TRUE(node1->expose(2, kDataTag, *data_region, 0, kPart, RegionAccess::remote_write).ok());
    ASSERT_TRUE(node1->expose(2, kControlTag, *control_region, 0, kControlBytes, RegionAccess::remote_write).ok());
    ASSERT_TRUE(pump.until([&] { return node2->remote_region(1, kControlTag).has_value(); }));
    const RemoteRegion ring = *node2->remote_region(1, kDataTag);
    const RemoteRegion control = *node2->remote_region(1, kControlTag);
    ASSERT_EQ(control.bytes, kControlBytes);

    // What a sequencer writes lands.
    EXPECT_TRUE(write(*node2, ring.at(0), "entry"));
    EXPECT_TRUE(write(*node2, control.at(delivery::kStableTailOffset - delivery::kClusterTailOffset), "stable!!"));
    EXPECT_EQ(std::memcmp(data, "entry", 5), 0);
    EXPECT_EQ(std::memcmp(header + delivery::kStableTailOffset, "stable!!", 8), 0);
    std::array<std::byte, delivery::kPageBytes> header_before{};
    std::memcpy(header_before.data(), header, delivery::kPageBytes);

    // The rest of the header page (the clients' tail, the daemon's flags) through either
    // window: right behind the words, and the page's start just before the data area.
    EXPECT_FALSE(write(*node2, control.at(kControlBytes), "tail!!!!"));
    EXPECT_EQ(std::memcmp(header, header_before.data(), delivery::kPageBytes), 0) << "the header page changed";
    ASSERT_TRUE(pump.until([&] { return !node2->is_connected(1) && !node1->is_connected(2); }));
    pump.events[2].clear();
    ASSERT_TRUE(node2->connect(1).ok());
    ASSERT_TRUE(pump.until([&] { return node2->is_connected(1); })) << testing::describe(pump.events[2]);
    const RemoteRegion ring_again = *node2->remote_region(1, kDataTag);
    EXPECT_FALSE(write(*node2, {ring_again.addr - delivery::kPageBytes + delivery::kClusterTailOffset - 64, ring_again.rkey},
                       "tail!!!!"));
    EXPECT_EQ(std::memcmp(header, header_before.data(), delivery::kPageBytes), 0) << "the header page changed";
    // Node 3 was never granted any of it.
    EXPECT_FALSE(node3->remote_region(1, kDataTag).has_value());
    EXPECT_FALSE(node3->remote_region(1, kControlTag).has_value());
}

}  // namespace
}  // namespace rcpg::transport
