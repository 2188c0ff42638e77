// A local client as the daemon sees it (daemon.cpp serves it, cluster.cpp forwards what
// it sends when this node is not the sequencer).
#pragma once

#include "daemon/client_backlog.hpp"
#include "daemon/cluster_state.hpp"
#include "libcpg/ipc/fd_passing.hpp"
#include "libcpg/ipc/protocol.hpp"
#include "libcpg/ipc/shm.hpp"
#include "delivery/ring_format.hpp"
#include "libcpg/ipc/control_block.hpp"
#include "ordering/delivery_ring.hpp"
#include "ordering/group_table.hpp"

#include <qb/qbipcs.h>

#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace rcpg::daemon {

struct ClientSession {
    qb_ipcs_connection_t* connection = nullptr;
    pid_t pid = 0;
    uid_t uid = 0;
    uint64_t serial = 0;  // tells this session from any other, also on a reused connection
    bool initialized = false;
    bool fds_delivered = false;
    bool totem_callback = false;
    ipc::Token token{};
    ipc::UniqueFd control_fd;
    ipc::UniqueFd arena_fd;
    ipc::UniqueFd doorbell;  // this client's own; registered with the loop while open
    ipc::Mapping control_map;
    ipc::Mapping arena_map;
    ipc::ControlBlock* control = nullptr;
    const ipc::SubmissionDescriptor* descriptors = nullptr;
    uint32_t submission_mask = 0;
    uint64_t sub_head = 0;  // authoritative; the shared copy is only reported
    uint64_t arena_bytes = 0;
    uint64_t pinning_reserved_bytes = 0;  // of the node's max_pinned_bytes (reserve_pinning)

    // An EVS (libevs) client: it reads every EVS entry and totem confchg from init on (its
    // library keeps the messages of its groups) and sends only EVS messages. Its groups
    // are kept here for rcpg-cpgtool and to tell it from where a join takes effect.
    bool evs = false;
    std::vector<ipc::EvsKey> evs_groups;  // in join order, duplicates kept (corosync's)
    // The same for lookups, and the groups it left with the ring's unpublished tail then:
    // its entries before that may still be unread (Daemon::evs_entry_wanted).
    struct EvsKeyHash {
        size_t operator()(const ipc::EvsKey& key) const
        {
            return std::hash<std::string_view>{}(std::string_view(key.data(), key.size()));
        }
    };
    std::unordered_map<ipc::EvsKey, uint32_t, EvsKeyHash> evs_joined;
    std::vector<std::pair<ipc::EvsKey, uint64_t>> evs_left;

    std::optional<ordering::GroupName> group;  // the group this client is a member of
    uint32_t group_id = 0;                     // its number, while a member
    uint32_t wake_group_id = 0;                // entries of this group wake the client
    uint32_t read_group_id = 0;                // the group it reads, until it has read its leave
    bool pinning = false;                      // the ring must keep what it has not read
    uint64_t consumed_high = 0;                // the furthest `consumed` it reported (read_position)
    uint64_t stuck_at = 0;                     // its read position when it last held the ring back
    uint64_t stuck_since_ms = 0;               // since then (0: not holding it back)
    uint64_t pin_floor = 0;
    std::optional<uint64_t> leave_end;         // unpin once consumed has passed its leave
    // A slow reader's entries are moved out of the ring into its backlog (Daemon::
    // move_to_backlog): below `moved_to` the ring keeps nothing for it, except an entry it
    // holds in a callback. `ring_floor`: the lowest position it may still read (only rises).
    std::optional<ClientBacklog> backlog;
    uint64_t moved_to = 0;
    uint64_t ring_floor = 0;
    // The entry it holds in a callback below moved_to, and that entry's payload.
    struct Held {
        uint64_t position;
        ordering::DeliveryRing::Hold payload;
    };
    std::optional<Held> held;
    bool violated = false;

    // Members of a cluster: join and leave wait for their confchg to come back from the
    // sequencer; submissions are taken (sub_head published) only once their RDMA write
    // has completed, since it reads the arena.
    std::optional<ordering::GroupName> pending_join;
    bool pending_leave = false;
    ClusterSessionState cluster;

    ordering::ProcessId process(uint32_t nodeid) const { return {nodeid, static_cast<uint32_t>(pid)}; }
};


}  // namespace rcpg::daemon
