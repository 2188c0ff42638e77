// MemoryTransport: connection set-up and refusal with the real handshake checks, writes
// and reads that really land in registered memory, seeded delays and faults that replay
// exactly, and a crashed peer reported as an event.
#include "transport/memory_transport.hpp"
#include "transport_test_support.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstring>

namespace rcpg::transport {
namespace {

using testing::has_event;
using testing::make_config;

constexpr uint32_t kBufferTag = 1;

struct Pair {
    explicit Pair(uint64_t seed, FaultConfig faults = {}, const std::string& key_of_2 = testing::kClusterKey)
        : fabric(seed, faults), a(fabric, make_config(1, 3)), b(fabric, make_config(2, 3, "198.18.0.1", 20100, key_of_2))
    {
        buffer_a.fill(std::byte{0});
        buffer_b.fill(std::byte{0});
        region_a = *a.register_region(buffer_a.data(), buffer_a.size(), RegionAccess::remote_read_write);
        region_b = *b.register_region(buffer_b.data(), buffer_b.size(), RegionAccess::remote_read_write);
        EXPECT_TRUE(a.expose(2, kBufferTag, region_a, 0, buffer_a.size()).ok());
        EXPECT_TRUE(b.expose(1, kBufferTag, region_b, 0, buffer_b.size()).ok());
        EXPECT_TRUE(b.listen().ok());
    }
    // Steps both endpoints from now_ms to until_ms, one millisecond at a time.
    void run_until(uint64_t until_ms)
    {
        for (; now_ms <= until_ms; ++now_ms) {
            a.poll(now_ms, events_a);
            b.poll(now_ms, events_b);
        }
    }
    MemoryFabric fabric;
    MemoryTransport a;
    MemoryTransport b;
    std::array<std::byte, 4096> buffer_a{};
    std::array<std::byte, 4096> buffer_b{};
    RegionId region_a;
    RegionId region_b;
    std::vector<Event> events_a;
    std::vector<Event> events_b;
    uint64_t now_ms = 0;
};

TEST(MemoryTransport, ConnectExchangesExposedRegions)
{
    Pair pair(1, {2, 5, 0});
    ASSERT_TRUE(pair.a.connect(2).ok());
    pair.run_until(20);
    EXPECT_TRUE(has_event(pair.events_a, EventKind::connected, 2)) << testing::describe(pair.events_a);
    EXPECT_TRUE(has_event(pair.events_b, EventKind::connected, 1));
    auto remote = pair.a.remote_region(2, kBufferTag);
    ASSERT_TRUE(remote.has_value());
    EXPECT_EQ(remote->addr, reinterpret_cast<uint64_t>(pair.buffer_b.data()));
    EXPECT_EQ(remote->bytes, pair.buffer_b.size());
}

TEST(MemoryTransport, WrongClusterKeyIsRefusedOnBothSides)
{
    Pair pair(1, {}, "another-cluster-key-abcdefghijkl");
    ASSERT_TRUE(pair.a.connect(2).ok());
    pair.run_until(5);
    ASSERT_TRUE(has_event(pair.events_a, EventKind::refused, 2)) << testing::describe(pair.events_a);
    EXPECT_NE(pair.events_a[0].detail.context().find("bad cluster key"), std::string::npos);
    EXPECT_TRUE(has_event(pair.events_b, EventKind::refused, 0));
    EXPECT_FALSE(pair.a.is_connected(2));
}

TEST(MemoryTransport, NodeMissingFromTheListIsRefused)
{
    MemoryFabric fabric(3);
    MemoryTransport listener(fabric, make_config(1, 2));      // knows nodes 1 and 2
    MemoryTransport stranger(fabric, make_config(3, 3));      // node 3 knows 1..3
    ASSERT_TRUE(listener.listen().ok());
    ASSERT_TRUE(stranger.connect(1).ok());
    std::vector<Event> events_l, events_s;
    listener.poll(1, events_l);
    stranger.poll(1, events_s);
    ASSERT_TRUE(has_event(events_s, EventKind::refused, 1)) << testing::describe(events_s);
    EXPECT_NE(events_s[0].detail.context().find("not in the configured node list"), std::string::npos);
    EXPECT_TRUE(has_event(events_l, EventKind::refused, 3));
}

TEST(MemoryTransport, NothingListeningIsUnreachable)
{
    MemoryFabric fabric(4);
    MemoryTransport a(fabric, make_config(1, 2));
    MemoryTransport b(fabric, make_config(2, 2));  // never listens
    ASSERT_TRUE(a.connect(2).ok());
    std::vector<Event> events;
    a.poll(1, events);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, EventKind::disconnected);
    EXPECT_EQ(events[0].reason, DisconnectReason::unreachable);
}

TEST(MemoryTransport, WritesLandInOrderWithImmAndCompletion)
{
    Pair pair(5, {1, 10, 0});
    ASSERT_TRUE(pair.a.connect(2).ok());
    pair.run_until(30);
    const RemoteRegion remote = *pair.a.remote_region(2, kBufferTag);
    // Two writes to the same bytes: RC order means the second one wins.
    std::memcpy(pair.buffer_a.data(), "first", 5);
    std::array<WriteRequest, 2> writes;
    const LocalSlice source{pair.region_a, 0, 5};
    writes[0].sources = {&source, 1};
    writes[0].destination = remote.at(100);
    const std::string second = "later";
    writes[1].inline_bytes = std::as_bytes(std::span(second));
    writes[1].destination = remote.at(100);
    writes[1].signaled = true;
    writes[1].wr_id = 77;
    writes[1].imm = 0xfeed;
    ASSERT_TRUE(pair.a.post_writes(2, writes).ok());
    pair.run_until(60);
    EXPECT_EQ(std::memcmp(pair.buffer_b.data() + 100, "later", 5), 0);
    ASSERT_TRUE(has_event(pair.events_a, EventKind::write_completed, 2));
    EXPECT_EQ(pair.events_a.back().wr_id, 77u);
    ASSERT_TRUE(has_event(pair.events_b, EventKind::imm_received, 1));
    EXPECT_EQ(pair.events_b.back().imm, 0xfeedu);
}

TEST(MemoryTransport, ReadFetchesRemoteBytes)
{
    Pair pair(6);
    ASSERT_TRUE(pair.a.connect(2).ok());
    pair.run_until(1);
    std::memcpy(pair.buffer_b.data() + 8, "heartbeat", 9);
    ASSERT_TRUE(pair.a.post_read(2, {pair.region_a, 512, 9}, pair.a.remote_region(2, kBufferTag)->at(8), 5).ok());
    pair.run_until(2);
    ASSERT_TRUE(has_event(pair.events_a, EventKind::read_completed, 2));
    EXPECT_EQ(std::memcmp(pair.buffer_a.data() + 512, "heartbeat", 9), 0);
}

TEST(MemoryTransport, BadRkeyBreaksTheConnectionLikeAQpError)
{
    Pair pair(7);
    ASSERT_TRUE(pair.a.connect(2).ok());
    pair.run_until(1);
    const std::string bytes = "x";
    WriteRequest write;
    write.inline_bytes = std::as_bytes(std::span(bytes));
    write.destination = RemoteAddr{reinterpret_cast<uint64_t>(pair.buffer_b.data()), 0xdead};
    ASSERT_TRUE(pair.a.post_write(2, write).ok());
    pair.run_until(2);
    ASSERT_TRUE(has_event(pair.events_a, EventKind::disconnected, 2));
    EXPECT_EQ(pair.events_a.back().reason, DisconnectReason::qp_error);
    EXPECT_EQ(pair.a.post_write(2, write).code(), Errc::not_connected);
}

TEST(MemoryTransport, SendQueueDepthBoundsOutstandingWrites)
{
    Pair pair(8, {5, 5, 0});
    ASSERT_TRUE(pair.a.connect(2).ok());
    pair.run_until(10);
    const std::string byte = "y";
    WriteRequest write;
    write.inline_bytes = std::as_bytes(std::span(byte));
    write.destination = pair.a.remote_region(2, kBufferTag)->at(0);
    for (uint32_t i = 0; i < QueueConfig{}.send_queue_depth; ++i) {
        ASSERT_TRUE(pair.a.post_write(2, write).ok()) << i;
    }
    EXPECT_EQ(pair.a.post_write(2, write).code(), Errc::try_again);
    pair.run_until(20);
    EXPECT_TRUE(pair.a.post_write(2, write).ok());
}

TEST(MemoryTransport, CrashedPeerIsReportedAndLaterWritesFail)
{
    Pair pair(9, {1, 3, 0});
    ASSERT_TRUE(pair.a.connect(2).ok());
    pair.run_until(10);
    pair.fabric.crash(2);
    pair.run_until(11);
    ASSERT_TRUE(has_event(pair.events_a, EventKind::disconnected, 2));
    EXPECT_EQ(pair.events_a.back().reason, DisconnectReason::remote_close);
    EXPECT_FALSE(pair.a.is_connected(2));
}

// The trace of a faulty run, for the replay check.
std::string trace(uint64_t seed)
{
    Pair pair(seed, {0, 20, 0.01});
    EXPECT_TRUE(pair.a.connect(2).ok());
    std::string text;
    const std::string byte = "z";
    for (uint64_t step = 0; step < 400; ++step) {
        if (pair.a.is_connected(2)) {
            WriteRequest write;
            write.inline_bytes = std::as_bytes(std::span(byte));
            write.destination = pair.a.remote_region(2, kBufferTag)->at(step % 64);
            write.signaled = true;
            write.wr_id = step;
            (void)pair.a.post_write(2, write);
        }
        pair.run_until(step);
    }
    return testing::describe(pair.events_a) + "|" + testing::describe(pair.events_b);
}

TEST(MemoryFabric, SameSeedSameRunDifferentSeedDifferentRun)
{
    const std::string first = trace(42);
    EXPECT_EQ(first, trace(42));
    EXPECT_NE(first, trace(43));
    EXPECT_NE(first.find("disconnected"), std::string::npos) << "1% drops over 400 writes should break the link";
}

}  // namespace
}  // namespace rcpg::transport
