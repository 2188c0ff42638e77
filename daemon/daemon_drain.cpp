#include "daemon/daemon.hpp"

#include "daemon/client_session.hpp"
#include "daemon/daemon_internal.hpp"
#include "daemon/log.hpp"
#include "libcpg/ipc/bytes.hpp"
#include "delivery/ring_entry.hpp"

#include <corosync/corotypes.h>
#include <sys/eventfd.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace rcpg::daemon {

using delivery::ConfchgPayload;
using delivery::EntryHeader;
using delivery::EntryKind;
using namespace daemon_detail;

bool Daemon::drain_session(ClientSession& session, uint32_t budget)
{
    if (session.control == nullptr || !session.fds_delivered || session.violated) {
        return false;
    }
    ipc::ControlBlock& control = *session.control;
    const uint64_t tail = control.sub_tail.load(std::memory_order_acquire);
    if (tail - session.sub_head > session.submission_mask + 1ull) {
        session.violated = true;
        ++node_->counters().protocol_violations;
        RCPG_LOG_WARN("pid {}: submission ring index out of range; disconnecting", session.pid);
        disconnect_later(session);
        return false;
    }
    if (session.sub_head == tail) {
        return false;
    }
    const uint64_t start = session.sub_head;
    while (session.sub_head != tail && budget-- > 0) {
        ipc::SubmissionDescriptor descriptor;
        std::memcpy(&descriptor, &session.descriptors[session.sub_head & session.submission_mask],
                    sizeof(descriptor));
        if (!ipc::submission_valid(descriptor, session.arena_bytes, options_.arena_copy_bytes)) {
            session.violated = true;
            ++node_->counters().protocol_violations;
            RCPG_LOG_WARN("pid {}: malformed submission (offset {}, length {}, flags {:#x}); disconnecting",
                          session.pid, descriptor.arena_offset, descriptor.length, descriptor.flags);
            disconnect_later(session);
            break;
        }
        // EVS messages come from EVS clients only, whole (never fragmented); an EVS
        // client has no other kind to send.
        const bool evs_message = (descriptor.flags & delivery::kFlagEvs) != 0;
        if (evs_message != session.evs || (evs_message && (descriptor.flags & delivery::kFragmentFlags) != 0)) {
            session.violated = true;
            ++node_->counters().protocol_violations;
            RCPG_LOG_WARN("pid {}: submission of the other API's kind (flags {:#x}); disconnecting", session.pid,
                          descriptor.flags);
            disconnect_later(session);
            break;
        }
        if (!session.group && !session.evs) {
            ++session.sub_head;  // sent while not a member: dropped, as corosync does
            continue;
        }
        if (node_->role() != Role::single && !device_can_read(session, descriptor)) {
            break;  // its arena part is being registered; the client waits as for ring room
        }
        if (!submit_data(session, descriptor, descriptor.flags)) {
            ring_blocked_ = true;
            break;
        }
        ++session.sub_head;
    }
    if (session.sub_head == start) {
        return false;
    }
    // What the device still reads (forwarded, or copied into the ring by the loopback) is
    // released by its batch's completion, and so is everything after it.
    const bool device_reads = node_->role() == Role::member || session.cluster.device_copied ||
                              !session.cluster.pending_heads.empty();
    session.cluster.device_copied = false;
    if (device_reads) {
        note_forwarded(session);
    } else {
        publish_sub_head(session, session.sub_head);
    }
    return true;
}

void Daemon::publish_sub_head(ClientSession& session, uint64_t sub_head)
{
    ipc::ControlBlock& control = *session.control;
    control.sub_head.store(sub_head, std::memory_order_seq_cst);
    control.sub_head_futex.store(static_cast<uint32_t>(sub_head), std::memory_order_seq_cst);
    if (control.submitter_waiting.load(std::memory_order_seq_cst) != 0) {
        futex_wake_all(&control.sub_head_futex);
    }
}

bool Daemon::submit_data(ClientSession& session, const ipc::SubmissionDescriptor& descriptor, uint16_t flags)
{
    const uint32_t total_bytes = (flags & delivery::kFlagFragment) != 0
                                     ? static_cast<uint32_t>(std::min<uint64_t>(descriptor.total_bytes, UINT32_MAX))
                                     : descriptor.length;
    if (node_->role() == Role::member) {
        return forward_data(session, descriptor, total_bytes);
    }
    const std::optional<transport::LocalSlice> payload =
        node_->role() == Role::single ? std::nullopt : arena_slice(session, descriptor);
    if (payload && node_->copies_by_device(descriptor.length)) {
        if (!node_->sequence_data_by_device(session.group_id, session.process(options_.nodeid), flags, total_bytes,
                                            *payload)) {
            return false;
        }
        session.cluster.device_copied = true;
        return true;
    }
    return node_->sequence_data(session.group_id, session.process(options_.nodeid), flags, total_bytes,
                         {session.arena_map.bytes() + descriptor.arena_offset, descriptor.length});
}

bool Daemon::drain_submissions()
{
    ring_blocked_ = false;
    bool worked = false;
    for (auto& [connection, session] : sessions_) {
        worked |= drain_session(*session, kDrainBudgetPerClient);
    }
    if (node_->role() == Role::member) {
        node_->commit_forwarded();
    } else if (node_->role() == Role::sequencer) {
        worked |= node_->drain_inbound(ring_blocked_);
    }
    publish_and_wake();
    return worked;
}

bool Daemon::submissions_pending() const
{
    for (const auto& [connection, session] : sessions_) {
        // A session waiting for its arena to be registered is woken by the registration.
        if (session->control != nullptr && session->fds_delivered && !session->violated &&
            !session->cluster.waiting_for_part &&
            session->control->sub_tail.load(std::memory_order_seq_cst) != session->sub_head) {
            return true;
        }
    }
    return false;
}

void Daemon::publish_and_wake()
{
    if (!ring_->has_unpublished()) {
        return;
    }
    if (node_->role() == Role::sequencer) {
        node_->replicate();  // the other nodes' copies go out first: they have further to travel
    }
    // Publishing is a seq_cst store and `waiting` is read seq_cst: with the client's seq_cst
    // store of `waiting` and load of the tail, either it sees the new tail or we see its flag.
    ring_->publish(node_->publishable_tail());
    std::vector<qb_ipcs_connection_t*> to_wake;
    // Where the batch's last entry of `group_id` ends (0: it has none).
    const auto batch_end = [this](uint32_t group_id) -> uint64_t {
        auto batch = std::find_if(batch_groups_.begin(), batch_groups_.end(),
                                  [group_id](const BatchGroup& group) { return group.group_id == group_id; });
        return batch == batch_groups_.end() ? 0 : batch->end_position;
    };
    const uint64_t totem_end = batch_end(ordering::LocalSide::kTotemEntries);
    for (auto& [connection, session] : sessions_) {
        if ((session->wake_group_id == 0 && !session->totem_callback) || session->control == nullptr) {
            continue;
        }
        uint64_t waiting = session->control->waiting.load(std::memory_order_seq_cst);
        if (waiting == 0) {
            continue;
        }
        // The entries it reads: its group's, and totem confchgs with a totem callback.
        uint64_t end = session->wake_group_id != 0 ? batch_end(session->wake_group_id) : 0;
        const bool totem_due = session->totem_callback && totem_end != 0 && waiting - 1 < totem_end;
        if (session->evs && !totem_due && end != 0 && waiting - 1 < end && !evs_wake_due(*session, waiting - 1)) {
            continue;  // EVS messages, but none of its groups': no event of its
        }
        if (session->totem_callback) {
            end = std::max(end, totem_end);
        }
        // Only for an entry it has not read: it may have read this batch before going idle.
        if (end == 0 || waiting - 1 >= end) {
            continue;
        }
        // Fails if the client took its flag back (it saw the entry itself) or re-armed.
        if (session->control->waiting.compare_exchange_strong(waiting, 0, std::memory_order_seq_cst)) {
            to_wake.push_back(connection);
        }
    }
    // Groups whose entries are not all published yet (device copies in flight) wake later.
    std::erase_if(batch_groups_,
                  [&](const BatchGroup& group) { return group.end_position <= ring_->published_tail(); });
    // Sent after the walk: a failed send may make libqb drop the connection, which
    // destroys its session.
    for (qb_ipcs_connection_t* connection : to_wake) {
        if (auto found = sessions_.find(connection); found != sessions_.end()) {
            send_wake(*found->second);
        }
    }
    update_flow_control();
}

void Daemon::on_entry(uint32_t group_id)
{
    const uint64_t end = ring_->unpublished_tail();
    if (!batch_groups_.empty() && batch_groups_.back().group_id == group_id) {
        batch_groups_.back().end_position = end;
        return;
    }
    for (BatchGroup& group : batch_groups_) {
        if (group.group_id == group_id) {
            group.end_position = end;
            return;
        }
    }
    batch_groups_.push_back({group_id, end});
}

void Daemon::update_flow_control()
{
    const uint64_t capacity = ring_->data_bytes();
    auto& flag = ring_->header().flow_control;
    // With the last computed limit the ring is at most this full: only a ring that may be
    // past the lower mark is worth a walk over the clients.
    uint64_t used = ring_->unpublished_tail() - node_->cached_reclaim_limit();
    if (used * 2 > capacity) {
        used = ring_->unpublished_tail() - node_->reclaim_limit();
        if (used * 2 > capacity && move_slow_readers()) {
            used = ring_->unpublished_tail() - node_->reclaim_limit();
        }
    }
    if (used * 4 >= capacity * 3) {
        if (flag.load(std::memory_order_relaxed) == 0) {
            ++node_->counters().flow_control_events;
        }
        flag.store(1, std::memory_order_relaxed);
        disconnect_stuck_clients();
    } else if (used * 10 <= capacity * 7) {
        flag.store(0, std::memory_order_relaxed);
        for (auto& [connection, session] : sessions_) {
            session->stuck_since_ms = 0;
        }
    }
}

void Daemon::disconnect_stuck_clients()
{
    if (options_.stuck_client_timeout_ms == 0) {
        return;
    }
    // The ring is full: the client at the oldest position holds every sender back (at the
    // sequencer, unless another node's credit is older still). One that does not move
    // for the timeout is taken for stuck; corosync would let it stall everybody.
    const uint64_t limit = node_->reclaim_limit();
    const uint64_t tail = ring_->published_tail();
    const uint64_t now_ms = coarse_clock_ms();
    for (auto& [connection, session] : sessions_) {
        if (!session->pinning || session->violated) {
            continue;
        }
        // With a backlog, only an entry held in a callback for the whole time (or the
        // lack of one) makes a client stuck.
        const uint64_t consumed = reader_limit(*session, tail, nullptr);
        if (consumed > limit) {
            session->stuck_since_ms = 0;
            continue;
        }
        if (session->stuck_since_ms == 0 || consumed != session->stuck_at) {
            session->stuck_at = consumed;
            session->stuck_since_ms = now_ms;
            continue;
        }
        if (now_ms - session->stuck_since_ms >= options_.stuck_client_timeout_ms) {
            RCPG_LOG_WARN("pid {} read nothing for {} ms while the ring was full because of it; disconnecting it",
                          session->pid, now_ms - session->stuck_since_ms);
            ++node_->counters().stuck_clients_disconnected;
            session->violated = true;
            disconnect_later(*session);
        }
    }
}

void Daemon::finish_closing_sessions()
{
    for (auto it = closing_.begin(); it != closing_.end();) {
        ClientSession& session = **it;
        drain_session(session, UINT32_MAX);
        if (session.control != nullptr && session.fds_delivered && !session.violated &&
            session.sub_head != session.control->sub_tail.load(std::memory_order_acquire)) {
            ++it;  // waits for ring space
            continue;
        }
        if (session.pending_join || session.pending_leave || session.cluster.op_in_flight) {
            ++it;  // its join or leave is on its way back from the sequencer
            continue;
        }
        if (session.group) {
            if (!request_change(session, *session.group, delivery::reason_process_down)) {
                ++it;  // waits for ring space
                continue;
            }
            if (node_->role() == Role::member) {
                session.group.reset();  // the PROCDOWN is on its way; wait for it below
                ++it;
                continue;
            }
        }
        if (!session.cluster.pending_heads.empty()) {
            ++it;  // the device may still read its arena
            continue;
        }
        retire_arena(session);
        if (session.held) {
            // Cut off inside a callback on an entry delivered in place: those pages stay as
            // they are until the callback returns (the client clears `holding`) or the
            // process is gone (local_reclaim_limit); the rest of its memory goes now.
            session.backlog.reset();
            session.arena_map.reset();
            held_after_close_.push_back(std::move(*it));
        }
        it = closing_.erase(it);
    }
    if (node_->role() == Role::member) {
        node_->commit_forwarded();
    }
    publish_and_wake();
}

}  // namespace rcpg::daemon
