/*
 * The binary layout of <corosync/evs.h> as corosync 1.4 defined it on x86_64 (LP64), for
 * libevs.so.4: sizes, alignments and offsets of every struct, enumerator values, the
 * constant, the exact types of the two callbacks and the eleven API functions, and the
 * values of the EVS_* names corosync 1.x kept (in its corotypes.h) for programs written
 * before cs_error_t.
 *
 * The figures are written down here from corosync 1.4's header (no corosync 1.x header is
 * installed to compile against): a program built against that header passes these
 * structs, enumerators and callbacks to rcpg's library, so rcpg's header must give the
 * same ones. Every check is a compile-time assertion. The file is compiled as C11 and as
 * C++20; the C++ build is the stricter (exact type identity, enum parameters, and the
 * type of the compatibility names).
 *
 * Include it right after <corosync/evs.h>; it includes nothing itself, so the header under
 * test has to stand on its own. Its macros carry an EVS_ABI_ prefix so that it can share
 * a translation unit with cpg_layout_expectations.h.
 */
#ifndef RCPG_TESTS_ABI_EVS_LAYOUT_EXPECTATIONS_H
#define RCPG_TESTS_ABI_EVS_LAYOUT_EXPECTATIONS_H

#ifndef COROSYNC_EVS_H_DEFINED
#error "include <corosync/evs.h> before evs_layout_expectations.h"
#endif

#ifdef __cplusplus
/* Exact type identity. C's __builtin_types_compatible_p is weaker (an enum is compatible
 * with its underlying integer type, unsigned long with nothing but itself). */
template <class First, class Second> struct evs_abi_same_type { static constexpr bool value = false; };
template <class Only> struct evs_abi_same_type<Only, Only> { static constexpr bool value = true; };
#define EVS_ABI_ASSERT(condition) static_assert(condition, #condition)
#define EVS_ABI_ALIGNOF(type) alignof(type)
#define EVS_ABI_TYPEOF(expression) decltype(expression)
#define EVS_ABI_SAME_TYPE(first, second) (evs_abi_same_type<first, second>::value)
#else
#define EVS_ABI_ASSERT(condition) _Static_assert(condition, #condition)
#define EVS_ABI_ALIGNOF(type) _Alignof(type)
#define EVS_ABI_TYPEOF(expression) __typeof__(expression)
#define EVS_ABI_SAME_TYPE(first, second) __builtin_types_compatible_p(first, second)
#endif

/* __builtin_offsetof rather than offsetof: the latter would need <stddef.h> from here. */
#define EVS_ABI_OFFSETOF(type, member) __builtin_offsetof(type, member)
#define EVS_ABI_MEMBER_SIZE(type, member) sizeof(((type *)0)->member)
#define EVS_ABI_MEMBER_TYPE(type, member) EVS_ABI_TYPEOF(((type *)0)->member)

/* A member at an offset, with a size and a type: the three things a compiled caller bakes in. */
#define EVS_ABI_ASSERT_MEMBER(type, member, offset, member_type)         \
    EVS_ABI_ASSERT(EVS_ABI_OFFSETOF(type, member) == (offset));          \
    EVS_ABI_ASSERT(EVS_ABI_MEMBER_SIZE(type, member) == sizeof(member_type)); \
    EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(EVS_ABI_MEMBER_TYPE(type, member), member_type))

#define EVS_ABI_ASSERT_SIZE_ALIGN(type, size_bytes, align_bytes) \
    EVS_ABI_ASSERT(sizeof(type) == (size_bytes));                \
    EVS_ABI_ASSERT(EVS_ABI_ALIGNOF(type) == (align_bytes))

/*
 * "This function converts to that pointer by plain assignment", checked at compile time
 * without referring to the function at run time (this program links no libevs): the
 * assignment is the operand of sizeof, so it is type-checked but never evaluated. Any
 * difference in the return type, a parameter's type or the number of parameters breaks
 * the build (C++: an error; C: -Wincompatible-pointer-types, an error under -Werror).
 * `slot` is declared extern and never defined: only its type is used.
 */
#define EVS_ABI_ASSIGNABLE(slot, function) EVS_ABI_ASSERT(sizeof((slot) = (function)) == sizeof(slot))

/* ---- constants and scalar types ---- */

/* corosync 1.4: #define TOTEMIP_ADDRLEN (sizeof(struct in6_addr)) */
EVS_ABI_ASSERT(TOTEMIP_ADDRLEN == 16);

/* evs_handle_t was uint64_t; hdb_handle_t (from corosync 1.4's <corosync/hdb.h>, the type
 * of the callbacks' first parameter) was uint64_t too. */
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(evs_handle_t, uint64_t));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(hdb_handle_t, uint64_t));
EVS_ABI_ASSERT_SIZE_ALIGN(evs_handle_t, 8, 8);
EVS_ABI_ASSERT_SIZE_ALIGN(hdb_handle_t, 8, 8);

EVS_ABI_ASSERT_SIZE_ALIGN(evs_guarantee_t, 4, 4);
EVS_ABI_ASSERT(EVS_TYPE_UNORDERED == 0);
EVS_ABI_ASSERT(EVS_TYPE_FIFO == 1);
EVS_ABI_ASSERT(EVS_TYPE_AGREED == 2);
EVS_ABI_ASSERT(EVS_TYPE_SAFE == 3);

/* The shared types evs.h takes from corotypes.h, as far as libevs uses them. */
EVS_ABI_ASSERT_SIZE_ALIGN(cs_error_t, 4, 4);
EVS_ABI_ASSERT_SIZE_ALIGN(cs_dispatch_flags_t, 4, 4);
EVS_ABI_ASSERT(CS_DISPATCH_ONE == 1);
EVS_ABI_ASSERT(CS_DISPATCH_ALL == 2);
EVS_ABI_ASSERT(CS_DISPATCH_BLOCKING == 3);

/* ---- struct layouts ---- */

/* A group: 32 bytes of key, byte-aligned. */
EVS_ABI_ASSERT_SIZE_ALIGN(struct evs_group, 32, 1);
EVS_ABI_ASSERT_MEMBER(struct evs_group, key, 0, char[32]);

/* Four padding bytes after nodeid: seq is 8-aligned. corosync 1.4 spelled seq
 * "unsigned long long" (not uint64_t, which is unsigned long here): a C++ program that
 * takes &ring_id->seq as unsigned long long * depends on the spelling. */
EVS_ABI_ASSERT_SIZE_ALIGN(struct evs_ring_id, 16, 8);
EVS_ABI_ASSERT_MEMBER(struct evs_ring_id, nodeid, 0, unsigned int);
EVS_ABI_ASSERT_MEMBER(struct evs_ring_id, seq, 8, unsigned long long);

EVS_ABI_ASSERT_SIZE_ALIGN(evs_callbacks_t, 16, 8);
EVS_ABI_ASSERT_MEMBER(evs_callbacks_t, evs_deliver_fn, 0, evs_deliver_fn_t);
EVS_ABI_ASSERT_MEMBER(evs_callbacks_t, evs_confchg_fn, 8, evs_confchg_fn_t);

/* ---- callback types: the parameter lists decide the calling convention ---- */

/* msg is const here (unlike CPG's deliver callback). */
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(evs_deliver_fn_t,
                                 void (*)(hdb_handle_t, unsigned int, const void *, size_t)));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(evs_confchg_fn_t,
                                 void (*)(hdb_handle_t,
                                          const unsigned int *, size_t,
                                          const unsigned int *, size_t,
                                          const unsigned int *, size_t,
                                          const struct evs_ring_id *)));

/* A 1.4 program's callbacks, declared with corosync 1.4's parameter lists (never defined:
 * only named in unevaluated operands), must fit the typedefs and the callbacks struct. */
void evs_abi_deliver_as_in_1_4(hdb_handle_t handle, unsigned int nodeid, const void *msg,
                               size_t msg_len);
void evs_abi_confchg_as_in_1_4(hdb_handle_t handle,
                               const unsigned int *member_list, size_t member_list_entries,
                               const unsigned int *left_list, size_t left_list_entries,
                               const unsigned int *joined_list, size_t joined_list_entries,
                               const struct evs_ring_id *ring_id);
extern evs_deliver_fn_t evs_abi_deliver_slot;
extern evs_confchg_fn_t evs_abi_confchg_slot;
EVS_ABI_ASSIGNABLE(evs_abi_deliver_slot, evs_abi_deliver_as_in_1_4);
EVS_ABI_ASSIGNABLE(evs_abi_confchg_slot, evs_abi_confchg_as_in_1_4);
/* The positional initializer every 1.4 program used: { deliver, confchg }. */
#ifdef __cplusplus
EVS_ABI_ASSERT(sizeof(evs_callbacks_t{evs_abi_deliver_as_in_1_4, evs_abi_confchg_as_in_1_4}) == 16);
#else
EVS_ABI_ASSERT(sizeof((evs_callbacks_t){evs_abi_deliver_as_in_1_4, evs_abi_confchg_as_in_1_4}) == 16);
#endif

/* ---- the API functions: a prototype mismatch breaks compiled callers ---- */

EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(EVS_ABI_TYPEOF(evs_initialize),
                                 cs_error_t(evs_handle_t *, evs_callbacks_t *)));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(EVS_ABI_TYPEOF(evs_finalize), cs_error_t(evs_handle_t)));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(EVS_ABI_TYPEOF(evs_fd_get), cs_error_t(evs_handle_t, int *)));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(EVS_ABI_TYPEOF(evs_context_get), cs_error_t(evs_handle_t, void **)));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(EVS_ABI_TYPEOF(evs_context_set), cs_error_t(evs_handle_t, void *)));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(EVS_ABI_TYPEOF(evs_dispatch),
                                 cs_error_t(evs_handle_t, cs_dispatch_flags_t)));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(EVS_ABI_TYPEOF(evs_join),
                                 cs_error_t(evs_handle_t, const struct evs_group *, size_t)));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(EVS_ABI_TYPEOF(evs_leave),
                                 cs_error_t(evs_handle_t, const struct evs_group *, size_t)));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(EVS_ABI_TYPEOF(evs_mcast_joined),
                                 cs_error_t(evs_handle_t, evs_guarantee_t, const struct iovec *,
                                            unsigned int)));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(EVS_ABI_TYPEOF(evs_mcast_groups),
                                 cs_error_t(evs_handle_t, evs_guarantee_t, const struct evs_group *,
                                            size_t, const struct iovec *, unsigned int)));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(EVS_ABI_TYPEOF(evs_membership_get),
                                 cs_error_t(evs_handle_t, unsigned int *, unsigned int *, size_t *)));

/* The same eleven, each assigned to a pointer spelled with corosync 1.4's prototype. */
extern cs_error_t (*evs_abi_initialize_slot)(evs_handle_t *handle, evs_callbacks_t *callbacks);
extern cs_error_t (*evs_abi_finalize_slot)(evs_handle_t handle);
extern cs_error_t (*evs_abi_fd_get_slot)(evs_handle_t handle, int *fd);
extern cs_error_t (*evs_abi_context_get_slot)(evs_handle_t handle, void **context);
extern cs_error_t (*evs_abi_context_set_slot)(evs_handle_t handle, void *context);
extern cs_error_t (*evs_abi_dispatch_slot)(evs_handle_t handle, cs_dispatch_flags_t dispatch_types);
extern cs_error_t (*evs_abi_join_slot)(evs_handle_t handle, const struct evs_group *groups,
                                       size_t group_cnt);
extern cs_error_t (*evs_abi_leave_slot)(evs_handle_t handle, const struct evs_group *groups,
                                        size_t group_cnt);
extern cs_error_t (*evs_abi_mcast_joined_slot)(evs_handle_t handle, evs_guarantee_t guarantee,
                                               const struct iovec *iovec, unsigned int iov_len);
extern cs_error_t (*evs_abi_mcast_groups_slot)(evs_handle_t handle, evs_guarantee_t guarantee,
                                               const struct evs_group *groups, size_t group_cnt,
                                               const struct iovec *iovec, unsigned int iov_len);
extern cs_error_t (*evs_abi_membership_get_slot)(evs_handle_t handle, unsigned int *local_nodeid,
                                                 unsigned int *member_list,
                                                 size_t *member_list_entries);
EVS_ABI_ASSIGNABLE(evs_abi_initialize_slot, evs_initialize);
EVS_ABI_ASSIGNABLE(evs_abi_finalize_slot, evs_finalize);
EVS_ABI_ASSIGNABLE(evs_abi_fd_get_slot, evs_fd_get);
EVS_ABI_ASSIGNABLE(evs_abi_context_get_slot, evs_context_get);
EVS_ABI_ASSIGNABLE(evs_abi_context_set_slot, evs_context_set);
EVS_ABI_ASSIGNABLE(evs_abi_dispatch_slot, evs_dispatch);
EVS_ABI_ASSIGNABLE(evs_abi_join_slot, evs_join);
EVS_ABI_ASSIGNABLE(evs_abi_leave_slot, evs_leave);
EVS_ABI_ASSIGNABLE(evs_abi_mcast_joined_slot, evs_mcast_joined);
EVS_ABI_ASSIGNABLE(evs_abi_mcast_groups_slot, evs_mcast_groups);
EVS_ABI_ASSIGNABLE(evs_abi_membership_get_slot, evs_membership_get);

/* ---- corosync 1.x's compatibility names (its corotypes.h, "DEPRECATED" block) ----
 *
 * Each was a macro for the CS_ name, so its value is the CS_ value (not openais's older
 * evs_error_t enum, where NOT_SUPPORTED was 20 and SECURITY 29). 1.x had no
 * evs_dispatch_t; an extra definition must at least name the dispatch type. */

EVS_ABI_ASSERT(EVS_DISPATCH_ONE == 1);
EVS_ABI_ASSERT(EVS_DISPATCH_ALL == 2);
EVS_ABI_ASSERT(EVS_DISPATCH_BLOCKING == 3);
EVS_ABI_ASSERT(EVS_OK == 1);
EVS_ABI_ASSERT(EVS_ERR_LIBRARY == 2);
EVS_ABI_ASSERT(EVS_ERR_TIMEOUT == 5);
EVS_ABI_ASSERT(EVS_ERR_TRY_AGAIN == 6);
EVS_ABI_ASSERT(EVS_ERR_INVALID_PARAM == 7);
EVS_ABI_ASSERT(EVS_ERR_NO_MEMORY == 8);
EVS_ABI_ASSERT(EVS_ERR_BAD_HANDLE == 9);
EVS_ABI_ASSERT(EVS_ERR_ACCESS == 11);
EVS_ABI_ASSERT(EVS_ERR_NOT_EXIST == 12);
EVS_ABI_ASSERT(EVS_ERR_EXIST == 14);
EVS_ABI_ASSERT(EVS_ERR_NOT_SUPPORTED == 19);
EVS_ABI_ASSERT(EVS_ERR_SECURITY == 100);
EVS_ABI_ASSERT(EVS_ERR_TOO_MANY_GROUPS == 30);
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(evs_error_t, cs_error_t));
#ifdef evs_dispatch_t
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(evs_dispatch_t, cs_dispatch_flags_t));
#endif

#ifdef __cplusplus
/* In C++ an int does not convert to an enum: a 1.4 program's
 * evs_dispatch(handle, EVS_DISPATCH_ALL) and "evs_error_t rc = EVS_OK;" compile only if
 * the names are the enumerators themselves, as corosync's macros made them. */
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(decltype(EVS_DISPATCH_ONE), cs_dispatch_flags_t));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(decltype(EVS_DISPATCH_ALL), cs_dispatch_flags_t));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(decltype(EVS_DISPATCH_BLOCKING), cs_dispatch_flags_t));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(decltype(EVS_OK), cs_error_t));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(decltype(EVS_ERR_LIBRARY), cs_error_t));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(decltype(EVS_ERR_TIMEOUT), cs_error_t));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(decltype(EVS_ERR_TRY_AGAIN), cs_error_t));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(decltype(EVS_ERR_INVALID_PARAM), cs_error_t));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(decltype(EVS_ERR_NO_MEMORY), cs_error_t));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(decltype(EVS_ERR_BAD_HANDLE), cs_error_t));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(decltype(EVS_ERR_ACCESS), cs_error_t));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(decltype(EVS_ERR_NOT_EXIST), cs_error_t));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(decltype(EVS_ERR_EXIST), cs_error_t));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(decltype(EVS_ERR_NOT_SUPPORTED), cs_error_t));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(decltype(EVS_ERR_SECURITY), cs_error_t));
EVS_ABI_ASSERT(EVS_ABI_SAME_TYPE(decltype(EVS_ERR_TOO_MANY_GROUPS), cs_error_t));
#endif

#endif /* RCPG_TESTS_ABI_EVS_LAYOUT_EXPECTATIONS_H */
