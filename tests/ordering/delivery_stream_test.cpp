// DeliveryStream over the memory transport: the sequencer (node 1) copies byte ranges of
// its own delivery ring into node 2's ring at the same offsets, then the tail into node 2's
// ring header (cluster_tail) with an immediate; a range that wraps goes as two writes;
// nothing new posts nothing; the sequencer never writes past the node's credit + one
// ring; credit() follows what the node publishes and ignores values outside
// [last credit, sent]; request_credit() asks once per position (with an immediate that
// wakes the node, like the tail's). Last, a seeded simulation
// with delays checks at every step that whenever node 2 sees cluster_tail = T, every byte
// it has not yet consumed before T is already the sequencer's byte.
#include "ordering/cluster_wire.hpp"
#include "ordering/delivery_stream.hpp"
#include "tests/transport/transport_test_support.hpp"
#include "transport/memory_transport.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace rcpg::ordering {
namespace {

using transport::Errc;
using transport::EventKind;
using transport::FaultConfig;
using transport::Layer;
using transport::MemoryFabric;
using transport::MemoryTransport;
using transport::RegionAccess;
using transport::RegionId;
using transport::RemoteRegion;
using transport::testing::make_config;

constexpr transport::NodeId kSequencer = 1;
constexpr transport::NodeId kNode = 2;
constexpr uint64_t kRingBytes = 64 * 1024;
constexpr uint64_t kRegionBytes = delivery::kPageBytes + kRingBytes;  // header page, then the data

// The byte the sequencer's ring holds at absolute position `position` (differs per lap).
std::byte expected_byte(uint64_t position)
{
    uint64_t word = (position / 8) * 0x9e3779b97f4a7c15ull;
    word ^= word >> 29;
    word *= 0xbf58476d1ce4e5b9ull;
    word ^= word >> 32;
    return static_cast<std::byte>(word >> (8 * (position % 8)));
}

// The sequencer and one node, connected; each has a ring region laid out like a delivery
// ring mapping. The node's takes remote writes; the sequencer's is the source of them.
struct StreamPair {
    explicit StreamPair(uint64_t seed, FaultConfig faults = {})
        : fabric(seed, faults),
          sequencer(fabric, make_config(kSequencer, 2)),
          node(fabric, make_config(kNode, 2)),
          node_ring(kRegionBytes / 8, 0),
          local_ring(kRegionBytes / 8, 0)
    {
        // As a node registers its ring: the data area, and the sequencer's words apart.
        node_ring_region = *node.register_region(node_data(), kRingBytes, RegionAccess::remote_write);
        node_control_region = *node.register_region(node_header() + wire::kRingControlOffset, wire::kRingControlBytes,
                                                    RegionAccess::remote_write);
        local_ring_region = *sequencer.register_region(local_data(), kRingBytes, RegionAccess::local);
        credit_region = *sequencer.register_region(&credit_word, sizeof credit_word, RegionAccess::remote_write);
        EXPECT_TRUE(node.expose(kSequencer, wire::kTagDeliveryRing, node_ring_region, 0, kRingBytes,
                                RegionAccess::remote_write)
                        .ok());
        EXPECT_TRUE(node.expose(kSequencer, wire::kTagRingControl, node_control_region, 0, wire::kRingControlBytes,
                                RegionAccess::remote_write)
                        .ok());
        EXPECT_TRUE(sequencer.expose(kNode, wire::kTagDeliveryCredit, credit_region, 0, sizeof credit_word,
                                     RegionAccess::remote_write)
                        .ok());
        EXPECT_TRUE(node.listen().ok());
        EXPECT_TRUE(sequencer.connect(kNode).ok());
        for (int i = 0; i < 500 && !(sequencer.is_connected(kNode) && node.is_connected(kSequencer)); ++i) {
            step();
        }
        EXPECT_TRUE(sequencer.is_connected(kNode) && node.is_connected(kSequencer))
            << transport::testing::describe(sequencer_events);
        sequencer_events.clear();
        node_events.clear();
    }

    RemoteRegion remote_ring() const { return *sequencer.remote_region(kNode, wire::kTagDeliveryRing); }
    RemoteRegion remote_control() const { return *sequencer.remote_region(kNode, wire::kTagRingControl); }

    transport::Result<DeliveryStream> create(uint64_t start_position = 0)
    {
        return DeliveryStream::create(sequencer, kNode, remote_ring(), remote_control(), local_ring_region, kRingBytes,
                                      &credit_word, start_position);
    }

    void step(uint64_t ms = 1)
    {
        for (uint64_t end = now_ms + ms; now_ms < end;) {
            ++now_ms;
            sequencer.poll(now_ms, sequencer_events);
            node.poll(now_ms, node_events);
        }
    }

    std::byte* local_data() { return reinterpret_cast<std::byte*>(local_ring.data()) + delivery::kPageBytes; }
    std::byte* node_data() { return reinterpret_cast<std::byte*>(node_ring.data()) + delivery::kPageBytes; }
    std::byte* node_header() { return reinterpret_cast<std::byte*>(node_ring.data()); }

    // Writes `bytes` into the sequencer's ring from `position` on, wrapping at the end.
    void write_local(uint64_t position, std::span<const std::byte> bytes)
    {
        for (size_t i = 0; i < bytes.size(); ++i) {
            local_data()[(position + i) & (kRingBytes - 1)] = bytes[i];
        }
    }
    // Fills [from, to) of the sequencer's ring with expected_byte().
    void fill_local(uint64_t from, uint64_t to)
    {
        for (uint64_t position = from; position < to; ++position) {
            local_data()[position & (kRingBytes - 1)] = expected_byte(position);
        }
    }
    std::byte node_byte(uint64_t position) { return node_data()[position & (kRingBytes - 1)]; }

    uint64_t node_header_word(size_t offset)
    {
        uint64_t value = 0;
        std::memcpy(&value, node_header() + offset, sizeof value);
        return value;
    }
    uint64_t node_cluster_tail() { return node_header_word(delivery::kClusterTailOffset); }
    uint64_t node_credit_request() { return node_header_word(delivery::kCreditRequestOffset); }

    // Node 2 publishes `consumed` into the sequencer's credit word, as its daemon does.
    void publish_credit(uint64_t consumed)
    {
        transport::WriteRequest write;
        write.inline_bytes = std::as_bytes(std::span<const uint64_t>(&consumed, 1));
        write.destination = node.remote_region(kSequencer, wire::kTagDeliveryCredit)->at(0);
        ASSERT_TRUE(node.post_write(kSequencer, write).ok());
    }

    size_t imm_count() const
    {
        return static_cast<size_t>(std::count_if(node_events.begin(), node_events.end(), [](const transport::Event& e) {
            return e.kind == EventKind::imm_received && e.peer == kSequencer;
        }));
    }

    MemoryFabric fabric;
    MemoryTransport sequencer;
    MemoryTransport node;
    std::vector<uint64_t> node_ring;   // uint64_t: 8-byte aligned, like the mapping
    std::vector<uint64_t> local_ring;
    rcpg::transport::PeerWord credit_word{};
    RegionId node_ring_region, node_control_region, local_ring_region, credit_region;
    std::vector<transport::Event> sequencer_events, node_events;
    uint64_t now_ms = 0;
};

delivery::EntryHeader data_entry(uint64_t seq, uint32_t payload_bytes)
{
    delivery::EntryHeader entry{};
    entry.entry_bytes =
        static_cast<uint32_t>(delivery::align_up(sizeof(delivery::EntryHeader) + payload_bytes, delivery::kEntryAlignBytes));
    entry.kind = delivery::EntryKind::data;
    entry.seq = seq;
    entry.group_id = 1;
    entry.nodeid = kSequencer;
    entry.pid = 100;
    entry.payload_bytes = payload_bytes;
    entry.payload_offset = sizeof(delivery::EntryHeader);
    entry.total_bytes = payload_bytes;
    return entry;
}

// An entry's bytes: header, payload, zero tail padding.
std::vector<std::byte> entry_bytes(uint64_t seq, std::string_view payload)
{
    const delivery::EntryHeader entry = data_entry(seq, static_cast<uint32_t>(payload.size()));
    std::vector<std::byte> bytes(entry.entry_bytes);
    std::memcpy(bytes.data(), &entry, sizeof entry);
    std::memcpy(bytes.data() + sizeof entry, payload.data(), payload.size());
    return bytes;
}

TEST(DeliveryStream, ReplicatedEntriesLandAtTheSameOffsetsThenTheTail)
{
    StreamPair pair(1);
    auto stream = pair.create();
    ASSERT_TRUE(stream.ok()) << stream.status().message();
    // 56 + 344 bytes: one range, above the inline size, so the write reads the sequencer's
    // ring when it lands (zero copy).
    const std::vector<std::byte> first = entry_bytes(1, "hello cluster");
    const std::vector<std::byte> second = entry_bytes(2, std::string(300, 's'));
    pair.write_local(0, first);
    pair.write_local(first.size(), second);
    const uint64_t tail = first.size() + second.size();

    ASSERT_TRUE(stream->replicate(tail).ok());
    EXPECT_EQ(pair.fabric.in_flight(), 2u) << "one write for the bytes, one for the tail";
    EXPECT_EQ(stream->sent(), tail);
    EXPECT_EQ(pair.node_cluster_tail(), 0u) << "nothing lands before the fabric runs";

    pair.step();
    EXPECT_EQ(std::memcmp(pair.node_data(), pair.local_data(), tail), 0) << "same bytes at the same offsets";
    EXPECT_EQ(pair.node_cluster_tail(), tail);
    EXPECT_EQ(pair.imm_count(), 1u) << transport::testing::describe(pair.node_events);
    EXPECT_EQ(pair.node_byte(tail), std::byte{0}) << "nothing written past the tail";
    // What the node's daemon does next: check the entries where they landed.
    const std::span<const std::byte> landed(pair.node_data(), kRingBytes);
    auto checked = wire::check_entry(landed, 0, kRingBytes, tail);
    ASSERT_TRUE(checked.has_value());
    EXPECT_EQ(checked->seq, 1u);
    checked = wire::check_entry(landed.subspan(first.size()), first.size(), kRingBytes, tail - first.size());
    ASSERT_TRUE(checked.has_value());
    EXPECT_EQ(checked->seq, 2u);
    EXPECT_EQ(checked->payload_bytes, 300u);
}

// The insides of skip entries are left out: where a member's reader holds a payload
// there, the bytes are its own, and the sequencer's ring may not have them (a node that
// took over after the hold was taken). Many of them go in several posts, each ending
// after one, until the whole range and its tail are there.
TEST(DeliveryStream, TheInsidesOfSkipsAreNotReplicated)
{
    StreamPair pair(3);
    const uint64_t start = kRingBytes + 4096;  // a later lap
    auto stream = pair.create(start);
    ASSERT_TRUE(stream.ok()) << stream.status().message();
    const uint64_t tail = start + 40 * 512;
    pair.fill_local(start, tail);
    // Twenty skips of 512 bytes, one every other 512; the node's ring holds 0x77 there.
    std::deque<DeliveryRing::Range> gaps;
    for (uint64_t skip = start + 512; skip < tail; skip += 1024) {
        gaps.push_back({skip + delivery::kEntryAlignBytes, skip + 512});
        for (uint64_t position = skip; position < skip + 512; ++position) {
            pair.node_data()[position & (kRingBytes - 1)] = std::byte{0x77};
        }
    }
    int posts = 0;
    while (stream->sent() < tail) {
        ASSERT_TRUE(stream->replicate(tail, gaps).ok());
        ++posts;
        ASSERT_LT(posts, 10) << "no progress at " << stream->sent();
    }
    EXPECT_GT(posts, 1) << "twenty gaps should take more than one post";
    pair.step();
    EXPECT_EQ(pair.node_cluster_tail(), tail);
    size_t gap = 0;
    for (uint64_t position = start; position < tail; ++position) {
        while (gap < gaps.size() && gaps[gap].end <= position) {
            ++gap;
        }
        const bool inside = gap < gaps.size() && position >= gaps[gap].begin;
        ASSERT_EQ(pair.node_byte(position), inside ? std::byte{0x77} : expected_byte(position))
            << "position " << position << (inside ? " (inside a skip)" : "");
    }
}

TEST(DeliveryStream, RangeThatWrapsTheRingEndGoesAsTwoWrites)
{
    StreamPair pair(2);
    const uint64_t start = 3 * kRingBytes - 64;  // a later lap, 64 bytes before the end
    auto stream = pair.create(start);
    ASSERT_TRUE(stream.ok()) << stream.status().message();
    const uint64_t tail = start + 64 + 256;
    pair.fill_local(start, tail);

    ASSERT_TRUE(stream->replicate(tail).ok());
    EXPECT_EQ(pair.fabric.in_flight(), 3u) << "the last 64 bytes, the first 256, then the tail";
    pair.step();
    for (uint64_t position = start; position < tail; ++position) {
        ASSERT_EQ(pair.node_byte(position), expected_byte(position)) << "position " << position;
    }
    EXPECT_EQ(std::memcmp(pair.node_data() + kRingBytes - 64, pair.local_data() + kRingBytes - 64, 64), 0);
    EXPECT_EQ(std::memcmp(pair.node_data(), pair.local_data(), 256), 0);
    EXPECT_EQ(pair.node_data()[256], std::byte{0}) << "nothing past the wrapped part";
    EXPECT_EQ(pair.node_data()[kRingBytes - 65], std::byte{0}) << "nothing before the start";
    EXPECT_EQ(pair.node_cluster_tail(), tail);
    EXPECT_EQ(pair.imm_count(), 1u);
}

TEST(DeliveryStream, RangeOfAWholeRingGoesAsOneWriteFromTheRingStart)
{
    StreamPair pair(3);
    auto stream = pair.create();
    ASSERT_TRUE(stream.ok());
    pair.fill_local(0, kRingBytes);
    ASSERT_TRUE(stream->replicate(kRingBytes).ok()) << "credit 0 + one ring: allowed";
    EXPECT_EQ(pair.fabric.in_flight(), 2u);
    pair.step();
    EXPECT_EQ(std::memcmp(pair.node_data(), pair.local_data(), kRingBytes), 0);
    EXPECT_EQ(pair.node_cluster_tail(), kRingBytes);
}

TEST(DeliveryStream, NothingNewPostsNothing)
{
    StreamPair pair(4);
    auto stream = pair.create(4096);
    ASSERT_TRUE(stream.ok());
    ASSERT_TRUE(stream->replicate(4096).ok()) << "tail = start";
    EXPECT_EQ(pair.fabric.in_flight(), 0u);

    pair.fill_local(4096, 4096 + 128);
    ASSERT_TRUE(stream->replicate(4096 + 128).ok());
    pair.step();
    ASSERT_EQ(pair.imm_count(), 1u);
    ASSERT_TRUE(stream->replicate(4096 + 128).ok()) << "the same tail again";
    EXPECT_EQ(pair.fabric.in_flight(), 0u);
    pair.step();
    EXPECT_EQ(pair.imm_count(), 1u) << "no second tail write";
}

TEST(DeliveryStream, ReplicatingBeyondCreditPlusOneRingIsRefused)
{
    StreamPair pair(5);
    auto stream = pair.create();
    ASSERT_TRUE(stream.ok());
    pair.fill_local(0, kRingBytes);
    ASSERT_TRUE(stream->replicate(kRingBytes - 8).ok());
    pair.step();

    const transport::Status refused = stream->replicate(kRingBytes + 8);
    EXPECT_EQ(refused.code(), Errc::invalid_argument);
    EXPECT_EQ(refused.layer(), Layer::ring);
    EXPECT_EQ(refused.context(), "replicating beyond the node's credit");
    EXPECT_EQ(pair.fabric.in_flight(), 0u) << "nothing posted";
    EXPECT_EQ(stream->sent(), kRingBytes - 8) << "sent unchanged";

    pair.publish_credit(8);  // the node consumed the first 8 bytes
    pair.step();
    pair.fill_local(kRingBytes, kRingBytes + 8);
    ASSERT_TRUE(stream->replicate(kRingBytes + 8).ok()) << "credit 8 + one ring";
    pair.step();
    EXPECT_EQ(pair.node_cluster_tail(), kRingBytes + 8);
    EXPECT_EQ(pair.node_byte(kRingBytes), expected_byte(kRingBytes)) << "the next lap overwrote offset 0";
}

// Replicating a tail behind what was sent would rewrite entries a node has applied: the
// caller broke the protocol's invariant, and the node stops rather than go on (always-on
// assertion), naming the positions.
TEST(DeliveryStreamDeathTest, ATailBehindWhatWasSentStopsTheNode)
{
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    StreamPair pair(6);
    auto stream = pair.create();
    ASSERT_TRUE(stream.ok());
    pair.fill_local(0, 256);
    ASSERT_TRUE(stream->replicate(256).ok());
    pair.step();
    EXPECT_DEATH((void)stream->replicate(128), "invariant broken: replicating up to 128, behind what was sent \\(256\\)");
    EXPECT_EQ(stream->sent(), 256u);
}

TEST(DeliveryStream, CreditFollowsThePublishedPositionWithinLastCreditAndSent)
{
    StreamPair pair(7);
    auto stream = pair.create();
    ASSERT_TRUE(stream.ok());
    pair.fill_local(0, 4096);
    ASSERT_TRUE(stream->replicate(4096).ok());
    pair.step();
    EXPECT_EQ(stream->credit(), 0u) << "nothing published yet";

    pair.publish_credit(1024);
    pair.step();
    EXPECT_EQ(stream->credit(), 1024u);
    pair.publish_credit(8192);  // beyond what was sent (4096)
    pair.step();
    EXPECT_EQ(stream->credit(), 1024u) << "8192 > sent: ignored";
    pair.publish_credit(512);  // below the last credit
    pair.step();
    EXPECT_EQ(stream->credit(), 1024u) << "512 < 1024: ignored";
    pair.publish_credit(4096);
    pair.step();
    EXPECT_EQ(stream->credit(), 4096u) << "exactly sent: accepted";
}

TEST(DeliveryStream, CreditWordBelowTheStartPositionIsIgnored)
{
    StreamPair pair(8);
    auto stream = pair.create(2 * kRingBytes);
    ASSERT_TRUE(stream.ok());
    EXPECT_EQ(pair.credit_word.load(), 0u);
    EXPECT_EQ(stream->credit(), 2 * kRingBytes) << "a node admitted at 2 rings: credit starts there";
}

TEST(DeliveryStream, RequestCreditWritesThePositionIntoTheNodeHeaderOnce)
{
    StreamPair pair(9);
    auto stream = pair.create();
    ASSERT_TRUE(stream.ok());
    pair.fill_local(0, 4096);
    ASSERT_TRUE(stream->replicate(4096).ok());
    pair.step();

    stream->request_credit(2048);
    EXPECT_EQ(pair.fabric.in_flight(), 1u);
    pair.step();
    EXPECT_EQ(pair.node_credit_request(), 2048u);
    EXPECT_EQ(pair.imm_count(), 2u) << "the request carries an immediate too: it wakes a sleeping node";

    stream->request_credit(2048);
    EXPECT_EQ(pair.fabric.in_flight(), 0u) << "the same position again: nothing posted";
    stream->request_credit(1024);
    EXPECT_EQ(pair.fabric.in_flight(), 0u) << "a lower position: nothing posted";
    stream->request_credit(8192);
    EXPECT_EQ(pair.fabric.in_flight(), 0u) << "beyond what was sent: nothing posted";

    stream->request_credit(4096);
    EXPECT_EQ(pair.fabric.in_flight(), 1u);
    pair.step();
    EXPECT_EQ(pair.node_credit_request(), 4096u);
    EXPECT_EQ(pair.node_cluster_tail(), 4096u) << "the tail word is untouched";
}

TEST(DeliveryStream, CreateRefusesARemoteRingOfAnotherSize)
{
    StreamPair pair(10);
    RemoteRegion smaller = pair.remote_ring();
    smaller.bytes = kRingBytes / 2;
    auto stream = DeliveryStream::create(pair.sequencer, kNode, smaller, pair.remote_control(), pair.local_ring_region,
                                         kRingBytes, &pair.credit_word, 0);
    ASSERT_FALSE(stream.ok());
    EXPECT_EQ(stream.status().code(), Errc::invalid_argument);
    EXPECT_EQ(stream.status().layer(), Layer::ring);
    EXPECT_EQ(stream.status().context(), "node 2 exposes a ring of 32768 bytes; the sequencer's has 65536");

    RemoteRegion larger = pair.remote_ring();
    auto doubled = DeliveryStream::create(pair.sequencer, kNode, larger, pair.remote_control(), pair.local_ring_region,
                                          kRingBytes / 2, &pair.credit_word, 0);
    ASSERT_FALSE(doubled.ok());
    EXPECT_EQ(doubled.status().context(), "node 2 exposes a ring of 65536 bytes; the sequencer's has 32768");
}

TEST(DeliveryStream, CreateRefusesControlWordsOfAnotherSize)
{
    // The sequencer writes three words there and nothing else: a node that exposes more
    // (its header page) or less is refused before anything is written.
    StreamPair pair(13);
    for (uint64_t bytes : {uint64_t{delivery::kPageBytes}, wire::kRingControlBytes - 8}) {
        RemoteRegion control = pair.remote_control();
        control.bytes = bytes;
        auto stream = DeliveryStream::create(pair.sequencer, kNode, pair.remote_ring(), control,
                                             pair.local_ring_region, kRingBytes, &pair.credit_word, 0);
        ASSERT_FALSE(stream.ok()) << bytes;
        EXPECT_EQ(stream.status().context(), "node 2 exposes " + std::to_string(bytes) +
                                                 " bytes of ring control words; they are 24");
    }
}

TEST(DeliveryStream, CreateRefusesARingSizeThatIsNoPowerOfTwo)
{
    StreamPair pair(12);
    for (uint64_t ring_bytes : {kRingBytes - delivery::kPageBytes, uint64_t{delivery::kPageBytes / 2}, uint64_t{0}}) {
        RemoteRegion remote = pair.remote_ring();
        remote.bytes = ring_bytes;  // consistent with the size: only the size is wrong
        auto stream = DeliveryStream::create(pair.sequencer, kNode, remote, pair.remote_control(),
                                             pair.local_ring_region, ring_bytes, &pair.credit_word, 0);
        ASSERT_FALSE(stream.ok()) << ring_bytes;
        EXPECT_EQ(stream.status().code(), Errc::invalid_argument);
        EXPECT_EQ(stream.status().context(), "ring of " + std::to_string(ring_bytes) +
                                                 " bytes: needs a power of two of at least a page");
    }
}

TEST(DeliveryStream, CreateRefusesAMissingCreditWordOrAMisalignedStart)
{
    StreamPair pair(11);
    auto no_credit = DeliveryStream::create(pair.sequencer, kNode, pair.remote_ring(), pair.remote_control(),
                                            pair.local_ring_region, kRingBytes, nullptr, 0);
    ASSERT_FALSE(no_credit.ok());
    EXPECT_EQ(no_credit.status().code(), Errc::invalid_argument);
    EXPECT_EQ(no_credit.status().context(), "credit word missing or start position misaligned");
    auto misaligned = pair.create(4);
    ASSERT_FALSE(misaligned.ok());
    EXPECT_EQ(misaligned.status().code(), Errc::invalid_argument);
    EXPECT_EQ(misaligned.status().context(), "credit word missing or start position misaligned");
}

// ---------------------------------------------------------------------------------------
// Simulation: a seeded stream of chunks through a ring that wraps many times, with delays.
//
// The sequencer appends chunks of seeded sizes (8 bytes .. 8 KiB: inline and zero-copy
// writes) while credit + ring allows, replicates every few chunks, and asks for credit
// when it is short of room. Node 2 looks at its cluster_tail after every millisecond and
// checks every byte in [consumed, tail); it consumes up to what it has seen at seeded
// times and publishes its credit lazily or when asked, as its daemon does.

struct SimulationResult {
    uint64_t produced = 0;
    uint64_t tails_seen = 0;
    uint64_t bytes_checked = 0;
    uint64_t credit_requests = 0;
};

void run_simulation(uint64_t seed, FaultConfig faults, uint64_t stream_bytes, SimulationResult& result)
{
    SCOPED_TRACE("seed " + std::to_string(seed));
    StreamPair pair(seed, faults);
    auto created = pair.create();
    ASSERT_TRUE(created.ok()) << created.status().message();
    DeliveryStream& stream = *created;
    std::mt19937_64 random(seed * 7919 + 1);

    uint64_t produced = 0;         // sequencer: bytes written into its ring
    uint64_t batches_posted = 0;
    uint64_t credit_requests_posted = 0;
    uint64_t consumed = 0;         // node: what it has consumed
    uint64_t published = 0;       // node: what it last wrote into the credit word
    uint64_t last_tail = 0;

    auto node_observes = [&] {
        const uint64_t tail = pair.node_cluster_tail();
        ASSERT_GE(tail, last_tail) << "cluster_tail went backwards";
        ASSERT_LE(tail, stream.sent()) << "a tail that was never sent";
        ASSERT_LE(tail - consumed, kRingBytes) << "more unconsumed bytes than the ring holds";
        for (uint64_t position = consumed; position < tail; ++position) {
            ASSERT_EQ(pair.node_byte(position), expected_byte(position))
                << "at ms " << pair.now_ms << ": tail " << tail << " but position " << position
                << " (unconsumed from " << consumed << ") does not hold the sequencer's byte";
        }
        result.bytes_checked += tail - consumed;
        if (tail != last_tail) {
            ++result.tails_seen;
        }
        last_tail = tail;
    };

    for (int ms = 0; ms < 100000 && (produced < stream_bytes || last_tail < produced); ++ms) {
        // Sequencer: append what credit allows.
        const int chunks = static_cast<int>(random() % 4);
        for (int i = 0; i < chunks && produced < stream_bytes; ++i) {
            const uint64_t words = random() % 2 == 0 ? 16 : 1024;  // separate draws: same order on every compiler
            const uint64_t size = 8 * (1 + random() % words);
            if (produced + size > stream.credit() + kRingBytes) {
                const size_t before = pair.fabric.in_flight();
                stream.request_credit(stream.sent());
                credit_requests_posted += pair.fabric.in_flight() - before;
                break;
            }
            pair.fill_local(produced, produced + size);
            produced += size;
        }
        if (produced > stream.sent() && (random() % 3 != 0 || produced >= stream_bytes)) {
            const transport::Status status = stream.replicate(produced);
            if (status.ok()) {
                ++batches_posted;
            } else {
                ASSERT_EQ(status.code(), Errc::try_again) << status.message();
            }
        }

        pair.step();
        node_observes();
        if (::testing::Test::HasFatalFailure()) {
            return;
        }

        // Node: consume some of what it has seen, publish lazily or when asked.
        if (random() % 3 == 0 && last_tail > consumed) {
            const bool everything = random() % 2 == 0;
            consumed += everything ? last_tail - consumed : 8 * (1 + random() % ((last_tail - consumed) / 8));
        }
        const bool asked = pair.node_credit_request() > published;
        if (consumed > published && (asked || consumed - published >= kRingBytes / 4)) {
            pair.publish_credit(consumed);
            published = consumed;
        }
    }
    ASSERT_EQ(last_tail, produced) << "the stream drained";
    ASSERT_GE(produced, stream_bytes);
    pair.step(faults.max_delay_ms + 1);
    EXPECT_EQ(pair.imm_count(), batches_posted + credit_requests_posted)
        << "one immediate per replicated batch and per credit request";
    EXPECT_EQ(pair.fabric.in_flight(), 0u);
    result.produced = produced;
    result.credit_requests = credit_requests_posted;
}

TEST(DeliveryStreamSimulation, TailNeverOvertakesTheDataWithDelays)
{
    const FaultConfig faults{1, 12, 0.0};
    const uint64_t stream_bytes = 8 * kRingBytes;  // eight laps
    uint64_t credit_requests = 0;
    for (uint64_t seed = 1; seed <= 12; ++seed) {
        SimulationResult result;
        run_simulation(seed, faults, stream_bytes, result);
        if (HasFatalFailure()) {
            return;
        }
        EXPECT_GT(result.tails_seen, 20u) << "seed " << seed << ": the node saw the tail move many times";
        credit_requests += result.credit_requests;
    }
    EXPECT_GT(credit_requests, 0u) << "the sequencer ran short of credit and asked";
}

TEST(DeliveryStreamSimulation, TailNeverOvertakesTheDataWithoutDelays)
{
    SimulationResult result;
    run_simulation(99, FaultConfig{}, 4 * kRingBytes, result);
    EXPECT_GE(result.produced, 4 * kRingBytes);
}

}  // namespace
}  // namespace rcpg::ordering
