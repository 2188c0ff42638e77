// The RDMA device and its protection domain. rdma_cm chooses the device: binding the
// listening id to this node's address yields the verbs context of the netdev that holds
// the address, so the configured address is what selects a device (RCPG_RDMA_DEV only
// cross-checks it). The context belongs to librdmacm; the protection domain is ours.
#pragma once

#include "transport/status.hpp"

#include <infiniband/verbs.h>

#include <memory>
#include <string>
#include <vector>

namespace rcpg::transport {

struct DeviceInfo {
    std::string name;
    uint32_t max_qp_wr = 0;
    uint32_t max_sge = 0;
    uint32_t max_cqe = 0;
    uint32_t max_qp_rd_atom = 0;       // reads a responder serves concurrently per QP
    uint32_t max_qp_init_rd_atom = 0;  // reads a requester keeps in flight per QP
    uint32_t active_mtu_bytes = 0;
    // Type-2 memory windows (bound to one queue pair, withdrawn with it): what each peer is
    // given access through. Without them a peer gets the exposure's own registration.
    bool memory_windows = false;
};

Result<DeviceInfo> query_device(ibv_context* context, uint8_t port_num);
// Names of the RDMA devices present, for diagnostics ("no device rxe0; have: ...").
std::vector<std::string> list_device_names();

struct PdDeleter {
    void operator()(ibv_pd* pd) const { ibv_dealloc_pd(pd); }
};
using ProtectionDomain = std::unique_ptr<ibv_pd, PdDeleter>;

Result<ProtectionDomain> allocate_pd(ibv_context* context);

}  // namespace rcpg::transport
