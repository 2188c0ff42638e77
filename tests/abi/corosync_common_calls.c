#include "corosync_common_calls.h"

const char *call_cs_strerror(cs_strerror_fn cs_strerror_impl, int code)
{
    return cs_strerror_impl((cs_error_t)code);
}

int call_cs_error_mapping(cs_error_mapping_fn mapping_impl, int result)
{
    return (int)mapping_impl(result);
}
