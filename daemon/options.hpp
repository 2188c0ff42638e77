// What rcpgd runs with. Defaults give the embedded one-node cluster; a configuration file
// (daemon/config.hpp) fills `cluster` and may override the rest.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rcpg::daemon {

inline constexpr uint16_t kDefaultRdmaPort = 7405;

struct ClusterNode {
    uint32_t nodeid = 0;
    std::string name;     // optional, for messages and the operator tool
    std::string address;  // ring0_addr, IPv4 dotted (rdma_cm needs an RDMA-capable netdev)
    uint16_t port = kDefaultRdmaPort;  // rdma_cm port this node listens on
};

// Empty `nodes` (or a single node) is the one-node cluster: no RDMA device is needed.
// Who copies a payload into the sequencer's ring: its RDMA device over a loopback
// connection, or the CPU. `automatic`: the device, unless it is a software one (rxe,
// siw), where the "device" copy is the same CPUs' copy plus packet processing.
enum class SequencerCopy : uint8_t { automatic, device, cpu };

// What corosync.conf's totem section asks of the wire (crypto_cipher, crypto_hash, secauth).
struct WireSecurity {
    std::string cipher = "none";
    std::string hash = "none";
    int asked_line = 0;     // the line that asks for crypto; 0: none does
    std::string asked_key;  // its key
    bool asks_crypto() const { return asked_line != 0; }
};

struct ClusterOptions {
    std::vector<ClusterNode> nodes;             // sorted by nodeid
    std::vector<uint32_t> sequencer_order;      // node ids; the first one sequences
    std::string device;                         // RDMA device name; empty: rdma_cm's choice
    std::vector<std::byte> cluster_key;         // the key file's bytes, at least 32
    WireSecurity totem_crypto;                  // what corosync's totem section asks for
    // rcpg { wire_security: plaintext }: the operator accepts that connections are
    // authenticated with the cluster key but data crosses the fabric in clear.
    bool plaintext_accepted = false;
    uint64_t inbound_ring_bytes = 16ull << 20;  // per sending node, at the sequencer
    uint32_t connect_timeout_ms = 5000;
    // A node silent this long is taken for failed (a sequencer's failure is taken over).
    uint32_t failure_timeout_ms = 3000;
    SequencerCopy sequencer_copy = SequencerCopy::automatic;
    bool multi_node() const { return nodes.size() > 1; }
};

struct Options {
    std::string ipc_name = "rcpg";             // libqb IPC service; clients use $RCPG_IPC
    uint32_t nodeid = 1;
    uint64_t ring_bytes = 64ull << 20;         // delivery ring data area
    uint32_t submission_capacity = 4096;       // descriptors per client
    uint64_t arena_copy_bytes = 8ull << 20;    // per client, for copied sends
    uint64_t arena_zcb_bytes = 24ull << 20;    // per client, for cpg_zcb_alloc buffers
    uint32_t busy_poll_us = 50;                // spin this long after work before sleeping
    // A client that read nothing this long while it holds a full ring back is
    // disconnected (its groups see PROCDOWN); 0: never, senders wait as long as it does.
    uint32_t stuck_client_timeout_ms = 10000;
    // A client that falls behind gets its entries moved out of the ring into a backlog of
    // its own, up to this many bytes (a power of two); beyond, it is disconnected.
    uint64_t client_backlog_bytes = 256ull << 20;
    std::vector<uid_t> allowed_uids;           // besides root
    std::vector<gid_t> allowed_gids;
    // Connections at once (clients and operator tools): more get CS_ERR_NO_RESOURCES.
    uint32_t max_clients = 1024;
    uint32_t max_clients_per_uid = 256;
    // Client send memory a cluster node may pin for its RDMA device, in all: a client's
    // whole arena counts from its cpg_initialize (the zero-copy part is pinned only at its
    // first zero-copy send). Beyond it, cpg_initialize gets CS_ERR_NO_RESOURCES.
    uint64_t max_pinned_bytes = 4096ull << 20;
    std::string config_path;                   // the file `cluster` came from, if any
    // Where the daemon keeps what must outlive it: the ring id (daemon/ring_id_store.hpp).
    std::string state_dir = "/var/lib/rcpg";
    ClusterOptions cluster;
};

}  // namespace rcpg::daemon
