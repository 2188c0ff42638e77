#include "ordering/node.hpp"

#include "libcpg/ipc/shm.hpp"
#include "transport/ring_layout.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>

#include <fmt/ranges.h>

namespace rcpg::ordering {

using ipc::ConfchgPayload;
using ipc::EntryHeader;
using ipc::EntryKind;

namespace {

constexpr uint64_t kReconnectIntervalMs = 500;
// Heartbeats go out this many times per failure timeout, so one or two lost to a busy
// peer do not fail it.
constexpr uint64_t kHeartbeatsPerTimeout = 4;
// A member that lost its sequencer waits this many failure timeouts for the next one's
// view: that node may need one timeout to notice the failure itself and one to collect
// the survivors' tails.
constexpr uint64_t kFailoverWaitTimeouts = 3;
constexpr uint32_t kInboundBudgetPerNode = 256;
// A member publishes its consumed position when it moved this fraction of the ring (or
// when the sequencer asks): credits stay off the latency path.
constexpr uint64_t kCreditPublishDivisor = 8;
// Commits to the sequencer carry an immediate: it wakes a sequencer asleep on wait_fd().
constexpr uint32_t kWakeImmediate = 1;
// A node taking over tells the other members at once: each may not have noticed the
// failure yet (a dead process's connections close one after another), and the new view
// waits for every survivor's tail.
constexpr uint32_t kTakeOverImmediate = 2;

uint32_t confchg_payload_bytes(size_t left, size_t joined, size_t members)
{
    return static_cast<uint32_t>(sizeof(ConfchgPayload) + (left + joined + members) * sizeof(cpg_address));
}

}  // namespace

template <typename... Args>
void Node::log(LogLevel level, fmt::format_string<Args...> format, Args&&... args)
{
    if (config_.log) {
        config_.log(level, fmt::format(format, std::forward<Args>(args)...));
    }
}

std::unique_ptr<Node> Node::create(NodeConfig config, DeliveryRing& ring, LocalSide& local,
                                   std::unique_ptr<transport::Transport> transport, std::string& error)
{
    std::unique_ptr<Node> node(new Node(std::move(config), ring, local, std::move(transport)));
    if (!node->start(error)) {
        return nullptr;
    }
    return node;
}

Node::Node(NodeConfig config, DeliveryRing& ring, LocalSide& local, std::unique_ptr<transport::Transport> transport)
    : config_(std::move(config)), ring_(ring), local_(local), transport_(std::move(transport))
{
    staged_copies_.reserve(kMaxStagedCopies);
}

Node::~Node()
{
    // Every registration goes before the transport that made it.
    remotes_.clear();
    writer_.reset();
    spare_shadow_.reset();
    credit_memory_.reset();
    member_memory_.reset();
    ring_data_registration_.reset();
    ring_control_registration_.reset();
}

bool Node::start(std::string& error)
{
    view_ = {{config_.nodeid}, config_.first_ring_seq, config_.nodeid};
    if (!transport_) {
        role_ = Role::single;
        return true;
    }
    if (config_.nodes.size() < 2 ||
        std::find(config_.nodes.begin(), config_.nodes.end(), config_.nodeid) == config_.nodes.end()) {
        error = "a cluster needs at least two configured nodes, this one among them";
        return false;
    }
    for (uint32_t nodeid : config_.sequencer_order) {
        if (std::find(config_.nodes.begin(), config_.nodes.end(), nodeid) == config_.nodes.end() ||
            std::find(order_.begin(), order_.end(), nodeid) != order_.end()) {
            error = fmt::format("the sequencer order names node {}, which is not configured or named twice", nodeid);
            return false;
        }
        order_.push_back(nodeid);
    }
    std::vector<uint32_t> by_id = config_.nodes;
    std::sort(by_id.begin(), by_id.end());
    for (uint32_t nodeid : by_id) {
        if (std::find(order_.begin(), order_.end(), nodeid) == order_.end()) {
            order_.push_back(nodeid);
        }
    }
    if (config_.failure_timeout_ms < kHeartbeatsPerTimeout) {
        error = fmt::format("a failure timeout of {} ms is too short", config_.failure_timeout_ms);
        return false;
    }
    // Every node starts by looking for a running cluster (after a failover its sequencer
    // is not the first of the order); the first of the order starts one if it finds none.
    for (uint32_t nodeid : order_) {
        if (nodeid != config_.nodeid) {
            join_order_.push_back(nodeid);
        }
    }
    role_ = Role::member;
    sequencer_ = join_order_.front();
    view_.ring_nodeid = order_.front();
    // Remote writes land in a member's ring from the sequencer, and in the sequencer's own
    // ring from its loopback (device copies). A new sequencer reads the missing end of
    // its ring from the survivor that has it (failover).
    // The data area and the sequencer's words of the header page are registered apart:
    // what a peer may reach is a registration of its own (transport/NOTES.md), and the
    // rest of the header page is this node's and its clients' alone.
    auto ring_data = transport::Registration::create(*transport_, const_cast<std::byte*>(ring_.data()), ring_.data_bytes(),
                                                     transport::RegionAccess::remote_read_write);
    if (!ring_data) {
        error = "cannot register the delivery ring: " + ring_data.status().message();
        return false;
    }
    ring_data_registration_ = std::move(*ring_data);
    auto ring_control = transport::Registration::create(
        *transport_, reinterpret_cast<std::byte*>(&ring_.header()) + wire::kRingControlOffset, wire::kRingControlBytes,
        transport::RegionAccess::remote_write);
    if (!ring_control) {
        error = "cannot register the delivery ring's control words: " + ring_control.status().message();
        return false;
    }
    ring_control_registration_ = std::move(*ring_control);
    // Any node may have to take over sequencing: every node is ready for both roles.
    return prepare_sequencing(error) && start_member(error) && start_sequencer(error);
}

const wire::HeartbeatLine& Node::heartbeat_line(uint32_t nodeid) const
{
    return reinterpret_cast<const wire::HeartbeatLine*>(heartbeat_memory_.data())[node_index(nodeid)];
}

size_t Node::node_index(uint32_t nodeid) const
{
    return static_cast<size_t>(std::find(config_.nodes.begin(), config_.nodes.end(), nodeid) - config_.nodes.begin());
}

bool Node::prepare_sequencing(std::string& error)
{
    transport::Transport& transport = *transport_;
    auto heartbeat_memory = transport::RegisteredMemory::create(transport, config_.nodes.size() * sizeof(wire::HeartbeatLine),
                                                                transport::RegionAccess::remote_write);
    if (!heartbeat_memory) {
        error = "cannot register the heartbeat words: " + heartbeat_memory.status().message();
        return false;
    }
    heartbeat_memory_ = std::move(*heartbeat_memory);
    auto credit_memory = transport::RegisteredMemory::create(transport, config_.nodes.size() * sizeof(wire::MemberLine),
                                                             transport::RegionAccess::remote_write);
    if (!credit_memory) {
        error = "cannot register the credit words: " + credit_memory.status().message();
        return false;
    }
    credit_memory_ = std::move(*credit_memory);
    const uint64_t inbound_bytes = transport::ring::region_bytes(config_.inbound_ring_bytes);
    for (size_t index = 0; index < config_.nodes.size(); ++index) {
        const uint32_t nodeid = config_.nodes[index];
        if (nodeid == config_.nodeid) {
            continue;
        }
        Remote& node = remotes_[nodeid];
        node.nodeid = nodeid;
        node.line = reinterpret_cast<wire::MemberLine*>(credit_memory_.data()) + index;
        node.heartbeat = &heartbeat_line(nodeid);
        auto inbound = transport::RegisteredMemory::create(transport, inbound_bytes, transport::RegionAccess::remote_write);
        if (!inbound) {
            error = "cannot register an inbound ring: " + inbound.status().message();
            return false;
        }
        node.inbound_memory = std::move(*inbound);
        // Each node reaches only its own inbound ring and words here, and only writes them.
        // They are exposed whatever this node's role: a survivor of a failover writes its
        // request to continue before it knows that this node takes over.
        constexpr auto write = transport::RegionAccess::remote_write;
        transport::Status exposed =
            transport.expose(nodeid, wire::kTagInboundRing, node.inbound_memory.region(), 0, inbound_bytes, write);
        if (exposed) {
            // Its credit word, the word it says how far its ring is complete in, its holds.
            exposed = transport.expose(nodeid, wire::kTagDeliveryCredit, credit_memory_.region(),
                                       index * sizeof(wire::MemberLine), sizeof(wire::MemberLine), write);
        }
        if (exposed) {
            exposed = transport.expose(nodeid, wire::kTagHeartbeat, heartbeat_memory_.region(),
                                       index * sizeof(wire::HeartbeatLine), sizeof(transport::PeerWord), write);
        }
        if (!exposed) {
            error = exposed.message();
            return false;
        }
    }
    // Every node listens: the survivors connect to whichever node takes over.
    if (transport::Status listening = transport.listen(); !listening) {
        error = "cannot listen for the other nodes: " + listening.message();
        return false;
    }
    return true;
}

bool Node::start_sequencer(std::string& error)
{
    (void)error;
    transport::Transport& transport = *transport_;
    if (!config_.device_copies) {
        if (role_ == Role::sequencer) {
            log(LogLevel::info, "node {} is the sequencer of {} configured nodes; it copies payloads with the CPU",
                config_.nodeid, config_.nodes.size());
        }
        return true;
    }
    transport::Status loopback = transport.expose(config_.nodeid, wire::kTagOwnRing, ring_data_registration_.id(), 0,
                                                  ring_.data_bytes(), transport::RegionAccess::remote_write);
    if (loopback) {
        loopback = transport.connect(config_.nodeid);
    }
    if (!loopback) {
        log(LogLevel::warning, "no loopback connection ({}); the sequencer copies payloads with the CPU",
            loopback.message());
    }
    if (role_ == Role::sequencer) {
        log(LogLevel::info, "node {} is the sequencer of {} configured nodes", config_.nodeid, config_.nodes.size());
    }
    return true;
}

bool Node::start_member(std::string& error)
{
    transport::Transport& transport = *transport_;
    auto member_memory = transport::RegisteredMemory::create(transport, ipc::kPageBytes + wire::kSnapshotRegionBytes,
                                                             transport::RegionAccess::remote_write);
    if (!member_memory) {
        error = "cannot register the member's regions: " + member_memory.status().message();
        return false;
    }
    member_memory_ = std::move(*member_memory);
    // The credit word of this node's inbound writer: every node that reads an inbound ring
    // of this node (any may come to sequence) publishes there. The ring, its control words
    // and the snapshot region go to the node this one is a member of, and to no other
    // (grant_to_sequencer).
    for (uint32_t nodeid : config_.nodes) {
        if (nodeid == config_.nodeid) {
            continue;
        }
        if (transport::Status exposed = transport.expose(nodeid, wire::kTagInboundCredit, member_memory_.region(), 0,
                                                         sizeof(uint64_t), transport::RegionAccess::remote_write);
            !exposed) {
            error = exposed.message();
            return false;
        }
    }
    if (role_ == Role::member) {
        log(LogLevel::info, "node {} joins the cluster through sequencer {}; clients are served once it is admitted",
            config_.nodeid, sequencer_);
    }
    return true;
}

void Node::grant_to_sequencer()
{
    if (grantee_ && *grantee_ != sequencer_) {
        withdraw_grants();
    }
    // The sequencer writes entries, the words behind them and the admission snapshot;
    // during a failover it may read the ring's end to repair its own.
    transport::Transport& transport = *transport_;
    constexpr auto write = transport::RegionAccess::remote_write;
    transport::Status exposed = transport.expose(sequencer_, wire::kTagDeliveryRing, ring_data_registration_.id(), 0,
                                                 ring_.data_bytes(), write);
    if (exposed) {
        exposed = transport.expose(sequencer_, wire::kTagRingControl, ring_control_registration_.id(), 0,
                                   wire::kRingControlBytes, write);
    }
    if (exposed) {
        exposed = transport.expose(sequencer_, wire::kTagSnapshot, member_memory_.region(), ipc::kPageBytes,
                                   wire::kSnapshotRegionBytes, write);
    }
    if (exposed && failover_) {
        exposed = transport.expose(sequencer_, wire::kTagRepairRing, ring_data_registration_.id(), 0,
                                   ring_.data_bytes(), transport::RegionAccess::remote_read);
    } else if (exposed) {
        transport.withdraw(sequencer_, wire::kTagRepairRing);
    }
    if (!exposed) {
        log(LogLevel::error, "cannot expose this node's ring to node {}: {}", sequencer_, exposed.message());
        failed_ = true;
        return;
    }
    grantee_ = sequencer_;
}

void Node::withdraw_grants()
{
    if (!grantee_) {
        return;
    }
    for (uint32_t tag : {wire::kTagDeliveryRing, wire::kTagRingControl, wire::kTagSnapshot, wire::kTagRepairRing}) {
        transport_->withdraw(*grantee_, tag);
    }
    grantee_.reset();
}

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
    if ((role_ == Role::member && (!connected_ || !admitted_ || forwarded_uncommitted_)) || replication_blocked_ ||
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
    return heartbeats_owed_.empty() ? next_heartbeat_ms_ : now_ms_ + 1;
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
    if (failed_) {
        return worked;
    }
    check_heartbeats(now_ms);
    if (now_ms >= next_heartbeat_ms_) {
        send_heartbeats(now_ms);
    } else if (!heartbeats_owed_.empty()) {
        send_owed_heartbeats();
    }
    if (role_ == Role::member) {
        if (failover_ && now_ms >= failover_deadline_ms_) {
            log(LogLevel::warning, "node {} did not take over within {} ms; trying the next", sequencer_,
                kFailoverWaitTimeouts * config_.failure_timeout_ms);
            suspects_.insert(sequencer_);
            transport_->disconnect(sequencer_);
            withdraw_grants();
            connected_ = connecting_ = false;
            retire_writer();
            next_candidate();
            if (role_ != Role::member || failed_) {
                return true;
            }
        }
        if (!connected_ && !connecting_ && !leaving_ && now_ms >= next_connect_ms_) {
            grant_to_sequencer();
            if (failed_) {
                return true;
            }
            if (transport_->is_connected(sequencer_)) {
                begin_session();  // over the mesh connection: no set-up to wait for
            } else if (transport_->connect(sequencer_)) {
                connecting_ = true;
            } else if (admitted_) {
                next_connect_ms_ = now_ms + kReconnectIntervalMs;
            } else {
                next_join_candidate();
            }
        }
        if (connected_ && !admitted_ && now_ms >= join_deadline_ms_) {
            log(LogLevel::info, "node {} neither admitted nor refused node {}; asking the next", sequencer_,
                config_.nodeid);
            transport_->disconnect(sequencer_);
        }
        refuse_admission_requests();
        if (role_ != Role::member) {
            return true;
        }
        worked |= apply_delivered();
        if (admitted_ && !failover_) {
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
        role_ == Role::member && admitted_ && !failover_ && !leaving_ && event.peer != sequencer_) {
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
            own_ring_ = transport.remote_region(config_.nodeid, wire::kTagOwnRing);
            if (!own_ring_ || own_ring_->bytes != ring_.data_bytes()) {
                own_ring_.reset();
                log(LogLevel::warning, "the loopback does not reach the ring; the sequencer copies payloads with the CPU");
                transport.disconnect(config_.nodeid);
            } else {
                log(LogLevel::info, "loopback up: the device copies payloads into the sequencer's ring");
            }
            return;
        case transport::EventKind::disconnected:
        case transport::EventKind::refused:
            if (own_ring_) {
                // Entries wait for copies that will never complete: nothing can be published.
                log(LogLevel::error, "lost the loopback connection ({}: {}); this node cannot go on",
                    transport::to_string(event.reason), event.detail.message());
                failed_ = true;
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
    if (event.kind == transport::EventKind::read_completed && election_ && election_->reads_pending > 0) {
        --election_->reads_pending;  // a piece of the repair landed
        return;
    }
    auto found = remotes_.find(event.peer);
    switch (event.kind) {
    case transport::EventKind::connected: {
        if (found == remotes_.end()) {
            transport.disconnect(event.peer);
            return;
        }
        Remote& node = found->second;
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
        Remote& node = found->second;
        log(LogLevel::info, "node {} disconnected ({}: {})", event.peer, transport::to_string(event.reason),
            event.detail.message());
        node.inbound.reset();
        // The next incarnation of the node's writer starts at position 0. No write of
        // the old connection can land any more (its queue pair is gone), and a new one
        // cannot be set up before this event has been handled.
        std::memset(node.inbound_memory.data() + config_.inbound_ring_bytes, 0, transport::ring::kControlBytes);
        node.pending.reset();
        node.grant_deadline_ms = 0;
        // `held` stays: device copies may still read those bytes, so the node may not
        // reconnect (and its new writer overwrite them) before they completed.
        node.stream.reset();
        node.stream_end.reset();
        node.snapshot_memory.reset();
        node.heartbeat_target.reset();
        if (node.state == RemoteStatus::State::member || node.state == RemoteStatus::State::leaving) {
            if (node.state == RemoteStatus::State::member) {
                ++counters_.nodes_failed;
                removals_failed_.insert(node.nodeid);
            }
            pending_removals_.push_back(node.nodeid);
        }
        if (election_) {
            election_->rejoined.erase(node.nodeid);
            if (election_->target && election_->holder == node.nodeid) {
                // It had the longest tail and its reads will never complete: choose again.
                election_->target.reset();
                election_->reads_pending = 0;
            }
        }
        node.state = RemoteStatus::State::absent;
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
    // What this sequencer's words for our holds say is not known: the first publication
    // writes them all.
    published_holds_.fill(UINT64_MAX);
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
    connected_ = true;
    wire::Hello hello{wire::kClusterProtocolVersion, config_.nodeid, ring_.data_bytes(), 0, 0, 0, 0};
    if (!failover_) {
        // Nothing of a sequencer's lands before it has this hello: from here on the word
        // is only its tail of the entries after the admission snapshot (apply_snapshot
        // must not reset it, as that tail may land before the snapshot is applied).
        ring_.header().cluster_tail.store(0, std::memory_order_release);
    }
    if (failover_) {
        // Continue under this node: where this ring stands, so it can repair the rest.
        hello.ring_seq = view_.ring_seq;
        hello.tail = processed_;
        hello.next_seq = ring_.next_seq();
        // Before any hold of this node's readers: the next sequencer learns of them only
        // from the words this node writes once it continues.
        hello.reclaim_limit = credit_before_holds(std::min(reclaim_limit(), processed_), ring_.holds().size());
        published_credit_ = hello.reclaim_limit;
    }
    if (!writer_->append_copy(static_cast<uint32_t>(wire::InboundType::hello), std::as_bytes(std::span(&hello, 1))) ||
        !writer_->commit(false, 0, kWakeImmediate)) {
        log(LogLevel::error, "cannot send the hello to the sequencer");
        failed_ = true;
        return;
    }
    if (failover_) {
        log(LogLevel::info, "connected to node {}; asking it to continue from ring position {}", sequencer_,
            processed_);
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
        connecting_ = false;
        begin_session();
        return;
    case transport::EventKind::disconnected:
    case transport::EventKind::refused:
        connecting_ = false;
        connected_ = false;
        retire_writer();
        if (leaving_) {
            left_ = true;
        } else if (failover_) {
            log(LogLevel::warning, "node {} cannot take over ({}: {})", sequencer_, transport::to_string(event.reason),
                event.detail.message());
            suspects_.insert(sequencer_);
            next_candidate();
        } else if (admitted_) {
            lose_sequencer(fmt::format("{} {}", transport::to_string(event.reason), event.detail.message()));
        } else {
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

// ---------------------------------------------------------------------------------------
// Sequencing (single and sequencer)

uint64_t Node::reclaim_limit()
{
    uint64_t limit = local_.local_reclaim_limit();
    std::vector<DeliveryRing::Hold>& holds = ring_.remote_holds();
    holds.clear();
    for (auto& [nodeid, node] : remotes_) {
        if (!node.stream) {
            continue;
        }
        // The credit first (acquire): a hold it passes landed before it.
        limit = std::min(limit, node.stream->credit());
        for (size_t slot = 0; slot < wire::kHoldWords; ++slot) {
            if (const uint64_t word = node.line->holds[slot].load(); word != 0) {
                // A word that is no hold is ignored: only that member's reader can lose by it.
                if (auto held = wire::decode_hold(word, ring_.data_bytes(), ring_.unpublished_tail())) {
                    holds.push_back({held->position, held->bytes});
                }
            }
        }
    }
    reclaim_limit_ = limit;
    return limit;
}

EntryHeader* Node::append_data(uint32_t group_id, ProcessId process, uint16_t flags, uint32_t total_bytes,
                               uint32_t length)
{
    if (length >= ipc::kInPlaceDeliveryMinBytes) {
        flags |= ipc::kFlagPayloadOnPage;
    }
    // The last computed limit is still safe (readers only move forward); recompute it
    // only when it is in the way.
    EntryHeader* entry = ring_.append(EntryKind::data, flags, length, reclaim_limit_);
    if (entry == nullptr) {
        entry = ring_.append(EntryKind::data, flags, length, reclaim_limit());
        if (entry == nullptr) {
            ++counters_.ring_full_events;
            return nullptr;
        }
    }
    entry->group_id = group_id;
    entry->nodeid = process.nodeid;
    entry->pid = process.pid;
    entry->total_bytes = total_bytes;
    entry->origin_seq = current_origin_;
    note_safe(ring_.last_position(), ring_.unpublished_tail(), flags);
    ++counters_.messages_sequenced;
    counters_.bytes_sequenced += length;
    // Sequencing writes into this node's own ring: delivered here as on every other node.
    ++counters_.messages_delivered;
    counters_.bytes_delivered += length;
    return entry;
}

bool Node::local_sequencing_blocked() const
{
    // A new sequencer first repairs its ring, announces the nodes that are gone, and
    // sequences what its own clients had forwarded to the failed one: their later
    // submissions belong after the new view and must not overtake those. A node removal
    // comes before anything new as well.
    return !resequencing_ && current_origin_ == 0 &&
           (election_.has_value() || !unsequenced_.empty() || !pending_removals_.empty());
}

bool Node::sequence_data(uint32_t group_id, ProcessId process, uint16_t flags, uint32_t total_bytes,
                         std::span<const std::byte> payload)
{
    if (local_sequencing_blocked()) {
        return false;
    }
    EntryHeader* entry = append_data(group_id, process, flags, total_bytes, static_cast<uint32_t>(payload.size()));
    if (entry == nullptr) {
        return false;
    }
    std::memcpy(ring_.payload(entry), payload.data(), payload.size());
    local_.on_entry(group_id);
    return true;
}

bool Node::sequence_data_by_device(uint32_t group_id, ProcessId process, uint16_t flags, uint32_t total_bytes,
                                   transport::LocalSlice source)
{
    if (local_sequencing_blocked()) {
        return false;
    }
    if (staged_copies_.size() == kMaxStagedCopies) {
        flush_device_copies();
        if (staged_copies_.size() == kMaxStagedCopies) {
            return false;  // the send queue is full: retry once copies completed
        }
    }
    EntryHeader* entry = append_data(group_id, process, flags, total_bytes, source.bytes);
    if (entry == nullptr) {
        return false;
    }
    if (staged_copies_.empty()) {
        first_staged_position_ = ring_.last_position();
    }
    const auto payload_offset = static_cast<uint64_t>(ring_.payload(entry) - ring_.data());
    staged_sources_[staged_copies_.size()] = source;
    transport::WriteRequest& copy = staged_copies_.emplace_back();
    copy.sources = {&staged_sources_[staged_copies_.size() - 1], 1};
    copy.destination = own_ring_->at(payload_offset);
    ++counters_.messages_copied_by_device;
    counters_.bytes_copied_by_device += source.bytes;
    local_.on_entry(group_id);
    return true;
}

bool Node::sequence_change(const GroupName& name, ProcessId process, cpg_reason_t reason)
{
    if (local_sequencing_blocked()) {
        return false;
    }
    if (reason != CPG_REASON_JOIN) {
        return sequence_removal(name, {process}, reason);
    }
    const uint32_t payload_bytes = confchg_payload_bytes(0, 1, groups_.members(name).size() + 1);
    // Room first, so a full ring leaves the membership untouched.
    const uint64_t limit = reclaim_limit();
    if (!ring_.has_room(0, payload_bytes, limit)) {
        ++counters_.ring_full_events;
        return false;
    }
    write_confchg(groups_.join(name, process), process, limit);
    return true;
}

bool Node::sequence_removal(const GroupName& name, const std::vector<ProcessId>& processes, cpg_reason_t reason)
{
    size_t leaving = 0;
    for (ProcessId process : processes) {
        leaving += groups_.is_member(name, process) ? 1 : 0;
    }
    if (leaving == 0) {
        return true;  // nothing to announce
    }
    const uint32_t payload_bytes = confchg_payload_bytes(leaving, 0, groups_.members(name).size() - leaving);
    const uint64_t limit = reclaim_limit();
    if (!ring_.has_room(0, payload_bytes, limit)) {
        ++counters_.ring_full_events;
        return false;
    }
    write_confchg(*groups_.remove(name, processes, reason), processes.front(), limit);
    return true;
}

void Node::write_confchg(const GroupChange& change, ProcessId process, uint64_t limit)
{
    const uint32_t payload_bytes = confchg_payload_bytes(change.left.size(), change.joined.size(), change.members.size());
    EntryHeader* entry = ring_.append(EntryKind::confchg, 0, payload_bytes, limit);
    entry->group_id = change.group_id;
    entry->nodeid = process.nodeid;
    entry->pid = process.pid;
    entry->origin_seq = current_origin_;
    ConfchgPayload header{};
    header.left_count = static_cast<uint32_t>(change.left.size());
    header.joined_count = static_cast<uint32_t>(change.joined.size());
    header.member_count = static_cast<uint32_t>(change.members.size());
    header.group_length = change.name.length;
    std::memcpy(header.group_value, change.name.value.data(), change.name.length);
    std::byte* out = ring_.payload(entry);
    std::memcpy(out, &header, sizeof(header));
    out += sizeof(header);
    for (const auto* list : {&change.left, &change.joined, &change.members}) {
        if (!list->empty()) {
            std::memcpy(out, list->data(), list->size() * sizeof(cpg_address));
        }
        out += list->size() * sizeof(cpg_address);
    }
    ++counters_.confchgs_sequenced;
    local_.on_entry(change.group_id);
}

bool Node::sequence_totem()
{
    const wire::TotemConf totem{config_.nodeid, view_.ring_seq, view_.members};
    const std::vector<std::byte> payload = wire::encode_totem(totem);
    EntryHeader* entry =
        ring_.append(EntryKind::totem_confchg, 0, static_cast<uint32_t>(payload.size()), reclaim_limit());
    if (entry == nullptr) {
        ++counters_.ring_full_events;
        return false;
    }
    entry->nodeid = config_.nodeid;
    std::memcpy(ring_.payload(entry), payload.data(), payload.size());
    return true;
}

// ---------------------------------------------------------------------------------------
// Sequencer: the other nodes

std::vector<RemoteStatus> Node::remote_status()
{
    const uint64_t tail = ring_.unpublished_tail();
    std::vector<RemoteStatus> out;
    for (auto& [nodeid, node] : remotes_) {
        RemoteStatus& status = out.emplace_back();
        status.nodeid = nodeid;
        status.state = node.state;
        if (node.stream) {
            status.unsent_bytes = tail - node.stream->sent();
            status.unreleased_bytes = tail - node.stream->credit();
        }
        if (node.inbound) {
            status.inbound_used_bytes = node.inbound->committed_tail() - node.inbound->released();
        }
    }
    return out;
}

void Node::replicate()
{
    replication_blocked_ = false;
    flush_device_copies();
    const uint64_t tail = complete_tail();
    for (auto& [nodeid, node] : remotes_) {
        if (!node.stream) {
            continue;
        }
        if (tail > node.stream->sent()) {  // below it while copies before an admission are in flight
            transport::Status status = node.stream->replicate(tail);
            if (status.code() == transport::Errc::try_again) {
                replication_blocked_ = true;
            } else if (!status) {
                ++counters_.rdma_errors;
                log(LogLevel::warning, "replicating to node {}: {}", nodeid, status.message());
            }
        }
        // A cleanly leaving node got its own removal: its stream ends.
        if (node.stream_end && node.stream->sent() >= *node.stream_end) {
            node.stream.reset();
            node.stream_end.reset();
        }
    }
}

uint64_t Node::complete_tail() const
{
    if (!copies_in_flight_.empty()) {
        return copies_in_flight_.front().first_position;
    }
    return staged_copies_.empty() ? ring_.unpublished_tail() : first_staged_position_;
}

uint64_t Node::publishable_tail()
{
    return safe_.publishable(role_ == Role::member ? processed_ : complete_tail());
}

bool Node::copies_by_device(uint64_t payload_bytes) const
{
    return own_ring_.has_value() && payload_bytes > transport_->max_inline_bytes();
}

void Node::flush_device_copies()
{
    if (staged_copies_.empty()) {
        return;
    }
    // One post list; only the last is signalled: RC completes them in order.
    staged_copies_.back().signaled = true;
    staged_copies_.back().wr_id = next_batch_;
    transport::Status status = transport_->post_writes(config_.nodeid, staged_copies_);
    if (!status) {
        staged_copies_.back().signaled = false;
        if (status.code() == transport::Errc::try_again) {
            replication_blocked_ = true;  // completions free the queue: look again soon
        } else {
            ++counters_.rdma_errors;
            log(LogLevel::error, "device copy into the ring: {}; this node cannot go on", status.message());
            failed_ = true;
        }
        return;
    }
    copies_in_flight_.push_back({next_batch_, first_staged_position_});
    ++next_batch_;
    staged_copies_.clear();
}

void Node::on_batch_completed(uint64_t batch)
{
    completed_batch_ = std::max(completed_batch_, batch);
    if (role_ == Role::member) {
        report_released();
        return;
    }
    while (!copies_in_flight_.empty() && copies_in_flight_.front().batch <= completed_batch_) {
        copies_in_flight_.pop_front();
    }
    for (auto& [nodeid, node] : remotes_) {
        release_held(node);
    }
    local_.on_batch_completed(completed_batch_);
}

void Node::release_held(Remote& node)
{
    while (!node.held.empty() && node.held.front().first <= completed_batch_) {
        if (node.inbound) {
            node.inbound->release(node.held.front().second);
        }
        node.held.pop_front();
    }
}

bool Node::sequence_removals()
{
    // One membership change for every node gone since the last: per group one NODEDOWN
    // confchg listing all their processes, then one totem confchg (corosync's order).
    std::vector<uint32_t> gone(pending_removals_.begin(), pending_removals_.end());
    for (const auto& [name, lost] : groups_.processes_of_nodes(gone)) {
        if (!sequence_removal(name, lost, CPG_REASON_NODEDOWN)) {
            return false;  // the ring is full: the groups not done yet follow next time
        }
    }
    std::vector<uint32_t> members = view_.members;
    std::erase_if(members, [&](uint32_t nodeid) { return std::find(gone.begin(), gone.end(), nodeid) != gone.end(); });
    if (!removals_failed_.empty() && !has_quorum(members, config_.nodes.size(), order_.front())) {
        // The failed nodes may be alive on the other side of a partition, and the side
        // with the majority goes on there: this one must not, or the order splits.
        log(LogLevel::error, "only nodes {} of {} configured remain: no majority; this node stops sequencing",
            fmt::join(members, " "), config_.nodes.size());
        failed_ = true;
        return false;
    }
    if (members != view_.members) {
        std::swap(members, view_.members);
        const uint32_t ring_nodeid = view_.ring_nodeid;
        ++view_.ring_seq;
        view_.ring_nodeid = config_.nodeid;
        if (!sequence_totem()) {
            std::swap(members, view_.members);
            --view_.ring_seq;
            view_.ring_nodeid = ring_nodeid;
            return false;
        }
        log(LogLevel::info, "node{} {} left the view; members now {}", gone.size() > 1 ? "s" : "", fmt::join(gone, " "),
            fmt::join(view_.members, " "));
    }
    pending_removals_.clear();
    removals_failed_.clear();
    for (uint32_t nodeid : gone) {
        last_origin_.erase(nodeid);
        // A cleanly leaving node gets its own removal, then its stream ends (replicate()).
        if (auto found = remotes_.find(nodeid); found != remotes_.end() && found->second.stream) {
            found->second.stream_end = ring_.unpublished_tail();
        }
    }
    replicate();
    return true;
}

bool Node::drain_inbound(bool& blocked)
{
    ring_was_blocked_ = false;
    if (role_ != Role::sequencer || failed_) {
        return false;
    }
    bool worked = false;
    if (!election_) {
        // Nodes that left or failed: NODEDOWN for their processes, then the new view.
        if (!pending_removals_.empty()) {
            if (sequence_removals()) {
                worked = true;
            } else {
                ring_was_blocked_ = true;
            }
        }
        // After a failover: what this node had forwarded to the failed sequencer.
        if (!unsequenced_.empty() && !ring_was_blocked_) {
            worked |= resequence_own();
        }
        release_member_batches();
    }
    for (auto& [nodeid, node] : remotes_) {
        if (!node.inbound) {
            continue;
        }
        for (uint32_t budget = kInboundBudgetPerNode; budget > 0; --budget) {
            transport::RingReader::Record record;
            if (node.pending) {
                record = *node.pending;
            } else {
                auto next = node.inbound->next();
                if (!next) {
                    log(LogLevel::error, "node {} wrote a malformed inbound record: {}", nodeid,
                        next.status().message());
                    ++counters_.protocol_violations;
                    transport_->disconnect(nodeid);
                    break;
                }
                if (!*next) {
                    break;
                }
                record = **next;
            }
            auto decoded = wire::decode_inbound(record.type, record.payload);
            if (!decoded) {
                log(LogLevel::error, "node {} sent a malformed record of type {}; disconnecting", nodeid, record.type);
                ++counters_.protocol_violations;
                transport_->disconnect(nodeid);
                break;
            }
            if (decoded->type == wire::InboundType::hello &&
                !granted_for_hello(node, std::get<wire::Hello>(decoded->body))) {
                // Its grant went before the hello on the same queue pair, but may be
                // polled after it: wait for it, not for ever.
                node.pending = record;
                if (node.grant_deadline_ms == 0) {
                    node.grant_deadline_ms = now_ms_ + config_.failure_timeout_ms;
                } else if (now_ms_ >= node.grant_deadline_ms) {
                    log(LogLevel::error, "node {} asks to be a member but exposes no ring to node {}", nodeid,
                        config_.nodeid);
                    ++counters_.protocol_violations;
                    transport_->disconnect(nodeid);
                }
                break;
            }
            node.grant_deadline_ms = 0;
            record_copied_by_device_ = false;
            if (!sequence_inbound(node, *decoded)) {
                node.pending = record;
                // While collecting tails, records wait for the new view, not for room.
                ring_was_blocked_ |= !election_.has_value();
                break;
            }
            node.pending.reset();
            if (record_copied_by_device_ || !node.held.empty()) {
                // In order behind a record whose payload the device still reads.
                node.held.emplace_back(record_copied_by_device_ ? next_batch_ : 0, record);
            } else if (node.inbound) {
                node.inbound->release(record);
            }
            worked = true;
            if (!node.inbound) {
                break;
            }
        }
    }
    blocked |= ring_was_blocked_;
    return worked;
}

bool Node::granted_for_hello(const Remote& node, const wire::Hello& hello) const
{
    // What the sequencer writes into a member's memory, and what it reads of a survivor's
    // ring in a repair (one asking to continue) or writes once (one asking to be admitted).
    std::vector<uint32_t> tags{wire::kTagDeliveryRing, wire::kTagRingControl};
    tags.push_back(hello.ring_seq != 0 ? wire::kTagRepairRing : wire::kTagSnapshot);
    return std::all_of(tags.begin(), tags.end(),
                       [&](uint32_t tag) { return transport_->remote_region(node.nodeid, tag).has_value(); });
}

bool Node::sequence_inbound(Remote& node, const wire::InboundRecord& record)
{
    const bool member = node.state == RemoteStatus::State::member;
    if (election_) {
        // Only the survivors' requests to continue count now; everything else waits.
        return record.type == wire::InboundType::hello && take_rejoin(node, std::get<wire::Hello>(record.body));
    }
    switch (record.type) {
    case wire::InboundType::hello:
        return admit(node, std::get<wire::Hello>(record.body));
    case wire::InboundType::node_leave:
        if (member) {
            node.state = RemoteStatus::State::leaving;
            pending_removals_.push_back(node.nodeid);
        }
        return true;
    case wire::InboundType::data:
    case wire::InboundType::join:
    case wire::InboundType::leave:
    case wire::InboundType::procdown:
        if (!member) {
            return true;  // sent before admission or after removal: no number, no effect
        }
        break;
    }
    // A forwarded record: every one gets an entry with its number, so its sender learns
    // which of its records the ring holds (and resends the rest to a new sequencer).
    current_origin_ = node.next_origin;
    const uint64_t tail_before = ring_.unpublished_tail();
    bool done = sequence_counted(node, record);
    if (done && ring_.unpublished_tail() == tail_before) {
        done = append_dropped(node.nodeid);
    }
    current_origin_ = 0;
    if (!done) {
        return false;  // nothing changed: the same record comes again
    }
    last_origin_[node.nodeid] = node.next_origin++;
    return true;
}

bool Node::append_dropped(uint32_t nodeid)
{
    EntryHeader* entry = ring_.append(EntryKind::dropped, 0, 0, reclaim_limit());
    if (entry == nullptr) {
        ++counters_.ring_full_events;
        return false;
    }
    entry->nodeid = nodeid;
    entry->origin_seq = current_origin_;
    return true;
}

bool Node::sequence_counted(Remote& node, const wire::InboundRecord& record)
{
    switch (record.type) {
    case wire::InboundType::data: {
        const auto& data = std::get<wire::Data>(record.body);
        const ProcessId process{node.nodeid, data.prefix.pid};
        const GroupName* name = groups_.name_of(data.prefix.group_id);
        if (name == nullptr || !groups_.is_member(*name, process) || (data.prefix.flags & ~ipc::kSubmissionFlags) != 0) {
            return true;  // sent while not a member: dropped, as corosync does
        }
        if (copies_by_device(data.payload.size())) {
            const auto offset = static_cast<uint64_t>(data.payload.data() - node.inbound_memory.data());
            if (!sequence_data_by_device(data.prefix.group_id, process, data.prefix.flags, data.prefix.total_bytes,
                                         node.inbound_memory.slice(offset, static_cast<uint32_t>(data.payload.size())))) {
                return false;
            }
            record_copied_by_device_ = true;
            return true;
        }
        return sequence_data(data.prefix.group_id, process, data.prefix.flags, data.prefix.total_bytes, data.payload);
    }
    case wire::InboundType::join:
    case wire::InboundType::leave:
    case wire::InboundType::procdown: {
        const auto& op = std::get<wire::GroupOp>(record.body);
        const ProcessId process{node.nodeid, op.pid};
        if (record.type == wire::InboundType::join) {
            if (groups_.check_join(op.group, process) == JoinCheck::already_member) {
                return true;
            }
            return sequence_change(op.group, process, CPG_REASON_JOIN);
        }
        return sequence_removal(op.group, {process},
                                record.type == wire::InboundType::leave ? CPG_REASON_LEAVE : CPG_REASON_PROCDOWN);
    }
    case wire::InboundType::hello:
    case wire::InboundType::node_leave:
        break;
    }
    return true;
}

bool Node::admit(Remote& node, const wire::Hello& hello)
{
    transport::Transport& transport = *transport_;
    // A node that lost a sequencer this one did not take over from asks to continue a view
    // this node does not continue: refused like any hello that does not fit.
    if (std::string problem = wire::admission_problem(hello, node.nodeid, ring_.data_bytes());
        !problem.empty() || node.state != RemoteStatus::State::connected) {
        log(LogLevel::warning, "node {} cannot be admitted: {}", node.nodeid, problem.empty() ? "not connected" : problem);
        transport.disconnect(node.nodeid);
        return true;
    }
    const uint64_t totem_bytes = sizeof(ipc::TotemPayload) + (view_.members.size() + 1) * sizeof(uint32_t);
    if (!ring_.has_room(0, static_cast<uint32_t>(totem_bytes), reclaim_limit())) {
        return false;
    }
    wire::Snapshot snapshot;
    snapshot.start_position = ring_.unpublished_tail();
    snapshot.next_seq = ring_.next_seq();
    snapshot.ring_seq = view_.ring_seq;
    snapshot.sequencer = config_.nodeid;
    snapshot.members = view_.members;
    for (uint32_t member : view_.members) {
        auto found = last_origin_.find(member);
        snapshot.last_origins.push_back(found == last_origin_.end() ? 0 : found->second);
    }
    snapshot.groups = groups_.snapshot();
    const std::vector<std::byte> bytes = wire::encode_snapshot(snapshot);
    auto remote_snapshot = transport.remote_region(node.nodeid, wire::kTagSnapshot);
    auto remote_ring = transport.remote_region(node.nodeid, wire::kTagDeliveryRing);
    auto remote_control = transport.remote_region(node.nodeid, wire::kTagRingControl);
    if (!remote_snapshot || !remote_ring || !remote_control ||
        bytes.size() + wire::kSnapshotReadyBytes > std::min(remote_snapshot->bytes, wire::kSnapshotRegionBytes)) {
        log(LogLevel::error, "node {} cannot be admitted: its snapshot region is missing or too small", node.nodeid);
        transport.disconnect(node.nodeid);
        return true;
    }
    auto snapshot_memory = transport::RegisteredMemory::create(transport, wire::kSnapshotReadyBytes + bytes.size(),
                                                               transport::RegionAccess::local);
    if (!snapshot_memory) {
        log(LogLevel::error, "node {} cannot be admitted: {}", node.nodeid, snapshot_memory.status().message());
        transport.disconnect(node.nodeid);
        return true;
    }
    node.snapshot_memory = std::move(*snapshot_memory);
    const uint64_t ready = bytes.size();
    std::memcpy(node.snapshot_memory.data(), &ready, sizeof(ready));
    std::memcpy(node.snapshot_memory.data() + wire::kSnapshotReadyBytes, bytes.data(), bytes.size());
    const transport::LocalSlice body = node.snapshot_memory.slice(wire::kSnapshotReadyBytes, static_cast<uint32_t>(bytes.size()));
    const transport::LocalSlice ready_word = node.snapshot_memory.slice(0, sizeof(ready));
    transport::WriteRequest writes[2];
    writes[0].sources = {&body, 1};
    writes[0].destination = remote_snapshot->at(wire::kSnapshotReadyBytes);
    writes[1].sources = {&ready_word, 1};
    writes[1].destination = remote_snapshot->at(0);
    node.line->credit.store(snapshot.start_position);
    node.line->held.store(snapshot.start_position);  // nothing before it is its to hold
    auto stream = DeliveryStream::create(transport, node.nodeid, *remote_ring, *remote_control,
                                         ring_data_registration_.id(), ring_.data_bytes(), &node.line->credit,
                                         snapshot.start_position);
    transport::Status posted = stream ? transport.post_writes(node.nodeid, writes) : stream.status();
    if (!posted) {
        log(LogLevel::error, "node {} cannot be admitted: {}", node.nodeid, posted.message());
        transport.disconnect(node.nodeid);
        return true;
    }
    node.stream.emplace(std::move(*stream));
    node.state = RemoteStatus::State::member;
    node.next_origin = 1;
    node.liveness.restart(now_ms_);
    last_origin_[node.nodeid] = 0;
    view_.members.insert(std::upper_bound(view_.members.begin(), view_.members.end(), node.nodeid), node.nodeid);
    ++view_.ring_seq;
    view_.ring_nodeid = config_.nodeid;
    if (!sequence_totem()) {
        // has_room said yes and nothing was appended since: cannot happen.
        log(LogLevel::error, "no room for the totem confchg that admits node {}", node.nodeid);
    }
    log(LogLevel::info, "node {} admitted at ring position {}; members now {}", node.nodeid, snapshot.start_position,
        fmt::join(view_.members, " "));
    return true;
}

// ---------------------------------------------------------------------------------------
// Member: forwarding to the sequencer

bool Node::forward_data(std::span<const transport::LocalSlice> parts, uint32_t payload_bytes)
{
    if (!writer_ || failover_ || resend_next_ != 0 || parts.size() > transport::kMaxSourcesPerWrite) {
        return false;
    }
    transport::Status status = writer_->append(static_cast<uint32_t>(wire::InboundType::data), parts);
    if (!status) {
        if (status.code() != transport::Errc::try_again) {
            ++counters_.rdma_errors;
            log(LogLevel::warning, "forwarding to the sequencer: {}", status.message());
        }
        return false;
    }
    ++counters_.messages_forwarded;
    counters_.bytes_forwarded += payload_bytes;
    forwarded_uncommitted_ = true;
    Forwarded& forwarded = unsequenced_.emplace_back();
    forwarded.origin_seq = next_origin_seq_++;
    forwarded.batch = next_batch_;
    forwarded.type = wire::InboundType::data;
    std::copy(parts.begin(), parts.end(), forwarded.parts.begin());
    forwarded.part_count = parts.size();
    return true;
}

bool Node::forward_group_op(uint32_t pid, const GroupName& name, cpg_reason_t reason)
{
    if (!writer_ || failover_ || resend_next_ != 0) {
        return false;
    }
    const wire::InboundType type = reason == CPG_REASON_JOIN    ? wire::InboundType::join
                                   : reason == CPG_REASON_LEAVE ? wire::InboundType::leave
                                                                : wire::InboundType::procdown;
    std::vector<std::byte> record = wire::encode_group_op(pid, name);
    if (!writer_->append_copy(static_cast<uint32_t>(type), record)) {
        return false;
    }
    Forwarded& forwarded = unsequenced_.emplace_back();
    forwarded.origin_seq = next_origin_seq_++;
    forwarded.batch = next_batch_;
    forwarded.type = type;
    forwarded.bytes = std::move(record);
    forwarded_uncommitted_ = true;
    commit_forwarded();
    return true;
}

bool Node::commit_forwarded()
{
    if (!forwarded_uncommitted_ || !writer_ || failover_) {
        return true;
    }
    // Signalled: its completion says the device has read every source byte of the batch.
    if (transport::Status status = writer_->commit(true, next_batch_, kWakeImmediate); !status) {
        return false;  // send queue full: the next turn retries
    }
    ++next_batch_;
    forwarded_uncommitted_ = false;
    return true;
}

bool Node::begin_leave()
{
    if (role_ != Role::member || !connected_ || !admitted_ || !writer_ || failover_) {
        return false;
    }
    leaving_ = true;
    if (!writer_->append_copy(static_cast<uint32_t>(wire::InboundType::node_leave), {}) ||
        !writer_->commit(false, 0, kWakeImmediate)) {
        return false;
    }
    log(LogLevel::info, "node {} leaving the cluster", config_.nodeid);
    return true;
}

void Node::disconnect_from_sequencer()
{
    if (transport_ && role_ == Role::member) {
        transport_->disconnect(sequencer_);
    }
}

// ---------------------------------------------------------------------------------------
// Member: what the sequencer wrote

bool Node::apply_snapshot()
{
    const std::byte* region = member_memory_.data() + ipc::kPageBytes;
    const uint64_t ready = reinterpret_cast<const transport::PeerWord*>(region)->load();
    if (ready == 0) {
        return false;
    }
    auto snapshot = ready <= wire::kSnapshotRegionBytes - wire::kSnapshotReadyBytes
                        ? wire::decode_snapshot({region + wire::kSnapshotReadyBytes, ready})
                        : std::nullopt;
    if (!snapshot || !groups_.restore(snapshot->groups) || snapshot->sequencer != sequencer_) {
        log(LogLevel::error, "the sequencer's admission snapshot is malformed; this node cannot join");
        failed_ = true;
        return false;
    }
    ring_.start_at(snapshot->start_position, snapshot->next_seq);
    processed_ = published_credit_ = snapshot->start_position;
    view_ = {snapshot->members, snapshot->ring_seq, snapshot->sequencer};
    last_origin_.clear();
    for (size_t index = 0; index < snapshot->members.size(); ++index) {
        last_origin_[snapshot->members[index]] = snapshot->last_origins[index];
    }
    last_origin_[config_.nodeid] = 0;
    reclaim_limit_ = snapshot->start_position;
    admitted_ = true;
    if (!local_.on_admitted()) {
        failed_ = true;
        return false;
    }
    log(LogLevel::info, "node {} admitted by sequencer {} at ring position {}", config_.nodeid, sequencer_,
        snapshot->start_position);
    return true;
}

bool Node::apply_delivered()
{
    if (!admitted_ && !apply_snapshot()) {
        return false;
    }
    const uint64_t ring_bytes = ring_.data_bytes();
    const uint64_t committed = ring_.header().cluster_tail.load(std::memory_order_acquire);
    if (committed <= processed_) {
        return false;
    }
    if (committed - processed_ > ring_bytes || committed % ipc::kEntryAlignBytes != 0) {
        ++counters_.protocol_violations;
        log(LogLevel::error, "the sequencer committed position {} beyond what it may write (have {}); leaving",
            committed, processed_);
        failed_ = true;
        return false;
    }
    while (processed_ < committed) {
        const uint64_t position = processed_;
        const uint64_t offset = position & (ring_bytes - 1);
        const std::byte* at = ring_.data() + offset;
        auto entry = wire::check_entry({at, ring_bytes - offset}, position, ring_bytes, committed - position);
        const bool filler = entry && (entry->kind == EntryKind::pad || entry->kind == EntryKind::skip);
        const bool in_order = entry && (filler || entry->seq == ring_.next_seq());
        if (!in_order) {
            ++counters_.protocol_violations;
            // What lies there, raw (the first words of an entry header), for the post-mortem.
            ipc::EntryHeader raw{};
            std::memcpy(&raw, at, std::min<uint64_t>(sizeof(raw), ring_bytes - offset));
            log(LogLevel::error,
                "the sequencer wrote a malformed or out-of-order entry at position {} (committed {}; there: {} bytes, "
                "kind {}, flags {:#x}, seq {} where {} was due, payload {} at {}); leaving",
                position, committed, raw.entry_bytes, static_cast<unsigned>(raw.kind), raw.flags, raw.seq,
                ring_.next_seq(), raw.payload_bytes, raw.payload_offset);
            failed_ = true;
            return false;
        }
        processed_ = position + entry->entry_bytes;
        if (filler) {
            ring_.adopt(ring_.last_position(), processed_, ring_.next_seq());
            continue;
        }
        ring_.adopt(position, processed_, entry->seq + 1);
        if (entry->origin_seq != 0) {
            note_origin(entry->nodeid, entry->origin_seq);
            if (failed_) {
                return false;
            }
        }
        const std::span<const std::byte> payload(at + entry->payload_offset, entry->payload_bytes);
        switch (entry->kind) {
        case EntryKind::data:
            ++counters_.messages_delivered;
            counters_.bytes_delivered += entry->payload_bytes;
            note_safe(position, processed_, entry->flags);
            local_.on_entry(entry->group_id);
            break;
        case EntryKind::confchg:
            if (!apply_confchg(*entry, position, payload)) {
                return false;
            }
            break;
        case EntryKind::totem_confchg: {
            auto totem = wire::decode_totem(payload);
            if (!totem) {
                ++counters_.protocol_violations;
                log(LogLevel::error, "malformed totem confchg at position {}; leaving", position);
                failed_ = true;
                return false;
            }
            for (uint32_t member : totem->members) {
                if (!std::binary_search(view_.members.begin(), view_.members.end(), member)) {
                    last_origin_[member] = 0;  // admitted: numbers its records from 1
                }
            }
            view_ = {totem->members, totem->ring_seq, totem->ring_nodeid};
            if (std::find(view_.members.begin(), view_.members.end(), config_.nodeid) == view_.members.end() &&
                leaving_) {
                left_ = true;
            }
            if (failover_ && role_ == Role::member && totem->ring_nodeid == sequencer_) {
                // The new sequencer's view: everything the failed one wrote that any
                // survivor had is here now; what is not, this node sends again.
                failover_ = false;
                // Its ring was readable for the repair only, which is over.
                transport_->withdraw(sequencer_, wire::kTagRepairRing);
                suspects_.clear();
                sequencer_liveness_.restart(now_ms_);
                counters_.last_failover_ms = now_ms_ - failover_started_ms_;
                ++counters_.failovers;
                resend_next_ = unsequenced_.empty() ? 0 : unsequenced_.front().origin_seq;
                forwarded_uncommitted_ = true;  // releases what waited for the lost commits
                log(LogLevel::info, "node {} continues under sequencer {} after {} ms; {} record{} to send again",
                    config_.nodeid, sequencer_, counters_.last_failover_ms, unsequenced_.size(),
                    unsequenced_.size() == 1 ? "" : "s");
            }
            break;
        }
        case EntryKind::pad:
        case EntryKind::skip:
        case EntryKind::dropped:
            break;
        }
    }
    local_.on_applied();
    return true;
}

bool Node::apply_confchg(const ipc::EntryHeader& entry, uint64_t position, std::span<const std::byte> payload)
{
    auto confchg = wire::decode_confchg(payload);
    const bool join = confchg && confchg->joined.size() == 1 && confchg->left.empty();
    const bool removal = confchg && confchg->joined.empty() && !confchg->left.empty();
    if (!join && !removal) {
        ++counters_.protocol_violations;
        log(LogLevel::error, "malformed confchg at position {}; leaving", position);
        failed_ = true;
        return false;
    }
    const GroupName& name = confchg->group;
    if (join) {
        const ProcessId process{confchg->joined[0].nodeid, confchg->joined[0].pid};
        if (groups_.is_member(name, process) || groups_.join(name, process).group_id != entry.group_id) {
            ++counters_.protocol_violations;
            log(LogLevel::error, "the sequencer's join at position {} contradicts this node's group table; leaving",
                position);
            failed_ = true;
            return false;
        }
        if (process.nodeid == config_.nodeid) {
            local_.on_own_join(name, process.pid, entry.group_id, position, entry.seq);
        }
    } else {
        std::vector<ProcessId> processes;
        for (const cpg_address& address : confchg->left) {
            processes.push_back({address.nodeid, address.pid});
        }
        if (!groups_.remove(name, processes, static_cast<cpg_reason_t>(confchg->left[0].reason))) {
            ++counters_.protocol_violations;
            log(LogLevel::error, "the sequencer removed a process at position {} that is no member; leaving",
                position);
            failed_ = true;
            return false;
        }
        for (const ProcessId& process : processes) {
            if (process.nodeid == config_.nodeid) {
                local_.on_own_removal(name, process.pid);
            }
        }
    }
    local_.on_entry(entry.group_id);
    return true;
}

std::vector<DeliveryRing::Hold> Node::holds_by_position() const
{
    std::vector<DeliveryRing::Hold> holds = ring_.holds();
    std::sort(holds.begin(), holds.end(),
              [](const DeliveryRing::Hold& a, const DeliveryRing::Hold& b) { return a.position < b.position; });
    return holds;
}

// The words for this node's holds (wire::kHoldWords): a hold that lasts keeps its word,
// an ended one frees it, a new one takes a free one. Returns how many holds found a word
// (the first ones by position: the credit must stay before the others).
size_t Node::assign_hold_words(std::array<uint64_t, wire::kHoldWords>& words) const
{
    const std::vector<DeliveryRing::Hold> holds = holds_by_position();
    std::vector<uint64_t> wanted;
    for (const DeliveryRing::Hold& hold : holds) {
        wanted.push_back(wire::encode_hold(hold.position, hold.bytes, ring_.data_bytes()));
    }
    for (uint64_t& word : words) {
        if (std::find(wanted.begin(), wanted.end(), word) == wanted.end()) {
            word = 0;
        }
    }
    size_t placed = 0;
    for (const uint64_t word : wanted) {
        if (std::find(words.begin(), words.end(), word) == words.end()) {
            auto free = std::find(words.begin(), words.end(), uint64_t{0});
            if (free == words.end()) {
                break;
            }
            *free = word;
        }
        ++placed;
    }
    return placed;
}

// `limit`, kept before the first of this node's holds from `first_unpublished` on (by
// position): the sequencer does not know of those, so it must not come round to them. A
// filler's header fits before the held bytes (DeliveryRing::slot_for).
uint64_t Node::credit_before_holds(uint64_t limit, size_t first_unpublished) const
{
    if (first_unpublished >= ring_.holds().size()) {
        return limit;
    }
    const std::vector<DeliveryRing::Hold> holds = holds_by_position();
    return std::min(limit, holds[first_unpublished].position - ipc::kEntryAlignBytes);
}

void Node::publish_member_credit()
{
    if (!connected_ || !delivery_credit_) {
        return;
    }
    uint64_t limit = std::min(reclaim_limit(), processed_);
    // The holds of this node's readers first: the credit may pass only those the
    // sequencer was told of (the write of their words goes before the credit's).
    // Nearly always none, and none published: nothing to do.
    constexpr std::array<uint64_t, wire::kHoldWords> kNoHolds{};
    if (!ring_.holds().empty() || published_holds_ != kNoHolds) {
        std::array<uint64_t, wire::kHoldWords> words = published_holds_;
        if (words.front() == UINT64_MAX) {
            words.fill(0);
        }
        const size_t placed = assign_hold_words(words);
        if (words != published_holds_) {
            transport::WriteRequest write;
            write.inline_bytes = std::as_bytes(std::span<const uint64_t>(words));
            write.destination = delivery_credit_->at(offsetof(wire::MemberLine, holds));
            if (!transport_->post_write(sequencer_, write)) {
                return;  // send queue full: the next step
            }
            published_holds_ = words;
        }
        limit = credit_before_holds(limit, placed);
    }
    if (limit <= published_credit_) {
        return;
    }
    const uint64_t requested = ring_.header().credit_request.load(std::memory_order_acquire);
    if (limit - published_credit_ < ring_.data_bytes() / kCreditPublishDivisor && requested <= published_credit_) {
        return;
    }
    const uint64_t word = limit;
    transport::WriteRequest write;
    write.inline_bytes = std::as_bytes(std::span<const uint64_t>(&word, 1));
    write.destination = delivery_credit_->at(offsetof(wire::MemberLine, credit));
    if (transport_->post_write(sequencer_, write)) {
        published_credit_ = limit;
    }
}



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
    const uint64_t word = heartbeats_sent_;
    transport::WriteRequest write;
    write.inline_bytes = std::as_bytes(std::span<const uint64_t>(&word, 1));
    write.destination = target;
    const transport::Status posted = transport_->post_write(peer, write);
    // Other failures are the connection's: its disconnected event follows.
    return posted || posted.code() != transport::Errc::try_again;
}

void Node::send_heartbeats(uint64_t now_ms)
{
    ++heartbeats_sent_;
    next_heartbeat_ms_ = now_ms + config_.failure_timeout_ms / kHeartbeatsPerTimeout;
    heartbeats_owed_.clear();
    if (role_ == Role::member) {
        if (connected_ && sequencer_heartbeat_ && !write_heartbeat(sequencer_, *sequencer_heartbeat_)) {
            heartbeats_owed_.push_back(sequencer_);
        }
        return;
    }
    for (auto& [nodeid, node] : remotes_) {
        if (node.stream && node.heartbeat_target && !write_heartbeat(nodeid, *node.heartbeat_target)) {
            heartbeats_owed_.push_back(nodeid);
        }
    }
}

void Node::send_owed_heartbeats()
{
    std::erase_if(heartbeats_owed_, [this](uint32_t peer) {
        if (role_ == Role::member) {
            return peer != sequencer_ || !connected_ || !sequencer_heartbeat_ ||
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
        if (!connected_ || !admitted_ || failover_) {
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

// ---------------------------------------------------------------------------------------
// Failover. A member that loses its sequencer fences it (tears its queue pair down, so
// nothing the old sequencer still sends can land), applies what it had committed, and
// asks the next node of the view in the sequencer order to continue, telling it where
// its ring ends. That node collects the survivors' tails, repairs its own ring from the
// survivor with the longest one, removes the nodes that did not answer (the failed
// sequencer first) and continues: it writes each survivor the part of the ring it
// misses, then the new view. The survivors send again what they had forwarded and do not
// find in the ring. Invariants: ordering/NOTES.md, "Failover".

void Node::keep_mesh(uint64_t now_ms)
{
    for (uint32_t peer : view_.members) {
        if (peer <= config_.nodeid || peer == sequencer_ || transport_->is_connected(peer)) {
            continue;
        }
        uint64_t& next_ms = mesh_next_ms_[peer];
        if (now_ms < next_ms) {
            continue;
        }
        next_ms = now_ms + kReconnectIntervalMs;
        (void)transport_->connect(peer);  // one already under way or up: refused, and fine
    }
}

void Node::next_join_candidate()
{
    join_next_ = (join_next_ + 1) % join_order_.size();
    if (join_next_ == 0) {
        ++join_rounds_;
        // Two rounds in which every other node was unreachable or refused: no cluster
        // runs that this node can reach. The first of the order starts one; the others
        // wait for it.
        if (order_.front() == config_.nodeid && join_rounds_ >= 2) {
            start_cluster();
            return;
        }
        next_connect_ms_ = now_ms_ + std::min<uint64_t>(kReconnectIntervalMs, config_.failure_timeout_ms);
    } else {
        next_connect_ms_ = now_ms_;
    }
    sequencer_ = join_order_[join_next_];
}

void Node::start_cluster()
{
    withdraw_grants();  // from the last node it asked to join through
    role_ = Role::sequencer;
    sequencer_ = config_.nodeid;
    view_ = {{config_.nodeid}, config_.first_ring_seq, config_.nodeid};
    log(LogLevel::info, "node {} found no running cluster; it sequences for the {} configured nodes", config_.nodeid,
        config_.nodes.size());
    if (!local_.on_admitted()) {
        failed_ = true;
    }
}

void Node::refuse_admission_requests()
{
    // Only the sequencer admits: a node asking this one is told no (its connection
    // closes) and asks the next. A request to continue after a failover is kept, in case
    // this node is about to take over.
    for (auto& [nodeid, node] : remotes_) {
        if (!node.inbound || node.pending) {
            continue;
        }
        auto next = node.inbound->next();
        if (!next || !*next) {
            if (!next) {
                transport_->disconnect(nodeid);
            }
            continue;
        }
        auto decoded = wire::decode_inbound((**next).type, (**next).payload);
        if (!decoded || (decoded->type == wire::InboundType::hello &&
                         std::get<wire::Hello>(decoded->body).ring_seq == 0)) {
            log(LogLevel::debug, "node {} asks to be admitted, but node {} does not sequence", nodeid, config_.nodeid);
            transport_->disconnect(nodeid);
            continue;
        }
        node.pending = **next;
    }
}

void Node::lose_sequencer(const std::string& why)
{
    if (leaving_) {
        left_ = true;
        return;
    }
    const uint32_t lost = sequencer_;
    log(LogLevel::warning, "lost sequencer {} ({}); the next node of the view takes over", lost, why);
    suspects_.insert(lost);
    transport_->disconnect(lost);
    withdraw_grants();  // fenced: nothing it still sends may land
    retire_writer();
    connected_ = connecting_ = false;
    delivery_credit_.reset();
    sequencer_heartbeat_.reset();
    failover_ = true;
    failover_started_ms_ = now_ms_;
    apply_delivered();  // everything it committed before the fence
    if (!failed_) {
        next_candidate();
    }
}

void Node::next_candidate()
{
    for (uint32_t nodeid : order_) {
        if (!std::binary_search(view_.members.begin(), view_.members.end(), nodeid) || suspects_.contains(nodeid)) {
            continue;
        }
        if (nodeid == config_.nodeid) {
            promote();
            return;
        }
        sequencer_ = nodeid;
        failover_deadline_ms_ = now_ms_ + kFailoverWaitTimeouts * config_.failure_timeout_ms;
        next_connect_ms_ = now_ms_;
        log(LogLevel::info, "node {} asks node {} to take over", config_.nodeid, nodeid);
        return;
    }
    log(LogLevel::error, "no node of the view is left to take over; this node cannot go on");
    failed_ = true;
}

void Node::promote()
{
    withdraw_grants();  // it sequences itself: no one writes its ring from now on
    role_ = Role::sequencer;
    sequencer_ = config_.nodeid;
    failover_ = false;
    // Member-era batches end here: once its own forwarded records are in its ring, all of
    // them are released together; device copies number on after them.
    member_batches_end_ = next_batch_;
    ++next_batch_;
    forwarded_uncommitted_ = false;
    Election election;
    election.started_ms = failover_started_ms_;
    election.deadline_ms = now_ms_ + config_.failure_timeout_ms;
    election.view = view_;
    election.rejoined[config_.nodeid] = {processed_, ring_.next_seq(), std::min(reclaim_limit(), processed_)};
    election_ = std::move(election);
    log(LogLevel::info, "node {} takes over sequencing at ring position {}; collecting the survivors' tails",
        config_.nodeid, processed_);
    for (uint32_t peer : election_->view.members) {
        auto found = remotes_.find(peer);
        if (peer == config_.nodeid || suspects_.contains(peer) || found == remotes_.end() ||
            !found->second.heartbeat_target) {
            continue;
        }
        const uint64_t word = heartbeats_sent_;
        transport::WriteRequest notice;
        notice.inline_bytes = std::as_bytes(std::span<const uint64_t>(&word, 1));
        notice.destination = *found->second.heartbeat_target;
        notice.imm = kTakeOverImmediate;
        (void)transport_->post_write(peer, notice);  // it still notices by itself otherwise
    }
}

bool Node::take_rejoin(Remote& node, const wire::Hello& hello)
{
    if (hello.ring_seq == 0) {
        return false;  // asks to be admitted: after the new view
    }
    const bool of_view = std::binary_search(election_->view.members.begin(), election_->view.members.end(), node.nodeid);
    // The repair reads up to the longest tail into this ring: a tail past what this node's
    // own readers leave free is refused (rejoin_problem says why none genuine is).
    std::string problem = wire::rejoin_problem(hello, node.nodeid, ring_.data_bytes(), local_.local_reclaim_limit());
    if (problem.empty() && (!of_view || suspects_.contains(node.nodeid) || election_->target)) {
        problem = "not of the view, suspected, or late";
    }
    if (!problem.empty()) {
        log(LogLevel::warning, "node {} cannot continue here: {}", node.nodeid, problem);
        transport_->disconnect(node.nodeid);
        return true;
    }
    election_->rejoined[node.nodeid] = {hello.tail, hello.next_seq, hello.reclaim_limit};
    log(LogLevel::info, "node {} continues from ring position {}", node.nodeid, hello.tail);
    return true;
}

bool Node::election_step(uint64_t now_ms)
{
    Election& election = *election_;
    if (!election.target) {
        bool complete = true;
        for (uint32_t nodeid : election.view.members) {
            if (nodeid != config_.nodeid && !suspects_.contains(nodeid) && !election.rejoined.contains(nodeid)) {
                complete = false;
            }
        }
        if (!complete && now_ms < election.deadline_ms) {
            return false;
        }
        finish_election();
        return true;
    }
    if (election.reads_pending > 0) {
        return false;
    }
    install_after_failover();
    return true;
}

void Node::finish_election()
{
    Election& election = *election_;
    std::vector<uint32_t> survivors;
    for (const auto& [nodeid, rejoin] : election.rejoined) {
        survivors.push_back(nodeid);
    }
    if (!has_quorum(survivors, config_.nodes.size(), order_.front())) {
        log(LogLevel::error, "only nodes {} of {} configured answered: no majority; this node does not take over",
            fmt::join(survivors, " "), config_.nodes.size());
        failed_ = true;
        return;
    }
    uint64_t target = processed_;
    uint32_t holder = config_.nodeid;
    for (const auto& [nodeid, rejoin] : election.rejoined) {
        if (rejoin.tail > target) {
            target = rejoin.tail;
            holder = nodeid;
        }
    }
    election.target = target;
    election.holder = holder;
    if (holder == config_.nodeid) {
        return;
    }
    // The end of the ring this node misses, read from the survivor that has it, into the
    // same positions: every ring holds the same entries at the same positions.
    auto remote = transport_->remote_region(holder, wire::kTagRepairRing);
    if (!remote || remote->bytes != ring_.data_bytes()) {
        log(LogLevel::error, "node {} does not expose its ring for the repair", holder);
        election.rejoined.erase(holder);
        election.target.reset();
        transport_->disconnect(holder);
        return;
    }
    const uint64_t ring_bytes = ring_.data_bytes();
    for (uint64_t from = processed_; from < target;) {
        const uint64_t offset = from & (ring_bytes - 1);
        const uint64_t piece = std::min(target - from, ring_bytes - offset);
        const transport::LocalSlice destination{ring_data_registration_.id(), offset, static_cast<uint32_t>(piece)};
        if (transport::Status read = transport_->post_read(holder, destination, remote->at(offset), 0);
            !read) {
            log(LogLevel::error, "cannot read the ring's end from node {}: {}", holder, read.message());
            election.rejoined.erase(holder);
            election.target.reset();
            election.reads_pending = 0;
            transport_->disconnect(holder);
            return;
        }
        ++election.reads_pending;
        from += piece;
    }
    log(LogLevel::info, "repairing ring positions {}..{} from node {}", processed_, target, holder);
}

void Node::install_after_failover()
{
    Election& election = *election_;
    const uint64_t target = *election.target;
    if (processed_ < target) {
        // Checked and applied as any member checks what a sequencer wrote.
        ring_.header().cluster_tail.store(target, std::memory_order_release);
        apply_delivered();
        if (failed_ || processed_ != target) {
            log(LogLevel::error, "the repaired ring end does not check out; this node cannot go on");
            failed_ = true;
            return;
        }
    }
    transport::Transport& transport = *transport_;
    for (const auto& [nodeid, rejoin] : election.rejoined) {
        auto found = remotes_.find(nodeid);
        if (nodeid == config_.nodeid || found == remotes_.end() || !found->second.inbound) {
            continue;
        }
        Remote& node = found->second;
        auto remote_ring = transport.remote_region(nodeid, wire::kTagDeliveryRing);
        auto remote_control = transport.remote_region(nodeid, wire::kTagRingControl);
        node.line->credit.store(rejoin.reclaim_limit);
        node.line->held.store(rejoin.tail);
        auto stream = remote_ring && remote_control
                          ? DeliveryStream::create(transport, nodeid, *remote_ring, *remote_control,
                                                   ring_data_registration_.id(), ring_.data_bytes(), &node.line->credit,
                                                   rejoin.tail, rejoin.reclaim_limit)
                          : transport::Result<DeliveryStream>(transport::Status{
                                transport::Errc::not_found, transport::Layer::api, "no ring exposed"});
        if (!stream) {
            log(LogLevel::error, "node {} cannot continue: {}", nodeid, stream.status().message());
            transport.disconnect(nodeid);
            continue;
        }
        node.stream.emplace(std::move(*stream));
        node.state = RemoteStatus::State::member;
        node.next_origin = last_origin_[nodeid] + 1;
        node.liveness.restart(now_ms_, node.heartbeat->counter.load());
    }
    for (uint32_t nodeid : election.view.members) {
        auto found = remotes_.find(nodeid);
        const bool continues = found != remotes_.end() && found->second.state == RemoteStatus::State::member;
        if (nodeid != config_.nodeid && !continues) {
            pending_removals_.push_back(nodeid);
            removals_failed_.insert(nodeid);
            ++counters_.nodes_failed;
        }
    }
    counters_.last_failover_ms = now_ms_ - election.started_ms;
    ++counters_.failovers;
    log(LogLevel::info, "node {} sequences from ring position {} after {} ms; {} of {} nodes continue", config_.nodeid,
        target, counters_.last_failover_ms, view_.members.size() - pending_removals_.size(),
        election.view.members.size());
    election_.reset();
    reclaim_limit();
    suspects_.clear();
    next_heartbeat_ms_ = now_ms_;
}

bool Node::resequence_own()
{
    resequencing_ = true;
    bool worked = false;
    while (!unsequenced_.empty()) {
        const Forwarded& forwarded = unsequenced_.front();
        if (forwarded.type == wire::InboundType::data) {
            // The prefix and the payload are still where the caller put them.
            std::vector<std::byte> record;
            for (size_t index = 0; index < forwarded.part_count; ++index) {
                const transport::LocalSlice& part = forwarded.parts[index];
                const std::span<const std::byte> bytes = transport_->region_bytes(part.region).subspan(part.offset, part.bytes);
                record.insert(record.end(), bytes.begin(), bytes.end());
            }
            auto decoded = wire::decode_inbound(static_cast<uint32_t>(forwarded.type), record);
            if (decoded) {
                const auto& data = std::get<wire::Data>(decoded->body);
                const ProcessId process{config_.nodeid, data.prefix.pid};
                const GroupName* name = groups_.name_of(data.prefix.group_id);
                if (name != nullptr && groups_.is_member(*name, process) &&
                    !sequence_data(data.prefix.group_id, process, data.prefix.flags, data.prefix.total_bytes,
                                   data.payload)) {
                    break;
                }
            }
        } else if (auto decoded = wire::decode_inbound(static_cast<uint32_t>(forwarded.type), forwarded.bytes)) {
            const auto& op = std::get<wire::GroupOp>(decoded->body);
            const ProcessId process{config_.nodeid, op.pid};
            if (forwarded.type == wire::InboundType::join) {
                if (groups_.check_join(op.group, process) != JoinCheck::already_member) {
                    if (!sequence_change(op.group, process, CPG_REASON_JOIN)) {
                        break;
                    }
                    local_.on_own_join(op.group, op.pid, *groups_.group_id(op.group), ring_.last_position(),
                                       ring_.next_seq() - 1);
                }
            } else if (groups_.is_member(op.group, process)) {
                const cpg_reason_t reason =
                    forwarded.type == wire::InboundType::leave ? CPG_REASON_LEAVE : CPG_REASON_PROCDOWN;
                if (!sequence_removal(op.group, {process}, reason)) {
                    break;
                }
                local_.on_own_removal(op.group, op.pid);
            }
        }
        unsequenced_.pop_front();
        ++counters_.records_resent;
        worked = true;
    }
    resequencing_ = false;
    return worked;
}

void Node::release_member_batches()
{
    if (member_batches_end_ == 0 || !unsequenced_.empty()) {
        return;
    }
    // Everything handed over as a member is in the ring (the repair brought some, the
    // rest was sequenced here). Device copies have later numbers: none is covered.
    completed_batch_ = std::max(completed_batch_, member_batches_end_);
    member_batches_end_ = 0;
    local_.on_batch_completed(completed_batch_);
}

void Node::resend_unsequenced()
{
    while (resend_next_ != 0 && writer_) {
        if (unsequenced_.empty() || resend_next_ > unsequenced_.back().origin_seq) {
            resend_next_ = 0;
            break;
        }
        resend_next_ = std::max(resend_next_, unsequenced_.front().origin_seq);
        const Forwarded& forwarded = unsequenced_[resend_next_ - unsequenced_.front().origin_seq];
        const bool appended =
            forwarded.type == wire::InboundType::data
                ? writer_->append(static_cast<uint32_t>(forwarded.type), {forwarded.parts.data(), forwarded.part_count})
                      .ok()
                : writer_->append_copy(static_cast<uint32_t>(forwarded.type), forwarded.bytes).ok();
        if (!appended) {
            break;  // the inbound ring or the send queue is full: the next turn goes on
        }
        ++counters_.records_resent;
        ++resend_next_;
        forwarded_uncommitted_ = true;
    }
    commit_forwarded();
}

void Node::note_origin(uint32_t nodeid, uint64_t origin_seq)
{
    uint64_t& last = last_origin_[nodeid];
    if (nodeid == config_.nodeid) {
        if (origin_seq != last + 1) {
            ++counters_.protocol_violations;
            log(LogLevel::error, "the sequencer wrote this node's record {} after record {}; leaving", origin_seq, last);
            failed_ = true;
            return;
        }
        while (!unsequenced_.empty() && unsequenced_.front().origin_seq <= origin_seq) {
            unsequenced_.pop_front();
        }
        report_released();
    }
    last = origin_seq;
}

void Node::report_released()
{
    if (role_ != Role::member) {
        return;
    }
    // Released only once in the ring: until then the next sequencer may need it again.
    uint64_t released = completed_batch_;
    if (!unsequenced_.empty()) {
        released = std::min(released, unsequenced_.front().batch - 1);
    }
    if (released > reported_batch_) {
        reported_batch_ = released;
        local_.on_batch_completed(released);
    }
}

// ---------------------------------------------------------------------------------------
// SAFE delivery: a SAFE message reaches the applications of any node only once every node
// of the view holds it in its ring. Members tell the sequencer how far their ring is
// complete (while a SAFE message waits), the sequencer takes the lowest of those and its
// own, and writes it into every member's ring header. Until a SAFE message is stable,
// neither it nor anything after it is published to the node's clients (total order).
// In a one-node cluster every message is held by every node when it is sequenced.

void Node::note_safe(uint64_t position, uint64_t end, uint16_t flags)
{
    if (role_ != Role::single && (flags & ipc::kFlagSafe) != 0) {
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
        const Remote& node = found->second;
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
    const uint64_t stable = std::min(ring_.header().stable_tail.load(std::memory_order_acquire), processed_);
    const bool waiting = safe_.waiting();
    if (safe_.advance(stable) && waiting) {
        local_.on_applied();  // publishes what the SAFE message held back
    }
    if (waiting && processed_ > held_sent_ && delivery_credit_ && connected_) {
        const uint64_t word = processed_;
        transport::WriteRequest write;
        write.inline_bytes = std::as_bytes(std::span<const uint64_t>(&word, 1));
        write.destination = delivery_credit_->at(offsetof(wire::MemberLine, held));
        write.imm = kWakeImmediate;
        if (transport_->post_write(sequencer_, write)) {
            held_sent_ = processed_;
        }
    }
}

}  // namespace rcpg::ordering
