// Node: one node's part in the fixed-sequencer protocol, free of I/O besides the
// Transport it is given — no sockets, no threads, no clock of its own. The caller steps
// it with the time (`step(now_ms)`) and hands it its local clients' work; the node tells
// the caller what concerns those clients through LocalSide. rcpgd drives one over the
// verbs transport with libqb clients (daemon/); the simulation tests drive whole
// clusters of them over the memory transport with simulated clients, from a seed.
//
// Roles: a node without a transport is `single` and sequences locally. In a cluster the
// first node of the sequencer order sequences its own clients' work and every other
// node's, and replicates its ring into theirs; the others are members that forward to it
// and check and apply what it writes. When the sequencer fails, the next node of the
// view in that order takes over (failover). The protocol and its invariants:
// ordering/NOTES.md.
#pragma once

#include "base/status.hpp"
#include "ordering/cluster_wire.hpp"
#include "ordering/delivery_ring.hpp"
#include "ordering/delivery_stream.hpp"
#include "ordering/device_copier.hpp"
#include "ordering/election.hpp"
#include "ordering/forward_log.hpp"
#include "ordering/group_table.hpp"
#include "ordering/heartbeat_schedule.hpp"
#include "ordering/hold_words.hpp"
#include "ordering/join_candidates.hpp"
#include "ordering/membership.hpp"
#include "ordering/node_state.hpp"
#include "ordering/peer_liveness.hpp"
#include "ordering/remote_node.hpp"
#include "ordering/ring_applier.hpp"
#include "ordering/safe_stability.hpp"
#include "transport/registered_memory.hpp"
#include "transport/ring_reader.hpp"
#include "transport/ring_writer.hpp"
#include "transport/transport.hpp"

#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rcpg::ordering {

enum class LogLevel : uint8_t { error, warning, info, debug };
using LogSink = std::function<void(LogLevel, std::string_view)>;

struct NodeCounters {
    uint64_t messages_sequenced = 0;
    uint64_t bytes_sequenced = 0;
    uint64_t confchgs_sequenced = 0;
    uint64_t ring_full_events = 0;
    uint64_t protocol_violations = 0;
    uint64_t messages_delivered = 0;  // data entries that reached this node's ring (on every role)
    uint64_t bytes_delivered = 0;
    uint64_t messages_forwarded = 0;  // sent to the sequencer (members)
    uint64_t bytes_forwarded = 0;
    uint64_t flow_control_events = 0;  // times flow control was raised
    uint64_t rdma_errors = 0;          // connections lost, refused, failed posts
    uint64_t messages_copied_by_device = 0;  // sequencer: payloads the loopback copied into the ring
    uint64_t bytes_copied_by_device = 0;
    uint64_t nodes_failed = 0;       // sequencer: nodes removed from the view for failing
    uint64_t failovers = 0;          // times this node continued under a new sequencer
    uint64_t last_failover_ms = 0;   // from losing the sequencer to the new view, at this node
    uint64_t records_resent = 0;     // forwarded records sent again to a new sequencer
    uint64_t stuck_clients_disconnected = 0;  // read nothing while holding a full ring back
    uint64_t backlog_moves = 0;          // a slow reader's entries moved to its backlog
    uint64_t backlog_entries_moved = 0;
    uint64_t backlog_overflows = 0;      // clients cut off for a full backlog
    uint64_t clients_refused = 0;  // local connections over a cap, or unawaited on the descriptor socket
    uint64_t handshakes_refused = 0;  // incoming fabric connections that did not prove the key (or were duplicates)
};

// The totem view: the nodes of the cluster and the ring id (sequencer, ring_seq).
struct View {
    std::vector<uint32_t> members;  // sorted
    uint64_t ring_seq = 1;
    uint32_t ring_nodeid = 0;
};

struct NodeConfig {
    uint32_t nodeid = 0;
    // Every configured node, this one included. One node (or none): `single`.
    std::vector<uint32_t> nodes;
    // Who sequences: the first of these; when it fails, the next one in the view. Nodes
    // missing here follow by id; empty means by id.
    std::vector<uint32_t> sequencer_order;
    uint64_t inbound_ring_bytes = 0;
    // A node whose heartbeats stopped this long ago is taken for failed (a closed or
    // broken connection is noticed at once).
    uint32_t failure_timeout_ms = 3000;
    // Sequencer: copy payloads above the inline limit into the ring with the device, over
    // a loopback connection; otherwise (or if the loopback cannot be set up) the CPU.
    bool device_copies = true;
    // The ring id sequence of the node's first view: one above the last one it had, kept
    // across restarts by the daemon, so ring ids keep rising as corosync's do.
    uint64_t first_ring_seq = 1;
    LogSink log;
};

// What the protocol needs from this node's clients, and tells them.
class LocalSide {
public:
    virtual ~LocalSide() = default;
    // The lowest ring position a local reader still needs (may walk every client), apart
    // from payloads readers hold in place past it: those it sets as the ring's holds
    // (DeliveryRing::set_holds), which the writer goes round, or which a member
    // publishes to the sequencer for its writer.
    virtual uint64_t local_reclaim_limit() = 0;
    // An entry of `group_id` now ends at the ring's unpublished tail (sequenced here, or
    // applied from the sequencer's stream): its readers will need waking. A totem confchg
    // is reported as kTotemEntries (no group has number 0).
    virtual void on_entry(uint32_t group_id) = 0;
    static constexpr uint32_t kTotemEntries = 0;
    // Member: admitted with the sequencer's snapshot; start serving clients. False: cannot.
    virtual bool on_admitted() = 0;
    // Member: the join of this node's process `pid` to `group` was applied at `position`.
    virtual void on_own_join(const GroupName& group, uint32_t pid, uint32_t group_id, uint64_t position,
                             uint64_t seq) = 0;
    // Member: this node's process `pid` left `group` (leave or process down).
    virtual void on_own_removal(const GroupName& group, uint32_t pid) = 0;
    // Every batch up to `batch` was carried out by the device, so the local memory it read
    // is free again (member: forwarded records; sequencer: payloads copied into the ring).
    virtual void on_batch_completed(uint64_t batch) = 0;
    // Member: entries were applied; publish them to the readers.
    virtual void on_applied() = 0;
};

class Node {
public:
    // `ring` and `local` outlive the node. Without a transport the node is `single`;
    // with one it registers the ring and its own regions, and the sequencer listens.
    static base::Result<std::unique_ptr<Node>> create(NodeConfig config, DeliveryRing& ring, LocalSide& local,
                                                      std::unique_ptr<transport::Transport> transport);
    ~Node();
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    Role role() const { return role_; }
    NodeState state() const { return state_; }
    uint32_t sequencer() const { return sequencer_; }
    // Member: the sequencer was lost and the node waits for the next one's view;
    // sequencer: collecting the survivors' tails. Forwarding waits meanwhile.
    bool in_failover() const { return is_member_failover(state_) || state_ == NodeState::electing; }
    // The node cannot go on (lost the sequencer, or it broke the protocol).
    bool failed() const { return state_ == NodeState::failed; }
    // Serving clients: not a member still joining (nor one that failed).
    bool admitted() const { return !is_joining(state_) && state_ != NodeState::failed; }
    const View& view() const { return view_; }
    GroupTable& groups() { return groups_; }
    const GroupTable& groups() const { return groups_; }
    NodeCounters& counters() { return counters_; }
    const NodeCounters& counters() const { return counters_; }
    transport::Transport* transport() { return transport_.get(); }

    // One turn at `now_ms`: transport events, connecting, and the role's work (member:
    // check and apply what the sequencer wrote, publish credit; sequencer: replicate
    // what a full send queue held back, ask for credits when blocked). True if it did work.
    bool step(uint64_t now_ms);
    // Before the caller sleeps: arms the transport's wait_fd(). `busy`: work came in, do
    // not sleep; `poll_soon`: something only a step notices is under way.
    enum class Sleep : uint8_t { sleep, poll_soon, busy };
    Sleep prepare_sleep(uint64_t now_ms);
    // The latest time the next step must run at: heartbeats to send or check, deadlines.
    uint64_t next_timer_ms() const;

    // The lowest ring position anyone still needs (local readers and, at the sequencer,
    // every member's credit). reclaim_limit() recomputes and caches; the cached value
    // stays a safe lower bound, since readers only move forward.
    uint64_t reclaim_limit();
    uint64_t cached_reclaim_limit() const { return reclaim_limit_; }

    // Single and sequencer: appends to the ring. False when the ring has no room (nothing
    // changed; retry once readers moved on).
    bool sequence_data(uint32_t group_id, ProcessId process, uint16_t flags, uint32_t total_bytes,
                       std::span<const std::byte> payload);
    // Sequencer: the same, but the device copies the payload from registered local memory
    // into the ring (loopback), so no CPU touches it. `source` stays untouched until
    // on_batch_completed(releasing_batch() as it is after this call). Only when
    // copies_by_device().
    bool sequence_data_by_device(uint32_t group_id, ProcessId process, uint16_t flags, uint32_t total_bytes,
                                 transport::LocalSlice source);
    // Whether a payload of this size goes by device copy: the loopback is up and the
    // payload is above the inline limit (below it, a CPU copy is what a NIC would do too).
    bool copies_by_device(uint64_t payload_bytes) const;
    // Whether, as sequencer, it copies payloads with its device at all (NodeConfig), so
    // whether it will ever read a client's memory by device.
    bool device_copies_configured() const { return config_.device_copies; }
    // Where the complete entries end: device copies in flight hold publication and
    // replication back to the first entry they fill.
    uint64_t complete_tail() const;
    // What this node's clients may read: the complete entries, up to the first SAFE
    // message that not every node of the view holds yet.
    uint64_t publishable_tail();
    // A join, leave or process down; a removal of a non-member announces nothing.
    bool sequence_change(const GroupName& name, ProcessId process, delivery::Reason reason);
    // Sequencer: takes the other nodes' records and pending node removals. `blocked` is
    // set when the ring had no room for something.
    bool drain_inbound(bool& blocked);
    // Sequencer: posts the staged device copies, then [sent, publishable tail) of the
    // ring to every member.
    void replicate();
    std::vector<RemoteStatus> remote_status();

    // Member: appends a data record gathered from registered memory (the DataPrefix and
    // the payload); committed by commit_forwarded(). False when the inbound ring or the
    // send queue is full.
    bool forward_data(std::span<const transport::LocalSlice> parts, uint32_t payload_bytes);
    // Member: a join, leave or process down of this node's process `pid`.
    bool forward_group_op(uint32_t pid, const GroupName& name, delivery::Reason reason);
    // The batch whose completion frees the local memory of everything handed to the node
    // so far: a member's next commit (request_commit() makes sure there is one); at the
    // sequencer the staged device copies, or with none staged the last batch posted
    // (possibly completed already: see completed_batch()). on_batch_completed reports it.
    uint64_t releasing_batch() const
    {
        return role_ == Role::member || copier_.has_staged() ? next_batch_ : next_batch_ - 1;
    }
    uint64_t completed_batch() const { return completed_batch_; }
    // Member: commits the appended records (one signalled tail write); false when the
    // send queue is full (retry on the next turn).
    bool commit_forwarded();
    // Member: the next commit must happen (and be signalled) even with nothing appended:
    // the caller waits for its completion to release something.
    void request_commit() { forwarded_uncommitted_ = true; }
    // Member: asks the sequencer to remove this node. Step until left() (or a deadline).
    bool begin_leave();
    // Whether the writer of this node's ring goes round a hold of its readers: always
    // where this node writes it; on a member, once the hold has a word at the sequencer
    // (more holds than words: the credit stays before those without one).
    bool hold_published(const DeliveryRing::Hold& hold) const;
    bool left() const { return state_ == NodeState::left; }
    void disconnect_from_sequencer();

private:
    Node(NodeConfig config, DeliveryRing& ring, LocalSide& local, std::unique_ptr<transport::Transport> transport);
    // The only place the state changes: asserts that the protocol allows the transition
    // (node_state.hpp) and sets the role with it. Nothing leaves a final state: what
    // still happens after one (events of a closing connection) changes nothing.
    void set_state(NodeState to);
    void fail() { set_state(NodeState::failed); }
    // Joining or in failover: the same phase with the connection at `link`.
    void set_link(Link link);
    base::Status start();
    base::Status start_sequencer();
    base::Status start_member();
    template <typename... Args>
    void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args);

    void on_event(const transport::Event& event);
    void on_sequencer_event(const transport::Event& event);
    void on_member_event(const transport::Event& event);
    base::Status prepare_sequencing();
    size_t node_index(uint32_t nodeid) const;
    // Where `nodeid` writes its heartbeat counter in this node's memory.
    const wire::HeartbeatLine& heartbeat_line(uint32_t nodeid) const;

    // Failure detection.
    void send_heartbeats(uint64_t now_ms);
    void check_heartbeats(uint64_t now_ms);
    // False when the send queue is full (owed, sent again at the next step).
    bool write_heartbeat(uint32_t peer, transport::RemoteAddr target);
    void send_owed_heartbeats();

    // Failover.
    void next_join_candidate();
    void begin_session();
    // Exposes this node's ring (write; read too during a failover), its control words,
    // snapshot region and inbound credit word to sequencer_, and withdraws them from
    // whoever had them before.
    void grant_to_sequencer();
    void withdraw_grants();
    bool granted_for_hello(const RemoteNode& node, const wire::Hello& hello) const;
    void retire_writer();
    void keep_mesh(uint64_t now_ms);
    void start_cluster();
    void refuse_admission_requests();
    void lose_sequencer(const std::string& why);
    void next_candidate();
    void promote();
    bool election_step(uint64_t now_ms);
    void finish_election();
    bool post_repair_reads();
    void install_after_failover();
    bool take_rejoin(RemoteNode& node, const wire::Hello& hello);
    bool resequence_own();
    void release_member_batches();
    void resend_unsequenced();
    void note_origin(uint32_t nodeid, uint64_t origin_seq);
    bool local_sequencing_blocked() const;
    void report_released();

    // SAFE delivery.
    void note_safe(uint64_t position, uint64_t end, uint16_t flags);
    void update_stable();
    void follow_stable();

    // Sequencer.
    // Appends a data entry with its header filled (payload still to come); nullptr when
    // the ring has no room.
    delivery::EntryHeader* append_data(uint32_t group_id, ProcessId process, uint16_t flags, uint32_t total_bytes,
                                  uint32_t length);
    bool sequence_removal(const GroupName& name, const std::vector<ProcessId>& processes, delivery::Reason reason);
    void write_confchg(const GroupChange& change, ProcessId process, uint64_t limit);
    bool sequence_totem();
    bool sequence_inbound(RemoteNode& node, const wire::InboundRecord& record);
    bool sequence_counted(RemoteNode& node, const wire::InboundRecord& record);
    // Whether a data record of `process` is sequenced (a CPG member's, or any EVS one); the
    // same rule for other nodes' records and, after a failover, for this node's own.
    bool data_record_admitted(const wire::DataPrefix& prefix, ProcessId process) const;
    bool append_dropped(uint32_t nodeid);
    bool sequence_removals();
    bool admit(RemoteNode& node, const wire::Hello& hello);
    void flush_device_copies();
    void on_batch_completed(uint64_t batch);

    // Member.
    bool apply_delivered();
    bool apply_snapshot();
    bool apply_confchg(const delivery::EntryHeader& entry, uint64_t position, std::span<const std::byte> payload);
    bool apply_totem(uint64_t position, std::span<const std::byte> payload);
    void publish_member_credit();
    std::vector<DeliveryRing::Hold> holds_by_position() const;  // this node's readers'
    bool publish_hold_words(size_t& placed);
    uint64_t credit_before_holds(uint64_t limit, size_t placed) const;

    NodeConfig config_;
    DeliveryRing& ring_;
    LocalSide& local_;
    std::unique_ptr<transport::Transport> transport_;
    NodeState state_ = NodeState::single;
    Role role_ = Role::single;  // role_of(state_), kept through a final state
    uint32_t sequencer_ = 0;
    GroupTable groups_;
    View view_;
    std::vector<uint32_t> order_;  // sequencer order, complete
    std::set<uint32_t> suspects_;  // sequencers (or candidates) this node gave up on
    // Per node: the last of its forwarded records the ring holds (sequenced or dropped).
    std::map<uint32_t, uint64_t> last_origin_;
    transport::RegisteredMemory heartbeat_memory_;  // one line per node: its counter lands there
    HeartbeatSchedule heartbeats_;
    SafeStability safe_;
    uint64_t held_sent_ = 0;  // member: what it last told the sequencer it holds
    NodeCounters counters_;
    uint64_t reclaim_limit_ = 0;
    uint64_t now_ms_ = 0;
    uint64_t next_refusal_log_ms_ = 0;  // incoming_refused is logged at most once a second
    std::vector<transport::Event> events_;
    transport::Registration ring_data_registration_;     // the ring's data area
    transport::Registration ring_control_registration_;  // the sequencer's words in its header
    std::optional<uint32_t> grantee_;  // member: the node its ring is exposed to

    // Sequencer.
    transport::RegisteredMemory credit_memory_;  // one cache line per node: its delivery credit word
    std::map<uint32_t, RemoteNode> remotes_;
    std::deque<uint32_t> pending_removals_;  // nodes whose NODEDOWN waits for ring room
    std::set<uint32_t> removals_failed_;     // of those, the ones that failed (not left)
    bool replication_blocked_ = false;       // a send queue was full: retry after completions
    bool ring_was_blocked_ = false;          // the last drain found the ring full: ask for credit
    bool record_copied_by_device_ = false;   // the inbound record just sequenced
    uint64_t current_origin_ = 0;            // origin of the record being sequenced (0: none)
    bool resequencing_ = false;              // sequencing this node's own forwarded records
    // A node that took over: the last batch number of its time as a member, released once
    // everything it had forwarded is in its ring (0: nothing to release).
    uint64_t member_batches_end_ = 0;
    std::optional<Election> election_;  // while electing
    DeviceCopier copier_;  // device copies into this node's own ring (loopback)

    // Member.
    uint64_t next_connect_ms_ = 0;
    transport::RegisteredMemory member_memory_;  // inbound credit word, then the snapshot region
    std::optional<transport::RingWriter> writer_;
    transport::RegisteredMemory spare_shadow_;  // of the last writer: the next one reuses it
    std::optional<transport::RemoteRegion> delivery_credit_;  // at the sequencer
    std::optional<transport::RemoteAddr> sequencer_heartbeat_;  // where ours go
    PeerLiveness sequencer_liveness_;  // its heartbeat word and the ring's cluster_tail
    uint64_t failover_started_ms_ = 0;
    uint64_t failover_deadline_ms_ = 0;
    ForwardLog forwarded_;  // records sent to the sequencer, not yet in the ring
    std::optional<JoinCandidates> join_;  // whom it asks to be admitted (with other nodes)
    uint64_t join_deadline_ms_ = 0;       // the node asked admits or refuses by then
    // Admitted members keep a connection to every other member of the view (the higher
    // id connects), so that the one taking over after a failure needs no set-up.
    std::map<uint32_t, uint64_t> mesh_next_ms_;
    RingApplier applier_{ring_};     // checks what the sequencer wrote; how far it is applied
    uint64_t published_credit_ = 0;  // last consumed position written to the sequencer
    HoldWords hold_words_;  // which of its readers' holds the sequencer goes round
    uint64_t next_batch_ = 1;
    uint64_t completed_batch_ = 0;
    bool forwarded_uncommitted_ = false;
};

}  // namespace rcpg::ordering
