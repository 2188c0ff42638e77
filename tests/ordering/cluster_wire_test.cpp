// The cluster wire formats (ordering/cluster_wire.hpp): what a node writes into the
// sequencer's inbound ring, the admission snapshot, and the delivery ring entries a node
// receives. Each encoder round-trips through its decoder; each decoder, given bytes a
// faulty or hostile node could write, returns nothing — one malformation per case, with
// the well-formed neighbour accepted so the rejection is known to come from that field.
#include "ordering/cluster_wire.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace rcpg::ordering {

// Readable failure messages: names as text, processes as (nodeid, pid).
void PrintTo(const GroupName& name, std::ostream* out)
{
    *out << '"' << std::string_view(name.value.data(), std::min<size_t>(name.length, name.value.size())) << "\" (length "
         << name.length << ')';
}
void PrintTo(const ProcessId& process, std::ostream* out) { *out << '(' << process.nodeid << ", " << process.pid << ')'; }

namespace wire {
namespace {

using delivery::EntryHeader;
using delivery::EntryKind;

GroupName group_named(std::string_view text)
{
    GroupName name;
    name.length = static_cast<uint32_t>(text.size());
    std::memcpy(name.value.data(), text.data(), text.size());
    return name;
}

template <typename T>
void append(std::vector<std::byte>& out, const T& value)
{
    const size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &value, sizeof(T));
}

template <typename T>
std::vector<std::byte> bytes_of(const T& value)
{
    std::vector<std::byte> out;
    append(out, value);
    return out;
}

void append_text(std::vector<std::byte>& out, std::string_view text)
{
    for (char c : text) {
        out.push_back(static_cast<std::byte>(c));
    }
}

// Overwrites the field at `offset` of an encoded structure.
template <typename T>
void poke(std::vector<std::byte>& bytes, size_t offset, T value)
{
    ASSERT_LE(offset + sizeof(T), bytes.size());
    std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

constexpr auto kType = [](InboundType type) { return static_cast<uint32_t>(type); };

// ---------------------------------------------------------------------------------------
// Inbound records

TEST(ClusterWireInbound, GroupOpRoundTripsAsJoinLeaveAndProcdown)
{
    const GroupName group = group_named(std::string_view("grp\0x", 5));  // a NUL inside the name counts
    const std::vector<std::byte> body = encode_group_op(42, group);
    ASSERT_EQ(body.size(), sizeof(GroupOpPrefix) + 5);
    for (InboundType type : {InboundType::join, InboundType::leave, InboundType::procdown}) {
        auto record = decode_inbound(kType(type), body);
        ASSERT_TRUE(record.has_value()) << "type " << kType(type);
        EXPECT_EQ(record->type, type);
        const auto* op = std::get_if<GroupOp>(&record->body);
        ASSERT_NE(op, nullptr);
        EXPECT_EQ(op->pid, 42u);
        EXPECT_EQ(op->group, group);
    }
}

TEST(ClusterWireInbound, GroupOpWithTheLongestNameRoundTrips)
{
    const GroupName group = group_named(std::string(delivery::kMaxGroupNameBytes, 'n'));
    auto record = decode_inbound(kType(InboundType::join), encode_group_op(7, group));
    ASSERT_TRUE(record.has_value());
    EXPECT_EQ(std::get<GroupOp>(record->body).group, group);
}

TEST(ClusterWireInbound, HelloDecodesItsFortyEightBytes)
{
    const std::vector<std::byte> body = bytes_of(Hello{kClusterProtocolVersion, 3, 65536, 4, 8192, 77, 4096});
    auto record = decode_inbound(kType(InboundType::hello), body);
    ASSERT_TRUE(record.has_value());
    EXPECT_EQ(record->type, InboundType::hello);
    const Hello& hello = std::get<Hello>(record->body);
    EXPECT_EQ(hello.protocol_version, kClusterProtocolVersion);
    EXPECT_EQ(hello.nodeid, 3u);
    EXPECT_EQ(hello.ring_bytes, 65536u);
    EXPECT_EQ(hello.ring_seq, 4u);
    EXPECT_EQ(hello.tail, 8192u);
    EXPECT_EQ(hello.next_seq, 77u);
    EXPECT_EQ(hello.reclaim_limit, 4096u);
}

// What a hello may mean at the sequencer. Each case is one field a faulty or hostile node
// of the cluster could set, next to the accepted hello it differs from.
TEST(ClusterWireHello, AdmissionTakesOnlyAFreshNodeOfThisProtocolAndRingSize)
{
    constexpr uint64_t kRing = 1 << 20;
    const Hello fresh{kClusterProtocolVersion, 3, kRing, 0, 0, 0, 0};
    EXPECT_TRUE(check_admission(fresh, 3, kRing).ok());
    Hello hello = fresh;
    hello.nodeid = 2;  // on node 3's connection
    EXPECT_FALSE(check_admission(hello, 3, kRing).ok());
    hello = fresh;
    hello.protocol_version += 1;
    EXPECT_FALSE(check_admission(hello, 3, kRing).ok());
    hello = fresh;
    hello.ring_bytes = kRing / 2;
    EXPECT_FALSE(check_admission(hello, 3, kRing).ok());
    hello = fresh;
    hello.tail = 64;  // continues something
    EXPECT_FALSE(check_admission(hello, 3, kRing).ok());
}

TEST(ClusterWireHello, ARejoinMayNotClaimATailPastThisNodesFreeRoom)
{
    constexpr uint64_t kRing = 1 << 20;
    constexpr uint64_t kFloor = 10 * kRing;  // this node's readers still need positions from here
    const Hello survivor{kClusterProtocolVersion, 3, kRing, 5, kFloor + kRing, 1000, kFloor + 64};
    EXPECT_TRUE(check_rejoin(survivor, 3, kRing, kFloor).ok()) << "exactly a ring past the floor fits";
    Hello hello = survivor;
    hello.tail = kFloor + kRing + 8;  // one entry more: its repair would overwrite what a reader needs
    hello.reclaim_limit = hello.tail - 64;
    EXPECT_NE(check_rejoin(hello, 3, kRing, kFloor).context().find("more than a ring past"), std::string::npos);
    hello.tail = ~uint64_t{0} - 7;  // the far end of the position space (no wrap in the check)
    hello.reclaim_limit = hello.tail;
    EXPECT_FALSE(check_rejoin(hello, 3, kRing, kFloor).ok());
    hello = survivor;
    hello.tail = kFloor - 4096;  // behind this node: nothing to repair from it, and fine
    hello.reclaim_limit = hello.tail;
    EXPECT_TRUE(check_rejoin(hello, 3, kRing, kFloor).ok());
    hello = survivor;
    hello.tail += 4;  // off the entry grid
    EXPECT_FALSE(check_rejoin(hello, 3, kRing, kFloor).ok());
    hello = survivor;
    hello.reclaim_limit = hello.tail + 8;  // readers ahead of its own tail
    EXPECT_FALSE(check_rejoin(hello, 3, kRing, kFloor).ok());
    hello = survivor;
    hello.reclaim_limit = hello.tail - kRing - 8;  // readers more than a ring behind
    EXPECT_FALSE(check_rejoin(hello, 3, kRing, kFloor).ok());
    hello = survivor;
    hello.ring_seq = 0;  // asks to be admitted instead
    EXPECT_FALSE(check_rejoin(hello, 3, kRing, kFloor).ok());
    hello = survivor;
    hello.nodeid = 4;
    EXPECT_FALSE(check_rejoin(hello, 3, kRing, kFloor).ok());
}

TEST(ClusterWireInbound, DataPayloadStaysInTheRing)
{
    std::vector<std::byte> body = bytes_of(DataPrefix{7, 3, delivery::kFlagSafe, 0, 5});
    append_text(body, "hello");
    auto record = decode_inbound(kType(InboundType::data), body);
    ASSERT_TRUE(record.has_value());
    const Data& data = std::get<Data>(record->body);
    EXPECT_EQ(data.prefix.pid, 7u);
    EXPECT_EQ(data.prefix.group_id, 3u);
    EXPECT_EQ(data.prefix.flags, delivery::kFlagSafe);
    EXPECT_EQ(data.prefix.total_bytes, 5u);
    EXPECT_EQ(data.payload.data(), body.data() + sizeof(DataPrefix)) << "not copied: it points into the record";
    EXPECT_EQ(data.payload.size(), 5u);
}

TEST(ClusterWireInbound, NodeLeaveHasNoBody)
{
    auto record = decode_inbound(kType(InboundType::node_leave), {});
    ASSERT_TRUE(record.has_value());
    EXPECT_EQ(record->type, InboundType::node_leave);
    EXPECT_TRUE(std::holds_alternative<NodeLeave>(record->body));

    const std::vector<std::byte> one_byte(1);
    EXPECT_FALSE(decode_inbound(kType(InboundType::node_leave), one_byte).has_value()) << "node_leave with a body";
}

TEST(ClusterWireInbound, UnknownTypeIsRejected)
{
    const std::vector<std::byte> group_op = encode_group_op(42, group_named("g"));
    for (uint32_t type : {0u, 7u, 0x100u, 0xffffffffu}) {
        EXPECT_FALSE(decode_inbound(type, group_op).has_value()) << "type " << type << " with a group op body";
        EXPECT_FALSE(decode_inbound(type, {}).has_value()) << "type " << type << " with no body";
    }
}

TEST(ClusterWireInbound, TruncatedOrOverlongHelloIsRejected)
{
    std::vector<std::byte> body = bytes_of(Hello{kClusterProtocolVersion, 3, 65536, 4, 8192, 77, 4096});
    body.pop_back();
    EXPECT_FALSE(decode_inbound(kType(InboundType::hello), body).has_value()) << "47 bytes";
    body.resize(sizeof(Hello) + 1);
    EXPECT_FALSE(decode_inbound(kType(InboundType::hello), body).has_value()) << "49 bytes";
    EXPECT_FALSE(decode_inbound(kType(InboundType::hello), {}).has_value()) << "no bytes";
}

TEST(ClusterWireInbound, TruncatedDataPrefixIsRejected)
{
    std::vector<std::byte> body = bytes_of(DataPrefix{7, 3, 0, 0, 0});
    ASSERT_TRUE(decode_inbound(kType(InboundType::data), body).has_value()) << "a prefix and an empty payload";
    body.pop_back();
    EXPECT_FALSE(decode_inbound(kType(InboundType::data), body).has_value()) << "15 bytes of prefix";
}

TEST(ClusterWireInbound, DataWithReservedBitsPidZeroOrGroupZeroIsRejected)
{
    std::vector<std::byte> payload;
    append_text(payload, "x");
    auto with_prefix = [&](DataPrefix prefix) {
        std::vector<std::byte> body = bytes_of(prefix);
        body.insert(body.end(), payload.begin(), payload.end());
        return decode_inbound(kType(InboundType::data), body);
    };
    ASSERT_TRUE(with_prefix({7, 3, 0, 0, 1}).has_value());
    EXPECT_FALSE(with_prefix({7, 3, 0, 1, 1}).has_value()) << "reserved = 1";
    EXPECT_FALSE(with_prefix({7, 3, 0, 0x8000, 1}).has_value()) << "reserved = 0x8000";
    EXPECT_FALSE(with_prefix({0, 3, 0, 0, 1}).has_value()) << "pid 0";
    EXPECT_FALSE(with_prefix({7, 0, 0, 0, 1}).has_value()) << "group 0";
}

TEST(ClusterWireInbound, DataPayloadAboveTheAtomicSizeIsRejected)
{
    std::vector<std::byte> body = bytes_of(DataPrefix{7, 3, 0, 0, delivery::kMaxAtomicMessageBytes});
    body.resize(sizeof(DataPrefix) + delivery::kMaxAtomicMessageBytes);
    EXPECT_TRUE(decode_inbound(kType(InboundType::data), body).has_value()) << "exactly 1 MiB";
    body.push_back(std::byte{0});
    EXPECT_FALSE(decode_inbound(kType(InboundType::data), body).has_value()) << "1 MiB + 1";
}

TEST(ClusterWireInbound, GroupOpNameLongerThanTheLimitIsRejected)
{
    // 129 name bytes, and the length says 129: consistent, but above delivery::kMaxGroupNameBytes.
    std::vector<std::byte> body = bytes_of(GroupOpPrefix{42, delivery::kMaxGroupNameBytes + 1});
    append_text(body, std::string(delivery::kMaxGroupNameBytes + 1, 'n'));
    EXPECT_FALSE(decode_inbound(kType(InboundType::join), body).has_value());
    body = bytes_of(GroupOpPrefix{42, 0xffffffff});
    EXPECT_FALSE(decode_inbound(kType(InboundType::leave), body).has_value()) << "length 2^32-1, no bytes";
}

TEST(ClusterWireInbound, GroupOpNameLengthMustMatchTheRemainingBytes)
{
    std::vector<std::byte> body = bytes_of(GroupOpPrefix{42, 3});
    append_text(body, "abc");
    ASSERT_TRUE(decode_inbound(kType(InboundType::join), body).has_value());
    std::vector<std::byte> longer = body;
    longer.push_back(std::byte{'d'});
    EXPECT_FALSE(decode_inbound(kType(InboundType::join), longer).has_value()) << "length 3, 4 name bytes";
    body.pop_back();
    EXPECT_FALSE(decode_inbound(kType(InboundType::join), body).has_value()) << "length 3, 2 name bytes";
    body.resize(sizeof(GroupOpPrefix) - 1);
    EXPECT_FALSE(decode_inbound(kType(InboundType::join), body).has_value()) << "truncated prefix";
}

TEST(ClusterWireInbound, GroupOpOfPidZeroIsRejected)
{
    EXPECT_FALSE(decode_inbound(kType(InboundType::procdown), encode_group_op(0, group_named("g"))).has_value());
}

// ---------------------------------------------------------------------------------------
// Admission snapshot

Snapshot sample_snapshot()
{
    Snapshot snapshot;
    snapshot.start_position = 3 * delivery::kPageBytes + 64;
    snapshot.next_seq = 17;
    snapshot.ring_seq = 5;
    snapshot.sequencer = 1;
    snapshot.members = {1, 2, 3};
    snapshot.last_origins = {0, 41, 7};
    snapshot.groups.next_group_id = 9;
    snapshot.groups.groups.push_back({3, group_named("alpha"), {{1, 10}, {2, 20}}});
    snapshot.groups.groups.push_back({8, group_named(std::string(delivery::kMaxGroupNameBytes, 'z')), {{3, 30}}});
    return snapshot;
}

void expect_same_snapshot(const Snapshot& actual, const Snapshot& expected)
{
    EXPECT_EQ(actual.start_position, expected.start_position);
    EXPECT_EQ(actual.next_seq, expected.next_seq);
    EXPECT_EQ(actual.ring_seq, expected.ring_seq);
    EXPECT_EQ(actual.sequencer, expected.sequencer);
    EXPECT_EQ(actual.members, expected.members);
    EXPECT_EQ(actual.last_origins, expected.last_origins);
    EXPECT_EQ(actual.groups.next_group_id, expected.groups.next_group_id);
    ASSERT_EQ(actual.groups.groups.size(), expected.groups.groups.size());
    for (size_t i = 0; i < expected.groups.groups.size(); ++i) {
        EXPECT_EQ(actual.groups.groups[i].id, expected.groups.groups[i].id) << "group " << i;
        EXPECT_EQ(actual.groups.groups[i].name, expected.groups.groups[i].name) << "group " << i;
        EXPECT_EQ(actual.groups.groups[i].members, expected.groups.groups[i].members) << "group " << i;
    }
}

// Where the last origins and the groups start in sample_snapshot()'s encoding.
constexpr size_t kSampleOriginsAt = sizeof(SnapshotHeader) + 3 * sizeof(uint32_t);
constexpr size_t kSampleGroupsAt = kSampleOriginsAt + 3 * sizeof(uint64_t);

TEST(ClusterWireSnapshot, RoundTripsGroupsAndMembers)
{
    const Snapshot snapshot = sample_snapshot();
    const std::vector<std::byte> bytes = encode_snapshot(snapshot);
    EXPECT_EQ(bytes.size(), kSampleGroupsAt + 2 * sizeof(SnapshotGroupHeader) + 3 * sizeof(ProcessId));
    auto decoded = decode_snapshot(bytes);
    ASSERT_TRUE(decoded.has_value());
    expect_same_snapshot(*decoded, snapshot);
}

TEST(ClusterWireSnapshot, LastOriginsFollowTheMemberIdsInMemberOrder)
{
    // A node that comes to sequence resumes each survivor's forwarding stream from these
    // numbers, so each must stay paired with its member and keep all 64 bits.
    Snapshot snapshot = sample_snapshot();
    snapshot.last_origins = {0, 41, 0xfedcba9876543210};
    const std::vector<std::byte> bytes = encode_snapshot(snapshot);
    for (size_t i = 0; i < snapshot.members.size(); ++i) {
        uint64_t origin = 0;
        std::memcpy(&origin, bytes.data() + kSampleOriginsAt + i * sizeof(uint64_t), sizeof origin);
        EXPECT_EQ(origin, snapshot.last_origins[i]) << "member " << i;
    }
    auto decoded = decode_snapshot(bytes);
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(decoded->members, snapshot.members);
    EXPECT_EQ(decoded->last_origins, snapshot.last_origins);
}

TEST(ClusterWireSnapshot, EmptyClusterRoundTrips)
{
    Snapshot snapshot;  // no members, no groups: the first node admitted by itself
    auto decoded = decode_snapshot(encode_snapshot(snapshot));
    ASSERT_TRUE(decoded.has_value());
    expect_same_snapshot(*decoded, snapshot);
}

TEST(ClusterWireSnapshot, BadMagicOrVersionIsRejected)
{
    std::vector<std::byte> bytes = encode_snapshot(sample_snapshot());
    poke<uint32_t>(bytes, offsetof(SnapshotHeader, magic), kSnapshotMagic ^ 1);
    EXPECT_FALSE(decode_snapshot(bytes).has_value()) << "magic";
    bytes = encode_snapshot(sample_snapshot());
    poke<uint32_t>(bytes, offsetof(SnapshotHeader, protocol_version), kClusterProtocolVersion + 1);
    EXPECT_FALSE(decode_snapshot(bytes).has_value()) << "version 2";
    poke<uint32_t>(bytes, offsetof(SnapshotHeader, protocol_version), 0);
    EXPECT_FALSE(decode_snapshot(bytes).has_value()) << "version 0";
}

TEST(ClusterWireSnapshot, ZeroNextSeqOrNextGroupIdOrMisalignedStartIsRejected)
{
    std::vector<std::byte> bytes = encode_snapshot(sample_snapshot());
    poke<uint64_t>(bytes, offsetof(SnapshotHeader, next_seq), 0);
    EXPECT_FALSE(decode_snapshot(bytes).has_value()) << "next_seq 0";
    bytes = encode_snapshot(sample_snapshot());
    poke<uint32_t>(bytes, offsetof(SnapshotHeader, next_group_id), 0);
    EXPECT_FALSE(decode_snapshot(bytes).has_value()) << "next_group_id 0";
    bytes = encode_snapshot(sample_snapshot());
    poke<uint64_t>(bytes, offsetof(SnapshotHeader, start_position), 3 * delivery::kPageBytes + 4);
    EXPECT_FALSE(decode_snapshot(bytes).has_value()) << "start position not 8-byte aligned";
}

TEST(ClusterWireSnapshot, TruncatedSnapshotIsRejected)
{
    const std::vector<std::byte> bytes = encode_snapshot(sample_snapshot());
    auto first = [&](size_t count) { return decode_snapshot(std::span(bytes).first(count)); };
    EXPECT_FALSE(first(bytes.size() - 1).has_value()) << "last member of the last group cut short";
    EXPECT_FALSE(first(bytes.size() - sizeof(ProcessId)).has_value()) << "last member missing";
    EXPECT_FALSE(first(kSampleGroupsAt + sizeof(SnapshotGroupHeader) - 1).has_value()) << "group header cut short";
    EXPECT_FALSE(first(kSampleGroupsAt).has_value()) << "groups missing";
    EXPECT_FALSE(first(kSampleGroupsAt - 1).has_value()) << "last origins cut short";
    EXPECT_FALSE(first(kSampleOriginsAt).has_value()) << "last origins missing";
    EXPECT_FALSE(first(sizeof(SnapshotHeader) + 4).has_value()) << "node ids cut short";
    EXPECT_FALSE(first(sizeof(SnapshotHeader) - 1).has_value()) << "header cut short";
    EXPECT_FALSE(first(0).has_value()) << "nothing";
}

TEST(ClusterWireSnapshot, CountsBeyondTheBytesAreRejected)
{
    std::vector<std::byte> bytes = encode_snapshot(sample_snapshot());
    poke<uint32_t>(bytes, offsetof(SnapshotHeader, member_count), 0xffffffff);
    EXPECT_FALSE(decode_snapshot(bytes).has_value()) << "member_count 2^32-1";
    bytes = encode_snapshot(sample_snapshot());
    poke<uint32_t>(bytes, offsetof(SnapshotHeader, group_count), 3);
    EXPECT_FALSE(decode_snapshot(bytes).has_value()) << "group_count 3 of 2";
    bytes = encode_snapshot(sample_snapshot());
    poke<uint32_t>(bytes, kSampleGroupsAt + offsetof(SnapshotGroupHeader, member_count), 0x20000000);
    EXPECT_FALSE(decode_snapshot(bytes).has_value()) << "group member_count 2^29";

    // Without groups the member ids and their origins are all the bytes there are: one
    // member more fits as a node id but not with its origin.
    Snapshot no_groups = sample_snapshot();
    no_groups.groups.groups.clear();
    bytes = encode_snapshot(no_groups);
    ASSERT_EQ(bytes.size(), kSampleGroupsAt);
    ASSERT_TRUE(decode_snapshot(bytes).has_value());
    poke<uint32_t>(bytes, offsetof(SnapshotHeader, member_count), 4);
    ASSERT_LE(4 * sizeof(uint32_t), bytes.size() - sizeof(SnapshotHeader));
    EXPECT_FALSE(decode_snapshot(bytes).has_value()) << "member_count 4 of 3";
}

TEST(ClusterWireSnapshot, GroupNameLongerThanTheLimitIsRejected)
{
    std::vector<std::byte> bytes = encode_snapshot(sample_snapshot());
    poke<uint32_t>(bytes, kSampleGroupsAt + offsetof(SnapshotGroupHeader, name_length), delivery::kMaxGroupNameBytes + 1);
    EXPECT_FALSE(decode_snapshot(bytes).has_value());
}

TEST(ClusterWireSnapshot, TrailingBytesAreRejected)
{
    std::vector<std::byte> bytes = encode_snapshot(sample_snapshot());
    bytes.push_back(std::byte{0});
    EXPECT_FALSE(decode_snapshot(bytes).has_value()) << "one byte after the last group";
    bytes = encode_snapshot(sample_snapshot());
    poke<uint32_t>(bytes, offsetof(SnapshotHeader, group_count), 1);
    EXPECT_FALSE(decode_snapshot(bytes).has_value()) << "group_count 1 of 2: a whole group left over";
}

// ---------------------------------------------------------------------------------------
// Delivery ring entries

// A delivery ring's data area; entries are checked where they lie, as the daemon does
// (the span runs from the entry to the end of the ring).
class TestRing {
public:
    explicit TestRing(uint64_t ring_bytes) : ring_bytes_(ring_bytes), words_(ring_bytes / 8, 0) {}

    uint64_t bytes() const { return ring_bytes_; }
    std::byte* at(uint64_t position) { return data() + (position & (ring_bytes_ - 1)); }
    std::span<const std::byte> from(uint64_t position)
    {
        return {at(position), ring_bytes_ - (position & (ring_bytes_ - 1))};
    }
    void put(uint64_t position, const void* bytes, size_t count)
    {
        ASSERT_LE((position & (ring_bytes_ - 1)) + count, ring_bytes_) << "a test entry must fit before the end";
        std::memcpy(at(position), bytes, count);
    }
    void put_entry(uint64_t position, const EntryHeader& entry) { put(position, &entry, sizeof entry); }
    std::optional<EntryHeader> check(uint64_t position, uint64_t available)
    {
        return check_entry(from(position), position, ring_bytes_, available);
    }

private:
    std::byte* data() { return reinterpret_cast<std::byte*>(words_.data()); }
    uint64_t ring_bytes_;
    std::vector<uint64_t> words_;  // 8-byte aligned, like the mapped ring
};

constexpr uint64_t kRingBytes = 4096;
constexpr uint32_t kHeaderBytes = sizeof(EntryHeader);
// data_entry(_, 1 to 8): the header and one word of payload.
constexpr uint32_t kSmallEntryBytes = kHeaderBytes + 8;

EntryHeader data_entry(uint64_t seq, uint32_t payload_bytes)
{
    EntryHeader entry{};
    entry.entry_bytes = static_cast<uint32_t>(delivery::align_up(sizeof(EntryHeader) + payload_bytes, delivery::kEntryAlignBytes));
    entry.kind = EntryKind::data;
    entry.seq = seq;
    entry.group_id = 1;
    entry.nodeid = 2;
    entry.pid = 100;
    entry.payload_bytes = payload_bytes;
    entry.payload_offset = sizeof(EntryHeader);
    entry.total_bytes = payload_bytes;
    return entry;
}

EntryHeader entry_of_kind(EntryKind kind, uint32_t entry_bytes)
{
    EntryHeader entry{};
    entry.entry_bytes = entry_bytes;
    entry.kind = kind;
    entry.seq = 1;
    entry.payload_offset = sizeof(EntryHeader);
    entry.payload_bytes = entry_bytes - static_cast<uint32_t>(sizeof(EntryHeader));
    return entry;
}

EntryHeader pad_entry(uint32_t entry_bytes)
{
    EntryHeader entry{};
    entry.entry_bytes = entry_bytes;
    entry.kind = EntryKind::pad;
    return entry;
}

TEST(ClusterWireEntry, WellFormedDataEntryIsAcceptedInAnyLap)
{
    TestRing ring(kRingBytes);
    EntryHeader entry = data_entry(9, 5);  // 5 payload bytes padded to 8: kSmallEntryBytes
    entry.origin_seq = 12;                  // the last header field is copied too
    for (uint64_t position : {uint64_t{64}, 5 * kRingBytes + 64}) {
        ring.put_entry(position, entry);
        auto checked = ring.check(position, entry.entry_bytes);
        ASSERT_TRUE(checked.has_value()) << "position " << position;
        EXPECT_EQ(checked->entry_bytes, kSmallEntryBytes);
        EXPECT_EQ(checked->kind, EntryKind::data);
        EXPECT_EQ(checked->seq, 9u);
        EXPECT_EQ(checked->group_id, 1u);
        EXPECT_EQ(checked->pid, 100u);
        EXPECT_EQ(checked->payload_bytes, 5u);
        EXPECT_EQ(checked->origin_seq, 12u);
    }
}

TEST(ClusterWireEntry, WellFormedConfchgAndTotemEntriesAreAccepted)
{
    TestRing ring(kRingBytes);
    const EntryHeader confchg = entry_of_kind(EntryKind::confchg, sizeof(EntryHeader) + sizeof(delivery::ConfchgPayload));
    ring.put_entry(0, confchg);
    auto checked = ring.check(0, kRingBytes);
    ASSERT_TRUE(checked.has_value());
    EXPECT_EQ(checked->kind, EntryKind::confchg);

    const EntryHeader totem = entry_of_kind(EntryKind::totem_confchg, sizeof(EntryHeader) + sizeof(delivery::TotemPayload));
    ring.put_entry(512, totem);
    checked = ring.check(512, totem.entry_bytes);
    ASSERT_TRUE(checked.has_value());
    EXPECT_EQ(checked->kind, EntryKind::totem_confchg);
}

TEST(ClusterWireEntry, DroppedEntryIsItsHeaderAlone)
{
    // What the sequencer writes for a record it consumed without delivering: no group, no
    // process, only the node and the record's number in its forwarding stream.
    TestRing ring(kRingBytes);
    EntryHeader entry = entry_of_kind(EntryKind::dropped, kHeaderBytes);
    entry.nodeid = 2;
    entry.origin_seq = 41;
    ring.put_entry(64, entry);
    auto checked = ring.check(64, kHeaderBytes);
    ASSERT_TRUE(checked.has_value());
    EXPECT_EQ(checked->kind, EntryKind::dropped);
    EXPECT_EQ(checked->entry_bytes, kHeaderBytes);
    EXPECT_EQ(checked->payload_bytes, 0u);
    EXPECT_EQ(checked->nodeid, 2u);
    EXPECT_EQ(checked->origin_seq, 41u);
}

TEST(ClusterWireEntry, DroppedEntryWithAPayloadOutsideItIsRejected)
{
    TestRing ring(kRingBytes);
    const EntryHeader dropped = entry_of_kind(EntryKind::dropped, kHeaderBytes);
    ring.put_entry(64, dropped);
    ASSERT_TRUE(ring.check(64, kHeaderBytes).has_value());

    EntryHeader entry = dropped;
    entry.payload_bytes = 1;
    ring.put_entry(64, entry);
    EXPECT_FALSE(ring.check(64, kHeaderBytes).has_value()) << "1 payload byte after the header's end";
    entry = dropped;
    entry.payload_offset = kHeaderBytes + 8;
    ring.put_entry(64, entry);
    EXPECT_FALSE(ring.check(64, kHeaderBytes).has_value()) << "payload_offset a word past the entry";
    entry = dropped;
    entry.payload_offset = kHeaderBytes - 8;
    ring.put_entry(64, entry);
    EXPECT_FALSE(ring.check(64, kHeaderBytes).has_value()) << "payload in the header's last word";
    // A payload inside a larger entry: still none allowed, it only says a record is done.
    entry = entry_of_kind(EntryKind::dropped, kSmallEntryBytes);
    entry.payload_bytes = 8;
    ring.put_entry(64, entry);
    EXPECT_FALSE(ring.check(64, kSmallEntryBytes).has_value()) << "a dropped entry with a payload";
}

TEST(ClusterWireEntry, EntryEndingExactlyAtTheRingEndIsAccepted)
{
    TestRing ring(kRingBytes);
    ring.put_entry(kRingBytes - kSmallEntryBytes, data_entry(1, 8));
    EXPECT_TRUE(ring.check(kRingBytes - kSmallEntryBytes, kSmallEntryBytes).has_value());
}

TEST(ClusterWireEntry, MisalignedPositionIsRejected)
{
    TestRing ring(kRingBytes);
    ring.put_entry(68, data_entry(1, 8));
    EXPECT_FALSE(ring.check(68, kSmallEntryBytes).has_value()) << "position 68";
    ring.put_entry(72, data_entry(1, 8));
    EXPECT_TRUE(ring.check(72, kSmallEntryBytes).has_value()) << "position 72";
}

TEST(ClusterWireEntry, EntrySmallerThanEightBytesIsRejected)
{
    TestRing ring(kRingBytes);
    EntryHeader entry = data_entry(1, 0);
    entry.entry_bytes = 0;
    ring.put_entry(64, entry);
    EXPECT_FALSE(ring.check(64, kHeaderBytes).has_value()) << "entry_bytes 0 (a reader would never advance)";
    const EntryHeader pad = pad_entry(0);
    ring.put(kRingBytes - 8, &pad, 8);  // size and kind: all that fits before the end
    EXPECT_FALSE(ring.check(kRingBytes - 8, 8).has_value()) << "a pad of 0 bytes";
}

TEST(ClusterWireEntry, EntrySizeNotAMultipleOfEightIsRejected)
{
    TestRing ring(kRingBytes);
    EntryHeader entry = data_entry(1, 4);
    ASSERT_EQ(entry.entry_bytes, kSmallEntryBytes);
    ring.put_entry(64, entry);
    ASSERT_TRUE(ring.check(64, kSmallEntryBytes).has_value());
    entry.entry_bytes = kHeaderBytes + 4;  // the 4-byte payload fits, the size is unaligned
    ring.put_entry(64, entry);
    EXPECT_FALSE(ring.check(64, kSmallEntryBytes).has_value());
}

TEST(ClusterWireEntry, EntryBeyondTheCommittedBytesIsRejected)
{
    TestRing ring(kRingBytes);
    ring.put_entry(64, data_entry(1, 8));
    EXPECT_FALSE(ring.check(64, kSmallEntryBytes - 8).has_value()) << "all but the last word committed";
    EXPECT_FALSE(ring.check(64, 7).has_value()) << "not even the size committed";
    EXPECT_TRUE(ring.check(64, kSmallEntryBytes).has_value()) << "all committed";
}

TEST(ClusterWireEntry, EntryCrossingTheRingEndIsRejected)
{
    TestRing ring(kRingBytes);
    // Room for the header only: the entry's payload word does not fit (entries never wrap).
    ring.put_entry(kRingBytes - kHeaderBytes, data_entry(1, 8));
    EXPECT_FALSE(ring.check(kRingBytes - kHeaderBytes, 1024).has_value());
    EXPECT_FALSE(ring.check(3 * kRingBytes - kHeaderBytes, 1024).has_value()) << "the same offset in a later lap";
}

TEST(ClusterWireEntry, PadMustFillTheRingToItsEnd)
{
    TestRing ring(kRingBytes);
    ring.put_entry(kRingBytes - 64, pad_entry(64));
    auto checked = ring.check(kRingBytes - 64, 64);
    ASSERT_TRUE(checked.has_value()) << "a 64-byte pad 64 bytes before the end";
    EXPECT_EQ(checked->kind, EntryKind::pad);
    EXPECT_EQ(checked->entry_bytes, 64u);

    ring.put_entry(kRingBytes - 64, pad_entry(32));
    EXPECT_FALSE(ring.check(kRingBytes - 64, 64).has_value()) << "a 32-byte pad 64 bytes before the end";
    ring.put_entry(kRingBytes - 64, pad_entry(64));
    EXPECT_FALSE(ring.check(kRingBytes - 64, 56).has_value()) << "a pad not yet committed to its end";
}

TEST(ClusterWireEntry, EightBytePadAtTheVeryEndIsAccepted)
{
    TestRing ring(kRingBytes);
    const EntryHeader pad = pad_entry(8);
    ring.put(kRingBytes - 8, &pad, 8);  // only size and kind fit before the end
    ASSERT_EQ(ring.from(kRingBytes - 8).size(), 8u);
    auto checked = ring.check(kRingBytes - 8, 8);
    ASSERT_TRUE(checked.has_value());
    EXPECT_EQ(checked->kind, EntryKind::pad);
}

TEST(ClusterWireEntry, UnknownKindIsRejected)
{
    TestRing ring(kRingBytes);
    ring.put_entry(64, data_entry(1, 8));
    ASSERT_TRUE(ring.check(64, kSmallEntryBytes).has_value());
    // 6: the first kind after the last one defined (skip).
    for (uint16_t kind : {uint16_t{6}, uint16_t{0x100}, uint16_t{0xffff}}) {
        EntryHeader entry = data_entry(1, 8);
        entry.kind = static_cast<EntryKind>(kind);
        ring.put_entry(64, entry);
        EXPECT_FALSE(ring.check(64, kSmallEntryBytes).has_value()) << "kind " << kind;
    }
}

TEST(ClusterWireEntry, PayloadOutsideTheEntryIsRejected)
{
    TestRing ring(kRingBytes);
    EntryHeader entry = data_entry(1, 8);  // payload in the last word
    ring.put_entry(64, entry);
    ASSERT_TRUE(ring.check(64, kSmallEntryBytes).has_value());
    entry.payload_offset = kHeaderBytes - 8;
    ring.put_entry(64, entry);
    EXPECT_FALSE(ring.check(64, kSmallEntryBytes).has_value()) << "payload in the header's last word";
    entry.payload_offset = 0;
    ring.put_entry(64, entry);
    EXPECT_FALSE(ring.check(64, kSmallEntryBytes).has_value()) << "payload_offset 0";

    entry = data_entry(1, 0);
    ASSERT_EQ(entry.entry_bytes, kHeaderBytes);
    entry.payload_offset = kHeaderBytes + 8;
    ring.put_entry(64, entry);
    EXPECT_FALSE(ring.check(64, kHeaderBytes).has_value()) << "payload_offset a word past an entry of only its header";

    entry = data_entry(1, 8);
    entry.payload_bytes = 9;
    ring.put_entry(64, entry);
    EXPECT_FALSE(ring.check(64, kSmallEntryBytes).has_value()) << "9 payload bytes in the entry's last word";
    entry.payload_bytes = 0xffffffff;
    ring.put_entry(64, entry);
    EXPECT_FALSE(ring.check(64, kSmallEntryBytes).has_value()) << "payload_bytes 2^32-1";

    entry = data_entry(1, 8);
    entry.entry_bytes = kHeaderBytes + 16;
    entry.payload_offset = kHeaderBytes + 4;  // the 8 payload bytes still fit
    ring.put_entry(64, entry);
    EXPECT_FALSE(ring.check(64, entry.entry_bytes).has_value()) << "payload_offset not 8-byte aligned";
}

TEST(ClusterWireEntry, DataEntryOfGroupZeroOrPidZeroIsRejected)
{
    TestRing ring(kRingBytes);
    EntryHeader entry = data_entry(1, 8);
    ring.put_entry(64, entry);
    ASSERT_TRUE(ring.check(64, kSmallEntryBytes).has_value());
    entry.group_id = 0;
    ring.put_entry(64, entry);
    EXPECT_FALSE(ring.check(64, kSmallEntryBytes).has_value()) << "group 0";
    entry = data_entry(1, 8);
    entry.pid = 0;
    ring.put_entry(64, entry);
    EXPECT_FALSE(ring.check(64, kSmallEntryBytes).has_value()) << "pid 0";
}

// A data entry of `payload_bytes` at ring position 0 placed as the sequencer places it: a
// large payload on whole pages.
EntryHeader placed_data_entry(uint32_t payload_bytes)
{
    EntryHeader entry = data_entry(1, payload_bytes);
    const bool on_page = payload_bytes >= delivery::kInPlaceDeliveryMinBytes;
    const delivery::EntryPlacement placement = delivery::place_entry(0, payload_bytes, on_page);
    entry.flags = on_page ? delivery::kFlagPayloadOnPage : 0;
    entry.payload_offset = placement.payload_offset;
    entry.entry_bytes = placement.entry_bytes;
    return entry;
}

TEST(ClusterWireEntry, DataPayloadAboveOneMiBIsRejected)
{
    TestRing ring(4 * 1024 * 1024);
    ring.put_entry(0, placed_data_entry(delivery::kMaxAtomicMessageBytes));
    EXPECT_TRUE(ring.check(0, ring.bytes()).has_value()) << "exactly 1 MiB";
    const EntryHeader entry = placed_data_entry(delivery::kMaxAtomicMessageBytes + 8);
    ASSERT_LE(entry.entry_bytes, delivery::kMaxEntryBytes) << "only the payload size is wrong";
    ring.put_entry(0, entry);
    EXPECT_FALSE(ring.check(0, ring.bytes()).has_value()) << "1 MiB + 8";
}

// What the sequencer never writes, a member refuses too: a large payload off its pages
// (a reader would copy it into a small-payload buffer), a small one claiming pages, a
// flag no sender may set, flags on a confchg.
TEST(ClusterWireEntry, EntriesTheSequencerNeverPlacesAreRejected)
{
    TestRing ring(64 * 1024);
    EntryHeader entry = placed_data_entry(8192);
    ring.put_entry(0, entry);
    ASSERT_TRUE(ring.check(0, ring.bytes()).has_value());
    EntryHeader off_page = data_entry(1, 8192);
    ring.put_entry(0, off_page);
    EXPECT_FALSE(ring.check(0, ring.bytes()).has_value()) << "8 KiB off its pages";
    EntryHeader small = data_entry(1, 8);
    small.flags = delivery::kFlagPayloadOnPage;
    ring.put_entry(0, small);
    EXPECT_FALSE(ring.check(0, ring.bytes()).has_value()) << "8 bytes claiming pages";
    small.flags = 0x4000;
    ring.put_entry(0, small);
    EXPECT_FALSE(ring.check(0, ring.bytes()).has_value()) << "unknown flag";
    EntryHeader confchg = entry_of_kind(EntryKind::confchg, sizeof(EntryHeader) + sizeof(delivery::ConfchgPayload));
    confchg.flags = delivery::kFlagSafe;
    ring.put_entry(0, confchg);
    EXPECT_FALSE(ring.check(0, ring.bytes()).has_value()) << "flags on a confchg";
}

TEST(ClusterWireEntry, EntryAboveTheLargestEntrySizeIsRejected)
{
    TestRing ring(2 * 1024 * 1024);
    const auto largest = static_cast<uint32_t>(delivery::kMaxEntryBytes);
    ring.put_entry(0, entry_of_kind(EntryKind::confchg, largest));
    EXPECT_TRUE(ring.check(0, ring.bytes()).has_value()) << "kMaxEntryBytes";
    ring.put_entry(0, entry_of_kind(EntryKind::confchg, largest + 8));
    EXPECT_FALSE(ring.check(0, ring.bytes()).has_value()) << "kMaxEntryBytes + 8";
}

// ---------------------------------------------------------------------------------------
// Confchg and totem payloads

std::vector<std::byte> confchg_payload(delivery::ConfchgPayload header, const std::vector<delivery::MemberAddress>& addresses)
{
    std::vector<std::byte> out = bytes_of(header);
    for (const delivery::MemberAddress& address : addresses) {
        append(out, address);
    }
    return out;
}

delivery::ConfchgPayload confchg_header(uint32_t left, uint32_t joined, uint32_t members, std::string_view group)
{
    delivery::ConfchgPayload header{};
    header.left_count = left;
    header.joined_count = joined;
    header.member_count = members;
    header.group_length = static_cast<uint32_t>(group.size());
    std::memcpy(header.group_value, group.data(), group.size());
    return header;
}

TEST(ClusterWireConfchg, DecodesLeftJoinedAndMembers)
{
    const std::vector<std::byte> payload = confchg_payload(
        confchg_header(1, 0, 2, "grp"),
        {{3, 30, delivery::reason_process_down}, {1, 10, delivery::reason_undefined}, {2, 20, delivery::reason_undefined}});
    auto confchg = decode_confchg(payload);
    ASSERT_TRUE(confchg.has_value());
    EXPECT_EQ(confchg->group, group_named("grp"));
    ASSERT_EQ(confchg->left.size(), 1u);
    EXPECT_EQ(confchg->left[0].nodeid, 3u);
    EXPECT_EQ(confchg->left[0].pid, 30u);
    EXPECT_EQ(confchg->left[0].reason, delivery::reason_process_down);
    EXPECT_TRUE(confchg->joined.empty());
    ASSERT_EQ(confchg->members.size(), 2u);
    EXPECT_EQ(confchg->members[1].pid, 20u);
}

TEST(ClusterWireConfchg, CountsBeyondThePayloadAreRejected)
{
    const std::vector<delivery::MemberAddress> two = {{1, 10, delivery::reason_join}, {1, 10, delivery::reason_undefined}};
    ASSERT_TRUE(decode_confchg(confchg_payload(confchg_header(0, 1, 1, "g"), two)).has_value());
    EXPECT_FALSE(decode_confchg(confchg_payload(confchg_header(0, 1, 2, "g"), two)).has_value()) << "3 counted, 2 sent";
    EXPECT_FALSE(decode_confchg(confchg_payload(confchg_header(0xffffffff, 0, 0, "g"), two)).has_value())
        << "left_count 2^32-1";
    EXPECT_FALSE(decode_confchg(confchg_payload(confchg_header(0, 0, 0x20000000, "g"), two)).has_value())
        << "member_count 2^29";
    std::vector<std::byte> header_only = bytes_of(confchg_header(0, 0, 0, "g"));
    ASSERT_TRUE(decode_confchg(header_only).has_value());
    header_only.pop_back();
    EXPECT_FALSE(decode_confchg(header_only).has_value()) << "header cut short";
}

TEST(ClusterWireConfchg, TrailingBytesAreRejected)
{
    const std::vector<delivery::MemberAddress> two = {{1, 10, delivery::reason_join}, {1, 10, delivery::reason_undefined}};
    std::vector<std::byte> payload = confchg_payload(confchg_header(0, 1, 0, "g"), two);
    EXPECT_FALSE(decode_confchg(payload).has_value()) << "one address more than counted";
    payload = confchg_payload(confchg_header(0, 1, 1, "g"), two);
    payload.push_back(std::byte{0});
    EXPECT_FALSE(decode_confchg(payload).has_value()) << "one byte more";
}

TEST(ClusterWireConfchg, InvalidReasonIsRejected)
{
    for (uint32_t reason : {uint32_t{delivery::reason_process_down} + 1, 0xffffffffu}) {
        const std::vector<delivery::MemberAddress> addresses = {{1, 10, reason}, {2, 20, delivery::reason_undefined}};
        EXPECT_FALSE(decode_confchg(confchg_payload(confchg_header(1, 0, 1, "g"), addresses)).has_value())
            << "left with reason " << reason;
        const std::vector<delivery::MemberAddress> in_members = {{1, 10, delivery::reason_leave}, {2, 20, reason}};
        EXPECT_FALSE(decode_confchg(confchg_payload(confchg_header(1, 0, 1, "g"), in_members)).has_value())
            << "member with reason " << reason;
    }
}

TEST(ClusterWireConfchg, GroupNameLongerThanTheLimitIsRejected)
{
    delivery::ConfchgPayload header = confchg_header(0, 0, 0, "g");
    header.group_length = delivery::kMaxGroupNameBytes;
    EXPECT_TRUE(decode_confchg(bytes_of(header)).has_value()) << "128";
    header.group_length = delivery::kMaxGroupNameBytes + 1;
    EXPECT_FALSE(decode_confchg(bytes_of(header)).has_value()) << "129";
}

TEST(ClusterWireTotem, RoundTrips)
{
    const TotemConf totem{3, 77, {1, 2, 3}};
    const std::vector<std::byte> payload = encode_totem(totem);
    EXPECT_EQ(payload.size(), sizeof(delivery::TotemPayload) + 3 * sizeof(uint32_t));
    auto decoded = decode_totem(payload);
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(decoded->ring_nodeid, 3u);
    EXPECT_EQ(decoded->ring_seq, 77u);
    EXPECT_EQ(decoded->members, (std::vector<uint32_t>{1, 2, 3}));

    decoded = decode_totem(encode_totem({1, 0, {}}));
    ASSERT_TRUE(decoded.has_value()) << "a view of no members";
    EXPECT_TRUE(decoded->members.empty());
}

TEST(ClusterWireTotem, MemberCountMustMatchThePayload)
{
    std::vector<std::byte> payload = encode_totem({3, 77, {1, 2, 3}});
    payload.pop_back();
    EXPECT_FALSE(decode_totem(payload).has_value()) << "last node id cut short";
    payload = encode_totem({3, 77, {1, 2, 3}});
    append(payload, uint32_t{4});
    EXPECT_FALSE(decode_totem(payload).has_value()) << "four node ids, three counted";
    payload = encode_totem({3, 77, {}});
    poke<uint32_t>(payload, offsetof(delivery::TotemPayload, member_count), 0xffffffff);
    EXPECT_FALSE(decode_totem(payload).has_value()) << "member_count 2^32-1, none sent";
    payload.resize(sizeof(delivery::TotemPayload) - 1);
    EXPECT_FALSE(decode_totem(payload).has_value()) << "header cut short";
}

// Every node searches its view's members by binary search (and a node taking over
// assumes them sorted): a view written otherwise is refused, in a totem confchg and in an
// admission snapshot alike.
TEST(ClusterWireTotem, MembersMustBeAscendingDistinctNodeIds)
{
    EXPECT_FALSE(decode_totem(encode_totem({3, 77, {2, 1, 3}})).has_value()) << "not ascending";
    EXPECT_FALSE(decode_totem(encode_totem({3, 77, {1, 2, 2}})).has_value()) << "a node twice";
    EXPECT_FALSE(decode_totem(encode_totem({3, 77, {0, 1}})).has_value()) << "node id 0";
    EXPECT_TRUE(decode_totem(encode_totem({3, 77, {7}})).has_value());
}

TEST(ClusterWireSnapshot, MembersMustBeAscendingDistinctNodeIds)
{
    Snapshot snapshot = sample_snapshot();
    snapshot.members = {3, 1, 2};
    EXPECT_FALSE(decode_snapshot(encode_snapshot(snapshot)).has_value()) << "not ascending";
    snapshot.members = {1, 1, 2};
    EXPECT_FALSE(decode_snapshot(encode_snapshot(snapshot)).has_value()) << "a node twice";
    snapshot.members = {0, 1, 2};
    EXPECT_FALSE(decode_snapshot(encode_snapshot(snapshot)).has_value()) << "node id 0";
}

// A member's hold word: decoded at the lap where the held bytes lie whole before the
// sequencer's tail, whichever lap the tail is on.
TEST(ClusterWireHold, RoundTripsAtTheLapBeforeTheTail)
{
    constexpr uint64_t kRing = 1 << 20;
    const uint64_t position = 5 * kRing + 8192;  // a payload on its page, lap 5
    const uint64_t word = encode_hold(position, 65536, kRing);
    for (const uint64_t tail : {position + 65536, position + kRing / 2, position + kRing - 8}) {
        const auto held = decode_hold(word, kRing, tail);
        ASSERT_TRUE(held) << "tail " << tail;
        EXPECT_EQ(held->position, position);
        EXPECT_EQ(held->bytes, 65536u);
    }
    // Once the writer went round them on the next lap, they are named a lap later: the
    // same bytes of the ring.
    const auto later = decode_hold(word, kRing, position + kRing + 65536 + 64);
    ASSERT_TRUE(later);
    EXPECT_EQ(later->position, position + kRing);
}

TEST(ClusterWireHold, AWordNoHoldCanBeIsRejected)
{
    constexpr uint64_t kRing = 1 << 20;
    const uint64_t tail = 3 * kRing;
    EXPECT_FALSE(decode_hold(0, kRing, tail));
    EXPECT_FALSE(decode_hold((uint64_t{4096} << 32) | 0, kRing, tail));      // empty
    EXPECT_FALSE(decode_hold((uint64_t{4100} << 32) | 4096, kRing, tail));   // misaligned offset
    EXPECT_FALSE(decode_hold((uint64_t{4096} << 32) | 4100, kRing, tail));   // misaligned size
    EXPECT_FALSE(decode_hold((uint64_t{0} << 32) | 4096, kRing, tail));      // no header before it
    EXPECT_FALSE(decode_hold((uint64_t{kRing} << 32) | 4096, kRing, tail));  // past the ring
    EXPECT_FALSE(decode_hold((uint64_t{kRing - 4096} << 32) | 8192, kRing, tail));  // across its end
    EXPECT_FALSE(decode_hold((uint64_t{4096} << 32) | (delivery::kMaxEntryBytes + 8), uint64_t{1} << 30, tail));
    // Not yet written: on the first lap, past the tail.
    EXPECT_FALSE(decode_hold((uint64_t{8192} << 32) | 4096, kRing, 4096));
    // The tail inside the bytes: nobody read them whole.
    EXPECT_FALSE(decode_hold((uint64_t{8192} << 32) | 4096, kRing, 2 * kRing + 8192 + 64));
}

}  // namespace
}  // namespace wire
}  // namespace rcpg::ordering
