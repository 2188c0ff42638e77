#include "transport/connect_private_data.hpp"

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

constexpr size_t kMacOffset = kConnectPrivateDataBytes - sizeof(uint64_t);

}  // namespace

std::array<std::byte, kConnectPrivateDataBytes> encode_connect(const ConnectPrivateData& data, const SipKey& key)
{
    std::array<std::byte, kConnectPrivateDataBytes> out{};
    Writer w(out);
    w.put<uint32_t>(kConnectMagic);
    w.put<uint16_t>(kVersion);
    w.put<uint8_t>(static_cast<uint8_t>(data.kind));
    w.put<uint8_t>(0);
    w.put<uint32_t>(data.from_node);
    w.put<uint32_t>(data.to_node);
    w.put<uint64_t>(data.nonce);
    w.put<uint64_t>(siphash24(key, std::span<const std::byte>(out).first(kMacOffset)));
    return out;
}

Result<ConnectPrivateData> decode_connect(std::span<const std::byte> bytes, const SipKey& key)
{
    if (bytes.size() < kConnectPrivateDataBytes) {
        return malformed("connect private data too short: " + std::to_string(bytes.size()) + " bytes");
    }
    Reader r(bytes);
    if (r.get<uint32_t>() != kConnectMagic) {
        return malformed("connect private data: bad magic");
    }
    if (const auto version = r.get<uint16_t>(); version != kVersion) {
        return malformed("connect private data: unsupported version " + std::to_string(version));
    }
    const auto kind = r.get<uint8_t>();
    if (kind != static_cast<uint8_t>(ConnectKind::request) && kind != static_cast<uint8_t>(ConnectKind::accept)) {
        return malformed("connect private data: bad kind " + std::to_string(kind));
    }
    if (r.get<uint8_t>() != 0) {
        return malformed("connect private data: reserved byte set");
    }
    ConnectPrivateData data;
    data.kind = static_cast<ConnectKind>(kind);
    data.from_node = r.get<uint32_t>();
    data.to_node = r.get<uint32_t>();
    data.nonce = r.get<uint64_t>();
    const uint64_t mac = r.get<uint64_t>();
    // Checked last: a wrong key is distinguishable from garbage only once the rest parses.
    if (mac != siphash24(key, bytes.first(kMacOffset))) {
        return Status{Errc::refused, Layer::handshake,
                      "cluster key proof does not match (node " + std::to_string(data.from_node) + ")"};
    }
    return data;
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
    w.put<uint32_t>(0);
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
    if (r.get<uint32_t>() != 0) {
        return malformed("hello: reserved field set");
    }
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
