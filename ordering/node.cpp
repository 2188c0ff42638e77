#include "ordering/node.hpp"
#include "ordering/node_internal.hpp"

#include "base/assert.hpp"

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
using base::Errc;
using base::Layer;

base::Result<std::unique_ptr<Node>> Node::create(NodeConfig config, DeliveryRing& ring, LocalSide& local,
                                                 std::unique_ptr<transport::Transport> transport)
{
    std::unique_ptr<Node> node(new Node(std::move(config), ring, local, std::move(transport)));
    if (base::Status started = node->start(); !started) {
        return started;
    }
    return node;
}

Node::Node(NodeConfig config, DeliveryRing& ring, LocalSide& local, std::unique_ptr<transport::Transport> transport)
    : config_(std::move(config)),
      ring_(ring),
      local_(local),
      transport_(std::move(transport)),
      heartbeats_(config_.failure_timeout_ms)
{
}

void Node::set_state(NodeState to)
{
    if (is_final(state_)) {
        return;
    }
    RCPG_ASSERT(transition_allowed(state_, to), "node {}: no transition from {} to {}", config_.nodeid,
                to_string(state_), to_string(to));
    RCPG_ASSERT(to != NodeState::electing || election_.has_value(), "node {} electing without an election",
                config_.nodeid);
    state_ = to;
    if (!is_final(to)) {
        role_ = role_of(to);
    }
}

void Node::set_link(Link link)
{
    if (is_joining(state_) || is_member_failover(state_)) {
        set_state(with_link(state_, link));
    }
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

base::Status Node::start()
{
    view_ = {{config_.nodeid}, config_.first_ring_seq, config_.nodeid};
    if (!transport_) {
        return {};  // single
    }
    if (config_.nodes.size() < 2 ||
        std::find(config_.nodes.begin(), config_.nodes.end(), config_.nodeid) == config_.nodes.end()) {
        return {Errc::invalid_argument, Layer::config, "a cluster needs at least two configured nodes, this one among them"};
    }
    for (uint32_t nodeid : config_.sequencer_order) {
        if (std::find(config_.nodes.begin(), config_.nodes.end(), nodeid) == config_.nodes.end() ||
            std::find(order_.begin(), order_.end(), nodeid) != order_.end()) {
            return {Errc::invalid_argument, Layer::config,
                    fmt::format("the sequencer order names node {}, which is not configured or named twice", nodeid)};
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
        return {Errc::invalid_argument, Layer::config,
                fmt::format("a failure timeout of {} ms is too short", config_.failure_timeout_ms)};
    }
    // Every node starts by looking for a running cluster (after a failover its sequencer
    // is not the first of the order); the first of the order starts one if it finds none.
    join_.emplace(order_, config_.nodeid);
    state_ = NodeState::joining;
    role_ = Role::member;
    sequencer_ = join_->current();
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
        return ring_data.status().in("cannot register the delivery ring");
    }
    ring_data_registration_ = std::move(*ring_data);
    auto ring_control = transport::Registration::create(
        *transport_, reinterpret_cast<std::byte*>(&ring_.header()) + wire::kRingControlOffset, wire::kRingControlBytes,
        transport::RegionAccess::remote_write);
    if (!ring_control) {
        return ring_control.status().in("cannot register the delivery ring's control words");
    }
    ring_control_registration_ = std::move(*ring_control);
    // Any node may have to take over sequencing: every node is ready for both roles.
    if (base::Status prepared = prepare_sequencing(); !prepared) {
        return prepared;
    }
    if (base::Status member = start_member(); !member) {
        return member;
    }
    return start_sequencer();
}

const wire::HeartbeatLine& Node::heartbeat_line(uint32_t nodeid) const
{
    return reinterpret_cast<const wire::HeartbeatLine*>(heartbeat_memory_.data())[node_index(nodeid)];
}

size_t Node::node_index(uint32_t nodeid) const
{
    return static_cast<size_t>(std::find(config_.nodes.begin(), config_.nodes.end(), nodeid) - config_.nodes.begin());
}

base::Status Node::prepare_sequencing()
{
    transport::Transport& transport = *transport_;
    auto heartbeat_memory = transport::RegisteredMemory::create(transport, config_.nodes.size() * sizeof(wire::HeartbeatLine),
                                                                transport::RegionAccess::remote_write);
    if (!heartbeat_memory) {
        return heartbeat_memory.status().in("cannot register the heartbeat words");
    }
    heartbeat_memory_ = std::move(*heartbeat_memory);
    auto credit_memory = transport::RegisteredMemory::create(transport, config_.nodes.size() * sizeof(wire::MemberLine),
                                                             transport::RegionAccess::remote_write);
    if (!credit_memory) {
        return credit_memory.status().in("cannot register the credit words");
    }
    credit_memory_ = std::move(*credit_memory);
    const uint64_t inbound_bytes = transport::ring::region_bytes(config_.inbound_ring_bytes);
    for (size_t index = 0; index < config_.nodes.size(); ++index) {
        const uint32_t nodeid = config_.nodes[index];
        if (nodeid == config_.nodeid) {
            continue;
        }
        RemoteNode& node = remotes_[nodeid];
        node.nodeid = nodeid;
        node.line = reinterpret_cast<wire::MemberLine*>(credit_memory_.data()) + index;
        node.heartbeat = &heartbeat_line(nodeid);
        auto inbound = transport::RegisteredMemory::create(transport, inbound_bytes, transport::RegionAccess::remote_write);
        if (!inbound) {
            return inbound.status().in("cannot register an inbound ring");
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
            return exposed.in(fmt::format("cannot expose the regions node {} writes", nodeid));
        }
    }
    // Every node listens: the survivors connect to whichever node takes over.
    if (transport::Status listening = transport.listen(); !listening) {
        return listening.in("cannot listen for the other nodes");
    }
    return {};
}

base::Status Node::start_sequencer()
{
    transport::Transport& transport = *transport_;
    if (!config_.device_copies) {
        if (role_ == Role::sequencer) {
            log(LogLevel::info, "node {} is the sequencer of {} configured nodes; it copies payloads with the CPU",
                config_.nodeid, config_.nodes.size());
        }
        return {};
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
    return {};
}

base::Status Node::start_member()
{
    transport::Transport& transport = *transport_;
    auto member_memory = transport::RegisteredMemory::create(transport, delivery::kPageBytes + wire::kSnapshotRegionBytes,
                                                             transport::RegionAccess::remote_write);
    if (!member_memory) {
        return member_memory.status().in("cannot register the member's regions");
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
            return exposed.in(fmt::format("cannot expose the inbound credit word to node {}", nodeid));
        }
    }
    if (role_ == Role::member) {
        log(LogLevel::info, "node {} joins the cluster through sequencer {}; clients are served once it is admitted",
            config_.nodeid, sequencer_);
    }
    return {};
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
        exposed = transport.expose(sequencer_, wire::kTagSnapshot, member_memory_.region(), delivery::kPageBytes,
                                   wire::kSnapshotRegionBytes, write);
    }
    if (exposed && is_member_failover(state_)) {
        exposed = transport.expose(sequencer_, wire::kTagRepairRing, ring_data_registration_.id(), 0,
                                   ring_.data_bytes(), transport::RegionAccess::remote_read);
    } else if (exposed) {
        transport.withdraw(sequencer_, wire::kTagRepairRing);
    }
    if (!exposed) {
        log(LogLevel::error, "cannot expose this node's ring to node {}: {}", sequencer_, exposed.message());
        fail();
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

}  // namespace rcpg::ordering
