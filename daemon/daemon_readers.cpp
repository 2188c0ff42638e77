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

// ---------------------------------------------------------------------------------------
// Sequencing

void Daemon::release_pins()
{
    for (auto& [connection, session] : sessions_) {
        if (session->leave_end &&
            session->control->consumed.load(std::memory_order_acquire) >= *session->leave_end) {
            session->leave_end.reset();
            session->wake_group_id = 0;
            session->read_group_id = 0;
            if (!session->totem_callback && !session->group) {
                session->pinning = false;
            }
        }
    }
}

// Where a pinning client has read up to, as far as the ring is concerned (see
// ipc::reader_position): a reader only moves forward, so moving back and forth fakes no
// progress, and the stuck-client rule counts only real progress.
uint64_t Daemon::read_position(ClientSession& session, uint64_t tail)
{
    return ipc::reader_position(session.control->consumed.load(std::memory_order_acquire), session.consumed_high,
                                session.pin_floor, tail);
}

// The lowest ring position a pinning client may still read: where it has read up to, or
// where its backlog ends in the ring if that is further. An entry it holds in a callback
// below that (ControlBlock::holding: delivered in place, then moved) must stay as it is:
// its payload becomes a hold (`holds`) that the writer goes round (one node, the
// sequencer), or that a member publishes to the sequencer for its writer. The limit
// only rises: a new hold below it cannot be real (the client re-reads `moved_to` after
// raising it, and does not use the entry).
uint64_t Daemon::reader_limit(ClientSession& session, uint64_t tail, std::vector<ordering::DeliveryRing::Hold>* holds)
{
    uint64_t limit = std::max(read_position(session, tail), session.moved_to);
    if (session.moved_to != 0) {
        // seq_cst, after the store of `moved_to` (move_to_backlog): Dekker with the client.
        update_hold(session, limit, tail);
        if (session.held && holds != nullptr) {
            holds->push_back(session.held->payload);
        }
        // On a member, a hold its sequencer was not told of (more holds than words, or
        // not yet published) keeps the ring before it, as the member's credit does: then
        // the stuck-client rule sees who holds the cluster back.
        if (session.held && !node_->hold_published(session.held->payload)) {
            limit = std::min(limit, session.held->position);
        }
    }
    session.ring_floor = std::max(session.ring_floor, limit);
    return limit;
}

uint64_t Daemon::local_reclaim_limit()
{
    release_pins();
    const uint64_t tail = ring_->published_tail();
    uint64_t limit = ring_->unpublished_tail();
    std::vector<ordering::DeliveryRing::Hold> holds;
    for (auto& [connection, session] : sessions_) {
        if (!session->pinning) {
            continue;
        }
        // Untrusted: a client can only hold back the ring (as a stuck client would), never
        // let it overwrite what another client still reads.
        limit = std::min(limit, reader_limit(*session, tail, &holds));
    }
    // Clients cut off inside such a callback: their hold lasts as long as the callback (a
    // process that died cannot clear it: kill(pid, 0) tells).
    const auto still_held = [&](ClientSession& session) {
        if (!session.held) {
            return false;
        }
        const bool alive = ::kill(session.pid, 0) == 0 || errno == EPERM;
        // A member lets go of a hold its sequencer was never told of: the cluster would
        // wait for it, and the client was cut off for that.
        if (!alive || !node_->hold_published(session.held->payload) ||
            session.control->holding.load(std::memory_order_seq_cst) != session.held->position + 1) {
            session.held.reset();
            return false;
        }
        holds.push_back(session.held->payload);
        return true;
    };
    for (const std::unique_ptr<ClientSession>& session : closing_) {
        still_held(*session);
    }
    std::erase_if(held_after_close_,
                  [&](const std::unique_ptr<ClientSession>& session) { return !still_held(*session); });
    ring_->set_holds(std::move(holds));
    return limit;
}

// Takes the client's `holding` word (read seq_cst, after a store of `moved_to` or
// `cut_off`: Dekker with the client, which stores it and then reads those) for what it
// can be: an entry delivered in place below `limit` that the client may still read (not
// below ring_floor, whatever it claims). Once taken, the hold is kept by position as long
// as the word says so: the entry's header may be a skip's by then, its payload is not.
void Daemon::update_hold(ClientSession& session, uint64_t limit, uint64_t tail)
{
    const uint64_t holding = session.control->holding.load(std::memory_order_seq_cst);
    const uint64_t position = holding - 1;
    delivery::RingEntry entry{};
    if (holding == 0 || position >= limit) {
        session.held.reset();
    } else if (session.held && session.held->position == position) {
        return;
    } else if (position >= session.ring_floor &&
               delivery::read_entry(ring_->data(), ring_->data_bytes(), position, tail, entry) == delivery::RingStep::entry &&
               entry.header.kind == EntryKind::data && (entry.header.flags & delivery::kFlagPayloadOnPage) != 0) {
        session.held = {position, {position + entry.header.payload_offset,
                                   entry.header.entry_bytes - uint64_t{entry.header.payload_offset}}};
    } else {
        session.held.reset();  // not a hold this client can have: ignored
    }
}

// Whether an entry is one `session` reads (what its library delivers is decided there;
// copying more than that costs only room, never less).
bool Daemon::reads_entry(ClientSession& session, const delivery::EntryHeader& entry, uint64_t position,
                         std::span<const std::byte> payload)
{
    switch (entry.kind) {
    case EntryKind::data:
        if (session.evs) {
            return entry.group_id == delivery::kEvsGroupId && evs_entry_wanted(session, position, payload);
        }
        return session.read_group_id != 0 && entry.group_id == session.read_group_id;
    case EntryKind::confchg:
        return session.read_group_id != 0 && entry.group_id == session.read_group_id;
    case EntryKind::totem_confchg:
        return session.totem_callback;
    case EntryKind::pad:
    case EntryKind::skip:
    case EntryKind::dropped:
        return false;
    }
    return false;
}

// Moves the client's entries from where it may still read up to the published tail out
// of the ring into its backlog; the ring then keeps nothing below that for it. False when
// they do not fit its budget: the caller cuts it off.
bool Daemon::move_to_backlog(ClientSession& session)
{
    ipc::ControlBlock& control = *session.control;
    ClientBacklog& backlog = *session.backlog;
    const uint64_t tail = ring_->published_tail();
    backlog.note_read(control.backlog_consumed.load(std::memory_order_acquire));
    uint64_t position = std::max(read_position(session, tail), session.moved_to);
    const uint64_t start = position;
    uint64_t moved = 0;
    while (position < tail) {
        delivery::RingEntry entry{};
        if (delivery::read_entry(ring_->data(), ring_->data_bytes(), position, tail, entry) != delivery::RingStep::entry) {
            break;  // what this node published it checked: cannot happen
        }
        if (reads_entry(session, entry.header, position, entry.payload)) {
            if (!backlog.append(entry.header, entry.payload)) {
                return false;
            }
            ++moved;
        }
        position += entry.header.entry_bytes;
    }
    if (position == start) {
        return true;
    }
    // The backlog's entries before the position that says they are there; then the
    // holding word is read by the next reader_limit (Dekker, seq_cst).
    control.backlog_tail.store(backlog.tail(), std::memory_order_release);
    control.moved_to.store(position, std::memory_order_seq_cst);
    session.moved_to = position;
    Counters& counters = node_->counters();
    counters.backlog_entries_moved += moved;
    ++counters.backlog_moves;
    return true;
}

// Called while the ring is more than half full: every client that lags more than a
// quarter of the ring behind gets its entries moved to its backlog, so that nobody waits
// for it. One whose backlog is full is cut off (its groups see PROCDOWN). True when a
// client's place in the ring moved.
bool Daemon::move_slow_readers()
{
    const uint64_t tail = ring_->published_tail();
    const uint64_t lag_bytes = ring_->data_bytes() / 4;
    bool moved = false;
    for (auto& [connection, session] : sessions_) {
        if (!session->pinning || session->violated || !session->backlog || !session->fds_delivered) {
            continue;
        }
        const uint64_t lag = tail - reader_limit(*session, tail, nullptr);
        if (lag <= lag_bytes) {
            continue;
        }
        if (!move_to_backlog(*session)) {
            RCPG_LOG_WARN("pid {} fell {} MiB behind and its backlog ({} MiB) is full; disconnecting it", session->pid,
                          lag >> 20, session->backlog->capacity() >> 20);
            ++node_->counters().backlog_overflows;
            session->violated = true;
            disconnect_later(*session);
            continue;
        }
        moved = true;
    }
    return moved;
}

}  // namespace rcpg::daemon
