// libcorosync_common.so.4: the three error helpers every corosync client library shares.
//
// Programs print cs_strerror() output and branch on the mapped codes, so the strings and
// the errno mappings are those of corosync 3.1.7 exactly, including its choices that look
// arbitrary (ENOMSG and ETIMEDOUT are "try again", ETIME is "timeout", EOVERFLOW is "name
// too long"). Nothing here may allocate or fail: callers use these on their error paths.

#include <corosync/corotypes.h>

#include <cerrno>
#include <cstring>

#define RCPG_EXPORT __attribute__((visibility("default")))

namespace {

// C callers pass any int through the cs_error_t parameter, but C++ only defines enum
// values 0..127 for it. Copying the bytes into an int never reads the parameter as the
// enum, so unknown codes stay well defined (std::bit_cast still trips -fsanitize=enum).
static_assert(sizeof(cs_error_t) == sizeof(int), "cs_error_t is int-sized in the C ABI");

int error_code_bits(const cs_error_t& err)
{
    int code = 0;
    std::memcpy(&code, &err, sizeof code);
    return code;
}

} // namespace

extern "C" {

RCPG_EXPORT const char* cs_strerror(cs_error_t err)
{
    switch (error_code_bits(err)) {
    case CS_OK: return "success";
    case CS_ERR_LIBRARY: return "CS_ERR_LIBRARY";
    case CS_ERR_VERSION: return "CS_ERR_VERSION";
    case CS_ERR_INIT: return "CS_ERR_INIT";
    case CS_ERR_TIMEOUT: return "CS_ERR_TIMEOUT";
    case CS_ERR_TRY_AGAIN: return "CS_ERR_TRY_AGAIN";
    case CS_ERR_INVALID_PARAM: return "CS_ERR_INVALID_PARAM";
    case CS_ERR_NO_MEMORY: return "CS_ERR_NO_MEMORY";
    case CS_ERR_BAD_HANDLE: return "CS_ERR_BAD_HANDLE";
    case CS_ERR_BUSY: return "CS_ERR_BUSY";
    case CS_ERR_ACCESS: return "CS_ERR_ACCESS";
    case CS_ERR_NOT_EXIST: return "CS_ERR_NOT_EXIST";
    case CS_ERR_NAME_TOO_LONG: return "CS_ERR_NAME_TOO_LONG";
    case CS_ERR_EXIST: return "CS_ERR_EXIST";
    case CS_ERR_NO_SPACE: return "CS_ERR_NO_SPACE";
    case CS_ERR_INTERRUPT: return "CS_ERR_INTERRUPT";
    case CS_ERR_NAME_NOT_FOUND: return "CS_ERR_NAME_NOT_FOUND";
    case CS_ERR_NO_RESOURCES: return "CS_ERR_NO_RESOURCES";
    case CS_ERR_NOT_SUPPORTED: return "CS_ERR_NOT_SUPPORTED";
    case CS_ERR_BAD_OPERATION: return "CS_ERR_BAD_OPERATION";
    case CS_ERR_FAILED_OPERATION: return "CS_ERR_FAILED_OPERATION";
    case CS_ERR_MESSAGE_ERROR: return "CS_ERR_MESSAGE_ERROR";
    case CS_ERR_QUEUE_FULL: return "CS_ERR_QUEUE_FULL";
    case CS_ERR_QUEUE_NOT_AVAILABLE: return "CS_ERR_QUEUE_NOT_AVAILABLE";
    case CS_ERR_BAD_FLAGS: return "CS_ERR_BAD_FLAGS";
    case CS_ERR_TOO_BIG: return "CS_ERR_TOO_BIG";
    case CS_ERR_NO_SECTIONS: return "CS_ERR_NO_SECTIONS";
    case CS_ERR_CONTEXT_NOT_FOUND: return "CS_ERR_CONTEXT_NOT_FOUND";
    case CS_ERR_TOO_MANY_GROUPS: return "CS_ERR_TOO_MANY_GROUPS";
    case CS_ERR_SECURITY: return "CS_ERR_SECURITY";
    default: return "unknown error"; // callers pass the result straight to printf("%s")
    }
}

// libqb reports success as >= 0 and failure as -errno. The cases are negative constants,
// so INT_MIN needs no negation and falls through to CS_ERR_LIBRARY like any unknown errno.
RCPG_EXPORT cs_error_t qb_to_cs_error(int result)
{
    if (result >= 0) {
        return CS_OK;
    }
    switch (result) {
    case -EBADF: return CS_ERR_BAD_HANDLE;
    case -ENOMEM: return CS_ERR_NO_MEMORY;
    case -ENOMSG:
    case -ENOBUFS:
    case -ETIMEDOUT:
    case -EAGAIN: return CS_ERR_TRY_AGAIN;
    case -EBADE: return CS_ERR_FAILED_OPERATION;
    case -ETIME: return CS_ERR_TIMEOUT;
    case -EINVAL: return CS_ERR_INVALID_PARAM;
    case -EBUSY: return CS_ERR_BUSY;
    case -EACCES: return CS_ERR_ACCESS;
    case -EOVERFLOW: return CS_ERR_NAME_TOO_LONG;
    case -EEXIST: return CS_ERR_EXIST;
    case -ENOSPC: return CS_ERR_NO_SPACE;
    case -EINTR: return CS_ERR_INTERRUPT;
    case -ENOENT:
    case -ENODEV: return CS_ERR_NOT_EXIST;
    case -ENOSYS:
    case -ENOTSUP: return CS_ERR_NOT_SUPPORTED;
    case -EBADMSG: return CS_ERR_MESSAGE_ERROR;
    case -EMSGSIZE:
    case -E2BIG: return CS_ERR_TOO_BIG;
    // A lost daemon (ECONNREFUSED, ENOTCONN, EPIPE) lands here: clients treat
    // CS_ERR_LIBRARY as "reconnect", which is the right reaction to those.
    default: return CS_ERR_LIBRARY;
    }
}

// libqb's handle database only fails with these four errnos; anything else, positive
// values included, means the caller passed something that did not come from it.
RCPG_EXPORT cs_error_t hdb_error_to_cs(int res)
{
    switch (res) {
    case 0: return CS_OK;
    case -EBADF: return CS_ERR_BAD_HANDLE;
    case -ENOMEM: return CS_ERR_NO_MEMORY;
    case -EMFILE: return CS_ERR_NO_RESOURCES;
    case -EACCES: return CS_ERR_ACCESS;
    default: return CS_ERR_LIBRARY;
    }
}

} // extern "C"
