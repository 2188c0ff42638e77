#include "transport/memory_transport.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace rcpg::transport {
namespace {

// Nonces of the in-process fabric come from its seed, not getrandom: a run replays
// exactly, and there is no attacker in it.
void fill_nonce(std::mt19937_64& random, wire::Nonce& nonce)
{
    for (size_t i = 0; i < nonce.size(); i += sizeof(uint64_t)) {
        const uint64_t word = random();
        std::memcpy(nonce.data() + i, &word, std::min(sizeof word, nonce.size() - i));
    }
}

std::string node_text(NodeId node) { return "node " + std::to_string(node); }

Event make_event(EventKind kind, NodeId peer, DisconnectReason reason = DisconnectReason::local_close, Status detail = {})
{
    Event event;
    event.kind = kind;
    event.peer = peer;
    event.reason = reason;
    event.detail = std::move(detail);
    return event;
}

bool allows(RegionAccess access, bool write)
{
    switch (access) {
    case RegionAccess::local: return false;
    case RegionAccess::remote_write: return write;
    case RegionAccess::remote_read: return !write;
    case RegionAccess::remote_read_write: return true;
    }
    return false;
}

}  // namespace

// ------------------------------------------------------------------------------ fabric

MemoryFabric::MemoryFabric(uint64_t seed, FaultConfig faults) : seed_(seed), faults_(faults), random_(seed) {}

void MemoryFabric::attach(MemoryTransport* endpoint) { endpoints_[endpoint->self()] = endpoint; }

void MemoryFabric::detach(NodeId node)
{
    crash(node);
    endpoints_.erase(node);
}

void MemoryFabric::crash(NodeId node)
{
    auto it = endpoints_.find(node);
    if (it == endpoints_.end()) {
        return;
    }
    it->second->dead_ = true;
    for (auto& [pair, link] : links_) {
        if (pair.first == node || pair.second == node) {
            const NodeId other = pair.first == node ? pair.second : pair.first;
            // The kernel of a dead process closes its connections: peers hear at once.
            break_link(node, other, std::nullopt, DisconnectReason::remote_close, node_text(node) + " crashed");
        }
    }
}

void MemoryFabric::partition(const std::set<NodeId>& side)
{
    partition_side_ = side;
    for (auto& [pair, link] : links_) {
        if (link.up && across(pair.first, pair.second)) {
            break_link(pair.first, pair.second, DisconnectReason::retry_exceeded, DisconnectReason::retry_exceeded,
                       "partitioned");
        }
    }
}

void MemoryFabric::disconnect(NodeId a, NodeId b)
{
    break_link(a, b, DisconnectReason::retry_exceeded, DisconnectReason::retry_exceeded, "injected disconnect");
}

MemoryFabric::Link* MemoryFabric::live_link(NodeId a, NodeId b, uint64_t epoch)
{
    auto it = links_.find(key(a, b));
    return (it != links_.end() && it->second.up && it->second.epoch == epoch) ? &it->second : nullptr;
}

void MemoryFabric::break_link(NodeId a, NodeId b, std::optional<DisconnectReason> tell_a,
                              std::optional<DisconnectReason> tell_b, const std::string& why)
{
    Link& link = links_[key(a, b)];
    link.up = false;
    link.epoch = 0;  // operations in flight on it are dropped at delivery
    const auto tell = [&](NodeId self, NodeId peer, std::optional<DisconnectReason> reason) {
        auto it = endpoints_.find(self);
        if (it == endpoints_.end() || it->second->dead_) {
            return;
        }
        if (it->second->peers_.erase(peer) > 0 && reason) {
            it->second->push(make_event(EventKind::disconnected, peer, *reason, {Errc::not_connected, Layer::api, why}));
        }
    };
    tell(a, b, tell_a);
    tell(b, a, tell_b);
}

void MemoryFabric::post(Op op)
{
    const uint32_t spread = faults_.max_delay_ms - std::min(faults_.min_delay_ms, faults_.max_delay_ms);
    const uint64_t delay = faults_.min_delay_ms + (spread == 0 ? 0 : random_() % (uint64_t{spread} + 1));
    if (faults_.disconnect_probability > 0 && op.kind != OpKind::connect &&
        std::uniform_real_distribution<double>(0.0, 1.0)(random_) < faults_.disconnect_probability) {
        op.kind = OpKind::fault;
    }
    Link& link = links_[key(op.from, op.to)];
    uint64_t& last = link.last_delivery_ms[op.from];
    const uint64_t at = std::max(now_ms_ + delay, last);  // one direction of a link stays in order
    last = at;
    queue_.emplace(std::pair{at, next_seq_++}, std::move(op));
}

bool MemoryFabric::has_due(NodeId node) const
{
    for (auto it = queue_.begin(); it != queue_.end() && it->first.first <= now_ms_; ++it) {
        if (it->second.from == node || it->second.to == node) {
            return true;
        }
    }
    return false;
}

void MemoryFabric::advance(uint64_t now_ms)
{
    now_ms_ = std::max(now_ms_, now_ms);
    while (!queue_.empty() && queue_.begin()->first.first <= now_ms_) {
        Op op = std::move(queue_.begin()->second);
        queue_.erase(queue_.begin());
        deliver(op);
    }
}

void MemoryFabric::deliver_connect(Op& op)
{
    auto from = endpoints_.find(op.from);
    if (from == endpoints_.end() || from->second->dead_) {
        return;
    }
    MemoryTransport& a = *from->second;
    auto attempt = a.peers_.find(op.to);
    if (attempt == a.peers_.end() || attempt->second.epoch != op.epoch || attempt->second.connected) {
        return;  // withdrawn or replaced meanwhile
    }
    auto to = endpoints_.find(op.to);
    if (to == endpoints_.end() || to->second->dead_ || (!to->second->listening_ && op.from != op.to) ||
        across(op.from, op.to)) {
        a.peers_.erase(attempt);
        a.push(make_event(EventKind::disconnected, op.to, DisconnectReason::unreachable,
                          {Errc::not_connected, Layer::cm, "nothing listens at " + node_text(op.to)}));
        return;
    }
    MemoryTransport& b = *to->second;
    if (op.from == op.to) {
        // Loopback: no handshake, the node's own exposures to itself.
        Link& link = links_[key(op.from, op.to)];
        link.up = true;
        link.epoch = op.epoch;
        MemoryTransport::Peer& self = a.peers_[op.to];
        self.connected = true;
        self.remote = a.grant_windows(op.to, op.epoch);
        a.push(make_event(EventKind::connected, op.to));
        return;
    }
    // The same checks, in the same order, as VerbsTransport's: the request at the
    // responder, the accept at the initiator, the proof at the responder, in one delivery
    // (nothing else can happen in between here). Queue pair numbers are the epoch.
    const auto refuse = [&](wire::RejectReason reason, const std::string& why) {
        a.peers_.erase(op.to);
        a.push(make_event(EventKind::refused, op.to, DisconnectReason::refused,
                          {Errc::refused, Layer::handshake, node_text(op.to) + " refused us: " + wire::to_string(reason)}));
        // Never under the node id the attempt claims: it proved nothing.
        b.push(make_event(EventKind::incoming_refused, 0, DisconnectReason::refused,
                          {Errc::refused, Layer::handshake, "refused a connect request: " + why}));
    };
    auto request = wire::decode_request(op.bytes, b.key_);
    if (!request) {
        refuse(request.status().code() == Errc::refused ? wire::RejectReason::bad_cluster_key : wire::RejectReason::malformed_request,
               request.status().context());
        return;
    }
    if (request->from_node == b.self() || find_node(b.config_, request->from_node) == nullptr) {
        refuse(wire::RejectReason::unknown_node, node_text(request->from_node) + " is not in the node list");
        return;
    }
    if (request->to_node != b.self()) {
        refuse(wire::RejectReason::wrong_target, "addressed to " + node_text(request->to_node));
        return;
    }
    wire::Transcript transcript{op.from, op.to, request->nonce, {}, static_cast<uint32_t>(op.epoch),
                                static_cast<uint32_t>(op.epoch >> 32) ^ 0x80000000u};
    fill_nonce(random_, transcript.responder_nonce);
    const auto accept = wire::encode_accept(transcript, b.key_);
    wire::Transcript expected = transcript;
    expected.responder_nonce = {};
    expected.initiator_nonce = attempt->second.nonce;
    auto answered = wire::decode_accept(accept, a.key_, expected);
    if (!answered) {
        refuse(wire::RejectReason::bad_cluster_key, answered.status().context());
        return;
    }
    if (Status proven = wire::check_proof(wire::encode_proof(*answered, a.key_), b.key_, transcript); !proven) {
        refuse(wire::RejectReason::bad_cluster_key, proven.context());
        return;
    }
    if (auto existing = b.peers_.find(op.from); existing != b.peers_.end()) {
        if (!existing->second.connected && b.self() > op.from) {
            b.peers_.erase(existing);  // both connecting: the lower node id's attempt wins
        } else {
            refuse(wire::RejectReason::duplicate, "a connection with " + node_text(op.from) + " exists");
            return;
        }
    }
    Link& link = links_[key(op.from, op.to)];
    link.up = true;
    link.epoch = op.epoch;
    MemoryTransport::Peer& a_side = a.peers_[op.to];
    a_side.connected = true;
    a_side.remote = b.grant_windows(op.from, op.epoch);
    MemoryTransport::Peer& b_side = b.peers_[op.from];
    b_side = MemoryTransport::Peer{};
    b_side.connected = true;
    b_side.epoch = op.epoch;
    b_side.remote = a.grant_windows(op.to, op.epoch);
    b.push(make_event(EventKind::connected, op.from));
    a.push(make_event(EventKind::connected, op.to));
}

void MemoryFabric::deliver(Op& op)
{
    if (op.kind == OpKind::connect) {
        deliver_connect(op);
        return;
    }
    if (live_link(op.from, op.to, op.epoch) == nullptr) {
        return;  // the connection broke after the post: the sender was told then
    }
    MemoryTransport& a = *endpoints_.at(op.from);
    MemoryTransport& b = *endpoints_.at(op.to);
    if (auto peer = a.peers_.find(op.to);
        op.kind != OpKind::grant && peer != a.peers_.end() && peer->second.in_flight > 0) {
        --peer->second.in_flight;
    }
    if (op.kind == OpKind::grant) {
        // Like the grant SEND: it arrives behind everything posted before it.
        if (auto peer = b.peers_.find(op.from); peer != b.peers_.end() && peer->second.connected) {
            peer->second.remote = std::move(op.regions);
            b.push(make_event(EventKind::regions_changed, op.from));
        }
        return;
    }
    if (op.kind == OpKind::fault) {
        break_link(op.from, op.to, DisconnectReason::retry_exceeded, DisconnectReason::retry_exceeded, "injected connection drop");
        return;
    }
    if (op.kind == OpKind::read) {
        std::span<std::byte> destination = a.slice_bytes(op.read_destination);
        const std::byte* source = b.remote_target(op.remote, op.read_destination.bytes, false, op.from, op.epoch);
        if (source == nullptr || destination.empty()) {
            break_link(op.from, op.to, DisconnectReason::qp_error, DisconnectReason::qp_error, "remote access error on read");
            return;
        }
        std::memcpy(destination.data(), source, destination.size());
        b.wake_.signal();  // its memory was read: a hint, as for every operation delivered to it
        Event event = make_event(EventKind::read_completed, op.to);
        event.wr_id = op.wr_id;
        a.push(std::move(event));
        return;
    }
    // A write. Sources are read now, at "DMA" time, as a NIC would read them.
    size_t bytes = op.bytes.size();
    for (const LocalSlice& slice : op.sources) {
        bytes += slice.bytes;
    }
    std::byte* target = b.remote_target(op.remote, bytes, true, op.from, op.epoch);
    if (target == nullptr && bytes > 0) {
        break_link(op.from, op.to, DisconnectReason::qp_error, DisconnectReason::qp_error, "remote access error on write");
        return;
    }
    if (!op.bytes.empty()) {
        std::memcpy(target, op.bytes.data(), op.bytes.size());
    }
    size_t at = op.bytes.size();
    for (const LocalSlice& slice : op.sources) {
        std::span<std::byte> source = a.slice_bytes(slice);
        if (source.size() != slice.bytes) {
            break_link(op.from, op.to, DisconnectReason::qp_error, DisconnectReason::qp_error, "local protection error");
            return;
        }
        std::memcpy(target + at, source.data(), source.size());
        at += source.size();
    }
    // Bytes landed in its memory (a ring record, a tail): wake it even without an imm.
    b.wake_.signal();
    if (op.imm) {
        Event event = make_event(EventKind::imm_received, op.from);
        event.imm = *op.imm;
        b.push(std::move(event));
    }
    if (op.signaled) {
        Event event = make_event(EventKind::write_completed, op.to);
        event.wr_id = op.wr_id;
        a.push(std::move(event));
    }
}

// ------------------------------------------------------------------------------ endpoint

MemoryTransport::MemoryTransport(MemoryFabric& fabric, TransportConfig config)
    : fabric_(&fabric), config_(std::move(config)), config_status_(validate_config(config_))
{
    if (config_status_) {
        auto key = derive_handshake_key(config_.cluster_key);
        if (key) {
            key_ = *key;
        } else {
            config_status_ = key.status();
        }
    }
    fabric_->attach(this);
}

MemoryTransport::~MemoryTransport()
{
    auto it = fabric_->endpoints_.find(config_.self);
    if (it != fabric_->endpoints_.end() && it->second == this) {
        fabric_->detach(config_.self);
    }
}

Status MemoryTransport::listen()
{
    if (!config_status_) {
        return config_status_;
    }
    listening_ = true;
    return {};
}

Status MemoryTransport::connect(NodeId peer)
{
    if (!config_status_) {
        return config_status_;
    }
    if (dead_) {
        return {Errc::not_connected, Layer::api, "endpoint crashed"};
    }
    if (find_node(config_, peer) == nullptr) {
        return {Errc::not_found, Layer::api, node_text(peer) + " is not a peer in the node list"};
    }
    if (peers_.contains(peer)) {
        return {Errc::invalid_argument, Layer::api, "a connection with " + node_text(peer) + " exists"};
    }
    Peer& state = peers_[peer];
    state.epoch = fabric_->next_epoch_++;
    fill_nonce(fabric_->random_, state.nonce);
    MemoryFabric::Op op;
    op.kind = MemoryFabric::OpKind::connect;
    op.from = config_.self;
    op.to = peer;
    op.epoch = state.epoch;
    const auto request = wire::encode_request({config_.self, peer, state.nonce}, key_);
    op.bytes.assign(request.begin(), request.end());
    fabric_->post(std::move(op));
    return {};
}

void MemoryTransport::disconnect(NodeId peer)
{
    auto it = peers_.find(peer);
    if (it == peers_.end()) {
        return;
    }
    if (it->second.connected) {
        fabric_->break_link(config_.self, peer, DisconnectReason::local_close, DisconnectReason::remote_close, "closed by " + node_text(config_.self));
    } else {
        peers_.erase(it);  // an attempt: its connect op is dropped on delivery
        push(make_event(EventKind::disconnected, peer, DisconnectReason::local_close));
    }
}

bool MemoryTransport::is_connected(NodeId peer) const
{
    auto it = peers_.find(peer);
    return !dead_ && it != peers_.end() && it->second.connected;
}

MemoryTransport::Peer* MemoryTransport::connected_peer(NodeId peer)
{
    auto it = peers_.find(peer);
    return (!dead_ && it != peers_.end() && it->second.connected) ? &it->second : nullptr;
}

Result<RegionId> MemoryTransport::register_region(void* addr, size_t bytes, RegionAccess access)
{
    if (addr == nullptr || bytes == 0) {
        return Status{Errc::invalid_argument, Layer::memory, "register: empty range"};
    }
    regions_.push_back(Region{static_cast<std::byte*>(addr), bytes, access, fabric_->next_rkey_++});
    return RegionId{static_cast<uint32_t>(regions_.size())};
}

Status MemoryTransport::deregister_region(RegionId region)
{
    if (region.value == 0 || region.value > regions_.size() || !regions_[region.value - 1]) {
        return {Errc::not_found, Layer::memory, "no region " + std::to_string(region.value)};
    }
    regions_[region.value - 1].reset();
    for (auto& [peer, tags] : exposures_) {
        std::erase_if(tags, [&](const auto& entry) { return entry.second.region == region; });
    }
    return {};
}

std::span<std::byte> MemoryTransport::region_bytes(RegionId region) const
{
    if (region.value == 0 || region.value > regions_.size() || !regions_[region.value - 1]) {
        return {};
    }
    const Region& r = *regions_[region.value - 1];
    return {r.addr, r.bytes};
}

std::span<std::byte> MemoryTransport::slice_bytes(const LocalSlice& slice) const
{
    const std::span<std::byte> region = region_bytes(slice.region);
    if (slice.offset > region.size() || slice.bytes > region.size() - slice.offset) {
        return {};
    }
    return region.subspan(slice.offset, slice.bytes);
}

std::byte* MemoryTransport::remote_target(RemoteAddr remote, size_t bytes, bool write, NodeId from, uint64_t epoch) const
{
    if (dead_) {
        return nullptr;
    }
    const auto window = windows_.find(remote.rkey);
    if (window == windows_.end() || window->second.peer != from || window->second.epoch != epoch) {
        return nullptr;  // no window, or one of another connection: refused like a bad rkey
    }
    const Window& w = window->second;
    const auto& region = regions_[w.region.value - 1];
    if (!region || !allows(region->access, write) || !allows(w.access, write)) {
        return nullptr;
    }
    const auto base = reinterpret_cast<uint64_t>(region->addr) + w.offset;
    if (remote.addr >= base && remote.addr - base <= w.bytes && bytes <= w.bytes - (remote.addr - base)) {
        return region->addr + w.offset + (remote.addr - base);
    }
    return nullptr;
}

Status MemoryTransport::expose(NodeId peer, uint32_t tag, RegionId region, uint64_t offset, uint64_t bytes,
                               RegionAccess access)
{
    const std::span<std::byte> r = region_bytes(region);
    if (r.empty()) {
        return {Errc::not_found, Layer::api, "expose: no region " + std::to_string(region.value)};
    }
    if (bytes == 0 || offset > r.size() || bytes > r.size() - offset) {
        return {Errc::invalid_argument, Layer::api, "expose: range leaves the region"};
    }
    access = common_access(access, regions_[region.value - 1]->access);
    if (access == RegionAccess::local) {
        return {Errc::invalid_argument, Layer::api, "expose: the region does not allow that access"};
    }
    auto& tags = exposures_[peer];
    if (tags.size() >= wire::kMaxExposedRegions && !tags.contains(tag)) {
        return {Errc::invalid_argument, Layer::api, "expose: too many regions for one peer"};
    }
    if (auto same = tags.find(tag); same != tags.end() && same->second.region == region &&
                                    same->second.offset == offset && same->second.bytes == bytes &&
                                    same->second.access == access) {
        return {};  // exposed so already: no new window, no grant
    }
    tags[tag] = Exposure{region, offset, bytes, access};
    exposures_changed(peer);
    return {};
}

void MemoryTransport::withdraw(NodeId peer, uint32_t tag)
{
    auto it = exposures_.find(peer);
    if (it == exposures_.end() || it->second.erase(tag) == 0) {
        return;
    }
    exposures_changed(peer);
}

void MemoryTransport::exposures_changed(NodeId peer)
{
    auto state = peers_.find(peer);
    if (dead_ || state == peers_.end() || !state->second.connected) {
        return;  // the next connection is granted what is exposed then
    }
    if (peer == config_.self) {
        state->second.remote = grant_windows(peer, state->second.epoch);
        return;
    }
    MemoryFabric::Op op;
    op.kind = MemoryFabric::OpKind::grant;
    op.from = config_.self;
    op.to = peer;
    op.epoch = state->second.epoch;
    op.regions = grant_windows(peer, state->second.epoch);
    fabric_->post(std::move(op));
}

std::map<uint32_t, RemoteRegion> MemoryTransport::grant_windows(NodeId peer, uint64_t epoch)
{
    static const std::map<uint32_t, Exposure> kNone;
    auto found = exposures_.find(peer);
    const std::map<uint32_t, Exposure>& exposed = found == exposures_.end() ? kNone : found->second;
    // Windows of the peer's older connections, and those no longer exposed as they were.
    std::erase_if(windows_, [&](const auto& entry) {
        const Window& w = entry.second;
        if (w.peer != peer) {
            return false;
        }
        auto now = exposed.find(w.tag);
        return w.epoch != epoch || now == exposed.end() || now->second.region != w.region ||
               now->second.offset != w.offset || now->second.bytes != w.bytes || now->second.access != w.access;
    });
    std::map<uint32_t, RemoteRegion> result;
    for (const auto& [rkey, w] : windows_) {
        if (w.peer == peer) {
            const Region& region = *regions_[w.region.value - 1];
            result[w.tag] = RemoteRegion{reinterpret_cast<uint64_t>(region.addr) + w.offset, rkey, w.bytes};
        }
    }
    for (const auto& [tag, exposure] : exposed) {
        if (result.contains(tag)) {
            continue;
        }
        const Region& region = *regions_[exposure.region.value - 1];
        const uint32_t rkey = fabric_->next_rkey_++;
        windows_[rkey] = Window{peer, epoch, tag, exposure.region, exposure.offset, exposure.bytes, exposure.access};
        result[tag] = RemoteRegion{reinterpret_cast<uint64_t>(region.addr) + exposure.offset, rkey, exposure.bytes};
    }
    return result;
}

std::optional<RemoteRegion> MemoryTransport::remote_region(NodeId peer, uint32_t tag) const
{
    auto it = peers_.find(peer);
    if (dead_ || it == peers_.end() || !it->second.connected) {
        return std::nullopt;
    }
    auto region = it->second.remote.find(tag);
    return region == it->second.remote.end() ? std::nullopt : std::optional(region->second);
}

Status MemoryTransport::post_writes(NodeId peer, std::span<const WriteRequest> writes)
{
    Peer* state = connected_peer(peer);
    if (state == nullptr) {
        return {Errc::not_connected, Layer::api, "no established connection with " + node_text(peer)};
    }
    if (state->in_flight + writes.size() > config_.queues.send_queue_depth) {
        return {Errc::try_again, Layer::queue_pair, "send queue full"};
    }
    for (const WriteRequest& write : writes) {
        if (peer == config_.self && write.imm) {
            return {Errc::invalid_argument, Layer::api, "a loopback write cannot carry an immediate"};
        }
        if (!write.inline_bytes.empty() && !write.sources.empty()) {
            return {Errc::invalid_argument, Layer::queue_pair, "write has both inline bytes and sources"};
        }
        if (write.inline_bytes.size() > max_inline_bytes() || write.sources.size() > kMaxSourcesPerWrite) {
            return {Errc::invalid_argument, Layer::queue_pair, "inline write too large or too many sources"};
        }
        for (const LocalSlice& slice : write.sources) {
            if (slice_bytes(slice).size() != slice.bytes || (slice.bytes == 0 && region_bytes(slice.region).empty())) {
                return {Errc::invalid_argument, Layer::memory, "slice leaves region " + std::to_string(slice.region.value)};
            }
        }
    }
    for (const WriteRequest& write : writes) {
        MemoryFabric::Op op;
        op.kind = MemoryFabric::OpKind::write;
        op.from = config_.self;
        op.to = peer;
        op.epoch = state->epoch;
        op.bytes.assign(write.inline_bytes.begin(), write.inline_bytes.end());
        size_t total = 0;
        for (const LocalSlice& slice : write.sources) {
            total += slice.bytes;
        }
        if (total <= max_inline_bytes()) {
            // Small writes are copied at post time, as the verbs transport inlines them.
            for (const LocalSlice& slice : write.sources) {
                const std::span<std::byte> bytes = slice_bytes(slice);
                op.bytes.insert(op.bytes.end(), bytes.begin(), bytes.end());
            }
        } else {
            op.sources.assign(write.sources.begin(), write.sources.end());
        }
        op.remote = write.destination;
        op.wr_id = write.wr_id;
        op.signaled = write.signaled;
        op.imm = write.imm;
        ++state->in_flight;
        fabric_->post(std::move(op));
    }
    return {};
}

Status MemoryTransport::post_read(NodeId peer, LocalSlice destination, RemoteAddr source, uint64_t wr_id)
{
    Peer* state = connected_peer(peer);
    if (state == nullptr) {
        return {Errc::not_connected, Layer::api, "no established connection with " + node_text(peer)};
    }
    if (state->in_flight + 1 > config_.queues.send_queue_depth) {
        return {Errc::try_again, Layer::queue_pair, "send queue full"};
    }
    if (slice_bytes(destination).size() != destination.bytes || destination.bytes == 0) {
        return {Errc::invalid_argument, Layer::memory, "read destination leaves its region"};
    }
    MemoryFabric::Op op;
    op.kind = MemoryFabric::OpKind::read;
    op.from = config_.self;
    op.to = peer;
    op.epoch = state->epoch;
    op.read_destination = destination;
    op.remote = source;
    op.wr_id = wr_id;
    ++state->in_flight;
    fabric_->post(std::move(op));
    return {};
}

bool MemoryTransport::arm_wait()
{
    if (wake_.fd() < 0) {
        return false;  // nothing to sleep on: keep polling
    }
    wake_.drain();
    return inbox_.empty() && !fabric_->has_due(config_.self);
}

MemoryTransport::WakeFd::WakeFd() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

MemoryTransport::WakeFd::~WakeFd()
{
    if (fd_ >= 0) {
        close(fd_);
    }
}

void MemoryTransport::WakeFd::signal()
{
    if (fd_ < 0 || signalled_) {
        return;
    }
    const uint64_t one = 1;
    // Cannot fail short of a counter overflow, which one write per drain never reaches.
    signalled_ = write(fd_, &one, sizeof one) == static_cast<ssize_t>(sizeof one);
}

void MemoryTransport::WakeFd::drain()
{
    uint64_t count = 0;
    (void)!read(fd_, &count, sizeof count);  // EAGAIN when nothing was signalled: fine
    signalled_ = false;
}

size_t MemoryTransport::poll(uint64_t now_ms, std::vector<Event>& events)
{
    fabric_->advance(now_ms);
    const size_t count = inbox_.size();
    events.insert(events.end(), std::make_move_iterator(inbox_.begin()), std::make_move_iterator(inbox_.end()));
    inbox_.clear();
    return count;
}

}  // namespace rcpg::transport
