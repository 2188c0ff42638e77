// cpg_dispatch and cpg_fd_get readiness: the four dispatch modes with and without pending
// events, unknown modes behaving as BLOCKING, the fd readable exactly while events are
// pending (and becoming readable when an event arrives while idle), cpg_finalize inside
// a callback (returns OK, the surrounding dispatch returns BAD_HANDLE in every mode),
// cpg_finalize from another thread while one sits in a blocking dispatch, and
// re-entrant calls (nested dispatch, mcast, membership_get, local_get) from callbacks.
#include "tests/conformance/conformance.hpp"

namespace rcpg::conformance {
namespace {

using Dispatch = Conformance;

TEST_F(Dispatch, AllReturnsOkWithNothingPending)
{
    Client client;
    ASSERT_TRUE(client.ok());
    EXPECT_EQ(cpg_dispatch(client.handle, CS_DISPATCH_ALL), CS_OK) << "not joined";
    ASSERT_EQ(client.join("all-idle"), CS_OK);
    ASSERT_TRUE(client.pump_until_count(Event::confchg, 1));
    EXPECT_EQ(cpg_dispatch(client.handle, CS_DISPATCH_ALL), CS_OK) << "joined, all consumed";
    EXPECT_EQ(cpg_dispatch(client.handle, CS_DISPATCH_ALL), CS_OK);
    EXPECT_EQ(client.rec.events.size(), 1u);
}

TEST_F(Dispatch, OneNonblockingReturnsTryAgainWithNothingPending)
{
    Client client;
    ASSERT_TRUE(client.ok());
    EXPECT_EQ(cpg_dispatch(client.handle, CS_DISPATCH_ONE_NONBLOCKING), CS_ERR_TRY_AGAIN) << "not joined";
    ASSERT_EQ(client.join("nonblocking"), CS_OK);
    // The own join confchg is pending as soon as cpg_join returned.
    EXPECT_EQ(cpg_dispatch(client.handle, CS_DISPATCH_ONE_NONBLOCKING), CS_OK);
    EXPECT_EQ(client.rec.count(Event::confchg), 1u);
    EXPECT_EQ(cpg_dispatch(client.handle, CS_DISPATCH_ONE_NONBLOCKING), CS_ERR_TRY_AGAIN);
    EXPECT_EQ(client.rec.events.size(), 1u);
}

TEST_F(Dispatch, OneHandlesExactlyOneEvent)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("one-event"), CS_OK);
    ASSERT_EQ(client.send("m1"), CS_OK);
    ASSERT_EQ(client.send("m2"), CS_OK);
    const cpg_handle_t handle = client.handle;
    for (size_t expected = 1; expected <= 3; ++expected) {
        EXPECT_EQ(Background<cs_error_t>([handle] { return cpg_dispatch(handle, CS_DISPATCH_ONE); }).wait(kEventTimeout), CS_OK);
        EXPECT_EQ(client.rec.events.size(), expected);
    }
    EXPECT_EQ(client.rec.bodies(), (std::vector<std::string>{"m1", "m2"}));
}

TEST_F(Dispatch, FdIsReadableExactlyWhileEventsArePending)
{
    Pipe ready;
    Pipe got_two;
    Pipe go_send;
    Pipe release;
    Client parent;
    ASSERT_TRUE(parent.ok());
    ASSERT_EQ(parent.join("readiness"), CS_OK);
    const int fd = parent.fd();
    // The own join confchg is queued before cpg_join returns.
    EXPECT_TRUE(fd_readable(fd, kEventTimeoutMs)) << "after join";
    ASSERT_EQ(cpg_dispatch(parent.handle, CS_DISPATCH_ALL), CS_OK);
    ASSERT_EQ(parent.rec.count(Event::confchg), 1u);
    EXPECT_FALSE(fd_readable(fd, kQuietMs)) << "after CS_DISPATCH_ALL";

    const uint32_t parent_pid = self_pid();
    // A witness process in the same group tells us when our two messages have been
    // delivered, so both are pending for us too; later it sends one message on request.
    ChildProcess witness([&]() -> int {
        ready.close_read();
        got_two.close_read();
        go_send.close_write();
        release.close_write();
        Client child;
        if (!child.ok() || child.join("readiness") != CS_OK) {
            return 2;
        }
        if (!child.pump_until_count(Event::confchg, 1)) {
            return 3;
        }
        ready.write_byte('r');
        auto from_parent = [&] {
            size_t n = 0;
            for (const Event* event : child.rec.of(Event::message)) {
                n += event->pid == parent_pid;
            }
            return n;
        };
        if (!child.pump_until([&] { return from_parent() >= 2; })) {
            return 4;
        }
        got_two.write_byte('g');
        if (!go_send.read_byte()) {
            return 5;
        }
        if (child.send("wake") != CS_OK) {
            return 6;
        }
        release.wait_eof(kEventTimeout);
        return 0;
    });
    ASSERT_TRUE(witness.started());
    ready.close_write();
    got_two.close_write();
    go_send.close_read();
    release.close_read();

    ASSERT_TRUE(ready.read_byte()) << "witness did not join";
    // The witness's join confchg reached us too.
    EXPECT_TRUE(fd_readable(fd, kEventTimeoutMs)) << "after another process joined";
    ASSERT_EQ(cpg_dispatch(parent.handle, CS_DISPATCH_ALL), CS_OK);
    ASSERT_EQ(parent.rec.count(Event::confchg), 2u);
    EXPECT_FALSE(fd_readable(fd, kQuietMs)) << "after CS_DISPATCH_ALL";

    ASSERT_EQ(parent.send("first"), CS_OK);
    ASSERT_EQ(parent.send("second"), CS_OK);
    ASSERT_TRUE(got_two.read_byte()) << "witness did not receive both messages";
    EXPECT_TRUE(fd_readable(fd, kEventTimeoutMs)) << "two messages pending";
    ASSERT_EQ(cpg_dispatch(parent.handle, CS_DISPATCH_ONE), CS_OK);
    EXPECT_EQ(parent.rec.bodies(), std::vector<std::string>{"first"});
    EXPECT_TRUE(fd_readable(fd, kEventTimeoutMs)) << "one message still pending after CS_DISPATCH_ONE";
    ASSERT_EQ(cpg_dispatch(parent.handle, CS_DISPATCH_ONE), CS_OK);
    EXPECT_EQ(parent.rec.bodies(), (std::vector<std::string>{"first", "second"}));
    EXPECT_FALSE(fd_readable(fd, kQuietMs)) << "nothing pending after the second CS_DISPATCH_ONE";

    // An event that arrives while we are idle makes the fd readable.
    ASSERT_TRUE(go_send.write_byte('s'));
    EXPECT_TRUE(fd_readable(fd, kEventTimeoutMs)) << "a message of another process arrived";
    ASSERT_EQ(cpg_dispatch(parent.handle, CS_DISPATCH_ONE_NONBLOCKING), CS_OK);
    EXPECT_EQ(parent.rec.bodies(), (std::vector<std::string>{"first", "second", "wake"}));
    EXPECT_FALSE(fd_readable(fd, kQuietMs)) << "after dispatching it";

    release.close_write();
    EXPECT_EQ(witness.wait(), 0);
}

TEST_F(Dispatch, FdIsNotReadableForAnIdleUnjoinedHandle)
{
    Client client;
    ASSERT_TRUE(client.ok());
    EXPECT_FALSE(fd_readable(client.fd(), kQuietMs));
    // A group this handle is not in does not wake it.
    Client other;
    ASSERT_TRUE(other.ok());
    ASSERT_EQ(other.join("elsewhere"), CS_OK);
    ASSERT_EQ(other.send("not for you"), CS_OK);
    ASSERT_TRUE(other.pump_until_body("not for you"));
    EXPECT_FALSE(fd_readable(client.fd(), kQuietMs));
    EXPECT_EQ(cpg_dispatch(client.handle, CS_DISPATCH_ONE_NONBLOCKING), CS_ERR_TRY_AGAIN);
    EXPECT_TRUE(client.rec.events.empty());
}

TEST_F(Dispatch, OneBlocksUntilAnEventFromAnotherProcess)
{
    Pipe release;
    Client parent;
    ASSERT_TRUE(parent.ok());
    ASSERT_EQ(parent.join("one-blocks"), CS_OK);
    ASSERT_TRUE(parent.pump_until_count(Event::confchg, 1));
    // Forked before any thread: joins the group after a delay.
    ChildProcess child([&]() -> int {
        release.close_write();
        std::this_thread::sleep_for(300ms);
        Client late;
        if (!late.ok() || late.join("one-blocks") != CS_OK) {
            return 2;
        }
        release.wait_eof(kEventTimeout);
        return 0;
    });
    ASSERT_TRUE(child.started());
    release.close_read();
    const cpg_handle_t handle = parent.handle;
    auto result = Background<cs_error_t>([handle] { return cpg_dispatch(handle, CS_DISPATCH_ONE); }).wait(kEventTimeout);
    ASSERT_TRUE(result.has_value()) << "CS_DISPATCH_ONE did not return after the other process joined";
    EXPECT_EQ(*result, CS_OK);
    ASSERT_EQ(parent.rec.count(Event::confchg), 2u);
    const Event& confchg = parent.rec.events.back();
    ASSERT_EQ(confchg.joined.size(), 1u);
    EXPECT_EQ(confchg.joined[0].pid, static_cast<uint32_t>(child.pid()));
    release.close_write();
    EXPECT_EQ(child.wait(), 0);
}

TEST_F(Dispatch, OneBlocksUntilAMessageSentFromAnotherThread)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("one-thread"), CS_OK);
    ASSERT_TRUE(client.pump_until_count(Event::confchg, 1));
    const cpg_handle_t handle = client.handle;
    Background<cs_error_t> dispatching([handle] { return cpg_dispatch(handle, CS_DISPATCH_ONE); });
    std::this_thread::sleep_for(200ms);
    std::string body = "late message";
    iovec part{body.data(), body.size()};
    ASSERT_EQ(cpg_mcast_joined(handle, CPG_TYPE_AGREED, &part, 1), CS_OK);
    auto result = dispatching.wait(kEventTimeout);
    ASSERT_TRUE(result.has_value()) << "CS_DISPATCH_ONE did not return after a message";
    EXPECT_EQ(*result, CS_OK);
    EXPECT_EQ(client.rec.bodies(), std::vector<std::string>{"late message"});
}

// Finalizes the handle inside the first callback that sees `trigger` (a message body,
// or "" for the first confchg) and records what cpg_finalize returned.
struct FinalizeInCallback {
    explicit FinalizeInCallback(Client& client, std::string trigger) : trigger_(std::move(trigger))
    {
        client.rec.hook = [this, &client](cpg_handle_t handle, const Event& event) {
            const bool hit = trigger_.empty() ? event.kind == Event::confchg
                                              : (event.kind == Event::message && event.body == trigger_);
            if (hit && !result) {
                result = cpg_finalize(handle);
                client.finalized = true;
            }
        };
    }
    std::optional<cs_error_t> result;

private:
    std::string trigger_;
};

TEST_F(Dispatch, FinalizeInsideCallbackMakesEveryModeReturnBadHandle)
{
    for (cs_dispatch_flags_t mode : {CS_DISPATCH_ONE, CS_DISPATCH_ALL, CS_DISPATCH_BLOCKING,
                                     CS_DISPATCH_ONE_NONBLOCKING}) {
        SCOPED_TRACE("mode " + std::to_string(mode));
        Client client;
        ASSERT_TRUE(client.ok());
        FinalizeInCallback finalizer(client, "");
        ASSERT_EQ(client.join("finalize-in-confchg-" + std::to_string(mode)), CS_OK);
        ASSERT_EQ(client.send("after the confchg"), CS_OK);
        const cpg_handle_t handle = client.handle;
        auto result = Background<cs_error_t>([handle, mode] { return cpg_dispatch(handle, mode); }).wait(kEventTimeout);
        ASSERT_TRUE(result.has_value()) << "dispatch did not return after cpg_finalize in the callback";
        EXPECT_EQ(*result, CS_ERR_BAD_HANDLE);
        ASSERT_TRUE(finalizer.result.has_value());
        EXPECT_EQ(*finalizer.result, CS_OK) << "cpg_finalize inside a callback";
        EXPECT_EQ(client.rec.count(Event::message), 0u) << "no callback after the finalize";
        EXPECT_EQ(cpg_finalize(handle), CS_ERR_BAD_HANDLE);
        EXPECT_EQ(cpg_dispatch(handle, CS_DISPATCH_ALL), CS_ERR_BAD_HANDLE);
    }
}

TEST_F(Dispatch, BlockingHandlesEventsUntilFinalizeInADeliverCallback)
{
    Client client;
    ASSERT_TRUE(client.ok());
    FinalizeInCallback finalizer(client, "stop");
    ASSERT_EQ(client.join("blocking"), CS_OK);
    const cpg_handle_t handle = client.handle;
    Background<cs_error_t> dispatching([handle] { return cpg_dispatch(handle, CS_DISPATCH_BLOCKING); });
    // Sent from this thread while the other one dispatches.
    for (const char* body : {"a", "b", "c"}) {
        std::string text = body;
        iovec part{text.data(), text.size()};
        ASSERT_EQ(cpg_mcast_joined(handle, CPG_TYPE_AGREED, &part, 1), CS_OK);
    }
    EXPECT_FALSE(dispatching.finished_within(std::chrono::milliseconds(kQuietMs)))
        << "CS_DISPATCH_BLOCKING returned while the handle was alive";
    std::string stop = "stop";
    iovec part{stop.data(), stop.size()};
    ASSERT_EQ(cpg_mcast_joined(handle, CPG_TYPE_AGREED, &part, 1), CS_OK);
    auto result = dispatching.wait(kEventTimeout);
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(*result, CS_ERR_BAD_HANDLE);
    EXPECT_EQ(finalizer.result, CS_OK);
    EXPECT_EQ(client.rec.bodies(), (std::vector<std::string>{"a", "b", "c", "stop"}));
}

TEST_F(Dispatch, UnknownModesBehaveAsBlocking)
{
    for (int mode : {0, 5, 99}) {
        SCOPED_TRACE("mode " + std::to_string(mode));
        Client client;
        ASSERT_TRUE(client.ok());
        FinalizeInCallback finalizer(client, "stop");
        ASSERT_EQ(client.join("unknown-mode-" + std::to_string(mode)), CS_OK);
        ASSERT_TRUE(client.pump_until_count(Event::confchg, 1));
        const cpg_handle_t handle = client.handle;
        Background<cs_error_t> dispatching(
            [handle, mode] { return cpg_dispatch(handle, static_cast<cs_dispatch_flags_t>(mode)); });
        EXPECT_FALSE(dispatching.finished_within(std::chrono::milliseconds(kQuietMs)))
            << "returned with nothing pending (ALL/NONBLOCKING behaviour)";
        std::string first = "first";
        iovec part{first.data(), first.size()};
        ASSERT_EQ(cpg_mcast_joined(handle, CPG_TYPE_AGREED, &part, 1), CS_OK);
        EXPECT_FALSE(dispatching.finished_within(std::chrono::milliseconds(kQuietMs)))
            << "returned after one event (ONE behaviour)";
        std::string stop = "stop";
        part = {stop.data(), stop.size()};
        ASSERT_EQ(cpg_mcast_joined(handle, CPG_TYPE_AGREED, &part, 1), CS_OK);
        auto result = dispatching.wait(kEventTimeout);
        ASSERT_TRUE(result.has_value());
        EXPECT_EQ(*result, CS_ERR_BAD_HANDLE);
        EXPECT_EQ(client.rec.bodies(), (std::vector<std::string>{"first", "stop"}));
    }
}

TEST_F(Dispatch, FinalizeFromAnotherThreadReleasesABlockingDispatch)
{
    for (cs_dispatch_flags_t mode : {CS_DISPATCH_BLOCKING, CS_DISPATCH_ONE}) {
        for (bool joined : {true, false}) {
            SCOPED_TRACE("mode " + std::to_string(mode) + (joined ? " joined" : " not joined"));
            Client client;
            ASSERT_TRUE(client.ok());
            if (joined) {
                ASSERT_EQ(client.join("finalize-elsewhere"), CS_OK);
                ASSERT_TRUE(client.pump_until_count(Event::confchg, 1));
            }
            const cpg_handle_t handle = client.handle;
            Background<cs_error_t> dispatching([handle, mode] { return cpg_dispatch(handle, mode); });
            EXPECT_FALSE(dispatching.finished_within(200ms)) << "nothing was pending";
            client.finalized = true;
            auto finalized = Background<cs_error_t>([handle] { return cpg_finalize(handle); }).wait(kEventTimeout);
            ASSERT_TRUE(finalized.has_value()) << "cpg_finalize waited for the dispatching thread";
            EXPECT_EQ(*finalized, CS_OK);
            auto result = dispatching.wait(kEventTimeout);
            ASSERT_TRUE(result.has_value()) << "the blocked dispatch did not return after cpg_finalize";
            EXPECT_TRUE(*result == CS_ERR_BAD_HANDLE || *result == CS_ERR_LIBRARY) << "returned " << *result;
            EXPECT_EQ(cpg_finalize(handle), CS_ERR_BAD_HANDLE);
        }
    }
}

TEST_F(Dispatch, CallbacksMayCallTheLibraryAndDispatchRecursively)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("nested"), CS_OK);
    ASSERT_TRUE(client.pump_until_count(Event::confchg, 1));
    std::optional<cs_error_t> nested_mcast, nested_dispatch, nested_local, nested_membership;
    unsigned int nodeid = 0;
    size_t members_seen = 0;
    client.rec.hook = [&](cpg_handle_t handle, const Event& event) {
        if (event.kind != Event::message || event.body != "outer") {
            return;
        }
        nested_local = cpg_local_get(handle, &nodeid);
        nested_membership = CS_ERR_LIBRARY;
        members_seen = members_of(handle, "nested", &*nested_membership).size();
        std::string inner = "inner";
        iovec part{inner.data(), inner.size()};
        nested_mcast = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &part, 1);
        // Waits for "inner" inside the callback of "outer".
        nested_dispatch = cpg_dispatch(handle, CS_DISPATCH_ONE);
        client.rec.events.push_back(Event{Event::message, "", 0, 0, "outer returns"});
    };
    ASSERT_EQ(client.send("outer"), CS_OK);
    const cpg_handle_t handle = client.handle;
    auto result = Background<cs_error_t>([handle] { return cpg_dispatch(handle, CS_DISPATCH_ONE); }).wait(kEventTimeout);
    ASSERT_TRUE(result.has_value()) << "nested dispatch hung";
    EXPECT_EQ(*result, CS_OK);
    EXPECT_EQ(nested_local, CS_OK);
    EXPECT_EQ(nodeid, 1u);
    EXPECT_EQ(nested_membership, CS_OK);
    EXPECT_EQ(members_seen, 1u);
    EXPECT_EQ(nested_mcast, CS_OK);
    EXPECT_EQ(nested_dispatch, CS_OK);
    EXPECT_EQ(client.rec.bodies(), (std::vector<std::string>{"outer", "inner", "outer returns"}));
}

TEST_F(Dispatch, DeliverCallbackGetsGroupNodeAndPid)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("who-sent"), CS_OK);
    ASSERT_EQ(client.send("hello"), CS_OK);
    ASSERT_TRUE(client.pump_until_body("hello"));
    const Event* message = client.rec.of(Event::message).at(0);
    EXPECT_EQ(message->group, "who-sent");
    EXPECT_EQ(message->nodeid, 1u);
    EXPECT_EQ(message->pid, self_pid());
}

}  // namespace
}  // namespace rcpg::conformance
