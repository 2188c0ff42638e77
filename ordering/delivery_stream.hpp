// DeliveryStream: the sequencer's writer into one node's delivery ring.
//
// Every node's ring has the sequencer's size and holds the sequencer's entries at the
// same positions, so replicating is copying byte ranges: entries [sent, tail) of the
// sequencer's own ring go by RDMA WRITE to the same offsets of the node's ring (one write,
// two where the range wraps), then the new tail goes as a separate 8-byte
// WRITE_WITH_IMM into the node's ring header on the same queue pair — after the data,
// so a node never judges an entry complete by a byte inside it, and the immediate wakes
// a node that sleeps. One post list per batch: one doorbell, whatever the batch holds.
//
// Credits: the node RDMA-writes the lowest position it still needs into our credit word
// (lazily; see daemon/NOTES.md); the sequencer never appends past credit + ring_bytes
// for any node of the view, which also keeps the source bytes of a write in flight
// intact (a node cannot credit what has not landed).
#pragma once

#include "ordering/delivery_ring.hpp"
#include "transport/peer_word.hpp"
#include "transport/transport.hpp"

#include <cstdint>
#include <optional>

namespace rcpg::ordering {

class DeliveryStream {
public:
    // `remote_ring`: the node's exposed ring data area (`ring_bytes`); `remote_control`:
    // its exposed control words (cluster_wire.hpp, kRingControlBytes); `local_ring`: the
    // sequencer's own registered ring data area; `credit_word`: registered memory the
    // node writes its consumed position into.
    // `start_credit`: what the node's readers still need, if below `start_position` (a
    // node that continues under a new sequencer); by default `start_position`.
    static transport::Result<DeliveryStream> create(transport::Transport& transport, transport::NodeId node,
                                                    transport::RemoteRegion remote_ring,
                                                    transport::RemoteRegion remote_control,
                                                    transport::RegionId local_ring,
                                                    uint64_t ring_bytes, const transport::PeerWord* credit_word,
                                                    uint64_t start_position,
                                                    std::optional<uint64_t> start_credit = std::nullopt);

    // Posts ring bytes [sent(), tail), except the `gaps` (insides of skip entries, in
    // ring order: DeliveryRing::skip_insides()), and then the tail itself. With more
    // gaps in the range than one post takes, it stops after one of them (an entry's
    // end) and sent() says where: call again. Errc::try_again when the send queue is
    // full (nothing posted; call again after poll()).
    transport::Status replicate(uint64_t tail, const std::deque<DeliveryRing::Range>& gaps = {});
    // Asks the node to publish its consumed position up to `position` (a sequencer short
    // of room); once per position.
    void request_credit(uint64_t position);
    // Tells the node that every node of the view holds the entries before `stable` (at
    // most what was sent), so it may deliver SAFE messages there; only when it grew.
    transport::Status publish_stable(uint64_t stable);

    // The lowest position the node still needs, as it last published it (never beyond
    // what was sent; a value outside [last credit, sent] is ignored as corrupt).
    uint64_t credit();
    uint64_t sent() const { return sent_; }
    transport::NodeId node() const { return node_; }

private:
    DeliveryStream(transport::Transport& transport, transport::NodeId node, transport::RemoteRegion remote_ring,
                   transport::RemoteRegion remote_control, transport::RegionId local_ring, uint64_t ring_bytes, const transport::PeerWord* credit_word,
                   uint64_t start_position, uint64_t start_credit);

    transport::Transport* transport_;
    transport::NodeId node_;
    transport::RemoteRegion remote_ring_;
    transport::RemoteRegion remote_control_;
    transport::RegionId local_ring_;
    uint64_t ring_bytes_;
    const transport::PeerWord* credit_word_;
    uint64_t sent_;
    uint64_t credit_;
    uint64_t requested_ = 0;
    uint64_t stable_sent_ = 0;
};

}  // namespace rcpg::ordering
