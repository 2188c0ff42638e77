// The C edge of libcpg: argument checks in corosync's order, handle lookup, and the
// conversion of everything inside to cs_error_t.
#include "libcpg/handle.hpp"
#include "libcpg/handle_table.hpp"
#include "libcpg/ipc/bytes.hpp"

#include <corosync/cpg.h>

#include <pthread.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#define RCPG_EXPORT extern "C" __attribute__((visibility("default")))

namespace rcpg::libcpg {
namespace {

struct Iteration {
    cpg_handle_t parent = 0;
    std::vector<cpg_iteration_description_t> rows;
    size_t next = 0;
    std::mutex mutex;
};

HandleTable<Handle>& handles()
{
    static HandleTable<Handle> table;
    return table;
}

HandleTable<Iteration>& iterations()
{
    static HandleTable<Iteration> table;
    return table;
}

// Handles belong to the process that opened them: a forked child gets CS_ERR_BAD_HANDLE
// for its parent's handles instead of sharing (and corrupting) their connections.
[[maybe_unused]] const bool fork_handlers_installed = [] {
    handles();
    iterations();
    ::pthread_atfork(
        [] {
            handles().lock_for_fork();
            iterations().lock_for_fork();
        },
        [] {
            iterations().unlock_after_fork();
            handles().unlock_after_fork();
        },
        [] {
            iterations().unlock_after_fork();
            handles().unlock_after_fork();
            iterations().forget_all_in_child();
            handles().forget_all_in_child();
        });
    return true;
}();

// corosync writes at most this many members, whatever the caller's array holds.
constexpr int kMembershipMaxEntries = 384;

uint16_t guarantee_flags(cpg_guarantee_t guarantee)
{
    return guarantee == CPG_TYPE_SAFE ? ipc::kFlagSafe : 0;
}

cs_error_t open_handle(cpg_handle_t* handle_out, const cpg_model_v1_data_t& model, void* context,
                       bool validate_flags)
{
    auto handle = std::make_shared<Handle>();
    if (cs_error_t error = handle->connect(model, context); error != CS_OK) {
        return error;
    }
    // Flags are checked after connecting, as corosync does (no daemon: CS_ERR_LIBRARY wins).
    if (validate_flags && (model.flags & ~static_cast<unsigned int>(CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF)) != 0) {
        return CS_ERR_INVALID_PARAM;
    }
    const cpg_handle_t id = handles().insert(handle);
    if (id == 0) {
        return CS_ERR_NO_MEMORY;
    }
    handle->id = id;
    *handle_out = id;
    return CS_OK;
}

bool name_too_long(const cpg_name* group) { return group != nullptr && group->length > CPG_MAX_NAME_LENGTH; }

// No exception leaves the C API: running out of memory is CS_ERR_NO_MEMORY, as in
// corosync. (Exceptions thrown by the application's own callbacks pass through.)
template <typename Body>
cs_error_t guarded(Body&& body)
{
    try {
        return body();
    } catch (const std::bad_alloc&) {
        return CS_ERR_NO_MEMORY;
    }
}

}  // namespace
}  // namespace rcpg::libcpg

using rcpg::libcpg::handles;
using rcpg::libcpg::iterations;

RCPG_EXPORT cs_error_t cpg_initialize(cpg_handle_t* handle, cpg_callbacks_t* callbacks)
{
    return rcpg::libcpg::guarded([&]() -> cs_error_t {
        if (handle == nullptr) {
            return CS_ERR_INVALID_PARAM;
        }
        cpg_model_v1_data_t model{};
        model.model = CPG_MODEL_V1;
        if (callbacks != nullptr) {
            model.cpg_deliver_fn = callbacks->cpg_deliver_fn;
            model.cpg_confchg_fn = callbacks->cpg_confchg_fn;
        }
        return rcpg::libcpg::open_handle(handle, model, nullptr, false);
    });
}

RCPG_EXPORT cs_error_t cpg_model_initialize(cpg_handle_t* handle, cpg_model_t model, cpg_model_data_t* model_data,
                                            void* context)
{
    return rcpg::libcpg::guarded([&]() -> cs_error_t {
        if (model != CPG_MODEL_V1 || handle == nullptr) {
            return CS_ERR_INVALID_PARAM;
        }
        cpg_model_v1_data_t v1{};
        if (model_data != nullptr) {
            // The whole v1 record is taken; its own `model` field is ignored, as corosync does.
            std::memcpy(&v1, model_data, sizeof(v1));
        }
        v1.model = CPG_MODEL_V1;
        return rcpg::libcpg::open_handle(handle, v1, context, true);
    });
}

RCPG_EXPORT cs_error_t cpg_finalize(cpg_handle_t handle)
{
    return rcpg::libcpg::guarded([&]() -> cs_error_t {
        std::shared_ptr<rcpg::libcpg::Handle> found = handles().remove(handle);
        if (!found) {
            return CS_ERR_BAD_HANDLE;
        }
        found->finalized.store(true);
        iterations().remove_if([handle](const rcpg::libcpg::Iteration& it) { return it.parent == handle; });
        // The handle is gone even if telling the daemon fails; it notices the closed socket.
        return found->finalize();
    });
}

RCPG_EXPORT cs_error_t cpg_fd_get(cpg_handle_t handle, int* fd)
{
    return rcpg::libcpg::guarded([&]() -> cs_error_t {
        if (fd == nullptr) {
            return CS_ERR_INVALID_PARAM;
        }
        auto found = handles().get(handle);
        if (!found) {
            return CS_ERR_BAD_HANDLE;
        }
        *fd = found->fd;
        return CS_OK;
    });
}

RCPG_EXPORT cs_error_t cpg_max_atomic_msgsize_get(cpg_handle_t handle, uint32_t* size)
{
    return rcpg::libcpg::guarded([&]() -> cs_error_t {
        if (size == nullptr) {
            return CS_ERR_INVALID_PARAM;
        }
        if (!handles().get(handle)) {
            return CS_ERR_BAD_HANDLE;
        }
        *size = rcpg::ipc::kMaxAtomicMessageBytes;
        return CS_OK;
    });
}

RCPG_EXPORT cs_error_t cpg_context_get(cpg_handle_t handle, void** context)
{
    return rcpg::libcpg::guarded([&]() -> cs_error_t {
        if (context == nullptr) {
            return CS_ERR_INVALID_PARAM;
        }
        auto found = handles().get(handle);
        if (!found) {
            return CS_ERR_BAD_HANDLE;
        }
        *context = found->context.load();
        return CS_OK;
    });
}

RCPG_EXPORT cs_error_t cpg_context_set(cpg_handle_t handle, void* context)
{
    return rcpg::libcpg::guarded([&]() -> cs_error_t {
        auto found = handles().get(handle);
        if (!found) {
            return CS_ERR_BAD_HANDLE;
        }
        found->context.store(context);
        return CS_OK;
    });
}

RCPG_EXPORT cs_error_t cpg_dispatch(cpg_handle_t handle, cs_dispatch_flags_t dispatch_types)
{
    return rcpg::libcpg::guarded([&]() -> cs_error_t {
        auto found = handles().get(handle);
        if (!found) {
            return CS_ERR_BAD_HANDLE;
        }
        return found->dispatch(dispatch_types);
    });
}

RCPG_EXPORT cs_error_t cpg_join(cpg_handle_t handle, const struct cpg_name* group)
{
    return rcpg::libcpg::guarded([&]() -> cs_error_t {
        if (rcpg::libcpg::name_too_long(group)) {
            return CS_ERR_NAME_TOO_LONG;
        }
        if (group == nullptr) {
            return CS_ERR_INVALID_PARAM;
        }
        auto found = handles().get(handle);
        if (!found) {
            return CS_ERR_BAD_HANDLE;
        }
        return found->join(*group);
    });
}

RCPG_EXPORT cs_error_t cpg_leave(cpg_handle_t handle, const struct cpg_name* group)
{
    return rcpg::libcpg::guarded([&]() -> cs_error_t {
        if (rcpg::libcpg::name_too_long(group)) {
            return CS_ERR_NAME_TOO_LONG;
        }
        if (group == nullptr) {
            return CS_ERR_INVALID_PARAM;
        }
        auto found = handles().get(handle);
        if (!found) {
            return CS_ERR_BAD_HANDLE;
        }
        return found->leave(*group);
    });
}

RCPG_EXPORT cs_error_t cpg_mcast_joined(cpg_handle_t handle, cpg_guarantee_t guarantee, const struct iovec* iovec,
                                        unsigned int iov_len)
{
    return rcpg::libcpg::guarded([&]() -> cs_error_t {
        auto found = handles().get(handle);
        if (!found) {
            return CS_ERR_BAD_HANDLE;
        }
        return found->mcast(rcpg::libcpg::guarantee_flags(guarantee), iovec, iov_len);
    });
}

RCPG_EXPORT cs_error_t cpg_membership_get(cpg_handle_t handle, struct cpg_name* group_name,
                                          struct cpg_address* member_list, int* member_list_entries)
{
    return rcpg::libcpg::guarded([&]() -> cs_error_t {
        if (rcpg::libcpg::name_too_long(group_name)) {
            return CS_ERR_NAME_TOO_LONG;
        }
        if (group_name == nullptr || member_list == nullptr || member_list_entries == nullptr) {
            return CS_ERR_INVALID_PARAM;
        }
        auto found = handles().get(handle);
        if (!found) {
            return CS_ERR_BAD_HANDLE;
        }
        int capacity = *member_list_entries;
        if (capacity <= 0 || capacity > rcpg::libcpg::kMembershipMaxEntries) {
            capacity = rcpg::libcpg::kMembershipMaxEntries;
        }
        rcpg::ipc::GroupRequest request{};
        request.header = {static_cast<int32_t>(rcpg::ipc::RequestId::membership_get), sizeof(request)};
        request.group = *group_name;
        std::vector<std::byte> reply(rcpg::ipc::kIpcMaxMessageBytes);
        ssize_t received = 0;
        if (cs_error_t error = found->request(&request, sizeof(request), reply.data(), reply.size(), &received);
            error != CS_OK) {
            return error;
        }
        rcpg::ipc::ListResponse header;
        std::memcpy(&header, reply.data(), std::min(sizeof(header), reply.size()));
        if (static_cast<size_t>(received) != sizeof(header) + size_t{header.count} * sizeof(cpg_address)) {
            return CS_ERR_LIBRARY;
        }
        const int written = std::min(capacity, static_cast<int>(header.count));
        rcpg::ipc::copy_bytes(member_list, reply.data() + sizeof(header), size_t(written) * sizeof(cpg_address));
        *member_list_entries = written;
        return CS_OK;
    });
}

RCPG_EXPORT cs_error_t cpg_local_get(cpg_handle_t handle, unsigned int* local_nodeid)
{
    return rcpg::libcpg::guarded([&]() -> cs_error_t {
        if (local_nodeid == nullptr) {
            return CS_ERR_INVALID_PARAM;
        }
        auto found = handles().get(handle);
        if (!found) {
            return CS_ERR_BAD_HANDLE;
        }
        rcpg::ipc::BareRequest request{};
        request.header = {static_cast<int32_t>(rcpg::ipc::RequestId::local_get), sizeof(request)};
        rcpg::ipc::LocalGetResponse response{};
        ssize_t received = 0;
        if (cs_error_t error = found->request(&request, sizeof(request), &response, sizeof(response), &received);
            error != CS_OK) {
            return error;
        }
        if (received != sizeof(response)) {
            return CS_ERR_LIBRARY;
        }
        *local_nodeid = response.nodeid;
        return CS_OK;
    });
}

RCPG_EXPORT cs_error_t cpg_flow_control_state_get(cpg_handle_t handle, cpg_flow_control_state_t* flow_control_enabled)
{
    return rcpg::libcpg::guarded([&]() -> cs_error_t {
        if (flow_control_enabled == nullptr) {
            return CS_ERR_INVALID_PARAM;
        }
        auto found = handles().get(handle);
        if (!found) {
            return CS_ERR_BAD_HANDLE;
        }
        *flow_control_enabled = found->flow_control_enabled() ? CPG_FLOW_CONTROL_ENABLED : CPG_FLOW_CONTROL_DISABLED;
        return CS_OK;
    });
}

RCPG_EXPORT cs_error_t cpg_zcb_alloc(cpg_handle_t handle, size_t size, void** buffer)
{
    return rcpg::libcpg::guarded([&]() -> cs_error_t {
        if (buffer == nullptr) {
            return CS_ERR_INVALID_PARAM;
        }
        auto found = handles().get(handle);
        if (!found) {
            return CS_ERR_BAD_HANDLE;
        }
        std::lock_guard lock(found->zcb.mutex);
        void* allocated = found->zcb.allocate(size);
        if (allocated == nullptr) {
            return CS_ERR_NO_MEMORY;
        }
        *buffer = allocated;
        return CS_OK;
    });
}

RCPG_EXPORT cs_error_t cpg_zcb_free(cpg_handle_t handle, void* buffer)
{
    return rcpg::libcpg::guarded([&]() -> cs_error_t {
        auto found = handles().get(handle);
        if (!found) {
            return CS_ERR_BAD_HANDLE;
        }
        std::lock_guard lock(found->zcb.mutex);
        return found->zcb.free(buffer) ? CS_OK : CS_ERR_INVALID_PARAM;
    });
}

RCPG_EXPORT cs_error_t cpg_zcb_mcast_joined(cpg_handle_t handle, cpg_guarantee_t guarantee, void* msg, size_t msg_len)
{
    return rcpg::libcpg::guarded([&]() -> cs_error_t {
        auto found = handles().get(handle);
        if (!found) {
            return CS_ERR_BAD_HANDLE;
        }
        return found->zcb_mcast(rcpg::libcpg::guarantee_flags(guarantee), msg, msg_len);
    });
}

RCPG_EXPORT cs_error_t cpg_iteration_initialize(cpg_handle_t handle, cpg_iteration_type_t iteration_type,
                                                const struct cpg_name* group,
                                                cpg_iteration_handle_t* cpg_iteration_handle)
{
    return rcpg::libcpg::guarded([&]() -> cs_error_t {
        if (rcpg::libcpg::name_too_long(group)) {
            return CS_ERR_NAME_TOO_LONG;
        }
        if (cpg_iteration_handle == nullptr || iteration_type < CPG_ITERATION_NAME_ONLY ||
            iteration_type > CPG_ITERATION_ALL || (iteration_type == CPG_ITERATION_ONE_GROUP) != (group != nullptr)) {
            return CS_ERR_INVALID_PARAM;
        }
        auto found = handles().get(handle);
        if (!found) {
            return CS_ERR_BAD_HANDLE;
        }
        rcpg::ipc::IterationRequest request{};
        request.header = {static_cast<int32_t>(rcpg::ipc::RequestId::iteration_snapshot), sizeof(request)};
        request.iteration_type = static_cast<uint32_t>(iteration_type);
        request.has_group = group != nullptr ? 1 : 0;
        if (group != nullptr) {
            request.group = *group;
        }
        std::vector<std::byte> reply(rcpg::ipc::kIpcMaxMessageBytes);
        ssize_t received = 0;
        if (cs_error_t error = found->request(&request, sizeof(request), reply.data(), reply.size(), &received);
            error != CS_OK) {
            return error;
        }
        rcpg::ipc::ListResponse header;
        std::memcpy(&header, reply.data(), sizeof(header));
        if (static_cast<size_t>(received) != sizeof(header) + size_t{header.count} * sizeof(cpg_iteration_description_t)) {
            return CS_ERR_LIBRARY;
        }
        auto iteration = std::make_shared<rcpg::libcpg::Iteration>();
        iteration->parent = handle;
        iteration->rows.resize(header.count);
        rcpg::ipc::copy_bytes(iteration->rows.data(), reply.data() + sizeof(header),
                    iteration->rows.size() * sizeof(cpg_iteration_description_t));
        const cpg_iteration_handle_t id = iterations().insert(iteration);
        if (id == 0) {
            return CS_ERR_NO_MEMORY;
        }
        *cpg_iteration_handle = id;
        return CS_OK;
    });
}

RCPG_EXPORT cs_error_t cpg_iteration_next(cpg_iteration_handle_t handle, struct cpg_iteration_description_t* description)
{
    return rcpg::libcpg::guarded([&]() -> cs_error_t {
        if (description == nullptr) {
            return CS_ERR_INVALID_PARAM;
        }
        auto iteration = iterations().get(handle);
        if (!iteration) {
            return CS_ERR_BAD_HANDLE;
        }
        std::lock_guard lock(iteration->mutex);
        if (iteration->next >= iteration->rows.size()) {
            iteration->next = 0;  // the call after the end starts over, as corosync's does
            return CS_ERR_NO_SECTIONS;
        }
        *description = iteration->rows[iteration->next++];
        return CS_OK;
    });
}

RCPG_EXPORT cs_error_t cpg_iteration_finalize(cpg_iteration_handle_t handle)
{
    return rcpg::libcpg::guarded([&]() -> cs_error_t {
        return iterations().remove(handle) ? CS_OK : CS_ERR_BAD_HANDLE;
    });
}
