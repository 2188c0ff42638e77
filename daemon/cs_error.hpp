// The C edge of the error convention: what rcpgd answers a client when something of its
// own failed (a base::Status) while serving the client's request. The client sees only
// corosync's cs_error_t codes, each one its documentation gives for such a case.
#pragma once

#include "base/status.hpp"

#include <corosync/corotypes.h>

namespace rcpg::daemon {

constexpr cs_error_t to_cs_error(base::Errc code)
{
    switch (code) {
    case base::Errc::ok: return CS_OK;
    case base::Errc::invalid_argument: return CS_ERR_INVALID_PARAM;
    case base::Errc::not_found: return CS_ERR_NOT_EXIST;
    case base::Errc::try_again: return CS_ERR_TRY_AGAIN;
    case base::Errc::refused: return CS_ERR_ACCESS;
    case base::Errc::malformed: return CS_ERR_MESSAGE_ERROR;
    // What the node itself lacks or lost (a device, a mapping, a connection): the
    // request cannot be served now for want of a resource.
    case base::Errc::not_connected:
    case base::Errc::device_error:
    case base::Errc::io_error: return CS_ERR_NO_RESOURCES;
    }
    return CS_ERR_LIBRARY;
}

inline cs_error_t to_cs_error(const base::Status& status) { return to_cs_error(status.code()); }

}  // namespace rcpg::daemon
