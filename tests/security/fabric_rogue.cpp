// fabric_rogue: one connection attempt by a host on the fabric that claims to be a node of
// the cluster, for the cluster tests of the fabric's trust boundary.
//
//   fabric_rogue --to HOST:PORT --claim N --target M [--key FILE | --malformed]
//
// The connect request names node N as its sender and node M as its target. Its tag is made
// with a key nobody has (a spoof), or with the cluster key file's key (--key: the request
// is then exactly what node N would send, as if captured off the wire and replayed), or the
// request is garbage (--malformed). If the node accepts at the CM level (a replay), the
// rogue stays silent and waits for the node to end the attempt. Output: one line, what the
// node did and how many messages it sent the rogue. Exit 0 when the attempt ended and the
// node told the rogue nothing; 1 otherwise; 2 usage.
#include "tests/security/rogue_peer.hpp"
#include "transport/connect_private_data.hpp"
#include "transport/crypto.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

namespace {

using namespace rcpg;

int usage()
{
    std::fprintf(stderr, "usage: fabric_rogue --to HOST:PORT --claim N --target M [--key FILE | --malformed]\n");
    return 2;
}

uint64_t now_ms()
{
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

}  // namespace

int main(int argc, char** argv)
{
    std::string to, key_file;
    uint32_t claim = 0, target = 0;
    bool malformed = false;
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
        } else {
            return usage();
        }
    }
    const size_t colon = to.rfind(':');
    if (colon == std::string::npos || claim == 0 || target == 0 || (malformed && !key_file.empty())) {
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
