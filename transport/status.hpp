// The transport speaks the common error convention (base/status.hpp) under its own
// namespace, so its code and its callers write transport::Status.
#pragma once

#include "base/status.hpp"

namespace rcpg::transport {

using base::Errc;
using base::errno_status;
using base::Layer;
using base::Result;
using base::Status;
using base::to_string;

}  // namespace rcpg::transport
