// fabric_rogue: one connection attempt by a host on the fabric that claims to be a node of
// the cluster, for the cluster tests of the fabric's trust boundary.
//
//   fabric_rogue --to HOST:PORT --claim N --target M [--key FILE [--prove TAGS] | --malformed]
//
// The connect request names node N as its sender and node M as its target. Its tag is made
// with a key nobody has (a spoof), or with the cluster key file's key (--key: the request
// is then exactly what node N would send, as if captured off the wire and replayed), or the
// request is garbage (--malformed). If the node accepts at the CM level (a replay), the
// rogue stays silent and waits for the node to end the attempt. Output: one line, what the
// node did and how many messages it sent the rogue. Exit 0 when the attempt ended and the
// node told the rogue nothing; 1 otherwise; 2 usage.
//
// --prove TAGS: a holder of the key, the absent node N itself as far as anyone can tell,
// goes through the whole handshake (answers the accept with the proof) and prints the
// region tags the node's hello names; then it writes 8 bytes just past the end of the
// largest of them. Exit 0 when the hello names none of TAGS (e.g. "1 2 8 9": another
// member's ring, snapshot region, ring control words, repair window) and the device
// refused that write; 1 otherwise.
#include "tests/security/rogue_peer.hpp"
#include "transport/connect_private_data.hpp"
#include "transport/crypto.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <array>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <netinet/in.h>
#include <rdma/rdma_cma.h>

namespace {

using namespace rcpg;

int usage()
{
    std::fprintf(stderr,
                 "usage: fabric_rogue --to HOST:PORT --claim N --target M [--key FILE [--prove TAGS] | --malformed]\n");
    return 2;
}

uint64_t now_ms()
{
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

std::array<std::byte, 4> ipv4_bytes(const sockaddr* address)
{
    std::array<std::byte, 4> out{};
    if (address != nullptr && address->sa_family == AF_INET) {
        std::memcpy(out.data(), &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, out.size());
    }
    return out;
}

// Polls until `done` or the deadline; false on the deadline.
template <typename Done>
bool pump(security_testing::RoguePeer& rogue, uint64_t deadline_ms, Done done)
{
    while (!done()) {
        if (now_ms() >= deadline_ms) {
            return false;
        }
        rogue.poll();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

int prove(security_testing::RoguePeer& rogue, security_testing::RogueConnection& connection,
          const transport::HandshakeKey& key, const transport::wire::ConnectRequest& request,
          const std::vector<uint32_t>& forbidden, const std::string& to)
{
    namespace wire = transport::wire;
    const uint64_t deadline = now_ms() + 120000;
    if (!pump(rogue, deadline, [&] { return connection.established || connection.disconnected; }) ||
        !connection.established) {
        std::printf("fabric_rogue: claiming node %u to node %u at %s with the key: not accepted\n", request.from_node,
                    request.to_node, to.c_str());
        return 1;
    }
    wire::Transcript expected{request.from_node, request.to_node, request.nonce, {}, connection.local_qpn,
                              connection.remote_qpn, ipv4_bytes(rdma_get_local_addr(connection.id.get())),
                              ipv4_bytes(rdma_get_peer_addr(connection.id.get()))};
    auto transcript = wire::decode_accept(connection.peer_private_data, key, expected);
    if (!transcript) {
        std::printf("fabric_rogue: the accept does not check out: %s\n", transcript.status().message().c_str());
        return 1;
    }
    const auto proof = wire::encode_proof(*transcript, key);
    if (!rogue.send(connection, proof).ok() ||
        !pump(rogue, deadline, [&] { return !connection.received.empty() || connection.disconnected; }) ||
        connection.received.empty()) {
        std::printf("fabric_rogue: no hello after the proof\n");
        return 1;
    }
    auto hello = wire::decode_hello(connection.received.front());
    if (!hello) {
        std::printf("fabric_rogue: the hello does not decode: %s\n", hello.status().message().c_str());
        return 1;
    }
    std::string tags;
    bool named_forbidden = false;
    const wire::ExposedRegion* largest = nullptr;
    for (const wire::ExposedRegion& region : hello->regions) {
        tags += " " + std::to_string(region.tag);
        named_forbidden |= std::find(forbidden.begin(), forbidden.end(), region.tag) != forbidden.end();
        if (largest == nullptr || region.bytes > largest->bytes) {
            largest = &region;
        }
    }
    // Past what it was given: the device must refuse it (and end the connection).
    bool refused = false;
    if (largest != nullptr) {
        const uint64_t word = 0x726f677565ull;
        const size_t failed_before = rogue.writes_failed();
        if (rogue.write(connection, largest->addr + largest->bytes, largest->rkey,
                        std::as_bytes(std::span(&word, 1)))
                .ok()) {
            pump(rogue, deadline, [&] {
                return rogue.writes_failed() > failed_before || rogue.writes_completed() > 0 || connection.disconnected;
            });
        }
        refused = rogue.writes_failed() > failed_before;
    }
    std::printf("fabric_rogue: claiming node %u to node %u at %s with the key: its hello names regions%s; a write "
                "past the largest was %s\n",
                request.from_node, request.to_node, to.c_str(), tags.empty() ? " (none)" : tags.c_str(),
                refused ? "refused by the device" : "not refused");
    return !named_forbidden && refused ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv)
{
    std::string to, key_file;
    uint32_t claim = 0, target = 0;
    bool malformed = false;
    std::optional<std::vector<uint32_t>> forbidden;  // --prove
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
        if (arg == "--malformed") {
            malformed = true;
        } else if (value == nullptr) {
            return usage();
        } else if (arg == "--to") {
            to = argv[++i];
        } else if (arg == "--claim") {
            claim = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 10));
        } else if (arg == "--target") {
            target = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 10));
        } else if (arg == "--key") {
            key_file = argv[++i];
        } else if (arg == "--prove") {
            forbidden.emplace();
            std::istringstream tags(argv[++i]);
            for (uint32_t tag = 0; tags >> tag;) {
                forbidden->push_back(tag);
            }
        } else {
            return usage();
        }
    }
    const size_t colon = to.rfind(':');
    if (colon == std::string::npos || claim == 0 || target == 0 || (malformed && !key_file.empty()) ||
        (forbidden && key_file.empty())) {
        return usage();
    }
    const std::string host = to.substr(0, colon);
    const auto port = static_cast<uint16_t>(std::strtoul(to.c_str() + colon + 1, nullptr, 10));

    std::vector<std::byte> key_bytes(32);
    if (!key_file.empty()) {
        std::ifstream in(key_file, std::ios::binary);
        const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        key_bytes.assign(reinterpret_cast<const std::byte*>(bytes.data()),
                         reinterpret_cast<const std::byte*>(bytes.data()) + bytes.size());
    } else if (!transport::fill_random(key_bytes).ok()) {
        return 1;
    }
    auto key = transport::derive_handshake_key(key_bytes);
    transport::wire::Nonce nonce{};
    if (!key || !transport::fill_random(nonce).ok()) {
        std::fprintf(stderr, "fabric_rogue: cannot make a key\n");
        return 1;
    }
    std::vector<std::byte> request;
    if (malformed) {
        request.assign(transport::wire::kConnectPrivateDataBytes, std::byte{0xa5});
    } else {
        const auto bytes = transport::wire::encode_request({claim, target, nonce}, *key);
        request.assign(bytes.begin(), bytes.end());
    }

    auto rogue = security_testing::RoguePeer::create();
    if (!rogue) {
        std::fprintf(stderr, "fabric_rogue: %s\n", rogue.status().message().c_str());
        return 1;
    }
    auto attempt = (*rogue)->connect(host, port, request);
    if (!attempt) {
        std::fprintf(stderr, "fabric_rogue: %s\n", attempt.status().message().c_str());
        return 1;
    }
    security_testing::RogueConnection& connection = **attempt;
    if (forbidden) {
        return prove(**rogue, connection, *key, {claim, target, nonce}, *forbidden, to);
    }
    // Generous: the node refuses a silent attempt at its connect_timeout_ms.
    const uint64_t deadline = now_ms() + 120000;
    bool was_accepted = false;
    while (!connection.disconnected && now_ms() < deadline) {
        (*rogue)->poll();
        was_accepted = was_accepted || connection.established;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const char* outcome = !connection.disconnected ? "still open after 120 s"
                          : connection.rejected    ? "rejected"
                          : was_accepted           ? "accepted by the CM, then ended by the node"
                                                   : "failed";
    std::printf("fabric_rogue: claiming node %u to node %u at %s (%s): %s; the node sent %zu messages\n", claim, target,
                to.c_str(), malformed ? "malformed" : key_file.empty() ? "forged tag" : "replayed", outcome,
                connection.received.size());
    return connection.disconnected && connection.received.empty() ? 0 : 1;
}
