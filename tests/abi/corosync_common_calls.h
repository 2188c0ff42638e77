/*
 * Calls the libcorosync_common helpers the way C programs do. C converts any int to
 * cs_error_t (an enum whose range C++ limits to 0..127), so out-of-range codes can only be
 * passed without undefined behaviour from C. The function pointers let one test call
 * rcpg's and corosync's implementations through the same path.
 */
#ifndef RCPG_TESTS_ABI_COROSYNC_COMMON_CALLS_H
#define RCPG_TESTS_ABI_COROSYNC_COMMON_CALLS_H

#include <corosync/corotypes.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef const char *(*cs_strerror_fn)(cs_error_t);
typedef cs_error_t (*cs_error_mapping_fn)(int);

/* cs_strerror((cs_error_t)code). */
const char *call_cs_strerror(cs_strerror_fn cs_strerror_impl, int code);

/* qb_to_cs_error(result) or hdb_error_to_cs(result), as an int. */
int call_cs_error_mapping(cs_error_mapping_fn mapping_impl, int result);

#ifdef __cplusplus
}
#endif

#endif /* RCPG_TESTS_ABI_COROSYNC_COMMON_CALLS_H */
