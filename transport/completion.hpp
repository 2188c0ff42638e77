// Completion queues and how a caller sleeps on them.
//
// One CQ per connection, shared by its send and receive queues, busy polled from
// Transport::poll. Sized so it can never overflow: every send and every receive of the
// connection can complete at once (flushes included).
//
// Every CQ is attached to the transport's one completion channel, but a CQ raises an
// event on it only after ibv_req_notify_cq armed it, and only once per arming: the busy
// poll path never arms, so it pays nothing for the channel. Transport::arm_wait arms the
// CQs just before the caller sleeps; the WaitSet (an epoll set over the completion
// channel and the rdma_cm event channel) is the one descriptor the caller sleeps on.
#pragma once

#include "transport/status.hpp"
#include "transport/transport.hpp"

#include <infiniband/verbs.h>

#include <memory>
#include <span>
#include <string>

namespace rcpg::transport {

struct CompChannelDeleter {
    // Fails with EBUSY while a CQ is attached: destroyed after every CQ (rping's order:
    // QP, CQ, completion channel, PD).
    void operator()(ibv_comp_channel* channel) const { ibv_destroy_comp_channel(channel); }
};
using CompletionChannel = std::unique_ptr<ibv_comp_channel, CompChannelDeleter>;

// A completion channel whose descriptor is non-blocking, so draining it never waits.
Result<CompletionChannel> create_completion_channel(ibv_context* context);

struct CqDeleter {
    void operator()(ibv_cq* cq) const { ibv_destroy_cq(cq); }
};
using CompletionQueue = std::unique_ptr<ibv_cq, CqDeleter>;

// `channel` may be null (no events, ever).
Result<CompletionQueue> create_cq(ibv_context* context, uint32_t entries, ibv_comp_channel* channel);

// Up to wcs.size() completions; negative on a device error.
inline int poll_cq(ibv_cq* cq, std::span<ibv_wc> wcs)
{
    return ibv_poll_cq(cq, static_cast<int>(wcs.size()), wcs.data());
}

// Asks for one event on the CQ's channel at its next completion (any, not only
// solicited). A completion that is already in the CQ raises none: the caller polls once
// more after arming.
Status arm_cq(ibv_cq* cq);

// Takes every event queued on the channel and acknowledges each at once. ibv_destroy_cq
// waits until every event it delivered has been acknowledged, so an event held unacked
// would hang the teardown of its connection; events not read yet are discarded by the
// kernel with their CQ. Returns how many were taken.
Result<uint32_t> drain_cq_events(ibv_comp_channel* channel);

// What a failed work completion means for the connection.
DisconnectReason disconnect_reason(ibv_wc_status status);
std::string describe(const ibv_wc& wc);

// The descriptor a sleeping caller waits on: an epoll set (itself pollable) over the
// completion channel and the rdma_cm event channel, level-triggered, so it stays
// readable while either has something unread.
class WaitSet {
public:
    enum Source : uint32_t { completions = 1u << 0, cm_events = 1u << 1 };

    WaitSet() = default;
    static Result<WaitSet> create(int completion_fd, int cm_fd);
    WaitSet(WaitSet&& other) noexcept;
    WaitSet& operator=(WaitSet&& other) noexcept;
    WaitSet(const WaitSet&) = delete;
    WaitSet& operator=(const WaitSet&) = delete;
    ~WaitSet();

    int fd() const { return epoll_fd_; }
    // The sources readable right now (a Source mask; one epoll_wait that does not wait).
    uint32_t ready_now() const;

private:
    int epoll_fd_ = -1;
};

}  // namespace rcpg::transport
