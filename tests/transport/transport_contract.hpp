// The transport contract: what the protocol relies on from any Transport, written once and
// run against each implementation. The simulation runs the protocol on the memory
// transport; this suite keeps that transport faithful to the verbs transport on rxe, by
// asserting the same behaviour of both: tests/transport/transport_contract_memory_test.cpp
// instantiates it over MemoryTransport, tests/rdma/transport_rdma_test.cpp over
// VerbsTransport on the Soft-RoCE device.
//
// An Env gives the suite its endpoints and its clock:
//   bool available() const;                       // false: the suite skips (no device)
//   std::string why_unavailable() const;
//   std::unique_ptr<Transport> open(NodeId self, int nodes, const std::string& key);
//   uint64_t now_ms();                            // the time to poll with
//   void advance();                               // between two rounds of polls
//   uint64_t wait_limit_ms() const;               // how long one expectation may take
// (the memory transport's time is driven, one millisecond a round; the verbs transport's
// is the clock, and a busy TCG guest is slow, so its limit is wide).
// Node ids are 1..nodes on one host, each Env picking ports of its own per test.
#pragma once

#include "transport/transport.hpp"
#include "tests/transport/transport_test_support.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace rcpg::transport::contract {

inline constexpr uint32_t kTag = 1;
inline constexpr uint32_t kLateTag = 2;

// Two endpoints, 1 and 2, each with a 4 KiB buffer exposed to the other (read and write),
// node 2 listening. Polls drive both.
template <typename Env>
struct Pair {
    explicit Pair(Env& environment, const std::string& key_of_2 = testing::kClusterKey) : env(environment)
    {
        a = env.open(1, 3, testing::kClusterKey);
        b = env.open(2, 3, key_of_2);
        if (!a || !b) {
            return;
        }
        region_a = *a->register_region(buffer_a.data(), buffer_a.size(), RegionAccess::remote_read_write);
        region_b = *b->register_region(buffer_b.data(), buffer_b.size(), RegionAccess::remote_read_write);
        EXPECT_TRUE(a->expose(2, kTag, region_a, 0, buffer_a.size(), RegionAccess::remote_read_write).ok());
        EXPECT_TRUE(b->expose(1, kTag, region_b, 0, buffer_b.size(), RegionAccess::remote_read_write).ok());
        EXPECT_TRUE(b->listen().ok());
    }
    bool open() const { return a && b; }
    // Polls both until `done` holds (true) or the Env's round limit passed (false).
    bool until(const std::function<bool()>& done)
    {
        for (const uint64_t end = env.now_ms() + env.wait_limit_ms(); env.now_ms() < end;) {
            if (done()) {
                return true;
            }
            const uint64_t now = env.now_ms();
            a->poll(now, events[1]);
            b->poll(now, events[2]);
            env.advance();
        }
        return done();
    }
    bool saw(NodeId at, EventKind kind, NodeId peer) { return testing::has_event(events[at], kind, peer); }
    const Event* last(NodeId at, EventKind kind)
    {
        for (auto it = events[at].rbegin(); it != events[at].rend(); ++it) {
            if (it->kind == kind) {
                return &*it;
            }
        }
        return nullptr;
    }
    bool connect()
    {
        events.clear();
        return a->connect(2).ok() && until([&] { return a->is_connected(2) && b->is_connected(1); });
    }

    Env& env;
    std::unique_ptr<Transport> a, b;
    alignas(4096) std::array<std::byte, 4096> buffer_a{};
    alignas(4096) std::array<std::byte, 4096> buffer_b{};
    RegionId region_a, region_b;
    std::map<NodeId, std::vector<Event>> events;
};

template <typename Env>
class TransportContract : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!env.available()) {
            GTEST_SKIP() << env.why_unavailable();
        }
    }
    Env env;
};

TYPED_TEST_SUITE_P(TransportContract);

// Connecting exchanges what each side exposed to the other, at its address and size; a
// tag nobody exposed is unknown.
TYPED_TEST_P(TransportContract, ConnectExchangesExposedRegionsBothWays)
{
    Pair pair(this->env);
    ASSERT_TRUE(pair.open());
    ASSERT_TRUE(pair.connect()) << testing::describe(pair.events[1]);
    EXPECT_TRUE(pair.saw(1, EventKind::connected, 2));
    EXPECT_TRUE(pair.saw(2, EventKind::connected, 1));
    const auto at_b = pair.a->remote_region(2, kTag);
    ASSERT_TRUE(at_b.has_value());
    EXPECT_EQ(at_b->addr, reinterpret_cast<uint64_t>(pair.buffer_b.data()));
    EXPECT_EQ(at_b->bytes, pair.buffer_b.size());
    const auto at_a = pair.b->remote_region(1, kTag);
    ASSERT_TRUE(at_a.has_value());
    EXPECT_EQ(at_a->addr, reinterpret_cast<uint64_t>(pair.buffer_a.data()));
    EXPECT_FALSE(pair.a->remote_region(2, 99).has_value());
}

// Writes on one connection land in the order posted (the later one over the same bytes
// wins), from registered memory or inline; a signalled one completes with its wr_id; an
// immediate wakes the peer with its value.
TYPED_TEST_P(TransportContract, WritesLandInOrderWithImmediateAndCompletion)
{
    Pair pair(this->env);
    ASSERT_TRUE(pair.open() && pair.connect());
    const RemoteRegion remote = *pair.a->remote_region(2, kTag);
    std::memcpy(pair.buffer_a.data(), "first", 5);
    const LocalSlice source{pair.region_a, 0, 5};
    std::array<WriteRequest, 2> writes;
    writes[0].sources = {&source, 1};
    writes[0].destination = remote.at(100);
    const std::string second = "later";
    writes[1].inline_bytes = std::as_bytes(std::span(second));
    writes[1].destination = remote.at(100);
    writes[1].signaled = true;
    writes[1].wr_id = 77;
    writes[1].imm = 0xfeed;
    ASSERT_TRUE(pair.a->post_writes(2, writes).ok());
    ASSERT_TRUE(pair.until([&] { return pair.saw(1, EventKind::write_completed, 2) && pair.saw(2, EventKind::imm_received, 1); }))
        << testing::describe(pair.events[1]) << " / " << testing::describe(pair.events[2]);
    EXPECT_EQ(pair.last(1, EventKind::write_completed)->wr_id, 77u);
    EXPECT_EQ(pair.last(2, EventKind::imm_received)->imm, 0xfeedu);
    EXPECT_EQ(std::memcmp(pair.buffer_b.data() + 100, "later", 5), 0);
}

// A read fetches the peer's bytes into registered memory and completes with its wr_id.
TYPED_TEST_P(TransportContract, ReadFetchesRemoteBytes)
{
    Pair pair(this->env);
    ASSERT_TRUE(pair.open() && pair.connect());
    std::memcpy(pair.buffer_b.data() + 8, "heartbeat", 9);
    ASSERT_TRUE(pair.a->post_read(2, {pair.region_a, 512, 9}, pair.a->remote_region(2, kTag)->at(8), 5).ok());
    ASSERT_TRUE(pair.until([&] { return pair.saw(1, EventKind::read_completed, 2); })) << testing::describe(pair.events[1]);
    EXPECT_EQ(pair.last(1, EventKind::read_completed)->wr_id, 5u);
    EXPECT_EQ(std::memcmp(pair.buffer_a.data() + 512, "heartbeat", 9), 0);
}

// A grant on a connection that is up reaches the peer (regions_changed); a withdrawal
// takes effect at once: a write into the withdrawn window breaks the connection and
// lands nothing; on the next connection the window is gone. A read window takes no write.
TYPED_TEST_P(TransportContract, AGrantOnALiveConnectionArrivesAndAWithdrawalTakesEffect)
{
    Pair pair(this->env);
    ASSERT_TRUE(pair.open() && pair.connect());
    const RemoteRegion granted = *pair.a->remote_region(2, kTag);
    ASSERT_TRUE(pair.b->expose(1, kLateTag, pair.region_b, 1024, 512, RegionAccess::remote_read).ok());
    ASSERT_TRUE(pair.until([&] { return pair.a->remote_region(2, kLateTag).has_value(); }))
        << testing::describe(pair.events[1]);
    EXPECT_TRUE(pair.saw(1, EventKind::regions_changed, 2));
    const RemoteRegion readable = *pair.a->remote_region(2, kLateTag);
    EXPECT_EQ(readable.addr, reinterpret_cast<uint64_t>(pair.buffer_b.data()) + 1024);
    EXPECT_EQ(readable.bytes, 512u);
    std::memcpy(pair.buffer_b.data() + 1024, "repair", 6);
    ASSERT_TRUE(pair.a->post_read(2, {pair.region_a, 0, 6}, readable.at(0), 1).ok());
    ASSERT_TRUE(pair.until([&] { return pair.saw(1, EventKind::read_completed, 2); }));
    EXPECT_EQ(std::memcmp(pair.buffer_a.data(), "repair", 6), 0);

    pair.b->withdraw(1, kTag);
    WriteRequest write;
    const std::string text = "withdrawn";
    write.inline_bytes = std::as_bytes(std::span(text));
    write.destination = granted.at(0);
    write.signaled = true;
    ASSERT_TRUE(pair.a->post_write(2, write).ok());
    ASSERT_TRUE(pair.until([&] { return pair.saw(1, EventKind::disconnected, 2); })) << testing::describe(pair.events[1]);
    EXPECT_NE(std::memcmp(pair.buffer_b.data(), "withdrawn", 9), 0) << "the write landed";
    ASSERT_TRUE(pair.until([&] { return !pair.b->is_connected(1); })) << "the peer did not see the connection end";
    ASSERT_TRUE(pair.connect()) << testing::describe(pair.events[1]);
    EXPECT_FALSE(pair.a->remote_region(2, kTag).has_value()) << "a withdrawn window came back";
    ASSERT_TRUE(pair.a->remote_region(2, kLateTag).has_value());

    // A window granted for reading never takes a write.
    write.destination = pair.a->remote_region(2, kLateTag)->at(0);
    ASSERT_TRUE(pair.a->post_write(2, write).ok());
    ASSERT_TRUE(pair.until([&] { return pair.saw(1, EventKind::disconnected, 2); })) << testing::describe(pair.events[1]);
    EXPECT_EQ(std::memcmp(pair.buffer_b.data() + 1024, "repair", 6), 0);
}

// A peer reaches exactly the window exposed to it: a write one byte past its end (with
// its key) or under a key it was never given breaks the connection and lands nothing.
TYPED_TEST_P(TransportContract, AWriteOutsideTheWindowBreaksTheConnectionAndLandsNothing)
{
    Pair pair(this->env);
    ASSERT_TRUE(pair.open());
    ASSERT_TRUE(pair.b->expose(1, kLateTag, pair.region_b, 0, 64, RegionAccess::remote_read_write).ok());
    for (int attempt = 0; attempt < 2; ++attempt) {
        ASSERT_TRUE(pair.connect()) << testing::describe(pair.events[1]);
        const RemoteRegion window = *pair.a->remote_region(2, kLateTag);
        WriteRequest write;
        const std::string text = "x";
        write.inline_bytes = std::as_bytes(std::span(text));
        write.destination = attempt == 0 ? RemoteAddr{window.addr + 64, window.rkey}
                                         : RemoteAddr{window.addr, window.rkey ^ 0x5a5a00u};
        write.signaled = true;
        ASSERT_TRUE(pair.a->post_write(2, write).ok());
        ASSERT_TRUE(pair.until([&] { return pair.saw(1, EventKind::disconnected, 2); }))
            << "attempt " << attempt << ": " << testing::describe(pair.events[1]);
        EXPECT_FALSE(pair.saw(1, EventKind::write_completed, 2)) << "attempt " << attempt;
        EXPECT_EQ(pair.last(1, EventKind::disconnected)->reason, DisconnectReason::qp_error) << "attempt " << attempt;
        EXPECT_EQ(pair.a->post_write(2, write).code(), Errc::not_connected);
        EXPECT_EQ(pair.buffer_b[64], std::byte{0});
        EXPECT_EQ(pair.buffer_b[0], std::byte{0});
        ASSERT_TRUE(pair.until([&] { return !pair.b->is_connected(1); }));
    }
}

// connect(self()) is the loopback: the device copies between this node's own regions.
TYPED_TEST_P(TransportContract, LoopbackWritesCopyBetweenOwnRegions)
{
    Pair pair(this->env);
    ASSERT_TRUE(pair.open());
    alignas(4096) static std::array<std::byte, 4096> target;
    target.fill(std::byte{0});
    const RegionId target_region = *pair.a->register_region(target.data(), target.size(), RegionAccess::remote_write);
    ASSERT_TRUE(pair.a->expose(1, kTag, target_region, 0, target.size(), RegionAccess::remote_write).ok());
    ASSERT_TRUE(pair.a->connect(1).ok());
    ASSERT_TRUE(pair.until([&] { return pair.a->is_connected(1); })) << testing::describe(pair.events[1]);
    const RemoteRegion own = *pair.a->remote_region(1, kTag);
    EXPECT_EQ(own.addr, reinterpret_cast<uint64_t>(target.data()));
    for (size_t i = 0; i < pair.buffer_a.size(); ++i) {
        pair.buffer_a[i] = static_cast<std::byte>((i * 31) >> 3);
    }
    // Two writes of two sources each, the last signalled: both land, in order, gathered.
    const LocalSlice first[2] = {{pair.region_a, 0, 1000}, {pair.region_a, 1000, 1000}};
    const LocalSlice second[2] = {{pair.region_a, 2000, 1500}, {pair.region_a, 3500, 500}};
    std::array<WriteRequest, 2> writes;
    writes[0].sources = first;
    writes[0].destination = own.at(64);
    writes[1].sources = second;
    writes[1].destination = own.at(64 + 2000);
    writes[1].signaled = true;
    writes[1].wr_id = 42;
    ASSERT_TRUE(pair.a->post_writes(1, writes).ok());
    ASSERT_TRUE(pair.until([&] { return pair.saw(1, EventKind::write_completed, 1); })) << testing::describe(pair.events[1]);
    EXPECT_EQ(pair.last(1, EventKind::write_completed)->wr_id, 42u);
    EXPECT_EQ(std::memcmp(target.data() + 64, pair.buffer_a.data(), 4000), 0);
    writes[1].imm = 1;
    EXPECT_EQ(pair.a->post_writes(1, writes).code(), Errc::invalid_argument) << "nobody receives an immediate";
    pair.a->disconnect(1);
    EXPECT_TRUE(pair.a->deregister_region(target_region).ok());
}

// Closing a connection is reported to the peer; writes to it then fail at once.
TYPED_TEST_P(TransportContract, ADisconnectIsReportedToThePeer)
{
    Pair pair(this->env);
    ASSERT_TRUE(pair.open() && pair.connect());
    pair.a->disconnect(2);
    EXPECT_FALSE(pair.a->is_connected(2));
    ASSERT_TRUE(pair.until([&] { return pair.saw(2, EventKind::disconnected, 1); })) << testing::describe(pair.events[2]);
    EXPECT_FALSE(pair.b->is_connected(1));
    WriteRequest write;
    const std::string text = "late";
    write.inline_bytes = std::as_bytes(std::span(text));
    write.destination = {reinterpret_cast<uint64_t>(pair.buffer_b.data()), 1};
    EXPECT_EQ(pair.a->post_write(2, write).code(), Errc::not_connected);
}

// A full send queue refuses more (try_again) without losing what it holds; polling
// frees it as writes complete.
TYPED_TEST_P(TransportContract, TheSendQueueDepthBoundsOutstandingWrites)
{
    Pair pair(this->env);
    ASSERT_TRUE(pair.open() && pair.connect());
    const std::string byte = "y";
    WriteRequest write;
    write.inline_bytes = std::as_bytes(std::span(byte));
    write.destination = pair.a->remote_region(2, kTag)->at(0);
    for (uint32_t i = 0; i < QueueConfig{}.send_queue_depth; ++i) {
        ASSERT_TRUE(pair.a->post_write(2, write).ok()) << i;
    }
    EXPECT_EQ(pair.a->post_write(2, write).code(), Errc::try_again);
    ASSERT_TRUE(pair.until([&] { return pair.a->post_write(2, write).ok(); }));
    EXPECT_TRUE(pair.a->is_connected(2));
}

// A peer with another cluster key is refused on both sides; the listener reports the
// attempt under no node id (it proved none).
TYPED_TEST_P(TransportContract, AWrongClusterKeyIsRefusedOnBothSides)
{
    Pair pair(this->env, "another-cluster-key-abcdefghijkl");
    ASSERT_TRUE(pair.open());
    ASSERT_TRUE(pair.a->connect(2).ok());
    ASSERT_TRUE(pair.until([&] { return pair.saw(1, EventKind::refused, 2) && pair.saw(2, EventKind::incoming_refused, 0); }))
        << testing::describe(pair.events[1]) << " / " << testing::describe(pair.events[2]);
    EXPECT_NE(pair.last(1, EventKind::refused)->detail.context().find("bad cluster key"), std::string::npos);
    EXPECT_FALSE(pair.saw(2, EventKind::refused, 1));
    EXPECT_FALSE(pair.a->is_connected(2));
    EXPECT_FALSE(pair.b->is_connected(1));
}

// A node missing from the listener's configuration is refused.
TYPED_TEST_P(TransportContract, ANodeMissingFromTheListIsRefused)
{
    auto listener = this->env.open(1, 2, testing::kClusterKey);  // knows nodes 1 and 2
    auto stranger = this->env.open(3, 3, testing::kClusterKey);  // node 3 knows 1..3
    ASSERT_TRUE(listener && stranger);
    ASSERT_TRUE(listener->listen().ok());
    ASSERT_TRUE(stranger->connect(1).ok());
    std::vector<Event> at_listener, at_stranger;
    bool refused = false;
    for (const uint64_t end = this->env.now_ms() + this->env.wait_limit_ms(); this->env.now_ms() < end && !refused;) {
        listener->poll(this->env.now_ms(), at_listener);
        stranger->poll(this->env.now_ms(), at_stranger);
        this->env.advance();
        refused = testing::has_event(at_stranger, EventKind::refused, 1) &&
                  testing::has_event(at_listener, EventKind::incoming_refused, 0);
    }
    ASSERT_TRUE(refused) << testing::describe(at_stranger) << " / " << testing::describe(at_listener);
    EXPECT_FALSE(testing::has_event(at_listener, EventKind::refused, 3));
    EXPECT_FALSE(listener->is_connected(3));
}

// Connecting to a node nobody listens at ends as unreachable, not in a hang.
TYPED_TEST_P(TransportContract, NothingListeningIsUnreachable)
{
    auto lonely = this->env.open(1, 2, testing::kClusterKey);
    auto silent = this->env.open(2, 2, testing::kClusterKey);  // never listens
    ASSERT_TRUE(lonely && silent);
    ASSERT_TRUE(lonely->connect(2).ok());
    std::vector<Event> events;
    const Event* ended = nullptr;
    for (const uint64_t end = this->env.now_ms() + this->env.wait_limit_ms(); this->env.now_ms() < end && ended == nullptr;) {
        lonely->poll(this->env.now_ms(), events);
        this->env.advance();
        for (const Event& event : events) {
            if (event.peer == 2 && (event.kind == EventKind::disconnected || event.kind == EventKind::refused)) {
                ended = &event;
                break;
            }
        }
    }
    ASSERT_NE(ended, nullptr) << testing::describe(events);
    EXPECT_EQ(ended->reason, DisconnectReason::unreachable) << ended->detail.message();
    EXPECT_FALSE(lonely->is_connected(2));
}

REGISTER_TYPED_TEST_SUITE_P(TransportContract, ConnectExchangesExposedRegionsBothWays,
                            WritesLandInOrderWithImmediateAndCompletion, ReadFetchesRemoteBytes,
                            AGrantOnALiveConnectionArrivesAndAWithdrawalTakesEffect,
                            AWriteOutsideTheWindowBreaksTheConnectionAndLandsNothing, LoopbackWritesCopyBetweenOwnRegions,
                            ADisconnectIsReportedToThePeer, TheSendQueueDepthBoundsOutstandingWrites,
                            AWrongClusterKeyIsRefusedOnBothSides, ANodeMissingFromTheListIsRefused,
                            NothingListeningIsUnreachable);

}  // namespace rcpg::transport::contract
