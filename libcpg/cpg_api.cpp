// The C edge of libcpg: argument checks in corosync's order, handle lookup, and the
// conversion of everything inside to cs_error_t.
#include "libcpg/api_support.hpp"
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

uint16_t guarantee_flags(int guarantee)
{
    return guarantee == CPG_TYPE_SAFE ? delivery::kFlagSafe : 0;
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

// Runs `body` on the handle `id` names, or returns CS_ERR_BAD_HANDLE.
template <typename Body>
cs_error_t on_handle(cpg_handle_t id, Body&& body)
{
    return guarded([&]() -> cs_error_t {
        const std::shared_ptr<Handle> handle = handles().get(id);
        return handle ? body(*handle) : CS_ERR_BAD_HANDLE;
    });
}

// Checks that need no handle come first, as in corosync: a bad handle with a too long
// name gives CS_ERR_NAME_TOO_LONG.
cs_error_t check_name_length(const cpg_name* group)
{
    return group != nullptr && group->length > CPG_MAX_NAME_LENGTH ? CS_ERR_NAME_TOO_LONG : CS_OK;
}

cs_error_t check_group(const cpg_name* group)
{
    if (cs_error_t error = check_name_length(group); error != CS_OK) {
        return error;
    }
    return group == nullptr ? CS_ERR_INVALID_PARAM : CS_OK;
}

}  // namespace
}  // namespace rcpg::libcpg

using rcpg::libcpg::check_group;
using rcpg::libcpg::check_name_length;
using rcpg::libcpg::guarded;
using rcpg::libcpg::Handle;
using rcpg::libcpg::iterations;
using rcpg::libcpg::on_handle;

RCPG_EXPORT cs_error_t cpg_initialize(cpg_handle_t* handle, cpg_callbacks_t* callbacks)
{
    if (handle == nullptr) {
        return CS_ERR_INVALID_PARAM;
    }
    cpg_model_v1_data_t model{};
    model.model = CPG_MODEL_V1;
    if (callbacks != nullptr) {
        model.cpg_deliver_fn = callbacks->cpg_deliver_fn;
        model.cpg_confchg_fn = callbacks->cpg_confchg_fn;
    }
    return guarded([&] { return rcpg::libcpg::open_handle(handle, model, nullptr, false); });
}

RCPG_EXPORT cs_error_t cpg_model_initialize(cpg_handle_t* handle, cpg_model_t model, cpg_model_data_t* model_data,
                                            void* context)
{
    if (model != CPG_MODEL_V1 || handle == nullptr) {
        return CS_ERR_INVALID_PARAM;
    }
    cpg_model_v1_data_t v1{};
    if (model_data != nullptr) {
        // The whole v1 record is taken; its own `model` field is ignored, as corosync does.
        std::memcpy(&v1, model_data, sizeof(v1));
    }
    v1.model = CPG_MODEL_V1;
    return guarded([&] { return rcpg::libcpg::open_handle(handle, v1, context, true); });
}

RCPG_EXPORT cs_error_t cpg_finalize(cpg_handle_t handle)
{
    return guarded([&]() -> cs_error_t {
        std::shared_ptr<Handle> found = rcpg::libcpg::handles().remove(handle);
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
    if (fd == nullptr) {
        return CS_ERR_INVALID_PARAM;
    }
    return on_handle(handle, [&](Handle& found) {
        *fd = found.fd;
        return CS_OK;
    });
}

RCPG_EXPORT cs_error_t cpg_max_atomic_msgsize_get(cpg_handle_t handle, uint32_t* size)
{
    if (size == nullptr) {
        return CS_ERR_INVALID_PARAM;
    }
    return on_handle(handle, [&](Handle&) {
        *size = rcpg::delivery::kMaxAtomicMessageBytes;
        return CS_OK;
    });
}

RCPG_EXPORT cs_error_t cpg_context_get(cpg_handle_t handle, void** context)
{
    if (context == nullptr) {
        return CS_ERR_INVALID_PARAM;
    }
    return on_handle(handle, [&](Handle& found) {
        *context = found.context.load();
        return CS_OK;
    });
}

RCPG_EXPORT cs_error_t cpg_context_set(cpg_handle_t handle, void* context)
{
    return on_handle(handle, [&](Handle& found) {
        found.context.store(context);
        return CS_OK;
    });
}

RCPG_EXPORT cs_error_t cpg_dispatch(cpg_handle_t handle, cs_dispatch_flags_t dispatch_types)
{
    const int mode = rcpg::libcpg::enum_bits(dispatch_types);
    return on_handle(handle, [&](Handle& found) { return found.dispatch(mode); });
}

RCPG_EXPORT cs_error_t cpg_join(cpg_handle_t handle, const struct cpg_name* group)
{
    if (cs_error_t error = check_group(group); error != CS_OK) {
        return error;
    }
    return on_handle(handle, [&](Handle& found) { return found.join(*group); });
}

RCPG_EXPORT cs_error_t cpg_leave(cpg_handle_t handle, const struct cpg_name* group)
{
    if (cs_error_t error = check_group(group); error != CS_OK) {
        return error;
    }
    return on_handle(handle, [&](Handle& found) { return found.leave(*group); });
}

RCPG_EXPORT cs_error_t cpg_mcast_joined(cpg_handle_t handle, cpg_guarantee_t guarantee, const struct iovec* iovec,
                                        unsigned int iov_len)
{
    const uint16_t flags = rcpg::libcpg::guarantee_flags(rcpg::libcpg::enum_bits(guarantee));
    return on_handle(handle, [&](Handle& found) { return found.mcast(flags, iovec, iov_len); });
}

RCPG_EXPORT cs_error_t cpg_membership_get(cpg_handle_t handle, struct cpg_name* group_name,
                                          struct cpg_address* member_list, int* member_list_entries)
{
    if (cs_error_t error = check_group(group_name); error != CS_OK) {
        return error;
    }
    if (member_list == nullptr || member_list_entries == nullptr) {
        return CS_ERR_INVALID_PARAM;
    }
    return on_handle(handle, [&](Handle& found) {
        std::vector<cpg_address> members;
        if (cs_error_t error = found.membership(*group_name, members); error != CS_OK) {
            return error;
        }
        int capacity = *member_list_entries;
        if (capacity <= 0 || capacity > rcpg::libcpg::kMembershipMaxEntries) {
            capacity = rcpg::libcpg::kMembershipMaxEntries;
        }
        const int written = std::min(capacity, static_cast<int>(members.size()));
        rcpg::ipc::copy_bytes(member_list, members.data(), size_t(written) * sizeof(cpg_address));
        *member_list_entries = written;
        return CS_OK;
    });
}

RCPG_EXPORT cs_error_t cpg_local_get(cpg_handle_t handle, unsigned int* local_nodeid)
{
    if (local_nodeid == nullptr) {
        return CS_ERR_INVALID_PARAM;
    }
    return on_handle(handle, [&](Handle& found) { return found.local_nodeid(*local_nodeid); });
}

RCPG_EXPORT cs_error_t cpg_flow_control_state_get(cpg_handle_t handle, cpg_flow_control_state_t* flow_control_enabled)
{
    if (flow_control_enabled == nullptr) {
        return CS_ERR_INVALID_PARAM;
    }
    return on_handle(handle, [&](Handle& found) {
        *flow_control_enabled = found.flow_control_enabled() ? CPG_FLOW_CONTROL_ENABLED : CPG_FLOW_CONTROL_DISABLED;
        return CS_OK;
    });
}

RCPG_EXPORT cs_error_t cpg_zcb_alloc(cpg_handle_t handle, size_t size, void** buffer)
{
    if (buffer == nullptr) {
        return CS_ERR_INVALID_PARAM;
    }
    return on_handle(handle, [&](Handle& found) {
        std::lock_guard lock(found.zcb.mutex);
        void* allocated = found.zcb.allocate(size);
        if (allocated == nullptr) {
            return CS_ERR_NO_MEMORY;
        }
        *buffer = allocated;
        return CS_OK;
    });
}

RCPG_EXPORT cs_error_t cpg_zcb_free(cpg_handle_t handle, void* buffer)
{
    return on_handle(handle, [&](Handle& found) {
        std::lock_guard lock(found.zcb.mutex);
        return found.zcb.free(buffer) ? CS_OK : CS_ERR_INVALID_PARAM;
    });
}

RCPG_EXPORT cs_error_t cpg_zcb_mcast_joined(cpg_handle_t handle, cpg_guarantee_t guarantee, void* msg, size_t msg_len)
{
    const uint16_t flags = rcpg::libcpg::guarantee_flags(rcpg::libcpg::enum_bits(guarantee));
    return on_handle(handle, [&](Handle& found) { return found.zcb_mcast(flags, msg, msg_len); });
}

RCPG_EXPORT cs_error_t cpg_iteration_initialize(cpg_handle_t handle, cpg_iteration_type_t iteration_type,
                                                const struct cpg_name* group,
                                                cpg_iteration_handle_t* cpg_iteration_handle)
{
    if (cs_error_t error = check_name_length(group); error != CS_OK) {
        return error;
    }
    const int type = rcpg::libcpg::enum_bits(iteration_type);
    if (cpg_iteration_handle == nullptr || type < CPG_ITERATION_NAME_ONLY || type > CPG_ITERATION_ALL ||
        (type == CPG_ITERATION_ONE_GROUP) != (group != nullptr)) {
        return CS_ERR_INVALID_PARAM;
    }
    return on_handle(handle, [&](Handle& found) {
        auto iteration = std::make_shared<rcpg::libcpg::Iteration>();
        iteration->parent = handle;
        if (cs_error_t error = found.iteration_snapshot(static_cast<cpg_iteration_type_t>(type), group, iteration->rows);
            error != CS_OK) {
            return error;
        }
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
    if (description == nullptr) {
        return CS_ERR_INVALID_PARAM;
    }
    return guarded([&]() -> cs_error_t {
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
    return guarded([&] { return iterations().remove(handle) ? CS_OK : CS_ERR_BAD_HANDLE; });
}
