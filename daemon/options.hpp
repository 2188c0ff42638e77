// What rcpgd runs with. Defaults give the embedded one-node cluster.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace rcpg::daemon {

struct Options {
    std::string ipc_name = "rcpg";             // libqb IPC service; clients use $RCPG_IPC
    uint32_t nodeid = 1;
    uint64_t ring_bytes = 64ull << 20;         // delivery ring data area
    uint32_t submission_capacity = 4096;       // descriptors per client
    uint64_t arena_copy_bytes = 8ull << 20;    // per client, for copied sends
    uint64_t arena_zcb_bytes = 24ull << 20;    // per client, for cpg_zcb_alloc buffers
    uint32_t busy_poll_us = 50;                // spin this long after work before sleeping
    std::vector<uid_t> allowed_uids;           // besides root
    std::vector<gid_t> allowed_gids;
};

}  // namespace rcpg::daemon
