#include "daemon/log.hpp"

#include <syslog.h>

namespace rcpg::daemon {

void log_setup(const char* program, int priority, bool to_syslog)
{
    qb_log_init(program, LOG_DAEMON, priority);
    qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, to_syslog ? QB_TRUE : QB_FALSE);
    qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_TRUE);
    qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", priority);
    qb_log_filter_ctl(QB_LOG_SYSLOG, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", priority);
    qb_log_format_set(QB_LOG_STDERR, "%T %N [%p] %b");
}

void log_teardown() { qb_log_fini(); }

}  // namespace rcpg::daemon
