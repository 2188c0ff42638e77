// The cryptographic primitives of the fabric's trust boundary, all from OpenSSL (libcrypto
// 3, Debian's): HMAC-SHA-256 for the proofs of the cluster key, HKDF-SHA-256 to turn a key
// file (corosync's authkey or any 32 random bytes or more) into the handshake key, a
// constant-time comparison for every proof, and getrandom(2) for nonces. Nothing here is
// hand-written cryptography.
#pragma once

#include "transport/status.hpp"

#include <array>
#include <cstddef>
#include <initializer_list>
#include <span>

namespace rcpg::transport {

inline constexpr size_t kHandshakeKeyBytes = 32;
inline constexpr size_t kMacBytes = 32;

// The key every proof of the handshake is made with: HKDF-SHA-256 of the cluster key file's
// bytes, so that a key file of any length and distribution (corosync-keygen's 128 bytes,
// 32 bytes of /dev/urandom) gives a uniform 256-bit key, bound to rcpg's use of it.
struct HandshakeKey {
    std::array<std::byte, kHandshakeKeyBytes> bytes{};
};

Result<HandshakeKey> derive_handshake_key(std::span<const std::byte> key_file_bytes);

// HKDF-SHA-256 (RFC 5869), extract and expand, into all of `out`.
Status hkdf_sha256(std::span<const std::byte> input_key, std::span<const std::byte> salt,
                   std::span<const std::byte> info, std::span<std::byte> out);

using Mac = std::array<std::byte, kMacBytes>;

// HMAC-SHA-256 over the concatenation of `parts`.
Mac hmac_sha256(const HandshakeKey& key, std::initializer_list<std::span<const std::byte>> parts);

// Equal in time that does not depend on where the first difference is.
bool equal_constant_time(std::span<const std::byte> a, std::span<const std::byte> b);

// Fills `out` from the kernel's random source (getrandom, blocking until it is seeded).
Status fill_random(std::span<std::byte> out);

}  // namespace rcpg::transport
