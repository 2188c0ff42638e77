// libFuzzer target for the connection set-up decoders (transport/connect_private_data):
// bytes another host chooses reach decode_request, decode_accept, check_proof,
// decode_reject and decode_hello before anything else looks at them. Checks: no crash, no
// sanitizer report; every accepted request or hello re-encodes to an equivalent one; and
// no accept or proof passes that this process did not make with the key (the fuzzer has
// no key-holder to copy from, so one that passes is a forgery the check let through).
#include "transport/connect_private_data.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

namespace {

const rcpg::transport::HandshakeKey& fuzz_key()
{
    static const rcpg::transport::HandshakeKey key =
        *rcpg::transport::derive_handshake_key(std::vector<std::byte>(32, std::byte{0x5a}));
    return key;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    using namespace rcpg::transport;
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    const HandshakeKey& key = fuzz_key();

    if (auto request = wire::decode_request(bytes, key); request.ok()) {
        // Passing needs the tag over exactly these bytes: the corpus holds real requests.
        const auto again = wire::encode_request(*request, key);
        auto decoded = wire::decode_request(again, key);
        if (!decoded.ok() || decoded->from_node != request->from_node || decoded->nonce != request->nonce) {
            std::abort();
        }
    }
    // An accept and a proof for a fixed exchange: the input may be anything, and passing
    // means it equals what the key holder makes for this exchange.
    wire::Transcript transcript{1, 2, {}, {}, 0x11, 0x22};
    transcript.initiator_nonce.fill(std::byte{0x42});
    if (auto accept = wire::decode_accept(bytes, key, transcript); accept.ok()) {
        const auto genuine = wire::encode_accept(*accept, key);
        if (bytes.size() < genuine.size() || !std::equal(genuine.begin(), genuine.end(), bytes.begin())) {
            std::abort();
        }
    }
    transcript.responder_nonce.fill(std::byte{0x24});
    if (wire::check_proof(bytes, key, transcript).ok()) {
        const auto genuine = wire::encode_proof(transcript, key);
        if (bytes.size() != genuine.size() || !std::equal(genuine.begin(), genuine.end(), bytes.begin())) {
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
