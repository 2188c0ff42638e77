// The wire formats of connection set-up and their primitives: HKDF and HMAC against the
// RFC test vectors, and each decoder given valid, truncated, tampered, foreign, replayed
// and relayed input.
#include "transport/connect_private_data.hpp"
#include "transport/crypto.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace rcpg::transport {
namespace {

std::vector<std::byte> from_hex(const std::string& hex)
{
    std::vector<std::byte> out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
        out.push_back(static_cast<std::byte>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    return out;
}

TEST(Crypto, HkdfMatchesRfc5869TestCase1)
{
    const auto ikm = from_hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
    const auto salt = from_hex("000102030405060708090a0b0c");
    const auto info = from_hex("f0f1f2f3f4f5f6f7f8f9");
    std::vector<std::byte> okm(42);
    ASSERT_TRUE(hkdf_sha256(ikm, salt, info, okm).ok());
    EXPECT_EQ(okm, from_hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"));
}

TEST(Crypto, HmacMatchesRfc4231TestCase2)
{
    // Key "Jefe", data "what do ya want for nothing?"; the key is zero-padded to 32 bytes,
    // which HMAC treats the same as the 4-byte key (both are padded to the block size).
    HandshakeKey key;
    std::memcpy(key.bytes.data(), "Jefe", 4);
    const std::string data = "what do ya want for nothing?";
    const Mac mac = hmac_sha256(key, {std::as_bytes(std::span(data)).first(10), std::as_bytes(std::span(data)).subspan(10)});
    EXPECT_EQ(std::vector<std::byte>(mac.begin(), mac.end()),
              from_hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
}

TEST(Crypto, KeyDerivationDependsOnEveryByteAndConstantTimeEqualCompares)
{
    std::vector<std::byte> file(128, std::byte{0x5a});
    auto one = derive_handshake_key(file);
    file[127] = std::byte{0x5b};
    auto two = derive_handshake_key(file);
    ASSERT_TRUE(one.ok() && two.ok());
    EXPECT_FALSE(equal_constant_time(one->bytes, two->bytes));
    EXPECT_TRUE(equal_constant_time(one->bytes, derive_handshake_key(std::vector<std::byte>(128, std::byte{0x5a}))->bytes));
    EXPECT_FALSE(derive_handshake_key({}).ok());
    EXPECT_FALSE(equal_constant_time(std::span(one->bytes).first(31), one->bytes));
}

TEST(Crypto, RandomNoncesDiffer)
{
    wire::Nonce a{}, b{};
    ASSERT_TRUE(fill_random(a).ok());
    ASSERT_TRUE(fill_random(b).ok());
    EXPECT_NE(a, b);
}

HandshakeKey key_of(uint8_t fill)
{
    return *derive_handshake_key(std::vector<std::byte>(32, std::byte{fill}));
}

const HandshakeKey kKey = key_of(7);
const HandshakeKey kOtherKey = key_of(8);

wire::Nonce nonce_of(uint8_t fill)
{
    wire::Nonce nonce;
    nonce.fill(std::byte{fill});
    return nonce;
}

wire::Transcript transcript()
{
    return {3, 5, nonce_of(0x11), nonce_of(0x22), 0x1234, 0x5678};
}

TEST(ConnectRequest, RoundTripsAndToleratesCmPadding)
{
    const auto bytes = wire::encode_request({3, 5, nonce_of(0x33)}, kKey);
    std::vector<std::byte> padded(bytes.begin(), bytes.end());
    padded.resize(wire::kMaxConnectPrivateDataBytes);  // the CM pads to 56 bytes with zeros
    for (const auto& input : {std::vector<std::byte>(bytes.begin(), bytes.end()), padded}) {
        auto decoded = wire::decode_request(input, kKey);
        ASSERT_TRUE(decoded.ok()) << decoded.status().message();
        EXPECT_EQ(decoded->from_node, 3u);
        EXPECT_EQ(decoded->to_node, 5u);
        EXPECT_EQ(decoded->nonce, nonce_of(0x33));
    }
}

TEST(ConnectRequest, WrongClusterKeyIsRefusedNotMalformed)
{
    auto decoded = wire::decode_request(wire::encode_request({3, 5, nonce_of(1)}, kOtherKey), kKey);
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.status().code(), Errc::refused);
    EXPECT_EQ(decoded.status().layer(), Layer::handshake);
}

TEST(ConnectRequest, EveryTruncationAndEveryFlippedByteIsRejected)
{
    const auto bytes = wire::encode_request({1, 2, nonce_of(9)}, kKey);
    for (size_t length = 0; length < bytes.size(); ++length) {
        auto decoded = wire::decode_request(std::span(bytes).first(length), kKey);
        ASSERT_FALSE(decoded.ok()) << length;
        EXPECT_EQ(decoded.status().code(), Errc::malformed);
    }
    for (size_t i = 0; i < bytes.size(); ++i) {
        auto tampered = bytes;
        tampered[i] ^= std::byte{0x01};
        EXPECT_FALSE(wire::decode_request(tampered, kKey).ok()) << "byte " << i;
    }
}

TEST(ConnectAccept, AnswersOnlyItsOwnExchange)
{
    const wire::Transcript t = transcript();
    const auto accept = wire::encode_accept(t, kKey);
    wire::Transcript expected = t;
    expected.responder_nonce = {};  // what the initiator knows before the accept
    auto decoded = wire::decode_accept(accept, kKey, expected);
    ASSERT_TRUE(decoded.ok()) << decoded.status().message();
    EXPECT_EQ(decoded->responder_nonce, t.responder_nonce);

    // A replay into another attempt (another nonce of ours), a relay (other queue pairs),
    // another key, other node ids: refused, never malformed.
    const auto refused = [&](wire::Transcript other, const HandshakeKey& key = kKey) {
        auto result = wire::decode_accept(accept, key, other);
        return !result.ok() && result.status().code() == Errc::refused;
    };
    wire::Transcript other = expected;
    other.initiator_nonce = nonce_of(0x12);
    EXPECT_TRUE(refused(other));
    other = expected;
    other.initiator_qpn ^= 1;
    EXPECT_TRUE(refused(other));
    other = expected;
    other.responder_qpn ^= 1;
    EXPECT_TRUE(refused(other));
    other = expected;
    other.responder = 4;
    EXPECT_TRUE(refused(other));
    EXPECT_TRUE(refused(expected, kOtherKey));
    // A request is no accept, even with the same bytes after the header.
    EXPECT_EQ(wire::decode_accept(wire::encode_request({5, 3, t.responder_nonce}, kKey), kKey, expected).status().code(),
              Errc::malformed);
    for (size_t i = 0; i < accept.size(); ++i) {
        auto tampered = accept;
        tampered[i] ^= std::byte{0x80};
        EXPECT_FALSE(wire::decode_accept(tampered, kKey, expected).ok()) << "byte " << i;
    }
}

TEST(ConnectProof, ProvesOnlyThisExchangeAndIsNoAcceptReflected)
{
    const wire::Transcript t = transcript();
    const auto proof = wire::encode_proof(t, kKey);
    EXPECT_TRUE(wire::check_proof(proof, kKey, t).ok());
    wire::Transcript other = t;
    other.responder_nonce = nonce_of(0x23);  // a proof from an earlier exchange
    EXPECT_EQ(wire::check_proof(proof, kKey, other).code(), Errc::refused);
    other = t;
    other.responder_qpn += 1;  // relayed onto another queue pair
    EXPECT_EQ(wire::check_proof(proof, kKey, other).code(), Errc::refused);
    EXPECT_EQ(wire::check_proof(proof, kOtherKey, t).code(), Errc::refused);
    // The responder's own accept tag, sent back, does not pass for a proof.
    const auto accept = wire::encode_accept(t, kKey);
    EXPECT_EQ(wire::check_proof(accept, kKey, t).code(), Errc::malformed);
    for (size_t length = 0; length <= proof.size() + 1; ++length) {
        std::vector<std::byte> resized(proof.begin(), proof.end());
        resized.resize(length);
        if (length != proof.size()) {
            EXPECT_FALSE(wire::check_proof(resized, kKey, t).ok()) << length;
        }
    }
    for (size_t i = 0; i < proof.size(); ++i) {
        auto tampered = proof;
        tampered[i] ^= std::byte{0x04};
        EXPECT_FALSE(wire::check_proof(tampered, kKey, t).ok()) << "byte " << i;
    }
}

TEST(RejectPrivateData, RoundTripsAndRejectsForeignBytes)
{
    const auto bytes = wire::encode_reject(wire::RejectReason::unknown_node);
    auto decoded = wire::decode_reject(bytes);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, wire::RejectReason::unknown_node);
    EXPECT_FALSE(wire::decode_reject({}).ok());
    auto bad_reason = bytes;
    bad_reason[6] = std::byte{0};
    EXPECT_EQ(wire::decode_reject(bad_reason).status().code(), Errc::malformed);
}

TEST(HelloMessage, RoundTripsRegions)
{
    wire::HelloMessage hello;
    hello.from_node = 9;
    hello.regions = {{1, 0xabc, 0x7f0000001000, 4160}, {2, 0xdef, 0x7f0000009000, 8}};
    std::array<std::byte, wire::kMaxHelloBytes> buffer{};
    auto size = wire::encode_hello(hello, buffer);
    ASSERT_TRUE(size.ok());
    auto decoded = wire::decode_hello(std::span(buffer).first(*size));
    ASSERT_TRUE(decoded.ok()) << decoded.status().message();
    EXPECT_EQ(decoded->from_node, 9u);
    ASSERT_EQ(decoded->regions.size(), 2u);
    EXPECT_EQ(decoded->regions[1].addr, 0x7f0000009000u);
    EXPECT_EQ(decoded->regions[1].rkey, 0xdefu);
    // Truncated lists, duplicate tags, empty or address-wrapping regions are malformed.
    EXPECT_FALSE(wire::decode_hello(std::span(buffer).first(*size - 1)).ok());
    hello.regions[1].tag = 1;
    ASSERT_TRUE(wire::encode_hello(hello, buffer).ok());
    EXPECT_EQ(wire::decode_hello(std::span(buffer).first(*size)).status().code(), Errc::malformed);
    hello.regions[1] = {2, 1, ~uint64_t{0} - 4, 8};
    ASSERT_TRUE(wire::encode_hello(hello, buffer).ok());
    EXPECT_FALSE(wire::decode_hello(std::span(buffer).first(*size)).ok());
    hello.regions.resize(wire::kMaxExposedRegions + 1);
    EXPECT_EQ(wire::encode_hello(hello, buffer).status().code(), Errc::invalid_argument);
}

}  // namespace
}  // namespace rcpg::transport
