#include "transport/completion.hpp"

#include <cerrno>

namespace rcpg::transport {

Result<CompletionQueue> create_cq(ibv_context* context, uint32_t entries)
{
    ibv_cq* cq = ibv_create_cq(context, static_cast<int>(entries), nullptr, nullptr, 0);
    if (cq == nullptr) {
        return errno_status(Errc::device_error, Layer::completion, "ibv_create_cq", errno);
    }
    return CompletionQueue(cq);
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

}  // namespace rcpg::transport
