// The dispatch path: entries are read in place from the node's delivery ring and handed
// to the callbacks.
//
// Readiness of the handle's fd (the libqb event socket) follows an eventcount:
//  - Going idle, the handle raises control->waiting (with the position it has read up to)
//    and re-reads the tail. The daemon, after publishing entries of this handle's group
//    beyond that position, takes the flag back and sends one wake event. So a busy stream
//    costs no system call per message, and a wake event exists only for an entry the
//    handle has not seen.
//  - Invariant when cpg_dispatch() returns: the fd is readable if and only if an event
//    of this handle is pending (or arrives later). When one is left pending (ONE modes)
//    and no wake event is on its way, the handle asks the daemon for one (wake_me).
//
// In-place delivery: payloads of kInPlaceDeliveryMinBytes or more sit on whole pages of
// the ring and the callback gets a pointer into the handle's private copy-on-write view.
// A callback that writes there gets private copies of those pages; before the handle
// reports such pages consumed (after which the daemon may reuse them), it drops the
// private copies (clean_written_pages), so the next lap reads the daemon's data again.
#include "libcpg/handle.hpp"
#include "libcpg/ipc/bytes.hpp"
#include "delivery/ring_entry.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <iterator>
#include <cstring>
#include <ctime>
#include <thread>

namespace rcpg::libcpg {
namespace {

using delivery::EntryHeader;
using delivery::EntryKind;

// Written pages are checked once this much of the ring has been read past them: rarely
// enough to cost nothing, often enough to keep most of the ring reusable.
uint64_t clean_interval(uint64_t ring_bytes) { return ring_bytes / 8; }

int pagemap_fd()
{
    static const int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    return fd;
}

// Drops private (copy-on-write) copies of pages in [start, start + bytes), so the mapping
// shows the shared file again.
void drop_private_pages(std::byte* start, size_t bytes)
{
    constexpr uint64_t kPresent = 1ull << 63;
    constexpr uint64_t kFileOrShared = 1ull << 61;
    const size_t pages = bytes / delivery::kPageBytes;
    const int fd = pagemap_fd();
    if (fd < 0) {
        ::madvise(start, bytes, MADV_DONTNEED);
        return;
    }
    uint64_t entries[512];
    for (size_t done = 0; done < pages;) {
        const size_t batch = std::min<size_t>(pages - done, std::size(entries));
        const auto page_index = reinterpret_cast<uintptr_t>(start) / delivery::kPageBytes + done;
        const ssize_t got = ::pread(fd, entries, batch * sizeof(uint64_t), static_cast<off_t>(page_index * 8));
        if (got != static_cast<ssize_t>(batch * sizeof(uint64_t))) {
            ::madvise(start + done * delivery::kPageBytes, (pages - done) * delivery::kPageBytes, MADV_DONTNEED);
            return;
        }
        for (size_t i = 0; i < batch; ++i) {
            if ((entries[i] & kPresent) != 0 && (entries[i] & kFileOrShared) == 0) {
                ::madvise(start + (done + i) * delivery::kPageBytes, delivery::kPageBytes, MADV_DONTNEED);
            }
        }
        done += batch;
    }
}

bool contains_process(const cpg_address* list, size_t count, uint32_t nodeid, uint32_t pid)
{
    for (size_t i = 0; i < count; ++i) {
        if (list[i].nodeid == nodeid && list[i].pid == pid) {
            return true;
        }
    }
    return false;
}

// How long a dispatch that would block first polls the ring: an event that arrives
// within this time costs no wake-up (system calls on both sides). $RCPG_DISPATCH_SPIN_US.
uint64_t dispatch_spin_ns()
{
    static const uint64_t spin_ns = [] {
        const char* text = std::getenv("RCPG_DISPATCH_SPIN_US");
        const uint64_t default_us = 50;
        return (text != nullptr ? std::strtoull(text, nullptr, 10) : default_us) * 1000;
    }();
    return spin_ns;
}

constexpr uint64_t kReassemblyReserveBytes = 16ull << 20;

uint64_t monotonic_ns()
{
    timespec now;
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(now.tv_nsec);
}

}  // namespace

// Polls the ring for up to the spin budget; true when one of our entries is next.
bool Handle::spin_for_relevant()
{
    const uint64_t budget_ns = dispatch_spin_ns();
    if (budget_ns == 0 || !reading_) {
        return false;
    }
    const uint64_t deadline = monotonic_ns() + budget_ns;
    while (true) {
        for (int i = 0; i < 64; ++i) {
            if (skip_to_relevant()) {
                return true;
            }
            __builtin_ia32_pause();
        }
        if (monotonic_ns() >= deadline || finalized.load(std::memory_order_relaxed) || ring_broken_.load()) {
            return false;
        }
    }
}

bool Handle::relevant(const EntryHeader& entry, std::span<const std::byte> payload) const
{
    if (evs_) {
        // Every totem confchg, and the EVS messages of this handle's groups: so that the
        // fd is readable only for a callback to come. The payload may be torn here (read
        // in the ring while it moves); what is then decided is undone as for any entry of
        // the walk (entry_ownership). Nothing is pruned (deliver_evs_data does that).
        if (entry.kind == EntryKind::totem_confchg) {
            return true;
        }
        if (entry.kind != EntryKind::data || entry.group_id != delivery::kEvsGroupId) {
            return false;
        }
        const std::optional<delivery::EvsPayload> parts = delivery::check_evs_payload(payload);
        std::lock_guard lock(evs_->mutex);
        return parts && evs_->groups.would_deliver(parts->keys, entry.seq);
    }
    switch (entry.kind) {
    case EntryKind::data:
    case EntryKind::confchg:
        return membership_ && entry.group_id == membership_->group_id && entry.seq >= membership_->from_seq;
    case EntryKind::totem_confchg:
        return model.cpg_totem_confchg_fn != nullptr;
    case EntryKind::pad:
    case EntryKind::skip:
    case EntryKind::dropped:
        return false;
    }
    return false;
}

// Whether what was read from the ring since run_start_ (entry headers walked over, and
// the entry at the cursor, header and payload) may be used: called after the copy and
// before a callback sees it. The daemon publishes `moved_to` past a position only once
// the entries there are in the backlog, and sets `cut_off` before it lets a slot of this
// client's be reused; either comes before any reuse, so what was read before neither was
// seen is whole (seqlock). `moved`: it comes again from the backlog (the cursor goes back
// to run_start_: what the walk read may be torn). `lost`: nothing more is read, and the
// handle reports CS_ERR_LIBRARY from now on. A tail more than a ring ahead of a position
// not moved means the same: this client was cut off.
Handle::Ownership Handle::entry_ownership()
{
    // The copy must be done before the words are read. On x86 (TSO, which this library
    // needs: the pause instruction) loads are not reordered with loads, so keeping the
    // compiler from moving the copy after them is enough; ThreadSanitizer does not take
    // atomic_thread_fence. seq_cst loads: the second half of the Dekker with the daemon
    // for `holding` (deliver_data).
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (control_->cut_off.load(std::memory_order_seq_cst) != 0) {
        break_ring();
        return Ownership::lost;
    }
    if (control_->moved_to.load(std::memory_order_seq_cst) > run_start_) {
        cursor_ = run_start_;
        return Ownership::moved;
    }
    const uint64_t tail = ring_->tail.load(std::memory_order_relaxed);
    // (A position may lie ahead of the tail: a handle's start is the end of entries the
    // daemon had appended and not yet published.)
    if (tail > run_start_ && tail - run_start_ > ring_bytes_) {
        break_ring();
        return Ownership::lost;
    }
    return Ownership::ours;
}

// The same for an entry about to be delivered: false when it must not be (entry_moved_
// then tells the caller that it comes again from the backlog).
bool Handle::entries_still_ours()
{
    const Ownership ownership = entry_ownership();
    entry_moved_ = ownership == Ownership::moved;
    return ownership == Ownership::ours;
}

// Takes the next entry of the backlog (a ring only the daemon writes, read with the same
// checks as the ring) into read_ahead_ when it is one of ours and not taken before (an
// entry read from the ring before the daemon moved it is moved too: its seq tells; every
// entry but a pad has one, rising). False when the backlog is broken.
bool Handle::take_from_backlog(uint64_t backlog_tail)
{
    delivery::RingEntry entry{};
    switch (delivery::read_entry(backlog_data_, backlog_bytes_, backlog_cursor_, backlog_tail, entry)) {
    case delivery::RingStep::end:
        return true;
    case delivery::RingStep::corrupt:
        break_ring();
        return false;
    case delivery::RingStep::entry:
        break;
    }
    if (entry.header.kind != EntryKind::pad && entry.header.kind != EntryKind::skip && entry.header.seq > taken_seq_) {
        taken_seq_ = entry.header.seq;
        if (relevant(entry.header, entry.payload)) {
            read_ahead_.push_back({entry.header, std::vector<std::byte>(entry.payload.begin(), entry.payload.end())});
        }
    }
    backlog_cursor_ += entry.header.entry_bytes;
    control_->backlog_consumed.store(backlog_cursor_, std::memory_order_release);
    return true;
}

// The next entry of ours after those in read_ahead_: `buffered` when one came from the
// backlog (appended to read_ahead_), `ring` when it is at the cursor (checked, in
// current_; the walk to it started at run_start_), `none` when there is none now. The
// backlog comes first: everything the daemon moved lies before `moved_to` in the ring.
Handle::Unread Handle::next_unread()
{
    while (!ring_broken_.load(std::memory_order_relaxed)) {
        // `moved_to` first: the backlog's tail published with it is then seen too.
        const uint64_t moved_to = control_->moved_to.load(std::memory_order_acquire);
        const uint64_t backlog_tail = control_->backlog_tail.load(std::memory_order_acquire);
        if (dirty_low_ && moved_to > *dirty_low_) {
            // The daemon no longer waits for those pages (it did for `consumed`): drop our
            // private copies before the ring's next lap is read through them.
            clean_written_pages();
        }
        if (backlog_cursor_ != backlog_tail) {
            const size_t buffered = read_ahead_.size();
            if (!take_from_backlog(backlog_tail)) {
                return Unread::none;
            }
            if (read_ahead_.size() != buffered) {
                return Unread::buffered;
            }
            continue;
        }
        cursor_ = std::max(cursor_, moved_to);  // what lay before is in the backlog, read now
        if (!reading_) {
            return Unread::none;
        }
        run_start_ = cursor_;
        // seq_cst: after raising `waiting`, this load and the daemon's publish are ordered.
        const uint64_t tail = ring_->tail.load(std::memory_order_seq_cst);
        while (true) {
            const delivery::RingStep step = delivery::read_entry(ring_data_, ring_bytes_, cursor_, tail, current_);
            if (step == delivery::RingStep::entry) {
                if (relevant(current_.header, current_.payload)) {
                    return Unread::ring;
                }
                cursor_ += current_.header.entry_bytes;
                continue;
            }
            // At the end, or at what is no entry: moved meanwhile (what the walk read may be
            // torn: on to the backlog), or cut off (nothing is read any more), or corrupt
            // and still ours: never written so.
            const Ownership ownership = entry_ownership();
            if (ownership == Ownership::moved) {
                break;
            }
            if (ownership == Ownership::ours && step == delivery::RingStep::corrupt) {
                break_ring();
            }
            return Unread::none;
        }
    }
    return Unread::none;
}

// Whether an entry of ours is next (first in read_ahead_, or at the cursor in current_).
// An entry rcpgd's writer would never write, or a ring the daemon no longer keeps for us,
// stops reading for good.
bool Handle::skip_to_relevant()
{
    if (evs_ && (evs_->initial_pending || evs_->pending_regular)) {
        return true;  // the membership at connection, or a change's second half, comes first
    }
    while (true) {
        while (!read_ahead_.empty()) {
            if (relevant(read_ahead_.front().header, read_ahead_.front().payload)) {
                return true;
            }
            read_ahead_.pop_front();  // a group this handle has left since
        }
        switch (next_unread()) {
        case Unread::none:
            return false;
        case Unread::ring:
            return true;
        case Unread::buffered:
            break;
        }
    }
}

// Copies this handle's entries from the cursor to the tail out of the ring (and what its
// backlog holds before them) into its own memory, and reports them consumed. A sender
// that waits for room calls it: when the reader holding the ring back is its own thread
// (one thread that sends a message larger than the ring and dispatches only afterwards),
// only this makes room. The next dispatch delivers them first, in order. Skipped while
// another thread holds the dispatch state: that thread is reading. True when the ring
// has room it did not have.
bool Handle::read_ahead()
{
    std::unique_lock state(state_mutex_, std::try_to_lock);
    if (!state.owns_lock()) {
        return false;
    }
    const uint64_t start = cursor_;
    while (true) {
        const Unread unread = next_unread();
        if (unread == Unread::none) {
            break;
        }
        if (unread == Unread::buffered) {
            continue;
        }
        const std::byte* payload = current_.payload.data();
        BufferedEntry copy{current_.header, std::vector<std::byte>(payload, payload + current_.header.payload_bytes)};
        if (!entries_still_ours()) {
            if (entry_moved_) {
                continue;  // it is in the backlog now
            }
            break;
        }
        taken_seq_ = copy.header.seq;
        cursor_ += copy.header.entry_bytes;
        read_ahead_.push_back(std::move(copy));
    }
    entry_moved_ = false;
    if (cursor_ <= start) {
        return false;
    }
    publish_consumed();
    return true;
}

void Handle::break_ring()
{
    // Nothing more is read from this ring: the caller gets CS_ERR_LIBRARY, as for a dead
    // daemon, from now on.
    ring_broken_.store(true);
    reading_ = false;
}

void Handle::deliver_data(uint64_t position, const EntryHeader& entry, std::byte* payload, bool in_ring)
{
    cpg_deliver_fn_t deliver = model.cpg_deliver_fn;
    if ((entry.flags & delivery::kFlagFragment) != 0) {
        // The header decides what happens to the partial message: checked first.
        if (in_ring && !entries_still_ours()) {
            return;
        }
        const auto sender = std::make_pair(entry.nodeid, entry.pid);
        if ((entry.flags & (delivery::kFlagFragmentFirst | delivery::kFlagFragmentAbort)) != 0) {
            partial_.erase(sender);
        }
        if ((entry.flags & delivery::kFlagFragmentAbort) != 0) {
            return;
        }
        auto found = partial_.find(sender);
        if (found == partial_.end()) {
            if ((entry.flags & delivery::kFlagFragmentFirst) == 0) {
                return;  // the start of this message was not ours (sent before we joined)
            }
            found = partial_.emplace(sender, PartialMessage{}).first;
            found->second.total_bytes = entry.total_bytes;
            // The size comes from the sender: grow as fragments arrive beyond a first step.
            found->second.bytes.reserve(std::min<uint64_t>(entry.total_bytes, kReassemblyReserveBytes));
        }
        PartialMessage& message = found->second;
        if (message.bytes.size() + entry.payload_bytes > message.total_bytes) {
            partial_.erase(found);  // more than the sender announced: not a message of ours
            return;
        }
        const size_t held = message.bytes.size();
        message.bytes.insert(message.bytes.end(), payload, payload + entry.payload_bytes);
        if (in_ring && !entries_still_ours()) {
            message.bytes.resize(held);  // moved while copied: it comes again from the backlog
            return;
        }
        if ((entry.flags & delivery::kFlagFragmentLast) == 0) {
            return;
        }
        PartialMessage whole = std::move(message);
        partial_.erase(found);
        if (whole.bytes.size() == whole.total_bytes && deliver != nullptr) {
            deliver(id, &membership_->name, entry.nodeid, entry.pid, whole.bytes.data(), whole.bytes.size());
        }
        return;
    }
    if (deliver == nullptr) {
        return;
    }
    hand_over(position, entry, payload, in_ring, [&](std::byte* message) {
        deliver(id, &membership_->name, entry.nodeid, entry.pid, message, entry.payload_bytes);
    });
}

template <typename Callback>
bool Handle::hand_over(uint64_t position, const EntryHeader& entry, std::byte* payload, bool in_ring,
                       Callback&& callback)
{
    if (!in_ring) {
        // Copied out by read_ahead: the handle's own memory, which the callback may write.
        callback(payload);
        return true;
    }
    if ((entry.flags & delivery::kFlagPayloadOnPage) != 0) {
        // Delivered in place: the payload stays in the ring while the callback has it, also
        // if the daemon moves this client's entries meanwhile (`holding`: stored, then
        // `moved_to` read; the daemon does the opposite, and then keeps the payload's pages
        // out of the ring's reuse). A nested dispatch keeps the outer hold. Only a cut-off
        // client's slots are reused under a callback.
        const bool outer_hold = holding_;
        if (!outer_hold) {
            control_->holding.store(position + 1, std::memory_order_seq_cst);
            holding_ = true;
        }
        const bool ours = entries_still_ours();
        if (ours) {
            if (!dirty_low_) {
                dirty_low_ = position;  // an entry's start: what `consumed` may report
            }
            dirty_high_ = position + entry.entry_bytes;
            callback(payload);
        }
        if (!outer_hold) {
            control_->holding.store(0, std::memory_order_release);
            holding_ = false;
        }
        return ours;
    }
    // Small payloads: a private copy costs less than page bookkeeping, and keeps
    // in-place writes by the callback away from the shared pages of other entries. A
    // payload not on pages is below kInPlaceDeliveryMinBytes, the buffer's size
    // (delivery::check_entry).
    std::memcpy(small_copy_.data(), payload, entry.payload_bytes);
    if (!entries_still_ours()) {
        return false;
    }
    callback(small_copy_.data());
    return true;
}

// An EVS message: delivered when this handle had joined one of its groups when it was
// sequenced here (EvsGroups). The groups are copied out and the entry's ownership checked
// before they decide anything: a torn read must not prune the handle's intervals.
void Handle::deliver_evs_data(uint64_t position, const EntryHeader& entry, std::byte* payload, bool in_ring,
                              bool& counted)
{
    counted = false;
    const std::optional<delivery::EvsPayload> parts = delivery::check_evs_payload({payload, entry.payload_bytes});
    if (!parts) {
        // The sender's prefix does not parse: the message is for nobody. Once the entry
        // is known to be ours: one read while it moved comes again from the backlog.
        if (in_ring) {
            entries_still_ours();
        }
        return;
    }
    evs_keys_.assign(parts->keys.begin(), parts->keys.end());
    if (in_ring && !entries_still_ours()) {
        return;
    }
    {
        std::lock_guard lock(evs_->mutex);
        if (!evs_->groups.delivers(evs_keys_, entry.seq)) {
            return;
        }
    }
    counted = true;
    const evs_deliver_fn_t deliver = evs_->callbacks.evs_deliver_fn;
    if (deliver == nullptr) {
        return;
    }
    const size_t offset = entry.payload_bytes - parts->message.size();
    if (!hand_over(position, entry, payload, in_ring, [&](std::byte* bytes) {
            deliver(id, entry.nodeid, bytes + offset, parts->message.size());
        })) {
        counted = false;
    }
}

void Handle::evs_confchg(const std::vector<uint32_t>& members, const std::vector<uint32_t>& left,
                         const std::vector<uint32_t>& joined, const ipc::RingIdWire& ring)
{
    const evs_confchg_fn_t confchg = evs_->callbacks.evs_confchg_fn;
    if (confchg == nullptr) {
        return;
    }
    // Never a null list pointer, as corosync's (arrays in its message), also when empty.
    static const unsigned int kNoNodes[1] = {0};
    const auto list = [](const std::vector<uint32_t>& nodes) { return nodes.empty() ? kNoNodes : nodes.data(); };
    const evs_ring_id ring_id{ring.nodeid, ring.seq};
    confchg(id, list(members), members.size(), list(left), left.size(), list(joined), joined.size(), &ring_id);
}

void Handle::deliver_evs_initial()
{
    // As corosync's service, which sent every new connection the last regular
    // configuration: the nodes now, all of them joined from the handle's point of view.
    evs_->initial_pending = false;
    const std::vector<uint32_t> members = evs_->members;
    evs_confchg(members, {}, members, evs_->ring);
}

// A totem confchg, reported as corosync reported totem's: the transitional configuration
// (the nodes that stay; the ones that left) and then the regular one (the new membership;
// the ones that joined).
void Handle::deliver_evs_totem(const EntryHeader& entry, const std::byte* payload, bool& counted)
{
    counted = false;
    std::vector<uint32_t> members;
    const std::optional<delivery::TotemPayload> totem = read_totem(entry, payload, members);
    if (!totem) {
        return;
    }
    // The membership at connection was asked for after the handle's start: a view it
    // already reported comes again from the ring, and is no change.
    if (totem->ring_seq <= evs_->ring.seq) {
        return;
    }
    counted = true;
    std::sort(members.begin(), members.end());
    const std::vector<uint32_t> before = std::move(evs_->members);
    std::vector<uint32_t> stayed, left, joined;
    std::set_intersection(before.begin(), before.end(), members.begin(), members.end(), std::back_inserter(stayed));
    std::set_difference(before.begin(), before.end(), members.begin(), members.end(), std::back_inserter(left));
    std::set_difference(members.begin(), members.end(), before.begin(), before.end(), std::back_inserter(joined));
    const ipc::RingIdWire ring{totem->ring_nodeid, totem->member_count, totem->ring_seq};
    evs_->members = members;
    evs_->ring = ring;
    // The regular half waits as state of the handle: a dispatch nested in the
    // transitional callback delivers it before anything later.
    evs_->pending_regular = Evs::Regular{members, std::move(joined), ring};
    evs_confchg(stayed, left, {}, ring);
    deliver_evs_regular();
}

void Handle::deliver_evs_regular()
{
    if (!evs_->pending_regular || finalized.load()) {
        return;
    }
    const Evs::Regular regular = std::move(*evs_->pending_regular);
    evs_->pending_regular.reset();
    evs_confchg(regular.members, {}, regular.joined, regular.ring);
}

void Handle::deliver_confchg(const EntryHeader& entry, const std::byte* payload)
{
    static_assert(sizeof(cpg_address) == delivery::kConfchgAddressBytes);
    const std::optional<delivery::ConfchgPayload> checked = delivery::check_confchg_payload({payload, entry.payload_bytes});
    if (!checked) {
        if (read_ahead_copy_ || entries_still_ours()) {
            break_ring();  // rcpgd never writes this
        }
        return;
    }
    const delivery::ConfchgPayload header = *checked;
    const size_t count = size_t{header.left_count} + header.joined_count + header.member_count;
    // Copied out: the lists are read after callbacks that may re-enter the library.
    std::vector<cpg_address> lists(count);
    ipc::copy_bytes(lists.data(), payload + sizeof(header), count * sizeof(cpg_address));
    if (!read_ahead_copy_ && !entries_still_ours()) {
        return;
    }
    const cpg_address* left = lists.data();
    const cpg_address* joined = left + header.left_count;
    const cpg_address* members = joined + header.joined_count;
    const auto self_pid = static_cast<uint32_t>(::getpid());

    for (uint32_t i = 0; i < header.left_count; ++i) {
        partial_.erase(std::make_pair(left[i].nodeid, left[i].pid));
    }
    const bool own_join = entry.seq == membership_->from_seq;
    const bool own_leave = membership_->leave_requested && contains_process(left, header.left_count, nodeid, self_pid);
    const cpg_name name = membership_->name;
    const bool initial_totem = own_join && membership_->initial_totem_pending;
    const ipc::RingIdWire ring = membership_->ring;
    const std::vector<uint32_t> ring_members = initial_totem ? membership_->ring_members : std::vector<uint32_t>{};
    if (own_leave) {
        // After its own leave the handle hears nothing more of the group.
        membership_.reset();
        if (model.cpg_totem_confchg_fn == nullptr) {
            reading_ = false;
        }
    } else if (initial_totem) {
        membership_->initial_totem_pending = false;
    }
    if (model.cpg_confchg_fn != nullptr) {
        model.cpg_confchg_fn(id, &name, members, header.member_count, left, header.left_count, joined,
                             header.joined_count);
    }
    if (initial_totem && model.cpg_totem_confchg_fn != nullptr && !finalized.load()) {
        cpg_ring_id ring_id{};
        ring_id.nodeid = ring.nodeid;
        ring_id.seq = ring.seq;
        model.cpg_totem_confchg_fn(id, ring_id, static_cast<uint32_t>(ring_members.size()), ring_members.data());
    }
}

// A totem confchg's header and members, copied out and checked; nullopt when it is not
// to be delivered (moved meanwhile, or malformed: then the ring is broken).
std::optional<delivery::TotemPayload> Handle::read_totem(const EntryHeader& entry, const std::byte* payload,
                                                         std::vector<uint32_t>& members)
{
    const std::optional<delivery::TotemPayload> totem = delivery::check_totem_payload({payload, entry.payload_bytes});
    if (!totem) {
        if (read_ahead_copy_ || entries_still_ours()) {
            break_ring();  // rcpgd never writes this
        }
        return std::nullopt;
    }
    members.resize(totem->member_count);
    ipc::copy_bytes(members.data(), payload + sizeof(delivery::TotemPayload), members.size() * sizeof(uint32_t));
    if (!read_ahead_copy_ && !entries_still_ours()) {
        return std::nullopt;
    }
    return totem;
}

void Handle::deliver_totem(const EntryHeader& entry, const std::byte* payload)
{
    std::vector<uint32_t> members;
    const std::optional<delivery::TotemPayload> totem = read_totem(entry, payload, members);
    if (!totem) {
        return;
    }
    cpg_ring_id ring_id{};
    ring_id.nodeid = totem->ring_nodeid;
    ring_id.seq = totem->ring_seq;
    model.cpg_totem_confchg_fn(id, ring_id, totem->member_count, members.data());
}

// Processes the next entry of ours (skip_to_relevant() said there is one): the first one
// read ahead, else the one at the cursor, which it moves past (unless it turns out moved
// to the backlog meanwhile: then the cursor goes back, and it is not delivered).
// `counted` tells whether it was one event for the ONE modes.
void Handle::process_entry(bool& counted)
{
    if (evs_ && evs_->initial_pending) {
        counted = true;
        deliver_evs_initial();
        return;
    }
    if (evs_ && evs_->pending_regular) {
        counted = true;
        deliver_evs_regular();
        return;
    }
    EntryHeader entry{};
    std::byte* payload = nullptr;
    uint64_t position = 0;
    BufferedEntry buffered;
    read_ahead_copy_ = !read_ahead_.empty();
    if (read_ahead_copy_) {
        buffered = std::move(read_ahead_.front());
        read_ahead_.pop_front();
        entry = buffered.header;
        static std::byte no_payload;  // never a null message pointer, as from the ring
        payload = buffered.payload.empty() ? &no_payload : buffered.payload.data();
    } else {
        position = cursor_;
        entry = current_.header;
        // Inside the ring: read_entry() checked the payload against the entry and the ring.
        payload = ring_data_ + (position & (ring_bytes_ - 1)) + entry.payload_offset;
        cursor_ = position + entry.entry_bytes;
    }
    counted = true;
    // Taken before a callback runs (a nested dispatch must not take its moved copy).
    const uint64_t taken_before = taken_seq_;
    if (!read_ahead_copy_) {
        taken_seq_ = std::max(taken_seq_, entry.seq);
    }
    switch (entry.kind) {
    case EntryKind::data:
        if (evs_) {
            deliver_evs_data(position, entry, payload, !read_ahead_copy_, counted);
        } else {
            deliver_data(position, entry, payload, !read_ahead_copy_);
        }
        break;
    case EntryKind::confchg:
        deliver_confchg(entry, payload);
        break;
    case EntryKind::totem_confchg:
        if (evs_) {
            deliver_evs_totem(entry, payload, counted);
        } else {
            deliver_totem(entry, payload);
        }
        break;
    case EntryKind::pad:
    case EntryKind::skip:
    case EntryKind::dropped:
        counted = false;
        break;
    }
    if (entry_moved_) {
        counted = false;  // not delivered (no callback ran): it comes again from the backlog
        entry_moved_ = false;
        taken_seq_ = taken_before;
    }
}

void Handle::clean_written_pages()
{
    if (!dirty_low_) {
        return;
    }
    uint64_t start = *dirty_low_ & ~(uint64_t{delivery::kPageBytes} - 1);
    uint64_t remaining = std::min(delivery::align_up(dirty_high_, delivery::kPageBytes) - start, ring_bytes_);
    while (remaining > 0) {
        const uint64_t offset = start & (ring_bytes_ - 1);
        const uint64_t run = std::min(remaining, ring_bytes_ - offset);
        drop_private_pages(ring_data_ + offset, run);
        start += run;
        remaining -= run;
    }
    dirty_low_.reset();
}

void Handle::publish_consumed()
{
    uint64_t consumed = cursor_;
    if (dirty_low_) {
        const bool ring_short = ring_->flow_control.load(std::memory_order_relaxed) != 0;
        if (ring_short || cursor_ - *dirty_low_ >= clean_interval(ring_bytes_) || !reading_) {
            clean_written_pages();
        } else {
            // Held back to the entry whose pages are not yet cleaned: `consumed` is always an
            // entry's start, where the daemon can read on (move_to_backlog).
            consumed = *dirty_low_;
        }
    }
    consumed = std::max(consumed, published_consumed_);
    if (consumed != published_consumed_) {
        published_consumed_ = consumed;
        control_->consumed.store(consumed, std::memory_order_seq_cst);
        // A daemon that waits for room sleeps with a short timeout; ring it at once.
        if (ring_->flow_control.load(std::memory_order_relaxed) != 0) {
            if (ring_->daemon_sleeping.load(std::memory_order_seq_cst) != 0) {
                const uint64_t one = 1;
                [[maybe_unused]] ssize_t ignored = ::write(doorbell_.get(), &one, sizeof(one));
            }
        }
    }
}

void Handle::disarm()
{
    if (!armed_) {
        return;
    }
    armed_ = false;
    if (control_->waiting.exchange(0, std::memory_order_seq_cst) == 0) {
        wake_pending_ = true;  // the daemon took the flag: its wake event is coming
    }
}

// Consumes the wake event that is in, or on its way to, the socket.
cs_error_t Handle::wait_for_wake()
{
    char buffer[sizeof(ipc::WakeEvent)];
    while (true) {
        const ssize_t result = qb_ipcc_event_recv(ipc_, buffer, sizeof(buffer), -1);
        if (result >= 0) {
            wake_pending_ = false;
            return CS_OK;
        }
        if (result == -EINTR || result == -EAGAIN || result == -ETIMEDOUT) {
            continue;
        }
        return finalized.load() ? CS_ERR_BAD_HANDLE : CS_ERR_LIBRARY;
    }
}

// Restores the readiness invariant before returning to the application. A call that
// delivered nothing (typically woken by a hang-up) also checks that the daemon is there.
cs_error_t Handle::settle(bool delivered_any)
{
    if (!skip_to_relevant()) {
        if (ring_broken_.load()) {
            return CS_ERR_LIBRARY;
        }
        if (wake_pending_) {
            if (cs_error_t error = wait_for_wake(); error != CS_OK) {
                return error;
            }
        }
        // Armed even when not reading: a join from another thread then wakes us.
        control_->waiting.store(cursor_ + 1, std::memory_order_seq_cst);
        armed_ = true;
        if (!skip_to_relevant()) {
            if (ring_broken_.load()) {
                return CS_ERR_LIBRARY;
            }
            publish_consumed();
            return !delivered_any && daemon_gone() ? CS_ERR_LIBRARY : CS_OK;
        }
        disarm();
    }
    publish_consumed();
    if (!wake_pending_ && !ask_for_wake()) {
        return CS_ERR_LIBRARY;
    }
    return CS_OK;
}

// Asks the daemon for a wake event (an event of ours is pending, or is to be); false when
// the request cannot be sent.
bool Handle::ask_for_wake()
{
    ipc::BareRequest wake_me{};
    wake_me.header = {static_cast<int32_t>(ipc::RequestId::wake_me), sizeof(wake_me)};
    std::lock_guard lock(request_mutex_);
    if (qb_ipcc_send(ipc_, &wake_me, sizeof(wake_me)) < 0) {
        return false;
    }
    wake_pending_ = true;
    return true;
}

cs_error_t Handle::dispatch(int mode)
{
    // One dispatching thread per handle (corosync does not support more; here a second
    // one is refused rather than allowed to steal the first one's wake-ups). The same
    // thread may dispatch again from inside a callback.
    const std::thread::id self = std::this_thread::get_id();
    std::thread::id idle;
    const bool outermost = dispatcher_.compare_exchange_strong(idle, self);
    if (!outermost && idle != self) {
        return CS_ERR_BUSY;
    }
    struct Release {
        std::atomic<std::thread::id>& dispatcher;
        bool outermost;
        ~Release()
        {
            if (outermost) {
                dispatcher.store(std::thread::id{});
            }
        }
    } release{dispatcher_, outermost};

    const bool one_event = mode == CS_DISPATCH_ONE || mode == CS_DISPATCH_ONE_NONBLOCKING;
    std::unique_lock state(state_mutex_);
    disarm();
    bool delivered_any = false;
    bool out_of_memory = false;
    const auto finish = [&](cs_error_t result) { return result == CS_OK && out_of_memory ? CS_ERR_NO_MEMORY : result; };
    while (true) {
        if (finalized.load()) {
            return CS_ERR_BAD_HANDLE;
        }
        bool counted = false;
        const bool ours = skip_to_relevant();
        if (ring_broken_.load()) {
            return CS_ERR_LIBRARY;
        }
        if (ours) {
            try {
                process_entry(counted);
            } catch (const std::bad_alloc&) {
                // A message that could not be reassembled is dropped whole; the call still
                // leaves the handle consistent and reports it.
                out_of_memory = true;
                counted = true;
            }
            delivered_any |= counted;
            if (finalized.load()) {
                return CS_ERR_BAD_HANDLE;
            }
            if (ring_broken_.load()) {
                return CS_ERR_LIBRARY;
            }
            if (!(one_event && counted)) {
                continue;
            }
        }
        if (one_event && delivered_any) {
            return finish(settle(delivered_any));
        }
        if (mode == CS_DISPATCH_ALL) {
            return finish(settle(delivered_any));
        }
        if (mode == CS_DISPATCH_ONE_NONBLOCKING) {
            const cs_error_t error = settle(delivered_any);
            return error == CS_OK ? CS_ERR_TRY_AGAIN : error;
        }
        // ONE, BLOCKING (and unknown modes, as corosync): sleep until the next event.
        if (!wake_pending_ && spin_for_relevant()) {
            continue;
        }
        if (cs_error_t error = settle(delivered_any); error != CS_OK) {
            return error;
        }
        if (!armed_) {
            continue;  // an event arrived while settling
        }
        state.unlock();
        const cs_error_t woke = wait_for_wake();
        state.lock();
        armed_ = false;  // the daemon cleared the flag when it sent the wake event
        if (woke != CS_OK) {
            return woke;
        }
    }
}

}  // namespace rcpg::libcpg
