// Wire formats of connection set-up, all decoded from bytes another host chose. The
// handshake proves, fresh, that both ends hold the cluster key before either end says
// anything about its memory:
//
//   initiator                                   responder
//   REQ  [request: from, to, nonce_i, tag]  ->  checks the tag (keeps out hosts without the
//                                               key; a replay passes, and gains nothing)
//                                           <-  REP [accept: from, to, nonce_r, tag] with the
//                                               tag over both nonces and both queue pairs
//   checks the accept: it answers nonce_i,
//   fresh from getrandom, on these two queue
//   pairs: only a key holder, now, made it
//   SEND [proof: HMAC over the same]        ->  checks the proof: the initiator holds the key
//   SEND hello (its regions)                    and is on this queue pair, this exchange
//                                           <-  SEND hello (its regions)
//
// Every tag is HMAC-SHA-256 with the key derived from the cluster key (crypto.hpp), over
// the message's own header (which names its kind: no tag of one kind passes for another)
// and what it binds; every check is a constant-time comparison. The request and accept
// carry 16 bytes of the tag (rdma_cm leaves 56 bytes of private data in a request), the
// proof all 32.
//
//  - RejectPrivateData rides in rdma_reject so the refused side can report why.
//  - HelloMessage is the first SEND after the proof: the regions (address, rkey, length)
//    the sender exposes to this peer under caller-chosen tags. Later SENDs on the same
//    queue pair are grants in the same format, numbered 1, 2, ... in `update`: each names
//    every region exposed to the peer from then on (what it no longer names is withdrawn).
//
// Every decode function is pure (no I/O, no allocation beyond the result) and checks
// everything before returning a value; tests/transport/fuzz_connect_private_data.cpp
// fuzzes them. Integers are little-endian on the wire whatever the host.
#pragma once

#include "transport/crypto.hpp"
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
// 2: challenge and response bound to both queue pairs (1 had a replayable request).
inline constexpr uint16_t kVersion = 2;

// rdma_cm's private data limits for IB/RoCE connect requests and rejects.
inline constexpr size_t kMaxConnectPrivateDataBytes = 56;
inline constexpr size_t kMaxRejectPrivateDataBytes = 148;

enum class ConnectKind : uint8_t { request = 1, accept = 2, proof = 3 };

inline constexpr size_t kNonceBytes = 16;
using Nonce = std::array<std::byte, kNonceBytes>;

inline constexpr size_t kHeaderBytes = 16;     // magic, version, kind, reserved, from, to
inline constexpr size_t kShortTagBytes = 16;   // the tag of a request or an accept
inline constexpr size_t kConnectPrivateDataBytes = kHeaderBytes + kNonceBytes + kShortTagBytes;
inline constexpr size_t kProofBytes = kHeaderBytes + kMacBytes;
static_assert(kConnectPrivateDataBytes <= kMaxConnectPrivateDataBytes);

struct ConnectRequest {
    uint32_t from_node = 0;
    uint32_t to_node = 0;
    Nonce nonce{};  // the initiator's challenge
};

// One exchange as both ends know it once the accept is out: what the accept and the proof
// are bound to. Queue pair numbers and IPv4 addresses are each side's own, and the other's
// as the CM reports it; a host relaying the exchange between two nodes sees other numbers
// or another address on one side, and the tags do not pass.
struct Transcript {
    uint32_t initiator = 0;
    uint32_t responder = 0;
    Nonce initiator_nonce{};
    Nonce responder_nonce{};
    uint32_t initiator_qpn = 0;
    uint32_t responder_qpn = 0;
    std::array<std::byte, 4> initiator_address{};  // IPv4, network order
    std::array<std::byte, 4> responder_address{};
};

std::array<std::byte, kConnectPrivateDataBytes> encode_request(const ConnectRequest& request, const HandshakeKey& key);
// Accepts trailing bytes (the CM pads private data with zeros); rejects a short, foreign,
// other-version or malformed message with Errc::malformed, and one whose tag is not made
// with the key with Errc::refused. A valid request proves nothing fresh: it may be a replay.
Result<ConnectRequest> decode_request(std::span<const std::byte> bytes, const HandshakeKey& key);

// The responder's answer: from = transcript.responder, to = initiator, its nonce, the tag
// over the whole transcript.
std::array<std::byte, kConnectPrivateDataBytes> encode_accept(const Transcript& transcript, const HandshakeKey& key);
// The initiator's check of an accept against what it sent (initiator, responder, its
// nonce) and the two queue pairs: returns the transcript with the responder's nonce.
// Errc::malformed for garbage, Errc::refused for an accept that does not answer this
// exchange (another key, another nonce, other queue pairs: a replay or a relay).
Result<Transcript> decode_accept(std::span<const std::byte> bytes, const HandshakeKey& key, const Transcript& expected);

std::array<std::byte, kProofBytes> encode_proof(const Transcript& transcript, const HandshakeKey& key);
// The responder's check of the first message on the queue pair: Errc::malformed or
// Errc::refused as above; ok only for the proof of exactly this transcript.
Status check_proof(std::span<const std::byte> bytes, const HandshakeKey& key, const Transcript& transcript);

enum class RejectReason : uint8_t {
    malformed_request = 1,
    bad_cluster_key = 2,
    unknown_node = 3,
    wrong_target = 4,   // the request was meant for another node id
    duplicate = 5,      // a connection with this peer is up (an attempt in progress is no reason)
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
    uint32_t update = 0;  // 0: the hello; n: the n-th grant on this connection
    std::vector<ExposedRegion> regions;  // distinct tags, at most kMaxExposedRegions
};

// Returns the number of bytes written into `out` (at least kMaxHelloBytes long).
Result<size_t> encode_hello(const HelloMessage& hello, std::span<std::byte> out);
Result<HelloMessage> decode_hello(std::span<const std::byte> bytes);

}  // namespace rcpg::transport::wire
