// Data path of VerbsTransport: posting writes and reads, polling completions. Nothing
// here allocates or makes a system call beyond the provider's doorbell — except
// arm_wait(), which a caller runs only when it is about to sleep.
#include "transport/verbs_transport.hpp"

#include <algorithm>

#include <arpa/inet.h>

#include <array>
#include <string>

namespace rcpg::transport {
namespace {

// Completions taken per ibv_poll_cq call, and calls per connection per poll(): bounds
// the work of one poll() while draining a busy connection in few calls.
constexpr size_t kCompletionBatch = 32;
constexpr int kMaxCqPollsPerConnection = 8;

Status not_connected(NodeId peer)
{
    return {Errc::not_connected, Layer::api, "no established connection with node " + std::to_string(peer)};
}

}  // namespace

Status VerbsTransport::post_writes(NodeId peer, std::span<const WriteRequest> writes)
{
    Connection* conn = connected(peer);
    if (conn == nullptr) {
        return not_connected(peer);
    }
    if (peer == config_.self &&
        std::any_of(writes.begin(), writes.end(), [](const WriteRequest& write) { return write.imm.has_value(); })) {
        return {Errc::invalid_argument, Layer::api, "a loopback write cannot carry an immediate"};
    }
    // What the peer may reach changed: it learns so ahead of this work (a write that
    // announces something, such as a request to be admitted, never overtakes it).
    if (Status granted = flush_grant(*conn); !granted) {
        return granted;
    }
    return conn->qp.post_writes(writes, *regions_);
}

Status VerbsTransport::post_read(NodeId peer, LocalSlice destination, RemoteAddr source, uint64_t wr_id)
{
    Connection* conn = connected(peer);
    if (conn == nullptr) {
        return not_connected(peer);
    }
    auto sge = regions_->sge(destination);
    if (!sge) {
        return sge.status();
    }
    if (Status granted = flush_grant(*conn); !granted) {
        return granted;
    }
    return conn->qp.post_read(*sge, source, wr_id);
}

void VerbsTransport::poll_completions(Connection& conn, std::vector<Event>& events)
{
    std::array<ibv_wc, kCompletionBatch> wcs;
    for (int round = 0; round < kMaxCqPollsPerConnection && !conn.doomed; ++round) {
        const int count = poll_cq(conn.cq.get(), wcs);
        if (count < 0) {
            fail(conn, EventKind::disconnected, DisconnectReason::qp_error,
                 {Errc::device_error, Layer::completion, "ibv_poll_cq failed"}, events);
            return;
        }
        for (int i = 0; i < count && !conn.doomed; ++i) {
            const ibv_wc& wc = wcs[static_cast<size_t>(i)];
            if (wc.status != IBV_WC_SUCCESS) {
                // The queue pair is in the error state: every outstanding request fails
                // with it, so the connection is gone (reported once; flushes follow).
                fail(conn, EventKind::disconnected, disconnect_reason(wc.status),
                     {Errc::not_connected, Layer::completion, describe(wc)}, events);
                return;
            }
            if ((wc.wr_id & kRecvWrIdBit) == 0) {
                if (auto event = conn.qp.retire(wc.wr_id)) {
                    event->peer = conn.peer;
                    events.push_back(*event);
                }
                continue;
            }
            const uint64_t slot = wc.wr_id & ~kRecvWrIdBit;
            std::byte* buffer = conn.control.data() + slot * kRecvSlotBytes;
            if (wc.opcode == IBV_WC_RECV_RDMA_WITH_IMM && conn.candidate) {
                fail(conn, EventKind::disconnected, DisconnectReason::protocol_error,
                     {Errc::malformed, Layer::handshake, "data before its proof of the cluster key"}, events);
                return;
            }
            if (wc.opcode == IBV_WC_RECV_RDMA_WITH_IMM) {
                Event event;
                event.kind = EventKind::imm_received;
                event.peer = conn.peer;
                event.imm = ntohl(wc.imm_data);
                events.push_back(event);
            } else if (wc.opcode == IBV_WC_RECV) {
                on_receive(conn, {buffer, std::min<size_t>(wc.byte_len, kRecvSlotBytes)}, events);
                if (conn.doomed) {
                    return;
                }
            }
            // Repost at once: with infinite RNR retry the peer's next WRITE_WITH_IMM waits for it.
            const ibv_sge sge{reinterpret_cast<uint64_t>(buffer), static_cast<uint32_t>(kRecvSlotBytes), conn.control_mr->lkey};
            if (Status status = conn.qp.post_recv(slot, sge); !status) {
                fail(conn, EventKind::disconnected, DisconnectReason::qp_error, status, events);
                return;
            }
        }
        if (static_cast<size_t>(count) < wcs.size()) {
            return;
        }
    }
    // Stopped at the bound after full batches: more may wait in the CQ, and they raise no
    // event (they were there before any arming), so arm_wait() must not let the caller sleep.
    completions_left_ = true;
}

bool VerbsTransport::arm_wait()
{
    // Already known to be pending: events raised outside poll (disconnect()) and
    // completions the last poll() left in a CQ.
    if (!pending_.empty() || completions_left_) {
        return false;
    }
    // One epoll_wait that does not wait: which channel has something unread?
    const uint32_t ready = wait_set_.ready_now();
    if ((ready & WaitSet::cm_events) != 0) {
        // poll() reads the cm channel only now and then once connected (see cm_check_due);
        // make the next one read it, or the caller would wake at once, find nothing, and
        // spin until the rate limit let poll() look.
        cm_read_requested_ = true;
        return false;
    }
    if ((ready & WaitSet::completions) != 0) {
        // Events of an earlier arming (the caller went on spinning instead of sleeping, or
        // woke and polled). Their completions are in the CQs or already reported: drop the
        // events so the descriptor quietens, and let the extra poll() find the completions.
        if (!drain_cq_events(completion_channel_.get())) {
            return false;  // the channel is broken: never sleep on it, keep polling
        }
    }
    // Arm every CQ. A completion that lands after this raises an event, so the caller's
    // sleep ends; one that landed before it is in the CQ, and the caller's one more poll()
    // takes it. We could not check the CQs are still empty here without taking (and then
    // having to report) what is in them: ibv_poll_cq is destructive, hence that extra poll.
    bool armed = true;
    for (auto& [peer, conn] : connections_) {
        if (conn->doomed || !conn->cq) {
            continue;
        }
        if (Status status = arm_cq(conn->cq.get()); !status) {
            // A CQ that cannot be armed could never wake the caller: the connection is
            // unusable as far as sleeping goes; report it like any device failure.
            fail(*conn, EventKind::disconnected, DisconnectReason::qp_error, status, pending_);
            armed = false;
        }
    }
    if (!armed) {
        sweep();
    }
    return armed;
}

}  // namespace rcpg::transport
