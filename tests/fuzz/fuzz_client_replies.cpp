// libFuzzer target for what one side of the local IPC reads from the other (besides the
// requests, fuzz_ipc_request, and the ring, fuzz_ring_reader):
//  - the client's decoding of rcpgd's replies (ipc::decode_init_response,
//    decode_join_response, decode_membership, decode_iteration, and libevs's
//    decode_evs_groups_response, decode_view_response; rcpg-cpgtool's
//    decode_evs_groups_list), which the libraries map and copy from;
//  - the daemon's check of a client's submission descriptor (ipc::submission_valid),
//    after which it copies or forwards the arena bytes the descriptor names, and its
//    reading of the client's `consumed` (ipc::reader_position).
// One input: [u8 which (mod 6) | bytes...]; for descriptors, bytes are [u64 arena bytes | u64
// copy bytes | descriptor]. Checks: no crash or sanitizer report, and what is accepted
// keeps the promises its user relies on without checking again.
#include "libcpg/ipc/protocol.hpp"
#include "tests/fuzz/fuzz_support.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

namespace {

using namespace rcpg;
using fuzz::check;
using fuzz::read_at;

void fuzz_init(std::span<const std::byte> bytes)
{
    const auto response = ipc::decode_init_response(bytes);
    if (!response) {
        return;
    }
    check(delivery::is_power_of_two(response->ring_data_bytes) && response->ring_data_bytes <= ipc::kMaxRingDataBytes);
    check(delivery::is_power_of_two(response->submission_capacity));
    check(response->arena_copy_bytes <= response->arena_bytes && response->arena_bytes <= ipc::kMaxArenaBytes);
    check(response->control_bytes == ipc::control_block_bytes(response->submission_capacity));
}

void fuzz_join(std::span<const std::byte> bytes)
{
    const auto join = ipc::decode_join_response(bytes);
    if (!join) {
        return;
    }
    check(join->ring_members.size() == join->header.ring.member_count);
    check(bytes.size() == sizeof(ipc::JoinResponse) + join->ring_members.size() * sizeof(uint32_t));
}

void fuzz_lists(std::span<const std::byte> bytes)
{
    if (const auto members = ipc::decode_membership(bytes)) {
        check(bytes.size() == sizeof(ipc::ListResponse) + members->size() * sizeof(cpg_address));
    }
    if (const auto rows = ipc::decode_iteration(bytes)) {
        check(bytes.size() == sizeof(ipc::ListResponse) + rows->size() * sizeof(cpg_iteration_description_t));
        for (const cpg_iteration_description_t& row : *rows) {
            check(row.group.length <= CPG_MAX_NAME_LENGTH);
        }
    }
}

void fuzz_evs(std::span<const std::byte> bytes)
{
    if (const auto groups = ipc::decode_evs_groups_response(bytes)) {
        check(bytes.size() == sizeof(ipc::EvsGroupsResponse) && groups->done <= ipc::kEvsMaxGroupsPerHandle);
    }
    if (const auto view = ipc::decode_view_response(bytes)) {
        check(view->members.size() == view->header.ring.member_count);
        check(bytes.size() == sizeof(ipc::ViewResponse) + view->members.size() * sizeof(uint32_t));
        for (size_t i = 0; i < view->members.size(); ++i) {
            check(view->members[i] != 0 && (i == 0 || view->members[i - 1] < view->members[i]));
        }
    }
    if (const auto listing = ipc::decode_evs_groups_list(bytes)) {
        check(bytes.size() == sizeof(ipc::EvsGroupsList) + listing->rows.size() * sizeof(ipc::EvsGroupRow));
        check(listing->total >= listing->rows.size());
        for (const ipc::EvsGroupRow& row : listing->rows) {
            check(row.has_key <= 1 && row.first_of_client <= 1);
        }
    }
}

void fuzz_submission(const uint8_t* data, size_t size)
{
    if (size < 16 + sizeof(ipc::SubmissionDescriptor)) {
        return;
    }
    const uint64_t arena_bytes = read_at<uint64_t>(data, 0);
    const uint64_t copy_bytes = read_at<uint64_t>(data, 8);
    const auto descriptor = read_at<ipc::SubmissionDescriptor>(data, 16);
    if (!ipc::submission_valid(descriptor, arena_bytes, copy_bytes)) {
        return;
    }
    const uint64_t end = descriptor.arena_offset + descriptor.length;
    check(end >= descriptor.arena_offset && end <= arena_bytes);
    check(descriptor.length <= delivery::kMaxAtomicMessageBytes);
    check(end <= copy_bytes || descriptor.arena_offset >= copy_bytes);
    check((descriptor.flags & ~delivery::kSubmissionFlags) == 0);
}

// A client writes any sequence of `consumed` values while the tail and its pin floor move
// forward: the position the daemon takes stays within [min(floor, tail), tail] and never
// goes back while they do not.
void fuzz_consumed(const uint8_t* data, size_t size)
{
    uint64_t furthest = 0;
    uint64_t tail = 0;
    uint64_t floor = 0;
    uint64_t last = 0;
    for (size_t at = 0; at + 24 <= size; at += 24) {
        tail += read_at<uint64_t>(data, at + 8) % (uint64_t{1} << 40);
        floor = std::max(floor, std::min(tail, floor + read_at<uint64_t>(data, at + 16) % (uint64_t{1} << 40)));
        const uint64_t position = ipc::reader_position(read_at<uint64_t>(data, at), furthest, floor, tail);
        check(position <= tail && position >= std::min(floor, tail));
        check(position >= last);
        last = position;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
    switch (data[0] % 6) {
    case 0: fuzz_init(bytes); break;
    case 1: fuzz_join(bytes); break;
    case 2: fuzz_lists(bytes); break;
    case 3: fuzz_submission(data + 1, size - 1); break;
    case 4: fuzz_consumed(data + 1, size - 1); break;
    default: fuzz_evs(bytes); break;
    }
    return 0;
}
