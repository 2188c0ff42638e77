// EVS's trust boundaries, each written as the attack of a local program that speaks
// rcpgd's protocol itself (tests/support/raw_session.hpp) beside a well-behaved libevs
// client:
//  - the groups an EVS message names are the sender's word: a prefix that does not parse
//    reaches nobody, and costs nobody anything;
//  - each API's traffic is its own: a CPG client's EVS-flagged submission, an EVS
//    client's fragment or CPG group request, are refused;
//  - what the daemon keeps for a client's groups is bounded.
#include "tests/support/daemon_process.hpp"
#include "tests/support/raw_session.hpp"

#include "delivery/evs_payload.hpp"

#include <corosync/evs.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace rcpg;
using rcpg::testing::open_raw_session;
using rcpg::testing::RawSession;

// A bound for a hang, far above a slow machine's round trip.
constexpr int kReplyTimeoutMs = 60'000;

evs_group group_named(const char* name)
{
    evs_group group{};
    std::strncpy(group.key, name, sizeof(group.key));
    return group;
}

// A libevs client joined to "good" that counts what it gets.
class GoodEvsClient {
public:
    GoodEvsClient()
    {
        evs_callbacks_t callbacks{[](hdb_handle_t handle, unsigned int, const void* msg, size_t len) {
                                      void* context = nullptr;
                                      evs_context_get(handle, &context);
                                      auto* self = static_cast<GoodEvsClient*>(context);
                                      self->bodies.emplace_back(static_cast<const char*>(msg), len);
                                  },
                                  nullptr};
        EXPECT_EQ(evs_initialize(&handle_, &callbacks), CS_OK);
        evs_context_set(handle_, this);
        const evs_group good = group_named("good");
        EXPECT_EQ(evs_join(handle_, &good, 1), CS_OK);
    }
    ~GoodEvsClient() { evs_finalize(handle_); }

    // Sends `text` to "good" and waits (bounded) until it is delivered back; true when it
    // is the next message this client gets.
    bool round_trip(const std::string& text)
    {
        const size_t before = bodies.size();
        iovec iov{const_cast<char*>(text.data()), text.size()};
        if (evs_mcast_joined(handle_, EVS_TYPE_AGREED, &iov, 1) != CS_OK) {
            return false;
        }
        return wait_for(before + 1) && bodies.size() == before + 1 && bodies.back() == text;
    }

    // Dispatches until `count` messages are here (bounded); false on an error or timeout.
    bool wait_for(size_t count)
    {
        int fd = -1;
        evs_fd_get(handle_, &fd);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kReplyTimeoutMs);
        while (bodies.size() < count && std::chrono::steady_clock::now() < deadline) {
            pollfd entry{fd, POLLIN, 0};
            ::poll(&entry, 1, 100);
            if (evs_dispatch(handle_, CS_DISPATCH_ALL) != CS_OK) {
                return false;
            }
        }
        return bodies.size() >= count;
    }

    std::vector<std::string> bodies;

private:
    evs_handle_t handle_ = 0;
};

// Writes `payload` into the session's arena and publishes it as submission `index`.
void submit(RawSession& session, const std::vector<std::byte>& payload, uint16_t flags, uint64_t index)
{
    ipc::Mapping arena = ipc::map_fd(session.fds[ipc::arena_fd].get(), session.init.arena_bytes, 0,
                                     ipc::Access::read_write);
    ASSERT_TRUE(arena);
    const uint64_t offset = index * 4096;
    std::memcpy(arena.bytes() + offset, payload.data(), payload.size());
    auto* control = reinterpret_cast<ipc::ControlBlock*>(session.control.get());
    auto* descriptors =
        reinterpret_cast<ipc::SubmissionDescriptor*>(session.control.bytes() + ipc::kControlDescriptorsOffset);
    ipc::SubmissionDescriptor descriptor{};
    descriptor.arena_offset = offset;
    descriptor.length = static_cast<uint32_t>(payload.size());
    descriptor.flags = flags;
    descriptor.total_bytes = payload.size();
    descriptors[index & (session.init.submission_capacity - 1)] = descriptor;
    control->sub_tail.store(index + 1, std::memory_order_release);
    const uint64_t one = 1;
    EXPECT_EQ(::write(session.fds[ipc::doorbell_fd].get(), &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
}

// An EVS payload: a prefix claiming `claimed_groups`, the `keys` given, then `message`.
std::vector<std::byte> evs_payload(uint32_t claimed_groups, const std::vector<evs_group>& keys, const std::string& message)
{
    std::vector<std::byte> bytes(sizeof(delivery::EvsPrefix) + keys.size() * sizeof(evs_group) + message.size());
    const delivery::EvsPrefix prefix{claimed_groups, 0};
    std::memcpy(bytes.data(), &prefix, sizeof(prefix));
    if (!keys.empty()) {
        std::memcpy(bytes.data() + sizeof(prefix), keys.data(), keys.size() * sizeof(evs_group));
    }
    std::memcpy(bytes.data() + sizeof(prefix) + keys.size() * sizeof(evs_group), message.data(), message.size());
    return bytes;
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

// Sends an EVS join or leave of `count` keys (`first` and zeros after it) on a raw
// session; returns the daemon's error code, 0 without an answer.
int raw_groups_request(RawSession& session, ipc::RequestId id, uint32_t count, const char* first)
{
    std::vector<std::byte> request(sizeof(ipc::EvsGroupsRequestHeader) + count * sizeof(ipc::EvsKey));
    ipc::EvsGroupsRequestHeader header{};
    header.header = {static_cast<int32_t>(id), static_cast<int32_t>(request.size())};
    header.count = count;
    std::memcpy(request.data(), &header, sizeof(header));
    for (uint32_t i = 0; i < count; ++i) {
        ipc::EvsKey key{};
        std::snprintf(key.data(), key.size(), "%s-%u", first, i);
        std::memcpy(request.data() + sizeof(header) + i * sizeof(key), key.data(), key.size());
    }
    iovec part{request.data(), request.size()};
    ipc::EvsGroupsResponse response{};
    const ssize_t got =
        qb_ipcc_sendv_recv(session.connection, &part, 1, &response, sizeof(response), kReplyTimeoutMs);
    return got >= static_cast<ssize_t>(sizeof(qb_ipc_response_header)) ? response.header.error : 0;
}

class EvsHostile : public ::testing::Test {
protected:
    rcpg::testing::DaemonProcess daemon_;
};

TEST_F(EvsHostile, APrefixThatDoesNotParseReachesNobodyAndCostsNothing)
{
    GoodEvsClient good;
    RawSession evil = open_raw_session(daemon_.ipc_name(), "", ipc::kInitFlagEvs);
    ASSERT_TRUE(evil.error.empty()) << evil.error;
    const std::vector<evs_group> good_group{group_named("good")};
    // Claims more groups than the payload holds, then a nonzero reserved word: each would
    // read past the payload or be taken for a format that does not exist.
    submit(evil, evs_payload(1000, good_group, "overlong"), delivery::kFlagEvs, 0);
    std::vector<std::byte> reserved = evs_payload(1, good_group, "reserved");
    reserved[4] = std::byte{1};
    submit(evil, reserved, delivery::kFlagEvs, 1);
    // A well-formed one afterwards does arrive: the ones before it, from the same sender,
    // were sequenced before it and passed over.
    submit(evil, evs_payload(1, good_group, "well-formed"), delivery::kFlagEvs, 2);
    ASSERT_TRUE(good.wait_for(1));
    EXPECT_EQ(good.bodies[0], "well-formed");
    EXPECT_TRUE(good.round_trip("after"));
    EXPECT_EQ(good.bodies.size(), 2u) << "only the well-formed message and the good client's own";
    EXPECT_EQ(::kill(daemon_.pid(), 0), 0) << daemon_.log();
}

TEST_F(EvsHostile, ACpgClientsEvsFlaggedSubmissionDisconnectsIt)
{
    GoodEvsClient good;
    RawSession evil = open_raw_session(daemon_.ipc_name(), "evil");
    ASSERT_TRUE(evil.error.empty()) << evil.error;
    submit(evil, evs_payload(1, {group_named("good")}, "forged"), delivery::kFlagEvs, 0);
    EXPECT_TRUE(disconnected_within(evil.connection, kReplyTimeoutMs));
    EXPECT_TRUE(good.round_trip("after"));
    EXPECT_EQ(good.bodies.size(), 1u) << "the forged message reached nobody";
}

TEST_F(EvsHostile, AnEvsClientsFragmentOrUnflaggedSubmissionDisconnectsIt)
{
    GoodEvsClient good;
    for (const uint16_t flags : {uint16_t(delivery::kFlagEvs | delivery::kFlagFragment | delivery::kFlagFragmentFirst),
                                 uint16_t{0}}) {
        RawSession evil = open_raw_session(daemon_.ipc_name(), "", ipc::kInitFlagEvs);
        ASSERT_TRUE(evil.error.empty()) << evil.error;
        submit(evil, evs_payload(1, {group_named("good")}, "forged"), flags, 0);
        EXPECT_TRUE(disconnected_within(evil.connection, kReplyTimeoutMs)) << "flags " << flags;
    }
    EXPECT_TRUE(good.round_trip("after"));
    EXPECT_EQ(good.bodies.size(), 1u);
}

TEST_F(EvsHostile, AnEvsClientGetsNoCpgGroupAndACpgClientNoEvsGroups)
{
    RawSession evs = open_raw_session(daemon_.ipc_name(), "", ipc::kInitFlagEvs);
    ASSERT_TRUE(evs.error.empty()) << evs.error;
    ipc::GroupRequest join{};
    join.header = {static_cast<int32_t>(ipc::RequestId::join), sizeof(join)};
    join.group.length = 4;
    std::memcpy(join.group.value, "good", 4);
    iovec part{&join, sizeof(join)};
    qb_ipc_response_header response{};
    ASSERT_GE(qb_ipcc_sendv_recv(evs.connection, &part, 1, &response, sizeof(response), kReplyTimeoutMs), 0);
    EXPECT_EQ(response.error, CS_ERR_NOT_SUPPORTED);

    RawSession cpg = open_raw_session(daemon_.ipc_name(), "");
    ASSERT_TRUE(cpg.error.empty()) << cpg.error;
    EXPECT_EQ(raw_groups_request(cpg, ipc::RequestId::evs_join, 1, "g"), CS_ERR_NOT_SUPPORTED);
}

TEST_F(EvsHostile, TheGroupsTheDaemonKeepsForAClientAreBounded)
{
    RawSession evil = open_raw_session(daemon_.ipc_name(), "", ipc::kInitFlagEvs);
    ASSERT_TRUE(evil.error.empty()) << evil.error;
    EXPECT_EQ(raw_groups_request(evil, ipc::RequestId::evs_join, ipc::kEvsMaxGroupsPerJoin + 1, "a"),
              CS_ERR_TOO_MANY_GROUPS)
        << "more than corosync's 50 in one call";
    uint32_t joined = 0;
    while (joined + ipc::kEvsMaxGroupsPerJoin <= ipc::kEvsMaxGroupsPerHandle) {
        ASSERT_EQ(raw_groups_request(evil, ipc::RequestId::evs_join, ipc::kEvsMaxGroupsPerJoin, "b"), CS_OK);
        joined += ipc::kEvsMaxGroupsPerJoin;
    }
    const uint32_t room = ipc::kEvsMaxGroupsPerHandle - joined;
    EXPECT_EQ(raw_groups_request(evil, ipc::RequestId::evs_join, room + 1, "c"), CS_ERR_TOO_MANY_GROUPS);
    EXPECT_EQ(raw_groups_request(evil, ipc::RequestId::evs_join, room, "c"), CS_OK);
    EXPECT_EQ(raw_groups_request(evil, ipc::RequestId::evs_join, 1, "d"), CS_ERR_TOO_MANY_GROUPS)
        << "the handle holds the most it may";
    // Leaving makes room again.
    EXPECT_EQ(raw_groups_request(evil, ipc::RequestId::evs_leave, 1, "c"), CS_OK);
    EXPECT_EQ(raw_groups_request(evil, ipc::RequestId::evs_join, 1, "d"), CS_OK);
}

}  // namespace
