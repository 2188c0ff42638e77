// Wire formats of connection set-up, all decoded from bytes another node chose:
//
//  - ConnectPrivateData rides in the rdma_cm connect request (kind request) and in the
//    accept (kind accept). It names both nodes and proves knowledge of the cluster key
//    with SipHash-2-4 over the other fields. The accept echoes the request's nonce, so an
//    accept cannot be replayed into another connection attempt. 32 bytes: it must fit the
//    56 bytes rdma_cm leaves for a connect request over IB/RoCE.
//  - RejectPrivateData rides in rdma_reject so the refused side can report why.
//  - HelloMessage is the first SEND on a new connection: the regions (address, rkey,
//    length) the sender exposes to this peer under caller-chosen tags.
//
// Every decode function is pure (no I/O, no allocation beyond the result) and checks
// everything before returning a value; tests/transport/fuzz_connect_private_data.cpp
// fuzzes them. Integers are little-endian on the wire whatever the host.
#pragma once

#include "transport/siphash.hpp"
#include "transport/status.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace rcpg::transport::wire {

inline constexpr uint32_t kConnectMagic = 0x47504352;  // "RCPG"
inline constexpr uint32_t kRejectMagic = 0x52504352;   // "RCPR"
inline constexpr uint32_t kHelloMagic = 0x48504352;    // "RCPH"
inline constexpr uint16_t kVersion = 1;

// rdma_cm's private data limits for IB/RoCE connect requests and rejects.
inline constexpr size_t kMaxConnectPrivateDataBytes = 56;
inline constexpr size_t kMaxRejectPrivateDataBytes = 148;

enum class ConnectKind : uint8_t { request = 1, accept = 2 };

struct ConnectPrivateData {
    ConnectKind kind = ConnectKind::request;
    uint32_t from_node = 0;
    uint32_t to_node = 0;
    uint64_t nonce = 0;
};

inline constexpr size_t kConnectPrivateDataBytes = 32;
static_assert(kConnectPrivateDataBytes <= kMaxConnectPrivateDataBytes);

std::array<std::byte, kConnectPrivateDataBytes> encode_connect(const ConnectPrivateData& data, const SipKey& key);
// Accepts trailing bytes (the CM pads private data with zeros); rejects a short, foreign,
// newer-version, malformed or unauthenticated message with Errc::malformed or
// Errc::refused (bad proof of the key).
Result<ConnectPrivateData> decode_connect(std::span<const std::byte> bytes, const SipKey& key);

enum class RejectReason : uint8_t {
    malformed_request = 1,
    bad_cluster_key = 2,
    unknown_node = 3,
    wrong_target = 4,   // the request was meant for another node id
    duplicate = 5,      // a connection with this peer exists or is being made
    not_ready = 6,      // out of resources
};
const char* to_string(RejectReason reason);

inline constexpr size_t kRejectPrivateDataBytes = 8;
static_assert(kRejectPrivateDataBytes <= kMaxRejectPrivateDataBytes);
std::array<std::byte, kRejectPrivateDataBytes> encode_reject(RejectReason reason);
Result<RejectReason> decode_reject(std::span<const std::byte> bytes);

struct ExposedRegion {
    uint32_t tag = 0;
    uint32_t rkey = 0;
    uint64_t addr = 0;
    uint64_t bytes = 0;
};

inline constexpr size_t kMaxExposedRegions = 16;
inline constexpr size_t kHelloHeaderBytes = 16;
inline constexpr size_t kHelloEntryBytes = 24;
inline constexpr size_t kMaxHelloBytes = kHelloHeaderBytes + kMaxExposedRegions * kHelloEntryBytes;

struct HelloMessage {
    uint32_t from_node = 0;
    std::vector<ExposedRegion> regions;  // distinct tags, at most kMaxExposedRegions
};

// Returns the number of bytes written into `out` (at least kMaxHelloBytes long).
Result<size_t> encode_hello(const HelloMessage& hello, std::span<std::byte> out);
Result<HelloMessage> decode_hello(std::span<const std::byte> bytes);

}  // namespace rcpg::transport::wire
