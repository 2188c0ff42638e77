#include "tests/security/rogue_peer.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace rcpg::security_testing {

using transport::Errc;
using transport::Layer;
using transport::Status;

namespace {

constexpr uint64_t kReceiveBit = 1ull << 63;
constexpr uint64_t kWriteWrId = 1;
constexpr uint64_t kSendWrId = 2;

Status failed(const std::string& what, int error) { return transport::errno_status(Errc::device_error, Layer::cm, what, error); }

}  // namespace

RogueConnection::~RogueConnection()
{
    if (id && id->qp != nullptr) {
        rdma_destroy_qp(id.get());
    }
    if (cq != nullptr) {
        ibv_destroy_cq(cq);
    }
    if (mr != nullptr) {
        ibv_dereg_mr(mr);
    }
    if (pd != nullptr) {
        ibv_dealloc_pd(pd);
    }
}

transport::Result<std::unique_ptr<RoguePeer>> RoguePeer::create()
{
    auto channel = transport::create_event_channel();
    if (!channel) {
        return channel.status();
    }
    auto peer = std::make_unique<RoguePeer>();
    peer->channel_ = std::move(channel).value();
    return peer;
}

Status RoguePeer::listen(const std::string& host, uint16_t port)
{
    auto id = transport::create_cm_id(channel_.get(), nullptr);
    if (!id) {
        return id.status();
    }
    listen_id_ = std::move(id).value();
    auto address = transport::ipv4_address(host, port);
    if (!address) {
        return address.status();
    }
    if (rdma_bind_addr(listen_id_.get(), reinterpret_cast<sockaddr*>(&address.value())) != 0) {
        return failed("rdma_bind_addr", errno);
    }
    if (rdma_listen(listen_id_.get(), 16) != 0) {
        return failed("rdma_listen", errno);
    }
    return {};
}

transport::Result<RogueConnection*> RoguePeer::connect(const std::string& host, uint16_t port,
                                                       std::span<const std::byte> private_data)
{
    auto connection = std::make_unique<RogueConnection>();
    auto id = transport::create_cm_id(channel_.get(), connection.get());
    if (!id) {
        return id.status();
    }
    connection->id = std::move(id).value();
    connection->pending_private_data.assign(private_data.begin(), private_data.end());
    auto source = transport::ipv4_address(host, 0);
    auto target = transport::ipv4_address(host, port);
    if (!source || !target) {
        return Status{Errc::invalid_argument, Layer::cm, "bad address " + host};
    }
    if (rdma_resolve_addr(connection->id.get(), reinterpret_cast<sockaddr*>(&source.value()),
                          reinterpret_cast<sockaddr*>(&target.value()), 5000) != 0) {
        return failed("rdma_resolve_addr", errno);
    }
    connections_.push_back(std::move(connection));
    return connections_.back().get();
}

Status RoguePeer::setup_queues(RogueConnection& connection)
{
    ibv_context* context = connection.id->verbs;
    connection.pd = ibv_alloc_pd(context);
    connection.cq = connection.pd != nullptr ? ibv_create_cq(context, 64, nullptr, nullptr, 0) : nullptr;
    connection.buffers.assign((kReceiveSlots + 1) * kSlotBytes, std::byte{0});
    connection.mr = connection.cq != nullptr ? ibv_reg_mr(connection.pd, connection.buffers.data(), connection.buffers.size(),
                                                          IBV_ACCESS_LOCAL_WRITE)
                                             : nullptr;
    if (connection.mr == nullptr) {
        return failed("pd, cq or mr", errno);
    }
    ibv_qp_init_attr attr{};
    attr.send_cq = connection.cq;
    attr.recv_cq = connection.cq;
    attr.qp_type = IBV_QPT_RC;
    attr.cap.max_send_wr = 16;
    attr.cap.max_recv_wr = kReceiveSlots;
    attr.cap.max_send_sge = 1;
    attr.cap.max_recv_sge = 1;
    if (rdma_create_qp(connection.id.get(), connection.pd, &attr) != 0) {
        return failed("rdma_create_qp", errno);
    }
    connection.local_qpn = connection.id->qp->qp_num;
    for (int slot = 0; slot < kReceiveSlots; ++slot) {
        ibv_sge sge{reinterpret_cast<uint64_t>(connection.buffers.data() + slot * kSlotBytes), kSlotBytes, connection.mr->lkey};
        ibv_recv_wr wr{};
        wr.wr_id = kReceiveBit | static_cast<uint64_t>(slot);
        wr.sg_list = &sge;
        wr.num_sge = 1;
        ibv_recv_wr* bad = nullptr;
        if (int rc = ibv_post_recv(connection.id->qp, &wr, &bad); rc != 0) {
            return failed("ibv_post_recv", rc);
        }
    }
    return {};
}

namespace {

rdma_conn_param param_with(std::span<const std::byte> private_data)
{
    rdma_conn_param param{};
    param.private_data = private_data.data();
    param.private_data_len = static_cast<uint8_t>(private_data.size());
    param.responder_resources = 1;
    param.initiator_depth = 1;
    param.retry_count = 7;
    param.rnr_retry_count = 7;
    return param;
}

}  // namespace

Status RoguePeer::accept(RogueConnection& connection, std::span<const std::byte> private_data)
{
    connection.decided = true;
    if (Status status = setup_queues(connection); !status) {
        return status;
    }
    rdma_conn_param param = param_with(private_data);
    if (rdma_accept(connection.id.get(), &param) != 0) {
        return failed("rdma_accept", errno);
    }
    return {};
}

Status RoguePeer::reject(RogueConnection& connection)
{
    connection.decided = true;
    if (rdma_reject(connection.id.get(), nullptr, 0) != 0) {
        return failed("rdma_reject", errno);
    }
    connection.disconnected = true;
    return {};
}

Status RoguePeer::post(RogueConnection& connection, ibv_wr_opcode opcode, std::span<const std::byte> bytes, uint64_t addr,
                       uint32_t rkey)
{
    if (connection.id->qp == nullptr || bytes.size() > kSlotBytes) {
        return {Errc::invalid_argument, Layer::api, "no queue pair, or too many bytes"};
    }
    std::byte* slot = connection.buffers.data() + kReceiveSlots * kSlotBytes;
    std::memcpy(slot, bytes.data(), bytes.size());
    ibv_sge sge{reinterpret_cast<uint64_t>(slot), static_cast<uint32_t>(bytes.size()), connection.mr->lkey};
    ibv_send_wr wr{};
    wr.wr_id = opcode == IBV_WR_RDMA_WRITE ? kWriteWrId : kSendWrId;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.opcode = opcode;
    wr.send_flags = IBV_SEND_SIGNALED;
    wr.wr.rdma.remote_addr = addr;
    wr.wr.rdma.rkey = rkey;
    ibv_send_wr* bad = nullptr;
    if (int rc = ibv_post_send(connection.id->qp, &wr, &bad); rc != 0) {
        return failed("ibv_post_send", rc);
    }
    return {};
}

Status RoguePeer::send(RogueConnection& connection, std::span<const std::byte> bytes)
{
    return post(connection, IBV_WR_SEND, bytes, 0, 0);
}

Status RoguePeer::write(RogueConnection& connection, uint64_t addr, uint32_t rkey, std::span<const std::byte> bytes)
{
    return post(connection, IBV_WR_RDMA_WRITE, bytes, addr, rkey);
}

RogueConnection* RoguePeer::first_incoming_undecided()
{
    for (auto& connection : connections_) {
        if (connection->incoming && !connection->decided) {
            return connection.get();
        }
    }
    return nullptr;
}

void RoguePeer::handle(const transport::CmEvent& event)
{
    if (event.type == RDMA_CM_EVENT_CONNECT_REQUEST) {
        auto connection = std::make_unique<RogueConnection>();
        connection->incoming = true;
        connection->id = transport::CmId(event.id);
        connection->id->context = connection.get();
        connection->peer_private_data = event.private_data;
        connection->remote_qpn = event.remote_qp_num;
        connections_.push_back(std::move(connection));
        return;
    }
    auto* connection = event.id != nullptr ? static_cast<RogueConnection*>(event.id->context) : nullptr;
    if (connection == nullptr) {
        return;
    }
    switch (event.type) {
    case RDMA_CM_EVENT_ADDR_RESOLVED:
        if (rdma_resolve_route(connection->id.get(), 5000) != 0) {
            connection->disconnected = true;
        }
        return;
    case RDMA_CM_EVENT_ROUTE_RESOLVED: {
        if (!setup_queues(*connection)) {
            connection->disconnected = true;
            return;
        }
        rdma_conn_param param = param_with(connection->pending_private_data);
        if (rdma_connect(connection->id.get(), &param) != 0) {
            connection->disconnected = true;
        }
        return;
    }
    case RDMA_CM_EVENT_ESTABLISHED:
        connection->established = true;
        if (!connection->incoming) {
            connection->peer_private_data = event.private_data;
            connection->remote_qpn = event.remote_qp_num;
        }
        return;
    case RDMA_CM_EVENT_REJECTED:
        connection->rejected = true;
        connection->disconnected = true;
        connection->reject_status = event.status;
        connection->peer_private_data = event.private_data;
        return;
    case RDMA_CM_EVENT_DISCONNECTED:
        rdma_disconnect(connection->id.get());
        connection->disconnected = true;
        return;
    case RDMA_CM_EVENT_ADDR_ERROR:
    case RDMA_CM_EVENT_ROUTE_ERROR:
    case RDMA_CM_EVENT_CONNECT_ERROR:
    case RDMA_CM_EVENT_UNREACHABLE:
        connection->disconnected = true;
        return;
    default: return;
    }
}

void RoguePeer::poll()
{
    for (;;) {
        Status error;
        auto event = transport::next_cm_event(channel_.get(), error);
        if (!event) {
            break;
        }
        handle(*event);
    }
    for (auto& connection : connections_) {
        if (connection->cq == nullptr) {
            continue;
        }
        ibv_wc wcs[16];
        const int count = ibv_poll_cq(connection->cq, 16, wcs);
        for (int i = 0; i < count; ++i) {
            const ibv_wc& wc = wcs[i];
            if ((wc.wr_id & kReceiveBit) != 0) {
                if (wc.status != IBV_WC_SUCCESS) {
                    continue;  // flushed when the queue pair went down: nothing was received
                }
                const uint64_t slot = wc.wr_id & ~kReceiveBit;
                const std::byte* bytes = connection->buffers.data() + slot * kSlotBytes;
                connection->received.emplace_back(bytes, bytes + std::min<size_t>(wc.byte_len, kSlotBytes));
                ibv_sge sge{reinterpret_cast<uint64_t>(bytes), kSlotBytes, connection->mr->lkey};
                ibv_recv_wr wr{};
                wr.wr_id = wc.wr_id;
                wr.sg_list = &sge;
                wr.num_sge = 1;
                ibv_recv_wr* bad = nullptr;
                (void)ibv_post_recv(connection->id->qp, &wr, &bad);
                continue;
            }
            if (wc.wr_id == kWriteWrId) {
                (wc.status == IBV_WC_SUCCESS ? writes_completed_ : writes_failed_) += 1;
            }
            if (wc.status != IBV_WC_SUCCESS) {
                connection->disconnected = true;
            }
        }
    }
}

}  // namespace rcpg::security_testing
