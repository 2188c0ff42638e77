// A client that speaks rcpgd's protocol itself instead of through libcpg, as a hostile
// local program would: it keeps every descriptor the daemon hands over and can do with
// them what it likes. For tests that play such a program.
#pragma once

#include "libcpg/ipc/fd_passing.hpp"
#include "libcpg/ipc/protocol.hpp"
#include "libcpg/ipc/shm.hpp"

#include <qb/qbipcc.h>

#include <array>
#include <string>

namespace rcpg::testing {

struct RawSession {
    RawSession() = default;
    RawSession(const RawSession&) = delete;
    RawSession& operator=(const RawSession&) = delete;
    RawSession(RawSession&& other) noexcept;
    RawSession& operator=(RawSession&&) = delete;
    ~RawSession();

    qb_ipcc_connection_t* connection = nullptr;
    ipc::InitResponse init{};
    std::array<ipc::UniqueFd, ipc::fd_count> fds;  // as handed over: ring, control, arena, doorbell
    ipc::Mapping control;                          // the control block, mapped read-write
    std::string error;                             // why open_raw_session failed; empty when it did not
};

// Connects to the rcpgd serving `ipc_name`, inits (with `init_flags`, ipc::kInitFlag*),
// takes the descriptors and maps the control block; joins `group` unless it is empty.
// Check `error`. Makes no gtest assertion, so a forked child may use it.
RawSession open_raw_session(const std::string& ipc_name, const std::string& group = "evil", uint32_t init_flags = 0);

// Waits this long for a reply (a bound for a hang, far above a slow machine's).
inline constexpr int kRawReplyTimeoutMs = 60'000;

}  // namespace rcpg::testing
