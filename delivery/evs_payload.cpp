#include "delivery/evs_payload.hpp"

#include <cstring>

namespace rcpg::delivery {

std::optional<EvsPayload> check_evs_payload(std::span<const std::byte> payload)
{
    EvsPrefix prefix{};
    if (payload.size() < sizeof(prefix)) {
        return std::nullopt;
    }
    std::memcpy(&prefix, payload.data(), sizeof(prefix));
    // In 64 bits: the count is the sender's, up to 2^32 - 1.
    if (prefix.reserved != 0 || evs_header_bytes(prefix.group_count) > payload.size()) {
        return std::nullopt;
    }
    const size_t keys_bytes = size_t{prefix.group_count} * kEvsGroupKeyBytes;
    EvsPayload parts;
    parts.group_count = prefix.group_count;
    parts.keys = payload.subspan(sizeof(prefix), keys_bytes);
    parts.message = payload.subspan(sizeof(prefix) + keys_bytes);
    return parts;
}

}  // namespace rcpg::delivery
