// Assertions in two tiers.
//
// RCPG_ASSERT(condition, format, args...): always on. For the protocol's invariants
// (ring positions, sequence numbers, credits, state transitions): a node that goes on
// after breaking one would hand every other node and every client a wrong order, so it
// stops at once, naming the place and the values. Never for input from outside (a
// client, a peer, a file): those are checked and refused, not asserted.
//
// RCPG_DEBUG_ASSERT(condition, format, args...): only where NDEBUG is not defined (the
// sanitizer and debug builds); for checks too costly for the hot path.
//
// The message is formatted only when the check fails.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace rcpg::base {

[[noreturn]] inline void assertion_failed(const char* condition, const char* file, int line, const std::string& message)
{
    std::fprintf(stderr, "%s:%d: invariant broken: %s (%s)\n", file, line, message.c_str(), condition);
    std::fflush(stderr);
    std::abort();
}

}  // namespace rcpg::base

#define RCPG_ASSERT(condition, ...)                                                                            \
    ((condition) ? static_cast<void>(0)                                                                        \
                 : ::rcpg::base::assertion_failed(#condition, __FILE__, __LINE__, ::fmt::format(__VA_ARGS__)))

#ifdef NDEBUG
#define RCPG_DEBUG_ASSERT(condition, ...) static_cast<void>(0)
#else
#define RCPG_DEBUG_ASSERT(condition, ...) RCPG_ASSERT(condition, __VA_ARGS__)
#endif
