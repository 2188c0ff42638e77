// libFuzzer target for the client's ring walker: the steps libcpg's dispatch takes over
// the delivery ring (libcpg/ipc/ring_entry.hpp: read_entry, then the confchg or totem
// payload check, then the payload itself), over a ring whose every byte, position and
// tail the input chooses. One input:
//
//   [u32 ring selector | u64 position | u64 tail distance | ring bytes...]
//
// ring_bytes = 2^(4 + selector % 18) (16 B .. 2 MiB), in an allocation of exactly that
// size (a read past the ring is an ASan report); the walk starts at `position` with the
// tail `distance % (2 ring_bytes + 64)` ahead, and goes on, as dispatch does, until the
// ring says end or corrupt. Every payload is read whole, as a callback would; one not on
// pages is copied into a buffer of libcpg's size for small payloads.
// Checks: no crash, no sanitizer report, the walk ends, and what read_entry accepts keeps
// the promises libcpg relies on (payload inside the ring, a small payload fits the
// buffer, positions advance).
#include "delivery/ring_entry.hpp"
#include "tests/fuzz/fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace {

using namespace rcpg;

constexpr size_t kParamsBytes = 20;

using fuzz::check;
using fuzz::read_at;

// Reads every byte, so that a payload reaching outside the ring is reported.
uint64_t touch(std::span<const std::byte> bytes)
{
    uint64_t sum = 0;
    for (std::byte byte : bytes) {
        sum += static_cast<uint8_t>(byte);
    }
    return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size < kParamsBytes) {
        return 0;
    }
    const uint64_t ring_bytes = uint64_t{1} << (4 + read_at<uint32_t>(data, 0) % 18);
    const uint64_t position = read_at<uint64_t>(data, 4);
    const uint64_t tail = position + read_at<uint64_t>(data, 12) % (2 * ring_bytes + 64);
    const auto ring = std::make_unique<std::byte[]>(ring_bytes);
    std::memcpy(ring.get(), data + kParamsBytes, std::min<uint64_t>(size - kParamsBytes, ring_bytes));
    std::vector<std::byte> small_copy(delivery::kInPlaceDeliveryMinBytes);

    uint64_t cursor = position;
    uint64_t sum = 0;
    for (uint64_t steps = 0;; ++steps) {
        // Entries are at least 8 bytes and the tail at most a ring ahead.
        check(steps <= ring_bytes / 8 + 1);
        delivery::RingEntry entry;
        const delivery::RingStep step = delivery::read_entry(ring.get(), ring_bytes, cursor, tail, entry);
        if (step != delivery::RingStep::entry) {
            check(step == delivery::RingStep::corrupt || cursor == tail || (tail < cursor && cursor - tail <= ring_bytes));
            break;
        }
        const delivery::EntryHeader& header = entry.header;
        check(header.entry_bytes >= 8 && header.entry_bytes <= tail - cursor);
        check(entry.payload.empty() || (entry.payload.data() >= ring.get() &&
                                        entry.payload.data() + entry.payload.size() <= ring.get() + ring_bytes));
        sum += touch(entry.payload);
        switch (header.kind) {
        case delivery::EntryKind::data:
            if ((header.flags & delivery::kFlagPayloadOnPage) == 0) {
                check(entry.payload.size() < small_copy.size());
                std::memcpy(small_copy.data(), entry.payload.data(), entry.payload.size());
            }
            break;
        case delivery::EntryKind::confchg:
            if (const auto confchg = delivery::check_confchg_payload(entry.payload)) {
                check(confchg->group_length <= delivery::kMaxGroupNameBytes);
                const uint64_t count = uint64_t{confchg->left_count} + confchg->joined_count + confchg->member_count;
                check(sizeof(delivery::ConfchgPayload) + count * delivery::kConfchgAddressBytes == entry.payload.size());
            }
            break;
        case delivery::EntryKind::totem_confchg:
            if (const auto totem = delivery::check_totem_payload(entry.payload)) {
                check(sizeof(delivery::TotemPayload) + uint64_t{totem->member_count} * 4 == entry.payload.size());
            }
            break;
        default:
            break;
        }
        cursor += header.entry_bytes;
    }
    // Used, so the reads are not optimised away.
    asm volatile("" : : "r"(sum));
    return 0;
}
