// Logging through libqb's log subsystem, with fmt formatting.
#pragma once

#include <fmt/format.h>
#include <qb/qblog.h>

#include <string>
#include <utility>

namespace rcpg::daemon {

void log_setup(const char* program, int priority, bool to_syslog);
void log_teardown();

template <typename... Args>
void log_at(int priority, fmt::format_string<Args...> format, Args&&... args)
{
    const std::string text = fmt::format(format, std::forward<Args>(args)...);
    qb_log(priority, "%s", text.c_str());
}

#define RCPG_LOG_ERROR(...) ::rcpg::daemon::log_at(LOG_ERR, __VA_ARGS__)
#define RCPG_LOG_WARN(...) ::rcpg::daemon::log_at(LOG_WARNING, __VA_ARGS__)
#define RCPG_LOG_INFO(...) ::rcpg::daemon::log_at(LOG_INFO, __VA_ARGS__)
#define RCPG_LOG_DEBUG(...) ::rcpg::daemon::log_at(LOG_DEBUG, __VA_ARGS__)

}  // namespace rcpg::daemon
