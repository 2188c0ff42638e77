// The local trust boundary, who talks to whom and at what cost. Each test is an attack
// by a local user (uid nobody, played by a forked child; the tests need root for that
// and skip without it):
//  - an impostor serves the IPC name while rcpgd is down: clients take nothing from it;
//  - a user rcpgd does not allow floods its descriptor socket: nothing is kept open;
//  - an allowed user opens more clients than its cap, or all users more than theirs:
//    CS_ERR_NO_RESOURCES, others go on;
//  - a stuck client fakes progress by moving `consumed` back and forth: it is cut off.
#include "delivery/ring_format.hpp"
#include "libcpg/ipc/control_block.hpp"
#include "tests/support/daemon_process.hpp"
#include "tests/support/raw_session.hpp"

#include <corosync/cpg.h>
#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace rcpg;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A bound for a hang, far above what a slow, busy machine takes.
constexpr auto kEventTimeout = 60s;

bool become_nobody()
{
    const passwd* nobody = ::getpwnam("nobody");
    return nobody != nullptr && ::setgroups(0, nullptr) == 0 && ::setgid(nobody->pw_gid) == 0 &&
           ::setuid(nobody->pw_uid) == 0;
}

bool abstract_socket_listed(const std::string& name)
{
    std::ifstream unix_sockets("/proc/net/unix");
    std::string line;
    while (std::getline(unix_sockets, line)) {
        if (line.size() > name.size() && line.compare(line.size() - name.size() - 1, std::string::npos, "@" + name) == 0) {
            return true;
        }
    }
    return false;
}

int connect_abstract(const std::string& name)
{
    const int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path + 1, name.data(), name.size());
    if (::connect(sock, reinterpret_cast<sockaddr*>(&address),
                  static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size())) != 0) {
        ::close(sock);
        return -1;
    }
    return sock;
}

size_t open_descriptors(pid_t pid)
{
    size_t count = 0;
    DIR* fds = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
    while (fds != nullptr && ::readdir(fds) != nullptr) {
        ++count;
    }
    if (fds != nullptr) {
        ::closedir(fds);
    }
    return count;
}

class LocalAccess : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (::geteuid() != 0) {
            GTEST_SKIP() << "needs root, to play a second local user (nobody)";
        }
    }
};

// rcpgd is down and a user who is not rcpgd's runs a server on its IPC name and its
// descriptor socket (here rcpgd itself, run as nobody: it speaks the protocol perfectly).
// A client of root refuses it: cpg_initialize fails without a byte exchanged beyond the
// connection, and the operator tool says who answered. Told that nobody is rcpgd's user,
// the same client accepts it: the impostor was reachable.
TEST_F(LocalAccess, AnImpostorOnTheIpcNameGetsNoClient)
{
    const std::string name = "rcpgtest-impostor-" + std::to_string(::getpid());
    const std::string log = "/tmp/" + name + ".log";
    const pid_t impostor = ::fork();
    if (impostor == 0) {
        const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ::dup2(log_fd, STDOUT_FILENO);
        ::dup2(log_fd, STDERR_FILENO);
        if (!become_nobody()) {
            ::_exit(100);
        }
        const std::string rcpgd = rcpg::testing::build_program("rcpgd");
        // A state directory of its own: nobody may not read root's ring id.
        const std::string state = "/tmp/" + name + ".state";
        ::execl(rcpgd.c_str(), rcpgd.c_str(), "--ipc", name.c_str(), "--state-dir", state.c_str(),
                static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ASSERT_GT(impostor, 0);
    const auto deadline = Clock::now() + kEventTimeout;
    while (!abstract_socket_listed("rcpg-shm." + name) && Clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);
    }
    ASSERT_TRUE(abstract_socket_listed("rcpg-shm." + name)) << "the impostor did not start";
    ::setenv("RCPG_IPC", name.c_str(), 1);

    cpg_handle_t handle = 0;
    cpg_callbacks_t callbacks{};
    EXPECT_EQ(cpg_initialize(&handle, &callbacks), CS_ERR_LIBRARY) << "a client took the impostor for rcpgd";
    const std::string tool = rcpg::testing::build_program("rcpg-cpgtool") + " --ipc " + name + " 2>&1";
    FILE* output = ::popen(tool.c_str(), "r");
    std::string said;
    char buffer[512];
    while (output != nullptr && std::fgets(buffer, sizeof buffer, output) != nullptr) {
        said += buffer;
    }
    const int tool_status = output != nullptr ? ::pclose(output) : -1;
    EXPECT_NE(tool_status, 0);
    EXPECT_NE(said.find("not rcpgd's user"), std::string::npos) << said;

    ::setenv("RCPG_DAEMON_USER", "nobody", 1);
    EXPECT_EQ(cpg_initialize(&handle, &callbacks), CS_OK) << "the impostor was not reachable at all";
    cpg_finalize(handle);
    ::unsetenv("RCPG_DAEMON_USER");

    ::kill(impostor, SIGTERM);
    ::waitpid(impostor, nullptr, 0);
    ::unlink(log.c_str());
    std::filesystem::remove_all("/tmp/" + name + ".state");
}

// A user rcpgd does not allow opens connection after connection to the descriptor socket
// (anyone can reach an abstract socket) and keeps them. rcpgd closes each at once: the
// flooder sees every one end, rcpgd's descriptors stay few, and an allowed client still
// initializes.
TEST_F(LocalAccess, AnUnallowedUserCannotHoldConnectionsToTheDescriptorSocket)
{
    rcpg::testing::DaemonProcess daemon;
    ASSERT_TRUE(daemon.running());
    const size_t before = open_descriptors(daemon.pid());
    constexpr int kConnections = 800;
    const std::string socket_name = "rcpg-shm." + daemon.ipc_name();
    int ready[2];
    int release[2];
    ASSERT_EQ(::pipe(ready), 0);
    ASSERT_EQ(::pipe(release), 0);
    const pid_t flooder = ::fork();
    if (flooder == 0) {
        ::close(ready[0]);
        ::close(release[1]);
        if (!become_nobody()) {
            ::_exit(100);
        }
        std::vector<int> held;
        for (int i = 0; i < kConnections; ++i) {
            const int sock = connect_abstract(socket_name);
            if (sock >= 0) {
                held.push_back(sock);
            }
        }
        // How many the daemon ended (EOF) within one bound for all of them.
        int ended = 0;
        const auto deadline = Clock::now() + kEventTimeout;
        for (int sock : held) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            pollfd readable{sock, POLLIN, 0};
            char byte;
            if (::poll(&readable, 1, static_cast<int>(std::max<int64_t>(left.count(), 0))) == 1 &&
                ::recv(sock, &byte, 1, 0) <= 0) {
                ++ended;
            }
        }
        const int connected = static_cast<int>(held.size());
        (void)!::write(ready[1], &connected, sizeof connected);
        (void)!::write(ready[1], &ended, sizeof ended);
        char go;
        (void)!::read(release[0], &go, 1);  // still holding them, as far as it can
        ::_exit(0);
    }
    ::close(ready[1]);
    ::close(release[0]);
    int connected = 0;
    int ended = 0;
    ASSERT_EQ(::read(ready[0], &connected, sizeof connected), static_cast<ssize_t>(sizeof connected));
    ASSERT_EQ(::read(ready[0], &ended, sizeof ended), static_cast<ssize_t>(sizeof ended));
    EXPECT_EQ(connected, kConnections);
    EXPECT_EQ(ended, connected) << "rcpgd kept connections of a user it does not allow";
    EXPECT_LT(open_descriptors(daemon.pid()), before + 16) << "rcpgd holds descriptors for the flood";
    cpg_handle_t handle = 0;
    cpg_callbacks_t callbacks{};
    EXPECT_EQ(cpg_initialize(&handle, &callbacks), CS_OK);
    cpg_finalize(handle);
    (void)!::write(release[1], "g", 1);
    ::waitpid(flooder, nullptr, 0);
    ::close(ready[0]);
    ::close(release[1]);
}

// An allowed user opens clients until its cap: the next one gets CS_ERR_NO_RESOURCES, as
// the documented error for a daemon out of resources, while another user's clients still
// fit; the cap on all connections holds across users; a slot that frees is taken again.
TEST_F(LocalAccess, ClientsAreCappedPerUserAndInAll)
{
    rcpg::testing::DaemonProcess daemon({"--allow-user", "nobody", "--max-clients-per-uid", "3", "--max-clients", "5"});
    ASSERT_TRUE(daemon.running());
    int report[2];
    int release[2];
    ASSERT_EQ(::pipe(report), 0);
    ASSERT_EQ(::pipe(release), 0);
    const pid_t child = ::fork();
    if (child == 0) {
        ::close(report[0]);
        ::close(release[1]);
        if (!become_nobody()) {
            ::_exit(100);
        }
        cpg_callbacks_t callbacks{};
        cpg_handle_t handles[4] = {};
        int results[4];
        for (int i = 0; i < 4; ++i) {
            results[i] = cpg_initialize(&handles[i], &callbacks);
        }
        (void)!::write(report[1], results, sizeof results);
        char go;
        (void)!::read(release[0], &go, 1);
        cpg_finalize(handles[0]);  // frees one slot, then holds the rest until killed
        (void)!::write(report[1], "f", 1);
        ::pause();
        ::_exit(0);
    }
    ::close(report[1]);
    ::close(release[0]);
    int results[4] = {};
    ASSERT_EQ(::read(report[0], results, sizeof results), static_cast<ssize_t>(sizeof results));
    EXPECT_EQ(results[0], CS_OK);
    EXPECT_EQ(results[1], CS_OK);
    EXPECT_EQ(results[2], CS_OK);
    EXPECT_EQ(results[3], CS_ERR_NO_RESOURCES) << "a fourth client of a user capped at three";

    // Root's own cap is untouched by nobody's; the cap on all (5) is reached after two.
    cpg_callbacks_t callbacks{};
    cpg_handle_t handles[3] = {};
    EXPECT_EQ(cpg_initialize(&handles[0], &callbacks), CS_OK);
    EXPECT_EQ(cpg_initialize(&handles[1], &callbacks), CS_OK);
    EXPECT_EQ(cpg_initialize(&handles[2], &callbacks), CS_ERR_NO_RESOURCES) << "a sixth connection of five allowed";

    // nobody ends one of its clients: the slot is root's to take (once the daemon has
    // seen the end: a bounded retry).
    (void)!::write(release[1], "g", 1);
    char freed;
    ASSERT_EQ(::read(report[0], &freed, 1), 1);
    cs_error_t again = CS_ERR_NO_RESOURCES;
    for (const auto deadline = Clock::now() + kEventTimeout; again == CS_ERR_NO_RESOURCES && Clock::now() < deadline;) {
        again = cpg_initialize(&handles[2], &callbacks);
        if (again == CS_ERR_NO_RESOURCES) {
            std::this_thread::sleep_for(10ms);
        }
    }
    EXPECT_EQ(again, CS_OK);
    for (cpg_handle_t handle : handles) {
        cpg_finalize(handle);
    }
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    ::close(report[0]);
    ::close(release[1]);
}

// A client joins, reads nothing while another process floods its group until the ring
// is full, and moves its `consumed` back and forth to look busy. Only real progress
// counts: it is cut off after the stuck-client timeout, and the sender goes on.
TEST_F(LocalAccess, MovingConsumedBackAndForthIsNoProgress)
{
    rcpg::testing::DaemonProcess daemon({"--ring-mib", "8", "--stuck-client-timeout-ms", "1000"});
    ASSERT_TRUE(daemon.running());
    int joined[2];
    ASSERT_EQ(::pipe(joined), 0);
    const pid_t faker = ::fork();
    if (faker == 0) {
        // Exits 0 once cut off, 1 if never, 2 if it could not start.
        ::close(joined[0]);
        rcpg::testing::RawSession session = rcpg::testing::open_raw_session(daemon.ipc_name(), "busy-looking");
        const ipc::Mapping ring_header =
            ipc::map_fd(session.fds[ipc::ring_fd].get(), delivery::kPageBytes, 0, ipc::Access::read_only);
        if (!session.error.empty() || !ring_header) {
            ::_exit(2);
        }
        auto* control = static_cast<ipc::ControlBlock*>(session.control.get());
        // Past its join: positions it could really have read up to.
        const uint64_t start = static_cast<const delivery::RingHeader*>(ring_header.get())->tail.load();
        (void)!::write(joined[1], "j", 1);
        const auto deadline = Clock::now() + kEventTimeout;
        for (int turn = 0; Clock::now() < deadline; ++turn) {
            control->consumed.store(turn % 2 == 0 ? start + 8 : start);
            char event[64];
            const ssize_t got = qb_ipcc_event_recv(session.connection, event, sizeof event, 2);
            if (got < 0 && got != -EAGAIN && got != -ETIMEDOUT) {
                ::_exit(0);
            }
        }
        ::_exit(1);
    }
    ::close(joined[1]);
    char byte;
    ASSERT_EQ(::read(joined[0], &byte, 1), 1) << "the faker did not join";
    ::close(joined[0]);

    cpg_handle_t sender = 0;
    cpg_callbacks_t callbacks{};
    ASSERT_EQ(cpg_initialize(&sender, &callbacks), CS_OK);
    cpg_name group{};
    group.length = 12;
    std::memcpy(group.value, "busy-looking", 12);
    ASSERT_EQ(cpg_join(sender, &group), CS_OK);
    std::vector<char> payload(16384, 'f');
    iovec part{payload.data(), payload.size()};
    bool full = false;
    uint64_t sent_after_full = 0;
    int faker_status = -1;
    const auto deadline = Clock::now() + 2 * kEventTimeout;
    while (Clock::now() < deadline) {
        const cs_error_t result = cpg_mcast_joined(sender, CPG_TYPE_AGREED, &part, 1);
        ASSERT_TRUE(result == CS_OK || result == CS_ERR_TRY_AGAIN) << result;
        full |= result == CS_ERR_TRY_AGAIN;
        sent_after_full += full && result == CS_OK ? 1 : 0;
        cpg_dispatch(sender, CS_DISPATCH_ALL);
        int status = 0;
        if (faker_status < 0 && ::waitpid(faker, &status, WNOHANG) == faker) {
            faker_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
        }
        if (faker_status >= 0 && sent_after_full > 100) {
            break;
        }
        if (result == CS_ERR_TRY_AGAIN) {
            std::this_thread::sleep_for(1ms);
        }
    }
    if (faker_status < 0) {
        ::kill(faker, SIGKILL);
        ::waitpid(faker, nullptr, 0);
    }
    EXPECT_TRUE(full) << "the ring never filled";
    EXPECT_EQ(faker_status, 0) << "a client that only moved consumed back and forth was not cut off (1), or did "
                                  "not start (2)";
    EXPECT_GT(sent_after_full, 100u) << "the sender did not go on";
    cpg_finalize(sender);
}

// corosync's access rules, as Pacemaker's packages set them: a uidgid section in the
// configuration file and a file in uidgid.d beside it admit a user and a group that no
// rcpg option names; a user named nowhere is still refused.
TEST_F(LocalAccess, UidgidOfCorosyncConfAdmitsItsUsersAndGroups)
{
    char folder[] = "/tmp/rcpg-uidgid-XXXXXX";
    ASSERT_NE(::mkdtemp(folder), nullptr);
    const std::string dir = folder;
    ASSERT_EQ(::mkdir((dir + "/uidgid.d").c_str(), 0755), 0);
    std::ofstream(dir + "/corosync.conf") << "totem {\n  version: 2\n}\nuidgid {\n  uid: nobody\n}\n";
    std::ofstream(dir + "/uidgid.d/groups") << "uidgid {\n  gid: daemon\n}\n";
    rcpg::testing::DaemonProcess daemon({"--config", dir + "/corosync.conf"});
    ASSERT_TRUE(daemon.running());
    const passwd* nobody = ::getpwnam("nobody");
    const group* daemon_group = ::getgrnam("daemon");
    ASSERT_NE(nobody, nullptr);
    ASSERT_NE(daemon_group, nullptr);
    // uid, primary gid → what cpg_initialize must return.
    const struct {
        uid_t uid;
        gid_t gid;
        cs_error_t expected;
        const char* who;
    } cases[] = {
        {nobody->pw_uid, nobody->pw_gid, CS_OK, "nobody, by uid"},
        {nobody->pw_uid + 1000, daemon_group->gr_gid, CS_OK, "a user of group daemon, by gid"},
        {nobody->pw_uid + 1000, nobody->pw_gid, CS_ERR_ACCESS, "a user named nowhere"},
    };
    for (const auto& attempt : cases) {
        const pid_t child = ::fork();
        if (child == 0) {
            if (::setgroups(0, nullptr) != 0 || ::setgid(attempt.gid) != 0 || ::setuid(attempt.uid) != 0) {
                ::_exit(100);
            }
            cpg_handle_t handle = 0;
            cpg_callbacks_t callbacks{};
            const cs_error_t result = cpg_initialize(&handle, &callbacks);
            ::_exit(static_cast<int>(result));
        }
        int status = 0;
        ::waitpid(child, &status, 0);
        ASSERT_TRUE(WIFEXITED(status)) << attempt.who;
        EXPECT_EQ(WEXITSTATUS(status), static_cast<int>(attempt.expected)) << attempt.who;
    }
    std::filesystem::remove_all(dir);
}

}  // namespace
