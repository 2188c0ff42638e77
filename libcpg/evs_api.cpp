// The C edge of libevs: argument checks, handle lookup, and the conversion of everything
// inside to cs_error_t. An EVS handle is libcpg's Handle with its EVS part (handle.hpp).
#include "libcpg/api_support.hpp"
#include "libcpg/handle.hpp"
#include "libcpg/handle_table.hpp"

#include <corosync/evs.h>

#include <pthread.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <vector>

#define RCPG_EXPORT extern "C" __attribute__((visibility("default")))

namespace rcpg::libcpg {
namespace {

static_assert(sizeof(evs_group) == sizeof(EvsKey) && alignof(evs_group) <= alignof(EvsKey));
static_assert(sizeof(evs_handle_t) == sizeof(cpg_handle_t));

HandleTable<Handle>& evs_handles()
{
    static HandleTable<Handle> table;
    return table;
}

// Handles belong to the process that opened them (as libcpg's, cpg_api.cpp).
[[maybe_unused]] const bool fork_handlers_installed = [] {
    evs_handles();
    ::pthread_atfork([] { evs_handles().lock_for_fork(); }, [] { evs_handles().unlock_after_fork(); },
                     [] {
                         evs_handles().unlock_after_fork();
                         evs_handles().forget_all_in_child();
                     });
    return true;
}();

template <typename Body>
cs_error_t on_evs_handle(evs_handle_t id, Body&& body)
{
    return guarded([&]() -> cs_error_t {
        const std::shared_ptr<Handle> handle = evs_handles().get(id);
        return handle ? body(*handle) : CS_ERR_BAD_HANDLE;
    });
}

// The application's groups as keys (struct evs_group is 32 bytes of char, like EvsKey).
std::vector<EvsKey> keys_of(const evs_group* groups, size_t count)
{
    std::vector<EvsKey> keys(count);
    if (count != 0) {
        std::memcpy(keys.data(), groups, count * sizeof(EvsKey));
    }
    return keys;
}

uint16_t guarantee_flags(int guarantee)
{
    return guarantee == EVS_TYPE_SAFE ? delivery::kFlagSafe : 0;
}

}  // namespace
}  // namespace rcpg::libcpg

using rcpg::libcpg::EvsKey;
using rcpg::libcpg::guarded;
using rcpg::libcpg::Handle;
using rcpg::libcpg::on_evs_handle;

RCPG_EXPORT cs_error_t evs_initialize(evs_handle_t* handle, evs_callbacks_t* callbacks)
{
    if (handle == nullptr) {
        return CS_ERR_INVALID_PARAM;
    }
    // NULL callbacks: none, as corosync 1.4 took them (a handle that only sends).
    const evs_callbacks_t given = callbacks != nullptr ? *callbacks : evs_callbacks_t{nullptr, nullptr};
    return guarded([&]() -> cs_error_t {
        auto opened = std::make_shared<Handle>();
        if (cs_error_t error = opened->connect_evs(given, nullptr); error != CS_OK) {
            return error;
        }
        const evs_handle_t id = rcpg::libcpg::evs_handles().insert(opened);
        if (id == 0) {
            return CS_ERR_NO_MEMORY;
        }
        opened->id = id;
        *handle = id;
        return CS_OK;
    });
}

RCPG_EXPORT cs_error_t evs_finalize(evs_handle_t handle)
{
    return guarded([&]() -> cs_error_t {
        std::shared_ptr<Handle> found = rcpg::libcpg::evs_handles().remove(handle);
        if (!found) {
            return CS_ERR_BAD_HANDLE;
        }
        found->finalized.store(true);
        // The handle is gone even if telling the daemon fails; it notices the closed socket.
        return found->finalize();
    });
}

RCPG_EXPORT cs_error_t evs_fd_get(evs_handle_t handle, int* fd)
{
    if (fd == nullptr) {
        return CS_ERR_INVALID_PARAM;
    }
    return on_evs_handle(handle, [&](Handle& found) {
        *fd = found.fd;
        return CS_OK;
    });
}

RCPG_EXPORT cs_error_t evs_context_get(evs_handle_t handle, void** context)
{
    if (context == nullptr) {
        return CS_ERR_INVALID_PARAM;
    }
    return on_evs_handle(handle, [&](Handle& found) {
        *context = found.context.load();
        return CS_OK;
    });
}

RCPG_EXPORT cs_error_t evs_context_set(evs_handle_t handle, void* context)
{
    return on_evs_handle(handle, [&](Handle& found) {
        found.context.store(context);
        return CS_OK;
    });
}

RCPG_EXPORT cs_error_t evs_dispatch(evs_handle_t handle, cs_dispatch_flags_t dispatch_types)
{
    const int mode = rcpg::libcpg::enum_bits(dispatch_types);
    return on_evs_handle(handle, [&](Handle& found) { return found.dispatch(mode); });
}

RCPG_EXPORT cs_error_t evs_join(evs_handle_t handle, const struct evs_group* groups, size_t group_cnt)
{
    if (groups == nullptr && group_cnt != 0) {
        return CS_ERR_INVALID_PARAM;
    }
    // corosync's limit, checked before anything is sent (also by the daemon).
    if (group_cnt > rcpg::ipc::kEvsMaxGroupsPerJoin) {
        return on_evs_handle(handle, [](Handle&) { return CS_ERR_TOO_MANY_GROUPS; });
    }
    return on_evs_handle(handle, [&](Handle& found) {
        const std::vector<EvsKey> keys = rcpg::libcpg::keys_of(groups, group_cnt);
        return found.evs_join(keys);
    });
}

RCPG_EXPORT cs_error_t evs_leave(evs_handle_t handle, const struct evs_group* groups, size_t group_cnt)
{
    if (groups == nullptr && group_cnt != 0) {
        return CS_ERR_INVALID_PARAM;
    }
    return on_evs_handle(handle, [&](Handle& found) {
        const std::vector<EvsKey> keys = rcpg::libcpg::keys_of(groups, group_cnt);
        return found.evs_leave(keys);
    });
}

RCPG_EXPORT cs_error_t evs_mcast_joined(evs_handle_t handle, evs_guarantee_t guarantee, const struct iovec* iovec,
                                        unsigned int iov_len)
{
    const uint16_t flags = rcpg::libcpg::guarantee_flags(rcpg::libcpg::enum_bits(guarantee));
    return on_evs_handle(handle, [&](Handle& found) { return found.evs_mcast(flags, std::nullopt, iovec, iov_len); });
}

RCPG_EXPORT cs_error_t evs_mcast_groups(evs_handle_t handle, evs_guarantee_t guarantee,
                                        const struct evs_group* groups, size_t group_cnt, const struct iovec* iovec,
                                        unsigned int iov_len)
{
    if (groups == nullptr && group_cnt != 0) {
        return CS_ERR_INVALID_PARAM;
    }
    // Beyond what one message can name (its groups alone over 1 MiB): refused before a copy.
    if (group_cnt > rcpg::delivery::kMaxAtomicMessageBytes / sizeof(EvsKey)) {
        return on_evs_handle(handle, [](Handle&) { return CS_ERR_INVALID_PARAM; });
    }
    const uint16_t flags = rcpg::libcpg::guarantee_flags(rcpg::libcpg::enum_bits(guarantee));
    return on_evs_handle(handle, [&](Handle& found) {
        const std::vector<EvsKey> keys = rcpg::libcpg::keys_of(groups, group_cnt);
        return found.evs_mcast(flags, std::span<const EvsKey>(keys), iovec, iov_len);
    });
}

RCPG_EXPORT cs_error_t evs_membership_get(evs_handle_t handle, unsigned int* local_nodeid, unsigned int* member_list,
                                          size_t* member_list_entries)
{
    if (member_list_entries == nullptr) {
        return CS_ERR_INVALID_PARAM;
    }
    return on_evs_handle(handle, [&](Handle& found) -> cs_error_t {
        uint32_t local = 0;
        std::vector<uint32_t> members;
        if (cs_error_t error = found.view(local, members); error != CS_OK) {
            return error;
        }
        if (local_nodeid != nullptr) {
            *local_nodeid = local;
        }
        // As corosync: at most as many as the caller's count says, and the count set to
        // how many there are of those.
        *member_list_entries = std::min(*member_list_entries, members.size());
        if (member_list != nullptr && *member_list_entries != 0) {
            std::memcpy(member_list, members.data(), *member_list_entries * sizeof(unsigned int));
        }
        return CS_OK;
    });
}
