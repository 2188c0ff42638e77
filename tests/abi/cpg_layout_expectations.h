/*
 * The binary layout of <corosync/cpg.h> as corosync 3.1.7 defines it on x86_64 (contract
 * section 2): sizes, alignments and offsets of every struct, enumerator values, constants,
 * and the exact types of the callbacks and API functions.
 *
 * Every check is a compile-time assertion, so a mismatch stops the build. The file is
 * compiled against rcpg's header (as C11 and as C++20) and against Debian's header; the
 * Debian build is what shows the expectations below are corosync's, not invented.
 *
 * Include it right after <corosync/cpg.h>; it includes nothing itself, so the header under
 * test has to stand on its own.
 */
#ifndef RCPG_TESTS_ABI_CPG_LAYOUT_EXPECTATIONS_H
#define RCPG_TESTS_ABI_CPG_LAYOUT_EXPECTATIONS_H

#ifndef COROSYNC_CPG_H_DEFINED
#error "include <corosync/cpg.h> before cpg_layout_expectations.h"
#endif

#ifdef __cplusplus
/* Exact type identity. C's __builtin_types_compatible_p is weaker (an enum is compatible
 * with its underlying integer type), so the C++ build is the stricter of the two. */
template <class First, class Second> struct abi_same_type { static constexpr bool value = false; };
template <class Only> struct abi_same_type<Only, Only> { static constexpr bool value = true; };
#define ABI_ASSERT(condition) static_assert(condition, #condition)
#define ABI_ALIGNOF(type) alignof(type)
#define ABI_TYPEOF(expression) decltype(expression)
#define ABI_SAME_TYPE(first, second) (abi_same_type<first, second>::value)
#else
#define ABI_ASSERT(condition) _Static_assert(condition, #condition)
#define ABI_ALIGNOF(type) _Alignof(type)
#define ABI_TYPEOF(expression) __typeof__(expression)
#define ABI_SAME_TYPE(first, second) __builtin_types_compatible_p(first, second)
#endif

/* __builtin_offsetof rather than offsetof: the latter would need <stddef.h> from here. */
#define ABI_OFFSETOF(type, member) __builtin_offsetof(type, member)
#define ABI_MEMBER_SIZE(type, member) sizeof(((type *)0)->member)
#define ABI_MEMBER_TYPE(type, member) ABI_TYPEOF(((type *)0)->member)

/* A member at an offset, with a size and a type: the three things a compiled caller bakes in. */
#define ABI_ASSERT_MEMBER(type, member, offset, member_type)         \
    ABI_ASSERT(ABI_OFFSETOF(type, member) == (offset));              \
    ABI_ASSERT(ABI_MEMBER_SIZE(type, member) == sizeof(member_type)); \
    ABI_ASSERT(ABI_SAME_TYPE(ABI_MEMBER_TYPE(type, member), member_type))

#define ABI_ASSERT_SIZE_ALIGN(type, size_bytes, align_bytes) \
    ABI_ASSERT(sizeof(type) == (size_bytes));                \
    ABI_ASSERT(ABI_ALIGNOF(type) == (align_bytes))

/* ---- 2.1 constants ---- */

ABI_ASSERT(CPG_MAX_NAME_LENGTH == 128);
ABI_ASSERT(CPG_MEMBERS_MAX == 128);
ABI_ASSERT(CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF == 0x01);
ABI_ASSERT(CS_MAX_NAME_LENGTH == 256);
ABI_ASSERT(CS_IPC_TIMEOUT_MS == -1);
ABI_ASSERT(CS_TRACK_CURRENT == 1);
ABI_ASSERT(CS_TRACK_CHANGES == 2);
ABI_ASSERT(CS_TRACK_CHANGES_ONLY == 4);
/* Parenthesised: CS_TRUE is defined as !CS_FALSE, without parentheses, as in corosync. */
ABI_ASSERT((CS_TRUE) == 1);
ABI_ASSERT(CS_FALSE == 0);
ABI_ASSERT(CS_TIME_END == 0x7FFFFFFFFFFFFFFFLL);
ABI_ASSERT(CS_TIME_MS_IN_SEC == 1000ULL);
ABI_ASSERT(CS_TIME_US_IN_SEC == 1000000ULL);
ABI_ASSERT(CS_TIME_NS_IN_SEC == 1000000000ULL);
ABI_ASSERT(CS_TIME_US_IN_MSEC == 1000ULL);
ABI_ASSERT(CS_TIME_NS_IN_MSEC == 1000000ULL);
ABI_ASSERT(CS_TIME_NS_IN_USEC == 1000ULL);

/* ---- 2.2 scalar types and enums ---- */

ABI_ASSERT(ABI_SAME_TYPE(cpg_handle_t, uint64_t));
ABI_ASSERT(ABI_SAME_TYPE(cpg_iteration_handle_t, uint64_t));
ABI_ASSERT(ABI_SAME_TYPE(cs_time_t, int64_t));
ABI_ASSERT_SIZE_ALIGN(cpg_handle_t, 8, 8);
ABI_ASSERT_SIZE_ALIGN(cpg_iteration_handle_t, 8, 8);
ABI_ASSERT_SIZE_ALIGN(cs_time_t, 8, 8);

ABI_ASSERT_SIZE_ALIGN(cpg_guarantee_t, 4, 4);
ABI_ASSERT(CPG_TYPE_UNORDERED == 0);
ABI_ASSERT(CPG_TYPE_FIFO == 1);
ABI_ASSERT(CPG_TYPE_AGREED == 2);
ABI_ASSERT(CPG_TYPE_SAFE == 3);

ABI_ASSERT_SIZE_ALIGN(cpg_flow_control_state_t, 4, 4);
ABI_ASSERT(CPG_FLOW_CONTROL_DISABLED == 0);
ABI_ASSERT(CPG_FLOW_CONTROL_ENABLED == 1);

ABI_ASSERT_SIZE_ALIGN(cpg_reason_t, 4, 4);
ABI_ASSERT(CPG_REASON_UNDEFINED == 0);
ABI_ASSERT(CPG_REASON_JOIN == 1);
ABI_ASSERT(CPG_REASON_LEAVE == 2);
ABI_ASSERT(CPG_REASON_NODEDOWN == 3);
ABI_ASSERT(CPG_REASON_NODEUP == 4);
ABI_ASSERT(CPG_REASON_PROCDOWN == 5);

ABI_ASSERT_SIZE_ALIGN(cpg_iteration_type_t, 4, 4);
ABI_ASSERT(CPG_ITERATION_NAME_ONLY == 1);
ABI_ASSERT(CPG_ITERATION_ONE_GROUP == 2);
ABI_ASSERT(CPG_ITERATION_ALL == 3);

ABI_ASSERT_SIZE_ALIGN(cpg_model_t, 4, 4);
ABI_ASSERT(CPG_MODEL_V1 == 1);

ABI_ASSERT_SIZE_ALIGN(cs_dispatch_flags_t, 4, 4);
ABI_ASSERT(CS_DISPATCH_ONE == 1);
ABI_ASSERT(CS_DISPATCH_ALL == 2);
ABI_ASSERT(CS_DISPATCH_BLOCKING == 3);
ABI_ASSERT(CS_DISPATCH_ONE_NONBLOCKING == 4);

/* Section 3.1: success is 1, and 29 is a gap. */
ABI_ASSERT_SIZE_ALIGN(cs_error_t, 4, 4);
ABI_ASSERT(CS_OK == 1);
ABI_ASSERT(CS_ERR_LIBRARY == 2);
ABI_ASSERT(CS_ERR_VERSION == 3);
ABI_ASSERT(CS_ERR_INIT == 4);
ABI_ASSERT(CS_ERR_TIMEOUT == 5);
ABI_ASSERT(CS_ERR_TRY_AGAIN == 6);
ABI_ASSERT(CS_ERR_INVALID_PARAM == 7);
ABI_ASSERT(CS_ERR_NO_MEMORY == 8);
ABI_ASSERT(CS_ERR_BAD_HANDLE == 9);
ABI_ASSERT(CS_ERR_BUSY == 10);
ABI_ASSERT(CS_ERR_ACCESS == 11);
ABI_ASSERT(CS_ERR_NOT_EXIST == 12);
ABI_ASSERT(CS_ERR_NAME_TOO_LONG == 13);
ABI_ASSERT(CS_ERR_EXIST == 14);
ABI_ASSERT(CS_ERR_NO_SPACE == 15);
ABI_ASSERT(CS_ERR_INTERRUPT == 16);
ABI_ASSERT(CS_ERR_NAME_NOT_FOUND == 17);
ABI_ASSERT(CS_ERR_NO_RESOURCES == 18);
ABI_ASSERT(CS_ERR_NOT_SUPPORTED == 19);
ABI_ASSERT(CS_ERR_BAD_OPERATION == 20);
ABI_ASSERT(CS_ERR_FAILED_OPERATION == 21);
ABI_ASSERT(CS_ERR_MESSAGE_ERROR == 22);
ABI_ASSERT(CS_ERR_QUEUE_FULL == 23);
ABI_ASSERT(CS_ERR_QUEUE_NOT_AVAILABLE == 24);
ABI_ASSERT(CS_ERR_BAD_FLAGS == 25);
ABI_ASSERT(CS_ERR_TOO_BIG == 26);
ABI_ASSERT(CS_ERR_NO_SECTIONS == 27);
ABI_ASSERT(CS_ERR_CONTEXT_NOT_FOUND == 28);
ABI_ASSERT(CS_ERR_TOO_MANY_GROUPS == 30);
ABI_ASSERT(CS_ERR_SECURITY == 100);

/* ---- 2.3 struct layouts ---- */

ABI_ASSERT_SIZE_ALIGN(struct cpg_address, 12, 4);
ABI_ASSERT_MEMBER(struct cpg_address, nodeid, 0, uint32_t);
ABI_ASSERT_MEMBER(struct cpg_address, pid, 4, uint32_t);
ABI_ASSERT_MEMBER(struct cpg_address, reason, 8, uint32_t);

ABI_ASSERT_SIZE_ALIGN(struct cpg_name, 132, 4);
ABI_ASSERT_MEMBER(struct cpg_name, length, 0, uint32_t);
ABI_ASSERT_MEMBER(struct cpg_name, value, 4, char[128]);

ABI_ASSERT_SIZE_ALIGN(struct cpg_iteration_description_t, 140, 4);
ABI_ASSERT_MEMBER(struct cpg_iteration_description_t, group, 0, struct cpg_name);
ABI_ASSERT_MEMBER(struct cpg_iteration_description_t, nodeid, 132, uint32_t);
ABI_ASSERT_MEMBER(struct cpg_iteration_description_t, pid, 136, uint32_t);

/* Four padding bytes after nodeid: seq is 8-aligned. */
ABI_ASSERT_SIZE_ALIGN(struct cpg_ring_id, 16, 8);
ABI_ASSERT_MEMBER(struct cpg_ring_id, nodeid, 0, uint32_t);
ABI_ASSERT_MEMBER(struct cpg_ring_id, seq, 8, uint64_t);

ABI_ASSERT_SIZE_ALIGN(cpg_callbacks_t, 16, 8);
ABI_ASSERT_MEMBER(cpg_callbacks_t, cpg_deliver_fn, 0, cpg_deliver_fn_t);
ABI_ASSERT_MEMBER(cpg_callbacks_t, cpg_confchg_fn, 8, cpg_confchg_fn_t);

ABI_ASSERT_SIZE_ALIGN(cpg_model_data_t, 4, 4);
ABI_ASSERT_MEMBER(cpg_model_data_t, model, 0, cpg_model_t);

/* cpg_model_initialize() copies all 40 bytes whatever model_data->model says. */
ABI_ASSERT_SIZE_ALIGN(cpg_model_v1_data_t, 40, 8);
ABI_ASSERT_MEMBER(cpg_model_v1_data_t, model, 0, cpg_model_t);
ABI_ASSERT_MEMBER(cpg_model_v1_data_t, cpg_deliver_fn, 8, cpg_deliver_fn_t);
ABI_ASSERT_MEMBER(cpg_model_v1_data_t, cpg_confchg_fn, 16, cpg_confchg_fn_t);
ABI_ASSERT_MEMBER(cpg_model_v1_data_t, cpg_totem_confchg_fn, 24, cpg_totem_confchg_fn_t);
ABI_ASSERT_MEMBER(cpg_model_v1_data_t, flags, 32, unsigned int);

ABI_ASSERT_SIZE_ALIGN(cs_name_t, 258, 2);
ABI_ASSERT_MEMBER(cs_name_t, length, 0, uint16_t);
ABI_ASSERT_MEMBER(cs_name_t, value, 2, uint8_t[256]);

ABI_ASSERT_SIZE_ALIGN(cs_version_t, 3, 1);
ABI_ASSERT_MEMBER(cs_version_t, releaseCode, 0, char);
ABI_ASSERT_MEMBER(cs_version_t, majorVersion, 1, unsigned char);
ABI_ASSERT_MEMBER(cs_version_t, minorVersion, 2, unsigned char);

/* ---- 2.4 callback types: the parameter lists decide the calling convention ---- */

/* msg is deliberately not const: receivers byte-swap in place. */
ABI_ASSERT(ABI_SAME_TYPE(cpg_deliver_fn_t,
                         void (*)(cpg_handle_t, const struct cpg_name *, uint32_t, uint32_t,
                                  void *, size_t)));
ABI_ASSERT(ABI_SAME_TYPE(cpg_confchg_fn_t,
                         void (*)(cpg_handle_t, const struct cpg_name *,
                                  const struct cpg_address *, size_t,
                                  const struct cpg_address *, size_t,
                                  const struct cpg_address *, size_t)));
/* The ring id is passed by value: 16 bytes in two integer registers on SysV x86_64. */
ABI_ASSERT(ABI_SAME_TYPE(cpg_totem_confchg_fn_t,
                         void (*)(cpg_handle_t, struct cpg_ring_id, uint32_t, const uint32_t *)));

/* ---- the API functions (section 4): a prototype mismatch breaks compiled callers ---- */

ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(cpg_initialize),
                         cs_error_t(cpg_handle_t *, cpg_callbacks_t *)));
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(cpg_model_initialize),
                         cs_error_t(cpg_handle_t *, cpg_model_t, cpg_model_data_t *, void *)));
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(cpg_finalize), cs_error_t(cpg_handle_t)));
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(cpg_fd_get), cs_error_t(cpg_handle_t, int *)));
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(cpg_max_atomic_msgsize_get),
                         cs_error_t(cpg_handle_t, uint32_t *)));
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(cpg_context_get), cs_error_t(cpg_handle_t, void **)));
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(cpg_context_set), cs_error_t(cpg_handle_t, void *)));
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(cpg_dispatch), cs_error_t(cpg_handle_t, cs_dispatch_flags_t)));
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(cpg_join), cs_error_t(cpg_handle_t, const struct cpg_name *)));
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(cpg_leave), cs_error_t(cpg_handle_t, const struct cpg_name *)));
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(cpg_mcast_joined),
                         cs_error_t(cpg_handle_t, cpg_guarantee_t, const struct iovec *,
                                    unsigned int)));
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(cpg_membership_get),
                         cs_error_t(cpg_handle_t, struct cpg_name *, struct cpg_address *, int *)));
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(cpg_local_get), cs_error_t(cpg_handle_t, unsigned int *)));
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(cpg_flow_control_state_get),
                         cs_error_t(cpg_handle_t, cpg_flow_control_state_t *)));
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(cpg_zcb_alloc), cs_error_t(cpg_handle_t, size_t, void **)));
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(cpg_zcb_free), cs_error_t(cpg_handle_t, void *)));
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(cpg_zcb_mcast_joined),
                         cs_error_t(cpg_handle_t, cpg_guarantee_t, void *, size_t)));
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(cpg_iteration_initialize),
                         cs_error_t(cpg_handle_t, cpg_iteration_type_t, const struct cpg_name *,
                                    cpg_iteration_handle_t *)));
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(cpg_iteration_next),
                         cs_error_t(cpg_iteration_handle_t, struct cpg_iteration_description_t *)));
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(cpg_iteration_finalize), cs_error_t(cpg_iteration_handle_t)));

/* libcorosync_common's three functions (corotypes.h, included by cpg.h). */
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(cs_strerror), const char *(cs_error_t)));
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(qb_to_cs_error), cs_error_t(int)));
ABI_ASSERT(ABI_SAME_TYPE(ABI_TYPEOF(hdb_error_to_cs), cs_error_t(int)));

#endif /* RCPG_TESTS_ABI_CPG_LAYOUT_EXPECTATIONS_H */
