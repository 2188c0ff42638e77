// A 64-bit word in registered memory that another node's device writes, or that this
// node writes for another node's device to read: a ring's tail and credit request, a
// credit, a heartbeat counter. The device stores it whole (aligned 8 bytes) but behind
// the compiler's back, so every access is atomic: an acquire load (what the peer wrote
// before it on the same queue pair is seen after it), a release store. What a peer wrote
// is still only a claim: whoever reads it checks it (ring_layout.hpp's accept_*
// functions, ordering's wire decoders).
//
// Trivially constructible and destructible, so a word simply exists in the memory it is
// registered over (an implicit-lifetime type): each exposed area is a struct of them
// laid over that memory, and a remote write's offset is that struct's offsetof.
#pragma once

#include <atomic>
#include <cstdint>
#include <type_traits>

namespace rcpg::transport {

class PeerWord {
public:
    uint64_t load() const { return std::atomic_ref<uint64_t>(value_).load(std::memory_order_acquire); }
    void store(uint64_t value) { std::atomic_ref<uint64_t>(value_).store(value, std::memory_order_release); }

private:
    alignas(std::atomic_ref<uint64_t>::required_alignment) mutable uint64_t value_;
};

static_assert(sizeof(PeerWord) == sizeof(uint64_t) && std::is_standard_layout_v<PeerWord>);
static_assert(std::is_trivially_default_constructible_v<PeerWord> && std::is_trivially_destructible_v<PeerWord>);

}  // namespace rcpg::transport
