/*
 * evs.h: corosync's extended virtual synchrony (EVS) client API, as rcpg's libevs.so.4
 * implements it.
 *
 * Binary-identical to corosync 1.4's <corosync/evs.h> and libevs.so.4: same types,
 * layouts, enumerator values and exported symbols (nine functions in COROSYNC_EVS_2.0,
 * evs_context_get and evs_context_set unversioned), so a program compiled against
 * corosync 1.4's header runs against this library, and one compiled against this header
 * ran against corosync 1.4's.
 *
 * Semantics in one paragraph: a process opens a handle and joins any number of groups
 * (a group is a 32-byte key, compared whole). A message sent with evs_mcast_joined()
 * goes to the groups the handle has joined, one sent with evs_mcast_groups() to the
 * groups it names; it reaches every handle, on every node, the sender's included, that
 * has joined at least one of them when the message reaches its node, once. Messages of
 * all groups, and CPG's messages and membership changes on the same daemon, are in one
 * total order, the same on every node. Membership is by node: evs_confchg_fn lists node
 * ids. Callbacks run inside evs_dispatch(), on the caller's thread. Every function
 * returns CS_OK (1) on success; the codes each function can return are listed with it.
 *
 * Where rcpg differs from corosync 1.4, it does what corosync documents:
 *  - EVS_TYPE_SAFE is delivered only once every node of the view holds the message
 *    (corosync delivered it as AGREED); on one node it is AGREED.
 *  - the confchg callback gets the ring id (corosync passed NULL).
 *  - up to IOV_MAX (1024) iovecs (more give CS_ERR_INVALID_PARAM; corosync overflowed a
 *    64-entry stack array); NULL pointers give CS_ERR_INVALID_PARAM instead of a crash.
 *  - handles belong to the process that opened them: in a forked child every handle of
 *    the parent gives CS_ERR_BAD_HANDLE.
 */
#ifndef COROSYNC_EVS_H_DEFINED
#define COROSYNC_EVS_H_DEFINED

/*
 * corosync 1.4's evs.h included <corosync/hdb.h>, and programs came to rely on what that
 * gave them: _GNU_SOURCE (when evs.h came first), these standard headers, hdb_handle_t
 * and its printf formats. The same here, without hdb's handle-database functions, which
 * are corosync's internals.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/uio.h>
#include <corosync/corotypes.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef RCPG_HDB_HANDLE_T_DEFINED
#define RCPG_HDB_HANDLE_T_DEFINED
typedef uint64_t hdb_handle_t; /* the same type as corosync 3's (qb_handle_t) */
#endif
#ifndef HDB_D_FORMAT
#define HDB_D_FORMAT "%" PRIu64
#define HDB_X_FORMAT "%" PRIx64
#endif

typedef uint64_t evs_handle_t;

typedef enum {
    EVS_TYPE_UNORDERED, /* delivered as AGREED */
    EVS_TYPE_FIFO,      /* delivered as AGREED */
    EVS_TYPE_AGREED,    /* one total order on every node */
    EVS_TYPE_SAFE       /* AGREED, and delivered once every node of the view holds it */
} evs_guarantee_t;

#define TOTEMIP_ADDRLEN (sizeof(struct in6_addr))

/* A group: 32 bytes, compared whole (pad a shorter name with zeros). */
struct evs_group {
    char key[32];
};

/* The cluster's ring: the node id of its sequencer and a number that rises with every
 * change of the node membership. */
struct evs_ring_id {
    unsigned int nodeid;
    unsigned long long seq;
};

/* A message of a group this handle joined: the sending node's id, the message and its
 * length. `msg` stays valid until the callback returns, and may be written to. */
typedef void (*evs_deliver_fn_t)(
    hdb_handle_t handle,
    unsigned int nodeid,
    const void *msg,
    size_t msg_len);

/* A change of the nodes in the cluster, as corosync reported totem's: for each change a
 * transitional configuration (the nodes that stay, with the ones that left) and then the
 * regular one (the new membership, with the ones that joined). A new handle first gets
 * the current membership, its nodes listed as joined. */
typedef void (*evs_confchg_fn_t)(
    hdb_handle_t handle,
    const unsigned int *member_list, size_t member_list_entries,
    const unsigned int *left_list, size_t left_list_entries,
    const unsigned int *joined_list, size_t joined_list_entries,
    const struct evs_ring_id *ring_id);

/* Either callback may be NULL: its events are dropped. */
typedef struct {
    evs_deliver_fn_t evs_deliver_fn;
    evs_confchg_fn_t evs_confchg_fn;
} evs_callbacks_t;

/* The names corosync 1.x kept for programs written before cs_error_t. */
#ifndef EVS_OK
#define EVS_DISPATCH_ONE CS_DISPATCH_ONE
#define EVS_DISPATCH_ALL CS_DISPATCH_ALL
#define EVS_DISPATCH_BLOCKING CS_DISPATCH_BLOCKING
#define EVS_OK CS_OK
#define EVS_ERR_LIBRARY CS_ERR_LIBRARY
#define EVS_ERR_TIMEOUT CS_ERR_TIMEOUT
#define EVS_ERR_TRY_AGAIN CS_ERR_TRY_AGAIN
#define EVS_ERR_INVALID_PARAM CS_ERR_INVALID_PARAM
#define EVS_ERR_NO_MEMORY CS_ERR_NO_MEMORY
#define EVS_ERR_BAD_HANDLE CS_ERR_BAD_HANDLE
#define EVS_ERR_ACCESS CS_ERR_ACCESS
#define EVS_ERR_NOT_EXIST CS_ERR_NOT_EXIST
#define EVS_ERR_EXIST CS_ERR_EXIST
#define EVS_ERR_NOT_SUPPORTED CS_ERR_NOT_SUPPORTED
#define EVS_ERR_SECURITY CS_ERR_SECURITY
#define EVS_ERR_TOO_MANY_GROUPS CS_ERR_TOO_MANY_GROUPS
#define evs_error_t cs_error_t
#endif

/*
 * Opens a handle (its initial confchg is pending at once: the fd is readable).
 * `callbacks` is copied; NULL means none. CS_ERR_INVALID_PARAM (`handle` NULL), CS_ERR_TRY_AGAIN or
 * CS_ERR_LIBRARY (no rcpgd), CS_ERR_ACCESS (not allowed to connect), CS_ERR_NO_RESOURCES
 * (rcpgd's cap on clients, or no descriptors), CS_ERR_NO_MEMORY, CS_ERR_VERSION.
 */
cs_error_t evs_initialize(
    evs_handle_t *handle,
    evs_callbacks_t *callbacks);

/* Closes the handle; later calls with it give CS_ERR_BAD_HANDLE. */
cs_error_t evs_finalize(
    evs_handle_t handle);

/*
 * The descriptor to poll: readable while an event is pending. Not to be read or
 * closed. CS_ERR_BAD_HANDLE, CS_ERR_INVALID_PARAM (NULL).
 */
cs_error_t evs_fd_get(
    evs_handle_t handle,
    int *fd);

/* A pointer kept for the application (NULL at first). CS_ERR_BAD_HANDLE, and for
 * evs_context_get CS_ERR_INVALID_PARAM (NULL). */
cs_error_t evs_context_get(
    evs_handle_t handle,
    void **context);

cs_error_t evs_context_set(
    evs_handle_t handle,
    void *context);

/*
 * Runs callbacks: CS_DISPATCH_ALL those pending now, CS_DISPATCH_ONE one (waiting for
 * it), CS_DISPATCH_ONE_NONBLOCKING at most one (CS_ERR_TRY_AGAIN with none),
 * CS_DISPATCH_BLOCKING until an error. CS_ERR_BAD_HANDLE (also once the handle is
 * finalized inside a callback), CS_ERR_LIBRARY (rcpgd gone or broken), CS_ERR_BUSY
 * (another thread dispatches this handle).
 */
cs_error_t evs_dispatch(
    evs_handle_t handle,
    cs_dispatch_flags_t dispatch_types);

/*
 * Joins groups: messages of them sequenced from now on are delivered to this handle.
 * A group joined twice is in the list twice (and left once per evs_leave).
 * CS_ERR_TOO_MANY_GROUPS (more than 50 in one call, or past 8192 on the handle: none
 * joined), CS_ERR_INVALID_PARAM (NULL groups with a count), CS_ERR_BAD_HANDLE,
 * CS_ERR_LIBRARY.
 */
cs_error_t evs_join(
    evs_handle_t handle,
    const struct evs_group *groups,
    size_t group_cnt);

/*
 * Leaves groups, in the order given: CS_ERR_NOT_EXIST at the first one this handle has
 * not joined (those before it are left). CS_ERR_INVALID_PARAM, CS_ERR_BAD_HANDLE,
 * CS_ERR_LIBRARY.
 */
cs_error_t evs_leave(
    evs_handle_t handle,
    const struct evs_group *groups,
    size_t group_cnt);

/*
 * Multicasts the iovec to the groups this handle has joined (with none, to nobody).
 * CS_ERR_TRY_AGAIN (no room now: dispatch and retry), CS_ERR_INVALID_PARAM (a NULL
 * iovec with a count, more than IOV_MAX entries, or the message with its groups above
 * 1 MiB), CS_ERR_BAD_HANDLE, CS_ERR_LIBRARY.
 */
cs_error_t evs_mcast_joined(
    evs_handle_t handle,
    evs_guarantee_t guarantee,
    const struct iovec *iovec,
    unsigned int iov_len);

/* The same to the groups named, joined or not. */
cs_error_t evs_mcast_groups(
    evs_handle_t handle,
    evs_guarantee_t guarantee,
    const struct evs_group *groups,
    size_t group_cnt,
    const struct iovec *iovec,
    unsigned int iov_len);

/*
 * The local node id and the nodes of the current membership: at most
 * *member_list_entries ids are written, and *member_list_entries is set to how many.
 * `local_nodeid` and `member_list` may be NULL. CS_ERR_INVALID_PARAM
 * (member_list_entries NULL), CS_ERR_BAD_HANDLE, CS_ERR_LIBRARY.
 */
cs_error_t evs_membership_get(
    evs_handle_t handle,
    unsigned int *local_nodeid,
    unsigned int *member_list,
    size_t *member_list_entries);

#ifdef __cplusplus
}
#endif

#endif /* COROSYNC_EVS_H_DEFINED */
