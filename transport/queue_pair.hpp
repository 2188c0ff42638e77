// An RC queue pair created through rdma_cm, and the send-side bookkeeping of the data
// path: work-request ids, selective signalling and send-queue occupancy.
//
// Selective signalling: a send is signalled when the caller asks, when it is a read, or
// when it is the last of every `signal_interval` sends. A signalled completion retires it
// and every earlier send (RC completes sends in order), so at most signal_interval - 1
// unsignalled sends wait behind the newest signalled one, and a full send queue always
// holds signalled sends whose completions free it.
#pragma once

#include "transport/memory_region.hpp"
#include "transport/status.hpp"
#include "transport/transport.hpp"

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace rcpg::transport {

// Receive work requests carry this bit in wr_id; a failed completion has no valid opcode,
// so the id is what tells a send from a receive.
inline constexpr uint64_t kRecvWrIdBit = 1ull << 63;
// Post lists are built on the stack in chunks of at most this many requests.
inline constexpr size_t kMaxPostBatch = 32;

class QueuePair {
public:
    QueuePair() = default;
    static Result<QueuePair> create(rdma_cm_id* id, ibv_pd* pd, ibv_cq* cq, const QueueConfig& config);
    // A queue pair without rdma_cm, for a loopback pair (connect_to): the device carries
    // out writes posted on one into this process's own memory.
    static Result<QueuePair> create_unmanaged(ibv_pd* pd, ibv_cq* cq, const QueueConfig& config);
    // Takes an unmanaged queue pair through INIT, RTR and RTS to `dest_qp_num` behind
    // `gid` (sgid_index `gid_index`) on `port`.
    Status connect_to(uint32_t dest_qp_num, uint8_t port, const ibv_gid& gid, uint8_t gid_index, ibv_mtu mtu);
    QueuePair(QueuePair&& other) noexcept;
    QueuePair& operator=(QueuePair&& other) noexcept;
    ~QueuePair();  // before the CQ and the cm id are destroyed

    ibv_qp* get() const { return qp_; }
    uint32_t max_inline_bytes() const { return max_inline_bytes_; }

    // The data path. All requests are posted in one list or none is (try_again when the
    // send queue lacks room for all of them).
    Status post_writes(std::span<const WriteRequest> writes, const RegionTable& regions);
    Status post_read(const ibv_sge& destination, RemoteAddr source, uint64_t wr_id);
    // A signalled SEND of registered bytes (the hello), not reported to the caller.
    Status post_internal_send(const ibv_sge& source);
    // Binds a type-2 memory window to this queue pair over [addr, addr + bytes) of `mr`
    // with `access`, under `rkey` (the window's next key); in order with what follows.
    Status post_bind(ibv_mw* window, ibv_mr* mr, uint64_t addr, uint64_t bytes, unsigned int access, uint32_t rkey);
    Status post_recv(uint64_t slot, const ibv_sge& buffer);

    // The id the next post gets, and whether the send with `wr_id` is known complete.
    uint64_t next_wr_id() const { return posted_; }
    bool completed(uint64_t wr_id) const { return wr_id < retired_; }

    // A send completed successfully: retires it and everything before it. Returns the
    // event to report, if the caller asked for one.
    std::optional<Event> retire(uint64_t wr_id);

private:
    enum class SlotKind : uint8_t { unreported, write, read };
    struct Slot {
        uint64_t user_wr_id = 0;
        SlotKind kind = SlotKind::unreported;
    };

    uint32_t free_slots() const { return depth_ - static_cast<uint32_t>(posted_ - retired_); }
    bool must_signal(uint64_t seq) const { return (seq + 1) % signal_interval_ == 0; }
    Status post(ibv_send_wr* head, uint32_t count);
    void destroy();

    rdma_cm_id* id_ = nullptr;  // null for an unmanaged queue pair
    ibv_qp* qp_ = nullptr;
    uint32_t depth_ = 0;
    uint32_t signal_interval_ = 1;
    uint32_t max_inline_bytes_ = 0;
    uint64_t posted_ = 0;   // sends ever posted; the next one's wr_id
    uint64_t retired_ = 0;  // sends known complete
    std::vector<Slot> slots_;  // indexed by wr_id % depth_
};

}  // namespace rcpg::transport
