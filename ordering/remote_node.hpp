// RemoteNode: what the sequencer keeps of another node. Every configured node has one,
// from the moment this node may sequence: the inbound ring the node forwards its records
// into, the stream that replicates the sequencer's ring into the node's, the line where
// the node writes its credit, SAFE and hold words, and the liveness of its heartbeat.
// What lives as long as one connection is reset when it ends (disconnected()); the rest
// (its memory registrations, the number of its next record) outlives reconnections.
#pragma once

#include "ordering/cluster_wire.hpp"
#include "ordering/delivery_stream.hpp"
#include "ordering/peer_liveness.hpp"
#include "transport/registered_memory.hpp"
#include "transport/ring_reader.hpp"
#include "transport/transport.hpp"

#include <cstdint>
#include <deque>
#include <optional>
#include <utility>

namespace rcpg::ordering {

// What the sequencer knows of another node (for the operator tool).
struct RemoteStatus {
    enum class State : uint8_t {
        absent,     // not connected
        connected,  // connected, not yet admitted (waits for its hello)
        member,     // in the view: its ring gets every entry
        leaving,    // asked to leave: gets its own removal, then nothing
    };
    uint32_t nodeid = 0;
    State state = State::absent;
    uint64_t unsent_bytes = 0;
    uint64_t unreleased_bytes = 0;
    uint64_t inbound_used_bytes = 0;
};

struct RemoteNode {
    uint32_t nodeid = 0;
    RemoteStatus::State state = RemoteStatus::State::absent;
    transport::RegisteredMemory inbound_memory;  // its inbound ring: data then control block
    std::optional<transport::RingReader> inbound;
    std::optional<transport::RingReader::Record> pending;  // read, waits for ring room
    std::optional<DeliveryStream> stream;
    std::optional<uint64_t> stream_end;  // leaving: the stream ends once this much was sent
    // Records whose payload a device copy still reads, or that follow one: released in
    // order once their batch (0: none) completed.
    std::deque<std::pair<uint64_t, transport::RingReader::Record>> held;
    transport::RegisteredMemory snapshot_memory;  // source of its admission snapshot write
    wire::MemberLine* line = nullptr;                // its credit, SAFE and hold words
    const wire::HeartbeatLine* heartbeat = nullptr;  // where it writes its heartbeat counter
    std::optional<transport::RemoteAddr> heartbeat_target;  // where ours go
    PeerLiveness liveness;  // its heartbeat, credit and SAFE words
    uint64_t next_origin = 1;  // the number its next forwarded record gets
    uint64_t grant_deadline_ms = 0;  // a hello waits for its grant until then (0: none)

    bool in_view() const { return state == RemoteStatus::State::member || state == RemoteStatus::State::leaving; }
    // A record taken from its inbound ring that must stay there until `batch` (0: none,
    // but it follows one that must) completed: the device may still read its payload.
    void hold(uint64_t batch, const transport::RingReader::Record& record) { held.emplace_back(batch, record); }
    // Gives back to its writer, in order, the held records whose batch completed.
    void release_held(uint64_t completed_batch);
    // Its connection ended: everything that lived as long as it is gone, and the state is
    // absent again. `inbound_ring_bytes`: where the ring's control block starts, zeroed
    // for the writer of the next connection (which starts at position 0).
    void disconnected(uint64_t inbound_ring_bytes);
};

}  // namespace rcpg::ordering
