#include "ordering/node_internal.hpp"

#include "transport/ring_layout.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>

#include <fmt/ranges.h>

namespace rcpg::ordering {

using delivery::ConfchgPayload;
using delivery::EntryHeader;
using delivery::EntryKind;
using namespace node_detail;

// ---------------------------------------------------------------------------------------
// Failure detection: every node writes a rising counter into a word at the nodes it
// depends on (members at the sequencer, the sequencer at every member); a word that did
// not change for the failure timeout means the writer is gone, even where its device
// still acknowledges (a hung or stopped process). A closed or broken connection is
// noticed at once, from the transport. The words a peer writes anyway count as well (the
// sequencer's cluster_tail at a member, a member's credit and held words at the
// sequencer): a hung process writes none of them either, and a stream of data that keeps
// the send queue full must never make a working peer look dead.

bool Node::write_heartbeat(uint32_t peer, transport::RemoteAddr target)
{
    const uint64_t word = heartbeats_.counter();
    transport::WriteRequest write;
    write.inline_bytes = std::as_bytes(std::span<const uint64_t>(&word, 1));
    write.destination = target;
    const transport::Status posted = transport_->post_write(peer, write);
    // Other failures are the connection's: its disconnected event follows.
    return posted || posted.code() != transport::Errc::try_again;
}

void Node::send_heartbeats(uint64_t now_ms)
{
    heartbeats_.begin_round(now_ms);
    if (role_ == Role::member) {
        if (is_connected(state_) && sequencer_heartbeat_ && !write_heartbeat(sequencer_, *sequencer_heartbeat_)) {
            heartbeats_.owe(sequencer_);
        }
        return;
    }
    for (auto& [nodeid, node] : remotes_) {
        if (node.stream && node.heartbeat_target && !write_heartbeat(nodeid, *node.heartbeat_target)) {
            heartbeats_.owe(nodeid);
        }
    }
}

void Node::send_owed_heartbeats()
{
    heartbeats_.retry([this](uint32_t peer) {
        if (role_ == Role::member) {
            return peer != sequencer_ || !is_connected(state_) || !sequencer_heartbeat_ ||
                   write_heartbeat(peer, *sequencer_heartbeat_);
        }
        auto found = remotes_.find(peer);
        return found == remotes_.end() || !found->second.stream || !found->second.heartbeat_target ||
               write_heartbeat(peer, *found->second.heartbeat_target);
    });
}

void Node::check_heartbeats(uint64_t now_ms)
{
    const uint64_t timeout_ms = config_.failure_timeout_ms;
    if (role_ == Role::member) {
        if (!is_following(state_)) {
            return;
        }
        const uint64_t seen = heartbeat_line(sequencer_).counter.load();
        const uint64_t tail = ring_.header().cluster_tail.load(std::memory_order_acquire);
        if (!sequencer_liveness_.observe(seen, tail, now_ms, timeout_ms)) {
            lose_sequencer(fmt::format("no heartbeat for {} ms", sequencer_liveness_.silent_ms(now_ms)));
        }
        return;
    }
    if (election_) {
        return;
    }
    for (auto& [nodeid, node] : remotes_) {
        if (!node.stream) {
            continue;
        }
        const uint64_t seen = node.heartbeat->counter.load();
        // Its credit and SAFE words, summed: either moves while it works.
        const uint64_t progress = node.line->credit.load() + node.line->held.load();
        if (!node.liveness.observe(seen, progress, now_ms, timeout_ms)) {
            log(LogLevel::warning, "node {} sent no heartbeat for {} ms; removing it", nodeid,
                node.liveness.silent_ms(now_ms));
            transport_->disconnect(nodeid);  // its disconnected event removes it from the view
        }
    }
}

}  // namespace rcpg::ordering
