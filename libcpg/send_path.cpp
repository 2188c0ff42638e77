// The send path: a message goes into the handle's arena (gathered once for
// cpg_mcast_joined, already there for cpg_zcb_mcast_joined) and a descriptor into the
// submission ring; the daemon takes it from there. No system call is made unless the
// daemon is asleep (doorbell) or a zero-copy sender must wait for its buffer.
//
// The copy area of the arena is a circular buffer: a message is never split across its
// end, and space is reclaimed in submission order as the daemon advances sub_head.
#include "libcpg/handle.hpp"

#include <linux/futex.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <thread>

namespace rcpg::libcpg {
namespace {

constexpr uint64_t kCopyAlignBytes = 64;
// A zero-copy sender spins this many times for the daemon to take its buffer before it
// sleeps on the futex: the daemon polls while busy, so the wait is usually short.
constexpr int kTakenSpinIterations = 4000;
// A fragment of a large message waits this long for room, as corosync's library retries
// for about a second, before the send gives up with CS_ERR_TRY_AGAIN. Counted from the
// last fragment that went out: a message that keeps moving is never cut off, however
// long it takes. $RCPG_FRAGMENT_ROOM_TIMEOUT_MS sets it (read once per process), for
// programs whose readers may pause longer, and for tests that provoke it.
constexpr uint64_t kDefaultFragmentRoomTimeoutMs = 2000;

std::chrono::milliseconds fragment_room_timeout()
{
    static const std::chrono::milliseconds timeout = [] {
        const char* text = std::getenv("RCPG_FRAGMENT_ROOM_TIMEOUT_MS");
        char* end = nullptr;
        const unsigned long long value = text != nullptr ? std::strtoull(text, &end, 10) : 0;
        // An unset, empty or malformed value keeps the default; 0 is not a timeout.
        const bool valid = text != nullptr && *text != '\0' && *end == '\0' && value > 0 && value <= 3'600'000;
        return std::chrono::milliseconds(valid ? value : kDefaultFragmentRoomTimeoutMs);
    }();
    return timeout;
}
constexpr timespec kFutexWaitSlice{0, 10'000'000};
// Fragments carry the whole message size in 32 bits.
constexpr uint64_t kMaxMessageBytes = UINT32_MAX;

void cpu_relax() { __builtin_ia32_pause(); }

uint64_t total_length(const iovec* iov, unsigned int count, bool& valid)
{
    uint64_t total = 0;
    valid = true;
    for (unsigned int i = 0; i < count; ++i) {
        if (iov[i].iov_base == nullptr && iov[i].iov_len != 0) {
            valid = false;
        }
        total += iov[i].iov_len;
    }
    return total;
}

// Copies `bytes` of the iovec starting `skip` bytes in.
void gather(std::byte* out, const iovec* iov, unsigned int count, uint64_t skip, uint64_t bytes)
{
    for (unsigned int i = 0; i < count && bytes > 0; ++i) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        const uint64_t take = std::min<uint64_t>(iov[i].iov_len - skip, bytes);
        std::memcpy(out, static_cast<const std::byte*>(iov[i].iov_base) + skip, take);
        out += take;
        bytes -= take;
        skip = 0;
    }
}

}  // namespace

void Handle::reclaim_submissions()
{
    const uint64_t head = control_->sub_head.load(std::memory_order_acquire);
    if (head != sub_reclaimed_ && head - sub_reclaimed_ <= submission_mask_ + 1ull && head <= sub_tail_) {
        copy_free_ = copy_end_[(head - 1) & submission_mask_];
        sub_reclaimed_ = head;
    }
}

std::optional<uint64_t> Handle::allocate_copy(uint64_t bytes)
{
    const uint64_t size = delivery::align_up(std::max<uint64_t>(bytes, 1), kCopyAlignBytes);
    uint64_t position = copy_alloc_;
    const uint64_t offset = position % copy_bytes_;
    if (offset + size > copy_bytes_) {
        position += copy_bytes_ - offset;  // never split a message across the end
    }
    if (position + size - copy_free_ > copy_bytes_) {
        return std::nullopt;
    }
    copy_alloc_ = position + size;
    return position % copy_bytes_;
}

bool Handle::publish(uint64_t arena_offset, uint32_t length, uint16_t flags, uint64_t total_bytes)
{
    if (sub_tail_ - sub_reclaimed_ > submission_mask_) {
        return false;
    }
    ipc::SubmissionDescriptor& descriptor = descriptors_[sub_tail_ & submission_mask_];
    descriptor.arena_offset = arena_offset;
    descriptor.length = length;
    descriptor.flags = flags;
    descriptor.reserved = 0;
    descriptor.total_bytes = total_bytes;
    descriptor.reserved2 = 0;
    copy_end_[sub_tail_ & submission_mask_] = copy_alloc_;
    ++sub_tail_;
    // seq_cst, like the load in ring_doorbell_if_sleeping: with the daemon's seq_cst store
    // of daemon_sleeping and load of sub_tail, either it sees this submission or we see it
    // asleep.
    control_->sub_tail.store(sub_tail_, std::memory_order_seq_cst);
    ring_doorbell_if_sleeping();
    return true;
}

void Handle::ring_doorbell_if_sleeping()
{
    if (ring_->daemon_sleeping.load(std::memory_order_seq_cst) != 0) {
        const uint64_t one = 1;
        [[maybe_unused]] ssize_t ignored = ::write(doorbell_.get(), &one, sizeof(one));
    }
}

cs_error_t Handle::wait_taken(uint64_t submission_count)
{
    for (int i = 0; i < kTakenSpinIterations; ++i) {
        if (control_->sub_head.load(std::memory_order_acquire) >= submission_count) {
            return CS_OK;
        }
        cpu_relax();
    }
    cs_error_t result = CS_OK;
    control_->submitter_waiting.store(1, std::memory_order_seq_cst);
    while (control_->sub_head.load(std::memory_order_seq_cst) < submission_count) {
        const uint32_t observed = control_->sub_head_futex.load(std::memory_order_seq_cst);
        if (control_->sub_head.load(std::memory_order_seq_cst) >= submission_count) {
            break;
        }
        ring_doorbell_if_sleeping();
        ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(&control_->sub_head_futex), FUTEX_WAIT, observed,
                  &kFutexWaitSlice, nullptr, 0);
        if (finalized.load(std::memory_order_relaxed)) {
            result = CS_ERR_BAD_HANDLE;
            break;
        }
        if (daemon_gone()) {
            result = CS_ERR_LIBRARY;
            break;
        }
    }
    control_->submitter_waiting.store(0, std::memory_order_relaxed);
    return result;
}

bool Handle::daemon_gone() const
{
    pollfd socket{fd, POLLRDHUP, 0};
    return ::poll(&socket, 1, 0) == 1 && (socket.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)) != 0;
}

// Whether a send must fail because the daemon is gone or has cut this client off; called
// with send_mutex held before every message goes out. The daemon moves `alive_ms` on
// every turn of its loop, so while it is busy this is two loads and a clock read (vDSO).
// Only a daemon silent for delivery::kDaemonSilenceMs (dead, asleep, or not scheduled) costs
// a poll() of its socket, at most once per that time. So nothing is accepted with CS_OK
// later than that bound (and a tick of the coarse clock) after the daemon died.
bool Handle::daemon_lost()
{
    if (daemon_dead_.load(std::memory_order_relaxed) || ring_broken_.load(std::memory_order_relaxed) ||
        control_->cut_off.load(std::memory_order_relaxed) != 0) {
        return true;
    }
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    const uint64_t now_ms = static_cast<uint64_t>(now.tv_sec) * 1000 + static_cast<uint64_t>(now.tv_nsec) / 1'000'000;
    const uint64_t alive_ms = ring_->alive_ms.load(std::memory_order_relaxed);
    if (now_ms <= alive_ms + delivery::kDaemonSilenceMs || now_ms <= liveness_checked_ms_ + delivery::kDaemonSilenceMs) {
        return false;
    }
    liveness_checked_ms_ = now_ms;
    if (daemon_gone()) {
        daemon_dead_.store(true, std::memory_order_relaxed);
        return true;
    }
    return false;
}

cs_error_t Handle::mcast(uint16_t flags, const iovec* iov, unsigned int iov_count)
{
    if ((iov == nullptr && iov_count != 0) || iov_count > IOV_MAX) {
        return CS_ERR_INVALID_PARAM;
    }
    bool valid = true;
    const uint64_t total = total_length(iov, iov_count, valid);
    if (!valid) {
        return CS_ERR_INVALID_PARAM;
    }
    if (total > kMaxMessageBytes) {
        return CS_ERR_TOO_BIG;
    }
    std::lock_guard lock(send_mutex);
    if (daemon_lost()) {
        return CS_ERR_LIBRARY;
    }
    if (total > delivery::kMaxAtomicMessageBytes) {
        return send_fragmented(flags, iov, iov_count, total, nullptr);
    }
    return send_copied(flags, {}, iov, iov_count, total);
}

// One entry's worth: `prefix`, then the iovec's `message_bytes`, gathered into the copy
// area and published. Called with send_mutex held.
cs_error_t Handle::send_copied(uint16_t flags, std::span<const std::byte> prefix, const iovec* iov,
                               unsigned int iov_count, uint64_t message_bytes)
{
    const uint64_t total = prefix.size() + message_bytes;
    reclaim_submissions();
    const std::optional<uint64_t> offset =
        sub_tail_ - sub_reclaimed_ > submission_mask_ ? std::nullopt : allocate_copy(total);
    if (!offset) {
        return daemon_gone() ? CS_ERR_LIBRARY : CS_ERR_TRY_AGAIN;
    }
    if (!prefix.empty()) {
        std::memcpy(arena_ + *offset, prefix.data(), prefix.size());
    }
    gather(arena_ + *offset + prefix.size(), iov, iov_count, 0, message_bytes);
    publish(*offset, static_cast<uint32_t>(total), flags, total);
    return CS_OK;
}

cs_error_t Handle::evs_mcast(uint16_t flags, std::optional<std::span<const EvsKey>> groups, const iovec* iov,
                             unsigned int iov_count)
{
    if ((iov == nullptr && iov_count != 0) || iov_count > IOV_MAX) {
        return CS_ERR_INVALID_PARAM;
    }
    bool valid = true;
    const uint64_t message_bytes = total_length(iov, iov_count, valid);
    if (!valid) {
        return CS_ERR_INVALID_PARAM;
    }
    // The payload names its groups: those given, or the handle's at this moment (as
    // corosync's service took the connection's list when it handled the request).
    std::vector<EvsKey> joined;
    if (!groups) {
        std::lock_guard lock(evs_->mutex);
        joined = evs_->groups.joined();
        groups = std::span<const EvsKey>(joined);
    }
    const uint64_t group_count = groups->size();
    // One entry: corosync's IPC refused a request above 1 MiB the same way.
    if (delivery::evs_header_bytes(group_count) > delivery::kMaxAtomicMessageBytes ||
        message_bytes > delivery::evs_max_message_bytes(group_count)) {
        return CS_ERR_INVALID_PARAM;
    }
    std::vector<std::byte> prefix(delivery::evs_header_bytes(group_count));
    const delivery::EvsPrefix header{static_cast<uint32_t>(group_count), 0};
    std::memcpy(prefix.data(), &header, sizeof(header));
    if (group_count != 0) {
        std::memcpy(prefix.data() + sizeof(header), groups->data(), group_count * sizeof(EvsKey));
    }
    std::lock_guard lock(send_mutex);
    if (daemon_lost()) {
        return CS_ERR_LIBRARY;
    }
    return send_copied(flags | delivery::kFlagEvs, prefix, iov, iov_count, message_bytes);
}

cs_error_t Handle::zcb_mcast(uint16_t flags, void* buffer, size_t bytes)
{
    ZcbAllocator::Buffer found{};
    {
        std::lock_guard lock(zcb.mutex);
        const ZcbAllocator::Buffer* live = zcb.find(buffer);
        if (live == nullptr || bytes > live->capacity) {
            return CS_ERR_INVALID_PARAM;
        }
        found = *live;
    }
    if (!joined_.load(std::memory_order_acquire)) {
        return CS_ERR_NOT_EXIST;
    }
    if (bytes > kMaxMessageBytes) {
        return CS_ERR_TOO_BIG;
    }
    if (!found.in_arena) {
        iovec part{buffer, bytes};
        return mcast(flags, &part, 1);
    }
    std::lock_guard lock(send_mutex);
    if (daemon_lost()) {
        return CS_ERR_LIBRARY;
    }
    if (bytes > delivery::kMaxAtomicMessageBytes) {
        return send_fragmented(flags, nullptr, 0, bytes, static_cast<const std::byte*>(buffer));
    }
    // Refuse rather than wait behind a full ring: this thread may be the reader that has
    // to make room.
    reclaim_submissions();
    if (ring_->flow_control.load(std::memory_order_relaxed) != 0 || sub_tail_ - sub_reclaimed_ > submission_mask_) {
        return daemon_gone() ? CS_ERR_LIBRARY : CS_ERR_TRY_AGAIN;
    }
    publish(zcb.arena_offset(buffer), static_cast<uint32_t>(bytes), flags, bytes);
    // The caller may reuse the buffer once we return, so the daemon must have taken it.
    return wait_taken(sub_tail_);
}

cs_error_t Handle::send_fragmented(uint16_t flags, const iovec* iov, unsigned int iov_count, uint64_t total_bytes,
                                   const std::byte* zcb_source)
{
    if (!joined_.load(std::memory_order_acquire)) {
        return CS_ERR_NOT_EXIST;
    }
    auto deadline = std::chrono::steady_clock::now() + fragment_room_timeout();
    uint64_t sent = 0;
    while (sent < total_bytes) {
        const uint64_t piece = std::min<uint64_t>(total_bytes - sent, delivery::kMaxAtomicMessageBytes);
        uint16_t piece_flags = flags | delivery::kFlagFragment;
        if (sent == 0) {
            piece_flags |= delivery::kFlagFragmentFirst;
        }
        if (sent + piece == total_bytes) {
            piece_flags |= delivery::kFlagFragmentLast;
        }
        reclaim_submissions();
        std::optional<uint64_t> offset;
        if (sub_tail_ - sub_reclaimed_ <= submission_mask_) {
            offset = zcb_source != nullptr ? std::optional<uint64_t>(zcb.arena_offset(zcb_source + sent))
                                           : allocate_copy(piece);
        }
        if (!offset) {
            if (daemon_gone()) {
                daemon_dead_.store(true, std::memory_order_relaxed);
                return CS_ERR_LIBRARY;
            }
            // The reader holding the ring back may be this very thread: take its entries
            // out of the ring, and try again at once if that made room.
            if (read_ahead()) {
                continue;
            }
            if (std::chrono::steady_clock::now() > deadline || finalized.load()) {
                if (sent != 0) {
                    // Tell receivers to drop what they hold of this message.
                    reclaim_submissions();
                    publish(0, 0, flags | delivery::kFlagFragment | delivery::kFlagFragmentAbort, total_bytes);
                }
                return CS_ERR_TRY_AGAIN;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(100));
            continue;
        }
        if (daemon_lost()) {
            return CS_ERR_LIBRARY;
        }
        if (zcb_source == nullptr) {
            gather(arena_ + *offset, iov, iov_count, sent, piece);
        }
        publish(*offset, static_cast<uint32_t>(piece), piece_flags, total_bytes);
        sent += piece;
        deadline = std::chrono::steady_clock::now() + fragment_room_timeout();
    }
    return zcb_source != nullptr ? wait_taken(sub_tail_) : CS_OK;
}

bool Handle::flow_control_enabled()
{
    std::lock_guard lock(send_mutex);
    reclaim_submissions();
    return ring_->flow_control.load(std::memory_order_relaxed) != 0 || sub_tail_ - sub_reclaimed_ > submission_mask_;
}

}  // namespace rcpg::libcpg
