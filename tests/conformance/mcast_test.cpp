// cpg_mcast_joined: self-delivery, zero-length messages, gathering of many iovecs,
// argument errors, sending while not joined (OK, dropped), every guarantee value,
// one total order (and so per-sender FIFO) across concurrent senders in different
// processes, messages at and above the atomic size (1 MiB) delivered whole to the
// sender and to other processes, NOT_EXIST for a fragmented message when not joined,
// and the writable message buffer in the deliver callback.
#include "tests/conformance/conformance.hpp"

#include <climits>

#include <map>

namespace rcpg::conformance {
namespace {

using Mcast = Conformance;

constexpr size_t kAtomic = 1048576;

// A position-dependent pattern: a shifted, truncated or duplicated fragment shows.
std::string pattern(size_t size, uint32_t seed)
{
    std::string out(size, '\0');
    for (size_t i = 0; i < size; ++i) {
        const uint64_t x = (i + seed) * 0x9E3779B97F4A7C15ull;
        out[i] = static_cast<char>(x >> 56);
    }
    return out;
}

// Index of the first differing byte, or -1.
long first_difference(const std::string& a, const std::string& b)
{
    const size_t common = std::min(a.size(), b.size());
    for (size_t i = 0; i < common; ++i) {
        if (a[i] != b[i]) {
            return static_cast<long>(i);
        }
    }
    return a.size() == b.size() ? -1 : static_cast<long>(common);
}

TEST_F(Mcast, SenderReceivesItsOwnMessage)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("self"), CS_OK);
    ASSERT_EQ(client.send("to myself"), CS_OK);
    ASSERT_TRUE(client.pump_until_body("to myself"));
    const Event* message = client.rec.of(Event::message).at(0);
    EXPECT_EQ(message->nodeid, 1u);
    EXPECT_EQ(message->pid, self_pid());
    EXPECT_EQ(message->group, "self");
    // The join confchg comes first.
    EXPECT_EQ(client.rec.events.at(0).kind, Event::confchg);
}

TEST_F(Mcast, ZeroLengthMessagesAreDeliveredWithLengthZero)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("empty"), CS_OK);
    EXPECT_EQ(cpg_mcast_joined(client.handle, CPG_TYPE_AGREED, nullptr, 0), CS_OK);
    iovec empty_part{nullptr, 0};
    EXPECT_EQ(cpg_mcast_joined(client.handle, CPG_TYPE_AGREED, &empty_part, 1), CS_OK);
    char byte = 'x';
    iovec zero_of_real{&byte, 0};
    EXPECT_EQ(cpg_mcast_joined(client.handle, CPG_TYPE_AGREED, &zero_of_real, 1), CS_OK);
    ASSERT_EQ(client.send("end"), CS_OK);
    ASSERT_TRUE(client.pump_until_body("end"));
    EXPECT_EQ(client.rec.bodies(), (std::vector<std::string>{"", "", "", "end"}));
}

TEST_F(Mcast, ManyIovecsAreGatheredInOrder)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("gather"), CS_OK);
    for (size_t count : {1u, 63u, 64u, 65u, 1000u, 1024u}) {  // 64 overflows 3.1.7; IOV_MAX is the limit
        SCOPED_TRACE("iovecs " + std::to_string(count));
        std::vector<std::string> pieces;
        std::string expected;
        for (size_t i = 0; i < count; ++i) {
            pieces.push_back(pattern(i % 13, static_cast<uint32_t>(i * 7 + count)));  // some empty
            expected += pieces.back();
        }
        std::vector<iovec> parts;
        for (auto& piece : pieces) {
            parts.push_back({piece.empty() ? nullptr : piece.data(), piece.size()});
        }
        const size_t before = client.rec.count(Event::message);
        ASSERT_EQ(cpg_mcast_joined(client.handle, CPG_TYPE_AGREED, parts.data(), static_cast<unsigned>(parts.size())),
                  CS_OK);
        ASSERT_TRUE(client.pump_until_count(Event::message, before + 1));
        EXPECT_EQ(first_difference(client.rec.of(Event::message).back()->body, expected), -1);
    }
}

TEST_F(Mcast, MoreIovecsThanIovMaxGiveInvalidParamAndSendNothing)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("gather-too-many"), CS_OK);
    char byte = 'z';
    std::vector<iovec> parts(IOV_MAX + 1, iovec{&byte, 1});
    EXPECT_EQ(cpg_mcast_joined(client.handle, CPG_TYPE_AGREED, parts.data(), static_cast<unsigned>(parts.size())),
              CS_ERR_INVALID_PARAM);
    client.pump_for(200);
    EXPECT_EQ(client.rec.count(Event::message), 0u);
}

TEST_F(Mcast, IovecsSpanningTheAtomicSizeAreGatheredInOrder)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("gather-large"), CS_OK);
    // 1000 pieces of 3001 bytes: fragmented, and fragments cross iovec boundaries.
    std::vector<std::string> pieces;
    std::string expected;
    for (uint32_t i = 0; i < 1000; ++i) {
        pieces.push_back(pattern(3001, i));
        expected += pieces.back();
    }
    std::vector<iovec> parts;
    for (auto& piece : pieces) {
        parts.push_back({piece.data(), piece.size()});
    }
    ASSERT_EQ(cpg_mcast_joined(client.handle, CPG_TYPE_AGREED, parts.data(), static_cast<unsigned>(parts.size())),
              CS_OK);
    ASSERT_TRUE(client.pump_until_count(Event::message, 1));
    ASSERT_EQ(client.rec.count(Event::message), 1u);
    EXPECT_EQ(client.rec.of(Event::message)[0]->body.size(), expected.size());
    EXPECT_EQ(first_difference(client.rec.of(Event::message)[0]->body, expected), -1);
}

TEST_F(Mcast, NullIovecWithNonZeroCountGivesInvalidParam)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("null-iov"), CS_OK);
    EXPECT_EQ(cpg_mcast_joined(client.handle, CPG_TYPE_AGREED, nullptr, 1), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_mcast_joined(client.handle, CPG_TYPE_AGREED, nullptr, 7), CS_ERR_INVALID_PARAM);
    // A NULL base with a length (rcpg's header).
    char byte = 'y';
    iovec parts[2] = {{&byte, 1}, {nullptr, 5}};
    EXPECT_EQ(cpg_mcast_joined(client.handle, CPG_TYPE_AGREED, parts, 2), CS_ERR_INVALID_PARAM);
    ASSERT_EQ(client.send("valid"), CS_OK);
    ASSERT_TRUE(client.pump_until_body("valid"));
    EXPECT_EQ(client.rec.bodies(), std::vector<std::string>{"valid"}) << "a refused send was delivered";
}

TEST_F(Mcast, SendingWhileNotJoinedIsOkAndDeliversNothing)
{
    Client member;
    Client outsider;
    ASSERT_TRUE(member.ok() && outsider.ok());
    ASSERT_EQ(member.join("members-only"), CS_OK);
    ASSERT_EQ(outsider.send("from outside"), CS_OK);
    ASSERT_EQ(cpg_mcast_joined(outsider.handle, CPG_TYPE_AGREED, nullptr, 0), CS_OK);
    // The outsider now joins: its earlier messages were dropped, not held back.
    ASSERT_EQ(outsider.join("members-only-2"), CS_OK);
    ASSERT_EQ(outsider.send("from inside"), CS_OK);
    ASSERT_TRUE(outsider.pump_until_body("from inside"));
    EXPECT_EQ(outsider.rec.bodies(), std::vector<std::string>{"from inside"});
    ASSERT_EQ(member.send("sync"), CS_OK);
    ASSERT_TRUE(member.pump_until_body("sync"));
    EXPECT_EQ(member.rec.bodies(), std::vector<std::string>{"sync"});
}

TEST_F(Mcast, EveryGuaranteeValueIsAcceptedAndDelivered)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("guarantees"), CS_OK);
    std::vector<std::string> expected;
    for (int guarantee : {0, 1, 2, 3, 99, 3, 2, 1, 0}) {
        const std::string body = "g" + std::to_string(guarantee) + "-" + std::to_string(expected.size());
        EXPECT_EQ(client.send(body, static_cast<cpg_guarantee_t>(guarantee)), CS_OK) << guarantee;
        expected.push_back(body);
    }
    ASSERT_TRUE(client.pump_until_count(Event::message, expected.size()));
    EXPECT_EQ(client.rec.bodies(), expected) << "one order whatever the guarantee";
}

struct Tag {
    uint32_t sender;
    uint32_t seq;
};

// FNV-1a over the sequence of (pid, seq) of delivered messages.
uint64_t sequence_hash(const std::vector<std::pair<uint32_t, uint32_t>>& sequence)
{
    uint64_t hash = 1469598103934665603ull;
    for (const auto& [pid, seq] : sequence) {
        for (uint32_t word : {pid, seq}) {
            for (int i = 0; i < 4; ++i) {
                hash ^= (word >> (8 * i)) & 0xff;
                hash *= 1099511628211ull;
            }
        }
    }
    return hash;
}

std::vector<std::pair<uint32_t, uint32_t>> tagged_sequence(const Recorder& rec)
{
    std::vector<std::pair<uint32_t, uint32_t>> out;
    for (const Event* message : rec.of(Event::message)) {
        Tag tag{};
        if (message->body.size() >= sizeof(tag)) {
            std::memcpy(&tag, message->body.data(), sizeof(tag));
            out.emplace_back(message->pid, tag.seq);
        }
    }
    return out;
}

bool fifo_per_sender(const std::vector<std::pair<uint32_t, uint32_t>>& sequence)
{
    std::map<uint32_t, uint32_t> next;
    for (const auto& [pid, seq] : sequence) {
        if (seq != next[pid]) {
            return false;
        }
        ++next[pid];
    }
    return true;
}

struct OrderReport {
    uint64_t hash;
    uint32_t count;
    uint32_t fifo_ok;
};

TEST_F(Mcast, ConcurrentSendersAreSeenInOneTotalOrderByEveryMember)
{
    constexpr int kSenders = 3;
    constexpr uint32_t kPerSender = 3000;
    constexpr size_t kTotal = kSenders * size_t{kPerSender};
    Client parent;
    ASSERT_TRUE(parent.ok());
    ASSERT_EQ(parent.join("total-order"), CS_OK);
    Pipe ready;
    Pipe go;
    Pipe results;
    std::vector<std::unique_ptr<ChildProcess>> senders;
    for (int s = 0; s < kSenders; ++s) {
        senders.push_back(std::make_unique<ChildProcess>([&, s]() -> int {
            ready.close_read();
            go.close_write();
            results.close_read();
            Client child(Client::Options{.retry_init = true});
            if (!child.ok() || child.join("total-order") != CS_OK) {
                return 2;
            }
            ready.write_byte('j');
            if (!go.wait_eof(kEventTimeout)) {
                return 3;
            }
            for (uint32_t seq = 0; seq < kPerSender; ++seq) {
                std::string body(sizeof(Tag) + (seq * 37 + s) % 300, static_cast<char>('a' + s));
                const Tag tag{static_cast<uint32_t>(s), seq};
                std::memcpy(body.data(), &tag, sizeof(tag));
                if (child.send(body) != CS_OK) {
                    return 4;
                }
                if (seq % 64 == 0) {
                    cpg_dispatch(child.handle, CS_DISPATCH_ALL);
                }
            }
            const auto from_senders = [&] { return tagged_sequence(child.rec).size() >= kTotal; };
            if (!child.pump_until(from_senders, kEventTimeout)) {
                return 5;
            }
            const auto sequence = tagged_sequence(child.rec);
            const OrderReport report{sequence_hash(sequence), static_cast<uint32_t>(sequence.size()),
                                     fifo_per_sender(sequence) ? 1u : 0u};
            results.write_bytes(&report, sizeof(report));
            return 0;
        }));
        ASSERT_TRUE(senders.back()->started());
    }
    ready.close_write();
    go.close_read();
    results.close_write();
    for (int s = 0; s < kSenders; ++s) {
        ASSERT_EQ(ready.read_byte(), 'j') << "sender " << s;
    }
    go.close_write();  // all start sending at once
    ASSERT_TRUE(parent.pump_until([&] { return tagged_sequence(parent.rec).size() >= kTotal; },
                                  kEventTimeout));
    const auto sequence = tagged_sequence(parent.rec);
    EXPECT_EQ(sequence.size(), kTotal);
    EXPECT_TRUE(fifo_per_sender(sequence)) << "per-sender FIFO violated at the parent";
    const uint64_t expected_hash = sequence_hash(sequence);
    for (int s = 0; s < kSenders; ++s) {
        OrderReport report{};
        ASSERT_TRUE(results.read_bytes(&report, sizeof(report), kEventTimeout)) << "result " << s;
        EXPECT_EQ(report.count, kTotal);
        EXPECT_EQ(report.fifo_ok, 1u);
        EXPECT_EQ(report.hash, expected_hash) << "a sender saw another order than the parent";
    }
    for (auto& sender : senders) {
        EXPECT_EQ(sender->wait(), 0);
    }
    // The senders were really interleaved (not one after the other): informational.
    size_t switches = 0;
    for (size_t i = 1; i < sequence.size(); ++i) {
        switches += sequence[i].first != sequence[i - 1].first;
    }
    RecordProperty("sender_switches", static_cast<int>(switches));
}

TEST_F(Mcast, LargeMessagesAreDeliveredWholeAndIntact)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("large"), CS_OK);
    const std::vector<size_t> sizes = {kAtomic - 1, kAtomic, kAtomic + 1, 2 * kAtomic, 3 * kAtomic + 5};
    for (size_t i = 0; i < sizes.size(); ++i) {
        const std::string body = pattern(sizes[i], static_cast<uint32_t>(i));
        ASSERT_EQ(client.send(body), CS_OK) << sizes[i];
    }
    ASSERT_TRUE(client.pump_until_count(Event::message, sizes.size()));
    client.pump_for(50);
    const auto messages = client.rec.of(Event::message);
    ASSERT_EQ(messages.size(), sizes.size()) << "one delivery per message";
    for (size_t i = 0; i < sizes.size(); ++i) {
        EXPECT_EQ(messages[i]->body.size(), sizes[i]);
        EXPECT_EQ(first_difference(messages[i]->body, pattern(sizes[i], static_cast<uint32_t>(i))), -1)
            << "size " << sizes[i];
        EXPECT_EQ(messages[i]->pid, self_pid());
    }
}

TEST_F(Mcast, LargeMessagesReachOtherProcessesWhole)
{
    const std::vector<size_t> sizes = {kAtomic, kAtomic + 1, 3 * kAtomic + 5};
    Pipe ready;
    Pipe release;
    Client parent;
    ASSERT_TRUE(parent.ok());
    ASSERT_EQ(parent.join("large-remote"), CS_OK);
    const uint32_t parent_pid = self_pid();
    ChildProcess receiver([&]() -> int {
        ready.close_read();
        release.close_write();
        Client child;
        if (!child.ok() || child.join("large-remote") != CS_OK || !child.pump_until_count(Event::confchg, 1)) {
            return 2;
        }
        ready.write_byte('j');
        if (!child.pump_until_count(Event::message, sizes.size(), kEventTimeout)) {
            return 3;
        }
        const auto messages = child.rec.of(Event::message);
        for (size_t i = 0; i < sizes.size(); ++i) {
            if (messages[i]->pid != parent_pid || messages[i]->body != pattern(sizes[i], static_cast<uint32_t>(i + 7))) {
                return 10 + static_cast<int>(i);
            }
        }
        child.pump_for(50);
        return child.rec.count(Event::message) == sizes.size() ? 0 : 4;
    });
    ASSERT_TRUE(receiver.started());
    ready.close_write();
    release.close_read();
    ASSERT_EQ(ready.read_byte(), 'j');
    for (size_t i = 0; i < sizes.size(); ++i) {
        ASSERT_EQ(parent.send(pattern(sizes[i], static_cast<uint32_t>(i + 7))), CS_OK);
    }
    EXPECT_EQ(receiver.wait(kEventTimeout), 0) << "10+i: message i arrived damaged";
}

TEST_F(Mcast, FragmentedMessageWhenNotJoinedGivesNotExist)
{
    Client client;
    ASSERT_TRUE(client.ok());
    const std::string atomic(kAtomic, 'a');
    const std::string fragmented(kAtomic + 1, 'f');
    iovec part{const_cast<char*>(atomic.data()), atomic.size()};
    EXPECT_EQ(cpg_mcast_joined(client.handle, CPG_TYPE_AGREED, &part, 1), CS_OK) << "atomic size: dropped, OK";
    part = {const_cast<char*>(fragmented.data()), fragmented.size()};
    EXPECT_EQ(cpg_mcast_joined(client.handle, CPG_TYPE_AGREED, &part, 1), CS_ERR_NOT_EXIST);
    // After a leave too.
    ASSERT_EQ(client.join("fragment-leave"), CS_OK);
    ASSERT_EQ(client.leave("fragment-leave"), CS_OK);
    ASSERT_TRUE(client.pump_until_count(Event::confchg, 2));
    EXPECT_EQ(cpg_mcast_joined(client.handle, CPG_TYPE_AGREED, &part, 1), CS_ERR_NOT_EXIST);
    EXPECT_EQ(client.rec.count(Event::message), 0u);
}

// Writes over every delivered message (as byte-swapping receivers do) after checking it.
void scribble_over_deliveries(Client& client, std::vector<std::string>& damaged)
{
    client.rec.deliver_hook = [&damaged, &client](cpg_handle_t, void* msg, size_t len) {
        const std::string& recorded = client.rec.events.back().body;
        if (std::string(static_cast<char*>(msg), len) != recorded) {
            damaged.push_back(recorded.substr(0, 16));
        }
        std::memset(msg, 0x5a, len);
    };
}

TEST_F(Mcast, DeliveredBufferIsWritableAndTheWriteStaysPrivate)
{
    const std::vector<size_t> sizes = {100, 4095, 4096, 65536, kAtomic, kAtomic + 3};
    Pipe ready;
    Pipe written;
    Client parent;
    ASSERT_TRUE(parent.ok());
    ASSERT_EQ(parent.join("scribble"), CS_OK);
    ASSERT_TRUE(parent.pump_until_count(Event::confchg, 1));
    const uint32_t parent_pid = self_pid();
    // Another process receives the same messages only after the parent wrote over them.
    ChildProcess other([&]() -> int {
        ready.close_read();
        written.close_write();
        Client child;
        if (!child.ok() || child.join("scribble") != CS_OK || !child.pump_until_count(Event::confchg, 1)) {
            return 2;
        }
        ready.write_byte('j');
        if (!written.wait_eof(kEventTimeout)) {
            return 3;
        }
        if (!child.pump_until_count(Event::message, sizes.size())) {
            return 4;
        }
        const auto messages = child.rec.of(Event::message);
        for (size_t i = 0; i < sizes.size(); ++i) {
            if (messages[i]->pid != parent_pid || messages[i]->body != pattern(sizes[i], static_cast<uint32_t>(i))) {
                return 10 + static_cast<int>(i);
            }
        }
        return 0;
    });
    ASSERT_TRUE(other.started());
    ready.close_write();
    written.close_read();
    ASSERT_EQ(ready.read_byte(), 'j');
    ASSERT_TRUE(parent.pump_until_count(Event::confchg, 2));
    std::vector<std::string> damaged;
    scribble_over_deliveries(parent, damaged);
    for (size_t i = 0; i < sizes.size(); ++i) {
        ASSERT_EQ(parent.send(pattern(sizes[i], static_cast<uint32_t>(i))), CS_OK);
    }
    ASSERT_TRUE(parent.pump_until_count(Event::message, sizes.size()));
    EXPECT_TRUE(damaged.empty());
    written.close_write();
    EXPECT_EQ(other.wait(), 0) << "10+i: message i was changed by the parent's write";
}

TEST_F(Mcast, WritesToDeliveredBuffersDoNotLeakIntoLaterMessages)
{
    // More traffic than the daemon's delivery ring (64 MiB) holds, written over on
    // delivery: later laps of the ring must show the new messages, not our writes.
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("scribble-laps"), CS_OK);
    std::vector<std::string> damaged;
    scribble_over_deliveries(client, damaged);
    constexpr size_t kMessages = 300;  // about 100 MiB
    const std::vector<size_t> sizes = {kAtomic - 4096, 300000, 50, 8192};
    size_t received = 0;
    size_t bad = 0;
    client.rec.hook = [&](cpg_handle_t, const Event& event) {
        if (event.kind != Event::message) {
            return;
        }
        const size_t i = received++;
        const std::string expected = pattern(sizes[i % sizes.size()], static_cast<uint32_t>(i));
        if (event.body != expected) {
            ++bad;
            const long at = first_difference(event.body, expected);
            size_t scribbled = 0;
            for (size_t b = 0; b < std::min(event.body.size(), expected.size()); ++b) {
                scribbled += event.body[b] == '\x5a' && expected[b] != '\x5a';
            }
            ADD_FAILURE() << "message " << i << " (" << expected.size() << " bytes, got " << event.body.size()
                          << ") differs at byte " << at << "; " << scribbled
                          << " bytes hold our earlier 0x5a writes";
        }
        client.rec.events.clear();  // keep memory flat
    };
    for (size_t i = 0; i < kMessages; ++i) {
        ASSERT_EQ(client.send(pattern(sizes[i % sizes.size()], static_cast<uint32_t>(i))), CS_OK) << i;
        // Consume as we go, so the ring can wrap.
        ASSERT_EQ(cpg_dispatch(client.handle, CS_DISPATCH_ALL), CS_OK);
    }
    ASSERT_TRUE(client.pump_until([&] { return received >= kMessages; }));
    EXPECT_EQ(bad, 0u);
    EXPECT_TRUE(damaged.empty());
}

}  // namespace
}  // namespace rcpg::conformance
