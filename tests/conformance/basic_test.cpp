// The basic CPG cycle against a real rcpgd: initialize, join, multicast, self-delivery,
// confchg contents, leave, finalize.
#include "tests/support/daemon_process.hpp"

#include <corosync/cpg.h>
#include <gtest/gtest.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

namespace {

struct Recorded {
    struct Message {
        uint32_t nodeid;
        uint32_t pid;
        std::string body;
    };
    struct Confchg {
        std::vector<cpg_address> members, left, joined;
    };
    std::vector<Message> messages;
    std::vector<Confchg> confchgs;
};

Recorded* recorded_for(cpg_handle_t handle)
{
    void* context = nullptr;
    cpg_context_get(handle, &context);
    return static_cast<Recorded*>(context);
}

void on_deliver(cpg_handle_t handle, const cpg_name*, uint32_t nodeid, uint32_t pid, void* msg, size_t len)
{
    recorded_for(handle)->messages.push_back({nodeid, pid, std::string(static_cast<char*>(msg), len)});
}

void on_confchg(cpg_handle_t handle, const cpg_name*, const cpg_address* members, size_t n_members,
                const cpg_address* left, size_t n_left, const cpg_address* joined, size_t n_joined)
{
    recorded_for(handle)->confchgs.push_back({{members, members + n_members},
                                              {left, left + n_left},
                                              {joined, joined + n_joined}});
}

cpg_name group_named(const char* text)
{
    cpg_name name{};
    name.length = static_cast<uint32_t>(std::strlen(text));
    std::memcpy(name.value, text, name.length);
    return name;
}

class CpgBasic : public ::testing::Test {
protected:
    rcpg::testing::DaemonProcess daemon_;
};

TEST_F(CpgBasic, JoinSendReceiveLeave)
{
    cpg_callbacks_t callbacks{on_deliver, on_confchg};
    cpg_handle_t handle = 0;
    ASSERT_EQ(cpg_initialize(&handle, &callbacks), CS_OK);
    EXPECT_NE(handle, 0u);
    Recorded recorded;
    ASSERT_EQ(cpg_context_set(handle, &recorded), CS_OK);
    const cpg_name group = group_named("basic");
    ASSERT_EQ(cpg_join(handle, &group), CS_OK);

    const std::string body = "hello, group";
    iovec iov{const_cast<char*>(body.data()), body.size()};
    ASSERT_EQ(cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1), CS_OK);
    // Own join confchg, then the message: two events.
    ASSERT_EQ(cpg_dispatch(handle, CS_DISPATCH_ONE), CS_OK);
    ASSERT_EQ(recorded.confchgs.size(), 1u);
    ASSERT_EQ(cpg_dispatch(handle, CS_DISPATCH_ONE), CS_OK);
    ASSERT_EQ(recorded.messages.size(), 1u);
    EXPECT_EQ(recorded.messages[0].body, body);
    EXPECT_EQ(recorded.messages[0].pid, static_cast<uint32_t>(::getpid()));
    EXPECT_EQ(recorded.messages[0].nodeid, 1u);

    const auto& join = recorded.confchgs[0];
    ASSERT_EQ(join.joined.size(), 1u);
    EXPECT_EQ(join.joined[0].pid, static_cast<uint32_t>(::getpid()));
    EXPECT_EQ(join.joined[0].reason, CPG_REASON_JOIN);
    ASSERT_EQ(join.members.size(), 1u);
    EXPECT_TRUE(join.left.empty());

    EXPECT_EQ(cpg_dispatch(handle, CS_DISPATCH_ONE_NONBLOCKING), CS_ERR_TRY_AGAIN);
    EXPECT_EQ(cpg_dispatch(handle, CS_DISPATCH_ALL), CS_OK);

    ASSERT_EQ(cpg_leave(handle, &group), CS_OK);
    ASSERT_EQ(cpg_dispatch(handle, CS_DISPATCH_ONE), CS_OK);
    ASSERT_EQ(recorded.confchgs.size(), 2u);
    const auto& leave = recorded.confchgs[1];
    ASSERT_EQ(leave.left.size(), 1u);
    EXPECT_EQ(leave.left[0].reason, CPG_REASON_LEAVE);
    EXPECT_TRUE(leave.members.empty());
    EXPECT_EQ(cpg_finalize(handle), CS_OK);
    EXPECT_EQ(cpg_finalize(handle), CS_ERR_BAD_HANDLE);
}

}  // namespace
