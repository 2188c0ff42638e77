// A hostile local process against rcpgd: malformed and truncated control requests,
// forged shared-memory tokens, and corrupt submission descriptors. Each must be refused
// without crashing the daemon, and a well-behaved client keeps working throughout.
#include "libcpg/ipc/fd_passing.hpp"
#include "libcpg/ipc/protocol.hpp"
#include "delivery/ring_format.hpp"
#include "libcpg/ipc/control_block.hpp"
#include "tests/support/daemon_process.hpp"
#include "tests/support/raw_session.hpp"

#include <corosync/cpg.h>
#include <gtest/gtest.h>
#include <qb/qbipcc.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <string>
#include <utility>
#include <vector>

namespace {

using namespace rcpg;

// How long a reply or a disconnection may take: a bound for a hang, far above what a slow,
// busy machine under a sanitizer needs (a pass never waits it out).
constexpr int kReplyTimeoutMs = 60'000;

// A client that uses the library as intended: joins, sends, and must get its message back.
class WellBehavedClient {
public:
    WellBehavedClient()
    {
        cpg_callbacks_t callbacks{[](cpg_handle_t handle, const cpg_name*, uint32_t, uint32_t, void*, size_t len) {
                                      void* context = nullptr;
                                      cpg_context_get(handle, &context);
                                      static_cast<WellBehavedClient*>(context)->bytes_received += len;
                                      static_cast<WellBehavedClient*>(context)->received++;
                                  },
                                  nullptr};
        EXPECT_EQ(cpg_initialize(&handle_, &callbacks), CS_OK);
        cpg_context_set(handle_, this);
        cpg_name group{};
        group.length = 4;
        std::memcpy(group.value, "good", 4);
        EXPECT_EQ(cpg_join(handle_, &group), CS_OK);
    }
    ~WellBehavedClient() { cpg_finalize(handle_); }

    // Sends one message and waits (bounded) until it is delivered back.
    bool round_trip()
    {
        const size_t before = received;
        char payload[32] = "still here";
        iovec iov{payload, sizeof(payload)};
        if (cpg_mcast_joined(handle_, CPG_TYPE_AGREED, &iov, 1) != CS_OK) {
            return false;
        }
        // A bound for a hang, far above a slow machine's round trip.
        for (int i = 0; i < 60'000 && received == before; ++i) {
            cpg_dispatch(handle_, CS_DISPATCH_ALL);
            usleep(1000);
        }
        return received == before + 1;
    }

    size_t received = 0;
    size_t bytes_received = 0;

private:
    cpg_handle_t handle_ = 0;
};

class HostileClient : public ::testing::Test {
protected:
    qb_ipcc_connection_t* raw_connect()
    {
        return qb_ipcc_connect(daemon_.ipc_name().c_str(), ipc::kIpcMaxMessageBytes);
    }

    // Sends `bytes` as a request; returns the error in the response (or a negative errno).
    int send_raw(qb_ipcc_connection_t* connection, const std::vector<char>& bytes)
    {
        iovec part{const_cast<char*>(bytes.data()), bytes.size()};
        std::vector<char> response(ipc::kIpcMaxMessageBytes);
        const ssize_t got = qb_ipcc_sendv_recv(connection, &part, 1, response.data(), response.size(), kReplyTimeoutMs);
        if (got < 0) {
            return static_cast<int>(got);
        }
        qb_ipc_response_header header;
        std::memcpy(&header, response.data(), sizeof(header));
        return header.error;
    }

    std::vector<char> request_bytes(int32_t id, size_t total_size, int32_t declared_size)
    {
        std::vector<char> bytes(total_size, 0);
        qb_ipc_request_header header{id, declared_size};
        std::memcpy(bytes.data(), &header, std::min(sizeof(header), total_size));
        return bytes;
    }

    rcpg::testing::DaemonProcess daemon_;
};

TEST_F(HostileClient, MalformedRequestsAreAnsweredWithAnErrorAndChangeNothing)
{
    WellBehavedClient good;
    ASSERT_TRUE(good.round_trip());
    qb_ipcc_connection_t* connection = raw_connect();
    ASSERT_NE(connection, nullptr);

    // A request before init, of every known id, is refused.
    EXPECT_EQ(send_raw(connection, request_bytes(3, sizeof(ipc::GroupRequest), sizeof(ipc::GroupRequest))),
              CS_ERR_INIT);
    // Unknown ids, wrong declared sizes, truncated bodies, out-of-range fields.
    EXPECT_EQ(send_raw(connection, request_bytes(999, 64, 64)), CS_ERR_MESSAGE_ERROR);
    EXPECT_EQ(send_raw(connection, request_bytes(1, sizeof(ipc::InitRequest), 8)), CS_ERR_MESSAGE_ERROR);
    EXPECT_EQ(send_raw(connection, request_bytes(1, sizeof(ipc::InitRequest) - 4, sizeof(ipc::InitRequest) - 4)),
              CS_ERR_MESSAGE_ERROR);
    EXPECT_EQ(send_raw(connection, request_bytes(1, sizeof(ipc::InitRequest), sizeof(ipc::InitRequest))),
              CS_ERR_MESSAGE_ERROR);  // protocol version 0
    auto long_name = request_bytes(3, sizeof(ipc::GroupRequest), sizeof(ipc::GroupRequest));
    const uint32_t too_long = 4096;
    std::memcpy(long_name.data() + offsetof(ipc::GroupRequest, group), &too_long, sizeof(too_long));
    EXPECT_EQ(send_raw(connection, long_name), CS_ERR_MESSAGE_ERROR);
    auto bad_type = request_bytes(7, sizeof(ipc::IterationRequest), sizeof(ipc::IterationRequest));
    const uint32_t type = 42;
    std::memcpy(bad_type.data() + offsetof(ipc::IterationRequest, iteration_type), &type, sizeof(type));
    EXPECT_EQ(send_raw(connection, bad_type), CS_ERR_MESSAGE_ERROR);
    // EVS joins and leaves: the key count must give the size exactly, the reserved word 0.
    const int32_t evs_join = static_cast<int32_t>(ipc::RequestId::evs_join);
    const size_t one_key = sizeof(ipc::EvsGroupsRequestHeader) + sizeof(ipc::EvsKey);
    auto evs_count = request_bytes(evs_join, one_key, static_cast<int32_t>(one_key));
    const uint32_t keys = 2;  // one key's bytes
    std::memcpy(evs_count.data() + offsetof(ipc::EvsGroupsRequestHeader, count), &keys, sizeof(keys));
    EXPECT_EQ(send_raw(connection, evs_count), CS_ERR_MESSAGE_ERROR);
    const uint32_t huge = 0x08000000;  // 4 GiB of keys: the size overflows 32 bits
    std::memcpy(evs_count.data() + offsetof(ipc::EvsGroupsRequestHeader, count), &huge, sizeof(huge));
    EXPECT_EQ(send_raw(connection, evs_count), CS_ERR_MESSAGE_ERROR);
    auto evs_reserved = request_bytes(evs_join, one_key, static_cast<int32_t>(one_key));
    const uint32_t one = 1;
    std::memcpy(evs_reserved.data() + offsetof(ipc::EvsGroupsRequestHeader, count), &one, sizeof(one));
    std::memcpy(evs_reserved.data() + offsetof(ipc::EvsGroupsRequestHeader, reserved), &one, sizeof(one));
    EXPECT_EQ(send_raw(connection, evs_reserved), CS_ERR_MESSAGE_ERROR);

    // Random garbage of random sizes.
    std::mt19937 random(12345);
    for (int i = 0; i < 300; ++i) {
        std::vector<char> garbage(random() % 600 + 16);
        for (char& byte : garbage) {
            byte = static_cast<char>(random());
        }
        qb_ipc_request_header header{static_cast<int32_t>(random() % 12), static_cast<int32_t>(garbage.size())};
        std::memcpy(garbage.data(), &header, sizeof(header));
        const int result = send_raw(connection, garbage);
        EXPECT_TRUE(result == CS_ERR_MESSAGE_ERROR || result == CS_ERR_INIT || result == CS_OK || result < 0)
            << "result " << result;
        if (result < 0) {
            break;  // the daemon may drop a connection that keeps misbehaving
        }
    }
    qb_ipcc_disconnect(connection);
    EXPECT_TRUE(good.round_trip());
    EXPECT_EQ(::kill(daemon_.pid(), 0), 0) << daemon_.log();
}

TEST_F(HostileClient, ForgedTokensGetNoSharedMemory)
{
    WellBehavedClient good;
    std::array<ipc::UniqueFd, ipc::fd_count> fds;
    ipc::Token forged{};
    forged.fill(0x42);
    EXPECT_NE(ipc::receive_client_fds(daemon_.ipc_name(), forged, fds), 0);
    EXPECT_FALSE(fds[0]);

    // A connection that never sends its token does not hold the daemon up.
    const int idle = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string name = ipc::fd_socket_name(daemon_.ipc_name());
    std::memcpy(address.sun_path + 1, name.data(), name.size());
    ASSERT_EQ(::connect(idle, reinterpret_cast<sockaddr*>(&address),
                        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size())),
              0);
    EXPECT_TRUE(good.round_trip());
    ::close(idle);
    EXPECT_TRUE(good.round_trip());
}

using rcpg::testing::open_raw_session;
using rcpg::testing::RawSession;

void publish_descriptor(RawSession& session, const ipc::SubmissionDescriptor& descriptor, uint64_t new_tail)
{
    auto* control = reinterpret_cast<ipc::ControlBlock*>(session.control.get());
    auto* descriptors =
        reinterpret_cast<ipc::SubmissionDescriptor*>(session.control.bytes() + ipc::kControlDescriptorsOffset);
    descriptors[0] = descriptor;
    control->sub_tail.store(new_tail, std::memory_order_release);
    const uint64_t one = 1;
    EXPECT_EQ(::write(session.fds[ipc::doorbell_fd].get(), &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
}

// The daemon closes a connection it rejects: event_recv then reports it.
bool disconnected_within(qb_ipcc_connection_t* connection, int timeout_ms)
{
    char buffer[64];
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        const ssize_t result = qb_ipcc_event_recv(connection, buffer, sizeof(buffer), 10);
        if (result < 0 && result != -EAGAIN && result != -ETIMEDOUT) {
            return true;
        }
    }
    return false;
}

TEST_F(HostileClient, DescriptorOutsideTheArenaDisconnectsOnlyThatClient)
{
    WellBehavedClient good;
    RawSession evil = open_raw_session(daemon_.ipc_name());
    ASSERT_TRUE(evil.error.empty()) << evil.error;
    ipc::SubmissionDescriptor descriptor{};
    descriptor.arena_offset = evil.init.arena_bytes - 8;
    descriptor.length = 4096;  // runs past the end of the arena
    publish_descriptor(evil, descriptor, 1);
    EXPECT_TRUE(disconnected_within(evil.connection, kReplyTimeoutMs));
    qb_ipcc_disconnect(std::exchange(evil.connection, nullptr));
    EXPECT_TRUE(good.round_trip());
    EXPECT_EQ(::kill(daemon_.pid(), 0), 0) << daemon_.log();
}

TEST_F(HostileClient, DescriptorAcrossTheCopyAndZeroCopyPartsDisconnectsOnlyThatClient)
{
    // The parts are registered for the device each on its own: no message may lie in both.
    WellBehavedClient good;
    RawSession evil = open_raw_session(daemon_.ipc_name());
    ASSERT_TRUE(evil.error.empty()) << evil.error;
    ASSERT_GT(evil.init.arena_bytes, evil.init.arena_copy_bytes);
    ipc::SubmissionDescriptor descriptor{};
    descriptor.arena_offset = evil.init.arena_copy_bytes - 8;
    descriptor.length = 16;
    publish_descriptor(evil, descriptor, 1);
    EXPECT_TRUE(disconnected_within(evil.connection, kReplyTimeoutMs));
    qb_ipcc_disconnect(std::exchange(evil.connection, nullptr));
    EXPECT_TRUE(good.round_trip());
    EXPECT_EQ(::kill(daemon_.pid(), 0), 0) << daemon_.log();
}

TEST_F(HostileClient, SubmissionIndexBeyondTheRingDisconnectsOnlyThatClient)
{
    WellBehavedClient good;
    RawSession evil = open_raw_session(daemon_.ipc_name());
    ASSERT_TRUE(evil.error.empty()) << evil.error;
    ipc::SubmissionDescriptor descriptor{};
    descriptor.length = 16;
    publish_descriptor(evil, descriptor, uint64_t{1} << 40);
    EXPECT_TRUE(disconnected_within(evil.connection, kReplyTimeoutMs));
    qb_ipcc_disconnect(std::exchange(evil.connection, nullptr));
    EXPECT_TRUE(good.round_trip());
}

TEST_F(HostileClient, OversizedAndUnknownFlagDescriptorsAreRefused)
{
    WellBehavedClient good;
    for (const auto& [length, flags] : {std::pair<uint32_t, uint16_t>{delivery::kMaxAtomicMessageBytes + 1, 0},
                                        std::pair<uint32_t, uint16_t>{16, 0x8000}}) {
        RawSession evil = open_raw_session(daemon_.ipc_name());
        ASSERT_TRUE(evil.error.empty()) << evil.error;
        ipc::SubmissionDescriptor descriptor{};
        descriptor.length = length;
        descriptor.flags = flags;
        publish_descriptor(evil, descriptor, 1);
        EXPECT_TRUE(disconnected_within(evil.connection, kReplyTimeoutMs)) << "length " << length << " flags " << flags;
        qb_ipcc_disconnect(std::exchange(evil.connection, nullptr));
    }
    EXPECT_TRUE(good.round_trip());
    EXPECT_EQ(good.bytes_received, 32u);
}

// The words a client writes for its backlog, lying: `holding` at random positions, at
// entries it may no longer read and at real entries, `backlog_consumed` and `consumed`
// anywhere, all the time, while it reads nothing. A well-behaved member of the same
// group sends four rings' worth of messages delivered in place and gets every one back
// whole and in order; the liar costs it nothing beyond a held page range, and the
// daemon stays up.
struct FloodResult {
    uint64_t sent = 0;
    uint64_t delivered = 0;  // in order and intact
    uint64_t damaged = 0;
};

// A member that sends `messages` of 64 KiB (delivered in place) and reads them back,
// checking order and content; for a forked child (no gtest assertions).
FloodResult flood_and_read_back(const cpg_name& group, uint64_t messages)
{
    FloodResult result;
    cpg_callbacks_t callbacks{[](cpg_handle_t handle, const cpg_name*, uint32_t, uint32_t, void* msg, size_t len) {
                                  void* context = nullptr;
                                  cpg_context_get(handle, &context);
                                  auto* seen = static_cast<FloodResult*>(context);
                                  uint64_t number = 0;
                                  std::memcpy(&number, msg, sizeof number);
                                  const auto* bytes = static_cast<const unsigned char*>(msg);
                                  bool intact = len == 65536 && number == seen->delivered;
                                  for (size_t i = sizeof number; intact && i < len; i += 509) {
                                      intact = bytes[i] == static_cast<unsigned char>(number + i);
                                  }
                                  seen->damaged += intact ? 0 : 1;
                                  seen->delivered += intact ? 1 : 0;
                              },
                              nullptr};
    cpg_handle_t handle = 0;
    if (cpg_initialize(&handle, &callbacks) != CS_OK || cpg_join(handle, &group) != CS_OK) {
        return result;
    }
    cpg_context_set(handle, &result);
    std::vector<unsigned char> message(65536);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
    while ((result.sent < messages || result.delivered < messages) && result.damaged == 0 &&
           std::chrono::steady_clock::now() < deadline) {
        if (result.sent < messages) {
            std::memcpy(message.data(), &result.sent, sizeof result.sent);
            for (size_t i = sizeof result.sent; i < message.size(); ++i) {
                message[i] = static_cast<unsigned char>(result.sent + i);
            }
            iovec iov{message.data(), message.size()};
            const cs_error_t sent = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
            if (sent != CS_OK && sent != CS_ERR_TRY_AGAIN) {
                break;
            }
            result.sent += sent == CS_OK ? 1 : 0;
        }
        if (cpg_dispatch(handle, CS_DISPATCH_ALL) == CS_ERR_LIBRARY) {
            break;
        }
    }
    cpg_finalize(handle);
    return result;
}

// The words a client writes for its backlog, lying: `holding` at random positions, at
// entries it may no longer read and where real ones may start, `backlog_consumed` and
// `consumed` anywhere, all the time, while it reads nothing. A well-behaved member of the
// same group (another process) sends two rings' worth of messages delivered in place
// (the liar is moved to its backlog again and again, within its budget) and gets every
// one back whole and in order: the liar costs it nothing, and the daemon stays up.
TEST(HostileBacklogWords, LiesAboutHoldsAndProgressCostOnlyTheLiar)
{
    rcpg::testing::DaemonProcess daemon;  // a 64 MiB ring, 256 MiB backlogs
    ASSERT_TRUE(daemon.running());
    cpg_name group{};
    group.length = 4;
    std::memcpy(group.value, "good", 4);
    constexpr uint64_t kMessages = 2048;  // 128 MiB
    int go[2];
    int report[2];
    ASSERT_EQ(::pipe(go), 0);
    ASSERT_EQ(::pipe(report), 0);
    const pid_t good = ::fork();
    if (good == 0) {
        char byte = 0;
        if (::read(go[0], &byte, 1) != 1) {
            ::_exit(1);
        }
        const FloodResult result = flood_and_read_back(group, kMessages);
        ::_exit(::write(report[1], &result, sizeof result) == sizeof result ? 0 : 1);
    }
    ASSERT_GT(good, 0);
    RawSession evil = open_raw_session(daemon.ipc_name(), "good");
    ASSERT_TRUE(evil.error.empty()) << evil.error;
    auto* control = static_cast<ipc::ControlBlock*>(evil.control.get());
    const ipc::Mapping ring_header =
        ipc::map_fd(evil.fds[ipc::ring_fd].get(), delivery::kPageBytes, 0, ipc::Access::read_only);
    ASSERT_TRUE(ring_header);
    const auto* header = static_cast<const delivery::RingHeader*>(ring_header.get());
    std::atomic<bool> done{false};
    std::thread liar([&] {
        std::mt19937_64 random(7);
        while (!done.load()) {
            const uint64_t tail = header->tail.load();
            const uint64_t pick = random() % 4;
            // Anywhere; around the tail (8-byte aligned); on page-aligned entry-sized steps
            // back from it, where entries delivered in place may start; or position 0.
            uint64_t position = 0;
            if (pick == 0) {
                position = random();
            } else if (pick == 1) {
                position = (tail - random() % (128u << 20)) & ~7ull;
            } else if (pick == 2) {
                position = (tail & ~4095ull) - 69632 * (random() % 2000);
            }
            control->holding.store(position + 1);
            control->backlog_consumed.store(random() % 2 == 0 ? random() : ~0ull);
            control->consumed.store(random() % 2 == 0 ? random() : tail);
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
    });
    const char start = 'g';
    ASSERT_EQ(::write(go[1], &start, 1), 1);
    FloodResult result;
    const bool reported = ::read(report[0], &result, sizeof result) == sizeof result;
    done.store(true);
    liar.join();
    int status = 0;
    ::waitpid(good, &status, 0);
    for (int fd : {go[0], go[1], report[0], report[1]}) {
        ::close(fd);
    }
    ASSERT_TRUE(reported);
    EXPECT_EQ(result.sent, kMessages);
    EXPECT_EQ(result.delivered, kMessages);
    EXPECT_EQ(result.damaged, 0u);
    EXPECT_EQ(::kill(daemon.pid(), 0), 0) << daemon.log();
}

}  // namespace
