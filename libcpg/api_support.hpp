// What the C edges of libcpg and libevs (cpg_api.cpp, evs_api.cpp) share.
#pragma once

#include <corosync/corotypes.h>

#include <cstring>
#include <new>

namespace rcpg::libcpg {

// C callers pass any int for an enum argument (corosync accepts guarantee 99 and
// dispatch mode 0): read its bits, since a C++ load of an out-of-range enum is undefined.
template <typename Enum>
int enum_bits(const Enum& value)
{
    static_assert(sizeof(Enum) == sizeof(int));
    int bits;
    std::memcpy(&bits, &value, sizeof(bits));
    return bits;
}

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

}  // namespace rcpg::libcpg
