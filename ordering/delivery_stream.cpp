#include "ordering/delivery_stream.hpp"

#include "base/assert.hpp"

#include "delivery/ring_format.hpp"
#include "ordering/cluster_wire.hpp"
#include "transport/ring_layout.hpp"

#include <array>
#include <atomic>
#include <bit>
#include <string>

namespace rcpg::ordering {

using transport::Errc;
using transport::Layer;
using transport::Status;

namespace {

// The immediate of a tail or credit-request write: only a wake-up; the value itself is in
// the ring header.
constexpr uint32_t kTailImmediate = 1;

}  // namespace

transport::Result<DeliveryStream> DeliveryStream::create(transport::Transport& transport, transport::NodeId node,
                                                         transport::RemoteRegion remote_ring,
                                                         transport::RemoteRegion remote_control,
                                                         transport::RegionId local_ring, uint64_t ring_bytes,
                                                         const transport::PeerWord* credit_word, uint64_t start_position,
                                                         std::optional<uint64_t> start_credit)
{
    // Positions map to offsets by masking: a ring of another size would scatter entries.
    if (!std::has_single_bit(ring_bytes) || ring_bytes < delivery::kPageBytes) {
        return Status{Errc::invalid_argument, Layer::ring,
                      "ring of " + std::to_string(ring_bytes) + " bytes: needs a power of two of at least a page"};
    }
    if (remote_ring.bytes != ring_bytes) {
        return Status{Errc::invalid_argument, Layer::ring,
                      "node " + std::to_string(node) + " exposes a ring of " + std::to_string(remote_ring.bytes) +
                          " bytes; the sequencer's has " + std::to_string(ring_bytes)};
    }
    if (remote_control.bytes != wire::kRingControlBytes) {
        return Status{Errc::invalid_argument, Layer::ring,
                      "node " + std::to_string(node) + " exposes " + std::to_string(remote_control.bytes) +
                          " bytes of ring control words; they are " + std::to_string(wire::kRingControlBytes)};
    }
    if (credit_word == nullptr || start_position % delivery::kEntryAlignBytes != 0) {
        return Status{Errc::invalid_argument, Layer::ring, "credit word missing or start position misaligned"};
    }
    const uint64_t credit = start_credit.value_or(start_position);
    if (credit > start_position || start_position - credit > ring_bytes) {
        return Status{Errc::invalid_argument, Layer::ring, "start credit outside the ring before the start position"};
    }
    return DeliveryStream(transport, node, remote_ring, remote_control, local_ring, ring_bytes, credit_word,
                          start_position, credit);
}

DeliveryStream::DeliveryStream(transport::Transport& transport, transport::NodeId node,
                               transport::RemoteRegion remote_ring, transport::RemoteRegion remote_control,
                               transport::RegionId local_ring, uint64_t ring_bytes, const transport::PeerWord* credit_word, uint64_t start_position,
                               uint64_t start_credit)
    : transport_(&transport),
      node_(node),
      remote_ring_(remote_ring),
      remote_control_(remote_control),
      local_ring_(local_ring),
      ring_bytes_(ring_bytes),
      credit_word_(credit_word),
      sent_(start_position),
      credit_(start_credit)
{
}

Status DeliveryStream::replicate(uint64_t tail, const std::deque<DeliveryRing::Range>& gaps)
{
    if (tail == sent_) {
        return {};
    }
    RCPG_ASSERT(tail > sent_, "replicating up to {}, behind what was sent ({})", tail, sent_);
    if (tail - credit() > ring_bytes_) {
        return {Errc::invalid_argument, Layer::ring, "replicating beyond the node's credit"};
    }
    // Each piece between gaps wraps at most once (the range is never longer than the
    // ring): one or two writes, room for the last piece always kept; the tail's write last.
    constexpr size_t kMaxDataWrites = 16;
    std::array<transport::WriteRequest, kMaxDataWrites + 1> writes{};
    std::array<transport::LocalSlice, kMaxDataWrites> sources{};
    size_t count = 0;
    const auto add_piece = [&](uint64_t begin, uint64_t end) {
        while (begin < end) {
            const uint64_t offset = begin & (ring_bytes_ - 1);
            const uint64_t bytes = std::min(end - begin, ring_bytes_ - offset);
            sources[count] = {local_ring_, offset, static_cast<uint32_t>(bytes)};
            writes[count].sources = {&sources[count], 1};
            writes[count++].destination = remote_ring_.at(offset);
            begin += bytes;
        }
    };
    uint64_t position = sent_;
    for (const DeliveryRing::Range& gap : gaps) {
        if (gap.end <= position) {
            continue;
        }
        if (gap.begin >= tail) {
            break;
        }
        if (count + 4 > kMaxDataWrites) {
            tail = position;  // a skip's end: the rest goes with the next call
            break;
        }
        add_piece(position, gap.begin);
        position = gap.end;
    }
    if (position < tail) {
        add_piece(position, tail);
    }
    const uint64_t tail_word = tail;
    transport::WriteRequest& commit = writes[count++];
    commit.inline_bytes = std::as_bytes(std::span<const uint64_t>(&tail_word, 1));
    commit.destination = remote_control_.at(delivery::kClusterTailOffset - wire::kRingControlOffset);
    commit.imm = kTailImmediate;
    if (Status status = transport_->post_writes(node_, {writes.data(), count}); !status) {
        return status;
    }
    sent_ = tail;
    return {};
}

void DeliveryStream::request_credit(uint64_t position)
{
    if (position <= requested_ || position > sent_) {
        return;
    }
    const uint64_t word = position;
    transport::WriteRequest write;
    write.inline_bytes = std::as_bytes(std::span<const uint64_t>(&word, 1));
    write.destination = remote_control_.at(delivery::kCreditRequestOffset - wire::kRingControlOffset);
    write.imm = kTailImmediate;  // wakes the node if it sleeps
    if (transport_->post_write(node_, write).ok()) {
        requested_ = position;
    }
}

Status DeliveryStream::publish_stable(uint64_t stable)
{
    stable = std::min(stable, sent_);
    if (stable <= stable_sent_) {
        return {};
    }
    const uint64_t word = stable;
    transport::WriteRequest write;
    write.inline_bytes = std::as_bytes(std::span<const uint64_t>(&word, 1));
    write.destination = remote_control_.at(delivery::kStableTailOffset - wire::kRingControlOffset);
    write.imm = kTailImmediate;  // its clients wait for it: wake the node
    Status status = transport_->post_write(node_, write);
    if (status) {
        stable_sent_ = stable;
    }
    return status;
}

uint64_t DeliveryStream::credit()
{
    // The member's NIC writes it: taken only within [credit_, sent_] (ring_layout.hpp).
    credit_ = transport::ring::accept_credit(credit_word_->load(), credit_, sent_);
    return credit_;
}

}  // namespace rcpg::ordering
