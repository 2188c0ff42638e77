// Handles: cpg_initialize / cpg_model_initialize (values, argument checks and their order,
// model data and callbacks copied, context), cpg_finalize, the purely local getters
// (context, fd, max atomic size, flow control), cpg_local_get, CS_ERR_BAD_HANDLE from
// every handle-taking function, and the argument checks that run before the handle
// check (name length, NULL pointers).
#include "tests/conformance/conformance.hpp"

#include <sys/socket.h>

#include <cstdlib>
#include <random>
#include <set>

namespace rcpg::conformance {
namespace {

// Sets RCPG_IPC for the scope of a test and restores the daemon's name afterwards.
class ScopedIpcName {
public:
    explicit ScopedIpcName(const char* name)
    {
        const char* old = std::getenv("RCPG_IPC");
        if (old != nullptr) {
            saved_ = old;
        }
        ::setenv("RCPG_IPC", name, 1);
    }
    ~ScopedIpcName()
    {
        if (saved_) {
            ::setenv("RCPG_IPC", saved_->c_str(), 1);
        } else {
            ::unsetenv("RCPG_IPC");
        }
    }

private:
    std::optional<std::string> saved_;
};

constexpr const char* kNoSuchDaemon = "rcpg-conformance-no-such-daemon";

int g_deliver_a = 0;
int g_deliver_b = 0;
int g_confchg_a = 0;
int g_confchg_b = 0;

void deliver_a(cpg_handle_t, const cpg_name*, uint32_t, uint32_t, void*, size_t) { ++g_deliver_a; }
void deliver_b(cpg_handle_t, const cpg_name*, uint32_t, uint32_t, void*, size_t) { ++g_deliver_b; }
void confchg_a(cpg_handle_t, const cpg_name*, const cpg_address*, size_t, const cpg_address*, size_t,
               const cpg_address*, size_t)
{
    ++g_confchg_a;
}
void confchg_b(cpg_handle_t, const cpg_name*, const cpg_address*, size_t, const cpg_address*, size_t,
               const cpg_address*, size_t)
{
    ++g_confchg_b;
}

void reset_counters() { g_deliver_a = g_deliver_b = g_confchg_a = g_confchg_b = 0; }

// Joins `group` on `handle`, sends one message and dispatches until both the own join
// confchg and the message were handled (by whatever callbacks the handle has).
void join_send_and_dispatch_two(cpg_handle_t handle, const char* group)
{
    const cpg_name name = group_named(group);
    ASSERT_EQ(cpg_join(handle, &name), CS_OK);
    char byte = 'x';
    iovec part{&byte, 1};
    ASSERT_EQ(cpg_mcast_joined(handle, CPG_TYPE_AGREED, &part, 1), CS_OK);
    // Two events: the own join confchg and the message. ONE waits for each.
    auto first = Background<cs_error_t>([handle] { return cpg_dispatch(handle, CS_DISPATCH_ONE); }).wait(kEventTimeout);
    ASSERT_EQ(first, CS_OK);
    auto second = Background<cs_error_t>([handle] { return cpg_dispatch(handle, CS_DISPATCH_ONE); }).wait(kEventTimeout);
    ASSERT_EQ(second, CS_OK);
}

using Handles = Conformance;

TEST_F(Handles, InitializeGivesNonZeroDistinctHandles)
{
    cpg_handle_t a = 0;
    cpg_handle_t b = 0;
    ASSERT_EQ(cpg_initialize(&a, nullptr), CS_OK);
    ASSERT_EQ(cpg_initialize(&b, nullptr), CS_OK);
    EXPECT_NE(a, 0u);
    EXPECT_NE(b, 0u);
    EXPECT_NE(a, b);
    cpg_handle_t c = 0;
    ASSERT_EQ(cpg_model_initialize(&c, CPG_MODEL_V1, nullptr, nullptr), CS_OK);
    EXPECT_NE(c, 0u);
    EXPECT_NE(c, a);
    EXPECT_NE(c, b);
    EXPECT_EQ(cpg_finalize(a), CS_OK);
    EXPECT_EQ(cpg_finalize(b), CS_OK);
    EXPECT_EQ(cpg_finalize(c), CS_OK);
}

TEST_F(Handles, NewHandleAfterFinalizeDiffersFromTheFinalizedOne)
{
    cpg_handle_t first = 0;
    ASSERT_EQ(cpg_initialize(&first, nullptr), CS_OK);
    ASSERT_EQ(cpg_finalize(first), CS_OK);
    cpg_handle_t second = 0;
    ASSERT_EQ(cpg_initialize(&second, nullptr), CS_OK);
    EXPECT_NE(second, 0u);
    EXPECT_NE(second, first);
    // The finalized value stays dead even if its slot is reused.
    int fd;
    EXPECT_EQ(cpg_fd_get(first, &fd), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_fd_get(second, &fd), CS_OK);
    EXPECT_EQ(cpg_finalize(second), CS_OK);
}

TEST_F(Handles, HundredHandlesInOneProcess)
{
    std::vector<cpg_handle_t> handles(100);
    std::set<cpg_handle_t> distinct;
    std::set<int> fds;
    for (auto& handle : handles) {
        ASSERT_EQ(cpg_initialize(&handle, nullptr), CS_OK);
        distinct.insert(handle);
        int fd = -1;
        ASSERT_EQ(cpg_fd_get(handle, &fd), CS_OK);
        fds.insert(fd);
    }
    EXPECT_EQ(distinct.size(), handles.size());
    EXPECT_EQ(fds.size(), handles.size()) << "one fd per handle";
    for (size_t i = 0; i < handles.size(); ++i) {
        unsigned int nodeid = 0;
        EXPECT_EQ(cpg_local_get(handles[i], &nodeid), CS_OK);
        const cpg_name group = group_named("hundred-" + std::to_string(i));
        EXPECT_EQ(cpg_join(handles[i], &group), CS_OK);
    }
    for (auto handle : handles) {
        EXPECT_EQ(cpg_finalize(handle), CS_OK);
    }
}

TEST_F(Handles, ModelInitializeRejectsUnknownModelBeforeAnything)
{
    // No daemon under this name: only a check that runs before connecting can answer
    // INVALID_PARAM, and *handle stays untouched.
    ScopedIpcName no_daemon(kNoSuchDaemon);
    cpg_model_v1_data_t data{};
    for (int model : {0, 2, 99, -1}) {
        cpg_handle_t handle = 0x1234;
        EXPECT_EQ(cpg_model_initialize(&handle, static_cast<cpg_model_t>(model),
                                       reinterpret_cast<cpg_model_data_t*>(&data), nullptr),
                  CS_ERR_INVALID_PARAM)
            << "model " << model;
        EXPECT_EQ(handle, 0x1234u) << "model " << model;
        EXPECT_EQ(cpg_model_initialize(&handle, static_cast<cpg_model_t>(model), nullptr, nullptr),
                  CS_ERR_INVALID_PARAM);
        EXPECT_EQ(handle, 0x1234u);
    }
}

TEST_F(Handles, ModelInitializeRejectsUnknownFlags)
{
    for (unsigned int flags : {0x2u, 0x4u, 0x3u, 0x80000000u, 0xffffffffu}) {
        cpg_model_v1_data_t data{};
        data.model = CPG_MODEL_V1;
        data.flags = flags;
        cpg_handle_t handle = 0;
        EXPECT_EQ(cpg_model_initialize(&handle, CPG_MODEL_V1, reinterpret_cast<cpg_model_data_t*>(&data), nullptr),
                  CS_ERR_INVALID_PARAM)
            << "flags " << flags;
    }
    for (unsigned int flags : {0x0u, 0x1u}) {
        cpg_model_v1_data_t data{};
        data.model = CPG_MODEL_V1;
        data.flags = flags;
        cpg_handle_t handle = 0;
        ASSERT_EQ(cpg_model_initialize(&handle, CPG_MODEL_V1, reinterpret_cast<cpg_model_data_t*>(&data), nullptr),
                  CS_OK)
            << "flags " << flags;
        EXPECT_EQ(cpg_finalize(handle), CS_OK);
    }
}

TEST_F(Handles, UnknownFlagsAreCheckedAfterConnecting)
{
    // With no daemon the connection fails first: LIBRARY, not INVALID_PARAM.
    ScopedIpcName no_daemon(kNoSuchDaemon);
    cpg_model_v1_data_t data{};
    data.flags = 0x2;
    cpg_handle_t handle = 0;
    EXPECT_EQ(cpg_model_initialize(&handle, CPG_MODEL_V1, reinterpret_cast<cpg_model_data_t*>(&data), nullptr),
              CS_ERR_LIBRARY);
}

TEST_F(Handles, ModelFieldInsideModelDataIsIgnored)
{
    for (int inner_model : {0, 7, -5}) {
        reset_counters();
        cpg_model_v1_data_t data{};
        data.model = static_cast<cpg_model_t>(inner_model);
        data.cpg_deliver_fn = deliver_a;
        data.cpg_confchg_fn = confchg_a;
        cpg_handle_t handle = 0;
        ASSERT_EQ(cpg_model_initialize(&handle, CPG_MODEL_V1, reinterpret_cast<cpg_model_data_t*>(&data), nullptr),
                  CS_OK)
            << "inner model " << inner_model;
        join_send_and_dispatch_two(handle, "model-field");
        EXPECT_EQ(g_confchg_a, 1) << "inner model " << inner_model;
        EXPECT_EQ(g_deliver_a, 1) << "inner model " << inner_model;
        EXPECT_EQ(cpg_finalize(handle), CS_OK);
    }
}

TEST_F(Handles, NullModelDataMeansNoCallbacks)
{
    cpg_handle_t handle = 0;
    ASSERT_EQ(cpg_model_initialize(&handle, CPG_MODEL_V1, nullptr, nullptr), CS_OK);
    join_send_and_dispatch_two(handle, "null-model-data");
    EXPECT_EQ(cpg_dispatch(handle, CS_DISPATCH_ONE_NONBLOCKING), CS_ERR_TRY_AGAIN);
    EXPECT_EQ(cpg_finalize(handle), CS_OK);
}

TEST_F(Handles, InitializeWithNullCallbacksWorks)
{
    cpg_handle_t handle = 0;
    ASSERT_EQ(cpg_initialize(&handle, nullptr), CS_OK);
    join_send_and_dispatch_two(handle, "null-callbacks");
    EXPECT_EQ(cpg_dispatch(handle, CS_DISPATCH_ONE_NONBLOCKING), CS_ERR_TRY_AGAIN);
    // Null entries inside a callbacks struct are as good as a NULL struct.
    cpg_callbacks_t empty{nullptr, nullptr};
    cpg_handle_t other = 0;
    ASSERT_EQ(cpg_initialize(&other, &empty), CS_OK);
    join_send_and_dispatch_two(other, "null-callbacks-2");
    EXPECT_EQ(cpg_finalize(other), CS_OK);
    EXPECT_EQ(cpg_finalize(handle), CS_OK);
}

TEST_F(Handles, InitializeCopiesTheCallbacks)
{
    reset_counters();
    cpg_callbacks_t callbacks{deliver_a, confchg_a};
    cpg_handle_t handle = 0;
    ASSERT_EQ(cpg_initialize(&handle, &callbacks), CS_OK);
    callbacks.cpg_deliver_fn = deliver_b;
    callbacks.cpg_confchg_fn = confchg_b;
    join_send_and_dispatch_two(handle, "copied-callbacks");
    EXPECT_EQ(g_confchg_a, 1);
    EXPECT_EQ(g_deliver_a, 1);
    EXPECT_EQ(g_confchg_b, 0);
    EXPECT_EQ(g_deliver_b, 0);
    EXPECT_EQ(cpg_finalize(handle), CS_OK);
}

TEST_F(Handles, ModelInitializeCopiesTheModelData)
{
    reset_counters();
    cpg_model_v1_data_t data{};
    data.model = CPG_MODEL_V1;
    data.cpg_deliver_fn = deliver_a;
    data.cpg_confchg_fn = confchg_a;
    cpg_handle_t handle = 0;
    ASSERT_EQ(cpg_model_initialize(&handle, CPG_MODEL_V1, reinterpret_cast<cpg_model_data_t*>(&data), nullptr),
              CS_OK);
    data.cpg_deliver_fn = deliver_b;
    data.cpg_confchg_fn = confchg_b;
    data.flags = 0xff;  // would be invalid if it were read again
    join_send_and_dispatch_two(handle, "copied-model");
    EXPECT_EQ(g_confchg_a, 1);
    EXPECT_EQ(g_deliver_a, 1);
    EXPECT_EQ(g_confchg_b, 0);
    EXPECT_EQ(g_deliver_b, 0);
    EXPECT_EQ(cpg_finalize(handle), CS_OK);
}

TEST_F(Handles, ContextIsTheInitializeArgumentAndSettable)
{
    int anchor_a = 0;
    int anchor_b = 0;
    cpg_handle_t with_context = 0;
    ASSERT_EQ(cpg_model_initialize(&with_context, CPG_MODEL_V1, nullptr, &anchor_a), CS_OK);
    cpg_handle_t plain = 0;
    ASSERT_EQ(cpg_initialize(&plain, nullptr), CS_OK);

    void* context = reinterpret_cast<void*>(0x1);
    ASSERT_EQ(cpg_context_get(with_context, &context), CS_OK);
    EXPECT_EQ(context, &anchor_a);
    context = reinterpret_cast<void*>(0x1);
    ASSERT_EQ(cpg_context_get(plain, &context), CS_OK);
    EXPECT_EQ(context, nullptr) << "cpg_initialize starts with a NULL context";

    ASSERT_EQ(cpg_context_set(plain, &anchor_b), CS_OK);
    ASSERT_EQ(cpg_context_get(plain, &context), CS_OK);
    EXPECT_EQ(context, &anchor_b);
    ASSERT_EQ(cpg_context_get(with_context, &context), CS_OK);
    EXPECT_EQ(context, &anchor_a) << "contexts are per handle";
    ASSERT_EQ(cpg_context_set(with_context, nullptr), CS_OK);
    ASSERT_EQ(cpg_context_get(with_context, &context), CS_OK);
    EXPECT_EQ(context, nullptr);

    EXPECT_EQ(cpg_finalize(with_context), CS_OK);
    EXPECT_EQ(cpg_finalize(plain), CS_OK);
}

TEST_F(Handles, NoDaemonGivesLibrary)
{
    ScopedIpcName no_daemon(kNoSuchDaemon);
    cpg_handle_t handle = 0;
    EXPECT_EQ(cpg_initialize(&handle, nullptr), CS_ERR_LIBRARY);
    cpg_callbacks_t callbacks{deliver_a, confchg_a};
    EXPECT_EQ(cpg_initialize(&handle, &callbacks), CS_ERR_LIBRARY);
    EXPECT_EQ(cpg_model_initialize(&handle, CPG_MODEL_V1, nullptr, nullptr), CS_ERR_LIBRARY);
}

TEST_F(Handles, FinalizeTwiceGivesBadHandle)
{
    cpg_handle_t handle = 0;
    ASSERT_EQ(cpg_initialize(&handle, nullptr), CS_OK);
    EXPECT_EQ(cpg_finalize(handle), CS_OK);
    EXPECT_EQ(cpg_finalize(handle), CS_ERR_BAD_HANDLE);
}

// Calls each of the 16 handle-taking functions with `bad` and otherwise valid arguments.
// `foreign_zcb` is a live zcb buffer of some other, valid handle.
void expect_every_function_refuses(cpg_handle_t bad, void* foreign_zcb, const std::string& label)
{
    SCOPED_TRACE(label);
    int fd = -1;
    uint32_t size = 0;
    void* context = nullptr;
    unsigned int nodeid = 0;
    cpg_flow_control_state_t state = CPG_FLOW_CONTROL_DISABLED;
    const cpg_name group = group_named("bad-handle-group");
    cpg_name mutable_group = group;
    cpg_address list[8];
    int count = 8;
    char byte = 'b';
    iovec part{&byte, 1};
    void* buffer = nullptr;
    cpg_iteration_handle_t iteration = 0;

    EXPECT_EQ(cpg_fd_get(bad, &fd), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_max_atomic_msgsize_get(bad, &size), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_context_get(bad, &context), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_context_set(bad, &fd), CS_ERR_BAD_HANDLE);
    for (cs_dispatch_flags_t mode : {CS_DISPATCH_ONE, CS_DISPATCH_ALL, CS_DISPATCH_BLOCKING,
                                     CS_DISPATCH_ONE_NONBLOCKING}) {
        EXPECT_EQ(Background<cs_error_t>([bad, mode] { return cpg_dispatch(bad, mode); }).wait(kEventTimeout),
                  CS_ERR_BAD_HANDLE)
            << "dispatch mode " << mode;
    }
    EXPECT_EQ(cpg_join(bad, &group), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_leave(bad, &group), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_mcast_joined(bad, CPG_TYPE_AGREED, &part, 1), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_mcast_joined(bad, CPG_TYPE_AGREED, nullptr, 0), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_membership_get(bad, &mutable_group, list, &count), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_local_get(bad, &nodeid), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_flow_control_state_get(bad, &state), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_zcb_alloc(bad, 64, &buffer), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_zcb_free(bad, foreign_zcb), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_zcb_mcast_joined(bad, CPG_TYPE_AGREED, foreign_zcb, 8), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_iteration_initialize(bad, CPG_ITERATION_ALL, nullptr, &iteration), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_iteration_initialize(bad, CPG_ITERATION_ONE_GROUP, &group, &iteration), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_finalize(bad), CS_ERR_BAD_HANDLE);
}

TEST_F(Handles, EveryHandleFunctionGivesBadHandleForInvalidHandles)
{
    cpg_handle_t live = 0;
    ASSERT_EQ(cpg_initialize(&live, nullptr), CS_OK);
    void* live_buffer = nullptr;
    ASSERT_EQ(cpg_zcb_alloc(live, 64, &live_buffer), CS_OK);

    cpg_handle_t finalized = 0;
    ASSERT_EQ(cpg_initialize(&finalized, nullptr), CS_OK);
    ASSERT_EQ(cpg_finalize(finalized), CS_OK);

    expect_every_function_refuses(0, live_buffer, "handle 0");
    expect_every_function_refuses(0xdeadbeef, live_buffer, "handle 0xdeadbeef");
    expect_every_function_refuses(UINT64_MAX, live_buffer, "handle ~0");
    expect_every_function_refuses(finalized, live_buffer, "finalized handle");
    // The live handle's slot with another check value.
    expect_every_function_refuses(live ^ (uint64_t{1} << 40), live_buffer, "forged check value");
    expect_every_function_refuses(live + 1, live_buffer, "next slot");
    std::mt19937_64 random(20240607);
    for (int i = 0; i < 8; ++i) {
        const cpg_handle_t value = random();
        if (value != live) {
            expect_every_function_refuses(value, live_buffer, "random handle " + std::to_string(value));
        }
    }
    // The live handle is unaffected by all of that.
    int fd = -1;
    EXPECT_EQ(cpg_fd_get(live, &fd), CS_OK);
    EXPECT_EQ(cpg_zcb_free(live, live_buffer), CS_OK);
    EXPECT_EQ(cpg_finalize(live), CS_OK);
}

TEST_F(Handles, IterationFunctionsGiveBadHandleForInvalidIterationHandles)
{
    cpg_iteration_description_t description{};
    for (cpg_iteration_handle_t bad : {cpg_iteration_handle_t{0}, cpg_iteration_handle_t{0xdeadbeef},
                                       cpg_iteration_handle_t{UINT64_MAX}, cpg_iteration_handle_t{0x12345678abcdefull}}) {
        EXPECT_EQ(cpg_iteration_next(bad, &description), CS_ERR_BAD_HANDLE) << bad;
        EXPECT_EQ(cpg_iteration_finalize(bad), CS_ERR_BAD_HANDLE) << bad;
    }
}

TEST_F(Handles, NameTooLongIsCheckedBeforeTheHandle)
{
    cpg_name long_name = group_named(std::string(CPG_MAX_NAME_LENGTH, 'n'));
    cpg_address list[4];
    int count = 4;
    cpg_iteration_handle_t iteration = 0;
    for (uint32_t length : {129u, 200u, 0xffffffffu}) {
        long_name.length = length;
        SCOPED_TRACE("length " + std::to_string(length));
        for (cpg_handle_t bad : {cpg_handle_t{0}, cpg_handle_t{0xdeadbeef}}) {
            EXPECT_EQ(cpg_join(bad, &long_name), CS_ERR_NAME_TOO_LONG);
            EXPECT_EQ(cpg_leave(bad, &long_name), CS_ERR_NAME_TOO_LONG);
            EXPECT_EQ(cpg_membership_get(bad, &long_name, list, &count), CS_ERR_NAME_TOO_LONG);
            EXPECT_EQ(cpg_iteration_initialize(bad, CPG_ITERATION_ONE_GROUP, &long_name, &iteration),
                      CS_ERR_NAME_TOO_LONG);
        }
    }
}

TEST_F(Handles, OtherArgumentChecksRunBeforeTheHandleCheck)
{
    const cpg_handle_t bad = 0xdeadbeef;
    cpg_name group = group_named("args-first");
    int count = 4;
    cpg_address list[4];
    cpg_iteration_handle_t iteration = 0;
    EXPECT_EQ(cpg_membership_get(bad, &group, nullptr, &count), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_membership_get(bad, &group, list, nullptr), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_iteration_initialize(bad, CPG_ITERATION_ALL, nullptr, nullptr), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_iteration_initialize(bad, static_cast<cpg_iteration_type_t>(0), nullptr, &iteration),
              CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_iteration_initialize(bad, CPG_ITERATION_ONE_GROUP, nullptr, &iteration), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_iteration_initialize(bad, CPG_ITERATION_ALL, &group, &iteration), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_iteration_next(0xdeadbeef, nullptr), CS_ERR_INVALID_PARAM);
}

TEST_F(Handles, NameLength128IsAcceptedAnd129Rejected)
{
    Client client;
    ASSERT_TRUE(client.ok());
    cpg_name name = group_named(std::string(CPG_MAX_NAME_LENGTH, 'q'));
    ASSERT_EQ(name.length, 128u);
    EXPECT_EQ(cpg_join(client.handle, &name), CS_OK);
    ASSERT_TRUE(client.pump_until_count(Event::confchg, 1));
    EXPECT_EQ(client.rec.events[0].group, std::string(128, 'q'));
    cpg_address list[4];
    int count = 4;
    EXPECT_EQ(cpg_membership_get(client.handle, &name, list, &count), CS_OK);
    EXPECT_EQ(count, 1);

    name.length = 129;
    EXPECT_EQ(cpg_leave(client.handle, &name), CS_ERR_NAME_TOO_LONG);
    count = 4;
    EXPECT_EQ(cpg_membership_get(client.handle, &name, list, &count), CS_ERR_NAME_TOO_LONG);
    Client other;
    ASSERT_TRUE(other.ok());
    EXPECT_EQ(cpg_join(other.handle, &name), CS_ERR_NAME_TOO_LONG);
    name.length = 128;
    EXPECT_EQ(cpg_leave(client.handle, &name), CS_OK);
}

TEST_F(Handles, NameLengthZeroIsLegal)
{
    Client client;
    ASSERT_TRUE(client.ok());
    cpg_name empty{};
    ASSERT_EQ(cpg_join(client.handle, &empty), CS_OK);
    ASSERT_TRUE(client.pump_until_count(Event::confchg, 1));
    EXPECT_EQ(client.rec.events[0].group, "");
    ASSERT_EQ(client.send("to the nameless"), CS_OK);
    ASSERT_TRUE(client.pump_until_body("to the nameless"));
    const auto members = members_of(client.handle, "");
    ASSERT_EQ(members.size(), 1u);
    EXPECT_EQ(members[0].pid, self_pid());
    EXPECT_EQ(cpg_leave(client.handle, &empty), CS_OK);
}

TEST_F(Handles, NullPointersGiveInvalidParam)
{
    // corosync crashes on these; rcpg's header promises INVALID_PARAM instead.
    EXPECT_EQ(cpg_initialize(nullptr, nullptr), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_model_initialize(nullptr, CPG_MODEL_V1, nullptr, nullptr), CS_ERR_INVALID_PARAM);
    cpg_handle_t handle = 0;
    ASSERT_EQ(cpg_initialize(&handle, nullptr), CS_OK);
    cpg_name group = group_named("nulls");
    int count = 1;
    cpg_address list[1];
    EXPECT_EQ(cpg_fd_get(handle, nullptr), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_max_atomic_msgsize_get(handle, nullptr), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_context_get(handle, nullptr), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_local_get(handle, nullptr), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_flow_control_state_get(handle, nullptr), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_zcb_alloc(handle, 16, nullptr), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_join(handle, nullptr), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_leave(handle, nullptr), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_membership_get(handle, &group, nullptr, &count), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_membership_get(handle, &group, list, nullptr), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_iteration_initialize(handle, CPG_ITERATION_ALL, nullptr, nullptr), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_iteration_next(0, nullptr), CS_ERR_INVALID_PARAM);
    // The handle still works.
    EXPECT_EQ(cpg_join(handle, &group), CS_OK);
    EXPECT_EQ(cpg_finalize(handle), CS_OK);
}

TEST_F(Handles, LocalGetGivesNodeOne)
{
    cpg_handle_t handle = 0;
    ASSERT_EQ(cpg_initialize(&handle, nullptr), CS_OK);
    unsigned int nodeid = 0;
    ASSERT_EQ(cpg_local_get(handle, &nodeid), CS_OK);
    EXPECT_EQ(nodeid, 1u);
    EXPECT_EQ(cpg_finalize(handle), CS_OK);
}

TEST_F(Handles, FlowControlIsDisabledWhenIdle)
{
    Client client;
    ASSERT_TRUE(client.ok());
    cpg_flow_control_state_t state = CPG_FLOW_CONTROL_ENABLED;
    ASSERT_EQ(cpg_flow_control_state_get(client.handle, &state), CS_OK);
    EXPECT_EQ(state, CPG_FLOW_CONTROL_DISABLED);
    ASSERT_EQ(client.join("flow"), CS_OK);
    ASSERT_EQ(client.send("one"), CS_OK);
    ASSERT_TRUE(client.pump_until_body("one"));
    state = CPG_FLOW_CONTROL_ENABLED;
    ASSERT_EQ(cpg_flow_control_state_get(client.handle, &state), CS_OK);
    EXPECT_EQ(state, CPG_FLOW_CONTROL_DISABLED);
}

TEST_F(Handles, MaxAtomicMessageSizeIsOneMebibyte)
{
    cpg_handle_t handle = 0;
    ASSERT_EQ(cpg_initialize(&handle, nullptr), CS_OK);
    uint32_t size = 0;
    ASSERT_EQ(cpg_max_atomic_msgsize_get(handle, &size), CS_OK);
    EXPECT_GE(size, 1047552u);
    EXPECT_EQ(size, 1048576u);
    EXPECT_EQ(cpg_finalize(handle), CS_OK);
}

TEST_F(Handles, FdIsTheSameEveryCallAndAConnectedUnixStreamSocket)
{
    cpg_handle_t handle = 0;
    ASSERT_EQ(cpg_initialize(&handle, nullptr), CS_OK);
    int first = -1;
    ASSERT_EQ(cpg_fd_get(handle, &first), CS_OK);
    EXPECT_GE(first, 0);
    for (int i = 0; i < 10000; ++i) {
        int again = -1;
        ASSERT_EQ(cpg_fd_get(handle, &again), CS_OK);
        ASSERT_EQ(again, first);
    }
    int type = 0;
    int domain = 0;
    socklen_t length = sizeof(type);
    ASSERT_EQ(::getsockopt(first, SOL_SOCKET, SO_TYPE, &type, &length), 0);
    EXPECT_EQ(type, SOCK_STREAM);
    length = sizeof(domain);
    ASSERT_EQ(::getsockopt(first, SOL_SOCKET, SO_DOMAIN, &domain, &length), 0);
    EXPECT_EQ(domain, AF_UNIX);
    // Pacemaker refuses a provider whose peer is not root; our daemon runs as we do.
    ucred peer{};
    length = sizeof(peer);
    ASSERT_EQ(::getsockopt(first, SOL_SOCKET, SO_PEERCRED, &peer, &length), 0);
    EXPECT_EQ(peer.uid, ::getuid());
    EXPECT_EQ(peer.pid, daemon_.pid());
    EXPECT_EQ(cpg_finalize(handle), CS_OK);
}

}  // namespace
}  // namespace rcpg::conformance
