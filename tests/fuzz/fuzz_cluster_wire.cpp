// libFuzzer target for the cluster wire decoders (ordering/cluster_wire): every byte they
// read was written by another node. One input feeds all of them:
//
//   [u32 type | u32 ring selector | u64 position | u64 available | entry bytes...]
//
//  - decode_inbound(type, input[4..]): an inbound record of that type;
//  - decode_snapshot(input), decode_confchg(input), decode_totem(input);
//  - check_entry on the entry bytes placed at `position` of a delivery ring of
//    ring_bytes = 2^(3 + selector % 19) (8 B .. 2 MiB) with `available` committed bytes,
//    passed as the daemon passes it (from the entry to the ring end; the ring ends where
//    the allocation ends, so a read past it is an ASan report); then decode_confchg and
//    decode_totem of the accepted entry's payload;
//  - decode_hold(word = the u64 at 8, ring_bytes as above, tail = the u64 at 16): a
//    member's hold word.
// Checks: no crash, no sanitizer report, and what a decoder accepts keeps the promises the
// daemon relies on without checking again (sizes, ranges, re-encoding to the same bytes).
#include "ordering/cluster_wire.hpp"
#include "ordering/group_table.hpp"
#include "tests/fuzz/fuzz_support.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

namespace {

using namespace rcpg;
using namespace rcpg::ordering;

constexpr size_t kParamsBytes = 24;
constexpr uint64_t kLargestRingBytes = uint64_t{1} << 21;

using fuzz::check;
using fuzz::read_at;

bool same_bytes(const std::vector<std::byte>& a, std::span<const std::byte> b)
{
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

bool same_groups(const GroupTable::Snapshot& a, const GroupTable::Snapshot& b)
{
    if (a.next_group_id != b.next_group_id || a.groups.size() != b.groups.size()) {
        return false;
    }
    for (size_t i = 0; i < a.groups.size(); ++i) {
        if (a.groups[i].id != b.groups[i].id || !(a.groups[i].name == b.groups[i].name) ||
            a.groups[i].members != b.groups[i].members) {
            return false;
        }
    }
    return true;
}

void fuzz_inbound(uint32_t type, std::span<const std::byte> payload)
{
    const auto record = wire::decode_inbound(type, payload);
    if (!record) {
        return;
    }
    check(static_cast<uint32_t>(record->type) == type);
    switch (record->type) {
    case wire::InboundType::hello: {
        check(payload.size() == sizeof(wire::Hello));
        // What the hello may mean, for a ring and a local floor the input also chooses: an
        // accepted rejoin never asks a repair past a ring beyond the floor.
        const auto& hello = std::get<wire::Hello>(record->body);
        const uint64_t ring_bytes = uint64_t{1} << (12 + hello.next_seq % 20);
        const uint64_t floor = hello.reclaim_limit ^ (hello.ring_seq << 3);
        if (wire::check_rejoin(hello, hello.nodeid, ring_bytes, floor).ok()) {
            check(hello.ring_seq != 0 && hello.tail % 8 == 0 && hello.reclaim_limit <= hello.tail &&
                  hello.tail - hello.reclaim_limit <= ring_bytes && (hello.tail <= floor || hello.tail - floor <= ring_bytes));
        }
        if (wire::check_admission(hello, hello.nodeid, ring_bytes).ok()) {
            check(hello.tail == 0 && hello.ring_seq == 0 && hello.reclaim_limit == 0 && hello.ring_bytes == ring_bytes);
        }
        break;
    }
    case wire::InboundType::data: {
        const auto& data = std::get<wire::Data>(record->body);
        check(data.prefix.pid != 0 && data.prefix.group_id != 0 && data.prefix.reserved == 0);
        check(data.payload.data() == payload.data() + sizeof(wire::DataPrefix));
        check(data.payload.size() == payload.size() - sizeof(wire::DataPrefix));
        check(data.payload.size() <= delivery::kMaxAtomicMessageBytes);
        break;
    }
    case wire::InboundType::join:
    case wire::InboundType::leave:
    case wire::InboundType::procdown: {
        const auto& op = std::get<wire::GroupOp>(record->body);
        check(op.pid != 0 && op.group.length <= delivery::kMaxGroupNameBytes);
        check(same_bytes(wire::encode_group_op(op.pid, op.group), payload));
        break;
    }
    case wire::InboundType::node_leave:
        check(payload.empty());
        break;
    }
}

// What every node's view holds: node ids, never 0, ascending, each once.
bool ascending_node_ids(const std::vector<uint32_t>& nodes)
{
    return std::adjacent_find(nodes.begin(), nodes.end(), std::greater_equal<>()) == nodes.end() &&
           std::find(nodes.begin(), nodes.end(), 0u) == nodes.end();
}

void fuzz_snapshot(std::span<const std::byte> bytes)
{
    const auto snapshot = wire::decode_snapshot(bytes);
    if (!snapshot) {
        return;
    }
    check(snapshot->next_seq != 0 && snapshot->groups.next_group_id != 0);
    check(snapshot->start_position % delivery::kEntryAlignBytes == 0);
    check(ascending_node_ids(snapshot->members));
    const std::vector<std::byte> encoded = wire::encode_snapshot(*snapshot);
    check(encoded.size() == bytes.size());  // only name bytes past a name's length may differ
    const auto again = wire::decode_snapshot(encoded);
    check(again.has_value());
    check(again->start_position == snapshot->start_position && again->next_seq == snapshot->next_seq &&
          again->ring_seq == snapshot->ring_seq && again->sequencer == snapshot->sequencer &&
          again->members == snapshot->members && again->last_origins == snapshot->last_origins &&
          same_groups(again->groups, snapshot->groups));
    check(wire::encode_snapshot(*again) == encoded);

    // What the admitted node does next: rebuild its group table from it.
    GroupTable table;
    if (!table.restore(snapshot->groups)) {
        return;
    }
    for (const GroupTable::SnapshotGroup& group : snapshot->groups.groups) {
        const GroupName* name = table.name_of(group.id);
        check(name != nullptr && *name == group.name);
        check(table.group_id(group.name) == group.id);
    }
    const GroupTable::Snapshot rebuilt = table.snapshot();
    GroupTable copy;
    check(copy.restore(rebuilt));
    check(same_groups(copy.snapshot(), rebuilt));
}

void fuzz_confchg(std::span<const std::byte> payload)
{
    const auto confchg = wire::decode_confchg(payload);
    if (!confchg) {
        return;
    }
    const size_t addresses = confchg->left.size() + confchg->joined.size() + confchg->members.size();
    check(payload.size() == sizeof(delivery::ConfchgPayload) + addresses * sizeof(delivery::MemberAddress));
    check(confchg->group.length <= delivery::kMaxGroupNameBytes);
    for (const auto* list : {&confchg->left, &confchg->joined, &confchg->members}) {
        for (const delivery::MemberAddress& address : *list) {
            check(address.reason <= delivery::reason_process_down);
        }
    }
}

void fuzz_totem(std::span<const std::byte> payload)
{
    const auto totem = wire::decode_totem(payload);
    if (!totem) {
        return;
    }
    check(ascending_node_ids(totem->members));
    check(same_bytes(wire::encode_totem(*totem), payload));
}

void fuzz_entry(const uint8_t* data, size_t size)
{
    static std::vector<std::byte> memory(kLargestRingBytes);
    const uint64_t ring_bytes = uint64_t{1} << (3 + read_at<uint32_t>(data, 4) % 19);
    const uint64_t position = read_at<uint64_t>(data, 8);
    const uint64_t available = read_at<uint64_t>(data, 16);
    const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data) + kParamsBytes,
                                           size - kParamsBytes);

    // The ring is the end of the allocation: a read past the ring end is a heap overflow.
    std::byte* ring = memory.data() + (kLargestRingBytes - ring_bytes);
    const uint64_t offset = position & (ring_bytes - 1);
    const uint64_t room = ring_bytes - offset;
    std::byte* at = ring + offset;
    const size_t copied = static_cast<size_t>(std::min<uint64_t>(input.size(), room));
    std::memcpy(at, input.data(), copied);
    // check_entry reads at most the header; zero what the input did not cover (no stale
    // bytes from an earlier run: every run replays).
    const size_t header = static_cast<size_t>(std::min<uint64_t>(room, sizeof(delivery::EntryHeader)));
    if (copied < header) {
        std::memset(at + copied, 0, header - copied);
    }

    const auto entry = wire::check_entry({at, room}, position, ring_bytes, available);
    if (!entry) {
        return;
    }
    check(position % delivery::kEntryAlignBytes == 0);
    check(entry->entry_bytes >= 8 && entry->entry_bytes % delivery::kEntryAlignBytes == 0);
    check(entry->entry_bytes <= available && entry->entry_bytes <= room);
    if (entry->kind == delivery::EntryKind::pad) {
        check(entry->entry_bytes == room);
        return;
    }
    if (entry->kind == delivery::EntryKind::skip) {
        // A filler over a held payload: it may end anywhere inside the ring and what is
        // published (checked above), and nothing else of it is read.
        check(entry->payload_bytes == 0 && entry->payload_offset == 0);
        return;
    }
    check(entry->kind == delivery::EntryKind::data || entry->kind == delivery::EntryKind::confchg ||
          entry->kind == delivery::EntryKind::totem_confchg || entry->kind == delivery::EntryKind::dropped);
    check(entry->entry_bytes >= sizeof(delivery::EntryHeader) && entry->entry_bytes <= delivery::kMaxEntryBytes);
    check(entry->payload_offset >= sizeof(delivery::EntryHeader) && entry->payload_offset % delivery::kEntryAlignBytes == 0);
    check(uint64_t{entry->payload_offset} + entry->payload_bytes <= entry->entry_bytes);
    check(std::memcmp(&*entry, at, sizeof(delivery::EntryHeader)) == 0);
    if (entry->kind == delivery::EntryKind::data) {
        check(entry->payload_bytes <= delivery::kMaxAtomicMessageBytes && entry->group_id != 0 && entry->pid != 0);
    }
    if (entry->kind == delivery::EntryKind::dropped) {
        check(entry->payload_bytes == 0);
    }
    if (copied < entry->entry_bytes) {
        std::memset(at + copied, 0, entry->entry_bytes - copied);
    }
    // As the daemon takes the payload: straight from the ring.
    const std::span<const std::byte> payload(at + entry->payload_offset, entry->payload_bytes);
    fuzz_confchg(payload);
    fuzz_totem(payload);
}

}  // namespace

// What decode_hold accepts is bytes the sequencer's writer may go round: inside one
// entry's room, aligned, whole before the tail and at most a lap behind it, and it encodes
// back to the same word.
void fuzz_hold(const uint8_t* data)
{
    const uint64_t ring_bytes = uint64_t{8} << (read_at<uint32_t>(data, 4) % 19);
    const uint64_t word = read_at<uint64_t>(data, 8);
    const uint64_t tail = read_at<uint64_t>(data, 16);
    const auto held = wire::decode_hold(word, ring_bytes, tail);
    if (!held) {
        return;
    }
    check(held->bytes != 0 && held->bytes <= delivery::kMaxEntryBytes && held->bytes % delivery::kEntryAlignBytes == 0);
    check(held->position % delivery::kEntryAlignBytes == 0 && (held->position & (ring_bytes - 1)) != 0);
    check((held->position & (ring_bytes - 1)) + held->bytes <= ring_bytes);
    check(held->position + held->bytes <= tail && tail - held->position <= ring_bytes);
    check(wire::encode_hold(held->position, held->bytes, ring_bytes) == word);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    if (size >= sizeof(uint32_t)) {
        fuzz_inbound(read_at<uint32_t>(data, 0), bytes.subspan(sizeof(uint32_t)));
    }
    fuzz_snapshot(bytes);
    fuzz_confchg(bytes);
    fuzz_totem(bytes);
    if (size >= kParamsBytes) {
        fuzz_entry(data, size);
        fuzz_hold(data);
    }
    return 0;
}
