// SipHash-2-4 (Aumasson and Bernstein), a keyed 64-bit hash: the proof of the cluster
// key in connection private data. Implemented here because libssl is not a dependency.
// It authenticates a connection request against casual misconfiguration and foreign
// clusters; it does not make RDMA traffic confidential.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace rcpg::transport {

using SipKey = std::array<uint64_t, 2>;

uint64_t siphash24(const SipKey& key, std::span<const std::byte> message);

// Folds a cluster key of any length (at least 16 bytes) into a SipHash key.
SipKey derive_sip_key(std::span<const std::byte> cluster_key);

}  // namespace rcpg::transport
