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
constexpr size_t kCreditLineBytes = 64;  // one credit word per node, each on its own line
constexpr uint32_t kInboundBudgetPerNode = 256;
// A member publishes its consumed position when it moved this fraction of the ring (or
// when the sequencer asks): credits stay off the latency path.
constexpr uint64_t kCreditPublishDivisor = 8;
// Commits to the sequencer carry an immediate: it wakes a sequencer asleep on wait_fd().
constexpr uint32_t kWakeImmediate = 1;

uint64_t load_word(const void* address)
{
    return std::atomic_ref<uint64_t>(*static_cast<uint64_t*>(const_cast<void*>(address))).load(std::memory_order_acquire);
}

void store_word(void* address, uint64_t value)
{
    std::atomic_ref<uint64_t>(*static_cast<uint64_t*>(address)).store(value, std::memory_order_release);
}

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
    credit_memory_.reset();
    member_memory_.reset();
    ring_registration_.reset();
}

bool Node::start(std::string& error)
{
    view_ = {{config_.nodeid}, 1, config_.nodeid};
    if (!transport_) {
        role_ = Role::single;
        return true;
    }
    if (config_.nodes.size() < 2 ||
        std::find(config_.nodes.begin(), config_.nodes.end(), config_.sequencer) == config_.nodes.end() ||
        std::find(config_.nodes.begin(), config_.nodes.end(), config_.nodeid) == config_.nodes.end()) {
        error = "a cluster needs at least two configured nodes, this one and the sequencer among them";
        return false;
    }
    sequencer_ = config_.sequencer;
    role_ = sequencer_ == config_.nodeid ? Role::sequencer : Role::member;
    view_.ring_nodeid = sequencer_;
    // Remote writes land in a member's ring from the sequencer, and in the sequencer's own
    // ring from its loopback (device copies); it is exposed to nobody else.
    const auto access = transport::RegionAccess::remote_write;
    auto ring_registration =
        transport::Registration::create(*transport_, ring_.mapping_address(), ring_.mapping_bytes(), access);
    if (!ring_registration) {
        error = "cannot register the delivery ring: " + ring_registration.status().message();
        return false;
    }
    ring_registration_ = std::move(*ring_registration);
    return role_ == Role::sequencer ? start_sequencer(error) : start_member(error);
}

bool Node::start_sequencer(std::string& error)
{
    transport::Transport& transport = *transport_;
    auto credit_memory = transport::RegisteredMemory::create(transport, config_.nodes.size() * kCreditLineBytes,
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
        node.credit_word = reinterpret_cast<uint64_t*>(credit_memory_.data() + index * kCreditLineBytes);
        auto inbound = transport::RegisteredMemory::create(transport, inbound_bytes, transport::RegionAccess::remote_write);
        if (!inbound) {
            error = "cannot register an inbound ring: " + inbound.status().message();
            return false;
        }
        node.inbound_memory = std::move(*inbound);
        transport::Status exposed =
            transport.expose(nodeid, wire::kTagInboundRing, node.inbound_memory.region(), 0, inbound_bytes);
        if (exposed) {
            exposed = transport.expose(nodeid, wire::kTagDeliveryCredit, credit_memory_.region(),
                                       index * kCreditLineBytes, sizeof(uint64_t));
        }
        if (!exposed) {
            error = exposed.message();
            return false;
        }
    }
    if (transport::Status listening = transport.listen(); !listening) {
        error = "cannot listen for the other nodes: " + listening.message();
        return false;
    }
    if (!config_.device_copies) {
        log(LogLevel::info, "node {} is the sequencer of {} configured nodes; it copies payloads with the CPU",
            config_.nodeid, config_.nodes.size());
        return true;
    }
    transport::Status loopback =
        transport.expose(config_.nodeid, wire::kTagOwnRing, ring_registration_.id(), 0, ring_.mapping_bytes());
    if (loopback) {
        loopback = transport.connect(config_.nodeid);
    }
    if (!loopback) {
        log(LogLevel::warning, "no loopback connection ({}); the sequencer copies payloads with the CPU",
            loopback.message());
    }
    log(LogLevel::info, "node {} is the sequencer of {} configured nodes", config_.nodeid, config_.nodes.size());
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
    transport::Status exposed =
        transport.expose(sequencer_, wire::kTagDeliveryRing, ring_registration_.id(), 0, ring_.mapping_bytes());
    if (exposed) {
        exposed = transport.expose(sequencer_, wire::kTagSnapshot, member_memory_.region(), ipc::kPageBytes,
                                   wire::kSnapshotRegionBytes);
    }
    if (exposed) {
        exposed = transport.expose(sequencer_, wire::kTagInboundCredit, member_memory_.region(), 0, sizeof(uint64_t));
    }
    if (!exposed) {
        error = exposed.message();
        return false;
    }
    log(LogLevel::info, "node {} joins the cluster through sequencer {}; clients are served once it is admitted",
        config_.nodeid, sequencer_);
    return true;
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
    if ((role_ == Role::member && (!connected_ || !admitted_ || forwarded_uncommitted_)) || replication_blocked_) {
        return Sleep::poll_soon;
    }
    // The sequencer waits for credit this node could not give yet: its clients free ring
    // space without waking anyone, so look again soon instead of sleeping until the
    // idle wake-up while the whole cluster stands still.
    if (role_ == Role::member && load_word(&ring_.header().credit_request) > published_credit_) {
        return Sleep::poll_soon;
    }
    if (!transport_->arm_wait()) {
        return Sleep::busy;
    }
    // What landed before the arming raised no wake-up: look once more.
    return step(now_ms) ? Sleep::busy : Sleep::sleep;
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
    if (role_ == Role::member) {
        if (!connected_ && !connecting_ && !leaving_ && now_ms >= next_connect_ms_) {
            if (transport_->connect(sequencer_)) {
                connecting_ = true;
            } else {
                next_connect_ms_ = now_ms + kReconnectIntervalMs;
            }
        }
        worked |= apply_delivered();
        if (admitted_) {
            publish_member_credit();
        }
        return worked;
    }
    // Sequencer: retry what a full send queue held back; ask for credits when blocked.
    replicate();
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
    if ((event.kind == transport::EventKind::disconnected || event.kind == transport::EventKind::refused) &&
        event.reason != transport::DisconnectReason::local_close) {
        ++counters_.rdma_errors;
    }
    if (role_ == Role::sequencer) {
        on_sequencer_event(event);
    } else {
        on_member_event(event);
    }
}

void Node::on_sequencer_event(const transport::Event& event)
{
    transport::Transport& transport = *transport_;
    if (event.peer == config_.nodeid) {
        switch (event.kind) {
        case transport::EventKind::connected:
            own_ring_ = transport.remote_region(config_.nodeid, wire::kTagOwnRing);
            if (!own_ring_ || own_ring_->bytes != ring_.mapping_bytes()) {
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
            return;
        }
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
        // `held` stays: device copies may still read those bytes, so the node may not
        // reconnect (and its new writer overwrite them) before they completed.
        node.stream.reset();
        node.stream_end.reset();
        node.snapshot_memory.reset();
        if (node.state == RemoteStatus::State::member || node.state == RemoteStatus::State::leaving) {
            pending_removals_.push_back(node.nodeid);
        }
        node.state = RemoteStatus::State::absent;
        return;
    }
    case transport::EventKind::write_completed:
    case transport::EventKind::read_completed:
    case transport::EventKind::imm_received:
        return;  // a wake-up only: the ring words say what landed
    }
}

void Node::on_member_event(const transport::Event& event)
{
    transport::Transport& transport = *transport_;
    if (event.peer != sequencer_) {
        return;
    }
    switch (event.kind) {
    case transport::EventKind::connected: {
        connecting_ = false;
        auto* credit_word = reinterpret_cast<uint64_t*>(member_memory_.data());
        store_word(credit_word, 0);
        auto inbound = transport.remote_region(sequencer_, wire::kTagInboundRing);
        delivery_credit_ = transport.remote_region(sequencer_, wire::kTagDeliveryCredit);
        if (!inbound || !delivery_credit_) {
            log(LogLevel::error, "the sequencer did not expose its rings to node {}", config_.nodeid);
            failed_ = true;
            return;
        }
        auto writer = transport::RingWriter::create(transport, sequencer_, *inbound, credit_word);
        if (!writer) {
            log(LogLevel::error, "inbound ring: {}", writer.status().message());
            failed_ = true;
            return;
        }
        writer_.emplace(std::move(*writer));
        writer_->wake_reader_for_credits(kWakeImmediate);
        connected_ = true;
        const wire::Hello hello{wire::kClusterProtocolVersion, config_.nodeid, ring_.data_bytes()};
        if (!writer_->append_copy(static_cast<uint32_t>(wire::InboundType::hello), std::as_bytes(std::span(&hello, 1))) ||
            !writer_->commit(false, 0, kWakeImmediate)) {
            log(LogLevel::error, "cannot send the hello to the sequencer");
            failed_ = true;
            return;
        }
        log(LogLevel::info, "connected to sequencer {}; asking to be admitted", sequencer_);
        return;
    }
    case transport::EventKind::disconnected:
    case transport::EventKind::refused:
        connecting_ = false;
        connected_ = false;
        writer_.reset();
        if (leaving_) {
            left_ = true;
        } else if (admitted_) {
            log(LogLevel::error, "lost the sequencer (node {}): {} {}; this node cannot go on", sequencer_,
                transport::to_string(event.reason), event.detail.message());
            failed_ = true;
        } else {
            log(LogLevel::debug, "sequencer {} not reachable yet ({}); retrying", sequencer_,
                transport::to_string(event.reason));
            next_connect_ms_ = now_ms_ + kReconnectIntervalMs;
        }
        return;
    case transport::EventKind::write_completed:
        on_batch_completed(event.wr_id);
        return;
    case transport::EventKind::read_completed:
    case transport::EventKind::imm_received:
        return;  // a wake-up only: the tail word says what landed
    }
}

// ---------------------------------------------------------------------------------------
// Sequencing (single and sequencer)

uint64_t Node::reclaim_limit()
{
    uint64_t limit = local_.local_reclaim_limit();
    for (auto& [nodeid, node] : remotes_) {
        if (node.stream) {
            limit = std::min(limit, node.stream->credit());
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
    ++counters_.messages_sequenced;
    counters_.bytes_sequenced += length;
    // Sequencing writes into this node's own ring: delivered here as on every other node.
    ++counters_.messages_delivered;
    counters_.bytes_delivered += length;
    return entry;
}

bool Node::sequence_data(uint32_t group_id, ProcessId process, uint16_t flags, uint32_t total_bytes,
                         std::span<const std::byte> payload)
{
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
    const auto payload_offset =
        static_cast<uint64_t>(ring_.payload(entry) - static_cast<std::byte*>(ring_.mapping_address()));
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
    const uint64_t tail = publishable_tail();
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

uint64_t Node::publishable_tail() const
{
    if (!copies_in_flight_.empty()) {
        return copies_in_flight_.front().first_position;
    }
    return staged_copies_.empty() ? ring_.unpublished_tail() : first_staged_position_;
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

bool Node::drain_inbound(bool& blocked)
{
    ring_was_blocked_ = false;
    if (role_ != Role::sequencer) {
        return false;
    }
    bool worked = false;
    // Nodes that left or failed: NODEDOWN for their processes, then the new view.
    while (!pending_removals_.empty()) {
        const uint32_t nodeid = pending_removals_.front();
        bool done = true;
        for (auto& [name, processes] : groups_.processes_of_node(nodeid)) {
            if (!sequence_removal(name, processes, CPG_REASON_NODEDOWN)) {
                done = false;
                break;
            }
        }
        if (!done) {
            ring_was_blocked_ = true;
            break;
        }
        std::vector<uint32_t> members = view_.members;
        std::erase(members, nodeid);
        if (members != view_.members) {
            std::swap(members, view_.members);
            ++view_.ring_seq;
            if (!sequence_totem()) {
                std::swap(members, view_.members);
                --view_.ring_seq;
                ring_was_blocked_ = true;
                break;
            }
            log(LogLevel::info, "node {} left the view; members now {}", nodeid, fmt::join(view_.members, " "));
        }
        pending_removals_.pop_front();
        worked = true;
        // A cleanly leaving node gets its own removal, then its stream ends (replicate()).
        if (auto found = remotes_.find(nodeid); found != remotes_.end() && found->second.stream) {
            found->second.stream_end = ring_.unpublished_tail();
            replicate();
        }
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
            record_copied_by_device_ = false;
            if (!sequence_inbound(node, *decoded)) {
                node.pending = record;
                ring_was_blocked_ = true;
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

bool Node::sequence_inbound(Remote& node, const wire::InboundRecord& record)
{
    const bool member = node.state == RemoteStatus::State::member;
    switch (record.type) {
    case wire::InboundType::hello:
        return admit(node, std::get<wire::Hello>(record.body));
    case wire::InboundType::data: {
        const auto& data = std::get<wire::Data>(record.body);
        const ProcessId process{node.nodeid, data.prefix.pid};
        const GroupName* name = groups_.name_of(data.prefix.group_id);
        if (!member || name == nullptr || !groups_.is_member(*name, process) ||
            (data.prefix.flags & ~ipc::kSubmissionFlags) != 0) {
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
        if (!member) {
            return true;
        }
        if (record.type == wire::InboundType::join) {
            if (groups_.check_join(op.group, process) == JoinCheck::already_member) {
                return true;
            }
            return sequence_change(op.group, process, CPG_REASON_JOIN);
        }
        return sequence_removal(op.group, {process},
                                record.type == wire::InboundType::leave ? CPG_REASON_LEAVE : CPG_REASON_PROCDOWN);
    }
    case wire::InboundType::node_leave:
        if (member) {
            node.state = RemoteStatus::State::leaving;
            pending_removals_.push_back(node.nodeid);
        }
        return true;
    }
    return true;
}

bool Node::admit(Remote& node, const wire::Hello& hello)
{
    transport::Transport& transport = *transport_;
    if (node.state != RemoteStatus::State::connected || hello.nodeid != node.nodeid ||
        hello.protocol_version != wire::kClusterProtocolVersion || hello.ring_bytes != ring_.data_bytes()) {
        log(LogLevel::error, "node {} cannot be admitted: protocol {} (need {}), ring {} bytes (need {})", node.nodeid,
            hello.protocol_version, wire::kClusterProtocolVersion, hello.ring_bytes, ring_.data_bytes());
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
    snapshot.groups = groups_.snapshot();
    const std::vector<std::byte> bytes = wire::encode_snapshot(snapshot);
    auto remote_snapshot = transport.remote_region(node.nodeid, wire::kTagSnapshot);
    auto remote_ring = transport.remote_region(node.nodeid, wire::kTagDeliveryRing);
    if (!remote_snapshot || !remote_ring ||
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
    store_word(node.credit_word, snapshot.start_position);
    auto stream = DeliveryStream::create(transport, node.nodeid, *remote_ring, ring_registration_.id(),
                                         ring_.data_bytes(), node.credit_word, snapshot.start_position);
    transport::Status posted = stream ? transport.post_writes(node.nodeid, writes) : stream.status();
    if (!posted) {
        log(LogLevel::error, "node {} cannot be admitted: {}", node.nodeid, posted.message());
        transport.disconnect(node.nodeid);
        return true;
    }
    node.stream.emplace(std::move(*stream));
    node.state = RemoteStatus::State::member;
    view_.members.insert(std::upper_bound(view_.members.begin(), view_.members.end(), node.nodeid), node.nodeid);
    ++view_.ring_seq;
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
    if (!writer_) {
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
    return true;
}

bool Node::forward_group_op(uint32_t pid, const GroupName& name, cpg_reason_t reason)
{
    if (!writer_) {
        return false;
    }
    const wire::InboundType type = reason == CPG_REASON_JOIN    ? wire::InboundType::join
                                   : reason == CPG_REASON_LEAVE ? wire::InboundType::leave
                                                                : wire::InboundType::procdown;
    const std::vector<std::byte> record = wire::encode_group_op(pid, name);
    if (!writer_->append_copy(static_cast<uint32_t>(type), record)) {
        return false;
    }
    forwarded_uncommitted_ = true;
    commit_forwarded();
    return true;
}

bool Node::commit_forwarded()
{
    if (!forwarded_uncommitted_ || !writer_) {
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
    if (role_ != Role::member || !connected_ || !admitted_ || !writer_) {
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
    const uint64_t ready = load_word(region);
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
    const uint64_t committed = load_word(&ring_.header().cluster_tail);
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
        const bool in_order = entry && (entry->kind == EntryKind::pad || entry->seq == ring_.next_seq());
        if (!in_order) {
            ++counters_.protocol_violations;
            log(LogLevel::error, "the sequencer wrote a malformed or out-of-order entry at position {}; leaving",
                position);
            failed_ = true;
            return false;
        }
        processed_ = position + entry->entry_bytes;
        if (entry->kind == EntryKind::pad) {
            ring_.adopt(ring_.last_position(), processed_, ring_.next_seq());
            continue;
        }
        ring_.adopt(position, processed_, entry->seq + 1);
        const std::span<const std::byte> payload(at + entry->payload_offset, entry->payload_bytes);
        switch (entry->kind) {
        case EntryKind::data:
            ++counters_.messages_delivered;
            counters_.bytes_delivered += entry->payload_bytes;
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
            view_ = {totem->members, totem->ring_seq, totem->ring_nodeid};
            if (std::find(view_.members.begin(), view_.members.end(), config_.nodeid) == view_.members.end() &&
                leaving_) {
                left_ = true;
            }
            break;
        }
        case EntryKind::pad:
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

void Node::publish_member_credit()
{
    if (!connected_ || !delivery_credit_) {
        return;
    }
    const uint64_t limit = std::min(reclaim_limit(), processed_);
    if (limit <= published_credit_) {
        return;
    }
    const uint64_t requested = load_word(&ring_.header().credit_request);
    if (limit - published_credit_ < ring_.data_bytes() / kCreditPublishDivisor && requested <= published_credit_) {
        return;
    }
    const uint64_t word = limit;
    transport::WriteRequest write;
    write.inline_bytes = std::as_bytes(std::span<const uint64_t>(&word, 1));
    write.destination = delivery_credit_->at(0);
    if (transport_->post_write(sequencer_, write)) {
        published_credit_ = limit;
    }
}

}  // namespace rcpg::ordering
