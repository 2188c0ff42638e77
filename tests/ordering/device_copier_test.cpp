// DeviceCopier on the memory transport's loopback: staged copies hold the complete tail
// at the first entry they fill until their batch completes; a full send queue keeps them
// staged; the payloads land where their entries are.
#include "ordering/device_copier.hpp"
#include "transport/memory_transport.hpp"
#include "tests/transport/transport_test_support.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstring>

namespace rcpg::ordering {
namespace {

using transport::EventKind;

constexpr uint32_t kRingTag = 1;

struct Loopback {
    Loopback()
    {
        ring_region = *node.register_region(ring.data(), ring.size(), transport::RegionAccess::remote_write);
        source_region = *node.register_region(source.data(), source.size(), transport::RegionAccess::local);
        EXPECT_TRUE(node.expose(1, kRingTag, ring_region, 0, ring.size(), transport::RegionAccess::remote_write).ok());
        EXPECT_TRUE(node.connect(1).ok());
        run([&] { return node.is_connected(1); });
        for (size_t i = 0; i < source.size(); ++i) {
            source[i] = static_cast<std::byte>(i * 7 + 1);
        }
    }
    // Polls until `done` or 1000 ms of fabric time; returns done().
    template <typename Done>
    bool run(Done done)
    {
        for (int i = 0; i < 1000 && !done(); ++i) {
            node.poll(++now_ms, events);
        }
        return done();
    }
    uint64_t completed() const
    {
        uint64_t batch = 0;
        for (const transport::Event& event : events) {
            if (event.kind == EventKind::write_completed) {
                batch = std::max(batch, event.wr_id);
            }
        }
        return batch;
    }

    transport::MemoryFabric fabric{3, transport::FaultConfig{1, 3, 0.0}};
    transport::MemoryTransport node{fabric, transport::testing::make_config(1, 2)};
    alignas(4096) std::array<std::byte, 1 << 16> ring{};
    std::array<std::byte, 8192> source{};
    transport::RegionId ring_region, source_region;
    std::vector<transport::Event> events;
    uint64_t now_ms = 0;
};

TEST(DeviceCopier, StagedCopiesHoldTheCompleteTailUntilTheirBatchCompletes)
{
    Loopback loopback;
    ASSERT_TRUE(loopback.node.is_connected(1));
    DeviceCopier copier;
    EXPECT_EQ(copier.complete_tail(4096), 4096u) << "nothing staged: the ring's tail";
    copier.attach(*loopback.node.remote_region(1, kRingTag));
    copier.stage(1024, {loopback.source_region, 0, 2048}, 4096);
    copier.stage(8192, {loopback.source_region, 2048, 4096}, 12288);
    EXPECT_EQ(copier.complete_tail(20000), 1024u) << "staged: the first entry a copy fills";
    ASSERT_TRUE(copier.flush(loopback.node, 1, 7).ok());
    EXPECT_FALSE(copier.has_staged());
    EXPECT_EQ(copier.complete_tail(20000), 1024u) << "in flight: still the first entry";
    copier.stage(16384, {loopback.source_region, 6144, 1024}, 20480);
    ASSERT_TRUE(loopback.run([&] { return loopback.completed() == 7; }));
    copier.completed(7);
    EXPECT_EQ(copier.complete_tail(30000), 16384u) << "batch 7 done: the copy staged since";
    EXPECT_EQ(std::memcmp(loopback.ring.data() + 4096, loopback.source.data(), 2048), 0);
    EXPECT_EQ(std::memcmp(loopback.ring.data() + 12288, loopback.source.data() + 2048, 4096), 0);
    ASSERT_TRUE(copier.flush(loopback.node, 1, 8).ok());
    ASSERT_TRUE(loopback.run([&] { return loopback.completed() == 8; }));
    copier.completed(8);
    EXPECT_EQ(copier.complete_tail(30000), 30000u);
    EXPECT_EQ(std::memcmp(loopback.ring.data() + 20480, loopback.source.data() + 6144, 1024), 0);
}

TEST(DeviceCopier, AFullSendQueueKeepsTheCopiesStaged)
{
    Loopback loopback;
    DeviceCopier copier;
    copier.attach(*loopback.node.remote_region(1, kRingTag));
    // Fill the send queue with writes of our own, then try to post the copies.
    const std::string byte = "z";
    transport::WriteRequest filler;
    filler.inline_bytes = std::as_bytes(std::span(byte));
    filler.destination = loopback.node.remote_region(1, kRingTag)->at(60000);
    for (uint32_t i = 0; i < transport::QueueConfig{}.send_queue_depth; ++i) {
        ASSERT_TRUE(loopback.node.post_write(1, filler).ok());
    }
    for (size_t i = 0; !copier.full(); ++i) {
        copier.stage(100 + 64 * i, {loopback.source_region, 64 * i, 64}, 64 * i);
    }
    EXPECT_EQ(copier.flush(loopback.node, 1, 1).code(), transport::Errc::try_again);
    EXPECT_TRUE(copier.full()) << "nothing was lost";
    EXPECT_EQ(copier.complete_tail(50000), 100u);
    ASSERT_TRUE(loopback.run([&] { return copier.flush(loopback.node, 1, 2).ok(); }));
    ASSERT_TRUE(loopback.run([&] { return loopback.completed() == 2; }));
    copier.completed(2);
    EXPECT_EQ(copier.complete_tail(50000), 50000u);
    EXPECT_EQ(std::memcmp(loopback.ring.data(), loopback.source.data(), DeviceCopier::kMaxStaged * 64), 0);
}

TEST(DeviceCopierDeathTest, StagingOutOfRingOrderStopsTheNode)
{
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    Loopback loopback;
    DeviceCopier copier;
    copier.attach(*loopback.node.remote_region(1, kRingTag));
    copier.stage(4096, {loopback.source_region, 0, 64}, 0);
    EXPECT_DEATH(copier.stage(1024, {loopback.source_region, 0, 64}, 64), "invariant broken: device copy for the entry at 1024");
}

}  // namespace
}  // namespace rcpg::ordering
