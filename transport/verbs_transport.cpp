// Control path of VerbsTransport: device, protection domain, regions, and connection
// set-up and teardown driven by rdma_cm events. The data path is in
// verbs_transport_datapath.cpp.
#include "transport/verbs_transport.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>

namespace rcpg::transport {
namespace {

// The hello and the receive slots: a hello always fits one slot.
static_assert(wire::kMaxHelloBytes <= VerbsTransport::kRecvSlotBytes);
// rdma_cm over IB/RoCE leaves 56 bytes of private data in a connect request.
static_assert(wire::kConnectPrivateDataBytes <= wire::kMaxConnectPrivateDataBytes);
// Outstanding RDMA READs per queue pair we ask for (devices may offer fewer).
constexpr uint32_t kMaxReadsInFlight = 16;
// Infinite RNR retry (7): a WRITE_WITH_IMM waits for the peer to repost a receive
// instead of killing the connection; receives are reposted within the same poll().
constexpr uint8_t kRnrRetryInfinite = 7;
constexpr int kListenBacklog = 64;
// cm events handled per poll(), so one poll() stays bounded.
constexpr int kMaxCmEventsPerPoll = 64;
// Once every connection is up, the event channel is read at most once per this many ms
// of the caller's clock, or every kCmCheckEveryPolls polls when that clock stands still.
// An empty read is a system call (a ucma write failing with EAGAIN) that used to sit on
// every poll() of a spinning data path: ≈2 us of the 64-byte half round trip in the TCG
// guest. What it reports once connected (a peer's DREQ, device removal) is not
// latency-critical at the millisecond scale.
constexpr uint64_t kCmCheckIntervalMs = 1;
constexpr uint32_t kCmCheckEveryPolls = 1024;

std::string node_text(NodeId node) { return "node " + std::to_string(node); }

// The IPv4 address of one end of a cm id's connection (the transcript binds both).
std::array<std::byte, 4> ipv4_bytes(const sockaddr* address)
{
    std::array<std::byte, 4> out{};
    if (address != nullptr && address->sa_family == AF_INET) {
        std::memcpy(out.data(), &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, out.size());
    }
    return out;
}

Event make_event(EventKind kind, NodeId peer, DisconnectReason reason, Status detail)
{
    Event event;
    event.kind = kind;
    event.peer = peer;
    event.reason = reason;
    event.detail = std::move(detail);
    return event;
}

}  // namespace

VerbsTransport::VerbsTransport(TransportConfig config) : config_(std::move(config)) {}

VerbsTransport::~VerbsTransport()
{
    // Connections first (each: disconnect, QP, CQ, MR, id), then the regions, the PD,
    // the listening id and the channel, by member order.
    for (auto& [peer, conn] : connections_) {
        conn->doomed = true;
    }
    for (auto& conn : candidates_) {
        conn->doomed = true;
    }
    sweep();
}

Result<std::unique_ptr<VerbsTransport>> VerbsTransport::create(TransportConfig config)
{
    if (Status status = validate_config(config); !status) {
        return status;
    }
    std::unique_ptr<VerbsTransport> transport(new VerbsTransport(std::move(config)));
    auto key = derive_handshake_key(transport->config_.cluster_key);
    if (!key) {
        return key.status();
    }
    transport->key_ = *key;
    const NodeAddress& self = *find_node(transport->config_, transport->config_.self);

    auto channel = create_event_channel();
    if (!channel) {
        return channel.status();
    }
    transport->channel_ = std::move(channel).value();
    auto listen_id = create_cm_id(transport->channel_.get(), nullptr);
    if (!listen_id) {
        return listen_id.status();
    }
    transport->listen_id_ = std::move(listen_id).value();
    auto address = ipv4_address(self.host, self.port);
    if (!address) {
        return address.status();
    }
    if (rdma_bind_addr(transport->listen_id_.get(), reinterpret_cast<sockaddr*>(&address.value())) != 0) {
        return errno_status(Errc::device_error, Layer::cm, "rdma_bind_addr " + self.host + ":" + std::to_string(self.port), errno);
    }
    ibv_context* context = transport->listen_id_->verbs;
    if (context == nullptr) {
        std::string names;
        for (const std::string& name : list_device_names()) {
            names += " " + name;
        }
        return Status{Errc::not_found, Layer::device,
                      "no RDMA device holds address " + self.host + " (devices:" + (names.empty() ? " none" : names) + ")"};
    }
    auto info = query_device(context, transport->listen_id_->port_num);
    if (!info) {
        return info.status();
    }
    transport->device_ = std::move(info).value();
    if (!transport->config_.device_name.empty() && transport->config_.device_name != transport->device_.name) {
        return Status{Errc::not_found, Layer::device,
                      "address " + self.host + " is on device " + transport->device_.name + ", not " + transport->config_.device_name};
    }
    QueueConfig& queues = transport->config_.queues;
    if (queues.send_queue_depth > transport->device_.max_qp_wr || queues.recv_queue_depth > transport->device_.max_qp_wr) {
        return Status{Errc::invalid_argument, Layer::device, "queue depth exceeds the device's max_qp_wr"};
    }
    auto pd = allocate_pd(context);
    if (!pd) {
        return pd.status();
    }
    transport->pd_ = std::move(pd).value();
    auto completion_channel = create_completion_channel(context);
    if (!completion_channel) {
        return completion_channel.status();
    }
    transport->completion_channel_ = std::move(completion_channel).value();
    auto wait_set = WaitSet::create(transport->completion_channel_->fd, transport->channel_->fd);
    if (!wait_set) {
        return wait_set.status();
    }
    transport->wait_set_ = std::move(wait_set).value();
    transport->regions_ = std::make_unique<RegionTable>(transport->pd_.get());
    return transport;
}

Status VerbsTransport::listen()
{
    if (rdma_listen(listen_id_.get(), kListenBacklog) != 0) {
        return errno_status(Errc::device_error, Layer::cm, "rdma_listen", errno);
    }
    return {};
}

Status VerbsTransport::connect(NodeId peer)
{
    if (peer == config_.self) {
        return connect_loopback();
    }
    const NodeAddress* target = find_node(config_, peer);
    if (target == nullptr) {
        return {Errc::not_found, Layer::api, node_text(peer) + " is not a peer in the node list"};
    }
    if (connection(peer) != nullptr) {
        return {Errc::invalid_argument, Layer::api, "a connection with " + node_text(peer) + " exists"};
    }
    auto conn = std::make_unique<Connection>();
    conn->peer = peer;
    conn->active = true;
    conn->deadline_ms = 0;  // armed by the next poll(): connect() has no clock
    auto id = create_cm_id(channel_.get(), conn.get());
    if (!id) {
        return id.status();
    }
    conn->id = std::move(id).value();
    auto source = ipv4_address(find_node(config_, config_.self)->host, 0);
    auto destination = ipv4_address(target->host, target->port);
    if (!source || !destination) {
        return !source ? source.status() : destination.status();
    }
    if (rdma_resolve_addr(conn->id.get(), reinterpret_cast<sockaddr*>(&source.value()),
                          reinterpret_cast<sockaddr*>(&destination.value()), static_cast<int>(config_.connect_timeout_ms)) != 0) {
        return errno_status(Errc::device_error, Layer::cm, "rdma_resolve_addr to " + node_text(peer), errno);
    }
    conn->state = State::resolving_addr;
    connections_[peer] = std::move(conn);
    cm_events_expected_ = true;  // its set-up advances only by cm events
    return {};
}

Result<std::pair<ibv_gid, uint8_t>> VerbsTransport::own_gid() const
{
    // RoCE names an IPv4 address by its IPv4-mapped IPv6 GID; rxe lists it once per RoCE
    // version. Prefer v2 (routable, what rdma_cm uses); any entry of it works for loopback.
    const NodeAddress& self = *find_node(config_, config_.self);
    auto address = ipv4_address(self.host, 0);
    if (!address) {
        return address.status();
    }
    ibv_gid wanted{};
    wanted.raw[10] = 0xff;
    wanted.raw[11] = 0xff;
    std::memcpy(&wanted.raw[12], &address->sin_addr, 4);
    ibv_port_attr port{};
    ibv_context* context = pd_->context;
    const uint8_t port_num = listen_id_->port_num;
    if (int rc = ibv_query_port(context, port_num, &port); rc != 0) {
        return errno_status(Errc::device_error, Layer::device, "ibv_query_port", rc);
    }
    std::optional<uint8_t> found;
    for (int index = 0; index < port.gid_tbl_len && index < 256; ++index) {
        ibv_gid_entry entry{};
        if (ibv_query_gid_ex(context, port_num, static_cast<uint32_t>(index), &entry, 0) != 0 ||
            std::memcmp(entry.gid.raw, wanted.raw, sizeof wanted.raw) != 0) {
            continue;
        }
        if (!found || entry.gid_type == IBV_GID_TYPE_ROCE_V2) {
            found = static_cast<uint8_t>(index);
        }
    }
    if (!found) {
        return Status{Errc::not_found, Layer::device, "no GID of " + self.host + " on " + device_.name};
    }
    return std::pair{wanted, *found};
}

Status VerbsTransport::connect_loopback()
{
    if (connection(config_.self) != nullptr) {
        return {Errc::invalid_argument, Layer::api, "the loopback connection exists"};
    }
    auto gid = own_gid();
    if (!gid) {
        return gid.status();
    }
    ibv_port_attr port{};
    if (int rc = ibv_query_port(pd_->context, listen_id_->port_num, &port); rc != 0) {
        return errno_status(Errc::device_error, Layer::device, "ibv_query_port", rc);
    }
    auto conn = std::make_unique<Connection>();
    conn->peer = config_.self;
    conn->active = true;
    const QueueConfig& queues = config_.queues;
    auto cq = create_cq(pd_->context, queues.send_queue_depth + 2, completion_channel_.get());
    if (!cq) {
        return cq.status();
    }
    conn->cq = std::move(cq).value();
    if (Status status = arm_cq(conn->cq.get()); !status) {
        return status;
    }
    QueueConfig responder_queues = queues;
    responder_queues.send_queue_depth = 1;
    responder_queues.recv_queue_depth = 1;
    const auto [own, gid_index] = *gid;
    const uint8_t port_num = listen_id_->port_num;
    // Loopback packets never reach the wire, so the largest MTU the port supports is
    // worth trying first: fewer packets per copy (rxe copies packet by packet). A device
    // that holds a path to its active MTU refuses it; then that one.
    Status connected;
    for (const ibv_mtu mtu : {port.max_mtu, port.active_mtu}) {
        auto qp = QueuePair::create_unmanaged(pd_.get(), conn->cq.get(), queues);
        auto responder = qp ? QueuePair::create_unmanaged(pd_.get(), conn->cq.get(), responder_queues) : qp.status();
        if (!responder) {
            return responder.status();
        }
        conn->qp = std::move(qp).value();
        conn->loopback_responder = std::move(responder).value();
        connected = conn->qp.connect_to(conn->loopback_responder.get()->qp_num, port_num, own, gid_index, mtu);
        if (connected) {
            connected = conn->loopback_responder.connect_to(conn->qp.get()->qp_num, port_num, own, gid_index, mtu);
        }
        if (connected || port.max_mtu == port.active_mtu) {
            break;
        }
    }
    if (!connected) {
        return connected;
    }
    // What this node exposed to itself, as a peer would learn it from a hello.
    if (auto it = exposures_.find(config_.self); it != exposures_.end()) {
        for (const auto& [tag, exposure] : it->second) {
            conn->remote[tag] = RemoteRegion{reinterpret_cast<uint64_t>(exposure.mr->addr), exposure.mr->rkey, exposure.bytes};
        }
    }
    conn->established = true;
    conn->hello_received = true;
    conn->state = State::connected;
    pending_.push_back(make_event(EventKind::connected, config_.self, DisconnectReason::local_close, {}));
    connections_[config_.self] = std::move(conn);
    return {};
}

void VerbsTransport::disconnect(NodeId peer)
{
    if (Connection* conn = connection(peer); conn != nullptr) {
        fail(*conn, EventKind::disconnected, DisconnectReason::local_close, {}, pending_);
        sweep();
    }
}

bool VerbsTransport::is_connected(NodeId peer) const { return connected(peer) != nullptr; }

VerbsTransport::Connection* VerbsTransport::connection(NodeId peer) const
{
    auto it = connections_.find(peer);
    return (it == connections_.end() || it->second->doomed) ? nullptr : it->second.get();
}

VerbsTransport::Connection* VerbsTransport::connected(NodeId peer) const
{
    Connection* conn = connection(peer);
    return (conn != nullptr && conn->state == State::connected) ? conn : nullptr;
}

Result<RegionId> VerbsTransport::register_region(void* addr, size_t bytes, RegionAccess access)
{
    // With memory windows, no registration of a whole region grants remote access itself
    // (its rkey would be good on every queue pair of the domain, a candidate's included):
    // peers reach only what is exposed to them, through windows bound to their queue pair.
    // Windows can be bound on it (which grants nothing by itself), so an exposure of the
    // whole region needs no second registration (pinning a ring twice doubles what the
    // kernel pins and later unpins).
    Result<RegionId> id = RegionId{};
    if (device_.memory_windows && access != RegionAccess::local) {
        auto mr = register_memory(pd_.get(), addr, bytes, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_MW_BIND);
        if (!mr) {
            return mr.status();
        }
        id = regions_->adopt(std::move(mr).value());
    } else {
        id = regions_->add(addr, bytes, access);
    }
    if (id) {
        region_access_[id->value] = access;
    }
    return id;
}

namespace {

// Registered with the protection domain (the slow part), not yet in the region table.
struct PinnedRegion final : PreparedRegion {
    explicit PinnedRegion(MemoryRegion region) : mr(std::move(region)) {}
    MemoryRegion mr;
};

}  // namespace

Result<std::unique_ptr<PreparedRegion>> VerbsTransport::prepare_region(void* addr, size_t bytes, RegionAccess access)
{
    // ibv_reg_mr is thread-safe, and the protection domain lives as long as the transport.
    auto mr = register_memory(pd_.get(), addr, bytes, access_flags(access));
    if (!mr) {
        return mr.status();
    }
    return std::unique_ptr<PreparedRegion>(std::make_unique<PinnedRegion>(std::move(mr).value()));
}

Result<RegionId> VerbsTransport::adopt_region(std::unique_ptr<PreparedRegion> prepared)
{
    auto* pinned = dynamic_cast<PinnedRegion*>(prepared.get());
    if (pinned == nullptr || pinned->mr == nullptr || pinned->mr->pd != pd_.get()) {
        return Status{Errc::invalid_argument, Layer::api, "adopt_region: not prepared by this transport"};
    }
    return regions_->adopt(std::move(pinned->mr));
}

Status VerbsTransport::deregister_region(RegionId region)
{
    // Released and dropped at once: unpinned here.
    return release_region(region).status();
}

Result<std::unique_ptr<PreparedRegion>> VerbsTransport::release_region(RegionId region)
{
    // The caller guarantees no posted work still uses it (NOTES.md); exposures go with it.
    // An exposed region is released only once no connection holds a window over it (a
    // registration with windows bound cannot be deregistered).
    for (auto& [peer, tags] : exposures_) {
        std::erase_if(tags, [&](const auto& entry) { return entry.second.region == region; });
    }
    std::erase_if(exposure_mrs_, [&](const auto& entry) { return entry.first.region == region.value; });
    region_access_.erase(region.value);
    auto taken = regions_->take(region);
    if (!taken) {
        return taken.status();
    }
    return std::unique_ptr<PreparedRegion>(std::make_unique<PinnedRegion>(std::move(taken).value()));
}

std::span<std::byte> VerbsTransport::region_bytes(RegionId region) const
{
    const ibv_mr* mr = regions_->find(region);
    return mr == nullptr ? std::span<std::byte>{} : std::span<std::byte>(static_cast<std::byte*>(mr->addr), mr->length);
}

Status VerbsTransport::expose(NodeId peer, uint32_t tag, RegionId region, uint64_t offset, uint64_t bytes,
                              RegionAccess access)
{
    const ibv_mr* mr = regions_->find(region);
    if (mr == nullptr) {
        return {Errc::not_found, Layer::api, "expose: no region " + std::to_string(region.value)};
    }
    if (bytes == 0 || offset > mr->length || bytes > mr->length - offset) {
        return {Errc::invalid_argument, Layer::api, "expose: range leaves the region"};
    }
    const auto registered = region_access_.find(region.value);
    if (registered == region_access_.end() || registered->second == RegionAccess::local) {
        return {Errc::invalid_argument, Layer::api, "expose: region " + std::to_string(region.value) + " is not for peers"};
    }
    access = common_access(access, registered->second);
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
    // The range's own registration. Bound through windows it grants nothing by itself
    // (local write and window binding only); to this node itself (the loopback, whose
    // queue pairs are both ours) and on devices without windows, its rkey is the access.
    const bool windows = device_.memory_windows && peer != config_.self;
    if (windows && offset == 0 && bytes == mr->length) {
        // The region's own registration serves: windows only, no remote access of its own.
        tags[tag] = Exposure{region, offset, bytes, access, const_cast<ibv_mr*>(mr)};
        exposures_changed(peer);
        return {};
    }
    // Without windows the registration itself carries the access: one per access.
    const int flags = windows ? IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_MW_BIND : access_flags(access);
    const ExposureKey key{region.value, offset, bytes, flags};
    auto& registration = exposure_mrs_[key];
    if (!registration) {
        auto range = register_memory(pd_.get(), static_cast<std::byte*>(mr->addr) + offset, bytes, flags);
        if (!range) {
            exposure_mrs_.erase(key);
            return range.status();
        }
        registration = std::move(range).value();
    }
    tags[tag] = Exposure{region, offset, bytes, access, registration.get()};
    exposures_changed(peer);
    return {};
}

void VerbsTransport::withdraw(NodeId peer, uint32_t tag)
{
    auto it = exposures_.find(peer);
    if (it == exposures_.end() || it->second.erase(tag) == 0) {
        return;
    }
    exposures_changed(peer);
}

void VerbsTransport::exposures_changed(NodeId peer)
{
    Connection* conn = connection(peer);
    if (conn == nullptr) {
        return;  // the next connection's hello describes them
    }
    if (peer == config_.self) {
        // The loopback's queue pairs are both ours: what it reaches is what we describe.
        conn->remote.clear();
        for (const auto& [tag, exposure] : exposures_[peer]) {
            conn->remote[tag] = RemoteRegion{reinterpret_cast<uint64_t>(exposure.mr->addr), exposure.mr->rkey, exposure.bytes};
        }
        return;
    }
    if (!conn->hello_sent) {
        return;  // the hello, still to come, describes them
    }
    // Windows follow at once (a withdrawn one is refused from now on); the peer hears of
    // it in one grant for everything changed meanwhile, sent ahead of the next work posted
    // to it or at the next poll().
    if (auto synced = sync_windows(*conn); !synced) {
        fail(*conn, EventKind::disconnected, DisconnectReason::qp_error, synced.status(), pending_);
        sweep();
        return;
    }
    conn->grant_due = true;
}

Status VerbsTransport::flush_grant(Connection& conn)
{
    if (!conn.grant_due) {
        return {};
    }
    Status status = send_grant(conn);
    if (!status) {
        fail(conn, EventKind::disconnected, DisconnectReason::qp_error, status, pending_);
    }
    return status;
}

std::optional<RemoteRegion> VerbsTransport::remote_region(NodeId peer, uint32_t tag) const
{
    const Connection* conn = connected(peer);
    if (conn == nullptr) {
        return std::nullopt;
    }
    auto it = conn->remote.find(tag);
    return it == conn->remote.end() ? std::nullopt : std::optional(it->second);
}

size_t VerbsTransport::poll(uint64_t now_ms, std::vector<Event>& events)
{
    now_ms_ = std::max(now_ms_, now_ms);
    const size_t before = events.size();
    events.insert(events.end(), pending_.begin(), pending_.end());
    pending_.clear();

    if (cm_check_due()) {
        for (int i = 0; i < kMaxCmEventsPerPoll; ++i) {
            Status error;
            auto event = next_cm_event(channel_.get(), error);
            if (!event) {
                break;
            }
            handle_cm_event(*event, events);
            sweep();
        }
    }
    completions_left_ = false;
    for (auto& [peer, conn] : connections_) {
        if (!conn->doomed && conn->cq) {
            poll_completions(*conn, events);
        }
        if (!conn->doomed) {
            (void)flush_grant(*conn);  // a failure is reported as the connection's end
        }
    }
    // A candidate's completions are its proof (or what disqualifies it); on_proof() moves a
    // proven one into connections_, so the walk is over a snapshot.
    std::vector<Connection*> candidates;
    for (auto& conn : candidates_) {
        candidates.push_back(conn.get());
    }
    for (Connection* conn : candidates) {
        if (!conn->doomed && conn->cq) {
            poll_completions(*conn, events);
        }
    }
    for (auto& conn : candidates_) {
        if (!conn->doomed && now_ms_ >= conn->deadline_ms) {
            refuse_candidate(*conn,
                             {Errc::refused, Layer::handshake,
                              "no proof of the cluster key within " + std::to_string(config_.connect_timeout_ms) + " ms"},
                             events);
        }
    }
    bool setting_up = !candidates_.empty();
    for (auto& [peer, conn] : connections_) {
        setting_up = setting_up || (!conn->doomed && conn->state != State::connected);
        if (conn->deadline_ms == 0) {
            conn->deadline_ms = now_ms_ + config_.connect_timeout_ms;
        }
        if (!conn->doomed && conn->state != State::connected && now_ms_ >= conn->deadline_ms) {
            fail(*conn, EventKind::disconnected, DisconnectReason::unreachable,
                 {Errc::not_connected, Layer::cm,
                  "connection set-up with " + node_text(peer) + " timed out after " +
                      std::to_string(config_.connect_timeout_ms) + " ms"},
                 events);
        }
    }
    sweep();
    cm_events_expected_ = setting_up;
    return events.size() - before;
}

bool VerbsTransport::cm_check_due()
{
    ++polls_since_cm_check_;
    if (!cm_events_expected_ && !cm_read_requested_ && now_ms_ - last_cm_check_ms_ < kCmCheckIntervalMs &&
        polls_since_cm_check_ < kCmCheckEveryPolls) {
        return false;
    }
    last_cm_check_ms_ = now_ms_;
    polls_since_cm_check_ = 0;
    cm_read_requested_ = false;
    return true;
}

void VerbsTransport::fail(Connection& conn, EventKind kind, DisconnectReason reason, Status detail, std::vector<Event>& events)
{
    if (conn.candidate) {
        // Whatever ends an unproven attempt, it is no word of the node it names.
        refuse_candidate(conn, std::move(detail), events);
        return;
    }
    if (conn.doomed) {
        return;  // reported once
    }
    conn.doomed = true;
    events.push_back(make_event(kind, conn.peer, reason, std::move(detail)));
}

void VerbsTransport::refuse_candidate(Connection& conn, Status detail, std::vector<Event>& events)
{
    if (conn.doomed) {
        return;
    }
    conn.doomed = true;
    events.push_back(make_event(EventKind::incoming_refused, 0, DisconnectReason::refused,
                                {detail.code() == Errc::ok ? Errc::refused : detail.code(), Layer::handshake,
                                 "an attempt claiming to be " + node_text(conn.peer) + ": " + detail.context()}));
}

void VerbsTransport::sweep()
{
    const auto disconnect_if_established = [](Connection& conn) {
        if (conn.established && conn.id) {
            rdma_disconnect(conn.id.get());  // DREQ: the peer learns at once, not by retries
        }
    };
    for (auto it = connections_.begin(); it != connections_.end();) {
        Connection& conn = *it->second;
        if (!conn.doomed) {
            ++it;
            continue;
        }
        disconnect_if_established(conn);
        it = connections_.erase(it);  // QP, CQ, MR, id in that order
    }
    for (auto it = candidates_.begin(); it != candidates_.end();) {
        if (!(*it)->doomed) {
            ++it;
            continue;
        }
        disconnect_if_established(**it);
        it = candidates_.erase(it);
    }
}

Status VerbsTransport::setup_queues(Connection& conn)
{
    const QueueConfig& queues = config_.queues;
    if (conn.id->verbs != pd_->context) {
        return {Errc::device_error, Layer::device, "route to " + node_text(conn.peer) + " uses another RDMA device"};
    }
    // Every send and every receive may complete at once (flushes): the CQ never overflows.
    // Attached to the completion channel; it raises events only once arm_wait() arms it.
    auto cq = create_cq(conn.id->verbs, queues.send_queue_depth + queues.recv_queue_depth, completion_channel_.get());
    if (!cq) {
        return cq.status();
    }
    conn.cq = std::move(cq).value();
    // Armed at birth: a caller may already be asleep (its last arm_wait() predates this
    // CQ), and the first completion here must still wake it.
    if (Status status = arm_cq(conn.cq.get()); !status) {
        return status;
    }
    // Receive slots, then three send slots: the proof, the hello, the latest grant.
    conn.control.assign((queues.recv_queue_depth + 3) * kRecvSlotBytes, std::byte{0});
    auto mr = register_memory(pd_.get(), conn.control.data(), conn.control.size(), IBV_ACCESS_LOCAL_WRITE);
    if (!mr) {
        return mr.status();
    }
    conn.control_mr = std::move(mr).value();
    auto qp = QueuePair::create(conn.id.get(), pd_.get(), conn.cq.get(), queues);
    if (!qp) {
        return qp.status();
    }
    conn.qp = std::move(qp).value();
    // Receives are posted before the connection exists, so the peer's hello always finds one.
    for (uint32_t slot = 0; slot < queues.recv_queue_depth; ++slot) {
        const ibv_sge sge{reinterpret_cast<uint64_t>(conn.control.data() + slot * kRecvSlotBytes),
                          static_cast<uint32_t>(kRecvSlotBytes), conn.control_mr->lkey};
        if (Status status = conn.qp.post_recv(slot, sge); !status) {
            return status;
        }
    }
    uint8_t timeout = config_.ack_timeout_exponent;
    if (rdma_set_option(conn.id.get(), RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT, &timeout, sizeof timeout) != 0) {
        return errno_status(Errc::device_error, Layer::cm, "set ack timeout", errno);
    }
    return {};
}

rdma_conn_param VerbsTransport::conn_param(std::span<const std::byte> private_data) const
{
    rdma_conn_param param{};
    param.private_data = private_data.data();
    param.private_data_len = static_cast<uint8_t>(private_data.size());
    param.responder_resources = static_cast<uint8_t>(std::min(device_.max_qp_rd_atom, kMaxReadsInFlight));
    param.initiator_depth = static_cast<uint8_t>(std::min(device_.max_qp_init_rd_atom, kMaxReadsInFlight));
    param.retry_count = config_.retry_count;
    param.rnr_retry_count = kRnrRetryInfinite;
    return param;
}

Result<std::vector<wire::ExposedRegion>> VerbsTransport::sync_windows(Connection& conn)
{
    static const std::map<uint32_t, Exposure> kNone;
    auto found = exposures_.find(conn.peer);
    const std::map<uint32_t, Exposure>& exposed = found == exposures_.end() ? kNone : found->second;
    // Withdrawn, or exposed anew under the same tag: the window goes (deallocating a bound
    // window invalidates it: the peer's next access through it is refused).
    std::erase_if(conn.windows, [&](const auto& entry) {
        auto now = exposed.find(entry.first);
        return now == exposed.end() || now->second.mr != entry.second.mr || now->second.bytes != entry.second.bytes ||
               now->second.access != entry.second.access;
    });
    std::vector<wire::ExposedRegion> described;
    for (const auto& [tag, exposure] : exposed) {
        auto& grant = conn.windows[tag];
        if (grant.mr == nullptr) {
            grant.mr = exposure.mr;
            grant.bytes = exposure.bytes;
            grant.access = exposure.access;
            grant.rkey = exposure.mr->rkey;  // without windows: the range's own registration
            if (device_.memory_windows) {
                // A type-2 window over the range, bound to this connection's queue pair:
                // the device refuses its rkey on every other queue pair. Bound in order
                // ahead of the hello or grant that names it.
                MemoryWindow window(ibv_alloc_mw(pd_.get(), IBV_MW_TYPE_2));
                if (!window) {
                    conn.windows.erase(tag);
                    return errno_status(Errc::device_error, Layer::device, "ibv_alloc_mw", errno);
                }
                const int rights = access_flags(exposure.access) & (IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
                const uint32_t rkey = ibv_inc_rkey(window->rkey);
                if (Status status = conn.qp.post_bind(window.get(), exposure.mr,
                                                      reinterpret_cast<uint64_t>(exposure.mr->addr), exposure.bytes,
                                                      static_cast<unsigned int>(rights), rkey);
                    !status) {
                    conn.windows.erase(tag);
                    return status;
                }
                // rdma-core's rxe provider leaves mw->rkey as allocated after a type-2
                // bind; keep it true for whoever looks (transport/NOTES.md).
                window->rkey = rkey;
                grant.rkey = rkey;
                grant.window = std::move(window);
            }
        }
        described.push_back({tag, grant.rkey, reinterpret_cast<uint64_t>(exposure.mr->addr), exposure.bytes});
    }
    return described;
}

std::byte* VerbsTransport::send_slot(Connection& conn, size_t index) const
{
    return conn.control.data() + (config_.queues.recv_queue_depth + index) * kRecvSlotBytes;
}

Status VerbsTransport::send_proof(Connection& conn)
{
    const auto proof = wire::encode_proof(conn.transcript, key_);
    std::byte* slot = send_slot(conn, 0);
    std::memcpy(slot, proof.data(), proof.size());
    return conn.qp.post_internal_send({reinterpret_cast<uint64_t>(slot), static_cast<uint32_t>(proof.size()), conn.control_mr->lkey});
}

Status VerbsTransport::send_hello(Connection& conn)
{
    wire::HelloMessage hello;
    hello.from_node = config_.self;
    auto regions = sync_windows(conn);
    if (!regions) {
        return regions.status();
    }
    hello.regions = std::move(regions).value();
    std::byte* slot = send_slot(conn, 1);
    auto bytes = wire::encode_hello(hello, {slot, kRecvSlotBytes});
    if (!bytes) {
        return bytes.status();
    }
    Status sent = conn.qp.post_internal_send({reinterpret_cast<uint64_t>(slot), static_cast<uint32_t>(*bytes), conn.control_mr->lkey});
    conn.hello_sent = sent.ok();
    return sent;
}

Status VerbsTransport::send_grant(Connection& conn)
{
    // Withdrawals take effect now, whether or not the grant can go yet.
    auto regions = sync_windows(conn);
    if (!regions) {
        return regions.status();
    }
    if (conn.grant_wr && !conn.qp.completed(*conn.grant_wr)) {
        conn.grant_due = true;  // its send slot is busy: poll() sends the news later
        return {};
    }
    wire::HelloMessage grant;
    grant.from_node = config_.self;
    grant.update = conn.grants_sent + 1;
    grant.regions = std::move(regions).value();
    std::byte* slot = send_slot(conn, 2);
    auto bytes = wire::encode_hello(grant, {slot, kRecvSlotBytes});
    if (!bytes) {
        return bytes.status();
    }
    const uint64_t wr_id = conn.qp.next_wr_id();
    if (Status status = conn.qp.post_internal_send(
            {reinterpret_cast<uint64_t>(slot), static_cast<uint32_t>(*bytes), conn.control_mr->lkey});
        !status) {
        if (status.code() != Errc::try_again) {
            return status;
        }
        conn.grant_due = true;  // the send queue is full: poll() tries again
        return {};
    }
    ++conn.grants_sent;
    // An inline send was copied at post time: its slot is free again at once.
    conn.grant_wr = *bytes <= conn.qp.max_inline_bytes() ? std::nullopt : std::optional(wr_id);
    conn.grant_due = false;
    return {};
}

void VerbsTransport::maybe_connected(Connection& conn, std::vector<Event>& events)
{
    if (!conn.doomed && conn.established && conn.hello_received && conn.state != State::connected) {
        conn.state = State::connected;
        events.push_back(make_event(EventKind::connected, conn.peer, DisconnectReason::local_close, {}));
    }
}

void VerbsTransport::handle_cm_event(const CmEvent& event, std::vector<Event>& events)
{
    if (event.type == RDMA_CM_EVENT_CONNECT_REQUEST) {
        on_connect_request(event, events);
        return;
    }
    if (event.type == RDMA_CM_EVENT_DEVICE_REMOVAL) {
        for (auto& [peer, conn] : connections_) {
            fail(*conn, EventKind::disconnected, DisconnectReason::qp_error, {Errc::device_error, Layer::device, "device removed"}, events);
        }
        for (auto& conn : candidates_) {
            refuse_candidate(*conn, {Errc::device_error, Layer::device, "device removed"}, events);
        }
        return;
    }
    auto* conn = event.id != nullptr ? static_cast<Connection*>(event.id->context) : nullptr;
    if (conn == nullptr || conn->doomed) {
        return;  // the listening id, or a connection already reported gone
    }
    const auto cm_error = [&](const char* what) {
        return Status{Errc::not_connected, Layer::cm,
                      std::string(what) + " (" + rdma_event_str(event.type) + ", status " + std::to_string(event.status) + ")"};
    };
    switch (event.type) {
    case RDMA_CM_EVENT_ADDR_RESOLVED:
        if (rdma_resolve_route(conn->id.get(), static_cast<int>(config_.connect_timeout_ms)) != 0) {
            fail(*conn, EventKind::disconnected, DisconnectReason::unreachable,
                 errno_status(Errc::device_error, Layer::cm, "rdma_resolve_route", errno), events);
            return;
        }
        conn->state = State::resolving_route;
        return;
    case RDMA_CM_EVENT_ROUTE_RESOLVED: {
        if (Status status = setup_queues(*conn); !status) {
            fail(*conn, EventKind::disconnected, DisconnectReason::unreachable, status, events);
            return;
        }
        conn->transcript.initiator = config_.self;
        conn->transcript.responder = conn->peer;
        conn->transcript.initiator_qpn = conn->qp.get()->qp_num;
        conn->transcript.initiator_address = ipv4_bytes(rdma_get_local_addr(conn->id.get()));
        conn->transcript.responder_address = ipv4_bytes(rdma_get_peer_addr(conn->id.get()));
        if (Status status = fill_random(conn->transcript.initiator_nonce); !status) {
            fail(*conn, EventKind::disconnected, DisconnectReason::unreachable, status, events);
            return;
        }
        const auto request =
            wire::encode_request({config_.self, conn->peer, conn->transcript.initiator_nonce}, key_);
        rdma_conn_param param = conn_param(request);
        if (rdma_connect(conn->id.get(), &param) != 0) {
            fail(*conn, EventKind::disconnected, DisconnectReason::unreachable,
                 errno_status(Errc::device_error, Layer::cm, "rdma_connect", errno), events);
            return;
        }
        conn->state = State::connecting;
        return;
    }
    case RDMA_CM_EVENT_ESTABLISHED: on_established(*conn, event, events); return;
    case RDMA_CM_EVENT_REJECTED: {
        auto reason = wire::decode_reject(event.private_data);
        if (reason) {
            fail(*conn, EventKind::refused, DisconnectReason::refused,
                 {Errc::refused, Layer::handshake, node_text(conn->peer) + " refused us: " + wire::to_string(*reason)}, events);
        } else {
            // Not our reject: the CM itself refused (status 8 = nothing listens on the port).
            fail(*conn, EventKind::disconnected, DisconnectReason::unreachable, cm_error("rejected by the peer's CM"), events);
        }
        return;
    }
    case RDMA_CM_EVENT_ADDR_ERROR:
    case RDMA_CM_EVENT_ROUTE_ERROR:
    case RDMA_CM_EVENT_CONNECT_ERROR:
    case RDMA_CM_EVENT_UNREACHABLE:
        fail(*conn, EventKind::disconnected, DisconnectReason::unreachable, cm_error("connection set-up failed"), events);
        return;
    case RDMA_CM_EVENT_DISCONNECTED:
        conn->established = false;  // the DREQ came from the peer: nothing to send back
        rdma_disconnect(conn->id.get());
        fail(*conn, EventKind::disconnected, DisconnectReason::remote_close,
             {Errc::not_connected, Layer::cm, node_text(conn->peer) + " disconnected"}, events);
        return;
    default: return;  // TIMEWAIT_EXIT and others need nothing
    }
}

void VerbsTransport::on_connect_request(const CmEvent& event, std::vector<Event>& events)
{
    CmId id(event.id);  // ours now: destroyed on every path that does not keep it
    // A refusal here is reported without a node id: the request proves nothing fresh (a
    // valid one may be a replay), so what it claims is nobody's word.
    const auto refuse = [&](wire::RejectReason reason, NodeId claimed, const std::string& why) {
        const auto data = wire::encode_reject(reason);
        rdma_reject(id.get(), data.data(), static_cast<uint8_t>(data.size()));
        events.push_back(make_event(EventKind::incoming_refused, 0, DisconnectReason::refused,
                                    {Errc::refused, Layer::handshake,
                                     "refused a connect request" +
                                         (claimed != 0 ? " claiming to be " + node_text(claimed) : std::string()) +
                                         ": " + why}));
    };
    auto request = wire::decode_request(event.private_data, key_);
    if (!request) {
        const bool bad_key = request.status().code() == Errc::refused;
        refuse(bad_key ? wire::RejectReason::bad_cluster_key : wire::RejectReason::malformed_request, 0,
               request.status().context());
        return;
    }
    const wire::ConnectRequest& req = request.value();
    if (req.from_node == config_.self || find_node(config_, req.from_node) == nullptr) {
        refuse(wire::RejectReason::unknown_node, req.from_node, "not in the node list");
        return;
    }
    if (req.to_node != config_.self) {
        refuse(wire::RejectReason::wrong_target, req.from_node, "addressed to " + node_text(req.to_node));
        return;
    }
    if (connected(req.from_node) != nullptr) {
        // Changes nothing: the connection stays until it fails on its own.
        refuse(wire::RejectReason::duplicate, req.from_node, "a connection with it is up");
        return;
    }
    if (candidates_.size() >= kMaxCandidates) {
        refuse(wire::RejectReason::not_ready, req.from_node, std::to_string(kMaxCandidates) + " attempts are being checked");
        return;
    }
    make_room_for_candidate(req.from_node);
    auto conn = std::make_unique<Connection>();
    conn->peer = req.from_node;
    conn->candidate = true;
    conn->state = State::accepting;
    conn->deadline_ms = now_ms_ + config_.connect_timeout_ms;
    conn->id = std::move(id);
    conn->id->context = conn.get();
    Status status = setup_queues(*conn);
    wire::Transcript& transcript = conn->transcript;
    transcript.initiator = req.from_node;
    transcript.responder = config_.self;
    transcript.initiator_nonce = req.nonce;
    transcript.initiator_qpn = event.remote_qp_num;
    transcript.initiator_address = ipv4_bytes(rdma_get_peer_addr(conn->id.get()));
    transcript.responder_address = ipv4_bytes(rdma_get_local_addr(conn->id.get()));
    if (status) {
        transcript.responder_qpn = conn->qp.get()->qp_num;
        status = fill_random(transcript.responder_nonce);
    }
    if (!status) {
        id = std::move(conn->id);
        conn.reset();  // QP and friends before the id
        refuse(wire::RejectReason::not_ready, req.from_node, status.message());
        return;
    }
    const auto accept = wire::encode_accept(transcript, key_);
    rdma_conn_param param = conn_param(accept);
    if (rdma_accept(conn->id.get(), &param) != 0) {
        const int error = errno;
        events.push_back(make_event(EventKind::incoming_refused, 0, DisconnectReason::unreachable,
                                    errno_status(Errc::device_error, Layer::cm,
                                                 "rdma_accept of an attempt claiming to be " + node_text(req.from_node), error)));
        return;
    }
    candidates_.push_back(std::move(conn));
}

void VerbsTransport::make_room_for_candidate(NodeId claimed)
{
    size_t same_claim = 0;
    for (const auto& conn : candidates_) {
        same_claim += (!conn->doomed && conn->peer == claimed) ? 1 : 0;
    }
    for (auto& conn : candidates_) {
        if (same_claim < kMaxCandidatesPerClaim) {
            break;
        }
        if (!conn->doomed && conn->peer == claimed) {
            conn->doomed = true;  // the oldest: a genuine node retries, a replay loses a slot
            --same_claim;
        }
    }
    sweep();
}

void VerbsTransport::on_established(Connection& conn, const CmEvent& event, std::vector<Event>& events)
{
    conn.established = true;  // from now on sweep() disconnects
    if (!conn.active) {
        // The responder waits for the initiator's proof (the first receive) before it says
        // anything on this queue pair; proof and hello may also have come before this event.
        if (conn.state != State::connected) {
            conn.state = State::handshaking;
        }
        maybe_connected(conn, events);
        return;
    }
    // The accept must answer our fresh nonce on these two queue pairs with the key: a
    // replayed, relayed or foreign accept is refused, and we send nothing about our memory.
    wire::Transcript expected = conn.transcript;
    expected.responder_qpn = event.remote_qp_num;
    auto accept = wire::decode_accept(event.private_data, key_, expected);
    if (!accept) {
        fail(conn, EventKind::refused, DisconnectReason::refused,
             {Errc::refused, Layer::handshake, "refused " + node_text(conn.peer) + "'s accept: " + accept.status().context()},
             events);
        return;
    }
    conn.transcript = *accept;
    conn.state = State::handshaking;
    // In order on the queue pair: the proof, then the hello (the peer proved itself).
    Status status = send_proof(conn);
    if (status) {
        status = send_hello(conn);
    }
    if (!status) {
        fail(conn, EventKind::disconnected, DisconnectReason::qp_error, status, events);
        return;
    }
    maybe_connected(conn, events);
}

void VerbsTransport::on_receive(Connection& conn, std::span<const std::byte> bytes, std::vector<Event>& events)
{
    if (conn.candidate) {
        on_proof(conn, bytes, events);
    } else {
        on_hello(conn, bytes, events);
    }
}

void VerbsTransport::on_proof(Connection& conn, std::span<const std::byte> bytes, std::vector<Event>& events)
{
    if (Status status = wire::check_proof(bytes, key_, conn.transcript); !status) {
        refuse_candidate(conn, status, events);
        return;
    }
    // Proven: the node it claims is on the other end of this queue pair, now.
    const NodeId peer = conn.peer;
    if (Connection* existing = connection(peer); existing != nullptr) {
        if (existing->state == State::connected) {
            refuse_candidate(conn, {Errc::refused, Layer::handshake, "a connection with it is up"}, events);
            return;
        }
        if (existing->active && config_.self < peer) {
            // Both sides connecting at once: the attempt of the lower node id (ours) wins.
            refuse_candidate(conn, {Errc::refused, Layer::handshake, "our own attempt to it wins"}, events);
            return;
        }
        // The peer's attempt wins over ours, or replaces an earlier one of its own that it
        // gave up on (both proven): silently, no event for an attempt that never connected.
        if (existing->established && existing->id) {
            rdma_disconnect(existing->id.get());
        }
        connections_.erase(peer);  // QP, CQ, MR, id in that order
    }
    auto it = std::find_if(candidates_.begin(), candidates_.end(), [&](const auto& entry) { return entry.get() == &conn; });
    std::unique_ptr<Connection> promoted = std::move(*it);
    candidates_.erase(it);
    promoted->candidate = false;
    Connection& proven = *promoted;
    connections_[peer] = std::move(promoted);
    if (Status status = send_hello(proven); !status) {
        fail(proven, EventKind::disconnected, DisconnectReason::qp_error, status, events);
        return;
    }
    maybe_connected(proven, events);
}

void VerbsTransport::on_hello(Connection& conn, std::span<const std::byte> bytes, std::vector<Event>& events)
{
    auto hello = wire::decode_hello(bytes);
    Status problem;
    if (!hello) {
        problem = hello.status();
    } else if (hello->from_node != conn.peer) {
        problem = {Errc::malformed, Layer::handshake, "hello from " + node_text(hello->from_node) + " on the connection with " + node_text(conn.peer)};
    } else if (!conn.hello_received && hello->update != 0) {
        problem = {Errc::malformed, Layer::handshake, "a grant before the hello"};
    } else if (conn.hello_received && hello->update != conn.grants_received + 1) {
        problem = {Errc::malformed, Layer::handshake,
                   hello->update == 0 ? "second hello" : "grant " + std::to_string(hello->update) + " out of order"};
    }
    if (!problem.ok()) {
        fail(conn, EventKind::disconnected, DisconnectReason::protocol_error, problem, events);
        return;
    }
    // A hello or grant names everything the peer exposes to us from now on.
    conn.remote.clear();
    for (const wire::ExposedRegion& region : hello->regions) {
        conn.remote[region.tag] = RemoteRegion{region.addr, region.rkey, region.bytes};
    }
    if (conn.hello_received) {
        conn.grants_received = hello->update;
        if (conn.state == State::connected) {
            events.push_back(make_event(EventKind::regions_changed, conn.peer, DisconnectReason::local_close, {}));
        }
        return;
    }
    conn.hello_received = true;
    maybe_connected(conn, events);
}

}  // namespace rcpg::transport
