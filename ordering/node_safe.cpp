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
// SAFE delivery: a SAFE message reaches the applications of any node only once every node
// of the view holds it in its ring. Members tell the sequencer how far their ring is
// complete (while a SAFE message waits), the sequencer takes the lowest of those and its
// own, and writes it into every member's ring header. Until a SAFE message is stable,
// neither it nor anything after it is published to the node's clients (total order).
// In a one-node cluster every message is held by every node when it is sequenced.

void Node::note_safe(uint64_t position, uint64_t end, uint16_t flags)
{
    if (role_ != Role::single && (flags & delivery::kFlagSafe) != 0) {
        safe_.note(position, end);
    }
}

void Node::update_stable()
{
    if (!safe_.waiting()) {
        return;
    }
    // Every node of the view counts until its removal is sequenced, also one whose
    // connection is gone (with what it last said it held): a sequencer cut off from the
    // others must not take their silence for agreement.
    uint64_t held = complete_tail();
    for (uint32_t member : view_.members) {
        auto found = remotes_.find(member);
        if (member == config_.nodeid || found == remotes_.end()) {
            continue;
        }
        const RemoteNode& node = found->second;
        const uint64_t said = node.line->held.load();
        held = std::min(held, node.stream ? std::min(said, node.stream->sent()) : said);
    }
    if (!safe_.advance(held)) {
        return;
    }
    for (auto& [nodeid, node] : remotes_) {
        if (node.stream) {
            if (transport::Status status = node.stream->publish_stable(safe_.stable());
                !status && status.code() != transport::Errc::try_again) {
                log(LogLevel::warning, "telling node {} what every node holds: {}", nodeid, status.message());
            }
        }
    }
}

void Node::follow_stable()
{
    // Never beyond what this node holds itself; never backwards (a new sequencer may
    // know less than the old one did, and what was stable stays stable).
    const uint64_t stable = std::min(ring_.header().stable_tail.load(std::memory_order_acquire), applier_.processed());
    const bool waiting = safe_.waiting();
    if (safe_.advance(stable) && waiting) {
        local_.on_applied();  // publishes what the SAFE message held back
    }
    if (waiting && applier_.processed() > held_sent_ && delivery_credit_ && is_connected(state_)) {
        const uint64_t word = applier_.processed();
        transport::WriteRequest write;
        write.inline_bytes = std::as_bytes(std::span<const uint64_t>(&word, 1));
        write.destination = delivery_credit_->at(offsetof(wire::MemberLine, held));
        write.imm = kWakeImmediate;
        if (transport_->post_write(sequencer_, write)) {
            held_sent_ = applier_.processed();
        }
    }
}

}  // namespace rcpg::ordering
