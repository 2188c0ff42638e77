// rcpgd: the rcpg daemon. main only reads the configuration and the options, and runs the loop.
#include "daemon/config.hpp"
#include "daemon/daemon.hpp"
#include "daemon/log.hpp"

#include <getopt.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

std::atomic<bool> g_stop{false};

void request_stop(int) { g_stop.store(true); }

constexpr const char* kUsage = R"(Usage: rcpgd [OPTIONS]

rcpg daemon: serves corosync CPG clients (libcpg.so.4) on this node. With no options and
no configuration file it runs a one-node cluster on the IPC name $RCPG_IPC (default "rcpg")
and needs no RDMA device.

Options:
  --config FILE         configuration file, in corosync.conf's syntax: its nodelist { } and
                        an optional rcpg { } section (default: $RCPG_CONFIG if set, else
                        /etc/rcpg/rcpg.conf if it exists, else none: a one-node cluster)
  --check-config        read and check the configuration, print a summary of it and exit
                        (status 0 if it is valid, 1 with the error line if not)
  --ipc NAME            IPC service name clients reach it by (default: $RCPG_IPC or "rcpg")
  --nodeid N            this node's id; with a nodelist, which of its nodes this is
                        (default: the node with an address of this host; 1 without one)
  --ring-mib N          delivery ring size in MiB, a power of two >= 8 (default 64)
  --allow-user NAME     let this user (name or uid) connect besides root; repeatable, and
                        added to the configuration's allowed_users
  --allow-group NAME    let members of this primary group (name or gid) connect;
                        repeatable, and added to the configuration's allowed_groups
  --busy-poll-us N      keep polling this long after work before sleeping (default 50)
  --stuck-client-timeout-ms N
                        disconnect a client that read nothing for N ms while the ring is
                        full because of it; its groups see PROCDOWN (default 10000; 0:
                        never, senders get CS_ERR_TRY_AGAIN as long as it stays stuck)
  --client-backlog-mib N
                        a client that falls behind has its unread messages moved out of
                        the ring into memory of its own, up to N MiB (a power of two from
                        8 to 16384; default 256), so nobody waits for it; beyond that it
                        is disconnected and its groups see PROCDOWN. 0: no backlogs, a
                        slow reader holds senders back (CS_ERR_TRY_AGAIN) as long as
                        --stuck-client-timeout-ms allows
  --max-clients N       connections at once, clients and operator tools; more get
                        CS_ERR_NO_RESOURCES (default 1024)
  --max-clients-per-uid N
                        likewise, per user (default 256)
  --max-pinned-mib N    client send memory a cluster node pins for its RDMA device, in
                        all (32 MiB a client from cpg_initialize); more clients get
                        CS_ERR_NO_RESOURCES (default 4096)
  --state-dir DIR       where the ring id is kept across restarts, so that it keeps
                        rising as corosync's does (default /var/lib/rcpg)
  --log-level LEVEL     error, warning, info or debug (default info)
  --syslog              also log to syslog
  -h, --help            show this text and exit
  --version             show the version and exit

Options override the configuration file's values.

Environment:
  RCPG_CONFIG           the configuration file when --config is not given
  RCPG_IPC              the IPC name when --ipc is not given (clients read it too)

Exit status: 0 when stopped by SIGTERM or SIGINT (a cluster node leaves cleanly first);
1 when it cannot start, or when this node lost its cluster (no majority behind it, its
sequencer lost with no successor, a broken device) and stopped: start it again and it
rejoins the running cluster, so a service manager should restart it on failure;
2 for a bad option.
)";

template <typename T>
bool parse_number(std::string_view text, T& value)
{
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    return error == std::errc() && end == text.data() + text.size();
}

int fail(const std::string& message)
{
    std::fprintf(stderr, "rcpgd: %s\nTry 'rcpgd --help'.\n", message.c_str());
    return 2;
}

}  // namespace

int main(int argc, char** argv)
{
    rcpg::daemon::Options options;
    options.ipc_name = rcpg::ipc::ipc_service_name();
    int log_priority = LOG_INFO;
    bool to_syslog = false;

    enum {
        opt_ipc = 256,
        opt_nodeid,
        opt_ring,
        opt_user,
        opt_group,
        opt_busy,
        opt_level,
        opt_syslog,
        opt_version,
        opt_config,
        opt_check_config,
        opt_stuck,
        opt_max_clients,
        opt_max_clients_per_uid,
        opt_max_pinned,
        opt_state_dir,
        opt_backlog,
    };
    static const option long_options[] = {
        {"config", required_argument, nullptr, opt_config},
        {"check-config", no_argument, nullptr, opt_check_config},
        {"ipc", required_argument, nullptr, opt_ipc},
        {"nodeid", required_argument, nullptr, opt_nodeid},
        {"ring-mib", required_argument, nullptr, opt_ring},
        {"allow-user", required_argument, nullptr, opt_user},
        {"allow-group", required_argument, nullptr, opt_group},
        {"busy-poll-us", required_argument, nullptr, opt_busy},
        {"stuck-client-timeout-ms", required_argument, nullptr, opt_stuck},
        {"max-clients", required_argument, nullptr, opt_max_clients},
        {"max-clients-per-uid", required_argument, nullptr, opt_max_clients_per_uid},
        {"max-pinned-mib", required_argument, nullptr, opt_max_pinned},
        {"state-dir", required_argument, nullptr, opt_state_dir},
        {"client-backlog-mib", required_argument, nullptr, opt_backlog},
        {"log-level", required_argument, nullptr, opt_level},
        {"syslog", no_argument, nullptr, opt_syslog},
        {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, opt_version},
        {nullptr, 0, nullptr, 0},
    };
    // First pass: find the configuration file and the one-shot options; the others are
    // applied after the file so that they override it.
    struct Flag {
        int choice;
        std::string value;
    };
    std::vector<Flag> flags;
    std::string config_path;
    bool config_given = false;
    bool check_config = false;
    int choice;
    while ((choice = getopt_long(argc, argv, "h", long_options, nullptr)) != -1) {
        switch (choice) {
        case opt_config:
            if (optarg[0] == '\0') {
                return fail("--config needs a file name");
            }
            config_path = optarg;
            config_given = true;
            break;
        case opt_check_config:
            check_config = true;
            break;
        case 'h':
            std::fputs(kUsage, stdout);
            return 0;
        case opt_version:
            std::printf("rcpgd %s\n", RCPG_VERSION);
            return 0;
        case '?':
            std::fputs(kUsage, stderr);
            return 2;
        default:
            flags.push_back({choice, optarg != nullptr ? optarg : ""});
            break;
        }
    }
    if (optind != argc) {
        return fail(std::string("unexpected argument '") + argv[optind] + "'");
    }

    if (!config_given) {
        const char* from_environment = std::getenv("RCPG_CONFIG");
        if (from_environment != nullptr && from_environment[0] != '\0') {
            config_path = from_environment;
        } else if (::access(rcpg::daemon::kDefaultConfigPath, F_OK) == 0) {
            config_path = rcpg::daemon::kDefaultConfigPath;
        }
    }
    if (!config_path.empty()) {
        const rcpg::base::Status loaded = rcpg::daemon::load_config(config_path, options);
        if (!loaded) {
            // "PATH:LINE: problem", as it is.
            std::fprintf(stderr, check_config ? "%s\n" : "rcpgd: %s\n", loaded.context().c_str());
            return 1;
        }
    }

    // Second pass: the options, over the file's values.
    uint32_t nodeid_flag = 0;
    for (const Flag& flag : flags) {
        const std::string_view value = flag.value;
        switch (flag.choice) {
        case opt_ipc:
            if (value.empty()) {
                return fail("--ipc needs a non-empty name");
            }
            options.ipc_name = value;
            break;
        case opt_nodeid:
            if (!parse_number(value, nodeid_flag) || nodeid_flag == 0) {
                return fail("--nodeid needs a number from 1 to 4294967295");
            }
            options.nodeid = nodeid_flag;  // with a nodelist, resolve_local_node checks it below
            break;
        case opt_ring: {
            uint64_t mib = 0;
            if (!parse_number(value, mib) || mib < 8 || mib > 2048 || (mib & (mib - 1)) != 0) {
                return fail("--ring-mib needs a power of two from 8 to 2048");
            }
            options.ring_bytes = mib << 20;
            break;
        }
        case opt_user: {
            const std::optional<uid_t> uid = rcpg::daemon::user_id(flag.value);
            if (!uid) {
                return fail("--allow-user: no such user '" + flag.value + "'");
            }
            options.allowed_uids.push_back(*uid);
            break;
        }
        case opt_group: {
            const std::optional<gid_t> gid = rcpg::daemon::group_id(flag.value);
            if (!gid) {
                return fail("--allow-group: no such group '" + flag.value + "'");
            }
            options.allowed_gids.push_back(*gid);
            break;
        }
        case opt_busy:
            if (!parse_number(value, options.busy_poll_us) || options.busy_poll_us > 1'000'000) {
                return fail("--busy-poll-us needs a number from 0 to 1000000");
            }
            break;
        case opt_stuck:
            if (!parse_number(value, options.stuck_client_timeout_ms) ||
                options.stuck_client_timeout_ms > 3'600'000) {
                return fail("--stuck-client-timeout-ms needs a number from 0 to 3600000");
            }
            break;
        case opt_max_pinned: {
            uint64_t mib = 0;
            if (!parse_number(value, mib) || mib < 32 || mib > (1ull << 24)) {
                return fail("--max-pinned-mib needs a number from 32 to 16777216");
            }
            options.max_pinned_bytes = mib << 20;
            break;
        }
        case opt_max_clients:
        case opt_max_clients_per_uid: {
            uint32_t& limit = flag.choice == opt_max_clients ? options.max_clients : options.max_clients_per_uid;
            if (!parse_number(value, limit) || limit == 0 || limit > 1'000'000) {
                return fail(std::string(flag.choice == opt_max_clients ? "--max-clients" : "--max-clients-per-uid") +
                            " needs a number from 1 to 1000000");
            }
            break;
        }
        case opt_level:
            if (value == "error") {
                log_priority = LOG_ERR;
            } else if (value == "warning") {
                log_priority = LOG_WARNING;
            } else if (value == "info") {
                log_priority = LOG_INFO;
            } else if (value == "debug") {
                log_priority = LOG_DEBUG;
            } else {
                return fail("--log-level needs error, warning, info or debug");
            }
            break;
        case opt_syslog:
            to_syslog = true;
            break;
        case opt_backlog: {
            uint64_t mib = 0;
            if (!parse_number(value, mib) || (mib != 0 && (mib < 8 || mib > 16384 || (mib & (mib - 1)) != 0))) {
                return fail("--client-backlog-mib needs 0 or a power of two from 8 to 16384");
            }
            options.client_backlog_bytes = mib << 20;
            break;
        }
        case opt_state_dir:
            if (value.empty() || value.front() != '/') {
                return fail("--state-dir needs an absolute path");
            }
            options.state_dir = value;
            break;
        default:
            std::fputs(kUsage, stderr);
            return 2;
        }
    }

    if (const rcpg::base::Status resolved = rcpg::daemon::resolve_local_node(options, nodeid_flag); !resolved) {
        std::fprintf(stderr, check_config ? "%s\n" : "rcpgd: %s\n", resolved.context().c_str());
        return 1;
    }
    if (check_config) {
        if (config_path.empty()) {
            std::printf("no configuration file: no --config, no $RCPG_CONFIG and no %s; rcpgd runs the one-node "
                        "default\n",
                        rcpg::daemon::kDefaultConfigPath);
        }
        std::fputs(rcpg::daemon::describe(options).c_str(), stdout);
        std::puts("configuration OK");
        return 0;
    }

    rcpg::daemon::log_setup("rcpgd", log_priority, to_syslog);
    struct sigaction stop_action{};
    stop_action.sa_handler = request_stop;
    sigaction(SIGTERM, &stop_action, nullptr);
    sigaction(SIGINT, &stop_action, nullptr);
    signal(SIGPIPE, SIG_IGN);

    auto created = rcpg::daemon::Daemon::create(options);
    if (!created) {
        RCPG_LOG_ERROR("cannot start: {}", created.status().message());
        rcpg::daemon::log_teardown();
        return 1;
    }
    std::unique_ptr<rcpg::daemon::Daemon> daemon = std::move(*created);
    daemon->run(g_stop);
    // Its clients got CS_ERR_LIBRARY already; the status tells a service manager that
    // this stop needs a restart, which rejoins the running cluster.
    const bool lost_cluster = daemon->failed();
    if (lost_cluster) {
        RCPG_LOG_ERROR("rcpgd stopping: this node cannot go on in its cluster; start it again to rejoin");
    } else {
        RCPG_LOG_INFO("rcpgd stopping");
    }
    daemon.reset();
    rcpg::daemon::log_teardown();
    return lost_cluster ? 1 : 0;
}
