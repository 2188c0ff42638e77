/*
 * A stand-in for corosync 1.4's libevs.so.4 at link time only: the same soname, the same
 * eleven functions and the same version node (linked with libcpg/libevs.map, which
 * reproduces corosync 1.4's lib/libevs.versions and whose exports abi_exported_symbols_test
 * checks). A program linked against it records what a program linked against corosync's
 * library records (libevs.so.4, COROSYNC_EVS_2.0 for nine functions, no version for the
 * context functions), and is then run with LD_LIBRARY_PATH at rcpg's libevs: the dynamic
 * linker must find everything it asks for there. No Debian package carries corosync 1.x's
 * library, so this is how such a binary is made here. Nothing here is ever called.
 */
#include <corosync/evs.h>


cs_error_t evs_initialize(evs_handle_t *handle, evs_callbacks_t *callbacks)
{ (void)handle; (void)callbacks; return CS_ERR_LIBRARY; }
cs_error_t evs_finalize(evs_handle_t handle) { (void)handle; return CS_ERR_LIBRARY; }
cs_error_t evs_fd_get(evs_handle_t handle, int *fd) { (void)handle; (void)fd; return CS_ERR_LIBRARY; }
cs_error_t evs_context_get(evs_handle_t handle, void **context) { (void)handle; (void)context; return CS_ERR_LIBRARY; }
cs_error_t evs_context_set(evs_handle_t handle, void *context) { (void)handle; (void)context; return CS_ERR_LIBRARY; }
cs_error_t evs_dispatch(evs_handle_t handle, cs_dispatch_flags_t dispatch_types)
{ (void)handle; (void)dispatch_types; return CS_ERR_LIBRARY; }
cs_error_t evs_join(evs_handle_t handle, const struct evs_group *groups, size_t group_cnt)
{ (void)handle; (void)groups; (void)group_cnt; return CS_ERR_LIBRARY; }
cs_error_t evs_leave(evs_handle_t handle, const struct evs_group *groups, size_t group_cnt)
{ (void)handle; (void)groups; (void)group_cnt; return CS_ERR_LIBRARY; }
cs_error_t evs_mcast_joined(evs_handle_t handle, evs_guarantee_t guarantee, const struct iovec *iovec,
                            unsigned int iov_len)
{ (void)handle; (void)guarantee; (void)iovec; (void)iov_len; return CS_ERR_LIBRARY; }
cs_error_t evs_mcast_groups(evs_handle_t handle, evs_guarantee_t guarantee, const struct evs_group *groups,
                            size_t group_cnt, const struct iovec *iovec, unsigned int iov_len)
{ (void)handle; (void)guarantee; (void)groups; (void)group_cnt; (void)iovec; (void)iov_len; return CS_ERR_LIBRARY; }
cs_error_t evs_membership_get(evs_handle_t handle, unsigned int *local_nodeid, unsigned int *member_list,
                              size_t *member_list_entries)
{ (void)handle; (void)local_nodeid; (void)member_list; (void)member_list_entries; return CS_ERR_LIBRARY; }
