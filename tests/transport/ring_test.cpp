// RingWriter and RingReader over the memory transport: a record is visible only after its
// tail commit; small records that follow each other go as one write; a ring much smaller than the stream wraps many times while a slow reader
// holds records, and credits keep the writer from overwriting any of them; a writer out
// of credits gets try_again until the reader publishes; a broken link is an event.
#include "transport/memory_transport.hpp"
#include "transport/ring_reader.hpp"
#include "transport/ring_writer.hpp"
#include "transport_test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <random>

namespace rcpg::transport {
namespace {

constexpr uint32_t kRingTag = 1;
constexpr uint32_t kCreditTag = 2;
constexpr uint32_t kSourceSlots = 64;
constexpr uint32_t kSourceSlotBytes = 512;

std::byte pattern(uint64_t seq, size_t i) { return static_cast<std::byte>((seq * 131 + i * 7) & 0xff); }

struct RingPair {
    RingPair(uint64_t seed, uint64_t ring_bytes, FaultConfig faults = {})
        : fabric(seed, faults),
          writer_node(fabric, testing::make_config(1, 2)),
          reader_node(fabric, testing::make_config(2, 2)),
          ring_memory((ring::region_bytes(ring_bytes)) / 8, 0),
          sources(kSourceSlots * kSourceSlotBytes)
    {
        ring_region = *reader_node.register_region(ring_memory.data(), ring_memory.size() * 8, RegionAccess::remote_write);
        credit_region = *writer_node.register_region(&credit_word, sizeof credit_word, RegionAccess::remote_write);
        source_region = *writer_node.register_region(sources.data(), sources.size(), RegionAccess::local);
        EXPECT_TRUE(reader_node.expose(1, kRingTag, ring_region, 0, ring_memory.size() * 8, rcpg::transport::RegionAccess::remote_read_write).ok());
        EXPECT_TRUE(writer_node.expose(2, kCreditTag, credit_region, 0, sizeof credit_word, rcpg::transport::RegionAccess::remote_read_write).ok());
        EXPECT_TRUE(reader_node.listen().ok());
        EXPECT_TRUE(writer_node.connect(2).ok());
        step(50);
        EXPECT_TRUE(writer_node.is_connected(2));
        writer.emplace(*RingWriter::create(writer_node, 2, *writer_node.remote_region(2, kRingTag), &credit_word));
        auto region = std::as_writable_bytes(std::span(ring_memory));
        reader.emplace(*RingReader::create(reader_node, 1, region, reader_node.remote_region(1, kCreditTag)->at(0)));
    }
    void step(uint64_t ms = 1)
    {
        for (uint64_t end = now_ms + ms; now_ms < end;) {
            ++now_ms;
            writer_node.poll(now_ms, writer_events);
            reader_node.poll(now_ms, reader_events);
        }
    }
    MemoryFabric fabric;
    MemoryTransport writer_node;
    MemoryTransport reader_node;
    std::vector<uint64_t> ring_memory;  // uint64_t: 8-byte aligned
    rcpg::transport::PeerWord credit_word{};
    std::vector<std::byte> sources;
    RegionId ring_region, credit_region, source_region;
    std::optional<RingWriter> writer;
    std::optional<RingReader> reader;
    std::vector<Event> writer_events, reader_events;
    uint64_t now_ms = 0;
};

TEST(Ring, RecordBecomesVisibleOnlyAfterTheTailCommit)
{
    RingPair pair(1, 1024, {1, 1, 0});
    const std::string hello = "hello ring";
    ASSERT_TRUE(pair.writer->append_copy(7, std::as_bytes(std::span(hello))).ok());
    pair.step(5);
    auto none = pair.reader->next();
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none->has_value()) << "staged but uncommitted: nothing posted, nothing visible";
    ASSERT_TRUE(pair.writer->commit().ok());
    pair.step(5);
    auto record = pair.reader->next();
    ASSERT_TRUE(record.ok() && record->has_value());
    EXPECT_EQ((*record)->type, 7u);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>((*record)->payload.data()), (*record)->payload.size()), hello);
}

TEST(Ring, CopiedRecordsAboveTheInlineLimitArriveWhole)
{
    RingPair pair(2, 4096);
    std::vector<std::byte> payload(1000);  // well above the 128-byte inline limit
    for (size_t k = 0; k < payload.size(); ++k) {
        payload[k] = pattern(5, k);
    }
    ASSERT_TRUE(pair.writer->append_copy(5, payload).ok());
    // The copy is taken now: the caller's bytes may change before the commit.
    std::fill(payload.begin(), payload.end(), std::byte{0});
    ASSERT_TRUE(pair.writer->commit().ok());
    pair.step(5);
    auto record = pair.reader->next();
    ASSERT_TRUE(record.ok() && record->has_value());
    EXPECT_EQ((*record)->type, 5u);
    ASSERT_EQ((*record)->payload.size(), 1000u);
    for (size_t k = 0; k < 1000; ++k) {
        ASSERT_EQ((*record)->payload[k], pattern(5, k)) << k;
    }
    EXPECT_EQ(pair.writer->append_copy(5, std::vector<std::byte>(pair.writer->max_payload_bytes() + 1)).code(),
              Errc::invalid_argument);
}

TEST(Ring, SmallRecordsThatFollowEachOtherGoAsOneWrite)
{
    RingPair pair(3, 4096);
    // 20 small records, copied (one of them gathered from registered memory), then a
    // large one that goes zero-copy, then one more small one.
    for (uint32_t i = 0; i < 20; ++i) {
        std::array<std::byte, 61> payload;  // odd size: records are padded to 8 bytes
        for (size_t k = 0; k < payload.size(); ++k) {
            payload[k] = pattern(i, k);
        }
        if (i == 10) {
            std::memcpy(pair.sources.data(), payload.data(), payload.size());
            const LocalSlice parts[2] = {{pair.source_region, 0, 20}, {pair.source_region, 20, 41}};
            ASSERT_TRUE(pair.writer->append(i, parts).ok());
        } else {
            ASSERT_TRUE(pair.writer->append_copy(i, payload).ok()) << i;
        }
    }
    for (size_t k = 0; k < 300; ++k) {
        pair.sources[kSourceSlotBytes + k] = pattern(20, k);
    }
    const LocalSlice large{pair.source_region, kSourceSlotBytes, 300};
    ASSERT_TRUE(pair.writer->append(20, {&large, 1}).ok());
    const std::array<std::byte, 5> last{pattern(21, 0), pattern(21, 1), pattern(21, 2), pattern(21, 3), pattern(21, 4)};
    ASSERT_TRUE(pair.writer->append_copy(21, last).ok());
    ASSERT_EQ(pair.fabric.in_flight(), 0u) << "staged, nothing posted before the commit";
    ASSERT_TRUE(pair.writer->commit().ok());
    EXPECT_EQ(pair.fabric.in_flight(), 5u)
        << "the 20 small records as one write, the large one's header and payload, the last small one, the tail";
    pair.step(5);
    for (uint32_t i = 0; i < 22; ++i) {
        auto record = pair.reader->next();
        ASSERT_TRUE(record.ok() && record->has_value()) << i;
        EXPECT_EQ((*record)->type, i);
        const size_t expected_bytes = i < 20 ? 61 : i == 20 ? 300 : 5;
        ASSERT_EQ((*record)->payload.size(), expected_bytes) << i;
        for (size_t k = 0; k < expected_bytes; ++k) {
            ASSERT_EQ((*record)->payload[k], pattern(i, k)) << "record " << i << " byte " << k;
        }
        pair.reader->release(**record);
    }
}

TEST(Ring, WriterOutOfCreditsWaitsForThePublishedPosition)
{
    RingPair pair(2, 256);
    const std::array<std::byte, 56> payload{};  // 64-byte records: four fill the ring
    for (int i = 0; i < 4; ++i) {
        ASSERT_TRUE(pair.writer->append_copy(1, payload).ok()) << i;
    }
    EXPECT_EQ(pair.writer->append_copy(1, payload).code(), Errc::try_again);
    ASSERT_TRUE(pair.writer->commit().ok());
    pair.step();
    auto record = pair.reader->next();
    ASSERT_TRUE(record.ok() && record->has_value());
    pair.reader->release(**record);
    ASSERT_TRUE(pair.reader->publish_credits().ok());  // 64 bytes: not due (a quarter is 64: due)
    pair.step();
    EXPECT_EQ(pair.writer->append_copy(1, payload).code(), Errc::ok) << "64 bytes were credited back";
    EXPECT_EQ(pair.writer->append_copy(1, payload).code(), Errc::try_again);
}

TEST(Ring, CreditRequestWakesAReaderThatAskedForIt)
{
    RingPair pair(4, 256);
    pair.writer->wake_reader_for_credits(77);
    const std::array<std::byte, 56> payload{};  // 64-byte records: four fill the ring
    for (int i = 0; i < 4; ++i) {
        ASSERT_TRUE(pair.writer->append_copy(1, payload).ok()) << i;
    }
    ASSERT_TRUE(pair.writer->commit().ok());
    pair.step();
    pair.reader_events.clear();
    EXPECT_EQ(pair.writer->append_copy(1, payload).code(), Errc::try_again) << "full: this asks for credits";
    pair.step();
    const auto wake = std::find_if(pair.reader_events.begin(), pair.reader_events.end(), [](const Event& event) {
        return event.kind == EventKind::imm_received && event.imm == 77;
    });
    EXPECT_NE(wake, pair.reader_events.end()) << "the request came with the reader's wake-up immediate";
}

TEST(Ring, CreditsArePublishedLazilyAndOnTheWritersRequest)
{
    RingPair pair(4, 1024);  // a quarter is 256 bytes
    const std::array<std::byte, 56> payload{};  // 64-byte records
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(pair.writer->append_copy(1, payload).ok()) << i;
        ASSERT_TRUE(pair.writer->commit().ok());
        pair.step();
        auto record = pair.reader->next();
        ASSERT_TRUE(record.ok() && record->has_value()) << i;
        pair.reader->release(**record);
        ASSERT_TRUE(pair.reader->publish_credits().ok());
        pair.step();
    }
    EXPECT_EQ(pair.credit_word.load(), 0u) << "192 of 1024 bytes released and nobody asked: no credit write";
    EXPECT_EQ(pair.reader->published(), 0u);

    // Fill the writer's view of the ring (it still believes nothing was consumed).
    int appended = 0;
    Status status;
    while ((status = pair.writer->append_copy(1, payload)).ok()) {
        ++appended;
    }
    ASSERT_EQ(status.code(), Errc::try_again);
    EXPECT_EQ(appended, 13) << "1024 - 192 committed bytes of room";
    pair.step();  // the credit request (for the 192 committed bytes) lands
    ASSERT_TRUE(pair.reader->publish_credits().ok());
    EXPECT_EQ(pair.reader->published(), 192u) << "asked for: published though below a quarter";
    pair.step();
    EXPECT_EQ(pair.credit_word.load(), 192u);
    EXPECT_TRUE(pair.writer->append_copy(1, payload).ok()) << "the credited bytes are room again";
}

// A stream of records of seeded sizes through a small ring with a slow reader that holds
// each record for a while and re-checks its bytes before releasing it.
void run_stream(uint64_t seed, uint64_t ring_bytes, FaultConfig faults, uint64_t records)
{
    SCOPED_TRACE("seed " + std::to_string(seed));
    RingPair pair(seed, ring_bytes, faults);
    std::mt19937_64 random(seed);
    const uint64_t max_payload = std::min<uint64_t>(pair.writer->max_payload_bytes(), kSourceSlotBytes);
    uint64_t next_seq = 0;
    uint64_t completed_seq = 0;  // every record below this has been written (slots reusable)
    uint64_t expected_seq = 0;
    uint64_t bytes_delivered = 0;
    std::deque<std::pair<RingReader::Record, uint64_t>> held;  // record, seq
    for (int iteration = 0; iteration < 200000 && expected_seq < records; ++iteration) {
        // Writer: append while credits and source slots allow, then commit the batch.
        uint64_t batch_last = 0;
        bool appended = false;
        for (int burst = 0; burst < 4 && next_seq < records && next_seq < completed_seq + kSourceSlots; ++burst) {
            const uint64_t size = 1 + random() % max_payload;
            const uint32_t slot = static_cast<uint32_t>(next_seq % kSourceSlots);
            std::byte* source = pair.sources.data() + slot * kSourceSlotBytes;
            std::memcpy(source, &next_seq, sizeof next_seq);  // seq in the first bytes
            for (size_t i = sizeof next_seq; i < size; ++i) {
                source[i] = pattern(next_seq, i);
            }
            const LocalSlice slice{pair.source_region, slot * kSourceSlotBytes, static_cast<uint32_t>(size)};
            // Tiny records cannot hold the seq: they go as a copy; the rest zero-copy.
            const Status status = size < sizeof next_seq ? pair.writer->append_copy(3, {source, size})
                                                         : pair.writer->append(3, {&slice, 1});
            if (status.code() == Errc::try_again) {
                break;
            }
            ASSERT_TRUE(status.ok()) << status.message();
            batch_last = next_seq++;
            appended = true;
        }
        if (appended) {
            const Status status = pair.writer->commit(true, batch_last + 1);
            ASSERT_TRUE(status.ok()) << status.message();
        }
        pair.step();
        for (const Event& event : pair.writer_events) {
            ASSERT_NE(event.kind, EventKind::disconnected) << event.detail.message();
            if (event.kind == EventKind::write_completed) {
                completed_seq = std::max(completed_seq, event.wr_id);
            }
        }
        pair.writer_events.clear();
        // Reader: slow — takes at most one record per step, holds up to 3.
        if (held.size() < 3) {
            auto next = pair.reader->next();
            ASSERT_TRUE(next.ok()) << next.status().message();
            if (next->has_value()) {
                held.emplace_back(**next, expected_seq++);
            }
        }
        if (held.size() == 3 || (iteration % 5 == 0 && !held.empty())) {
            const auto& [record, seq] = held.front();
            ASSERT_EQ(record.type, 3u);
            const size_t size = record.payload.size();
            if (size >= sizeof seq) {
                uint64_t got = 0;
                std::memcpy(&got, record.payload.data(), sizeof got);
                ASSERT_EQ(got, seq) << "record overwritten or reordered";
            }
            for (size_t i = sizeof seq; i < size; ++i) {
                ASSERT_EQ(record.payload[i], pattern(seq, i)) << "seq " << seq << " byte " << i;
            }
            bytes_delivered += ring::record_bytes(size);
            pair.reader->release(record);
            held.pop_front();
        }
        // Every iteration, not only after a release: a credit request may land later.
        ASSERT_TRUE(pair.reader->publish_credits().ok());
    }
    EXPECT_EQ(expected_seq, records);
    EXPECT_GT(bytes_delivered, 4 * ring_bytes) << "the ring must have wrapped several times";
}

TEST(Ring, WrapsManyTimesUnderCreditsWithASlowReader)
{
    run_stream(11, 1024, {}, 300);
}

TEST(Ring, StreamSurvivesSeededDelaysAndReordering)
{
    for (uint64_t seed = 1; seed <= 12; ++seed) {
        run_stream(seed, 2048, {0, 4, 0}, 150);
    }
}

TEST(Ring, LinkDropMidStreamIsAnEventAndPostsFail)
{
    RingPair pair(3, 1024, {1, 2, 0});
    const std::array<std::byte, 32> payload{};
    ASSERT_TRUE(pair.writer->append_copy(1, payload).ok());
    ASSERT_TRUE(pair.writer->commit().ok());
    pair.fabric.disconnect(1, 2);
    pair.step(5);
    EXPECT_TRUE(testing::has_event(pair.writer_events, EventKind::disconnected, 2));
    EXPECT_TRUE(testing::has_event(pair.reader_events, EventKind::disconnected, 1));
    ASSERT_TRUE(pair.writer->append_copy(1, payload).ok());  // staging is local
    EXPECT_EQ(pair.writer->commit().code(), Errc::not_connected);
}

TEST(Ring, MalformedRecordStopsTheReader)
{
    RingPair pair(4, 256);
    // A header claiming more bytes than the committed tail, as a broken writer would.
    ring::RecordHeader header{200, 1};
    std::memcpy(pair.ring_memory.data(), &header, sizeof header);
    pair.ring_memory[256 / 8] = 16;  // tail word: 16 bytes committed
    auto next = pair.reader->next();
    ASSERT_FALSE(next.ok());
    EXPECT_EQ(next.status().code(), Errc::malformed);
}

}  // namespace
}  // namespace rcpg::transport
