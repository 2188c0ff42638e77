// A message larger than the delivery ring goes out in fragments as readers make room.
// The send gives up (CS_ERR_TRY_AGAIN) only when a fragment found no room for 2 s: a
// message that keeps moving is never cut off however long it takes, and one that gave up
// is delivered to nobody, while the next message arrives whole.
#include "tests/support/daemon_process.hpp"

#include <corosync/cpg.h>
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr size_t kRingMib = 8;

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
    // Reads until `count` messages came (or 30 s passed); a copy of them.
    std::vector<std::vector<char>> wait_for(size_t count)
    {
        const auto deadline = Clock::now() + 30s;
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

// Forks a reader that joins `group`, says so on the pipe, reads nothing for `idle`,
// then reads every `pause` until a message came, and reports it on the pipe.
pid_t fork_reader(const char* group, std::chrono::milliseconds idle, std::chrono::milliseconds pause, int fds[2])
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
        std::this_thread::sleep_for(idle);
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
    rcpg::testing::DaemonProcess daemon({"--ring-mib", std::to_string(kRingMib)});
    ASSERT_TRUE(daemon.running());
    int fds[2];
    // The reader frees at most a ring (8 MiB) per 400 ms: 80 MiB take more than 3 s.
    const pid_t reader = fork_reader("room-moving", 0ms, 400ms, fds);
    ASSERT_GT(reader, 0);
    char ready = 0;
    ASSERT_EQ(::read(fds[0], &ready, 1), 1);
    Member sender("room-moving");
    sender.start_reading(1ms);
    const std::vector<char> large = pattern(80u << 20);
    const auto started = Clock::now();
    EXPECT_EQ(sender.send(large), CS_OK);
    EXPECT_GT(Clock::now() - started, 2500ms) << "the reader did not hold the message back past the room timeout";
    const ReaderResult result = reader_result(reader, fds);
    EXPECT_EQ(result.messages, 1u);
    EXPECT_EQ(result.first_bytes, large.size());
    EXPECT_TRUE(result.first_is_pattern) << "the 80 MiB message arrived damaged";
}

TEST(LargeMessageRoom, AFragmentWithoutRoomFor2sGivesUpAndIsDeliveredToNobody)
{
    rcpg::testing::DaemonProcess daemon({"--ring-mib", std::to_string(kRingMib)});
    ASSERT_TRUE(daemon.running());
    int fds[2];
    // The reader reads nothing for 5 s: after about 8 MiB no fragment finds room.
    const pid_t reader = fork_reader("room-stuck", 5000ms, 1ms, fds);
    ASSERT_GT(reader, 0);
    char ready = 0;
    ASSERT_EQ(::read(fds[0], &ready, 1), 1);
    Member sender("room-stuck");
    sender.start_reading(1ms);
    const auto started = Clock::now();
    EXPECT_EQ(sender.send(pattern(40u << 20)), CS_ERR_TRY_AGAIN);
    EXPECT_GE(Clock::now() - started, 2s);
    const std::vector<char> next = pattern(1000);
    const auto deadline = Clock::now() + 20s;
    cs_error_t sent = CS_ERR_TRY_AGAIN;
    while ((sent = sender.send(next)) == CS_ERR_TRY_AGAIN && Clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(sent, CS_OK);
    const ReaderResult result = reader_result(reader, fds);
    EXPECT_EQ(result.first_bytes, next.size()) << "the abandoned message was delivered, or the next one was not";
    EXPECT_TRUE(result.first_is_pattern);
}

}  // namespace
