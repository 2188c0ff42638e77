#include "transport/connect_private_data.hpp"

#include <cstring>
#include <functional>
#include <string>

namespace rcpg::transport::wire {
namespace {

// Explicit little-endian (de)serialisation: the layout is the wire contract, not a struct.
class Writer {
public:
    explicit Writer(std::span<std::byte> out) : out_(out) {}
    template <typename T>
    void put(T value)
    {
        for (size_t i = 0; i < sizeof(T); ++i) {
            out_[pos_++] = static_cast<std::byte>((static_cast<uint64_t>(value) >> (8 * i)) & 0xff);
        }
    }
    size_t size() const { return pos_; }

private:
    std::span<std::byte> out_;
    size_t pos_ = 0;
};

class Reader {
public:
    explicit Reader(std::span<const std::byte> in) : in_(in) {}
    template <typename T>
    T get()
    {
        uint64_t value = 0;
        for (size_t i = 0; i < sizeof(T); ++i) {
            value |= static_cast<uint64_t>(in_[pos_ + i]) << (8 * i);
        }
        pos_ += sizeof(T);
        return static_cast<T>(value);
    }

private:
    std::span<const std::byte> in_;
    size_t pos_ = 0;
};

Status malformed(const std::string& what) { return {Errc::malformed, Layer::handshake, what}; }
Status refused(const std::string& what) { return {Errc::refused, Layer::handshake, what}; }

std::span<const std::byte> as_bytes(const Nonce& nonce) { return std::span<const std::byte>(nonce); }

std::array<std::byte, 4> le32(uint32_t value)
{
    std::array<std::byte, 4> out{};
    Writer(out).put<uint32_t>(value);
    return out;
}

void put_header(Writer& w, ConnectKind kind, uint32_t from, uint32_t to)
{
    w.put<uint32_t>(kConnectMagic);
    w.put<uint16_t>(kVersion);
    w.put<uint8_t>(static_cast<uint8_t>(kind));
    w.put<uint8_t>(0);
    w.put<uint32_t>(from);
    w.put<uint32_t>(to);
}

struct Header {
    ConnectKind kind = ConnectKind::request;
    uint32_t from = 0;
    uint32_t to = 0;
};

// The header of a connect message of `kind`, at least `size` bytes long.
Result<Header> read_header(std::span<const std::byte> bytes, ConnectKind kind, size_t size, const char* what)
{
    if (bytes.size() < size) {
        return malformed(std::string(what) + " too short: " + std::to_string(bytes.size()) + " bytes");
    }
    Reader r(bytes);
    if (r.get<uint32_t>() != kConnectMagic) {
        return malformed(std::string(what) + ": bad magic");
    }
    if (const auto version = r.get<uint16_t>(); version != kVersion) {
        return malformed(std::string(what) + ": unsupported version " + std::to_string(version));
    }
    if (const auto got = r.get<uint8_t>(); got != static_cast<uint8_t>(kind)) {
        return malformed(std::string(what) + ": kind " + std::to_string(got) + ", expected " +
                         std::to_string(static_cast<uint8_t>(kind)));
    }
    if (r.get<uint8_t>() != 0) {
        return malformed(std::string(what) + ": reserved byte set");
    }
    Header header;
    header.kind = kind;
    header.from = r.get<uint32_t>();
    header.to = r.get<uint32_t>();
    return header;
}

// The tags: HMAC over the message's header and what the message binds.
Mac request_tag(const HandshakeKey& key, std::span<const std::byte> header, const Nonce& nonce)
{
    return hmac_sha256(key, {header, as_bytes(nonce)});
}

Mac transcript_tag(const HandshakeKey& key, std::span<const std::byte> header, const Transcript& t)
{
    const auto initiator_qpn = le32(t.initiator_qpn);
    const auto responder_qpn = le32(t.responder_qpn);
    return hmac_sha256(key, {header, as_bytes(t.initiator_nonce), as_bytes(t.responder_nonce), initiator_qpn, responder_qpn,
                             t.initiator_address, t.responder_address});
}

bool tag_matches(const Mac& expected, std::span<const std::byte> got)
{
    return equal_constant_time(std::span<const std::byte>(expected).first(got.size()), got);
}

}  // namespace

namespace {

// A request or an accept: header, nonce, and the first bytes of the tag.
std::array<std::byte, kConnectPrivateDataBytes> with_short_tag(ConnectKind kind, uint32_t from, uint32_t to, const Nonce& nonce,
                                                               const std::function<Mac(std::span<const std::byte>)>& tag_of_header)
{
    std::array<std::byte, kConnectPrivateDataBytes> out{};
    Writer w(out);
    put_header(w, kind, from, to);
    std::memcpy(out.data() + kHeaderBytes, nonce.data(), kNonceBytes);
    const Mac tag = tag_of_header(std::span(out).first(kHeaderBytes));
    std::memcpy(out.data() + kHeaderBytes + kNonceBytes, tag.data(), kShortTagBytes);
    return out;
}

}  // namespace

std::array<std::byte, kConnectPrivateDataBytes> encode_request(const ConnectRequest& request, const HandshakeKey& key)
{
    return with_short_tag(ConnectKind::request, request.from_node, request.to_node, request.nonce,
                          [&](std::span<const std::byte> header) { return request_tag(key, header, request.nonce); });
}

Result<ConnectRequest> decode_request(std::span<const std::byte> bytes, const HandshakeKey& key)
{
    auto header = read_header(bytes, ConnectKind::request, kConnectPrivateDataBytes, "connect request");
    if (!header) {
        return header.status();
    }
    ConnectRequest request;
    request.from_node = header->from;
    request.to_node = header->to;
    std::memcpy(request.nonce.data(), bytes.data() + kHeaderBytes, kNonceBytes);
    // Checked last: a wrong key is distinguishable from garbage only once the rest parses.
    const Mac tag = request_tag(key, bytes.first(kHeaderBytes), request.nonce);
    if (!tag_matches(tag, bytes.subspan(kHeaderBytes + kNonceBytes, kShortTagBytes))) {
        return refused("connect request: the cluster key proof does not match");
    }
    return request;
}

std::array<std::byte, kConnectPrivateDataBytes> encode_accept(const Transcript& transcript, const HandshakeKey& key)
{
    return with_short_tag(ConnectKind::accept, transcript.responder, transcript.initiator, transcript.responder_nonce,
                          [&](std::span<const std::byte> header) { return transcript_tag(key, header, transcript); });
}

Result<Transcript> decode_accept(std::span<const std::byte> bytes, const HandshakeKey& key, const Transcript& expected)
{
    auto header = read_header(bytes, ConnectKind::accept, kConnectPrivateDataBytes, "accept");
    if (!header) {
        return header.status();
    }
    if (header->from != expected.responder || header->to != expected.initiator) {
        return refused("accept from node " + std::to_string(header->from) + " to node " + std::to_string(header->to) +
                       ", expected from node " + std::to_string(expected.responder) + " to node " +
                       std::to_string(expected.initiator));
    }
    Transcript transcript = expected;
    std::memcpy(transcript.responder_nonce.data(), bytes.data() + kHeaderBytes, kNonceBytes);
    const Mac tag = transcript_tag(key, bytes.first(kHeaderBytes), transcript);
    if (!tag_matches(tag, bytes.subspan(kHeaderBytes + kNonceBytes, kShortTagBytes))) {
        return refused("accept: no proof of the cluster key for this exchange (another key, nonce or queue pair)");
    }
    return transcript;
}

std::array<std::byte, kProofBytes> encode_proof(const Transcript& transcript, const HandshakeKey& key)
{
    std::array<std::byte, kProofBytes> out{};
    Writer w(out);
    put_header(w, ConnectKind::proof, transcript.initiator, transcript.responder);
    const Mac tag = transcript_tag(key, std::span(out).first(kHeaderBytes), transcript);
    std::memcpy(out.data() + kHeaderBytes, tag.data(), kMacBytes);
    return out;
}

Status check_proof(std::span<const std::byte> bytes, const HandshakeKey& key, const Transcript& transcript)
{
    auto header = read_header(bytes, ConnectKind::proof, kProofBytes, "proof");
    if (!header) {
        return header.status();
    }
    if (bytes.size() != kProofBytes) {
        return malformed("proof: " + std::to_string(bytes.size()) + " bytes, expected " + std::to_string(kProofBytes));
    }
    if (header->from != transcript.initiator || header->to != transcript.responder) {
        return refused("proof names node " + std::to_string(header->from) + " to node " + std::to_string(header->to));
    }
    const Mac tag = transcript_tag(key, bytes.first(kHeaderBytes), transcript);
    if (!tag_matches(tag, bytes.subspan(kHeaderBytes, kMacBytes))) {
        return refused("proof: no proof of the cluster key for this exchange");
    }
    return {};
}

const char* to_string(RejectReason reason)
{
    switch (reason) {
    case RejectReason::malformed_request: return "malformed request";
    case RejectReason::bad_cluster_key: return "bad cluster key";
    case RejectReason::unknown_node: return "node not in the configured node list";
    case RejectReason::wrong_target: return "request addressed to another node";
    case RejectReason::duplicate: return "duplicate connection";
    case RejectReason::not_ready: return "out of resources";
    }
    return "unknown reject reason";
}

std::array<std::byte, kRejectPrivateDataBytes> encode_reject(RejectReason reason)
{
    std::array<std::byte, kRejectPrivateDataBytes> out{};
    Writer w(out);
    w.put<uint32_t>(kRejectMagic);
    w.put<uint16_t>(kVersion);
    w.put<uint8_t>(static_cast<uint8_t>(reason));
    w.put<uint8_t>(0);
    return out;
}

Result<RejectReason> decode_reject(std::span<const std::byte> bytes)
{
    if (bytes.size() < kRejectPrivateDataBytes) {
        return malformed("reject private data too short");
    }
    Reader r(bytes);
    if (r.get<uint32_t>() != kRejectMagic || r.get<uint16_t>() != kVersion) {
        return malformed("reject private data: bad magic or version");
    }
    const auto reason = r.get<uint8_t>();
    if (reason < static_cast<uint8_t>(RejectReason::malformed_request) ||
        reason > static_cast<uint8_t>(RejectReason::not_ready)) {
        return malformed("reject private data: bad reason " + std::to_string(reason));
    }
    return static_cast<RejectReason>(reason);
}

Result<size_t> encode_hello(const HelloMessage& hello, std::span<std::byte> out)
{
    if (hello.regions.size() > kMaxExposedRegions) {
        return Status{Errc::invalid_argument, Layer::handshake, "too many exposed regions"};
    }
    const size_t total = kHelloHeaderBytes + hello.regions.size() * kHelloEntryBytes;
    if (out.size() < total) {
        return Status{Errc::invalid_argument, Layer::handshake, "hello buffer too small"};
    }
    Writer w(out);
    w.put<uint32_t>(kHelloMagic);
    w.put<uint16_t>(kVersion);
    w.put<uint16_t>(static_cast<uint16_t>(hello.regions.size()));
    w.put<uint32_t>(hello.from_node);
    w.put<uint32_t>(hello.update);
    for (const ExposedRegion& region : hello.regions) {
        w.put<uint32_t>(region.tag);
        w.put<uint32_t>(region.rkey);
        w.put<uint64_t>(region.addr);
        w.put<uint64_t>(region.bytes);
    }
    return w.size();
}

Result<HelloMessage> decode_hello(std::span<const std::byte> bytes)
{
    if (bytes.size() < kHelloHeaderBytes) {
        return malformed("hello too short");
    }
    Reader r(bytes);
    if (r.get<uint32_t>() != kHelloMagic) {
        return malformed("hello: bad magic");
    }
    if (r.get<uint16_t>() != kVersion) {
        return malformed("hello: unsupported version");
    }
    const auto count = r.get<uint16_t>();
    if (count > kMaxExposedRegions) {
        return malformed("hello: too many regions: " + std::to_string(count));
    }
    if (bytes.size() < kHelloHeaderBytes + count * kHelloEntryBytes) {
        return malformed("hello: truncated region list");
    }
    HelloMessage hello;
    hello.from_node = r.get<uint32_t>();
    hello.update = r.get<uint32_t>();
    hello.regions.reserve(count);
    for (uint16_t i = 0; i < count; ++i) {
        ExposedRegion region;
        region.tag = r.get<uint32_t>();
        region.rkey = r.get<uint32_t>();
        region.addr = r.get<uint64_t>();
        region.bytes = r.get<uint64_t>();
        if (region.bytes == 0 || region.addr + region.bytes < region.addr) {
            return malformed("hello: region " + std::to_string(region.tag) + " is empty or wraps the address space");
        }
        for (const ExposedRegion& seen : hello.regions) {
            if (seen.tag == region.tag) {
                return malformed("hello: duplicate tag " + std::to_string(region.tag));
            }
        }
        hello.regions.push_back(region);
    }
    return hello;
}

}  // namespace rcpg::transport::wire
