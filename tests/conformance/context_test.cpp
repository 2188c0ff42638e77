// Calls from the wrong context: a handle used in a forked child, and a second thread
// dispatching a handle that another thread is already dispatching.
#include "tests/conformance/conformance.hpp"

namespace rcpg::conformance {
namespace {

class WrongContext : public ::testing::Test {
protected:
    rcpg::testing::DaemonProcess daemon_;
};

TEST_F(WrongContext, ParentHandlesGiveBadHandleInAForkedChildAndStayUsableInTheParent)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("forked"), CS_OK);
    ChildProcess child([&]() -> int {
        int fd = -1;
        if (cpg_fd_get(client.handle, &fd) != CS_ERR_BAD_HANDLE) {
            return 2;
        }
        char byte = 'c';
        iovec iov{&byte, 1};
        if (cpg_mcast_joined(client.handle, CPG_TYPE_AGREED, &iov, 1) != CS_ERR_BAD_HANDLE) {
            return 3;
        }
        if (cpg_finalize(client.handle) != CS_ERR_BAD_HANDLE) {
            return 4;
        }
        // The child's own handles work.
        cpg_handle_t own = 0;
        if (cpg_initialize(&own, nullptr) != CS_OK || cpg_finalize(own) != CS_OK) {
            return 5;
        }
        return 0;
    });
    ASSERT_TRUE(child.started());
    EXPECT_EQ(child.wait(), 0);
    // The child's attempts did not disturb the parent's connection.
    ASSERT_EQ(client.send("after the fork"), CS_OK);
    EXPECT_TRUE(client.pump_until_body("after the fork"));
}

TEST_F(WrongContext, ASecondDispatchingThreadGetsBusy)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("two-dispatchers"), CS_OK);
    ASSERT_TRUE(client.pump_until_count(Event::confchg, 1));
    auto blocked = std::async(std::launch::async, [&] { return cpg_dispatch(client.handle, CS_DISPATCH_ONE); });
    // Wait until the first thread is inside dispatch: the second is then refused.
    cs_error_t second = CS_OK;
    for (const auto deadline = Clock::now() + kEventTimeout; Clock::now() < deadline;) {
        second = cpg_dispatch(client.handle, CS_DISPATCH_ALL);
        if (second == CS_ERR_BUSY) {
            break;
        }
        std::this_thread::sleep_for(2ms);
    }
    EXPECT_EQ(second, CS_ERR_BUSY);
    // The first one still gets the next event.
    ASSERT_EQ(client.send("wake the dispatcher"), CS_OK);
    ASSERT_EQ(blocked.wait_for(kEventTimeout), std::future_status::ready);
    EXPECT_EQ(blocked.get(), CS_OK);
}

}  // namespace
}  // namespace rcpg::conformance
