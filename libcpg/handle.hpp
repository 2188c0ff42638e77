// One CPG handle: its IPC connection, its mappings of the daemon's shared memory, and
// the state of its send and dispatch paths. An EVS handle (libevs) is the same handle
// with an EVS part (evs_): it reads EVS messages and totem confchgs instead of a group.
//
// Threads: one thread may sit in cpg_dispatch() while others send, join, leave or
// finalize. `state_mutex` (recursive, because callbacks may call back into the library
// on the dispatching thread) guards the membership view and the ring cursor and is held
// while entries are processed, never while sleeping. `request_mutex` pairs each control
// request with its response. `send_mutex` guards the submission ring and the arena.
// Lock order: state_mutex, then send_mutex or request_mutex. An EVS handle's groups
// (evs_->mutex) are taken alone or last.
#pragma once

#include "libcpg/ipc/fd_passing.hpp"
#include "libcpg/ipc/protocol.hpp"
#include "delivery/ring_entry.hpp"
#include "libcpg/ipc/shm.hpp"
#include "delivery/ring_format.hpp"
#include "libcpg/ipc/control_block.hpp"
#include "libcpg/evs_groups.hpp"
#include "libcpg/zcb_allocator.hpp"

#include <corosync/cpg.h>
#include <corosync/evs.h>
#include <qb/qbipcc.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <vector>

namespace rcpg::libcpg {

struct PartialMessage {
    std::vector<std::byte> bytes;
    uint64_t total_bytes = 0;
};

// An entry of this handle's, copied out of the ring before it was dispatched (read_ahead).
struct BufferedEntry {
    delivery::EntryHeader header{};
    std::vector<std::byte> payload;
};

class Handle {
public:
    Handle() = default;
    ~Handle();
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;

    // Connects to the daemon and maps its shared memory.
    cs_error_t connect(const cpg_model_v1_data_t& model, void* context);
    // The same for an EVS handle; its first event is the membership at connection.
    cs_error_t connect_evs(const evs_callbacks_t& callbacks, void* context);

    // Control requests. `response` receives at most `response_bytes`.
    cs_error_t request(const void* message, size_t bytes, void* response, size_t response_bytes,
                       ssize_t* received = nullptr);

    cs_error_t join(const cpg_name& group);
    cs_error_t leave(const cpg_name& group);
    cs_error_t finalize();
    cs_error_t membership(const cpg_name& group, std::vector<cpg_address>& members);
    cs_error_t iteration_snapshot(cpg_iteration_type_t type, const cpg_name* group,
                                  std::vector<cpg_iteration_description_t>& rows);
    cs_error_t local_nodeid(unsigned int& nodeid_out);

    // EVS (evs_path.cpp; the send in send_path.cpp).
    cs_error_t evs_join(std::span<const EvsKey> keys);
    cs_error_t evs_leave(std::span<const EvsKey> keys);
    // To `groups`, or with nullopt to the groups joined now.
    cs_error_t evs_mcast(uint16_t flags, std::optional<std::span<const EvsKey>> groups, const iovec* iov,
                         unsigned int iov_count);
    // The node's id and current view, as the daemon has it now (with its ring id).
    cs_error_t view(uint32_t& nodeid_out, std::vector<uint32_t>& members, ipc::RingIdWire* ring = nullptr);

    // Send path (send_path.cpp).
    cs_error_t mcast(uint16_t flags, const iovec* iov, unsigned int iov_count);
    cs_error_t zcb_mcast(uint16_t flags, void* buffer, size_t bytes);
    bool flow_control_enabled();

    // Dispatch (dispatch.cpp).
    // `mode` is a cs_dispatch_flags_t value, or any other int (treated as BLOCKING).
    cs_error_t dispatch(int mode);

    cpg_handle_t id = 0;  // the value handed to the application
    cpg_model_v1_data_t model{};
    std::atomic<void*> context{nullptr};
    uint32_t nodeid = 0;
    int fd = -1;
    std::atomic<bool> finalized{false};
    ZcbAllocator zcb;
    std::mutex send_mutex;

private:
    cs_error_t connect_common(uint32_t init_flags);
    // A request whose response is a ListResponse followed by `rows` records.
    template <typename Row>
    cs_error_t request_list(const void* message, size_t bytes, std::vector<Row>& rows,
                            std::optional<std::vector<Row>> (*decode)(std::span<const std::byte>));

    // Send path internals (send_path.cpp); called with send_mutex held.
    void reclaim_submissions();
    std::optional<uint64_t> allocate_copy(uint64_t bytes);
    bool publish(uint64_t arena_offset, uint32_t length, uint16_t flags, uint64_t total_bytes);
    cs_error_t send_copied(uint16_t flags, std::span<const std::byte> prefix, const iovec* iov,
                           unsigned int iov_count, uint64_t message_bytes);
    void ring_doorbell_if_sleeping();
    cs_error_t wait_taken(uint64_t submission_count);
    bool daemon_gone() const;
    bool daemon_lost();
    cs_error_t send_fragmented(uint16_t flags, const iovec* iov, unsigned int iov_count, uint64_t total_bytes,
                               const std::byte* zcb_source);

    // Dispatch internals (dispatch.cpp); called with state_mutex held.
    bool relevant(const delivery::EntryHeader& entry, std::span<const std::byte> payload) const;
    bool skip_to_relevant();
    enum class Ownership { ours, moved, lost };
    Ownership entry_ownership();
    bool entries_still_ours();
    bool take_from_backlog(uint64_t backlog_tail);
    enum class Unread { none, buffered, ring };
    Unread next_unread();
    bool read_ahead();
    void break_ring();
    bool spin_for_relevant();
    void process_entry(bool& counted);
    void deliver_data(uint64_t position, const delivery::EntryHeader& entry, std::byte* payload, bool in_ring);
    void deliver_totem(const delivery::EntryHeader& entry, const std::byte* payload);
    std::optional<delivery::TotemPayload> read_totem(const delivery::EntryHeader& entry, const std::byte* payload,
                                                     std::vector<uint32_t>& members);
    bool ask_for_wake();
    void deliver_confchg(const delivery::EntryHeader& entry, const std::byte* payload);
    // EVS delivery. `counted`: whether it was an event of the handle's, for the ONE modes.
    void deliver_evs_data(uint64_t position, const delivery::EntryHeader& entry, std::byte* payload, bool in_ring,
                          bool& counted);
    void deliver_evs_totem(const delivery::EntryHeader& entry, const std::byte* payload, bool& counted);
    void deliver_evs_initial();
    void deliver_evs_regular();
    void evs_confchg(const std::vector<uint32_t>& members, const std::vector<uint32_t>& left,
                     const std::vector<uint32_t>& joined, const ipc::RingIdWire& ring);
    cs_error_t evs_groups_request(ipc::RequestId request_id, std::span<const EvsKey> keys, ipc::EvsGroupsResponse& out);
    // Runs `callback(payload)` with an entry's payload where the application may have it:
    // in place (held) on pages, else from the small-copy buffer, or as it is when read
    // ahead. False when the entry turned out not to be ours any more (entry_moved_ says
    // whether it comes again from the backlog).
    template <typename Callback>
    bool hand_over(uint64_t position, const delivery::EntryHeader& entry, std::byte* payload, bool in_ring,
                   Callback&& callback);
    void publish_consumed();
    void clean_written_pages();
    void disarm();
    cs_error_t settle(bool delivered_any);
    cs_error_t wait_for_wake();

    qb_ipcc_connection_t* ipc_ = nullptr;
    std::mutex request_mutex_;
    std::recursive_mutex state_mutex_;
    std::atomic<std::thread::id> dispatcher_{};  // the thread inside dispatch(), if any

    ipc::Mapping ring_header_map_;
    ipc::Mapping ring_data_map_;
    ipc::Mapping control_map_;
    ipc::Mapping arena_map_;
    ipc::Mapping backlog_map_;
    ipc::UniqueFd doorbell_;
    const delivery::RingHeader* ring_ = nullptr;
    std::byte* ring_data_ = nullptr;  // private copy-on-write view
    uint64_t ring_bytes_ = 0;
    ipc::ControlBlock* control_ = nullptr;
    ipc::SubmissionDescriptor* descriptors_ = nullptr;
    uint32_t submission_mask_ = 0;
    std::byte* arena_ = nullptr;
    uint64_t arena_bytes_ = 0;
    uint64_t copy_bytes_ = 0;
    const std::byte* backlog_data_ = nullptr;  // read-only, written by the daemon
    uint64_t backlog_bytes_ = 0;

    // Send state (send_mutex).
    uint64_t sub_tail_ = 0;
    uint64_t sub_reclaimed_ = 0;
    uint64_t copy_alloc_ = 0;  // monotonic positions in the copy area
    uint64_t copy_free_ = 0;
    std::vector<uint64_t> copy_end_;  // copy_alloc_ after each submission
    // The daemon's socket was found hung up: every send fails from now on.
    std::atomic<bool> daemon_dead_{false};
    uint64_t liveness_checked_ms_ = 0;  // when a silent daemon's socket was last checked

    // Dispatch state (state_mutex).
    bool reading_ = false;    // the ring holds entries for us: we pin it from cursor_
    uint64_t cursor_ = 0;
    delivery::RingEntry current_{};  // the entry at cursor_ once skip_to_relevant() found it ours
    uint64_t published_consumed_ = 0;
    struct Membership {
        uint32_t group_id = 0;
        cpg_name name{};
        uint64_t from_seq = 0;
        bool leave_requested = false;
        bool initial_totem_pending = false;
        ipc::RingIdWire ring{};
        std::vector<uint32_t> ring_members;
    };
    std::optional<Membership> membership_;
    std::atomic<bool> joined_{false};  // for the send path, which does not take state_mutex
    // The ring held an entry rcpgd's writer never writes: nothing more is read from it, and
    // every call reports CS_ERR_LIBRARY, as for a dead daemon.
    std::atomic<bool> ring_broken_{false};
    std::map<std::pair<uint32_t, uint32_t>, PartialMessage> partial_;
    // Entries copied out of the ring by a sender waiting for room (read_ahead); dispatched
    // before anything at cursor_, which lies after them.
    std::deque<BufferedEntry> read_ahead_;
    bool read_ahead_copy_ = false;  // the entry being processed came from read_ahead_
    // The entry being processed from the ring turned out moved to the backlog (the daemon
    // moved it while it was read): not delivered, it comes again from there.
    bool entry_moved_ = false;
    uint64_t backlog_cursor_ = 0;  // how far the backlog has been read
    uint64_t run_start_ = 0;       // where the walk to the entry at the cursor started
    uint64_t taken_seq_ = 0;       // seq of the last entry taken (delivered or read ahead)
    bool holding_ = false;         // control->holding is raised for an in-place delivery
    std::vector<std::byte> small_copy_;  // small payloads are delivered from here
    std::vector<std::byte> evs_keys_;    // an EVS message's groups, copied out of the ring
    bool armed_ = false;        // we set control->waiting and have not taken it back
    bool wake_pending_ = false; // a wake event is in, or on its way to, our socket
    // In-place deliveries whose pages the application may have written (copy-on-write)
    // since the last clean: [dirty_low_, dirty_high_) in ring positions.
    std::optional<uint64_t> dirty_low_;
    uint64_t dirty_high_ = 0;

    // An EVS handle's part; null for a CPG handle.
    struct Evs {
        evs_callbacks_t callbacks{};
        std::mutex mutex;  // `groups`: read by dispatch, changed by join/leave, read by sends
        EvsGroups groups;
        // State (state_mutex): the membership the application was told last, and whether
        // it is still to be told the one at connection.
        bool initial_pending = true;
        ipc::RingIdWire ring{};
        std::vector<uint32_t> members;
        // A change's regular confchg, after its transitional one was delivered.
        struct Regular {
            std::vector<uint32_t> members;
            std::vector<uint32_t> joined;
            ipc::RingIdWire ring;
        };
        std::optional<Regular> pending_regular;
    };
    std::unique_ptr<Evs> evs_;
};

}  // namespace rcpg::libcpg
