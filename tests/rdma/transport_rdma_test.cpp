// The verbs transport for real, on the rxe device scripts/softroce.sh provides
// (RCPG_RDMA_DEV, RCPG_RDMA_ADDR). Every endpoint is in this process on the one device
// address with its own rdma_cm port, except the peer killed mid-stream, which is a child
// process (this binary re-executed with --peer-child) so that SIGKILL can take it.
//
// Covered: the transport contract suite (tests/transport/transport_contract.hpp: regions
// exchanged, writes in order with immediates and completions, reads, grants and
// withdrawals on a live connection, writes outside a window refused, the loopback,
// disconnects, the send queue's bound, refusals), the same suite the memory transport
// passes; and what only verbs has: a region pinned on another thread and adopted;
// memfd-backed (MAP_SHARED) ring registration, with writes seen through a second mapping
// as a client would see them; write + tail commit; wrap-around under credits with a slow
// reader; memory registered around an exposed ring left untouched by writes past it; a
// malformed connect request refused; a peer killed mid-stream reported as an event
// within a bound; sleeping on wait_fd (woken by a WRITE_WITH_IMM posted before or during
// the sleep and by the peer's disconnect, quiet when nothing was sent).
// Without RCPG_RDMA_DEV every test skips with the reason.
#include "transport/memory_region.hpp"
#include "transport/ring_reader.hpp"
#include "transport/ring_writer.hpp"
#include "transport/verbs_transport.hpp"
#include "tests/rdma/rdma_test_support.hpp"
#include "tests/transport/transport_contract.hpp"
#include "tests/transport/transport_test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <random>
#include <thread>

namespace rcpg::transport {
namespace {

using namespace rdma_testing;

constexpr uint32_t kRingTag = 1;
constexpr uint32_t kCreditTag = 2;
// The sleeping ritual of Transport: poll until a poll() reports nothing, arm_wait(), and
// one more poll() that also reports nothing. True when the caller may now sleep.
bool settle_and_arm(Transport& transport, std::vector<Event>& events, const std::function<uint64_t()>& clock = now_ms)
{
    for (int attempt = 0; attempt < 1000; ++attempt) {
        if (transport.poll(clock(), events) > 0 || !transport.arm_wait()) {
            continue;
        }
        if (transport.poll(clock(), events) == 0) {
            return true;
        }
    }
    return false;
}

// Sleeps in poll(2) on the descriptor; true if it became readable within timeout_ms.
bool sleep_until_readable(int fd, int timeout_ms)
{
    pollfd entry{fd, POLLIN, 0};
    int rc = 0;
    do {
        rc = ::poll(&entry, 1, timeout_ms);
    } while (rc < 0 && errno == EINTR);
    return rc == 1 && (entry.revents & POLLIN) != 0;
}

// Node 1 writes into node 2's memfd ring; node 2 credits node 1's credit word.
struct RingSetup {
    RingSetup(uint16_t base_port, uint64_t ring_bytes)
    {
        writer = open(config_for(1, 2, base_port));
        reader = open(config_for(2, 2, base_port));
        if (!writer || !reader) {
            return;
        }
        auto shm = SharedMemory::create("rcpg-test-ring", ring::region_bytes(ring_bytes));
        EXPECT_TRUE(shm.ok()) << shm.status().message();
        ring_memory.emplace(std::move(shm).value());
        client_view.emplace(*ring_memory->map_again());
        ring_region = *reader->register_region(ring_memory->data(), ring_memory->bytes(), RegionAccess::remote_write);
        credit_region = *writer->register_region(&credit_word, sizeof credit_word, RegionAccess::remote_read_write);
        sources.resize(1 << 16);
        source_region = *writer->register_region(sources.data(), sources.size(), RegionAccess::local);
        EXPECT_TRUE(reader->expose(1, kRingTag, ring_region, 0, ring_memory->bytes(), rcpg::transport::RegionAccess::remote_read_write).ok());
        EXPECT_TRUE(writer->expose(2, kCreditTag, credit_region, 0, sizeof credit_word, rcpg::transport::RegionAccess::remote_read_write).ok());
        EXPECT_TRUE(reader->listen().ok());
        EXPECT_TRUE(writer->connect(2).ok());
        pump.endpoints = {writer.get(), reader.get()};
        connected = pump.until([&] { return writer->is_connected(2) && reader->is_connected(1); });
        EXPECT_TRUE(connected) << testing::describe(pump.events[1]) << " / " << testing::describe(pump.events[2]);
        if (!connected) {
            return;
        }
        ring_writer.emplace(*RingWriter::create(*writer, 2, *writer->remote_region(2, kRingTag), &credit_word));
        ring_reader.emplace(*RingReader::create(*reader, 1, {ring_memory->data(), ring_memory->bytes()},
                                                reader->remote_region(1, kCreditTag)->at(0)));
    }
    std::unique_ptr<VerbsTransport> writer, reader;
    std::optional<SharedMemory> ring_memory, client_view;
    alignas(64) rcpg::transport::PeerWord credit_word{};
    std::vector<std::byte> sources;
    RegionId ring_region, credit_region, source_region;
    Pump pump;
    bool connected = false;
    std::optional<RingWriter> ring_writer;
    std::optional<RingReader> ring_reader;
};

// The daemon pins a client's arena on another thread while it goes on driving the
// transport: the region prepared there, adopted here, is a working write source, and one
// prepared by another transport (another protection domain) is refused.
TEST(TransportRdma, RegionPreparedOnAnotherThreadIsAdoptedAndWritesFromIt)
{
    SKIP_WITHOUT_DEVICE();
    auto node = open(config_for(1, 2, 20310));
    auto other = open(config_for(2, 2, 20310));
    ASSERT_TRUE(node && other);
    auto target = SharedMemory::create("rcpg-test-adopt-target", 1 << 16);
    auto arena = SharedMemory::create("rcpg-test-adopt-arena", 8 << 20);
    ASSERT_TRUE(target.ok() && arena.ok());
    const RegionId target_region = *node->register_region(target->data(), target->bytes(), RegionAccess::remote_write);
    ASSERT_TRUE(node->expose(1, kRingTag, target_region, 0, target->bytes(), rcpg::transport::RegionAccess::remote_read_write).ok());
    ASSERT_TRUE(node->connect(1).ok());
    Pump pump;
    pump.endpoints = {node.get()};

    Result<std::unique_ptr<PreparedRegion>> prepared = Status{Errc::try_again, Layer::memory, "not yet"};
    std::atomic<bool> pinned{false};
    std::thread pinner([&] {
        prepared = node->prepare_region(arena->data(), arena->bytes(), RegionAccess::local);
        pinned = true;
    });
    // Connection set-up goes on on this thread meanwhile.
    const bool connected = pump.until([&] { return node->is_connected(1) && pinned.load(); });
    pinner.join();
    ASSERT_TRUE(connected) << testing::describe(pump.events[1]);
    ASSERT_TRUE(prepared.ok()) << prepared.status().message();
    auto adopted = node->adopt_region(std::move(prepared).value());
    ASSERT_TRUE(adopted.ok()) << adopted.status().message();
    EXPECT_EQ(node->region_bytes(*adopted).data(), arena->data());
    EXPECT_EQ(node->region_bytes(*adopted).size(), arena->bytes());

    auto client_view = arena->map_again();
    ASSERT_TRUE(client_view.ok());
    const size_t offset = (8 << 20) - 30000;  // near the end: the whole range is pinned
    for (size_t i = 0; i < 30000; ++i) {
        client_view->data()[offset + i] = static_cast<std::byte>((i * 13) >> 2);
    }
    const LocalSlice source[1] = {{*adopted, offset, 30000}};
    WriteRequest write;
    write.sources = source;
    write.destination = node->remote_region(1, kRingTag)->at(128);
    write.signaled = true;
    write.wr_id = 7;
    ASSERT_TRUE(node->post_write(1, write).ok());
    ASSERT_TRUE(pump.until([&] { return pump.saw(1, EventKind::write_completed, 1); }))
        << testing::describe(pump.events[1]);
    EXPECT_EQ(std::memcmp(target->data() + 128, client_view->data() + offset, 30000), 0);

    auto foreign = other->prepare_region(arena->data(), 4096, RegionAccess::local);
    ASSERT_TRUE(foreign.ok()) << foreign.status().message();
    EXPECT_EQ(node->adopt_region(std::move(foreign).value()).status().code(), Errc::invalid_argument);
    node->disconnect(1);
    pump.poll_once();
}

TEST(TransportRdma, WriteAndTailCommitAreVisibleInTheMemfdRing)
{
    SKIP_WITHOUT_DEVICE();
    RingSetup setup(20220, 4096);
    ASSERT_TRUE(setup.connected);
    // A small record (inline) and a large one (header + zero-copy payload) in one batch.
    const std::string small = "small record";
    for (size_t i = 0; i < 1500; ++i) {
        setup.sources[i] = static_cast<std::byte>(i * 13);
    }
    const LocalSlice large{setup.source_region, 0, 1500};
    ASSERT_TRUE(setup.ring_writer->append_copy(1, std::as_bytes(std::span(small))).ok());
    ASSERT_TRUE(setup.ring_writer->append(2, {&large, 1}).ok());
    // Nothing is visible before the commit.
    setup.pump.poll_once();
    auto early = setup.ring_reader->next();
    ASSERT_TRUE(early.ok());
    EXPECT_FALSE(early->has_value());
    ASSERT_TRUE(setup.ring_writer->commit(true, 42).ok());
    ASSERT_TRUE(setup.pump.until([&] { return setup.pump.saw(1, EventKind::write_completed, 2); }));
    EXPECT_EQ(setup.pump.events[1].back().wr_id, 42u);
    std::optional<RingReader::Record> first, second;
    ASSERT_TRUE(setup.pump.until([&] {
        auto next = setup.ring_reader->next();
        EXPECT_TRUE(next.ok());
        if (next.ok() && next->has_value()) {
            (first ? second : first) = **next;
        }
        return second.has_value();
    }));
    EXPECT_EQ(first->type, 1u);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(first->payload.data()), first->payload.size()), small);
    EXPECT_EQ(second->type, 2u);
    ASSERT_EQ(second->payload.size(), 1500u);
    EXPECT_EQ(std::memcmp(second->payload.data(), setup.sources.data(), 1500), 0);
    // A client's own mapping of the memfd sees the same bytes (no copy anywhere).
    const std::byte* client = setup.client_view->data() + (second->payload.data() - setup.ring_memory->data());
    EXPECT_EQ(std::memcmp(client, setup.sources.data(), 1500), 0);
}

TEST(TransportRdma, WrapsAroundUnderCreditsWithASlowReader)
{
    SKIP_WITHOUT_DEVICE();
    constexpr uint64_t kRingBytes = 4096;
    constexpr uint64_t kRecords = 400;
    RingSetup setup(20230, kRingBytes);
    ASSERT_TRUE(setup.connected);
    std::mt19937_64 random(7);
    constexpr uint32_t kSlots = 32, kSlotBytes = 2048;
    uint64_t next_seq = 0, completed = 0, expected = 0, bytes = 0, try_agains = 0;
    std::deque<std::pair<RingReader::Record, uint64_t>> held;
    const uint64_t deadline = now_ms() + 120000;
    while (expected < kRecords && now_ms() < deadline) {
        uint64_t last = 0;
        bool appended = false;
        while (next_seq < kRecords && next_seq < completed + kSlots) {
            const uint64_t size = 8 + random() % 1500;
            std::byte* source = setup.sources.data() + (next_seq % kSlots) * kSlotBytes;
            std::memcpy(source, &next_seq, 8);
            std::memset(source + 8, static_cast<int>(next_seq & 0xff), size - 8);
            const LocalSlice slice{setup.source_region, (next_seq % kSlots) * kSlotBytes, static_cast<uint32_t>(size)};
            const Status status = setup.ring_writer->append(5, {&slice, 1});
            if (status.code() == Errc::try_again) {
                ++try_agains;
                break;
            }
            ASSERT_TRUE(status.ok()) << status.message();
            last = next_seq++;
            appended = true;
        }
        if (appended) {
            ASSERT_TRUE(setup.ring_writer->commit(true, last + 1).ok());
        }
        setup.pump.poll_once();
        for (const Event& event : setup.pump.events[1]) {
            ASSERT_NE(event.kind, EventKind::disconnected) << event.detail.message();
            if (event.kind == EventKind::write_completed) {
                completed = std::max(completed, event.wr_id);
            }
        }
        setup.pump.events[1].clear();
        ASSERT_FALSE(setup.pump.saw(2, EventKind::disconnected, 1));
        // The reader holds up to four records and checks them again before releasing.
        if (held.size() < 4) {
            auto next = setup.ring_reader->next();
            ASSERT_TRUE(next.ok()) << next.status().message();
            if (next->has_value()) {
                held.emplace_back(**next, expected++);
            }
        }
        if (held.size() == 4 || (!held.empty() && expected == kRecords)) {
            const auto& [record, seq] = held.front();
            uint64_t got = 0;
            std::memcpy(&got, record.payload.data(), 8);
            ASSERT_EQ(got, seq) << "record overwritten or reordered";
            for (size_t i = 8; i < record.payload.size(); ++i) {
                ASSERT_EQ(record.payload[i], static_cast<std::byte>(seq & 0xff)) << "seq " << seq;
            }
            bytes += ring::record_bytes(record.payload.size());
            setup.ring_reader->release(record);
            held.pop_front();
        }
        // Every iteration, not only after a release: a credit request may land later.
        ASSERT_TRUE(setup.ring_reader->publish_credits().ok());
    }
    EXPECT_EQ(expected, kRecords);
    EXPECT_GT(bytes, 20 * kRingBytes) << "ring wrapped";
    EXPECT_GT(try_agains, 0u) << "the writer must have run out of credits at least once";
}

// Peer security: a peer can write only into what was registered for remote writes (the
// rings and control words), never into the memory around it — not even with the key of
// a region it was given, one byte past its end. The device refuses the write, the writer's
// connection fails, and the memory stays as it was.
TEST(TransportRdma, RemoteWritesReachOnlyTheExposedRegionNeverTheMemoryAround)
{
    SKIP_WITHOUT_DEVICE();
    auto writer = open(config_for(1, 2, 20300));
    auto target = open(config_for(2, 2, 20300));
    ASSERT_TRUE(writer && target);
    constexpr size_t kPage = 4096;
    // Three pages: the middle one is a ring; around it private memory (an arena, say),
    // registered for local use only.
    alignas(kPage) static std::array<std::byte, 3 * kPage> memory;
    std::memset(memory.data(), 0x5a, memory.size());
    const RegionId before = *target->register_region(memory.data(), kPage, RegionAccess::local);
    const RegionId ring = *target->register_region(memory.data() + kPage, kPage, RegionAccess::remote_write);
    const RegionId after = *target->register_region(memory.data() + 2 * kPage, kPage, RegionAccess::local);
    ASSERT_TRUE(target->expose(1, kRingTag, ring, 0, kPage, rcpg::transport::RegionAccess::remote_read_write).ok());
    ASSERT_TRUE(target->listen().ok());
    Pump pump;
    pump.endpoints = {writer.get(), target.get()};
    auto connect = [&] {
        pump.events.clear();
        return writer->connect(2).ok() &&
               pump.until([&] { return writer->is_connected(2) && target->is_connected(1); });
    };
    auto write_at = [&](uint64_t address, const std::string& text) {
        WriteRequest write;
        write.inline_bytes = std::as_bytes(std::span(text));
        write.destination = {address, writer->remote_region(2, kRingTag)->rkey};
        write.signaled = true;
        write.wr_id = 7;
        return writer->post_write(2, write).ok();
    };
    ASSERT_TRUE(connect());
    const uint64_t ring_address = writer->remote_region(2, kRingTag)->addr;
    ASSERT_EQ(ring_address, reinterpret_cast<uint64_t>(memory.data() + kPage));

    ASSERT_TRUE(write_at(ring_address + 16, "inside"));
    ASSERT_TRUE(pump.until([&] { return pump.saw(1, EventKind::write_completed, 2); }));
    EXPECT_EQ(std::memcmp(memory.data() + kPage + 16, "inside", 6), 0);

    for (const uint64_t outside : {ring_address + kPage, ring_address + kPage - 2, ring_address - 8}) {
        if (!writer->is_connected(2)) {
            ASSERT_TRUE(connect());
        }
        pump.events.clear();
        ASSERT_TRUE(write_at(outside, "outside"));
        EXPECT_TRUE(pump.until([&] { return pump.saw(1, EventKind::disconnected, 2); }))
            << "a write at ring + " << static_cast<int64_t>(outside - ring_address) << " was not refused";
        EXPECT_FALSE(pump.saw(1, EventKind::write_completed, 2));
    }
    for (size_t index : {size_t{0}, kPage - 1, 2 * kPage, 3 * kPage - 1}) {
        EXPECT_EQ(memory[index], std::byte{0x5a}) << "byte " << index << " outside the ring changed";
    }
    EXPECT_TRUE(target->deregister_region(before).ok());
    EXPECT_TRUE(target->deregister_region(after).ok());
}

TEST(TransportRdma, WaitFdWakesASleeperForImmAndDisconnect)
{
    SKIP_WITHOUT_DEVICE();
    RingSetup setup(20300, 4096);
    ASSERT_TRUE(setup.connected);
    VerbsTransport& a = *setup.writer;  // node 1
    VerbsTransport& b = *setup.reader;  // node 2: the sleeper
    ASSERT_GE(b.wait_fd(), 0);
    std::vector<Event> events_a, events_b;
    const std::string text = "are you awake";
    const auto post_imm = [&](uint32_t imm) {
        WriteRequest write;  // unsignalled: A itself gets no completion for it
        write.inline_bytes = std::as_bytes(std::span(text));
        write.destination = a.remote_region(2, kRingTag)->at(128);
        write.imm = imm;
        return a.post_write(2, write);
    };
    constexpr auto kPeerDelay = std::chrono::milliseconds(200);  // so B is asleep by then

    // Nothing sent: B armed, its descriptor stays quiet.
    ASSERT_TRUE(settle_and_arm(b, events_b)) << testing::describe(events_b);
    EXPECT_FALSE(sleep_until_readable(b.wait_fd(), 50));

    // A posts (and polls its send side) before B sleeps: the completion lands on B's armed
    // CQ, so B's sleep ends at once, and B's next poll() reports the imm with its bytes.
    ASSERT_TRUE(settle_and_arm(b, events_b));
    events_b.clear();
    ASSERT_TRUE(post_imm(0x51ee).ok());
    a.poll(now_ms(), events_a);
    ASSERT_TRUE(sleep_until_readable(b.wait_fd(), 60000)) << "an imm that landed before the sleep did not wake it";
    b.poll(now_ms(), events_b);
    ASSERT_TRUE(testing::has_event(events_b, EventKind::imm_received, 1)) << testing::describe(events_b);
    EXPECT_EQ(events_b.back().imm, 0x51eeu);
    EXPECT_EQ(std::memcmp(setup.ring_memory->data() + 128, text.data(), text.size()), 0);

    // Drained and re-armed, nothing sent: quiet again (the old event is gone).
    ASSERT_TRUE(settle_and_arm(b, events_b));
    EXPECT_FALSE(sleep_until_readable(b.wait_fd(), 50));

    // A real wake-up: B is blocked in poll(2) when A, on another thread, posts.
    events_b.clear();
    Status posted;
    std::thread peer([&] {
        std::this_thread::sleep_for(kPeerDelay);
        posted = post_imm(0x51ef);
    });
    bool woke = sleep_until_readable(b.wait_fd(), 60000);
    peer.join();
    ASSERT_TRUE(posted.ok()) << posted.message();
    ASSERT_TRUE(woke) << "a blocked sleeper was not woken by the imm";
    b.poll(now_ms(), events_b);
    ASSERT_TRUE(testing::has_event(events_b, EventKind::imm_received, 1)) << testing::describe(events_b);
    EXPECT_EQ(events_b.back().imm, 0x51efu);

    // The peer closes while B is blocked: rdma_cm's DISCONNECTED wakes B. B's clock stands
    // still here (a caller woken within the millisecond sees that), so once connected its
    // poll() does not look at the cm channel: the wake-up is found by the ritual instead —
    // poll() reports nothing, arm_wait() sees the cm channel readable and refuses, and the
    // next poll() reads the channel whatever the clock says.
    const uint64_t frozen_ms = now_ms();
    const auto frozen_clock = [&] { return frozen_ms; };
    ASSERT_TRUE(settle_and_arm(b, events_b, frozen_clock));
    events_b.clear();
    std::thread closer([&] {
        std::this_thread::sleep_for(kPeerDelay);
        a.disconnect(2);
    });
    woke = sleep_until_readable(b.wait_fd(), 60000);
    closer.join();
    ASSERT_TRUE(woke) << "a blocked sleeper was not woken by the peer's disconnect";
    EXPECT_EQ(b.poll(frozen_ms, events_b), 0u) << testing::describe(events_b);
    EXPECT_FALSE(b.arm_wait()) << "the cm channel is readable: B must not go back to sleep";
    b.poll(frozen_ms, events_b);
    ASSERT_TRUE(testing::has_event(events_b, EventKind::disconnected, 1)) << testing::describe(events_b);
    EXPECT_EQ(events_b.back().reason, DisconnectReason::remote_close) << events_b.back().detail.message();
    EXPECT_FALSE(b.is_connected(1));
}

TEST(TransportRdma, MalformedConnectRequestIsRefused)
{
    SKIP_WITHOUT_DEVICE();
    auto listener = open(config_for(1, 2, 20280));
    ASSERT_TRUE(listener && listener->listen().ok());
    // A raw rdma_cm client that sends garbage as private data.
    auto channel = create_event_channel();
    ASSERT_TRUE(channel.ok());
    auto id = create_cm_id(channel->get(), nullptr);
    ASSERT_TRUE(id.ok());
    auto source = *ipv4_address(address_env(), 0);
    auto target = *ipv4_address(address_env(), 20281);
    ASSERT_EQ(rdma_resolve_addr(id->get(), reinterpret_cast<sockaddr*>(&source), reinterpret_cast<sockaddr*>(&target), 5000), 0);
    Pump pump{{listener.get()}, {}};
    std::optional<rdma_cm_event_type> last;
    const std::array<uint8_t, 20> garbage{0xde, 0xad, 0xbe, 0xef};
    ASSERT_TRUE(pump.until([&] {
        Status error;
        if (auto event = next_cm_event(channel->get(), error)) {
            last = event->type;
            if (event->type == RDMA_CM_EVENT_ADDR_RESOLVED) {
                EXPECT_EQ(rdma_resolve_route(id->get(), 5000), 0);
            } else if (event->type == RDMA_CM_EVENT_ROUTE_RESOLVED) {
                rdma_conn_param param{};
                param.private_data = garbage.data();
                param.private_data_len = garbage.size();
                param.qp_num = 1;  // no QP: the request is refused before one matters
                EXPECT_EQ(rdma_connect(id->get(), &param), 0);
            }
        }
        return last == RDMA_CM_EVENT_REJECTED || last == RDMA_CM_EVENT_ESTABLISHED || last == RDMA_CM_EVENT_CONNECT_RESPONSE;
    }));
    EXPECT_EQ(*last, RDMA_CM_EVENT_REJECTED);
    pump.poll_once();
    ASSERT_TRUE(pump.saw(1, EventKind::incoming_refused, 0)) << testing::describe(pump.events[1]);
    EXPECT_NE(pump.events[1].back().detail.context().find("bad magic"), std::string::npos);
}

// --peer-child ADDR BASE_PORT: node 2, streams records into node 1's ring until killed.
int run_peer_child(const char* base_port_text)
{
    const auto base_port = static_cast<uint16_t>(std::atoi(base_port_text));
    auto transport = VerbsTransport::create(config_for(2, 2, base_port));
    if (!transport) {
        std::fprintf(stderr, "child: %s\n", transport.status().message().c_str());
        return 2;
    }
    VerbsTransport& t = **transport;
    alignas(64) static rcpg::transport::PeerWord credit_word{};
    const RegionId credit = *t.register_region(&credit_word, sizeof credit_word, RegionAccess::remote_write);
    if (!t.expose(1, kCreditTag, credit, 0, sizeof credit_word, rcpg::transport::RegionAccess::remote_read_write).ok() || !t.connect(1).ok()) {
        return 3;
    }
    std::vector<Event> events;
    std::optional<RingWriter> writer;
    const std::array<std::byte, 100> payload{};
    for (;;) {  // until SIGKILL
        t.poll(now_ms(), events);
        for (const Event& event : events) {
            if (event.kind == EventKind::disconnected || event.kind == EventKind::refused) {
                std::fprintf(stderr, "child: %s\n", event.detail.message().c_str());
                return 4;
            }
        }
        events.clear();
        if (!writer && t.is_connected(1)) {
            writer.emplace(*RingWriter::create(t, 1, *t.remote_region(1, kRingTag), &credit_word));
        }
        if (writer && writer->append_copy(1, payload).ok()) {
            (void)writer->commit();
        }
    }
}

TEST(TransportRdma, PeerKilledMidStreamIsReportedWithinABound)
{
    SKIP_WITHOUT_DEVICE();
    constexpr uint16_t kBasePort = 20290;
    auto reader_node = open(config_for(1, 2, kBasePort));
    ASSERT_TRUE(reader_node);
    std::vector<uint64_t> ring_memory(ring::region_bytes(4096) / 8, 0);
    const RegionId ring_region = *reader_node->register_region(ring_memory.data(), ring_memory.size() * 8, RegionAccess::remote_write);
    ASSERT_TRUE(reader_node->expose(2, kRingTag, ring_region, 0, ring_memory.size() * 8, rcpg::transport::RegionAccess::remote_read_write).ok());
    ASSERT_TRUE(reader_node->listen().ok());

    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        // A fresh process image: no verbs state shared with the parent across fork.
        const std::string port = std::to_string(kBasePort);
        execl("/proc/self/exe", "transport_rdma_test", "--peer-child", port.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    Pump pump{{reader_node.get()}, {}};
    const bool connected = pump.until([&] { return reader_node->is_connected(2); }, 60000);
    std::optional<RingReader> reader;
    uint64_t records = 0;
    if (connected) {
        reader.emplace(*RingReader::create(*reader_node, 2, std::as_writable_bytes(std::span(ring_memory)),
                                           reader_node->remote_region(2, kCreditTag)->at(0)));
        // Mid-stream: take a good number of records (credits keep the child going).
        pump.until([&] {
            auto next = reader->next();
            if (next.ok() && next->has_value()) {
                reader->release(**next);
                ++records;
            }
            EXPECT_TRUE(reader->publish_credits().ok());
            return records >= 200;
        });
    }
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(connected) << testing::describe(pump.events[1]);
    EXPECT_GE(records, 200u);
    const uint64_t killed_at = now_ms();
    ASSERT_TRUE(pump.until([&] { return pump.saw(1, EventKind::disconnected, 2); }, 60000))
        << "no disconnect event within 60 s of SIGKILL: " << testing::describe(pump.events[1]);
    std::printf("disconnect reported %llu ms after SIGKILL: %s\n", static_cast<unsigned long long>(now_ms() - killed_at),
                pump.events[1].back().detail.message().c_str());
    EXPECT_FALSE(reader_node->is_connected(2));
    const std::string byte = "x";
    WriteRequest write;
    write.inline_bytes = std::as_bytes(std::span(byte));
    EXPECT_EQ(reader_node->post_write(2, write).code(), Errc::not_connected);
}

// The transport contract (tests/transport/transport_contract.hpp), the same suite the
// memory transport passes: what the simulation relies on holds on verbs too.
struct VerbsEnv {
    // Ports of their own for each test's endpoints: a listener of an earlier test may still
    // be closing.
    uint16_t base_port = next_base_port();

    static uint16_t next_base_port()
    {
        static uint16_t next = 21000;
        next = static_cast<uint16_t>(next + 10);
        return next;
    }
    bool available() const { return device_env() != nullptr && address_env() != nullptr; }
    std::string why_unavailable() const
    {
        return "RCPG_RDMA_DEV/RCPG_RDMA_ADDR unset: run through scripts/softroce.sh run -- <this binary>";
    }
    std::unique_ptr<Transport> open(NodeId self, int nodes, const std::string& key)
    {
        return rdma_testing::open(config_for(self, nodes, base_port, key));
    }
    uint64_t now_ms() const { return rdma_testing::now_ms(); }
    void advance() {}
    uint64_t wait_limit_ms() const { return kStepTimeoutMs; }
};

}  // namespace

namespace contract {
INSTANTIATE_TYPED_TEST_SUITE_P(Verbs, TransportContract, VerbsEnv);
}  // namespace contract

}  // namespace rcpg::transport

int main(int argc, char** argv)
{
    if (argc == 3 && std::strcmp(argv[1], "--peer-child") == 0) {
        return rcpg::transport::run_peer_child(argv[2]);
    }
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
