// MemoryTransport: the Transport interface in one process, for the protocol's tests and
// the cluster simulation. It really delivers: writes copy bytes into the target
// endpoint's registered memory, checked against its rkeys and bounds like a NIC would.
//
// A MemoryFabric connects the endpoints and owns time and faults, all from one seed:
//  - every operation is delivered after a delay drawn in [min_delay_ms, max_delay_ms];
//    operations of one direction of one connection stay in order (RC), operations of
//    different connections interleave in any order the seed picks;
//  - with disconnect_probability, a posted operation instead breaks its connection when
//    it would have been delivered (both ends get `disconnected`, later operations are
//    lost, as a queue pair error would);
//  - disconnect(a, b), crash(node) and partition(side) inject failures on demand.
// Delivery happens inside poll(now_ms) of any endpoint: the fabric runs every operation
// due at or before now_ms in (time, post order), so a run replays exactly from its seed.
//
// wait_fd() is an eventfd the fabric writes whenever it queues an event for the endpoint
// or delivers an operation to it (a write or read landing in its memory — more than a
// verbs device wakes for, see NOTES.md "Sleeping"). It is a wake-up hint only: nothing
// about it feeds back into what is delivered or reported, so runs stay deterministic.
// Fabric time moves only through poll()/advance(): a caller that sleeps must bound the
// sleep by the next time it means to step the fabric (next_delivery_ms()).
#pragma once

#include "transport/connect_private_data.hpp"
#include "transport/transport.hpp"

#include <map>
#include <optional>
#include <string>
#include <memory>
#include <random>
#include <set>
#include <vector>

namespace rcpg::transport {

struct FaultConfig {
    uint32_t min_delay_ms = 0;
    uint32_t max_delay_ms = 0;
    double disconnect_probability = 0.0;  // per posted operation
};

class MemoryTransport;

class MemoryFabric {
public:
    explicit MemoryFabric(uint64_t seed, FaultConfig faults = {});
    MemoryFabric(const MemoryFabric&) = delete;
    MemoryFabric& operator=(const MemoryFabric&) = delete;

    uint64_t seed() const { return seed_; }
    uint64_t now_ms() const { return now_ms_; }
    // Runs every operation due at or before now_ms.
    void advance(uint64_t now_ms);
    // Breaks the connection between a and b now (both see disconnected(qp_error)).
    void disconnect(NodeId a, NodeId b);
    // The node vanishes: its peers see disconnected(remote_close); its endpoint is dead.
    void crash(NodeId node);
    // The network splits between `side` and every other node: connections across break
    // (both ends see disconnected(retry_exceeded), as when retries run out) and new ones
    // across are unreachable, until heal().
    void partition(const std::set<NodeId>& side);
    void heal() { partition_side_.clear(); }
    // Operations posted but not yet delivered (for tests that drain the fabric).
    size_t in_flight() const { return queue_.size(); }
    // When the next operation is due, if any is in flight.
    std::optional<uint64_t> next_delivery_ms() const
    {
        return queue_.empty() ? std::nullopt : std::optional(queue_.begin()->first.first);
    }

private:
    friend class MemoryTransport;

    enum class OpKind : uint8_t { connect, write, read, grant, fault };
    struct Op {
        OpKind kind = OpKind::write;
        NodeId from = 0;
        NodeId to = 0;
        uint64_t epoch = 0;  // of the connection it was posted on
        std::vector<std::byte> bytes;  // inline bytes, or the connect private data
        std::vector<LocalSlice> sources;
        LocalSlice read_destination;
        RemoteAddr remote;
        uint64_t wr_id = 0;
        bool signaled = false;
        std::optional<uint32_t> imm;
        std::map<uint32_t, RemoteRegion> regions;  // a grant: everything exposed from now on
    };
    struct Link {  // one connection, both directions
        uint64_t epoch = 0;
        bool up = false;
        std::map<NodeId, uint64_t> last_delivery_ms;  // per sending side: keeps RC order
    };

    static std::pair<NodeId, NodeId> key(NodeId a, NodeId b) { return {std::min(a, b), std::max(a, b)}; }
    void attach(MemoryTransport* endpoint);
    void detach(NodeId node);
    void post(Op op);
    void deliver(Op& op);
    void deliver_connect(Op& op);
    // Marks the link down; tells each side whose reason is given.
    void break_link(NodeId a, NodeId b, std::optional<DisconnectReason> tell_a, std::optional<DisconnectReason> tell_b,
                    const std::string& why);
    Link* live_link(NodeId a, NodeId b, uint64_t epoch);
    // An operation from or to `node` is due at now_ms() but not yet delivered.
    bool has_due(NodeId node) const;

    uint64_t seed_;
    FaultConfig faults_;
    std::mt19937_64 random_;
    uint64_t now_ms_ = 0;
    uint64_t next_seq_ = 0;
    uint64_t next_epoch_ = 1;
    uint32_t next_rkey_ = 1;
    std::map<NodeId, MemoryTransport*> endpoints_;
    std::set<NodeId> partition_side_;  // empty: no partition
    bool across(NodeId a, NodeId b) const
    {
        return !partition_side_.empty() && partition_side_.contains(a) != partition_side_.contains(b);
    }
    std::map<std::pair<NodeId, NodeId>, Link> links_;
    std::map<std::pair<uint64_t, uint64_t>, Op> queue_;  // (deliver_at_ms, seq) → op
};

class MemoryTransport final : public Transport {
public:
    MemoryTransport(MemoryFabric& fabric, TransportConfig config);
    ~MemoryTransport() override;
    MemoryTransport(const MemoryTransport&) = delete;
    MemoryTransport& operator=(const MemoryTransport&) = delete;

    Status listen() override;
    Status connect(NodeId peer) override;
    void disconnect(NodeId peer) override;
    bool is_connected(NodeId peer) const override;

    Result<RegionId> register_region(void* addr, size_t bytes, RegionAccess access) override;
    Status deregister_region(RegionId region) override;
    std::span<std::byte> region_bytes(RegionId region) const override;
    Status expose(NodeId peer, uint32_t tag, RegionId region, uint64_t offset, uint64_t bytes,
                  RegionAccess access) override;
    void withdraw(NodeId peer, uint32_t tag) override;
    std::optional<RemoteRegion> remote_region(NodeId peer, uint32_t tag) const override;

    Status post_writes(NodeId peer, std::span<const WriteRequest> writes) override;
    Status post_read(NodeId peer, LocalSlice destination, RemoteAddr source, uint64_t wr_id) override;
    size_t poll(uint64_t now_ms, std::vector<Event>& events) override;
    int wait_fd() const override { return wake_.fd(); }
    // Drains the eventfd; false while events wait in the inbox or an operation of this
    // endpoint is due but undelivered (the next poll() reports or delivers them).
    bool arm_wait() override;

    uint32_t max_inline_bytes() const override { return config_.queues.max_inline_bytes; }
    NodeId self() const override { return config_.self; }
    const Status& config_status() const { return config_status_; }

private:
    friend class MemoryFabric;

    struct Region {
        std::byte* addr = nullptr;
        size_t bytes = 0;
        RegionAccess access = RegionAccess::local;
        uint32_t rkey = 0;
    };
    struct Peer {
        bool connected = false;
        uint64_t epoch = 0;
        wire::Nonce nonce{};
        uint32_t in_flight = 0;  // posted, not delivered: bounded by send_queue_depth
        std::map<uint32_t, RemoteRegion> remote;
    };

    Peer* connected_peer(NodeId peer);
    std::span<std::byte> slice_bytes(const LocalSlice& slice) const;
    // Target side of a remote access: the bytes, if rkey, bounds and access allow it.
    // Target side of a remote access by `from` on its connection `epoch`: the bytes, if a
    // window granted to that connection covers them with the right access.
    std::byte* remote_target(RemoteAddr remote, size_t bytes, bool write, NodeId from, uint64_t epoch) const;
    // Windows over what this endpoint exposes to `peer`, for its connection `epoch`, as a
    // verbs device's type-2 windows: good on that connection only, for exactly the range
    // and access. Keeps the windows that still match, drops the others (withdrawn).
    std::map<uint32_t, RemoteRegion> grant_windows(NodeId peer, uint64_t epoch);
    // What is exposed to `peer` changed: on a connection that is up, the windows follow
    // now and a grant goes to the peer in order behind what was posted to it.
    void exposures_changed(NodeId peer);
    void push(Event event)
    {
        inbox_.push_back(std::move(event));
        wake_.signal();
    }

    // The wake-up eventfd (RAII). Written at most once between two drains: the hint is
    // an edge, so a busy simulation pays one write per arm_wait(), not one per event.
    class WakeFd {
    public:
        WakeFd();  // -1 if eventfd fails: wait_fd() then says "poll regularly"
        ~WakeFd();
        WakeFd(const WakeFd&) = delete;
        WakeFd& operator=(const WakeFd&) = delete;
        int fd() const { return fd_; }
        void signal();
        void drain();

    private:
        int fd_ = -1;
        bool signalled_ = false;
    };

    MemoryFabric* fabric_;
    TransportConfig config_;
    Status config_status_;
    HandshakeKey key_{};
    bool listening_ = false;
    bool dead_ = false;
    std::vector<std::optional<Region>> regions_;
    struct Exposure {
        RegionId region;
        uint64_t offset = 0;
        uint64_t bytes = 0;
        RegionAccess access = RegionAccess::local;
    };
    std::map<NodeId, std::map<uint32_t, Exposure>> exposures_;
    struct Window {
        NodeId peer = 0;
        uint64_t epoch = 0;
        uint32_t tag = 0;
        RegionId region;
        uint64_t offset = 0;
        uint64_t bytes = 0;
        RegionAccess access = RegionAccess::local;
    };
    std::map<uint32_t, Window> windows_;  // by rkey; those of a peer's older connections go at its next
    std::map<NodeId, Peer> peers_;
    std::vector<Event> inbox_;
    WakeFd wake_;
};

}  // namespace rcpg::transport
