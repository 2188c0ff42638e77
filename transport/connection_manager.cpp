#include "transport/connection_manager.hpp"

#include <arpa/inet.h>
#include <fcntl.h>

#include <cerrno>

namespace rcpg::transport {

Result<EventChannel> create_event_channel()
{
    rdma_event_channel* channel = rdma_create_event_channel();
    if (channel == nullptr) {
        return errno_status(Errc::device_error, Layer::cm, "rdma_create_event_channel (is rdma_ucm loaded?)", errno);
    }
    EventChannel owned(channel);
    const int flags = fcntl(channel->fd, F_GETFL);
    if (flags < 0 || fcntl(channel->fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        return errno_status(Errc::device_error, Layer::cm, "make event channel non-blocking", errno);
    }
    return owned;
}

Result<CmId> create_cm_id(rdma_event_channel* channel, void* context)
{
    rdma_cm_id* id = nullptr;
    if (rdma_create_id(channel, &id, context, RDMA_PS_TCP) != 0) {
        return errno_status(Errc::device_error, Layer::cm, "rdma_create_id", errno);
    }
    return CmId(id);
}

std::optional<CmEvent> next_cm_event(rdma_event_channel* channel, Status& error)
{
    rdma_cm_event* event = nullptr;
    if (rdma_get_cm_event(channel, &event) != 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            error = errno_status(Errc::device_error, Layer::cm, "rdma_get_cm_event", errno);
        }
        return std::nullopt;
    }
    CmEvent copy;
    copy.type = event->event;
    copy.status = event->status;
    copy.id = event->id;
    copy.listen_id = event->listen_id;
    const void* data = nullptr;
    size_t bytes = 0;
    // Only connection events carry private data (UD events use param.ud).
    switch (event->event) {
    case RDMA_CM_EVENT_CONNECT_REQUEST:
    case RDMA_CM_EVENT_CONNECT_RESPONSE:
    case RDMA_CM_EVENT_ESTABLISHED:
    case RDMA_CM_EVENT_REJECTED:
    case RDMA_CM_EVENT_DISCONNECTED:
        data = event->param.conn.private_data;
        bytes = event->param.conn.private_data_len;
        copy.remote_qp_num = event->param.conn.qp_num;
        break;
    default: break;
    }
    if (data != nullptr && bytes > 0) {
        const auto* begin = static_cast<const std::byte*>(data);
        copy.private_data.assign(begin, begin + bytes);
    }
    rdma_ack_cm_event(event);
    return copy;
}

Result<sockaddr_in> ipv4_address(const std::string& host, uint16_t port)
{
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    if (inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) {
        return Status{Errc::invalid_argument, Layer::cm, "not an IPv4 address: '" + host + "'"};
    }
    return address;
}

}  // namespace rcpg::transport
