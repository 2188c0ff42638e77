// A message larger than the delivery ring goes out in fragments as readers make room.
// The send gives up (CS_ERR_TRY_AGAIN) only when a fragment found no room for the room
// timeout ($RCPG_FRAGMENT_ROOM_TIMEOUT_MS, default 2 s): a message that keeps moving is
// never cut off however long it takes, and one that gave up is delivered to nobody,
// while the next message arrives whole.
//
// Nothing here races the clock. The timeout is set for this process (kRoomTimeout), and
// the reader's pauses are far shorter than it, while their number makes the whole send
// outlast it whatever the machine's speed: a slower machine only lengthens the send. The
// reader that must not read until the sender gave up waits for the test to say so.
#include "tests/support/daemon_process.hpp"

#include <corosync/cpg.h>
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr size_t kRingMib = 8;
// Far above one reader pause (kReaderPause) plus the reading itself on a slow, busy
// machine; far below the sum of the pauses of one large send.
constexpr auto kRoomTimeout = 6000ms;
constexpr auto kReaderPause = 1500ms;
// At most a ring and the sender's 8 MiB copy area are ahead of the reader, so the send of
// this many bytes waits out at least (96 - 16) / 8 - 1 = 9 reader pauses: 13.5 s > 6 s.
constexpr size_t kLargeBytes = 96u << 20;

// Set before the first send of this process, which reads it.
[[maybe_unused]] const bool kRoomTimeoutSet =
    ::setenv("RCPG_FRAGMENT_ROOM_TIMEOUT_MS", std::to_string(kRoomTimeout.count()).c_str(), 1) == 0;

struct Delivered {
    std::mutex mutex;
    std::vector<std::vector<char>> messages;
};

void on_deliver(cpg_handle_t handle, const cpg_name*, uint32_t, uint32_t, void* message, size_t length)
{
    void* context = nullptr;
    cpg_context_get(handle, &context);
    auto* delivered = static_cast<Delivered*>(context);
    const char* bytes = static_cast<const char*>(message);
    std::lock_guard lock(delivered->mutex);
    delivered->messages.emplace_back(bytes, bytes + length);
}

std::vector<char> pattern(size_t bytes)
{
    std::vector<char> data(bytes);
    for (size_t i = 0; i < bytes; ++i) {
        data[i] = static_cast<char>((i * 131 + i / 4096) & 0xff);
    }
    return data;
}

// A joined process (this one, or a forked reader: CPG allows one join per process and
// group) whose reads a thread paces: it reads what there is, then pauses.
class Member {
public:
    explicit Member(const char* group_text)
    {
        cpg_callbacks_t callbacks{on_deliver, nullptr};
        EXPECT_EQ(cpg_initialize(&handle_, &callbacks), CS_OK);
        cpg_context_set(handle_, &delivered_);
        cpg_name group{};
        group.length = static_cast<uint32_t>(std::strlen(group_text));
        std::memcpy(group.value, group_text, group.length);
        EXPECT_EQ(cpg_join(handle_, &group), CS_OK);
    }
    ~Member()
    {
        stop_reading();
        cpg_finalize(handle_);
    }
    void start_reading(std::chrono::milliseconds pause)
    {
        stop_reading();
        stop_ = false;
        reader_ = std::thread([this, pause] {
            while (!stop_) {
                cpg_dispatch(handle_, CS_DISPATCH_ALL);
                std::this_thread::sleep_for(pause);
            }
        });
    }
    void stop_reading()
    {
        stop_ = true;
        if (reader_.joinable()) {
            reader_.join();
        }
    }
    cs_error_t send(const std::vector<char>& data)
    {
        iovec iov{const_cast<char*>(data.data()), data.size()};
        return cpg_mcast_joined(handle_, CPG_TYPE_AGREED, &iov, 1);
    }
    // Reads until `count` messages came (or 120 s passed); a copy of them.
    std::vector<std::vector<char>> wait_for(size_t count)
    {
        const auto deadline = Clock::now() + 120s;
        while (Clock::now() < deadline) {
            {
                std::lock_guard lock(delivered_.mutex);
                if (delivered_.messages.size() >= count) {
                    return delivered_.messages;
                }
            }
            std::this_thread::sleep_for(5ms);
        }
        std::lock_guard lock(delivered_.mutex);
        return delivered_.messages;
    }

private:
    cpg_handle_t handle_ = 0;
    Delivered delivered_;
    std::thread reader_;
    std::atomic<bool> stop_{false};
};

// What the forked reader saw: its first message's size and whether it is the pattern.
struct ReaderResult {
    uint64_t messages = 0;
    uint64_t first_bytes = 0;
    bool first_is_pattern = false;
};

// Forks a reader that joins `group` and says so on `fds`; it then reads nothing until the
// test writes a byte to `go` (when `go` is not -1), then reads every `pause` until a
// message came, and reports it on `fds`.
pid_t fork_reader(const char* group, int go, std::chrono::milliseconds pause, int fds[2])
{
    if (::pipe(fds) != 0) {
        return -1;
    }
    const pid_t pid = ::fork();
    if (pid != 0) {
        return pid;
    }
    ReaderResult result;
    {
        Member reader(group);
        char ready = 'r';
        (void)!::write(fds[1], &ready, 1);
        if (go != -1) {
            char start = 0;
            (void)!::read(go, &start, 1);
        }
        reader.start_reading(pause);
        const auto messages = reader.wait_for(1);
        result.messages = messages.size();
        if (!messages.empty()) {
            result.first_bytes = messages[0].size();
            result.first_is_pattern = messages[0] == pattern(messages[0].size());
        }
    }
    (void)!::write(fds[1], &result, sizeof result);
    ::_exit(0);
}

ReaderResult reader_result(pid_t pid, int fds[2])
{
    ReaderResult result;
    EXPECT_EQ(::read(fds[0], &result, sizeof result), static_cast<ssize_t>(sizeof result));
    ::waitpid(pid, nullptr, 0);
    ::close(fds[0]);
    ::close(fds[1]);
    return result;
}

TEST(LargeMessageRoom, AMessageThatKeepsMovingIsNeverCutOff)
{
    // Without backlogs a reader that does not read holds the ring, as the test needs.
    rcpg::testing::DaemonProcess daemon(
        {"--ring-mib", std::to_string(kRingMib), "--stuck-client-timeout-ms", "0", "--client-backlog-mib", "0"});
    ASSERT_TRUE(daemon.running());
    int fds[2];
    // The reader frees at most a ring per pause: the send lasts many pauses.
    const pid_t reader = fork_reader("room-moving", -1, kReaderPause, fds);
    ASSERT_GT(reader, 0);
    char ready = 0;
    ASSERT_EQ(::read(fds[0], &ready, 1), 1);
    Member sender("room-moving");
    sender.start_reading(1ms);
    const std::vector<char> large = pattern(kLargeBytes);
    const auto started = Clock::now();
    EXPECT_EQ(sender.send(large), CS_OK);
    EXPECT_GT(Clock::now() - started, kRoomTimeout) << "the reader did not hold the message back past the room timeout";
    const ReaderResult result = reader_result(reader, fds);
    EXPECT_EQ(result.messages, 1u);
    EXPECT_EQ(result.first_bytes, large.size());
    EXPECT_TRUE(result.first_is_pattern) << "the large message arrived damaged";
}

TEST(LargeMessageRoom, AFragmentWithoutRoomGivesUpAndIsDeliveredToNobody)
{
    // Without backlogs a reader that does not read holds the ring, as the test needs.
    rcpg::testing::DaemonProcess daemon(
        {"--ring-mib", std::to_string(kRingMib), "--stuck-client-timeout-ms", "0", "--client-backlog-mib", "0"});
    ASSERT_TRUE(daemon.running());
    int go[2];
    ASSERT_EQ(::pipe(go), 0);
    int fds[2];
    // The reader reads nothing until the send gave up: after about 16 MiB (the ring and
    // the copy area) no fragment finds room.
    const pid_t reader = fork_reader("room-stuck", go[0], 1ms, fds);
    ASSERT_GT(reader, 0);
    char ready = 0;
    ASSERT_EQ(::read(fds[0], &ready, 1), 1);
    Member sender("room-stuck");
    sender.start_reading(1ms);
    const auto started = Clock::now();
    EXPECT_EQ(sender.send(pattern(40u << 20)), CS_ERR_TRY_AGAIN);
    EXPECT_GE(Clock::now() - started, kRoomTimeout);
    const char start = 'g';
    ASSERT_EQ(::write(go[1], &start, 1), 1);
    const std::vector<char> next = pattern(1000);
    const auto deadline = Clock::now() + 120s;
    cs_error_t sent = CS_ERR_TRY_AGAIN;
    while ((sent = sender.send(next)) == CS_ERR_TRY_AGAIN && Clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(sent, CS_OK);
    const ReaderResult result = reader_result(reader, fds);
    EXPECT_EQ(result.first_bytes, next.size()) << "the abandoned message was delivered, or the next one was not";
    EXPECT_TRUE(result.first_is_pattern);
    ::close(go[0]);
    ::close(go[1]);
}

// One thread sends a message three rings large and dispatches only between retries,
// as a program written for corosync does: the send itself takes the sender's own
// deliveries out of the ring (read ahead into its memory, or, with backlogs, moved to
// its backlog by the daemon), so the first attempt goes through, and the message then
// arrives whole. Before, every attempt gave up after the room timeout and nothing came.
class OneThread : public ::testing::TestWithParam<const char*> {};

TEST_P(OneThread, SendsThreeRingsAndDispatchesOnlyBetweenRetries)
{
    rcpg::testing::DaemonProcess daemon({"--ring-mib", std::to_string(kRingMib), "--client-backlog-mib", GetParam()});
    ASSERT_TRUE(daemon.running());
    Delivered delivered;
    cpg_callbacks_t callbacks{on_deliver, nullptr};
    cpg_handle_t handle = 0;
    ASSERT_EQ(cpg_initialize(&handle, &callbacks), CS_OK);
    cpg_context_set(handle, &delivered);
    const cpg_name group = [] {
        cpg_name name{};
        name.length = 9;
        std::memcpy(name.value, "one-large", name.length);
        return name;
    }();
    ASSERT_EQ(cpg_join(handle, &group), CS_OK);
    const std::vector<char> large = pattern(3 * (kRingMib << 20) + 12345);
    iovec iov{const_cast<char*>(large.data()), large.size()};
    const auto deadline = Clock::now() + 300s;
    cs_error_t sent = CS_ERR_TRY_AGAIN;
    int attempts = 0;
    while (sent == CS_ERR_TRY_AGAIN && Clock::now() < deadline) {
        ++attempts;
        sent = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
        if (sent == CS_ERR_TRY_AGAIN) {
            EXPECT_NE(cpg_dispatch(handle, CS_DISPATCH_ALL), CS_ERR_LIBRARY);
        }
    }
    ASSERT_EQ(sent, CS_OK) << "after " << attempts << " attempts";
    EXPECT_EQ(attempts, 1) << "the cluster had room: no attempt should have given up";
    while (Clock::now() < deadline) {
        ASSERT_EQ(cpg_dispatch(handle, CS_DISPATCH_ALL), CS_OK);
        std::lock_guard lock(delivered.mutex);
        if (!delivered.messages.empty()) {
            break;
        }
    }
    std::lock_guard lock(delivered.mutex);
    ASSERT_EQ(delivered.messages.size(), 1u);
    EXPECT_TRUE(delivered.messages.front() == large) << "the message arrived damaged";
    cpg_finalize(handle);
}

INSTANTIATE_TEST_SUITE_P(Backlogs, OneThread, ::testing::Values("0", "256"),
                         [](const ::testing::TestParamInfo<const char*>& mib) {
                             return std::string("backlog_mib_") + mib.param;
                         });

}  // namespace
