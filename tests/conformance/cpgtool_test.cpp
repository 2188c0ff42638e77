// rcpg-cpgtool against a one-node rcpgd: it reports the daemon's real state — role
// single, a view of this node alone, the groups and members exactly as clients iterate
// them, counters equal to what the clients sent, a ring that holds what nobody has
// consumed yet — without becoming a client itself. The status request it uses needs no
// init, and a malformed one is refused like any other malformed request. The tool's own
// errors: no daemon (status 1, naming the IPC name), a bad option (usage, status 2).
#include "libcpg/ipc/protocol.hpp"
#include "tests/conformance/conformance.hpp"

#include <corosync/evs.h>
#include <qb/qbipcc.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

namespace rcpg::conformance {
namespace {

struct ToolRun {
    int status = -1;  // exit status, -1 if it did not exit normally
    std::string out;
    std::string err;
};

ToolRun run_tool(const std::string& arguments)
{
    const std::string err_path = "/tmp/rcpg-cpgtool-test-" + std::to_string(::getpid()) + ".err";
    const std::string command = testing::build_program("rcpg-cpgtool") + " " + arguments + " 2>" + err_path;
    ToolRun run;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) {
        return run;
    }
    char buffer[4096];
    size_t got;
    while ((got = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
        run.out.append(buffer, got);
    }
    const int status = ::pclose(pipe);
    run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream err(err_path);
    std::stringstream text;
    text << err.rdbuf();
    run.err = text.str();
    ::unlink(err_path.c_str());
    return run;
}

std::map<std::string, std::string> parse_kv(const std::string& out)
{
    std::map<std::string, std::string> values;
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
        const size_t equals = line.find('=');
        if (equals != std::string::npos) {
            values[line.substr(0, equals)] = line.substr(equals + 1);
        }
    }
    return values;
}

uint64_t number(const std::map<std::string, std::string>& values, const std::string& key)
{
    auto found = values.find(key);
    return found == values.end() ? UINT64_MAX : std::stoull(found->second);
}

// The members line of the group named `name` in --kv output.
std::string members_of(std::map<std::string, std::string>& values, const std::string& name)
{
    for (size_t i = 1; values.contains("group." + std::to_string(i) + ".name"); ++i) {
        if (values["group." + std::to_string(i) + ".name"] == name) {
            return values["group." + std::to_string(i) + ".members"];
        }
    }
    return "(no group " + name + ")";
}

// What a client iterates with CPG_ITERATION_ALL, in the tool's --kv form.
std::map<std::string, std::string> iterated_groups(cpg_handle_t handle)
{
    cpg_iteration_handle_t iteration;
    EXPECT_EQ(cpg_iteration_initialize(handle, CPG_ITERATION_ALL, nullptr, &iteration), CS_OK);
    std::vector<std::pair<std::string, std::string>> groups;
    cpg_iteration_description_t row{};
    while (cpg_iteration_next(iteration, &row) == CS_OK) {
        const std::string name = name_text(row.group);
        const std::string member = std::to_string(row.nodeid) + ":" + std::to_string(row.pid);
        if (groups.empty() || groups.back().first != name) {
            groups.emplace_back(name, member);
        } else {
            groups.back().second += " " + member;
        }
    }
    cpg_iteration_finalize(iteration);
    std::map<std::string, std::string> values{{"groups", std::to_string(groups.size())}};
    for (size_t i = 0; i < groups.size(); ++i) {
        values["group." + std::to_string(i + 1) + ".name"] = groups[i].first;
        values["group." + std::to_string(i + 1) + ".members"] = groups[i].second;
    }
    return values;
}

// Sends `bytes` as one request on a raw connection; the response's error, or -errno.
int raw_request(qb_ipcc_connection_t* connection, const std::vector<char>& bytes, ipc::StatusResponse* status = nullptr,
                ssize_t* received = nullptr)
{
    iovec part{const_cast<char*>(bytes.data()), bytes.size()};
    std::vector<char> response(ipc::kIpcMaxMessageBytes);
    const ssize_t got = qb_ipcc_sendv_recv(connection, &part, 1, response.data(), response.size(), 2000);
    if (received != nullptr) {
        *received = got;
    }
    if (got < static_cast<ssize_t>(sizeof(qb_ipc_response_header))) {
        return got < 0 ? static_cast<int>(got) : -EBADMSG;
    }
    if (status != nullptr && got == static_cast<ssize_t>(sizeof(*status))) {
        std::memcpy(status, response.data(), sizeof(*status));
    }
    qb_ipc_response_header header;
    std::memcpy(&header, response.data(), sizeof(header));
    return header.error;
}

std::vector<char> request_of(ipc::RequestId id, size_t bytes, int32_t declared_bytes)
{
    std::vector<char> request(bytes, 0);
    const qb_ipc_request_header header{static_cast<int32_t>(id), declared_bytes};
    std::memcpy(request.data(), &header, std::min(sizeof(header), bytes));
    return request;
}

class CpgTool : public Conformance {};

TEST_F(CpgTool, ReportsRoleViewGroupsAndCountersOfAOneNodeDaemon)
{
    // A child process in "alpha" too, so a group has two members with different pids.
    Pipe ready, release;
    ChildProcess child([&]() -> int {
        ready.close_read();
        release.close_write();
        Client member(Client::Options{.retry_init = true});
        if (!member.ok() || member.join("alpha") != CS_OK) {
            return 2;
        }
        ready.write_byte('j');
        release.wait_eof(kHoldTimeout);
        return 0;
    });
    ASSERT_TRUE(child.started());
    ready.close_write();
    release.close_read();
    ASSERT_EQ(ready.read_byte(), 'j');

    Client alpha, beta;
    ASSERT_TRUE(alpha.ok() && beta.ok());
    ASSERT_EQ(alpha.join("alpha"), CS_OK);
    ASSERT_EQ(beta.join("beta"), CS_OK);

    // Nobody dispatches yet: what is sent stays in the ring.
    uint64_t sent_messages = 0;
    uint64_t sent_bytes = 0;
    for (size_t bytes : {1u, 100u, 4096u, 5000u, 65536u}) {
        ASSERT_EQ(alpha.send(std::string(bytes, 'a')), CS_OK);
        ++sent_messages;
        sent_bytes += bytes;
    }
    for (size_t bytes : {24u, 3000u}) {
        ASSERT_EQ(beta.send(std::string(bytes, 'b')), CS_OK);
        ++sent_messages;
        sent_bytes += bytes;
    }

    // Sends are queued in shared memory: wait for the daemon to have sequenced them.
    std::map<std::string, std::string> values;
    const auto deadline = Clock::now() + kEventTimeout;
    while (true) {
        ToolRun run = run_tool("--kv --ipc " + daemon_.ipc_name());
        ASSERT_EQ(run.status, 0) << run.err;
        values = parse_kv(run.out);
        if (number(values, "messages_sequenced") >= sent_messages || Clock::now() > deadline) {
            break;
        }
        std::this_thread::sleep_for(10ms);
    }

    EXPECT_EQ(values["ipc"], daemon_.ipc_name());
    EXPECT_EQ(values["nodeid"], "1");
    EXPECT_EQ(values["role"], "single");
    EXPECT_EQ(values["sequencer"], "1");
    EXPECT_EQ(values["ring_seq"], "1");
    EXPECT_EQ(values["view"], "1");
    EXPECT_EQ(values["view_count"], "1");
    EXPECT_EQ(values["remote_count"], "0");

    const std::string self = "1:" + std::to_string(self_pid());
    const std::string other = "1:" + std::to_string(child.pid());
    EXPECT_EQ(values["groups"], "2");
    EXPECT_TRUE(members_of(values, "alpha") == self + " " + other || members_of(values, "alpha") == other + " " + self)
        << members_of(values, "alpha");
    EXPECT_EQ(members_of(values, "beta"), self);
    for (const auto& [key, value] : iterated_groups(alpha.handle)) {
        EXPECT_EQ(values[key], value) << key << ": the tool and cpg_iteration_next disagree";
    }

    EXPECT_EQ(number(values, "messages_sequenced"), sent_messages);
    EXPECT_EQ(number(values, "bytes_sequenced"), sent_bytes);
    EXPECT_EQ(number(values, "messages_delivered"), sent_messages);
    EXPECT_EQ(number(values, "bytes_delivered"), sent_bytes);
    EXPECT_EQ(number(values, "confchgs_sequenced"), 3u);  // three joins
    EXPECT_EQ(number(values, "messages_forwarded"), 0u);
    EXPECT_EQ(number(values, "bytes_forwarded"), 0u);
    EXPECT_EQ(number(values, "rdma_errors"), 0u);
    EXPECT_EQ(number(values, "protocol_violations"), 0u);
    EXPECT_EQ(number(values, "ring_full_events"), 0u);
    EXPECT_EQ(number(values, "local_clients"), 3u);  // alpha, beta, the child; not the tool
    EXPECT_EQ(number(values, "client_pinned_bytes"), 0u);  // one node: nothing reads arenas by device
    EXPECT_EQ(number(values, "ring_capacity_bytes"), 64u << 20);
    EXPECT_GT(number(values, "ring_used_bytes"), sent_bytes);  // the entries, headers and all
    EXPECT_LT(number(values, "ring_used_bytes"), number(values, "ring_capacity_bytes"));
    EXPECT_EQ(values["flow_control"], "0");

    // Sections one by one, and the same facts for people.
    ToolRun counters = run_tool("--kv --counters --ipc " + daemon_.ipc_name());
    EXPECT_EQ(counters.status, 0);
    EXPECT_EQ(parse_kv(counters.out).count("role"), 0u);
    EXPECT_EQ(parse_kv(counters.out).count("groups"), 0u);
    EXPECT_EQ(parse_kv(counters.out)["messages_sequenced"], std::to_string(sent_messages));
    ToolRun human = run_tool("--ipc " + daemon_.ipc_name());
    EXPECT_EQ(human.status, 0) << human.err;
    EXPECT_NE(human.out.find("role           single"), std::string::npos) << human.out;
    EXPECT_NE(human.out.find("view           1  (1 node)"), std::string::npos) << human.out;
    EXPECT_NE(human.out.find("pinned client memory  0 bytes"), std::string::npos) << human.out;
    EXPECT_NE(human.out.find("  alpha\n"), std::string::npos) << human.out;
    EXPECT_NE(human.out.find(" " + std::to_string(child.pid()) + "\n"), std::string::npos) << human.out;

    release.close_write();
    EXPECT_EQ(child.wait(), 0);
}

TEST_F(CpgTool, StatusNeedsNoInitAndMalformedStatusIsRefused)
{
    qb_ipcc_connection_t* connection = qb_ipcc_connect(daemon_.ipc_name().c_str(), ipc::kIpcMaxMessageBytes);
    ASSERT_NE(connection, nullptr);
    ipc::StatusResponse status{};
    ssize_t received = 0;
    EXPECT_EQ(raw_request(connection, request_of(ipc::RequestId::status, sizeof(ipc::BareRequest),
                                                 sizeof(ipc::BareRequest)),
                          &status, &received),
              CS_OK);
    EXPECT_EQ(received, static_cast<ssize_t>(sizeof(ipc::StatusResponse)));
    EXPECT_EQ(status.header.id, static_cast<int32_t>(ipc::RequestId::status));
    EXPECT_EQ(status.role, static_cast<uint8_t>(ipc::NodeRole::single));
    EXPECT_EQ(status.local_clients, 0u);
    EXPECT_EQ(status.counters.protocol_violations, 0u);
    // Only the queries go before init: a join still gets CS_ERR_INIT.
    EXPECT_EQ(raw_request(connection, request_of(ipc::RequestId::join, sizeof(ipc::GroupRequest),
                                                 sizeof(ipc::GroupRequest))),
              CS_ERR_INIT);

    // Longer than a status request, shorter than declared, declared longer than sent.
    EXPECT_EQ(raw_request(connection, request_of(ipc::RequestId::status, sizeof(ipc::BareRequest) + 8,
                                                 sizeof(ipc::BareRequest) + 8)),
              CS_ERR_MESSAGE_ERROR);
    EXPECT_EQ(raw_request(connection, request_of(ipc::RequestId::status, sizeof(ipc::BareRequest), 8)),
              CS_ERR_MESSAGE_ERROR);
    EXPECT_EQ(raw_request(connection, request_of(ipc::RequestId::status, sizeof(ipc::BareRequest), 64)),
              CS_ERR_MESSAGE_ERROR);
    // Each one counted, and the daemon still answers.
    EXPECT_EQ(raw_request(connection, request_of(ipc::RequestId::status, sizeof(ipc::BareRequest),
                                                 sizeof(ipc::BareRequest)),
                          &status),
              CS_OK);
    EXPECT_EQ(status.counters.protocol_violations, 3u);
    qb_ipcc_disconnect(connection);

    Client client;
    ASSERT_TRUE(client.ok());
    EXPECT_EQ(client.join("after"), CS_OK);
}

TEST_F(CpgTool, ErrorsNameTheProblemAndSetTheExitStatus)
{
    const std::string missing = "rcpgtest-missing-" + std::to_string(::getpid());
    ToolRun no_daemon = run_tool("--ipc " + missing);
    EXPECT_EQ(no_daemon.status, 1);
    EXPECT_TRUE(no_daemon.out.empty()) << no_daemon.out;
    EXPECT_NE(no_daemon.err.find("cannot reach rcpgd on IPC name '" + missing + "'"), std::string::npos)
        << no_daemon.err;

    // One daemon missing of two: the other is still reported, and the status says it.
    ToolRun partly = run_tool("--kv --nodes --ipc " + missing + " --ipc " + daemon_.ipc_name());
    EXPECT_EQ(partly.status, 1);
    EXPECT_EQ(parse_kv(partly.out)["ipc"], daemon_.ipc_name());
    EXPECT_EQ(parse_kv(partly.out)["role"], "single");
    EXPECT_NE(partly.err.find(missing), std::string::npos);

    // $RCPG_IPC (set by the daemon fixture) is the default, as for clients.
    ToolRun by_environment = run_tool("--kv --nodes");
    EXPECT_EQ(by_environment.status, 0) << by_environment.err;
    EXPECT_EQ(parse_kv(by_environment.out)["ipc"], daemon_.ipc_name());

    ToolRun bad_option = run_tool("--no-such-option");
    EXPECT_EQ(bad_option.status, 2);
    EXPECT_NE(bad_option.err.find("Usage: rcpg-cpgtool"), std::string::npos) << bad_option.err;
    ToolRun stray = run_tool("extra");
    EXPECT_EQ(stray.status, 2);
    EXPECT_NE(stray.err.find("unexpected argument 'extra'"), std::string::npos) << stray.err;

    ToolRun help = run_tool("--help");
    EXPECT_EQ(help.status, 0);
    for (const char* option : {"--ipc NAME", "--nodes", "--groups", "--evs", "--counters", "--kv", "--help", "RCPG_IPC"}) {
        EXPECT_NE(help.out.find(option), std::string::npos) << option;
    }
}

// EVS clients (libevs) and the groups each joined, as the daemon keeps them: a handle with
// two groups (one twice), one with none; a key with a space and a byte outside ASCII is
// escaped. Groups left are gone from the list.
TEST_F(CpgTool, ListsEvsClientsAndTheirGroups)
{
    evs_callbacks_t callbacks{nullptr, nullptr};
    evs_handle_t joined = 0;
    evs_handle_t idle = 0;
    ASSERT_EQ(evs_initialize(&joined, &callbacks), CS_OK);
    ASSERT_EQ(evs_initialize(&idle, &callbacks), CS_OK);
    evs_group groups[3]{};
    std::strcpy(groups[0].key, "alpha");
    std::strcpy(groups[1].key, "b c");
    groups[1].key[3] = '\xff';
    groups[2] = groups[0];
    ASSERT_EQ(evs_join(joined, groups, 3), CS_OK);

    ToolRun kv = run_tool("--kv --evs --ipc " + daemon_.ipc_name());
    EXPECT_EQ(kv.status, 0) << kv.err;
    std::map<std::string, std::string> values = parse_kv(kv.out);
    EXPECT_EQ(values["evs_clients"], "2") << kv.out;
    EXPECT_EQ(values.count("role"), 0u) << "--evs alone";
    const std::string pid = std::to_string(::getpid());
    EXPECT_EQ(values["evs.1.pid"], pid);
    EXPECT_EQ(values["evs.2.pid"], pid);
    // The daemon lists sessions in its own order: one of the two has the groups.
    const std::string listed = values["evs.1.groups"] + "|" + values["evs.2.groups"];
    EXPECT_TRUE(listed == "alpha b\\x20c\\xff alpha|" || listed == "|alpha b\\x20c\\xff alpha") << listed;

    ToolRun human = run_tool("--evs --ipc " + daemon_.ipc_name());
    EXPECT_EQ(human.status, 0) << human.err;
    EXPECT_NE(human.out.find("EVS clients"), std::string::npos) << human.out;
    EXPECT_NE(human.out.find("b c\\xff"), std::string::npos) << human.out;
    EXPECT_NE(human.out.find("(none)"), std::string::npos) << "the handle without groups" << human.out;

    ASSERT_EQ(evs_leave(joined, groups, 2), CS_OK);
    values = parse_kv(run_tool("--kv --evs --ipc " + daemon_.ipc_name()).out);
    const std::string after = values["evs.1.groups"] + "|" + values["evs.2.groups"];
    EXPECT_TRUE(after == "alpha|" || after == "|alpha") << after;
    evs_finalize(joined);
    evs_finalize(idle);
    EXPECT_EQ(parse_kv(run_tool("--kv --evs --ipc " + daemon_.ipc_name()).out)["evs_clients"], "0");
}

}  // namespace
}  // namespace rcpg::conformance
