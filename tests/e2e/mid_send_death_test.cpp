// A client killed in the middle of sending leaves nothing half done: a zcb buffer it wrote
// but never published is never delivered, a large message of which only some fragments
// went out is delivered to nobody, its group sees PROCDOWN, and what others send next
// is delivered whole (no hole in the stream).
#include "tests/support/daemon_process.hpp"

#include <corosync/cpg.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Seen {
    struct Message {
        uint32_t pid;
        std::vector<char> bytes;
    };
    std::vector<Message> messages;
    std::vector<cpg_address> left;
};

Seen* seen_of(cpg_handle_t handle)
{
    void* context = nullptr;
    cpg_context_get(handle, &context);
    return static_cast<Seen*>(context);
}

void on_deliver(cpg_handle_t handle, const cpg_name*, uint32_t, uint32_t pid, void* message, size_t length)
{
    const char* bytes = static_cast<const char*>(message);
    seen_of(handle)->messages.push_back({pid, std::vector<char>(bytes, bytes + length)});
}

void on_confchg(cpg_handle_t handle, const cpg_name*, const cpg_address*, size_t, const cpg_address* left,
                size_t n_left, const cpg_address*, size_t)
{
    Seen* seen = seen_of(handle);
    seen->left.insert(seen->left.end(), left, left + n_left);
}

cpg_name group_named(const char* text)
{
    cpg_name name{};
    name.length = static_cast<uint32_t>(std::strlen(text));
    std::memcpy(name.value, text, name.length);
    return name;
}

uint64_t messages_sequenced()
{
    const std::string command = rcpg::testing::build_program("rcpg-cpgtool") + " --kv 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    uint64_t value = 0;
    char line[512];
    while (pipe != nullptr && std::fgets(line, sizeof line, pipe) != nullptr) {
        std::sscanf(line, "messages_sequenced=%lu", &value);
    }
    if (pipe != nullptr) {
        ::pclose(pipe);
    }
    return value;
}

enum class Death { before_publishing_zcb, inside_a_large_message };

// A member that starts sending and is killed at the given point; returns its pid once it
// got there (the caller kills it).
pid_t start_doomed_sender(const cpg_name& group, Death death, int ready_fd)
{
    const pid_t pid = ::fork();
    if (pid != 0) {
        return pid;
    }
    // The large send must still wait for room when the kill comes, however slow the
    // machine: its library gives up on a fragment without room only after this.
    ::setenv("RCPG_FRAGMENT_ROOM_TIMEOUT_MS", "600000", 1);
    cpg_handle_t handle = 0;
    if (cpg_initialize(&handle, nullptr) != CS_OK || cpg_join(handle, &group) != CS_OK) {
        ::_exit(1);
    }
    char byte = 'r';
    if (death == Death::before_publishing_zcb) {
        void* buffer = nullptr;
        if (cpg_zcb_alloc(handle, 4096, &buffer) != CS_OK) {
            ::_exit(1);
        }
        std::memset(buffer, 'z', 4096);
        ::write(ready_fd, &byte, 1);
        ::pause();  // killed here, before cpg_zcb_mcast_joined
        ::_exit(0);
    }
    // 40 MiB: more than the 8 MiB ring holds while nobody reads, so the send stops in the
    // middle, fragments already out, and waits for room it never gets.
    std::vector<char> large(40u << 20, 'L');
    iovec iov{large.data(), large.size()};
    ::write(ready_fd, &byte, 1);
    cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
    ::pause();
    ::_exit(0);
}

void run(Death death)
{
    // The watcher reads nothing while the large message waits: it must not be cut off.
    // Without backlogs: a reader that does not read holds the ring.
    rcpg::testing::DaemonProcess daemon(
        {"--ring-mib", "8", "--stuck-client-timeout-ms", "0", "--client-backlog-mib", "0"});
    ASSERT_TRUE(daemon.running());
    const cpg_name group = group_named("midsend");
    Seen seen;
    cpg_callbacks_t callbacks{on_deliver, on_confchg};
    cpg_handle_t watcher = 0;
    ASSERT_EQ(cpg_initialize(&watcher, &callbacks), CS_OK);
    cpg_context_set(watcher, &seen);
    ASSERT_EQ(cpg_join(watcher, &group), CS_OK);
    ASSERT_EQ(cpg_dispatch(watcher, CS_DISPATCH_ALL), CS_OK);

    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t doomed = start_doomed_sender(group, death, ready[1]);
    ASSERT_GT(doomed, 0);
    char byte = 0;
    ASSERT_EQ(::read(ready[0], &byte, 1), 1);
    // The large message is under way and then stuck behind the full ring: fragments of it
    // are in the ring, the rest never will be.
    if (death == Death::inside_a_large_message) {
        const auto sequenced_deadline = Clock::now() + std::chrono::seconds(120);
        while (messages_sequenced() == 0 && Clock::now() < sequenced_deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        EXPECT_GT(messages_sequenced(), 0u) << "no fragment of the large message went out before the kill";
    } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        EXPECT_EQ(messages_sequenced(), 0u);
    }
    ::kill(doomed, SIGKILL);
    ::waitpid(doomed, nullptr, 0);

    // Another member sends after it: its message arrives whole, after the PROCDOWN.
    const std::string text = "after the death";
    iovec iov{const_cast<char*>(text.data()), text.size()};
    const auto deadline = Clock::now() + std::chrono::seconds(120);
    bool sent = false;
    while (Clock::now() < deadline) {
        if (!sent) {
            const cs_error_t result = cpg_mcast_joined(watcher, CPG_TYPE_AGREED, &iov, 1);
            ASSERT_TRUE(result == CS_OK || result == CS_ERR_TRY_AGAIN) << result;
            sent = result == CS_OK;
        }
        cpg_dispatch(watcher, CS_DISPATCH_ALL);
        // The PROCDOWN and that message are not ordered between themselves: wait for both.
        const bool delivered =
            !seen.messages.empty() && seen.messages.back().bytes == std::vector<char>(text.begin(), text.end());
        if (delivered && !seen.left.empty()) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_TRUE(sent);
    ASSERT_FALSE(seen.messages.empty());
    EXPECT_EQ(std::string(seen.messages.back().bytes.begin(), seen.messages.back().bytes.end()), text);
    for (const Seen::Message& message : seen.messages) {
        EXPECT_NE(message.pid, static_cast<uint32_t>(doomed))
            << "delivered " << message.bytes.size() << " bytes of the killed sender";
    }
    bool procdown = false;
    for (const cpg_address& left : seen.left) {
        procdown |= left.pid == static_cast<uint32_t>(doomed) && left.reason == CPG_REASON_PROCDOWN;
    }
    EXPECT_TRUE(procdown) << "no PROCDOWN for the killed sender";
    cpg_finalize(watcher);
    ::close(ready[0]);
    ::close(ready[1]);
}

TEST(MidSendDeath, AZcbBufferWrittenButNotPublishedIsNeverDelivered) { run(Death::before_publishing_zcb); }

TEST(MidSendDeath, ALargeMessageCutShortIsDeliveredToNobody) { run(Death::inside_a_large_message); }

}  // namespace
