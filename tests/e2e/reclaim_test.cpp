// A client killed with SIGKILL leaves nothing behind in the daemon: its members see it
// leave with PROCDOWN, and the daemon's descriptors and shared-memory mappings return to
// what they were before the client came.
#include "tests/support/daemon_process.hpp"

#include <corosync/cpg.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

size_t open_descriptors(pid_t pid)
{
    size_t count = 0;
    DIR* dir = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
    if (dir == nullptr) {
        return 0;
    }
    while (const dirent* entry = ::readdir(dir)) {
        count += entry->d_name[0] != '.';
    }
    ::closedir(dir);
    return count;
}

size_t client_mappings(pid_t pid)
{
    std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
    size_t count = 0;
    for (std::string line; std::getline(maps, line);) {
        count += line.find("rcpg-client") != std::string::npos;
    }
    return count;
}

struct Seen {
    std::vector<cpg_address> left;
};

void on_confchg(cpg_handle_t handle, const cpg_name*, const cpg_address*, size_t, const cpg_address* left,
                size_t n_left, const cpg_address*, size_t)
{
    void* context = nullptr;
    cpg_context_get(handle, &context);
    auto* seen = static_cast<Seen*>(context);
    seen->left.insert(seen->left.end(), left, left + n_left);
}

TEST(Reclaim, KilledClientsLeaveWithProcdownAndReleaseEverything)
{
    rcpg::testing::DaemonProcess daemon;
    cpg_name group{};
    group.length = 7;
    std::memcpy(group.value, "reclaim", 7);
    Seen seen;
    cpg_callbacks_t callbacks{nullptr, on_confchg};
    cpg_handle_t watcher = 0;
    ASSERT_EQ(cpg_initialize(&watcher, &callbacks), CS_OK);
    cpg_context_set(watcher, &seen);
    ASSERT_EQ(cpg_join(watcher, &group), CS_OK);
    ASSERT_EQ(cpg_dispatch(watcher, CS_DISPATCH_ALL), CS_OK);
    const size_t descriptors_before = open_descriptors(daemon.pid());
    const size_t mappings_before = client_mappings(daemon.pid());

    constexpr int kVictims = 20;
    std::vector<pid_t> victims;
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    for (int i = 0; i < kVictims; ++i) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            cpg_handle_t handle = 0;
            char byte = 'x';
            if (cpg_initialize(&handle, nullptr) == CS_OK && cpg_join(handle, &group) == CS_OK) {
                // A zcb buffer and an unread message too: all of it must be reclaimed.
                void* buffer = nullptr;
                cpg_zcb_alloc(handle, 100000, &buffer);
                iovec iov{&byte, 1};
                cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
                byte = 'j';
            }
            ::write(ready[1], &byte, 1);
            ::pause();
            ::_exit(0);
        }
        victims.push_back(pid);
    }
    for (int i = 0; i < kVictims; ++i) {
        char byte = 0;
        ASSERT_EQ(::read(ready[0], &byte, 1), 1);
        ASSERT_EQ(byte, 'j');
    }
    EXPECT_GT(client_mappings(daemon.pid()), mappings_before);
    for (pid_t pid : victims) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (seen.left.size() < kVictims && std::chrono::steady_clock::now() < deadline) {
        cpg_dispatch(watcher, CS_DISPATCH_ALL);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_EQ(seen.left.size(), static_cast<size_t>(kVictims));
    for (const cpg_address& address : seen.left) {
        EXPECT_EQ(address.reason, CPG_REASON_PROCDOWN);
    }
    // The daemon has released the victims' connections, files and mappings.
    size_t descriptors_after = 0;
    size_t mappings_after = 0;
    for (int i = 0; i < 200; ++i) {
        descriptors_after = open_descriptors(daemon.pid());
        mappings_after = client_mappings(daemon.pid());
        if (descriptors_after <= descriptors_before && mappings_after <= mappings_before) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(descriptors_after, descriptors_before);
    EXPECT_EQ(mappings_after, mappings_before);
    cpg_finalize(watcher);
}

}  // namespace
