// Access control at cpg_initialize: a process that is neither root (uid or gid 0) nor
// allowed by the daemon (--allow-user / --allow-group) gets CS_ERR_ACCESS; an allowed
// one gets a working handle (join, self-delivery). Needs root to drop to nobody
// (65534); skipped otherwise.
#include "tests/conformance/conformance.hpp"

#include <grp.h>

namespace rcpg::conformance {
namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

// Exit codes of the child: 0 all as expected; 10 + cs_error_t when cpg_initialize
// returned something else than expected; small numbers for other failures.
int as_nobody(bool expect_allowed)
{
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNogroup) != 0 || ::setuid(kNobody) != 0) {
        return 2;
    }
    if (::getuid() != kNobody || ::getgid() != kNogroup) {
        return 3;
    }
    cpg_handle_t handle = 0;
    const cs_error_t result = cpg_initialize(&handle, nullptr);
    if (!expect_allowed) {
        return result == CS_ERR_ACCESS ? 0 : 10 + static_cast<int>(result);
    }
    if (result != CS_OK) {
        return 10 + static_cast<int>(result);
    }
    cpg_finalize(handle);
    // The whole path works: join, send, receive.
    Client client;
    if (!client.ok()) {
        return 4;
    }
    if (client.join("as-nobody") != CS_OK) {
        return 5;
    }
    if (client.send("from nobody") != CS_OK) {
        return 6;
    }
    if (!client.pump_until_body("from nobody")) {
        return 7;
    }
    unsigned int nodeid = 0;
    if (cpg_local_get(client.handle, &nodeid) != CS_OK || nodeid != 1) {
        return 8;
    }
    return 0;
}

std::string describe(int code)
{
    if (code >= 10 && code < 10 + 101) {
        return "cpg_initialize returned " + std::to_string(code - 10);
    }
    return "exit code " + std::to_string(code);
}

class Access : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (::geteuid() != 0) {
            GTEST_SKIP() << "needs root to switch to uid " << kNobody;
        }
    }
};

TEST_F(Access, UnlistedNonRootProcessGetsAccessError)
{
    rcpg::testing::DaemonProcess daemon;
    ChildProcess child([] { return as_nobody(false); });
    ASSERT_TRUE(child.started());
    const int code = child.wait();
    EXPECT_EQ(code, 0) << describe(code) << "; expected CS_ERR_ACCESS (11)";
}

TEST_F(Access, AllowedUserGetsAWorkingHandle)
{
    rcpg::testing::DaemonProcess daemon({"--allow-user", std::to_string(kNobody)});
    ChildProcess child([] { return as_nobody(true); });
    ASSERT_TRUE(child.started());
    const int code = child.wait();
    EXPECT_EQ(code, 0) << describe(code);
}

TEST_F(Access, AllowedUserByNameGetsAWorkingHandle)
{
    rcpg::testing::DaemonProcess daemon({"--allow-user", "nobody"});
    ChildProcess child([] { return as_nobody(true); });
    ASSERT_TRUE(child.started());
    const int code = child.wait();
    EXPECT_EQ(code, 0) << describe(code);
}

TEST_F(Access, AllowedGroupGetsAWorkingHandle)
{
    rcpg::testing::DaemonProcess daemon({"--allow-group", std::to_string(kNogroup)});
    ChildProcess child([] { return as_nobody(true); });
    ASSERT_TRUE(child.started());
    const int code = child.wait();
    EXPECT_EQ(code, 0) << describe(code);
}

TEST_F(Access, AllowingSomeoneElseStillRefusesNobody)
{
    rcpg::testing::DaemonProcess daemon({"--allow-user", "1", "--allow-group", "1"});
    ChildProcess child([] { return as_nobody(false); });
    ASSERT_TRUE(child.started());
    const int code = child.wait();
    EXPECT_EQ(code, 0) << describe(code) << "; expected CS_ERR_ACCESS (11)";
}

}  // namespace
}  // namespace rcpg::conformance
