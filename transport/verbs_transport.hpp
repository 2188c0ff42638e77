// The verbs implementation of Transport: RC queue pairs through librdmacm, one per peer.
//
// Control path (verbs_transport.cpp): binding the node's address picks the device and
// the protection domain; connections are set up and torn down by rdma_cm events; the
// connect request and the accept carry the challenge and its answer, the initiator's first
// SEND is its proof of the key (connect_private_data.hpp), and only then does each side
// SEND its HelloMessage with the regions exposed to that peer. An incoming attempt is a
// candidate, kept apart from the connections, until its proof arrived: nothing it does
// before is reported under the node id it claims.
// Data path (verbs_transport_datapath.cpp): posting writes/reads, polling completions,
// and arming the completion queues for a caller about to sleep (arm_wait).
//
// Release order (rdma-core's, as in rping): rdma_destroy_qp, ibv_destroy_cq,
// ibv_dereg_mr, ibv_destroy_comp_channel, ibv_dealloc_pd, rdma_destroy_id,
// rdma_destroy_event_channel. Member declaration order below and in Connection encodes
// it: members are destroyed in reverse.
#pragma once

#include "transport/completion.hpp"
#include "transport/connection_manager.hpp"
#include "transport/connect_private_data.hpp"
#include "transport/device.hpp"
#include "transport/memory_region.hpp"
#include "transport/queue_pair.hpp"
#include "transport/transport.hpp"

#include <list>
#include <map>
#include <memory>
#include <optional>
#include <tuple>

namespace rcpg::transport {

class VerbsTransport final : public Transport {
public:
    // Binds this node's address (rdma_cm picks the device) and allocates the PD.
    static Result<std::unique_ptr<VerbsTransport>> create(TransportConfig config);
    ~VerbsTransport() override;
    VerbsTransport(const VerbsTransport&) = delete;
    VerbsTransport& operator=(const VerbsTransport&) = delete;

    Status listen() override;
    Status connect(NodeId peer) override;
    void disconnect(NodeId peer) override;
    bool is_connected(NodeId peer) const override;

    Result<RegionId> register_region(void* addr, size_t bytes, RegionAccess access) override;
    Result<std::unique_ptr<PreparedRegion>> prepare_region(void* addr, size_t bytes, RegionAccess access) override;
    Result<RegionId> adopt_region(std::unique_ptr<PreparedRegion> prepared) override;
    Result<std::unique_ptr<PreparedRegion>> release_region(RegionId region) override;
    Status deregister_region(RegionId region) override;
    std::span<std::byte> region_bytes(RegionId region) const override;
    Status expose(NodeId peer, uint32_t tag, RegionId region, uint64_t offset, uint64_t bytes,
                  RegionAccess access) override;
    void withdraw(NodeId peer, uint32_t tag) override;
    std::optional<RemoteRegion> remote_region(NodeId peer, uint32_t tag) const override;

    Status post_writes(NodeId peer, std::span<const WriteRequest> writes) override;
    Status post_read(NodeId peer, LocalSlice destination, RemoteAddr source, uint64_t wr_id) override;
    size_t poll(uint64_t now_ms, std::vector<Event>& events) override;
    // An epoll descriptor over the completion channel (every connection's CQ) and the
    // rdma_cm event channel; see transport/NOTES.md "Sleeping".
    int wait_fd() const override { return wait_set_.fd(); }
    bool arm_wait() override;

    uint32_t max_inline_bytes() const override { return config_.queues.max_inline_bytes; }
    NodeId self() const override { return config_.self; }
    const DeviceInfo& device() const { return device_; }

    // Bytes of one receive slot: a hello fits (static_assert in the .cpp).
    static constexpr size_t kRecvSlotBytes = 512;

private:
    enum class State : uint8_t { resolving_addr, resolving_route, connecting, accepting, handshaking, connected };

    struct Connection {
        NodeId peer = 0;      // for a candidate: the node id it claims, proven by nothing yet
        bool active = false;  // we sent the connect request
        bool candidate = false;  // an incoming attempt whose proof has not arrived
        State state = State::resolving_addr;
        bool established = false;     // rdma_cm ESTABLISHED seen
        bool hello_received = false;
        bool hello_sent = false;       // from here on, what we expose changes by grants
        bool grant_due = false;        // exposures changed while the last grant was in flight
        uint32_t grants_sent = 0;
        uint32_t grants_received = 0;
        std::optional<uint64_t> grant_wr;  // send of the last grant, while its slot is busy
        bool doomed = false;          // reported as gone; destroyed by sweep()
        uint64_t deadline_ms = 0;     // set-up must finish by then (0: not armed yet)
        wire::Transcript transcript;  // this exchange: nonces, queue pairs (both sides)
        std::map<uint32_t, RemoteRegion> remote;
        // Verbs objects, released in reverse declaration order (see the file comment).
        CmId id;
        std::vector<std::byte> control;  // receive slots, then the send slots (proof, hello)
        MemoryRegion control_mr;
        CompletionQueue cq;
        QueuePair qp;
        QueuePair loopback_responder;  // connect(self()): the target side of `qp`
        // The windows the peer reaches our exposures through, bound to `qp`, by tag:
        // deallocated (the access withdrawn) when the tag is withdrawn, and first of all
        // when the connection goes, before the queue pair.
        struct Grant {
            MemoryWindow window;  // none on a device without windows
            const ibv_mr* mr = nullptr;
            uint64_t bytes = 0;
            RegionAccess access = RegionAccess::local;
            uint32_t rkey = 0;
        };
        std::map<uint32_t, Grant> windows;
    };

    struct Exposure {
        RegionId region;
        uint64_t offset = 0;
        uint64_t bytes = 0;
        RegionAccess access = RegionAccess::local;
        ibv_mr* mr = nullptr;  // the exposure's own registration: exactly these bytes
    };

    explicit VerbsTransport(TransportConfig config);

    // Control path.
    void handle_cm_event(const CmEvent& event, std::vector<Event>& events);
    void on_connect_request(const CmEvent& event, std::vector<Event>& events);
    void on_established(Connection& conn, const CmEvent& event, std::vector<Event>& events);
    void on_receive(Connection& conn, std::span<const std::byte> bytes, std::vector<Event>& events);
    void on_proof(Connection& conn, std::span<const std::byte> bytes, std::vector<Event>& events);
    void on_hello(Connection& conn, std::span<const std::byte> bytes, std::vector<Event>& events);
    void refuse_candidate(Connection& conn, Status detail, std::vector<Event>& events);
    void make_room_for_candidate(NodeId claimed);
    Status setup_queues(Connection& conn);
    Status connect_loopback();
    Result<std::pair<ibv_gid, uint8_t>> own_gid() const;
    Status send_hello(Connection& conn);
    Status send_proof(Connection& conn);
    // Brings the connection's windows in line with what is exposed to its peer (binds
    // what is new, deallocates what was withdrawn) and describes them.
    Result<std::vector<wire::ExposedRegion>> sync_windows(Connection& conn);
    // After the hello: the grant that tells the peer what it reaches now (one in flight at
    // a time unless it went inline; a change meanwhile is sent once it completed).
    Status send_grant(Connection& conn);
    // Sends the grant if one is due; a failure ends the connection (reported at poll()).
    Status flush_grant(Connection& conn);
    void exposures_changed(NodeId peer);
    std::byte* send_slot(Connection& conn, size_t index) const;
    rdma_conn_param conn_param(std::span<const std::byte> private_data) const;
    void maybe_connected(Connection& conn, std::vector<Event>& events);
    void fail(Connection& conn, EventKind kind, DisconnectReason reason, Status detail, std::vector<Event>& events);
    void sweep();
    bool cm_check_due();
    Connection* connection(NodeId peer) const;
    Connection* connected(NodeId peer) const;

    // Data path.
    void poll_completions(Connection& conn, std::vector<Event>& events);

    // Incoming attempts not yet proven, per node id claimed and in all: beyond, the oldest
    // goes (a replayed request can take a slot, never a connection).
    static constexpr size_t kMaxCandidatesPerClaim = 4;
    static constexpr size_t kMaxCandidates = 64;

    TransportConfig config_;
    HandshakeKey key_{};
    DeviceInfo device_;
    uint64_t now_ms_ = 0;
    // rdma_get_cm_event is a system call even when nothing is pending (a ucma write that
    // fails with EAGAIN): on an established data path it is checked rarely, see cm_check_due().
    bool cm_events_expected_ = true;   // a connection is being set up: check every poll()
    uint64_t last_cm_check_ms_ = 0;
    uint32_t polls_since_cm_check_ = 0;
    // arm_wait() found the cm channel readable: the next poll() reads it whatever the clock.
    bool cm_read_requested_ = false;
    // The last poll() stopped at its per-connection bound with completions possibly left
    // in a CQ: arm_wait() must not let the caller sleep on them (they raise no event).
    bool completions_left_ = false;
    std::vector<Event> pending_;  // events raised outside poll (disconnect())
    std::map<NodeId, std::map<uint32_t, Exposure>> exposures_;
    std::map<uint32_t, RegionAccess> region_access_;  // of regions registered here for peers
    // Verbs objects, released in reverse declaration order.
    EventChannel channel_;
    CmId listen_id_;
    ProtectionDomain pd_;
    CompletionChannel completion_channel_;  // every connection's CQ is attached to it
    WaitSet wait_set_;                      // watches the two channels; holds no verbs object
    std::unique_ptr<RegionTable> regions_;
    // One registration per exposed range (region, offset, bytes), shared by the peers it is
    // exposed to: the device checks a window's access against the registration's bounds
    // only (rxe ignores a window's own range, transport/NOTES.md), so each range a peer may
    // reach is registered on its own. Released after the connections and their windows.
    struct ExposureKey {
        uint32_t region = 0;
        uint64_t offset = 0;
        uint64_t bytes = 0;
        int flags = 0;  // of the registration: window binding, or the remote access itself
        auto operator<=>(const ExposureKey&) const = default;
    };
    std::map<ExposureKey, MemoryRegion> exposure_mrs_;
    std::map<NodeId, std::unique_ptr<Connection>> connections_;
    std::list<std::unique_ptr<Connection>> candidates_;  // oldest first
};

}  // namespace rcpg::transport
