// rcpgd's core: local clients, the node's delivery ring, and the node's part in the
// cluster (daemon/cluster.cpp): the sequencer, or a node that sends through it.
//
// One thread does everything. Each step drains the clients' submission rings into the
// delivery ring in sequence order, publishes the new tail once per batch, wakes the
// clients that sleep on an entry of theirs, and serves control requests over libqb IPC.
// The loop spins for a short while after work and then sleeps (eventcount: it raises
// `daemon_sleeping` in the ring header, re-checks, and blocks; a client that publishes a
// submission while the flag is up rings the doorbell eventfd).
#pragma once

#include "daemon/delivery_ring.hpp"
#include "daemon/event_loop.hpp"
#include "daemon/options.hpp"
#include "libcpg/ipc/fd_passing.hpp"
#include "libcpg/ipc/protocol.hpp"
#include "ordering/cluster_wire.hpp"
#include "ordering/group_table.hpp"
#include "transport/transport.hpp"

#include <qb/qbipcs.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace rcpg::daemon {

struct ClientSession;
struct ClusterState;
struct RemoteNode;

// A one-node cluster sequences locally with no RDMA; in a cluster one node is the
// sequencer (it sequences its own clients and every other node's submissions and writes
// the order into every node's ring) and the others are members.
enum class Role : uint8_t { single, sequencer, member };

struct Counters {
    uint64_t messages_sequenced = 0;
    uint64_t bytes_sequenced = 0;
    uint64_t confchgs_sequenced = 0;
    uint64_t ring_full_events = 0;
    uint64_t protocol_violations = 0;
    uint64_t messages_delivered = 0;     // data entries that reached this node's ring (on every role)
    uint64_t bytes_delivered = 0;
    uint64_t messages_forwarded = 0;     // sent to the sequencer (members)
    uint64_t bytes_forwarded = 0;
    uint64_t flow_control_events = 0;    // times flow control was raised
    uint64_t rdma_errors = 0;            // connections lost, refused, failed posts
};

class Daemon {
public:
    // Returns nullptr and fills `error` when the daemon cannot start.
    static std::unique_ptr<Daemon> create(const Options& options, std::string& error);
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Runs until `stop` becomes true.
    void run(const std::atomic<bool>& stop);
    // One step of the loop: waits at most `timeout_ms` for something to do.
    void step(int timeout_ms);

    const Counters& counters() const { return counters_; }
    size_t client_count() const { return sessions_.size(); }
    Role role() const { return role_; }
    // Whether the daemon stopped because it could not go on (lost its cluster).
    bool failed() const { return failed_; }

private:
    explicit Daemon(const Options& options);
    bool start(std::string& error);
    bool start_ipc(std::string& error);

    // Cluster (daemon/cluster.cpp).
    bool start_cluster(std::string& error);
    bool cluster_step();  // true if it did work
    // Before the loop blocks: arms the transport's wake-up descriptor. `busy`: work came
    // in, do not sleep; `poll_soon`: something only polling notices is under way.
    enum class ClusterSleep : uint8_t { sleep, poll_soon, busy };
    ClusterSleep prepare_cluster_sleep();
    void on_transport_event(const transport::Event& event);
    bool submit_data(ClientSession& session, const ipc::SubmissionDescriptor& descriptor, uint16_t flags);
    bool forward_data(ClientSession& session, const ipc::SubmissionDescriptor& descriptor, uint32_t total_bytes);
    void publish_sub_head(ClientSession& session, uint64_t sub_head);
    void note_forwarded(ClientSession& session);
    bool forward_change(ClientSession& session, const ordering::GroupName& name, cpg_reason_t reason);
    bool apply_delivered();
    void apply_confchg(const ipc::EntryHeader& entry, uint64_t position, std::span<const std::byte> payload);
    bool drain_inbound();
    bool sequence_inbound(RemoteNode& node, const ordering::wire::InboundRecord& record);
    bool admit(RemoteNode& node, const ordering::wire::Hello& hello);
    void publish_member_credit();
    bool request_change(ClientSession& session, const ordering::GroupName& name, cpg_reason_t reason);
    bool sequence_data(uint32_t group_id, ordering::ProcessId process, uint16_t flags, uint32_t total_bytes,
                       std::span<const std::byte> payload);
    bool sequence_removal(const ordering::GroupName& name, const std::vector<ordering::ProcessId>& processes,
                          cpg_reason_t reason);
    bool sequence_totem();
    void send_join_response(ClientSession& session, uint64_t join_position, uint64_t join_seq);
    bool commit_forwarded();
    void leave_cluster();
    uint64_t cluster_reclaim_limit(uint64_t local_limit);
    void replicate();

    // libqb service callbacks.
    int32_t on_accept(qb_ipcs_connection_t* connection, uid_t uid, gid_t gid);
    void on_created(qb_ipcs_connection_t* connection);
    int32_t on_message(qb_ipcs_connection_t* connection, void* data, size_t size);
    void on_destroyed(qb_ipcs_connection_t* connection);

    void handle_init(ClientSession& session, const ipc::InitRequest& request);
    void handle_join(ClientSession& session, const ipc::GroupRequest& request);
    void handle_leave(ClientSession& session, const ipc::GroupRequest& request);
    void handle_membership(ClientSession& session, const ipc::GroupRequest& request);
    void handle_iteration(ClientSession& session, const ipc::IterationRequest& request);
    void handle_status(ClientSession& session);
    void status_of_remotes(ipc::StatusResponse& response);  // cluster.cpp: the sequencer's
    void respond_status(ClientSession& session, int32_t id, cs_error_t error);
    void send_wake(ClientSession& session);
    void disconnect_later(ClientSession& session);

    // The fd-passing socket.
    void on_fd_socket_readable();
    void on_fd_request(int socket);

    // Sequencing into the delivery ring.
    // The lowest ring position a reader still needs; reclaim_limit() recomputes it (a walk
    // over the clients) and caches it in reclaim_limit_, which stays a safe lower bound.
    uint64_t reclaim_limit();
    uint64_t compute_reclaim_limit();
    bool sequence_change(const ordering::GroupName& name, ordering::ProcessId process, cpg_reason_t reason);
    void write_confchg(const ordering::GroupChange& change, ordering::ProcessId process, uint64_t limit);
    bool drain_submissions();
    bool drain_session(ClientSession& session, uint32_t budget);
    void publish_and_wake();
    void update_flow_control();
    void note_batch_entry(uint32_t group_id);
    void finish_closing_sessions();
    bool submissions_pending() const;
    void release_pins();

    Options options_;
    EventLoop loop_;
    qb_ipcs_service_t* service_ = nullptr;
    std::unique_ptr<DeliveryRing> ring_;
    ipc::UniqueFd doorbell_;
    ipc::UniqueFd fd_socket_;
    std::map<int, std::chrono::steady_clock::time_point> fd_requests_;
    ordering::GroupTable groups_;
    std::map<qb_ipcs_connection_t*, std::unique_ptr<ClientSession>> sessions_;
    std::vector<std::unique_ptr<ClientSession>> closing_;
    struct BatchGroup {
        uint32_t group_id;
        uint64_t end_position;  // end of the group's last entry in this batch
    };
    std::vector<BatchGroup> batch_groups_;  // groups with entries appended since the last publish
    Counters counters_;
    uint64_t reclaim_limit_ = 0;
    bool ring_blocked_ = false;           // the last drain stopped on a full ring
    uint64_t ring_seq_ = 1;               // totem ring id sequence of the current view
    std::vector<uint32_t> view_;          // node ids of the current view, sorted
    uint32_t ring_nodeid_ = 0;            // the sequencer of the view (totem ring id)
    Role role_ = Role::single;
    bool failed_ = false;
    const std::atomic<bool>* stop_ = nullptr;
    std::unique_ptr<ClusterState> cluster_;
};

}  // namespace rcpg::daemon
