// libFuzzer target for what a libevs handle reads of an EVS message: the sender's prefix
// (delivery::check_evs_payload), which names the message's groups, and the handle's
// decision from them (libcpg::EvsGroups::delivers) after joins and leaves.
// One input: [u8 ops | ops * 3 bytes | payload...]. Each op is [u8 kind | u8 key | u8 seq
// step]: kind 0 joins key, 1 leaves it, 2 asks about a one-group message for key (keys
// are 32 bytes: the key byte, then zeros); the seq rises by the step. Then the payload is
// checked and, if it parses, asked about at the last seq. Checks: no crash or sanitizer
// report; what is accepted splits the payload exactly; and every answer is the one a
// plain model of the join intervals gives.
#include "delivery/evs_payload.hpp"
#include "libcpg/evs_groups.hpp"
#include "tests/fuzz/fuzz_support.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <vector>

namespace {

using namespace rcpg;
using fuzz::check;

struct ModelInterval {
    uint64_t from;
    uint64_t until;
};

// The rule, said plainly: a group counts for seq s when one of its joinings covers s.
bool model_delivers(const std::map<libcpg::EvsKey, std::vector<ModelInterval>>& model,
                    std::span<const std::byte> keys, uint64_t seq)
{
    for (size_t offset = 0; offset + sizeof(libcpg::EvsKey) <= keys.size(); offset += sizeof(libcpg::EvsKey)) {
        libcpg::EvsKey key;
        std::memcpy(key.data(), keys.data() + offset, key.size());
        auto found = model.find(key);
        if (found == model.end()) {
            continue;
        }
        for (const ModelInterval& interval : found->second) {
            if (interval.from <= seq && seq < interval.until) {
                return true;
            }
        }
    }
    return false;
}

libcpg::EvsKey key_of(uint8_t byte)
{
    libcpg::EvsKey key{};
    key[0] = static_cast<char>(byte);
    return key;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    const size_t ops = std::min<size_t>(data[0], (size - 1) / 3);
    libcpg::EvsGroups groups;
    std::map<libcpg::EvsKey, std::vector<ModelInterval>> model;
    uint64_t seq = 1;
    for (size_t i = 0; i < ops; ++i) {
        const uint8_t* op = data + 1 + 3 * i;
        const libcpg::EvsKey key = key_of(op[1] % 8);
        seq += op[2] % 4;
        switch (op[0] % 3) {
        case 0:
            groups.join({&key, 1}, seq);
            model[key].push_back({seq, UINT64_MAX});
            break;
        case 1: {
            const bool joined = std::find(groups.joined().begin(), groups.joined().end(), key) != groups.joined().end();
            groups.leave({&key, 1}, joined ? 1 : 0, seq);
            if (joined) {
                for (ModelInterval& interval : model[key]) {
                    if (interval.until == UINT64_MAX) {
                        interval.until = seq;
                        break;
                    }
                }
            }
            break;
        }
        default: {
            const auto bytes = std::as_bytes(std::span(key));
            check(groups.delivers(bytes, seq) == model_delivers(model, bytes, seq));
            break;
        }
        }
    }
    const std::span<const std::byte> payload(reinterpret_cast<const std::byte*>(data) + 1 + 3 * ops,
                                             size - 1 - 3 * ops);
    const auto parts = delivery::check_evs_payload(payload);
    if (!parts) {
        return 0;
    }
    check(parts->keys.size() == size_t{parts->group_count} * delivery::kEvsGroupKeyBytes);
    check(parts->keys.data() == payload.data() + sizeof(delivery::EvsPrefix));
    check(sizeof(delivery::EvsPrefix) + parts->keys.size() + parts->message.size() == payload.size());
    check(parts->message.data() == parts->keys.data() + parts->keys.size());
    check(groups.delivers(parts->keys, seq) == model_delivers(model, parts->keys, seq));
    return 0;
}
