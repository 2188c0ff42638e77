/*
 * cpg.h: the closed process group (CPG) client API, as rcpg's libcpg.so.4 implements it.
 *
 * Binary-identical to corosync 3.x's <corosync/cpg.h>: same types, layouts, enumerator
 * values and exported symbols (with the same symbol versions), so programs compiled
 * against either header run against either library.
 *
 * Semantics in one paragraph: a process opens a handle, joins one group per handle,
 * and multicasts messages to that group. Every member of the group, the sender
 * included, receives every message and every membership change (confchg) of the group
 * in one total order, the same on every node and across all groups. Callbacks run
 * inside cpg_dispatch(), on the caller's thread. Every function returns CS_OK (1) on
 * success; the error codes each function can return are listed with it.
 *
 * Where rcpg deliberately differs from corosync 3.1.7, it follows what corosync
 * documents rather than what 3.1.7 does by accident:
 *  - cpg_leave() really leaves: the handle stops receiving the group and may join again.
 *  - cpg_leave() with a group other than the joined one returns CS_ERR_NOT_EXIST.
 *  - no fixed-size arrays: up to IOV_MAX (1024) iovecs and any number of members.
 *  - CPG_TYPE_SAFE is delivered only once every node of the view holds the message;
 *    on one node it is equivalent to CPG_TYPE_AGREED.
 *  - handles belong to the process that opened them: in a forked child every handle
 *    of the parent gives CS_ERR_BAD_HANDLE.
 */
#ifndef COROSYNC_CPG_H_DEFINED
#define COROSYNC_CPG_H_DEFINED

#include <netinet/in.h>
#include <corosync/corotypes.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t cpg_handle_t;
typedef uint64_t cpg_iteration_handle_t;

typedef enum {
    CPG_TYPE_UNORDERED, /* delivered as AGREED */
    CPG_TYPE_FIFO,      /* delivered as AGREED */
    CPG_TYPE_AGREED,    /* one total order across all groups and nodes */
    CPG_TYPE_SAFE       /* AGREED, and delivered only once every node holds it */
} cpg_guarantee_t;

typedef enum {
    CPG_FLOW_CONTROL_DISABLED, /* new messages may be sent */
    CPG_FLOW_CONTROL_ENABLED   /* the path to the group is full: sends return CS_ERR_TRY_AGAIN */
} cpg_flow_control_state_t;

typedef enum {
    CPG_REASON_UNDEFINED = 0,
    CPG_REASON_JOIN = 1,     /* the process called cpg_join() */
    CPG_REASON_LEAVE = 2,    /* the process called cpg_leave() */
    CPG_REASON_NODEDOWN = 3, /* the process's node left the cluster */
    CPG_REASON_NODEUP = 4,   /* the process's node joined the cluster */
    CPG_REASON_PROCDOWN = 5  /* the process finalized its handle, exited or died */
} cpg_reason_t;

typedef enum {
    CPG_ITERATION_NAME_ONLY = 1, /* one entry per group name; nodeid and pid are 0 */
    CPG_ITERATION_ONE_GROUP = 2, /* the members of one group */
    CPG_ITERATION_ALL = 3,       /* every (group, nodeid, pid) of the cluster */
} cpg_iteration_type_t;

typedef enum {
    CPG_MODEL_V1 = 1,
} cpg_model_t;

struct cpg_address {
    uint32_t nodeid;
    uint32_t pid;
    uint32_t reason; /* a cpg_reason_t */
};

#define CPG_MAX_NAME_LENGTH 128

/* A group name: `length` bytes of `value`, binary, not NUL-terminated. */
struct cpg_name {
    uint32_t length;
    char value[CPG_MAX_NAME_LENGTH];
};

#define CPG_MEMBERS_MAX 128

struct cpg_iteration_description_t {
    struct cpg_name group;
    uint32_t nodeid;
    uint32_t pid;
};

/* The cluster membership (ring): the representative node and a rising sequence. */
struct cpg_ring_id {
    uint32_t nodeid;
    uint64_t seq;
};

/*
 * A message. `msg` is valid only during the callback; the callback may modify it in
 * place (the change is private to this handle).
 */
typedef void (*cpg_deliver_fn_t)(cpg_handle_t handle, const struct cpg_name *group_name,
                                 uint32_t nodeid, uint32_t pid, void *msg, size_t msg_len);

/*
 * A membership change of the group: the members after the change, sorted by
 * (nodeid, pid), and the processes that left and joined, each with its reason.
 * The lists are valid only during the callback.
 */
typedef void (*cpg_confchg_fn_t)(cpg_handle_t handle, const struct cpg_name *group_name,
                                 const struct cpg_address *member_list, size_t member_list_entries,
                                 const struct cpg_address *left_list, size_t left_list_entries,
                                 const struct cpg_address *joined_list, size_t joined_list_entries);

/* A change of the cluster's node membership: the new ring and its node ids. */
typedef void (*cpg_totem_confchg_fn_t)(cpg_handle_t handle, struct cpg_ring_id ring_id,
                                       uint32_t member_list_entries, const uint32_t *member_list);

typedef struct {
    cpg_deliver_fn_t cpg_deliver_fn;
    cpg_confchg_fn_t cpg_confchg_fn;
} cpg_callbacks_t;

typedef struct {
    cpg_model_t model;
} cpg_model_data_t;

/* Deliver the current ring once, right after this handle's own join confchg. */
#define CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF 0x01

typedef struct {
    cpg_model_t model; /* ignored: the model argument of cpg_model_initialize() wins */
    cpg_deliver_fn_t cpg_deliver_fn;
    cpg_confchg_fn_t cpg_confchg_fn;
    cpg_totem_confchg_fn_t cpg_totem_confchg_fn;
    unsigned int flags; /* CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF or 0 */
} cpg_model_v1_data_t;

/*
 * Opens a handle to the local daemon with deliver and confchg callbacks (copied; NULL
 * means none). Errors: CS_ERR_LIBRARY (no daemon), CS_ERR_ACCESS (caller not allowed),
 * CS_ERR_TRY_AGAIN (daemon starting), CS_ERR_NO_MEMORY, CS_ERR_NO_RESOURCES.
 */
cs_error_t cpg_initialize(cpg_handle_t *handle, cpg_callbacks_t *callbacks);

/*
 * Opens a handle with an explicit model. Only CPG_MODEL_V1 exists; model_data, when not
 * NULL, points to a cpg_model_v1_data_t that is copied. `context` is returned by
 * cpg_context_get(). Errors: as cpg_initialize(), and CS_ERR_INVALID_PARAM for another
 * model (checked first) or unknown flags (checked after connecting).
 */
cs_error_t cpg_model_initialize(cpg_handle_t *handle, cpg_model_t model,
                                cpg_model_data_t *model_data, void *context);

/*
 * Closes the handle and its iteration handles. Other members see this process leave with
 * CPG_REASON_PROCDOWN. Allowed inside a callback (the surrounding cpg_dispatch() then
 * returns CS_ERR_BAD_HANDLE) and from another thread while one sits in cpg_dispatch()
 * (that dispatch returns). Errors: CS_ERR_BAD_HANDLE.
 */
cs_error_t cpg_finalize(cpg_handle_t handle);

/*
 * The handle's file descriptor, to poll for readability: readable while events are
 * pending. Never read or write it; call cpg_dispatch(). Errors: CS_ERR_BAD_HANDLE.
 */
cs_error_t cpg_fd_get(cpg_handle_t handle, int *fd);

/*
 * The largest message sent as one piece; larger messages are fragmented and still
 * delivered whole. Errors: CS_ERR_BAD_HANDLE.
 */
cs_error_t cpg_max_atomic_msgsize_get(cpg_handle_t handle, uint32_t *size);

/* The handle's application pointer. Errors: CS_ERR_BAD_HANDLE. */
cs_error_t cpg_context_get(cpg_handle_t handle, void **context);

/* Sets the handle's application pointer. Errors: CS_ERR_BAD_HANDLE. */
cs_error_t cpg_context_set(cpg_handle_t handle, void *context);

/*
 * Runs callbacks for pending events. CS_DISPATCH_ONE waits for one event;
 * CS_DISPATCH_ALL delivers what is pending and never waits; CS_DISPATCH_BLOCKING loops
 * until an error; CS_DISPATCH_ONE_NONBLOCKING delivers at most one event and returns
 * CS_ERR_TRY_AGAIN when none is pending. Other values behave as CS_DISPATCH_BLOCKING.
 * Errors: CS_ERR_BAD_HANDLE (also after cpg_finalize() in a callback), CS_ERR_LIBRARY
 * (daemon gone), CS_ERR_NO_MEMORY, CS_ERR_TRY_AGAIN, CS_ERR_BUSY (another thread is
 * dispatching this handle; the same thread may dispatch again from a callback).
 */
cs_error_t cpg_dispatch(cpg_handle_t handle, cs_dispatch_flags_t dispatch_types);

/*
 * Joins `group` (one group per handle). Membership is effective when the handle's own
 * join confchg is delivered. Errors: CS_ERR_NAME_TOO_LONG (length > 128, checked first),
 * CS_ERR_BAD_HANDLE, CS_ERR_EXIST (this handle is joined, or another handle of this
 * process is joined to the same group), CS_ERR_TRY_AGAIN (the group's path is full or an
 * earlier membership of this process in the group is still being removed),
 * CS_ERR_INVALID_PARAM (group is NULL), CS_ERR_LIBRARY.
 */
cs_error_t cpg_join(cpg_handle_t handle, const struct cpg_name *group);

/*
 * Leaves the joined group. The leaver and the other members receive a confchg with
 * CPG_REASON_LEAVE; afterwards the handle receives nothing from the group and may join
 * again. Errors: CS_ERR_NAME_TOO_LONG, CS_ERR_BAD_HANDLE, CS_ERR_NOT_EXIST (not joined to
 * `group`), CS_ERR_TRY_AGAIN, CS_ERR_INVALID_PARAM (group is NULL), CS_ERR_LIBRARY.
 */
cs_error_t cpg_leave(cpg_handle_t handle, const struct cpg_name *group);

/*
 * Multicasts the gathered iovecs (total length 0 allowed) to the joined group, sender
 * included. Returns once the message is queued; when not joined the message is dropped
 * and CS_OK returned, as corosync does. Messages above the atomic size are fragmented
 * and delivered whole or not at all. `guarantee` selects SAFE delivery; the other values
 * give AGREED. Errors: CS_ERR_BAD_HANDLE, CS_ERR_TRY_AGAIN (flow control: nothing was
 * sent; a fragmented message gives up after 2 s without room for its next fragment, and
 * the receivers drop what they got of it), CS_ERR_INVALID_PARAM (NULL iovec with a non-zero count, a NULL base with a
 * non-zero length, or more than IOV_MAX iovecs), CS_ERR_TOO_BIG (4 GiB or more),
 * CS_ERR_NOT_EXIST (fragmented messages only: not joined), CS_ERR_LIBRARY.
 */
cs_error_t cpg_mcast_joined(cpg_handle_t handle, cpg_guarantee_t guarantee,
                            const struct iovec *iovec, unsigned int iov_len);

/*
 * The current members of any group, sorted by (nodeid, pid), reason 0. On input
 * *member_list_entries is the capacity of member_list (values outside 1..384 mean 384,
 * the most corosync writes); on output, the number written. Errors:
 * CS_ERR_NAME_TOO_LONG, CS_ERR_INVALID_PARAM (NULL list or count), CS_ERR_BAD_HANDLE,
 * CS_ERR_LIBRARY.
 */
cs_error_t cpg_membership_get(cpg_handle_t handle, struct cpg_name *groupName,
                              struct cpg_address *member_list, int *member_list_entries);

/* The local node id. Errors: CS_ERR_BAD_HANDLE, CS_ERR_LIBRARY. */
cs_error_t cpg_local_get(cpg_handle_t handle, unsigned int *local_nodeid);

/*
 * Whether sends are currently held back (they would return CS_ERR_TRY_AGAIN).
 * Errors: CS_ERR_BAD_HANDLE.
 */
cs_error_t cpg_flow_control_state_get(cpg_handle_t handle,
                                      cpg_flow_control_state_t *flow_control_enabled);

/*
 * A buffer of `size` bytes in the handle's shared send arena, for
 * cpg_zcb_mcast_joined(). Errors: CS_ERR_BAD_HANDLE, CS_ERR_INVALID_PARAM (NULL buffer),
 * CS_ERR_NO_MEMORY.
 */
cs_error_t cpg_zcb_alloc(cpg_handle_t handle, size_t size, void **buffer);

/*
 * Frees a buffer from cpg_zcb_alloc() on this handle. Errors: CS_ERR_BAD_HANDLE,
 * CS_ERR_INVALID_PARAM (not such a buffer, or already freed).
 */
cs_error_t cpg_zcb_free(cpg_handle_t handle, void *buffer);

/*
 * Multicasts `msg_len` bytes of a zcb buffer without copying them in the library. The
 * buffer may be reused once the call returns. Errors: CS_ERR_BAD_HANDLE,
 * CS_ERR_INVALID_PARAM (not a zcb buffer of this handle, or msg_len beyond it),
 * CS_ERR_NOT_EXIST (not joined), CS_ERR_TRY_AGAIN, CS_ERR_LIBRARY.
 */
cs_error_t cpg_zcb_mcast_joined(cpg_handle_t handle, cpg_guarantee_t guarantee, void *msg,
                                size_t msg_len);

/*
 * Takes a snapshot of the cluster's (group, nodeid, pid) table for iteration.
 * `group` must be non-NULL exactly for CPG_ITERATION_ONE_GROUP. Errors:
 * CS_ERR_NAME_TOO_LONG, CS_ERR_INVALID_PARAM, CS_ERR_BAD_HANDLE, CS_ERR_LIBRARY.
 */
cs_error_t cpg_iteration_initialize(cpg_handle_t handle, cpg_iteration_type_t iteration_type,
                                    const struct cpg_name *group,
                                    cpg_iteration_handle_t *cpg_iteration_handle);

/*
 * The next entry of the snapshot, or CS_ERR_NO_SECTIONS at its end (the call after that
 * starts again from the first entry). Errors: CS_ERR_INVALID_PARAM (NULL description,
 * checked first), CS_ERR_BAD_HANDLE.
 */
cs_error_t cpg_iteration_next(cpg_iteration_handle_t handle,
                              struct cpg_iteration_description_t *description);

/* Frees the snapshot. Errors: CS_ERR_BAD_HANDLE. */
cs_error_t cpg_iteration_finalize(cpg_iteration_handle_t handle);

#ifdef __cplusplus
}
#endif

#endif /* COROSYNC_CPG_H_DEFINED */
