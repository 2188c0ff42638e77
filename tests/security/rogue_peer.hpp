// A host on the RDMA fabric that does not hold the cluster key: raw rdma_cm and verbs,
// nothing of rcpg's transport. It captures what genuine nodes send it, replays and relays
// it, and records everything that reaches its queue pairs, so that a test can show what an
// attacker gains. Steppable like a Transport: poll() handles what is ready and returns.
#pragma once

#include "transport/connection_manager.hpp"

#include <infiniband/verbs.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace rcpg::security_testing {

struct RogueConnection {
    bool incoming = false;      // from our listener (else: we connected)
    bool decided = false;       // incoming: accepted or rejected
    bool established = false;
    bool rejected = false;      // we were rejected (outgoing)
    bool disconnected = false;  // the peer (or its CM) ended it, or set-up failed
    int reject_status = 0;
    // The other side's private data: its connect request (incoming) or its accept or
    // reject (outgoing), and its queue pair number as its CM reported it.
    std::vector<std::byte> peer_private_data;
    uint32_t remote_qpn = 0;
    uint32_t local_qpn = 0;
    // Every SEND that reached our queue pair: what a node told us.
    std::vector<std::vector<std::byte>> received;

    ~RogueConnection();
    transport::CmId id;
    ibv_pd* pd = nullptr;
    ibv_cq* cq = nullptr;
    ibv_mr* mr = nullptr;
    std::vector<std::byte> buffers;  // receive slots, then one send slot
    std::vector<std::byte> pending_private_data;  // outgoing: sent at ROUTE_RESOLVED
};

class RoguePeer {
public:
    static transport::Result<std::unique_ptr<RoguePeer>> create();

    transport::Status listen(const std::string& host, uint16_t port);
    // Starts connecting to host:port with `private_data` in the connect request (our own
    // queue pair behind it); poll() moves it on.
    transport::Result<RogueConnection*> connect(const std::string& host, uint16_t port,
                                                std::span<const std::byte> private_data);
    // Answers an incoming request.
    transport::Status accept(RogueConnection& connection, std::span<const std::byte> private_data);
    transport::Status reject(RogueConnection& connection);
    // SENDs bytes on an established connection.
    transport::Status send(RogueConnection& connection, std::span<const std::byte> bytes);
    // RDMA WRITE of `bytes` to (addr, rkey) of the peer; the result arrives as a completion
    // (write_failed() tells a refused one).
    transport::Status write(RogueConnection& connection, uint64_t addr, uint32_t rkey, std::span<const std::byte> bytes);

    void poll();
    const std::vector<std::unique_ptr<RogueConnection>>& connections() const { return connections_; }
    RogueConnection* first_incoming_undecided();
    size_t writes_completed() const { return writes_completed_; }
    size_t writes_failed() const { return writes_failed_; }

private:
    transport::Status setup_queues(RogueConnection& connection);
    transport::Status post(RogueConnection& connection, ibv_wr_opcode opcode, std::span<const std::byte> bytes,
                           uint64_t addr, uint32_t rkey);
    void handle(const transport::CmEvent& event);

    static constexpr size_t kSlotBytes = 512;
    static constexpr int kReceiveSlots = 16;

    transport::EventChannel channel_;
    transport::CmId listen_id_;
    std::vector<std::unique_ptr<RogueConnection>> connections_;
    size_t writes_completed_ = 0;
    size_t writes_failed_ = 0;
};

}  // namespace rcpg::security_testing
