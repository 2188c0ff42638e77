#include "ordering/cluster_wire.hpp"

#include "delivery/ring_entry.hpp"

#include <fmt/format.h>

#include <cstring>

namespace rcpg::ordering::wire {
namespace {

// Reads sequentially from bytes another node wrote; every read is bounds-checked.
class Reader {
public:
    explicit Reader(std::span<const std::byte> bytes) : bytes_(bytes) {}

    template <typename T>
    bool read(T& value)
    {
        if (bytes_.size() - at_ < sizeof(T)) {
            return false;
        }
        std::memcpy(&value, bytes_.data() + at_, sizeof(T));
        at_ += sizeof(T);
        return true;
    }
    bool skip(size_t count)
    {
        if (bytes_.size() - at_ < count) {
            return false;
        }
        at_ += count;
        return true;
    }
    size_t remaining() const { return bytes_.size() - at_; }
    std::span<const std::byte> rest() const { return bytes_.subspan(at_); }

private:
    std::span<const std::byte> bytes_;
    size_t at_ = 0;
};

template <typename T>
void append(std::vector<std::byte>& out, const T& value)
{
    const size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &value, sizeof(T));
}

bool valid_reason(uint32_t reason)
{
    return reason >= delivery::reason_undefined && reason <= delivery::reason_process_down;
}

bool read_addresses(Reader& reader, uint32_t count, std::vector<delivery::MemberAddress>& out)
{
    if (reader.remaining() / sizeof(delivery::MemberAddress) < count) {
        return false;
    }
    out.resize(count);
    for (delivery::MemberAddress& address : out) {
        reader.read(address);
        if (!valid_reason(address.reason)) {
            return false;
        }
    }
    return true;
}

}  // namespace

namespace {

base::Status refused(std::string why) { return {base::Errc::refused, base::Layer::protocol, std::move(why)}; }

base::Status check_common(const Hello& hello, uint32_t nodeid, uint64_t ring_bytes)
{
    if (hello.nodeid != nodeid) {
        return refused(fmt::format("its hello names node {}", hello.nodeid));
    }
    if (hello.protocol_version != kClusterProtocolVersion) {
        return refused(
            fmt::format("it speaks protocol {} (this node {})", hello.protocol_version, kClusterProtocolVersion));
    }
    if (hello.ring_bytes != ring_bytes) {
        return refused(fmt::format("its ring has {} bytes (this node's {})", hello.ring_bytes, ring_bytes));
    }
    return {};
}

}  // namespace

base::Status check_admission(const Hello& hello, uint32_t nodeid, uint64_t ring_bytes)
{
    if (base::Status common = check_common(hello, nodeid, ring_bytes); !common) {
        return common;
    }
    if (hello.ring_seq != 0 || hello.tail != 0 || hello.next_seq != 0 || hello.reclaim_limit != 0) {
        return refused("it asks to continue a view");
    }
    return {};
}

base::Status check_rejoin(const Hello& hello, uint32_t nodeid, uint64_t ring_bytes, uint64_t local_floor)
{
    if (base::Status common = check_common(hello, nodeid, ring_bytes); !common) {
        return common;
    }
    if (hello.ring_seq == 0) {
        return refused("it asks to be admitted, not to continue");
    }
    if (hello.tail % delivery::kEntryAlignBytes != 0 || hello.reclaim_limit > hello.tail ||
        hello.tail - hello.reclaim_limit > ring_bytes) {
        return refused(
            fmt::format("its ring does not hold together (tail {}, readers at {})", hello.tail, hello.reclaim_limit));
    }
    if (hello.tail > local_floor && hello.tail - local_floor > ring_bytes) {
        return refused(fmt::format("it claims a tail {} more than a ring past what this node's readers still need ({})",
                                   hello.tail, local_floor));
    }
    return {};
}

uint64_t encode_hold(uint64_t position, uint64_t bytes, uint64_t ring_bytes)
{
    return ((position & (ring_bytes - 1)) << 32) | bytes;
}

std::optional<HeldBytes> decode_hold(uint64_t word, uint64_t ring_bytes, uint64_t tail)
{
    const uint64_t offset = word >> 32;
    const uint64_t bytes = word & 0xffffffffu;
    // Nonzero offset: a payload follows its entry's header, and entries never wrap.
    if (offset == 0 || offset >= ring_bytes || offset % delivery::kEntryAlignBytes != 0 || bytes == 0 ||
        bytes % delivery::kEntryAlignBytes != 0 || bytes > delivery::kMaxEntryBytes || bytes > ring_bytes - offset) {
        return std::nullopt;
    }
    uint64_t position = (tail & ~(ring_bytes - 1)) + offset;
    if (position >= tail) {
        if (position < ring_bytes) {
            return std::nullopt;  // before the first lap: nothing was written there yet
        }
        position -= ring_bytes;
    }
    if (position + bytes > tail) {
        return std::nullopt;  // the tail inside: no reader has read those bytes whole
    }
    return HeldBytes{position, bytes};
}

std::optional<InboundRecord> decode_inbound(uint32_t type, std::span<const std::byte> payload)
{
    Reader reader(payload);
    switch (static_cast<InboundType>(type)) {
    case InboundType::hello: {
        Hello hello;
        if (!reader.read(hello) || reader.remaining() != 0) {
            return std::nullopt;
        }
        return InboundRecord{InboundType::hello, hello};
    }
    case InboundType::data: {
        Data data;
        if (!reader.read(data.prefix) || data.prefix.reserved != 0 || data.prefix.pid == 0 ||
            data.prefix.group_id == 0) {
            return std::nullopt;
        }
        data.payload = reader.rest();
        if (data.payload.size() > delivery::kMaxAtomicMessageBytes) {
            return std::nullopt;
        }
        return InboundRecord{InboundType::data, data};
    }
    case InboundType::join:
    case InboundType::leave:
    case InboundType::procdown: {
        GroupOpPrefix prefix;
        if (!reader.read(prefix) || prefix.pid == 0 || prefix.name_length > delivery::kMaxGroupNameBytes ||
            reader.remaining() != prefix.name_length) {
            return std::nullopt;
        }
        GroupOp op;
        op.pid = prefix.pid;
        op.group.length = prefix.name_length;
        std::memcpy(op.group.value.data(), reader.rest().data(), prefix.name_length);
        return InboundRecord{static_cast<InboundType>(type), op};
    }
    case InboundType::node_leave:
        if (reader.remaining() != 0) {
            return std::nullopt;
        }
        return InboundRecord{InboundType::node_leave, NodeLeave{}};
    }
    return std::nullopt;
}

std::vector<std::byte> encode_group_op(uint32_t pid, const GroupName& group)
{
    std::vector<std::byte> out;
    append(out, GroupOpPrefix{pid, group.length});
    const size_t at = out.size();
    out.resize(at + group.length);
    std::memcpy(out.data() + at, group.value.data(), group.length);
    return out;
}

std::vector<std::byte> encode_snapshot(const Snapshot& snapshot)
{
    std::vector<std::byte> out;
    SnapshotHeader header{};
    header.magic = kSnapshotMagic;
    header.protocol_version = kClusterProtocolVersion;
    header.start_position = snapshot.start_position;
    header.next_seq = snapshot.next_seq;
    header.ring_seq = snapshot.ring_seq;
    header.sequencer = snapshot.sequencer;
    header.member_count = static_cast<uint32_t>(snapshot.members.size());
    header.next_group_id = snapshot.groups.next_group_id;
    header.group_count = static_cast<uint32_t>(snapshot.groups.groups.size());
    append(out, header);
    for (uint32_t node : snapshot.members) {
        append(out, node);
    }
    for (size_t i = 0; i < snapshot.members.size(); ++i) {
        append(out, i < snapshot.last_origins.size() ? snapshot.last_origins[i] : uint64_t{0});
    }
    for (const GroupTable::SnapshotGroup& group : snapshot.groups.groups) {
        SnapshotGroupHeader group_header{};
        group_header.id = group.id;
        group_header.member_count = static_cast<uint32_t>(group.members.size());
        group_header.name_length = group.name.length;
        std::memcpy(group_header.name, group.name.value.data(), group.name.length);
        append(out, group_header);
        for (ProcessId process : group.members) {
            append(out, process);
        }
    }
    return out;
}

namespace {

// A view's members as every node keeps them: node ids (never 0), ascending, each once. A
// list that is not would break every binary search over the view.
bool is_node_list(const std::vector<uint32_t>& nodes)
{
    for (size_t index = 0; index < nodes.size(); ++index) {
        if (nodes[index] == 0 || (index > 0 && nodes[index - 1] >= nodes[index])) {
            return false;
        }
    }
    return true;
}

}  // namespace

std::optional<Snapshot> decode_snapshot(std::span<const std::byte> bytes)
{
    Reader reader(bytes);
    SnapshotHeader header;
    if (!reader.read(header) || header.magic != kSnapshotMagic || header.protocol_version != kClusterProtocolVersion ||
        header.next_seq == 0 || header.next_group_id == 0 || header.start_position % delivery::kEntryAlignBytes != 0) {
        return std::nullopt;
    }
    Snapshot snapshot;
    snapshot.start_position = header.start_position;
    snapshot.next_seq = header.next_seq;
    snapshot.ring_seq = header.ring_seq;
    snapshot.sequencer = header.sequencer;
    if (reader.remaining() / (sizeof(uint32_t) + sizeof(uint64_t)) < header.member_count) {
        return std::nullopt;
    }
    snapshot.members.resize(header.member_count);
    for (uint32_t& node : snapshot.members) {
        reader.read(node);
    }
    if (!is_node_list(snapshot.members)) {
        return std::nullopt;
    }
    snapshot.last_origins.resize(header.member_count);
    for (uint64_t& origin : snapshot.last_origins) {
        reader.read(origin);
    }
    snapshot.groups.next_group_id = header.next_group_id;
    if (reader.remaining() / sizeof(SnapshotGroupHeader) < header.group_count) {
        return std::nullopt;
    }
    snapshot.groups.groups.reserve(header.group_count);
    for (uint32_t i = 0; i < header.group_count; ++i) {
        SnapshotGroupHeader group_header;
        if (!reader.read(group_header) || group_header.name_length > delivery::kMaxGroupNameBytes ||
            reader.remaining() / sizeof(ProcessId) < group_header.member_count) {
            return std::nullopt;
        }
        GroupTable::SnapshotGroup group;
        group.id = group_header.id;
        group.name.length = group_header.name_length;
        std::memcpy(group.name.value.data(), group_header.name, group_header.name_length);
        group.members.resize(group_header.member_count);
        for (ProcessId& process : group.members) {
            reader.read(process);
        }
        snapshot.groups.groups.push_back(std::move(group));
    }
    if (reader.remaining() != 0) {
        return std::nullopt;
    }
    return snapshot;
}

std::optional<delivery::EntryHeader> check_entry(std::span<const std::byte> at_position, uint64_t position,
                                            uint64_t ring_bytes, uint64_t available)
{
    // The same checks libcpg makes of what it reads (delivery/ring_entry.hpp).
    return delivery::check_entry(at_position, position, ring_bytes, available);
}

std::optional<Confchg> decode_confchg(std::span<const std::byte> payload)
{
    Reader reader(payload);
    delivery::ConfchgPayload header;
    if (!reader.read(header) || header.group_length > delivery::kMaxGroupNameBytes) {
        return std::nullopt;
    }
    Confchg confchg;
    confchg.group.length = header.group_length;
    std::memcpy(confchg.group.value.data(), header.group_value, header.group_length);
    if (!read_addresses(reader, header.left_count, confchg.left) ||
        !read_addresses(reader, header.joined_count, confchg.joined) ||
        !read_addresses(reader, header.member_count, confchg.members) || reader.remaining() != 0) {
        return std::nullopt;
    }
    return confchg;
}

std::optional<TotemConf> decode_totem(std::span<const std::byte> payload)
{
    Reader reader(payload);
    delivery::TotemPayload header;
    if (!reader.read(header) || reader.remaining() != size_t{header.member_count} * sizeof(uint32_t)) {
        return std::nullopt;
    }
    TotemConf totem;
    totem.ring_nodeid = header.ring_nodeid;
    totem.ring_seq = header.ring_seq;
    totem.members.resize(header.member_count);
    for (uint32_t& node : totem.members) {
        reader.read(node);
    }
    if (!is_node_list(totem.members)) {
        return std::nullopt;
    }
    return totem;
}

std::vector<std::byte> encode_totem(const TotemConf& totem)
{
    std::vector<std::byte> out;
    append(out, delivery::TotemPayload{totem.ring_nodeid, static_cast<uint32_t>(totem.members.size()), totem.ring_seq});
    for (uint32_t node : totem.members) {
        append(out, node);
    }
    return out;
}

}  // namespace rcpg::ordering::wire
