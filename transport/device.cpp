#include "transport/device.hpp"

#include <cerrno>

namespace rcpg::transport {

Result<DeviceInfo> query_device(ibv_context* context, uint8_t port_num)
{
    ibv_device_attr attr{};
    if (int rc = ibv_query_device(context, &attr); rc != 0) {
        return errno_status(Errc::device_error, Layer::device, "ibv_query_device", rc);
    }
    ibv_port_attr port{};
    if (int rc = ibv_query_port(context, port_num, &port); rc != 0) {
        return errno_status(Errc::device_error, Layer::device, "ibv_query_port", rc);
    }
    DeviceInfo info;
    info.name = ibv_get_device_name(context->device);
    info.max_qp_wr = static_cast<uint32_t>(attr.max_qp_wr);
    info.max_sge = static_cast<uint32_t>(attr.max_sge);
    info.max_cqe = static_cast<uint32_t>(attr.max_cqe);
    info.max_qp_rd_atom = static_cast<uint32_t>(attr.max_qp_rd_atom);
    info.max_qp_init_rd_atom = static_cast<uint32_t>(attr.max_qp_init_rd_atom);
    info.active_mtu_bytes = 128u << static_cast<unsigned>(port.active_mtu);
    info.memory_windows = attr.max_mw > 0 && (attr.device_cap_flags & (IBV_DEVICE_MEM_WINDOW_TYPE_2A |
                                                                       IBV_DEVICE_MEM_WINDOW_TYPE_2B)) != 0;
    return info;
}

std::vector<std::string> list_device_names()
{
    std::vector<std::string> names;
    int count = 0;
    ibv_device** devices = ibv_get_device_list(&count);
    if (devices == nullptr) {
        return names;
    }
    for (int i = 0; i < count; ++i) {
        names.emplace_back(ibv_get_device_name(devices[i]));
    }
    ibv_free_device_list(devices);
    return names;
}

Result<ProtectionDomain> allocate_pd(ibv_context* context)
{
    ibv_pd* pd = ibv_alloc_pd(context);
    if (pd == nullptr) {
        return errno_status(Errc::device_error, Layer::device, "ibv_alloc_pd", errno);
    }
    return ProtectionDomain(pd);
}

}  // namespace rcpg::transport
