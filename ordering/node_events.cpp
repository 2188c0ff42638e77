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
// Stepping

Node::Sleep Node::prepare_sleep(uint64_t now_ms)
{
    if (!transport_) {
        return Sleep::sleep;
    }
    if (transport_->wait_fd() < 0) {
        return Sleep::poll_soon;  // nothing would wake us: look every millisecond
    }
    // Connection set-up has deadlines only poll() checks; replication held back by a
    // full send queue waits for completions we would sleep through otherwise.
    if ((role_ == Role::member && (!is_connected(state_) || is_joining(state_) || forwarded_uncommitted_)) ||
        replication_blocked_ ||
        in_failover()) {
        return Sleep::poll_soon;
    }
    // The sequencer waits for credit this node could not give yet: its clients free ring
    // space without waking anyone, so look again soon instead of sleeping until the
    // idle wake-up while the whole cluster stands still.
    if (role_ == Role::member && ring_.header().credit_request.load(std::memory_order_acquire) > published_credit_) {
        return Sleep::poll_soon;
    }
    if (!transport_->arm_wait()) {
        return Sleep::busy;
    }
    // What landed before the arming raised no wake-up: look once more.
    return step(now_ms) ? Sleep::busy : Sleep::sleep;
}

uint64_t Node::next_timer_ms() const
{
    return heartbeats_.next_ms(now_ms_);
}

bool Node::step(uint64_t now_ms)
{
    if (!transport_) {
        return false;
    }
    now_ms_ = now_ms;
    events_.clear();
    transport_->poll(now_ms, events_);
    bool worked = !events_.empty();
    for (const transport::Event& event : events_) {
        on_event(event);
    }
    if (is_final(state_)) {
        return worked;  // failed, or out of the view: nothing more to do here
    }
    check_heartbeats(now_ms);
    if (heartbeats_.due(now_ms)) {
        send_heartbeats(now_ms);
    } else if (heartbeats_.owes()) {
        send_owed_heartbeats();
    }
    if (role_ == Role::member) {
        if (is_member_failover(state_) && now_ms >= failover_deadline_ms_) {
            log(LogLevel::warning, "node {} did not take over within {} ms; trying the next", sequencer_,
                kFailoverWaitTimeouts * config_.failure_timeout_ms);
            suspects_.insert(sequencer_);
            transport_->disconnect(sequencer_);
            withdraw_grants();
            set_link(Link::none);
            retire_writer();
            next_candidate();
            if (role_ != Role::member || failed()) {
                return true;
            }
        }
        if ((state_ == NodeState::joining || state_ == NodeState::failover_waiting) && now_ms >= next_connect_ms_) {
            grant_to_sequencer();
            if (failed()) {
                return true;
            }
            if (transport_->is_connected(sequencer_)) {
                begin_session();  // over the mesh connection: no set-up to wait for
            } else if (transport_->connect(sequencer_)) {
                set_link(Link::connecting);
            } else if (is_member_failover(state_)) {
                next_connect_ms_ = now_ms + kReconnectIntervalMs;
            } else {
                next_join_candidate();
            }
        }
        if (state_ == NodeState::join_hello_sent && now_ms >= join_deadline_ms_) {
            log(LogLevel::info, "node {} neither admitted nor refused node {}; asking the next", sequencer_,
                config_.nodeid);
            transport_->disconnect(sequencer_);
        }
        refuse_admission_requests();
        if (role_ != Role::member) {
            return true;
        }
        worked |= apply_delivered();
        if (is_following(state_)) {
            resend_unsequenced();
            publish_member_credit();
            follow_stable();
            keep_mesh(now_ms);
        }
        return worked;
    }
    if (election_) {
        return election_step(now_ms) || worked;
    }
    // Sequencer: retry what a full send queue held back; ask for credits when blocked.
    replicate();
    update_stable();
    for (auto& [nodeid, node] : remotes_) {
        if (node.stream && ring_was_blocked_) {
            node.stream->request_credit(node.stream->sent());
        }
        if (node.inbound) {
            (void)node.inbound->publish_credits();
        }
    }
    return worked;
}

void Node::on_event(const transport::Event& event)
{
    if (event.kind == transport::EventKind::incoming_refused) {
        // Someone on the fabric failed to prove the cluster key (or came twice). What it
        // claimed to be is nobody's word: no node's state changes. Logged at most once a
        // second, so that a flood of attempts cannot flood the log.
        ++counters_.handshakes_refused;
        if (now_ms_ >= next_refusal_log_ms_) {
            log(LogLevel::warning, "{} ({} refused so far)", event.detail.message(), counters_.handshakes_refused);
            next_refusal_log_ms_ = now_ms_ + 1000;
        }
        return;
    }
    if ((event.kind == transport::EventKind::disconnected || event.kind == transport::EventKind::refused) &&
        event.reason != transport::DisconnectReason::local_close) {
        ++counters_.rdma_errors;
    }
    // A member also accepts connections from the other nodes: they come to it when they
    // take it for the next sequencer, maybe before it noticed the failure itself.
    if (event.kind == transport::EventKind::imm_received && event.imm == kTakeOverImmediate &&
        state_ == NodeState::following && event.peer != sequencer_) {
        // Another member lost the sequencer and takes over: this one follows (if the
        // sequencer is in fact alive, it loses its majority and stops: one order still).
        lose_sequencer(fmt::format("node {} takes over", event.peer));
        return;
    }
    if (role_ == Role::member && event.peer == sequencer_) {
        // The same connection also carries what the peer asks of this node (two nodes
        // looking for the sequencer may have reached each other): its inbound ring here.
        if (event.kind != transport::EventKind::write_completed && event.kind != transport::EventKind::imm_received &&
            event.kind != transport::EventKind::read_completed) {
            on_sequencer_event(event);
        }
        on_member_event(event);
    } else {
        on_sequencer_event(event);
    }
}

void Node::on_sequencer_event(const transport::Event& event)
{
    transport::Transport& transport = *transport_;
    if (event.peer == config_.nodeid) {
        switch (event.kind) {
        case transport::EventKind::connected:
            copier_.detach();
            if (auto own_ring = transport.remote_region(config_.nodeid, wire::kTagOwnRing);
                own_ring && own_ring->bytes == ring_.data_bytes()) {
                copier_.attach(*own_ring);
            }
            if (!copier_.attached()) {
                log(LogLevel::warning, "the loopback does not reach the ring; the sequencer copies payloads with the CPU");
                transport.disconnect(config_.nodeid);
            } else {
                log(LogLevel::info, "loopback up: the device copies payloads into the sequencer's ring");
            }
            return;
        case transport::EventKind::disconnected:
        case transport::EventKind::refused:
            if (copier_.attached()) {
                // Entries wait for copies that will never complete: nothing can be published.
                log(LogLevel::error, "lost the loopback connection ({}: {}); this node cannot go on",
                    transport::to_string(event.reason), event.detail.message());
                fail();
            }
            return;
        case transport::EventKind::write_completed:
            on_batch_completed(event.wr_id);
            return;
        case transport::EventKind::read_completed:
        case transport::EventKind::imm_received:
        case transport::EventKind::incoming_refused:  // handled in on_event
    case transport::EventKind::regions_changed:   // remote_region() answers from now on
            return;
        }
        return;
    }
    if (event.kind == transport::EventKind::read_completed && election_) {
        election_->read_completed(event.peer);  // a piece of the repair landed
        return;
    }
    auto found = remotes_.find(event.peer);
    switch (event.kind) {
    case transport::EventKind::connected: {
        if (found == remotes_.end()) {
            transport.disconnect(event.peer);
            return;
        }
        RemoteNode& node = found->second;
        if (std::any_of(node.held.begin(), node.held.end(),
                        [&](const auto& held) { return held.first > completed_batch_; })) {
            log(LogLevel::info, "node {} reconnects before copies from its old inbound ring completed; later", event.peer);
            transport.disconnect(event.peer);
            return;
        }
        node.held.clear();
        // The control block is zero here (fresh memory, or cleared when the previous
        // connection went): the node's hello may already have landed — it writes as
        // soon as its side is connected — so it must not be cleared now.
        auto credit = transport.remote_region(event.peer, wire::kTagInboundCredit);
        if (!credit) {
            log(LogLevel::warning, "node {} connected without its credit word; refused", event.peer);
            transport.disconnect(event.peer);
            return;
        }
        auto reader = transport::RingReader::create(
            transport, event.peer,
            {node.inbound_memory.data(), transport::ring::region_bytes(config_.inbound_ring_bytes)}, credit->at(0));
        if (!reader) {
            log(LogLevel::error, "node {}: {}", event.peer, reader.status().message());
            transport.disconnect(event.peer);
            return;
        }
        node.inbound.emplace(std::move(*reader));
        node.state = RemoteStatus::State::connected;
        if (auto heartbeat = transport.remote_region(event.peer, wire::kTagHeartbeat)) {
            node.heartbeat_target = heartbeat->at(0);
        }
        node.liveness.restart(now_ms_, node.heartbeat->counter.load());
        log(LogLevel::info, "node {} connected", event.peer);
        return;
    }
    case transport::EventKind::disconnected:
    case transport::EventKind::refused: {
        if (found == remotes_.end() || found->second.state == RemoteStatus::State::absent) {
            return;
        }
        RemoteNode& node = found->second;
        log(LogLevel::info, "node {} disconnected ({}: {})", event.peer, transport::to_string(event.reason),
            event.detail.message());
        if (node.in_view()) {
            if (node.state == RemoteStatus::State::member) {
                ++counters_.nodes_failed;
                removals_failed_.insert(node.nodeid);
            }
            pending_removals_.push_back(node.nodeid);
        }
        if (election_) {
            election_->lose(node.nodeid);  // if it had the longest tail: chosen again
        }
        node.disconnected(config_.inbound_ring_bytes);
        return;
    }
    case transport::EventKind::write_completed:
    case transport::EventKind::read_completed:
    case transport::EventKind::imm_received:
    case transport::EventKind::incoming_refused:  // handled in on_event
    case transport::EventKind::regions_changed:   // remote_region() answers from now on
        return;  // a wake-up only: the ring words say what landed
    }
}

void Node::retire_writer()
{
    // Its connection is gone: nothing it posted reads the shadow any more.
    if (writer_) {
        spare_shadow_ = writer_->take_shadow();
        writer_.reset();
    }
}

void Node::begin_session()
{
    transport::Transport& transport = *transport_;
    // The inbound ring's credit word: the sequencer's reader writes it.
    auto* credit_word = reinterpret_cast<transport::PeerWord*>(member_memory_.data());
    credit_word->store(0);
    // What this sequencer's words for our holds say is not known: the next publication
    // writes them all. Each hold keeps its word (a hold the last sequencer went round
    // must not lose it: the credit could not stay before it, a lap on).
    hold_words_.new_sequencer();
    if (auto heartbeat = transport.remote_region(sequencer_, wire::kTagHeartbeat)) {
        sequencer_heartbeat_ = heartbeat->at(0);
    }
    sequencer_liveness_.restart(now_ms_,
                                heartbeat_line(sequencer_).counter.load());
    auto inbound = transport.remote_region(sequencer_, wire::kTagInboundRing);
    delivery_credit_ = transport.remote_region(sequencer_, wire::kTagDeliveryCredit);
    // Missing when the connection broke as it came up: handled as the disconnect.
    if (!inbound || !delivery_credit_) {
        log(LogLevel::warning, "node {} did not expose its rings to node {}", sequencer_, config_.nodeid);
        transport.disconnect(sequencer_);
        return;
    }
    auto writer = transport::RingWriter::create(transport, sequencer_, *inbound, credit_word, std::move(spare_shadow_));
    if (!writer) {
        log(LogLevel::error, "inbound ring at node {}: {}", sequencer_, writer.status().message());
        transport.disconnect(sequencer_);
        return;
    }
    writer_.emplace(std::move(*writer));
    writer_->wake_reader_for_credits(kWakeImmediate);
    set_link(Link::hello_sent);
    const bool failover = is_member_failover(state_);
    wire::Hello hello{wire::kClusterProtocolVersion, config_.nodeid, ring_.data_bytes(), 0, 0, 0, 0};
    if (!failover) {
        // Nothing of a sequencer's lands before it has this hello: from here on the word
        // is only its tail of the entries after the admission snapshot (apply_snapshot
        // must not reset it, as that tail may land before the snapshot is applied).
        ring_.header().cluster_tail.store(0, std::memory_order_release);
    }
    if (failover) {
        // Continue under this node: where this ring stands, so it can repair the rest.
        hello.ring_seq = view_.ring_seq;
        hello.tail = applier_.processed();
        hello.next_seq = ring_.next_seq();
        // The holds' words go first, on the same queue pair: the next sequencer has them
        // when it takes this hello, and the limit may pass them. Should they not go
        // (send queue full on a fresh connection), the limit stays before every hold.
        size_t placed = 0;
        const uint64_t limit = std::min(reclaim_limit(), applier_.processed());
        hello.reclaim_limit = publish_hold_words(placed) ? credit_before_holds(limit, placed)
                                                         : credit_before_holds(limit, 0);
        published_credit_ = hello.reclaim_limit;
    }
    if (!writer_->append_copy(static_cast<uint32_t>(wire::InboundType::hello), std::as_bytes(std::span(&hello, 1))) ||
        !writer_->commit(false, 0, kWakeImmediate)) {
        log(LogLevel::error, "cannot send the hello to the sequencer");
        fail();
        return;
    }
    if (failover) {
        log(LogLevel::info, "connected to node {}; asking it to continue from ring position {}", sequencer_,
            applier_.processed());
    } else {
        join_deadline_ms_ = now_ms_ + std::max<uint64_t>(config_.failure_timeout_ms, 1000);
        log(LogLevel::debug, "connected to node {}; asking to be admitted", sequencer_);
    }
}

void Node::on_member_event(const transport::Event& event)
{
    if (event.peer != sequencer_) {
        return;
    }
    switch (event.kind) {
    case transport::EventKind::connected:
        if (is_joining(state_) || is_member_failover(state_)) {
            set_link(Link::none);
            begin_session();
        }
        return;
    case transport::EventKind::disconnected:
    case transport::EventKind::refused:
        set_link(Link::none);
        retire_writer();
        if (state_ == NodeState::leaving) {
            set_state(NodeState::left);
        } else if (is_member_failover(state_)) {
            log(LogLevel::warning, "node {} cannot take over ({}: {})", sequencer_, transport::to_string(event.reason),
                event.detail.message());
            suspects_.insert(sequencer_);
            next_candidate();
        } else if (state_ == NodeState::following) {
            lose_sequencer(fmt::format("{} {}", transport::to_string(event.reason), event.detail.message()));
        } else if (is_joining(state_)) {
            log(LogLevel::debug, "node {} did not admit node {} ({})", sequencer_, config_.nodeid,
                transport::to_string(event.reason));
            next_join_candidate();
        }
        return;
    case transport::EventKind::write_completed:
        on_batch_completed(event.wr_id);
        return;
    case transport::EventKind::read_completed:
    case transport::EventKind::imm_received:
    case transport::EventKind::incoming_refused:  // handled in on_event
    case transport::EventKind::regions_changed:   // remote_region() answers from now on
        return;  // a wake-up only: the tail word says what landed
    }
}

}  // namespace rcpg::ordering
