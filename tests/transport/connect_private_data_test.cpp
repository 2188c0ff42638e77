// The wire formats of connection set-up: SipHash against the reference vectors, and each
// decoder given valid, truncated, tampered, foreign and unauthenticated input.
#include "transport/connect_private_data.hpp"
#include "transport/siphash.hpp"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace rcpg::transport {
namespace {

SipKey reference_key()
{
    // Key bytes 00 01 .. 0f, little-endian words.
    return {0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
}

TEST(SipHash, MatchesReferenceVectors)
{
    std::vector<std::byte> message(64);
    for (size_t i = 0; i < message.size(); ++i) {
        message[i] = static_cast<std::byte>(i);
    }
    // From the SipHash paper's reference implementation (vectors.h), lengths 0, 1, 8, 15.
    EXPECT_EQ(siphash24(reference_key(), std::span(message).first(0)), 0x726fdb47dd0e0e31ULL);
    EXPECT_EQ(siphash24(reference_key(), std::span(message).first(1)), 0x74f839c593dc67fdULL);
    EXPECT_EQ(siphash24(reference_key(), std::span(message).first(8)), 0x93f5f5799a932462ULL);
    EXPECT_EQ(siphash24(reference_key(), std::span(message).first(15)), 0xa129ca6149be45e5ULL);
}

const std::vector<std::byte> kKey(32, std::byte{7});
const std::vector<std::byte> kOtherKey(32, std::byte{8});

TEST(ConnectPrivateData, RoundTripsAndToleratesCmPadding)
{
    const SipKey key = derive_sip_key(kKey);
    const auto bytes = wire::encode_connect({wire::ConnectKind::request, 3, 5, 0x1122334455667788ULL}, key);
    std::vector<std::byte> padded(bytes.begin(), bytes.end());
    padded.resize(wire::kMaxConnectPrivateDataBytes);  // the CM pads to 56 bytes with zeros
    for (const auto& input : {std::vector<std::byte>(bytes.begin(), bytes.end()), padded}) {
        auto decoded = wire::decode_connect(input, key);
        ASSERT_TRUE(decoded.ok()) << decoded.status().message();
        EXPECT_EQ(decoded->kind, wire::ConnectKind::request);
        EXPECT_EQ(decoded->from_node, 3u);
        EXPECT_EQ(decoded->to_node, 5u);
        EXPECT_EQ(decoded->nonce, 0x1122334455667788ULL);
    }
}

TEST(ConnectPrivateData, WrongClusterKeyIsRefusedNotMalformed)
{
    const auto bytes = wire::encode_connect({wire::ConnectKind::request, 3, 5, 1}, derive_sip_key(kOtherKey));
    auto decoded = wire::decode_connect(bytes, derive_sip_key(kKey));
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.status().code(), Errc::refused);
    EXPECT_EQ(decoded.status().layer(), Layer::handshake);
}

TEST(ConnectPrivateData, EveryTruncationAndEveryFlippedByteIsRejected)
{
    const SipKey key = derive_sip_key(kKey);
    const auto bytes = wire::encode_connect({wire::ConnectKind::accept, 1, 2, 99}, key);
    for (size_t length = 0; length < bytes.size(); ++length) {
        auto decoded = wire::decode_connect(std::span(bytes).first(length), key);
        ASSERT_FALSE(decoded.ok()) << length;
        EXPECT_EQ(decoded.status().code(), Errc::malformed);
    }
    for (size_t i = 0; i < bytes.size(); ++i) {
        auto tampered = bytes;
        tampered[i] ^= std::byte{0x01};
        EXPECT_FALSE(wire::decode_connect(tampered, key).ok()) << "byte " << i;
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
