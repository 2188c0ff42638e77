// When rcpgd dies, clients learn it from every call that waits on it: dispatch, control
// requests, and sends that find no room; nothing hangs.
#include "tests/support/daemon_process.hpp"

#include <corosync/cpg.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/uio.h>

#include <chrono>
#include <cstring>
#include <future>
#include <vector>

namespace {

cpg_name group_named(const char* text)
{
    cpg_name name{};
    name.length = static_cast<uint32_t>(std::strlen(text));
    std::memcpy(name.value, text, name.length);
    return name;
}

TEST(DaemonGone, CallsReturnLibraryErrorInsteadOfHanging)
{
    rcpg::testing::DaemonProcess daemon;
    cpg_handle_t handle = 0;
    ASSERT_EQ(cpg_initialize(&handle, nullptr), CS_OK);
    const cpg_name group = group_named("gone");
    ASSERT_EQ(cpg_join(handle, &group), CS_OK);
    ASSERT_EQ(cpg_dispatch(handle, CS_DISPATCH_ALL), CS_OK);
    void* buffer = nullptr;
    ASSERT_EQ(cpg_zcb_alloc(handle, 4096, &buffer), CS_OK);

    // A thread blocked in dispatch returns when the daemon dies.
    auto blocked = std::async(std::launch::async, [&] { return cpg_dispatch(handle, CS_DISPATCH_BLOCKING); });
    ASSERT_EQ(::kill(daemon.pid(), SIGKILL), 0);
    daemon.stop();
    ASSERT_EQ(blocked.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_EQ(blocked.get(), CS_ERR_LIBRARY);

    EXPECT_EQ(cpg_dispatch(handle, CS_DISPATCH_ALL), CS_ERR_LIBRARY);
    EXPECT_EQ(cpg_dispatch(handle, CS_DISPATCH_ONE), CS_ERR_LIBRARY);
    unsigned int nodeid = 0;
    EXPECT_EQ(cpg_local_get(handle, &nodeid), CS_ERR_LIBRARY);
    EXPECT_EQ(cpg_leave(handle, &group), CS_ERR_LIBRARY);
    // A zero-copy send waits for the daemon to take the buffer: it must give up.
    auto zcb = std::async(std::launch::async,
                          [&] { return cpg_zcb_mcast_joined(handle, CPG_TYPE_AGREED, buffer, 4096); });
    ASSERT_EQ(zcb.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_EQ(zcb.get(), CS_ERR_LIBRARY);
    // Copying sends are queued in shared memory; once the queue is full they report it.
    std::vector<char> payload(64 * 1024);
    iovec iov{payload.data(), payload.size()};
    cs_error_t result = CS_OK;
    for (int i = 0; i < 100000 && result == CS_OK; ++i) {
        result = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
    }
    EXPECT_EQ(result, CS_ERR_LIBRARY);
    EXPECT_EQ(cpg_finalize(handle), CS_ERR_LIBRARY);
    EXPECT_EQ(cpg_finalize(handle), CS_ERR_BAD_HANDLE);
}

}  // namespace
