#include "transport/completion.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <utility>

namespace rcpg::transport {

Result<CompletionChannel> create_completion_channel(ibv_context* context)
{
    ibv_comp_channel* channel = ibv_create_comp_channel(context);
    if (channel == nullptr) {
        return errno_status(Errc::device_error, Layer::completion, "ibv_create_comp_channel", errno);
    }
    CompletionChannel owned(channel);
    // Non-blocking: arm_wait drains it until EAGAIN and must never block there.
    const int flags = fcntl(channel->fd, F_GETFL);
    if (flags < 0 || fcntl(channel->fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        return errno_status(Errc::device_error, Layer::completion, "make completion channel non-blocking", errno);
    }
    return owned;
}

Result<CompletionQueue> create_cq(ibv_context* context, uint32_t entries, ibv_comp_channel* channel)
{
    ibv_cq* cq = ibv_create_cq(context, static_cast<int>(entries), nullptr, channel, 0);
    if (cq == nullptr) {
        return errno_status(Errc::device_error, Layer::completion, "ibv_create_cq", errno);
    }
    return CompletionQueue(cq);
}

Status arm_cq(ibv_cq* cq)
{
    if (int rc = ibv_req_notify_cq(cq, 0); rc != 0) {
        return errno_status(Errc::device_error, Layer::completion, "ibv_req_notify_cq", rc);
    }
    return {};
}

Result<uint32_t> drain_cq_events(ibv_comp_channel* channel)
{
    uint32_t taken = 0;
    for (;;) {
        ibv_cq* cq = nullptr;
        void* context = nullptr;
        if (ibv_get_cq_event(channel, &cq, &context) != 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return taken;
            }
            return errno_status(Errc::device_error, Layer::completion, "ibv_get_cq_event", errno);
        }
        // At once, not batched: acking is a mutex in user space, and an event never waits
        // unacked for its CQ's teardown (which would hang in ibv_destroy_cq).
        ibv_ack_cq_events(cq, 1);
        ++taken;
    }
}

DisconnectReason disconnect_reason(ibv_wc_status status)
{
    // Retry exhaustion is the one failure that means "the peer went silent"; everything
    // else leaves the queue pair in the error state for a reason on one of the two sides.
    return status == IBV_WC_RETRY_EXC_ERR ? DisconnectReason::retry_exceeded : DisconnectReason::qp_error;
}

std::string describe(const ibv_wc& wc)
{
    return std::string("work completion ") + ibv_wc_status_str(wc.status) + " (status " +
           std::to_string(static_cast<int>(wc.status)) + ", vendor error " + std::to_string(wc.vendor_err) + ")";
}

Result<WaitSet> WaitSet::create(int completion_fd, int cm_fd)
{
    WaitSet set;
    set.epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (set.epoll_fd_ < 0) {
        return errno_status(Errc::device_error, Layer::completion, "epoll_create1", errno);
    }
    const std::array<std::pair<int, Source>, 2> sources{{{completion_fd, completions}, {cm_fd, cm_events}}};
    for (const auto& [fd, source] : sources) {
        epoll_event event{};
        event.events = EPOLLIN;  // level-triggered: readable while anything is unread
        event.data.u32 = source;
        if (epoll_ctl(set.epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
            return errno_status(Errc::device_error, Layer::completion, "epoll_ctl add", errno);
        }
    }
    return set;
}

WaitSet::WaitSet(WaitSet&& other) noexcept : epoll_fd_(std::exchange(other.epoll_fd_, -1)) {}

WaitSet& WaitSet::operator=(WaitSet&& other) noexcept
{
    if (this != &other) {
        if (epoll_fd_ >= 0) {
            close(epoll_fd_);
        }
        epoll_fd_ = std::exchange(other.epoll_fd_, -1);
    }
    return *this;
}

WaitSet::~WaitSet()
{
    if (epoll_fd_ >= 0) {
        close(epoll_fd_);
    }
}

uint32_t WaitSet::ready_now() const
{
    std::array<epoll_event, 2> ready{};
    const int count = epoll_wait(epoll_fd_, ready.data(), static_cast<int>(ready.size()), 0);
    if (count < 0) {
        return completions | cm_events;  // cannot tell: say "maybe", the caller polls again
    }
    uint32_t mask = 0;
    for (int i = 0; i < count; ++i) {
        mask |= ready[static_cast<size_t>(i)].data.u32;
    }
    return mask;
}

}  // namespace rcpg::transport
