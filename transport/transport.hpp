// The transport interface: what ordering/ and the daemon need from the network, and
// nothing more. Two implementations: VerbsTransport (RC queue pairs through librdmacm,
// one-sided RDMA writes) and MemoryTransport (in-process, deterministic from a seed, with
// injected delays and disconnects) for the protocol's tests.
//
// The interface is steppable: no threads run inside. poll(now_ms) does the work that is
// ready (connection set-up, completions, timeouts) and appends what happened as events.
// Nothing blocks; a full queue is Errc::try_again. One thread drives a transport; the one
// call that may come from another is prepare_region.
//
// Buffer ownership (see transport/NOTES.md): memory named by a LocalSlice in a posted
// write belongs to the transport until the write completes (a signalled completion of it
// or of any later write to the same peer) or the peer's `disconnected` event; inline bytes
// are copied during the post call and belong to the caller again when it returns.
#pragma once

#include "transport/status.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace rcpg::transport {

using NodeId = uint32_t;

struct NodeAddress {
    NodeId node = 0;
    std::string host;  // IPv4 address in dotted form (rdma_cm needs a real netdev, not lo)
    uint16_t port = 0;
};

// Queue sizing. The relations between these are checked by static_asserts next to the
// code that relies on them (queue_pair.hpp, ring_writer.hpp).
struct QueueConfig {
    uint32_t send_queue_depth = 256;  // work requests in flight per peer
    uint32_t recv_queue_depth = 64;   // receives posted per peer (hello, WRITE_WITH_IMM)
    uint32_t signal_interval = 32;    // at least one signalled send every this many
    uint32_t max_inline_bytes = 128;  // writes this small are copied into the WQE
};

struct TransportConfig {
    NodeId self = 0;
    std::vector<NodeAddress> nodes;          // every node of the cluster, self included
    std::vector<std::byte> cluster_key;      // the key file's bytes, at least kMinClusterKeyBytes
    std::string device_name;                 // optional: fail unless rdma_cm picks this device
    uint32_t connect_timeout_ms = 5000;      // address + route resolution + handshake
    // Transport retries before a silent peer is declared gone: about
    // 4.096 us * 2^ack_timeout_exponent * (retry_count + 1).
    uint8_t ack_timeout_exponent = 14;
    uint8_t retry_count = 7;
    QueueConfig queues;
};

inline constexpr size_t kMinClusterKeyBytes = 32;

struct RegionId {
    uint32_t value = 0;
    bool operator==(const RegionId&) const = default;
};

enum class RegionAccess : uint8_t {
    local,              // source of writes, destination of reads only
    remote_write,       // peers may RDMA WRITE into it (rings, credit words)
    remote_read,        // peers may RDMA READ it (repair, heartbeats)
    remote_read_write,
};

// What both accesses allow (an exposure gets at most its region's access).
constexpr RegionAccess common_access(RegionAccess a, RegionAccess b)
{
    const auto bits = [](RegionAccess access) {
        return (access == RegionAccess::remote_write || access == RegionAccess::remote_read_write ? 1 : 0) |
               (access == RegionAccess::remote_read || access == RegionAccess::remote_read_write ? 2 : 0);
    };
    constexpr RegionAccess by_bits[] = {RegionAccess::local, RegionAccess::remote_write, RegionAccess::remote_read,
                                        RegionAccess::remote_read_write};
    return by_bits[bits(a) & bits(b)];
}

// A piece of registered local memory.
struct LocalSlice {
    RegionId region;
    uint64_t offset = 0;
    uint32_t bytes = 0;
};

// An address in a peer's registered memory, as the peer described it.
struct RemoteAddr {
    uint64_t addr = 0;
    uint32_t rkey = 0;
};

// A region a peer exposed to us (its ring, its credit word), learned at connection set-up.
struct RemoteRegion {
    uint64_t addr = 0;
    uint32_t rkey = 0;
    uint64_t bytes = 0;
    RemoteAddr at(uint64_t offset) const { return {addr + offset, rkey}; }
};

inline constexpr uint32_t kMaxSourcesPerWrite = 4;  // gather entries per write request

struct WriteRequest {
    // Either a gather list of registered memory (zero copy) or inline bytes (copied at
    // post time; at most max_inline_bytes()). Not both.
    std::span<const LocalSlice> sources;
    std::span<const std::byte> inline_bytes;
    RemoteAddr destination;
    uint64_t wr_id = 0;
    bool signaled = false;           // report write_completed for this request
    std::optional<uint32_t> imm;     // WRITE_WITH_IMM: the peer gets imm_received
};

enum class DisconnectReason : uint8_t {
    local_close,     // disconnect() was called here
    remote_close,    // the peer closed (rdma_cm DISCONNECTED; its process ended)
    retry_exceeded,  // the peer stopped acknowledging (transport retries exhausted)
    qp_error,        // any other work completion error; the queue pair is dead
    unreachable,     // address, route or connect failed or timed out
    refused,         // the other side refused the connection (see Event::detail)
    protocol_error,  // the peer sent a malformed hello
};

const char* to_string(DisconnectReason reason);

enum class EventKind : uint8_t {
    connected,        // the peer is authenticated and its exposed regions are known
    regions_changed,  // the peer granted or withdrew regions on the connection that is up
    disconnected,     // the connection is gone (reason, detail); outstanding work failed
    refused,          // a connection attempt (ours or the peer's) was refused (detail)
    write_completed,  // a signalled write finished (wr_id)
    read_completed,   // a read finished; its destination holds the data (wr_id)
    imm_received,     // the peer's WRITE_WITH_IMM landed (imm); its data is in place
    // Someone's attempt to connect here was refused before it proved the cluster key
    // (bad or replayed request, wrong proof, no proof in time), or was closed as a
    // duplicate. Its peer is always 0: the node id it claimed is no one's word (detail).
    incoming_refused,
};

const char* to_string(EventKind kind);

struct Event {
    EventKind kind = EventKind::connected;
    NodeId peer = 0;
    uint64_t wr_id = 0;
    uint32_t imm = 0;
    DisconnectReason reason = DisconnectReason::local_close;
    Status detail;  // why, for disconnected and refused
};

// A range registered by prepare_region and not yet named by adopt_region.
class PreparedRegion {
public:
    virtual ~PreparedRegion() = default;
};

class Transport {
public:
    virtual ~Transport() = default;

    // Starts accepting connections on this node's configured address and port.
    virtual Status listen() = 0;
    // Starts connecting to `peer`; `connected` or `disconnected`/`refused` follows.
    // connect(self()) sets up a loopback connection: writes posted to self() are carried
    // out by the device from this node's registered memory into the regions it exposed to
    // self() (no CPU copy), ordered and completed like writes to a peer; they cannot carry
    // an immediate.
    virtual Status connect(NodeId peer) = 0;
    // Closes the connection; `disconnected(local_close)` follows.
    virtual void disconnect(NodeId peer) = 0;
    virtual bool is_connected(NodeId peer) const = 0;

    // Registers [addr, addr + bytes) for RDMA; memfd MAP_SHARED mappings work.
    virtual Result<RegionId> register_region(void* addr, size_t bytes, RegionAccess access) = 0;
    // register_region in two steps, so that the slow one, pinning the pages (hundreds of
    // ms for tens of MiB under emulation), can run off the thread that drives the
    // transport: prepare_region may be called from any thread; adopt_region, on the
    // transport's thread, names the result. Dropping a prepared region deregisters it, so
    // it must not outlive the transport. The default prepares nothing and registers the
    // range in adopt_region.
    virtual Result<std::unique_ptr<PreparedRegion>> prepare_region(void* addr, size_t bytes, RegionAccess access);
    virtual Result<RegionId> adopt_region(std::unique_ptr<PreparedRegion> prepared);
    // The reverse of adopt_region: takes the region out of use (as deregister_region
    // does) and leaves its unpinning, the slow part, to whoever drops the result, on any
    // thread. The default deregisters at once and returns nothing to drop.
    virtual Result<std::unique_ptr<PreparedRegion>> release_region(RegionId region);
    virtual Status deregister_region(RegionId region) = 0;
    // The registered bytes of a local region (for building inline records).
    virtual std::span<std::byte> region_bytes(RegionId region) const = 0;

    // Offers [offset, offset + bytes) of `region` to `peer` under `tag`, with `access` (at
    // most the region's): that range only, on each connection with `peer` only, until
    // withdrawn (transport/NOTES.md "Exposures and windows"). Sent with the hello when a
    // connection is set up; on a connection that is up, granted at once and announced to
    // the peer by a grant message behind everything posted to it so far. Exposing a tag
    // again replaces what it named.
    virtual Status expose(NodeId peer, uint32_t tag, RegionId region, uint64_t offset, uint64_t bytes,
                          RegionAccess access) = 0;
    // Takes back what `tag` offered `peer`: on a connection that is up the device refuses
    // the peer's next access through it (an access in flight may still land), and the peer
    // learns it by a grant message; no later connection gets it. Nothing exposed: no-op.
    virtual void withdraw(NodeId peer, uint32_t tag) = 0;
    // What `peer` exposed to us under `tag`, once connected.
    virtual std::optional<RemoteRegion> remote_region(NodeId peer, uint32_t tag) const = 0;

    // Posts the writes as one batch (one doorbell), in order; all or none are posted.
    virtual Status post_writes(NodeId peer, std::span<const WriteRequest> writes) = 0;
    Status post_write(NodeId peer, const WriteRequest& write) { return post_writes(peer, {&write, 1}); }
    // Reads remote bytes into a registered local slice; always reports read_completed.
    virtual Status post_read(NodeId peer, LocalSlice destination, RemoteAddr source, uint64_t wr_id) = 0;

    // Does the work that is ready at `now_ms` and appends events; returns how many.
    virtual size_t poll(uint64_t now_ms, std::vector<Event>& events) = 0;

    // A descriptor that becomes readable when poll() may have something to report: a
    // completion (an incoming WRITE_WITH_IMM, a signalled write, an error) or a connection
    // event. -1 if the implementation has none (then call poll() regularly).
    virtual int wait_fd() const = 0;
    // Re-arms wait_fd before sleeping. Returns false if events may already be pending: call
    // poll() and try again. After arm_wait() returns true, poll() once more (anything
    // that raced in is reported there), then sleep in poll/epoll on wait_fd.
    virtual bool arm_wait() = 0;

    virtual uint32_t max_inline_bytes() const = 0;
    virtual NodeId self() const = 0;
};

// Checks what both implementations require of a configuration.
Status validate_config(const TransportConfig& config);
const NodeAddress* find_node(const TransportConfig& config, NodeId node);

}  // namespace rcpg::transport
