// The payload of an EVS data entry (kFlagEvs): a prefix, the keys of the groups the
// message is for, then the application's message.
//
// The sending library (libevs) writes it into its send arena; neither daemon on the way
// reads it (the groups are the sender's to choose, any of them, joined or not). So it is
// the sender's word, like a fragment's sizes: every reader checks it with
// check_evs_payload(), and a message whose prefix does not parse is delivered to nobody.
// A lie about the groups makes a message reach handles that joined the groups it names,
// which any sender may do anyway.
#pragma once

#include "delivery/ring_format.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace rcpg::delivery {

// corosync's struct evs_group: a 32-byte key, compared whole.
inline constexpr size_t kEvsGroupKeyBytes = 32;

struct EvsPrefix {
    uint32_t group_count;
    uint32_t reserved;  // 0
};
static_assert(sizeof(EvsPrefix) == 8);

// The bytes an EVS payload takes before the message, for `group_count` groups.
inline constexpr uint64_t evs_header_bytes(uint64_t group_count)
{
    return sizeof(EvsPrefix) + group_count * kEvsGroupKeyBytes;
}

// The most message bytes an EVS payload for `group_count` groups carries: it is one ring
// entry (EVS messages are not fragmented). 0 when the groups alone do not fit.
inline constexpr uint64_t evs_max_message_bytes(uint64_t group_count)
{
    const uint64_t header = evs_header_bytes(group_count);
    return header <= kMaxAtomicMessageBytes ? kMaxAtomicMessageBytes - header : 0;
}

struct EvsPayload {
    uint32_t group_count = 0;
    std::span<const std::byte> keys;     // group_count * kEvsGroupKeyBytes
    std::span<const std::byte> message;  // the rest
};

// The parts of an EVS payload whose group count fits inside it and whose reserved word is
// 0; nullopt otherwise. The spans point into `payload`.
std::optional<EvsPayload> check_evs_payload(std::span<const std::byte> payload);

}  // namespace rcpg::delivery
