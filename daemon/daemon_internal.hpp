// What the files of rcpgd's Daemon share: the loop's timing constants and small helpers.
// Included only by daemon/daemon*.cpp.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>

namespace rcpg::daemon::daemon_detail {

// Control requests are looked at this often while the loop spins on submissions.
inline constexpr uint64_t kIpcPollIntervalNs = 20'000;
// While senders wait for ring space or a dead client's leftovers wait to be sequenced,
// the loop re-checks this often instead of sleeping until the next request.
inline constexpr int kBlockedRecheckMs = 1;
// Without any event the loop still wakes this often (stop requests, stale fd requests).
inline constexpr int kIdleWakeMs = 500;
// A client that connects to the fd socket must present its token within this time.
inline constexpr auto kFdRequestTimeout = std::chrono::seconds(5);
// Descriptor requests waiting for their token at once: each is a process in the middle of
// cpg_initialize, so this is far above what any node sees.
inline constexpr size_t kMaxFdRequests = 256;
// Submissions taken from one client before the next client gets its turn.
inline constexpr uint32_t kDrainBudgetPerClient = 256;

inline uint64_t now_ns()
{
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
}

inline void futex_wake_all(std::atomic<uint32_t>* word)
{
    ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

}  // namespace rcpg::daemon::daemon_detail
