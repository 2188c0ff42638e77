#include "transport/queue_pair.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <string>
#include <utility>

namespace rcpg::transport {

Result<QueuePair> QueuePair::create(rdma_cm_id* id, ibv_pd* pd, ibv_cq* cq, const QueueConfig& config)
{
    ibv_qp_init_attr attr{};
    attr.send_cq = cq;
    attr.recv_cq = cq;
    attr.qp_type = IBV_QPT_RC;
    attr.sq_sig_all = 0;  // selective signalling
    attr.cap.max_send_wr = config.send_queue_depth;
    attr.cap.max_recv_wr = config.recv_queue_depth;
    attr.cap.max_send_sge = kMaxSourcesPerWrite;
    attr.cap.max_recv_sge = 1;
    attr.cap.max_inline_data = config.max_inline_bytes;
    if (rdma_create_qp(id, pd, &attr) != 0) {
        return errno_status(Errc::device_error, Layer::queue_pair, "rdma_create_qp", errno);
    }
    QueuePair qp;
    qp.id_ = id;
    qp.qp_ = id->qp;
    qp.depth_ = config.send_queue_depth;
    qp.signal_interval_ = config.signal_interval;
    // The provider may round the inline size up; never use more than was asked for, so
    // behaviour does not depend on the device.
    qp.max_inline_bytes_ = std::min(attr.cap.max_inline_data, config.max_inline_bytes);
    qp.slots_.resize(config.send_queue_depth);
    return qp;
}

Result<QueuePair> QueuePair::create_unmanaged(ibv_pd* pd, ibv_cq* cq, const QueueConfig& config)
{
    ibv_qp_init_attr attr{};
    attr.send_cq = cq;
    attr.recv_cq = cq;
    attr.qp_type = IBV_QPT_RC;
    attr.sq_sig_all = 0;
    attr.cap.max_send_wr = config.send_queue_depth;
    attr.cap.max_recv_wr = std::max<uint32_t>(config.recv_queue_depth, 1);
    attr.cap.max_send_sge = kMaxSourcesPerWrite;
    attr.cap.max_recv_sge = 1;
    attr.cap.max_inline_data = config.max_inline_bytes;
    ibv_qp* raw = ibv_create_qp(pd, &attr);
    if (raw == nullptr) {
        return errno_status(Errc::device_error, Layer::queue_pair, "ibv_create_qp", errno);
    }
    QueuePair qp;
    qp.qp_ = raw;
    qp.depth_ = config.send_queue_depth;
    qp.signal_interval_ = config.signal_interval;
    qp.max_inline_bytes_ = std::min(attr.cap.max_inline_data, config.max_inline_bytes);
    qp.slots_.resize(config.send_queue_depth);
    return qp;
}

Status QueuePair::connect_to(uint32_t dest_qp_num, uint8_t port, const ibv_gid& gid, uint8_t gid_index, ibv_mtu mtu)
{
    if (qp_ == nullptr || id_ != nullptr) {
        return {Errc::invalid_argument, Layer::queue_pair, "connect_to needs an unmanaged queue pair"};
    }
    ibv_qp_attr attr{};
    attr.qp_state = IBV_QPS_INIT;
    attr.pkey_index = 0;
    attr.port_num = port;
    attr.qp_access_flags = IBV_ACCESS_REMOTE_WRITE;
    if (int rc = ibv_modify_qp(qp_, &attr, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS); rc != 0) {
        return errno_status(Errc::device_error, Layer::queue_pair, "ibv_modify_qp to INIT", rc);
    }
    attr = ibv_qp_attr{};
    attr.qp_state = IBV_QPS_RTR;
    attr.path_mtu = mtu;
    attr.dest_qp_num = dest_qp_num;
    attr.rq_psn = 0;
    attr.max_dest_rd_atomic = 1;
    attr.min_rnr_timer = 12;
    attr.ah_attr.is_global = 1;
    attr.ah_attr.grh.dgid = gid;
    attr.ah_attr.grh.sgid_index = gid_index;
    attr.ah_attr.grh.hop_limit = 1;
    attr.ah_attr.port_num = port;
    if (int rc = ibv_modify_qp(qp_, &attr,
                               IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
                                   IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER);
        rc != 0) {
        return errno_status(Errc::device_error, Layer::queue_pair, "ibv_modify_qp to RTR", rc);
    }
    attr = ibv_qp_attr{};
    attr.qp_state = IBV_QPS_RTS;
    attr.timeout = 14;
    attr.retry_cnt = 7;
    attr.rnr_retry = 7;
    attr.sq_psn = 0;
    attr.max_rd_atomic = 1;
    if (int rc = ibv_modify_qp(qp_, &attr,
                               IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
                                   IBV_QP_MAX_QP_RD_ATOMIC);
        rc != 0) {
        return errno_status(Errc::device_error, Layer::queue_pair, "ibv_modify_qp to RTS", rc);
    }
    return {};
}

void QueuePair::destroy()
{
    if (id_ != nullptr) {
        rdma_destroy_qp(id_);
    } else if (qp_ != nullptr) {
        ibv_destroy_qp(qp_);
    }
    id_ = nullptr;
    qp_ = nullptr;
}

QueuePair::QueuePair(QueuePair&& other) noexcept { *this = std::move(other); }

QueuePair& QueuePair::operator=(QueuePair&& other) noexcept
{
    if (this != &other) {
        destroy();
        id_ = std::exchange(other.id_, nullptr);
        qp_ = std::exchange(other.qp_, nullptr);
        depth_ = other.depth_;
        signal_interval_ = other.signal_interval_;
        max_inline_bytes_ = other.max_inline_bytes_;
        posted_ = other.posted_;
        retired_ = other.retired_;
        slots_ = std::move(other.slots_);
    }
    return *this;
}

QueuePair::~QueuePair() { destroy(); }

Status QueuePair::post(ibv_send_wr* head, uint32_t count)
{
    ibv_send_wr* bad = nullptr;
    if (int rc = ibv_post_send(qp_, head, &bad); rc != 0) {
        // Requests before `bad` were posted and will complete (or flush).
        uint32_t accepted = 0;
        for (ibv_send_wr* wr = head; wr != nullptr && wr != bad; wr = wr->next) {
            ++accepted;
        }
        posted_ += accepted;
        return errno_status(Errc::device_error, Layer::queue_pair, "ibv_post_send", rc);
    }
    posted_ += count;
    return {};
}

Status QueuePair::post_writes(std::span<const WriteRequest> writes, const RegionTable& regions)
{
    if (qp_ == nullptr) {
        return {Errc::not_connected, Layer::queue_pair, "no queue pair"};
    }
    if (writes.size() > free_slots()) {
        return {Errc::try_again, Layer::queue_pair, "send queue full"};
    }
    // Validate everything before posting anything: all or none.
    for (const WriteRequest& write : writes) {
        if (!write.inline_bytes.empty() && !write.sources.empty()) {
            return {Errc::invalid_argument, Layer::queue_pair, "write has both inline bytes and sources"};
        }
        if (write.inline_bytes.size() > max_inline_bytes_) {
            return {Errc::invalid_argument, Layer::queue_pair,
                    "inline write of " + std::to_string(write.inline_bytes.size()) + " bytes exceeds " +
                        std::to_string(max_inline_bytes_)};
        }
        if (write.sources.size() > kMaxSourcesPerWrite) {
            return {Errc::invalid_argument, Layer::queue_pair, "too many sources in one write"};
        }
        for (const LocalSlice& slice : write.sources) {
            if (auto sge = regions.sge(slice); !sge) {
                return sge.status();
            }
        }
    }

    std::array<ibv_send_wr, kMaxPostBatch> wrs;
    std::array<ibv_sge, kMaxPostBatch * kMaxSourcesPerWrite> sges;
    size_t done = 0;
    while (done < writes.size()) {
        const auto count = static_cast<uint32_t>(std::min(kMaxPostBatch, writes.size() - done));
        size_t used_sges = 0;
        for (uint32_t i = 0; i < count; ++i) {
            const WriteRequest& write = writes[done + i];
            ibv_send_wr& wr = wrs[i];
            wr = ibv_send_wr{};
            wr.sg_list = &sges[used_sges];
            uint64_t total_bytes = 0;
            if (!write.inline_bytes.empty()) {
                sges[used_sges++] = ibv_sge{reinterpret_cast<uint64_t>(write.inline_bytes.data()),
                                            static_cast<uint32_t>(write.inline_bytes.size()), 0};
                wr.num_sge = 1;
                total_bytes = write.inline_bytes.size();
            } else {
                for (const LocalSlice& slice : write.sources) {
                    sges[used_sges++] = regions.sge(slice).value();
                    total_bytes += slice.bytes;
                }
                wr.num_sge = static_cast<int>(write.sources.size());
            }
            // Small writes go inline whatever their source: the CPU copies them into the
            // work queue entry, which saves the device a DMA read (latency).
            if (total_bytes <= max_inline_bytes_) {
                wr.send_flags |= IBV_SEND_INLINE;
            }
            const uint64_t seq = posted_ + i;
            const bool signal = write.signaled || must_signal(seq);
            if (signal) {
                wr.send_flags |= IBV_SEND_SIGNALED;
            }
            slots_[seq % depth_] = Slot{write.wr_id, write.signaled ? SlotKind::write : SlotKind::unreported};
            wr.wr_id = seq;
            if (write.imm) {
                wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
                wr.imm_data = htonl(*write.imm);
            } else {
                wr.opcode = IBV_WR_RDMA_WRITE;
            }
            wr.wr.rdma.remote_addr = write.destination.addr;
            wr.wr.rdma.rkey = write.destination.rkey;
            wr.next = (i + 1 < count) ? &wrs[i + 1] : nullptr;
        }
        if (Status status = post(wrs.data(), count); !status) {
            return status;
        }
        done += count;
    }
    return {};
}

Status QueuePair::post_read(const ibv_sge& destination, RemoteAddr source, uint64_t wr_id)
{
    if (free_slots() == 0) {
        return {Errc::try_again, Layer::queue_pair, "send queue full"};
    }
    ibv_sge sge = destination;
    ibv_send_wr wr{};
    wr.wr_id = posted_;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.opcode = IBV_WR_RDMA_READ;
    wr.send_flags = IBV_SEND_SIGNALED;
    wr.wr.rdma.remote_addr = source.addr;
    wr.wr.rdma.rkey = source.rkey;
    slots_[posted_ % depth_] = Slot{wr_id, SlotKind::read};
    return post(&wr, 1);
}

Status QueuePair::post_bind(ibv_mw* window, ibv_mr* mr, uint64_t addr, uint64_t bytes, unsigned int access, uint32_t rkey)
{
    if (free_slots() == 0) {
        return {Errc::try_again, Layer::queue_pair, "send queue full"};
    }
    ibv_send_wr wr{};
    wr.wr_id = posted_;
    wr.opcode = IBV_WR_BIND_MW;
    wr.send_flags = IBV_SEND_SIGNALED;
    wr.bind_mw.mw = window;
    wr.bind_mw.rkey = rkey;
    wr.bind_mw.bind_info.mr = mr;
    wr.bind_mw.bind_info.addr = addr;
    wr.bind_mw.bind_info.length = bytes;
    wr.bind_mw.bind_info.mw_access_flags = access;
    slots_[posted_ % depth_] = Slot{0, SlotKind::unreported};
    return post(&wr, 1);
}

Status QueuePair::post_internal_send(const ibv_sge& source)
{
    if (free_slots() == 0) {
        return {Errc::try_again, Layer::queue_pair, "send queue full"};
    }
    ibv_sge sge = source;
    ibv_send_wr wr{};
    wr.wr_id = posted_;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.opcode = IBV_WR_SEND;
    wr.send_flags = IBV_SEND_SIGNALED | (sge.length <= max_inline_bytes_ ? IBV_SEND_INLINE : 0);
    slots_[posted_ % depth_] = Slot{0, SlotKind::unreported};
    return post(&wr, 1);
}

Status QueuePair::post_recv(uint64_t slot, const ibv_sge& buffer)
{
    ibv_sge sge = buffer;
    ibv_recv_wr wr{};
    wr.wr_id = kRecvWrIdBit | slot;
    wr.sg_list = &sge;
    wr.num_sge = 1;
    ibv_recv_wr* bad = nullptr;
    if (int rc = ibv_post_recv(qp_, &wr, &bad); rc != 0) {
        return errno_status(Errc::device_error, Layer::queue_pair, "ibv_post_recv", rc);
    }
    return {};
}

std::optional<Event> QueuePair::retire(uint64_t wr_id)
{
    if (wr_id < retired_ || wr_id >= posted_) {
        return std::nullopt;  // not ours or already retired: never trust a stale id
    }
    retired_ = wr_id + 1;
    const Slot& slot = slots_[wr_id % depth_];
    switch (slot.kind) {
    case SlotKind::unreported: return std::nullopt;
    case SlotKind::write: {
        Event event;
        event.kind = EventKind::write_completed;
        event.wr_id = slot.user_wr_id;
        return event;
    }
    case SlotKind::read: {
        Event event;
        event.kind = EventKind::read_completed;
        event.wr_id = slot.user_wr_id;
        return event;
    }
    }
    return std::nullopt;
}

}  // namespace rcpg::transport
