// libFuzzer target for the connection set-up decoders (transport/connect_private_data):
// bytes a remote node chooses reach decode_connect, decode_reject and decode_hello
// before anything else looks at them. Checks: no crash, no sanitizer report, and every
// accepted message re-encodes to an equivalent one.
#include "transport/connect_private_data.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

namespace {

const std::vector<std::byte> kFuzzClusterKey(32, std::byte{0x5a});

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    using namespace rcpg::transport;
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    const SipKey key = derive_sip_key(kFuzzClusterKey);

    if (auto connect = wire::decode_connect(bytes, key); connect.ok()) {
        const auto again = wire::encode_connect(*connect, key);
        auto decoded = wire::decode_connect(again, key);
        if (!decoded.ok() || decoded->from_node != connect->from_node || decoded->nonce != connect->nonce) {
            std::abort();
        }
    }
    if (auto reject = wire::decode_reject(bytes); reject.ok()) {
        if (wire::to_string(*reject) == nullptr) {
            std::abort();
        }
    }
    if (auto hello = wire::decode_hello(bytes); hello.ok()) {
        std::array<std::byte, wire::kMaxHelloBytes> buffer{};
        auto written = wire::encode_hello(*hello, buffer);
        if (!written.ok()) {
            std::abort();
        }
        auto decoded = wire::decode_hello(std::span(buffer).first(*written));
        if (!decoded.ok() || decoded->regions.size() != hello->regions.size()) {
            std::abort();
        }
    }
    return 0;
}
