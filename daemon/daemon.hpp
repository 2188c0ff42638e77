// rcpgd's core: local clients and the node's delivery ring. The node's part in the
// protocol is an ordering::Node, which the daemon steps and feeds (daemon/cluster.cpp).
//
// One thread does everything but pinning and unpinning client memory for the device,
// which is slow enough to stall a node (daemon/background.hpp). Each step drains the
// clients' submission rings into the delivery ring in sequence order, publishes the new
// tail once per batch, wakes the clients that sleep on an entry of theirs, and serves
// control requests over libqb IPC.
// The loop spins for a short while after work and then sleeps (eventcount: it raises
// `daemon_sleeping` in the ring header, re-checks, and blocks; a client that publishes a
// submission while the flag is up rings the doorbell eventfd).
#pragma once

#include "base/status.hpp"
#include "daemon/background.hpp"
#include "daemon/cluster_state.hpp"
#include "daemon/event_loop.hpp"
#include "daemon/options.hpp"
#include "daemon/ring_id_store.hpp"
#include "libcpg/ipc/fd_passing.hpp"
#include "libcpg/ipc/protocol.hpp"
#include "ordering/cluster_wire.hpp"
#include "ordering/delivery_ring.hpp"
#include "ordering/group_table.hpp"
#include "ordering/node.hpp"
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

// A one-node cluster sequences locally with no RDMA; in a cluster one node is the
// sequencer and the others are members (ordering/node.hpp).
using Role = ordering::Role;
using Counters = ordering::NodeCounters;

// The clock the node is stepped with: CLOCK_MONOTONIC_COARSE in milliseconds.
uint64_t coarse_clock_ms();

class Daemon : private ordering::LocalSide {
public:
    // The daemon serving, or why it cannot start.
    static base::Result<std::unique_ptr<Daemon>> create(const Options& options);
    ~Daemon() override;
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Runs until `stop` becomes true: turns, busy-polls a while after work
    // (`busy_poll_us`), then sleeps on the event loop until a client, the fabric or a
    // timer wakes it.
    void run(const std::atomic<bool>& stop);

    // The loop's parts, for a caller that drives the daemon itself with its own clock.
    // One turn at `now_ms` (the node's clock, coarse_clock_ms() in run()), without
    // waiting: the liveness word, the node's step, the clients' submissions, closing
    // sessions, flow control. True when it did work.
    bool turn(uint64_t now_ms);
    // After a turn without work: whether to sleep and for how long. `sleep` raises
    // `daemon_sleeping` in the ring header (clients then ring the doorbell), which
    // wait() lowers again; `again`: there is work after all; `busy`: the node has work,
    // poll on.
    struct SleepPlan {
        enum class Kind : uint8_t { sleep, again, busy } kind;
        int timeout_ms;
    };
    SleepPlan plan_sleep(uint64_t now_ms);
    // Waits on the event loop (clients' sockets and doorbells, the fabric) at most
    // `timeout_ms`, handling what arrives; 0 only polls.
    void wait(int timeout_ms);

    const Counters& counters() const { return node_->counters(); }
    size_t client_count() const { return sessions_.size(); }
    Role role() const { return node_->role(); }
    // Whether the daemon stopped because it could not go on (lost its cluster).
    bool failed() const { return node_->failed(); }

private:
    explicit Daemon(const Options& options);
    base::Status start();
    base::Status start_ipc();

    // Cluster (daemon/cluster.cpp): the transport and this node's ordering::Node.
    base::Status start_node();
    bool submit_data(ClientSession& session, const ipc::SubmissionDescriptor& descriptor, uint16_t flags);
    bool forward_data(ClientSession& session, const ipc::SubmissionDescriptor& descriptor, uint32_t total_bytes);
    base::Status prepare_cluster_session(ClientSession& session);
    std::pair<uint64_t, uint64_t> arena_part_range(const ClientSession& session, ArenaPart part) const;
    ArenaPart arena_part_of(const ipc::SubmissionDescriptor& descriptor) const;
    void start_pinning(ClientSession& session, ArenaPart part);
    void finish_pinning(uint64_t serial, ArenaPart part, PartPinning& pinning);
    ClientSession* session_by_serial(uint64_t serial);
    void retire_arena(ClientSession& session);
    uint64_t client_pinned_bytes();
    bool device_can_read(ClientSession& session, const ipc::SubmissionDescriptor& descriptor);
    std::optional<transport::LocalSlice> arena_slice(const ClientSession& session,
                                                     const ipc::SubmissionDescriptor& descriptor) const;
    void publish_sub_head(ClientSession& session, uint64_t sub_head);
    void note_forwarded(ClientSession& session);
    bool request_change(ClientSession& session, const ordering::GroupName& name, delivery::Reason reason);
    void send_join_response(ClientSession& session, uint64_t join_position, uint64_t join_seq);
    void leave_cluster();
    void status_of_remotes(ipc::StatusResponse& response);
    // visit(session, open): every session, open ones first, then those still closing.
    template <typename Visit>
    void for_each_session(Visit&& visit);
    template <typename Visit>
    void for_each_session_of(uint32_t pid, Visit&& visit);

    // What ordering::Node needs from this node's clients (ordering::LocalSide).
    uint64_t local_reclaim_limit() override;
    void on_entry(uint32_t group_id) override;
    bool on_admitted() override;
    void on_own_join(const ordering::GroupName& group, uint32_t pid, uint32_t group_id, uint64_t position,
                     uint64_t seq) override;
    void on_own_removal(const ordering::GroupName& group, uint32_t pid) override;
    void on_batch_completed(uint64_t batch) override;
    void on_applied() override;

    // libqb service callbacks.
    int32_t on_accept(qb_ipcs_connection_t* connection, uid_t uid, gid_t gid);
    void on_created(qb_ipcs_connection_t* connection);
    int32_t on_message(qb_ipcs_connection_t* connection, void* data, size_t size);
    void on_destroyed(qb_ipcs_connection_t* connection);

    bool allowed(uid_t uid, gid_t gid) const;
    uint64_t read_position(ClientSession& session, uint64_t tail);
    uint64_t reader_limit(ClientSession& session, uint64_t tail, std::vector<ordering::DeliveryRing::Hold>* holds);
    bool reads_entry(ClientSession& session, const delivery::EntryHeader& entry, uint64_t position,
                     std::span<const std::byte> payload);
    void update_hold(ClientSession& session, uint64_t limit, uint64_t tail);
    bool move_to_backlog(ClientSession& session);
    bool move_slow_readers();
    void handle_init(ClientSession& session, const ipc::InitRequest& request);
    bool open_doorbell(ClientSession& session);
    bool reserve_pinning(ClientSession& session);
    void handle_join(ClientSession& session, const ipc::GroupRequest& request);
    void handle_leave(ClientSession& session, const ipc::GroupRequest& request);
    void handle_membership(ClientSession& session, const ipc::GroupRequest& request);
    void handle_iteration(ClientSession& session, const ipc::IterationRequest& request);
    void handle_status(ClientSession& session);
    // EVS (daemon_evs.cpp).
    void handle_evs_join(ClientSession& session, const ipc::EvsGroupsRequest& request);
    void handle_evs_leave(ClientSession& session, const ipc::EvsGroupsRequest& request);
    void handle_view_get(ClientSession& session);
    void handle_evs_groups(ClientSession& session);
    void send_evs_groups_response(ClientSession& session, ipc::RequestId request, cs_error_t error, uint32_t done);
    bool evs_entry_wanted(ClientSession& session, uint64_t position, std::span<const std::byte> payload);
    bool evs_wake_due(ClientSession& session, uint64_t from);
    void respond_status(ClientSession& session, int32_t id, cs_error_t error);
    void send_wake(ClientSession& session);
    void disconnect_later(ClientSession& session);
    void mark_cut_off(ClientSession& session);

    // The fd-passing socket.
    void on_fd_socket_readable();
    void on_fd_request(int socket);

    // Taking the clients' submissions into the order.
    bool drain_submissions();
    bool drain_session(ClientSession& session, uint32_t budget);
    void publish_and_wake();
    void update_flow_control();
    void disconnect_stuck_clients();
    void finish_closing_sessions();
    bool submissions_pending() const;
    void release_pins();

    Options options_;
    EventLoop loop_;
    Background background_{loop_};  // stopped first: its work uses the transport
    qb_ipcs_service_t* service_ = nullptr;
    std::unique_ptr<ordering::DeliveryRing> ring_;
    std::unique_ptr<ordering::Node> node_;  // after the ring: it deregisters the ring first
    ipc::UniqueFd fd_socket_;
    std::map<int, std::chrono::steady_clock::time_point> fd_requests_;
    std::map<qb_ipcs_connection_t*, std::unique_ptr<ClientSession>> sessions_;
    uint64_t next_session_serial_ = 1;
    uint64_t pinning_reserved_bytes_ = 0;  // sum of the sessions' pinning_reserved_bytes
    std::map<qb_ipcs_connection_t*, uid_t> accepted_uids_;  // accepted, not yet created
    std::vector<std::unique_ptr<ClientSession>> closing_;
    // Closed sessions whose client still holds an entry in place in a callback (reader_limit).
    std::vector<std::unique_ptr<ClientSession>> held_after_close_;
    struct BatchGroup {
        uint32_t group_id;
        uint64_t end_position;  // end of the group's last entry in this batch
    };
    std::vector<BatchGroup> batch_groups_;  // groups with entries appended since the last publish
    bool ring_blocked_ = false;  // the last drain stopped on a full ring
    RingIdStore ring_ids_;
    uint64_t saved_ring_seq_ = 0;  // what ring_ids_ holds
    void save_ring_seq();
    const std::atomic<bool>* stop_ = nullptr;
};

}  // namespace rcpg::daemon
