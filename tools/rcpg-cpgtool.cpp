// rcpg-cpgtool: what an rcpgd knows, for operators, in the manner of corosync-cpgtool:
// the node, its role and view, the groups and their members, and the daemon's counters.
//
// It asks the daemon over libcpg's own IPC with the three requests that need no init
// (libcpg/ipc/protocol.hpp): status, the iteration snapshot that cpg_iteration_* reads,
// so the groups it lists are exactly what clients iterate, and the EVS clients' groups. It never becomes a
// client itself: it maps no shared memory, holds nothing of the delivery ring, and is
// not among the local clients it reports.
#include "base/status.hpp"
#include "libcpg/ipc/fd_passing.hpp"
#include "libcpg/ipc/protocol.hpp"

#include <corosync/cpg.h>
#include <fmt/core.h>
#include <getopt.h>
#include <qb/qbipcc.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace rcpg;

// A daemon that has not answered by then is stuck: say so instead of hanging a script.
constexpr int32_t kRequestTimeoutMs = 5000;

constexpr const char* kUsage = R"(Usage: rcpg-cpgtool [OPTIONS]

Shows what the rcpgd of this node knows, like corosync-cpgtool: the node and its role,
the view, the groups and their members, and the daemon's counters. It only asks: it
joins nothing, and does not count as a client.

Options:
  --ipc NAME     ask the rcpgd serving IPC name NAME (default: $RCPG_IPC, else "rcpg");
                 repeatable, to ask several daemons (e.g. the nodes of scripts/cluster.sh,
                 rcpg-node1, rcpg-node2, ...) in one call, one block each
  --nodes        show the node section: node id, role (single, sequencer or member), the
                 sequencer, the ring id (sequencer node id . ring seq), the view; at the
                 sequencer also each other configured node: its state, its replication
                 lag (bytes sequenced, not yet written into its ring), the bytes of its
                 ring it had not released when it last reported (it reports lazily), and
                 how full its inbound ring is
  --groups       show the groups and their members (node id, pid), as cpg_iteration_*
                 with CPG_ITERATION_ALL returns them
  --evs          show this node's EVS (libevs) clients and the groups each joined (EVS
                 groups are local to a handle: other nodes' clients are not listed);
                 a key is shown up to its trailing zero bytes
  --counters     show the number of local clients, the delivery ring's fill and flow
                 control, and the counters since the daemon started: messages and bytes
                 sequenced, delivered into this node's ring and forwarded to the
                 sequencer, confchgs sequenced, flow-control and ring-full events, RDMA
                 errors, protocol violations, payloads the sequencer's device copied
                 into its ring
                 (with none of --nodes, --groups, --evs, --counters: all four)
  --kv           machine-readable output: one key=value line each, blocks separated by
                 an empty line, each starting with ipc=NAME; sizes in bytes; in group
                 names and EVS keys, \ is written \\ and other bytes outside printable
                 ASCII \xHH (in the space-separated key lists of --evs, spaces too)
  -h, --help     show this text and exit
  --version      show the version and exit

Exit status: 0 if every daemon answered, 1 if one did not (not running, access denied,
too old), 2 for a bad option.

Environment:
  RCPG_IPC       the IPC name when --ipc is not given, as for rcpgd and its clients
)";

enum Section : unsigned { kNodes = 1u << 0, kGroups = 1u << 1, kCounters = 1u << 2, kEvs = 1u << 3 };

struct Report {
    ipc::StatusResponse status;
    std::vector<cpg_iteration_description_t> members;  // in the daemon's order
    ipc::EvsGroupsListing evs;
};

// An EVS client and its groups (escaped keys), in the daemon's order.
struct EvsClient {
    uint32_t pid = 0;
    std::vector<std::string> keys;
};

struct Group {
    std::string name;  // escaped
    std::vector<const cpg_iteration_description_t*> members;
};

class Connection {
public:
    explicit Connection(qb_ipcc_connection_t* connection) : connection_(connection) {}
    ~Connection()
    {
        if (connection_ != nullptr) {
            qb_ipcc_disconnect(connection_);
        }
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    qb_ipcc_connection_t* get() const { return connection_; }

private:
    qb_ipcc_connection_t* connection_;
};

// A failure of the tool's exchange with rcpgd: its context is the line printed.
base::Status failure(base::Errc code, std::string text) { return {code, base::Layer::system, std::move(text)}; }

// Sends `request` and receives the answer into `response`. Returns the bytes received,
// or why not.
base::Result<size_t> ask(qb_ipcc_connection_t* connection, const std::string& ipc_name, const void* request,
                         size_t request_bytes, void* response, size_t response_bytes)
{
    iovec part{const_cast<void*>(request), request_bytes};
    const ssize_t received = qb_ipcc_sendv_recv(connection, &part, 1, response, response_bytes, kRequestTimeoutMs);
    if (received < 0) {
        return failure(base::Errc::io_error, fmt::format("rcpgd on IPC name '{}' did not answer: {}", ipc_name,
                                                         std::strerror(static_cast<int>(-received))));
    }
    qb_ipc_response_header header;
    if (static_cast<size_t>(received) < sizeof(header)) {
        return failure(base::Errc::malformed,
                       fmt::format("rcpgd on IPC name '{}' sent a truncated answer ({} bytes)", ipc_name, received));
    }
    std::memcpy(&header, response, sizeof(header));
    if (header.error == CS_ERR_MESSAGE_ERROR || header.error == CS_ERR_INIT) {
        return failure(base::Errc::refused,
                       fmt::format("rcpgd on IPC name '{}' does not answer operator requests (older than this tool?)",
                                   ipc_name));
    }
    if (header.error != CS_OK) {
        return failure(base::Errc::refused,
                       fmt::format("rcpgd on IPC name '{}' refused the request: error {}", ipc_name, header.error));
    }
    return static_cast<size_t>(received);
}

base::Result<Report> query(const std::string& ipc_name)
{
    Connection connection(qb_ipcc_connect(ipc_name.c_str(), ipc::kIpcMaxMessageBytes));
    if (connection.get() == nullptr) {
        const int cause = errno;
        if (cause == EACCES || cause == EPERM) {
            return failure(base::Errc::refused,
                           fmt::format("rcpgd on IPC name '{}' refused this user: only root and the users and groups "
                                       "it allows (--allow-user, --allow-group) may ask",
                                       ipc_name));
        }
        return failure(base::Errc::not_connected,
                       fmt::format("cannot reach rcpgd on IPC name '{}': {} (is rcpgd running with RCPG_IPC={}?)",
                                   ipc_name, std::strerror(cause), ipc_name));
    }
    pid_t server_pid = 0;
    uid_t server_uid = 0;
    gid_t server_gid = 0;
    if (qb_ipcc_auth_get(connection.get(), &server_pid, &server_uid, &server_gid) != 0 ||
        !ipc::trusted_server_uid(server_uid)) {
        return failure(base::Errc::refused,
                       fmt::format("the server on IPC name '{}' runs as uid {}, which is not rcpgd's user (root, "
                                   "this user, or $RCPG_DAEMON_USER): not asked",
                                   ipc_name, server_uid));
    }
    Report report{};
    ipc::BareRequest status_request{};
    status_request.header = {static_cast<int32_t>(ipc::RequestId::status), sizeof(status_request)};
    auto received = ask(connection.get(), ipc_name, &status_request, sizeof(status_request), &report.status,
                        sizeof(report.status));
    if (!received) {
        return received.status();
    }
    const ipc::StatusResponse& status = report.status;
    if (*received != sizeof(status)) {
        return failure(base::Errc::malformed, fmt::format("rcpgd on IPC name '{}' sent a status of {} bytes (expected {})",
                                                          ipc_name, *received, sizeof(status)));
    }

    ipc::IterationRequest members_request{};
    members_request.header = {static_cast<int32_t>(ipc::RequestId::iteration_snapshot), sizeof(members_request)};
    members_request.iteration_type = CPG_ITERATION_ALL;
    const auto reply = std::make_unique_for_overwrite<std::byte[]>(ipc::kIpcMaxMessageBytes);
    received = ask(connection.get(), ipc_name, &members_request, sizeof(members_request), reply.get(),
                   ipc::kIpcMaxMessageBytes);
    if (!received) {
        return received.status();
    }
    ipc::ListResponse list;
    std::memcpy(&list, reply.get(), std::min(sizeof(list), *received));
    if (*received < sizeof(list) ||
        *received != sizeof(list) + size_t{list.count} * sizeof(cpg_iteration_description_t)) {
        return failure(base::Errc::malformed, fmt::format("rcpgd on IPC name '{}' sent a malformed group list", ipc_name));
    }
    report.members.resize(list.count);
    if (list.count > 0) {  // an empty vector's data() may be null, which memcpy must not get
        std::memcpy(report.members.data(), reply.get() + sizeof(list),
                    list.count * sizeof(cpg_iteration_description_t));
    }

    ipc::BareRequest evs_request{};
    evs_request.header = {static_cast<int32_t>(ipc::RequestId::evs_groups), sizeof(evs_request)};
    received = ask(connection.get(), ipc_name, &evs_request, sizeof(evs_request), reply.get(), ipc::kIpcMaxMessageBytes);
    if (!received) {
        return received.status();
    }
    std::optional<ipc::EvsGroupsListing> evs = ipc::decode_evs_groups_list({reply.get(), *received});
    if (!evs) {
        return failure(base::Errc::malformed, fmt::format("rcpgd on IPC name '{}' sent a malformed EVS list", ipc_name));
    }
    report.evs = std::move(*evs);
    return report;
}

// Group names are bytes: printable ASCII as it is, the escape character doubled, the
// rest as \xHH, so one name is one line whatever it holds.
std::string escaped(const cpg_name& name)
{
    std::string text;
    const size_t length = std::min<size_t>(name.length, CPG_MAX_NAME_LENGTH);
    for (size_t i = 0; i < length; ++i) {
        const auto byte = static_cast<unsigned char>(name.value[i]);
        if (byte == '\\') {
            text += "\\\\";
        } else if (byte >= 0x20 && byte < 0x7f) {
            text += static_cast<char>(byte);
        } else {
            text += fmt::format("\\x{:02x}", byte);
        }
    }
    return text;
}

// An EVS key: its bytes up to the trailing zeros (keys are names padded with zeros, by
// custom), escaped as group names are; spaces too with `escape_space`.
std::string escaped_key(const char (&key)[delivery::kEvsGroupKeyBytes], bool escape_space)
{
    size_t length = sizeof(key);
    while (length > 0 && key[length - 1] == '\0') {
        --length;
    }
    cpg_name name{};
    name.length = static_cast<uint32_t>(length);
    std::memcpy(name.value, key, length);
    std::string text;
    for (char c : escaped(name)) {
        text += escape_space && c == ' ' ? std::string("\\x20") : std::string(1, c);
    }
    return text;
}

std::vector<EvsClient> evs_clients_of(const Report& report, bool escape_space)
{
    std::vector<EvsClient> clients;
    for (const ipc::EvsGroupRow& row : report.evs.rows) {
        // A client's rows come together, its first one marked.
        if (clients.empty() || row.first_of_client != 0) {
            clients.push_back({row.pid, {}});
        }
        if (row.has_key != 0) {
            clients.back().keys.push_back(escaped_key(row.key, escape_space));
        }
    }
    return clients;
}

std::vector<Group> groups_of(const Report& report)
{
    std::vector<Group> groups;
    for (const cpg_iteration_description_t& member : report.members) {
        std::string name = escaped(member.group);
        auto found = std::find_if(groups.begin(), groups.end(), [&](const Group& group) { return group.name == name; });
        if (found == groups.end()) {
            groups.push_back({std::move(name), {}});
            found = groups.end() - 1;
        }
        found->members.push_back(&member);
    }
    return groups;
}

std::string_view role_name(uint8_t role)
{
    switch (static_cast<ipc::NodeRole>(role)) {
    case ipc::NodeRole::single:
        return "single";
    case ipc::NodeRole::sequencer:
        return "sequencer";
    case ipc::NodeRole::member:
        return "member";
    }
    return "unknown";
}

std::string_view state_name(uint8_t state)
{
    switch (static_cast<ipc::RemoteState>(state)) {
    case ipc::RemoteState::absent:
        return "absent";
    case ipc::RemoteState::connected:
        return "connected";
    case ipc::RemoteState::member:
        return "member";
    case ipc::RemoteState::leaving:
        return "leaving";
    }
    return "unknown";
}

std::string view_text(const ipc::StatusResponse& status)
{
    std::string text;
    const uint32_t shown = std::min(status.view_count, ipc::kStatusMaxNodes);
    for (uint32_t i = 0; i < shown; ++i) {
        text += fmt::format("{}{}", i == 0 ? "" : " ", status.view[i]);
    }
    return text;
}

struct CounterRow {
    const char* key;
    const char* label;
    uint64_t value;
};

std::vector<CounterRow> counter_rows(const ipc::StatusCounters& counters)
{
    return {
        {"messages_sequenced", "messages sequenced", counters.messages_sequenced},
        {"bytes_sequenced", "bytes sequenced", counters.bytes_sequenced},
        {"confchgs_sequenced", "confchgs sequenced", counters.confchgs_sequenced},
        {"messages_delivered", "messages delivered", counters.messages_delivered},
        {"bytes_delivered", "bytes delivered", counters.bytes_delivered},
        {"messages_forwarded", "messages forwarded", counters.messages_forwarded},
        {"bytes_forwarded", "bytes forwarded", counters.bytes_forwarded},
        {"flow_control_events", "flow-control events", counters.flow_control_events},
        {"ring_full_events", "ring-full events", counters.ring_full_events},
        {"rdma_errors", "RDMA errors", counters.rdma_errors},
        {"protocol_violations", "protocol violations", counters.protocol_violations},
        {"messages_copied_by_device", "device copies", counters.messages_copied_by_device},
        {"bytes_copied_by_device", "device-copied bytes", counters.bytes_copied_by_device},
        {"nodes_failed", "nodes failed", counters.nodes_failed},
        {"failovers", "failovers", counters.failovers},
        {"last_failover_ms", "last failover (ms)", counters.last_failover_ms},
        {"records_resent", "records resent", counters.records_resent},
        {"stuck_clients_disconnected", "stuck clients cut off", counters.stuck_clients_disconnected},
        {"clients_refused", "clients refused", counters.clients_refused},
        {"handshakes_refused", "fabric handshakes refused", counters.handshakes_refused},
        {"backlog_moves", "moves to backlogs", counters.backlog_moves},
        {"backlog_entries_moved", "entries moved", counters.backlog_entries_moved},
        {"backlog_overflows", "backlogs overflowed", counters.backlog_overflows},
    };
}

void print_kv(const std::string& ipc_name, const Report& report, unsigned sections)
{
    const ipc::StatusResponse& status = report.status;
    fmt::print("ipc={}\n", ipc_name);
    if ((sections & kNodes) != 0) {
        fmt::print("nodeid={}\nrole={}\nsequencer={}\nring_seq={}\nview={}\nview_count={}\nremote_count={}\n",
                   status.nodeid, role_name(status.role), status.sequencer, status.ring_seq, view_text(status),
                   status.view_count, status.remote_count);
        for (uint32_t i = 0; i < std::min(status.remote_count, ipc::kStatusMaxNodes); ++i) {
            const ipc::StatusRemote& remote = status.remotes[i];
            fmt::print("remote.{0}.state={1}\nremote.{0}.unsent_bytes={2}\nremote.{0}.unreleased_bytes={3}\n"
                       "remote.{0}.inbound_used_bytes={4}\nremote.{0}.inbound_capacity_bytes={5}\n",
                       remote.nodeid, state_name(remote.state), remote.unsent_bytes, remote.unreleased_bytes,
                       remote.inbound_used_bytes, remote.inbound_capacity_bytes);
        }
    }
    if ((sections & kGroups) != 0) {
        const std::vector<Group> groups = groups_of(report);
        fmt::print("groups={}\n", groups.size());
        for (size_t i = 0; i < groups.size(); ++i) {
            std::string members;
            for (const cpg_iteration_description_t* member : groups[i].members) {
                members += fmt::format("{}{}:{}", members.empty() ? "" : " ", member->nodeid, member->pid);
            }
            fmt::print("group.{0}.name={1}\ngroup.{0}.members={2}\n", i + 1, groups[i].name, members);
        }
    }
    if ((sections & kEvs) != 0) {
        const std::vector<EvsClient> clients = evs_clients_of(report, true);
        fmt::print("evs_clients={}\nevs_rows={}\nevs_rows_total={}\n", clients.size(), report.evs.rows.size(),
                   report.evs.total);
        for (size_t i = 0; i < clients.size(); ++i) {
            std::string keys;
            for (const std::string& key : clients[i].keys) {
                keys += (keys.empty() ? "" : " ") + key;
            }
            fmt::print("evs.{0}.pid={1}\nevs.{0}.groups={2}\n", i + 1, clients[i].pid, keys);
        }
    }
    if ((sections & kCounters) != 0) {
        fmt::print("local_clients={}\nclient_pinned_bytes={}\nring_used_bytes={}\nring_capacity_bytes={}\n"
                   "flow_control={}\nclient_backlog_budget_bytes={}\nbacklog_bytes={}\nbacklogged_clients={}\n",
                   status.local_clients, status.client_pinned_bytes, status.ring_used_bytes,
                   status.ring_capacity_bytes, status.flow_control, status.client_backlog_budget_bytes,
                   status.backlog_bytes, status.backlogged_clients);
        for (const CounterRow& row : counter_rows(status.counters)) {
            fmt::print("{}={}\n", row.key, row.value);
        }
    }
}

void print_human(const Report& report, unsigned sections)
{
    const ipc::StatusResponse& status = report.status;
    bool first = true;
    auto begin_section = [&](const char* title) {
        fmt::print("{}{}\n", first ? "" : "\n", title);
        first = false;
    };
    if ((sections & kNodes) != 0) {
        begin_section("Node");
        fmt::print("  node id        {}\n", status.nodeid);
        fmt::print("  role           {}\n", role_name(status.role));
        fmt::print("  sequencer      {}\n", status.sequencer);
        fmt::print("  ring id        {}.{}  (sequencer node id . ring seq)\n", status.sequencer, status.ring_seq);
        fmt::print("  view           {}  ({} node{}{})\n", view_text(status), status.view_count,
                   status.view_count == 1 ? "" : "s",
                   status.view_count > ipc::kStatusMaxNodes ? fmt::format(", first {} shown", ipc::kStatusMaxNodes)
                                                            : "");
        if (status.remote_count != 0) {
            fmt::print("  other nodes, as the sequencer sees them (bytes):\n");
            fmt::print("    {:>8}  {:<10} {:>14} {:>16} {:>14} {:>18}\n", "node id", "state", "unsent (lag)",
                       "not released", "inbound used", "inbound capacity");
            for (uint32_t i = 0; i < std::min(status.remote_count, ipc::kStatusMaxNodes); ++i) {
                const ipc::StatusRemote& remote = status.remotes[i];
                fmt::print("    {:>8}  {:<10} {:>14} {:>16} {:>14} {:>18}\n", remote.nodeid, state_name(remote.state),
                           remote.unsent_bytes, remote.unreleased_bytes, remote.inbound_used_bytes,
                           remote.inbound_capacity_bytes);
            }
        }
    }
    if ((sections & kGroups) != 0) {
        begin_section("Groups");
        const std::vector<Group> groups = groups_of(report);
        if (groups.empty()) {
            fmt::print("  (none)\n");
        } else {
            fmt::print("  {:<30} {:>10} {:>10}\n", "Group name", "Node ID", "PID");
        }
        for (const Group& group : groups) {
            fmt::print("  {}\n", group.name);
            for (const cpg_iteration_description_t* member : group.members) {
                fmt::print("  {:<30} {:>10} {:>10}\n", "", member->nodeid, member->pid);
            }
        }
    }
    if ((sections & kEvs) != 0) {
        begin_section("EVS clients (this node's; groups by key)");
        const std::vector<EvsClient> clients = evs_clients_of(report, false);
        if (clients.empty()) {
            fmt::print("  (none)\n");
        } else {
            fmt::print("  {:>10}  {}\n", "PID", "Groups");
        }
        for (const EvsClient& client : clients) {
            if (client.keys.empty()) {
                fmt::print("  {:>10}  (none)\n", client.pid);
            }
            for (size_t i = 0; i < client.keys.size(); ++i) {
                fmt::print("  {:>10}  {}\n", i == 0 ? fmt::format("{}", client.pid) : std::string(), client.keys[i]);
            }
        }
        if (report.evs.total > report.evs.rows.size()) {
            fmt::print("  ({} of {} rows shown)\n", report.evs.rows.size(), report.evs.total);
        }
    }
    if ((sections & kCounters) != 0) {
        begin_section("Counters");
        fmt::print("  {:<22}{}\n", "local clients", status.local_clients);
        fmt::print("  {:<22}{} bytes\n", "pinned client memory", status.client_pinned_bytes);
        const double percent = status.ring_capacity_bytes == 0
                                   ? 0.0
                                   : 100.0 * static_cast<double>(status.ring_used_bytes) /
                                         static_cast<double>(status.ring_capacity_bytes);
        fmt::print("  {:<22}{} of {} bytes ({:.1f}%)\n", "delivery ring used", status.ring_used_bytes,
                   status.ring_capacity_bytes, percent);
        fmt::print("  {:<22}{}\n", "flow control", status.flow_control != 0 ? "on (senders get CS_ERR_TRY_AGAIN)" : "off");
        fmt::print("  {:<22}{} bytes in {} client{} (budget {} bytes a client)\n", "slow readers' backlog",
                   status.backlog_bytes, status.backlogged_clients, status.backlogged_clients == 1 ? "" : "s",
                   status.client_backlog_budget_bytes);
        for (const CounterRow& row : counter_rows(status.counters)) {
            fmt::print("  {:<22}{}\n", row.label, row.value);
        }
    }
}

int bad_usage(const std::string& message)
{
    std::fprintf(stderr, "rcpg-cpgtool: %s\nTry 'rcpg-cpgtool --help'.\n", message.c_str());
    return 2;
}

}  // namespace

int main(int argc, char** argv)
{
    enum { opt_ipc = 256, opt_nodes, opt_groups, opt_counters, opt_kv, opt_version, opt_evs };
    static const option long_options[] = {
        {"ipc", required_argument, nullptr, opt_ipc},
        {"nodes", no_argument, nullptr, opt_nodes},
        {"groups", no_argument, nullptr, opt_groups},
        {"counters", no_argument, nullptr, opt_counters},
        {"evs", no_argument, nullptr, opt_evs},
        {"kv", no_argument, nullptr, opt_kv},
        {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, opt_version},
        {nullptr, 0, nullptr, 0},
    };
    std::vector<std::string> ipc_names;
    unsigned sections = 0;
    bool kv = false;
    int choice;
    while ((choice = getopt_long(argc, argv, "h", long_options, nullptr)) != -1) {
        switch (choice) {
        case opt_ipc:
            if (optarg[0] == '\0') {
                return bad_usage("--ipc needs a non-empty name");
            }
            ipc_names.emplace_back(optarg);
            break;
        case opt_nodes:
            sections |= kNodes;
            break;
        case opt_groups:
            sections |= kGroups;
            break;
        case opt_counters:
            sections |= kCounters;
            break;
        case opt_evs:
            sections |= kEvs;
            break;
        case opt_kv:
            kv = true;
            break;
        case 'h':
            std::fputs(kUsage, stdout);
            return 0;
        case opt_version:
            std::printf("rcpg-cpgtool %s\n", RCPG_VERSION);
            return 0;
        default:
            std::fputs(kUsage, stderr);
            return 2;
        }
    }
    if (optind != argc) {
        return bad_usage(std::string("unexpected argument '") + argv[optind] + "'");
    }
    if (sections == 0) {
        sections = kNodes | kGroups | kEvs | kCounters;
    }
    if (ipc_names.empty()) {
        ipc_names.push_back(ipc::ipc_service_name());
    }

    int exit_status = 0;
    bool printed = false;
    for (const std::string& ipc_name : ipc_names) {
        const base::Result<Report> report = query(ipc_name);
        if (!report) {
            std::fflush(stdout);
            std::fprintf(stderr, "rcpg-cpgtool: %s\n", report.status().context().c_str());
            exit_status = 1;
            continue;
        }
        if (printed) {
            fmt::print("\n");
        }
        printed = true;
        if (kv) {
            print_kv(ipc_name, *report, sections);
            continue;
        }
        if (ipc_names.size() > 1) {
            fmt::print("== {} ==\n", ipc_name);
        }
        print_human(*report, sections);
    }
    return exit_status;
}
