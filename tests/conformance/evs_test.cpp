// EVS (corosync 1.4's <corosync/evs.h>, rcpg's libevs.so.4) against a real rcpgd:
// evs_initialize (handles, NULL arguments, no daemon), the initial confchg (the current
// nodes as members and joined, the ring id) and that only node changes make confchgs,
// evs_membership_get (NULL arguments, capacity), NULL callbacks, callbacks copied,
// contexts, CS_ERR_BAD_HANDLE from every function (made-up, finalized and a parent's
// handle in a forked child), evs_join / evs_leave (50 groups per call, a group joined
// twice, a leave that stops at the first group not joined, keys compared on all 32
// bytes, empty lists), evs_mcast_joined and evs_mcast_groups (who gets a message, once,
// self-delivery, the node id, gathered bytes, empty messages, every guarantee, one order
// across handles and processes, joins that apply to later messages only, large messages,
// the 1 MiB limit with the groups, iovec checks), and the dispatch modes (ONE handles
// one event, ONE_NONBLOCKING gives TRY_AGAIN, ONE waits for another process, BLOCKING
// and every other mode return BAD_HANDLE once a callback finalized the handle).
//
// Checks that something is NOT delivered need no quiet period: one sender's messages
// arrive in the order it sent them, so once a later marker of that sender arrived
// (flush()), any earlier message of it would have too.
#include "tests/conformance/conformance.hpp"

#include <corosync/evs.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>

namespace rcpg::conformance {
namespace {

// A message with its groups may take 1 MiB: the payload, 8 bytes and 32 per group.
constexpr size_t kMaxMessage = 1048576;
constexpr size_t kMessageOverhead = 8;
constexpr size_t kGroupBytes = sizeof(evs_group);
static_assert(kGroupBytes == 32);
constexpr size_t kMaxGroupsPerJoin = 50;
constexpr unsigned int kIovMax = 1024;
// Bodies that flush() sends; bodies() leaves them out.
constexpr std::string_view kMarkerPrefix = "~marker-";

// A group key: `text` padded with zeros (binary-safe: the string's size counts).
evs_group group_key(std::string_view text)
{
    evs_group group{};
    std::memcpy(group.key, text.data(), std::min(text.size(), sizeof(group.key)));
    return group;
}

std::vector<evs_group> group_keys(const std::vector<std::string>& names)
{
    std::vector<evs_group> keys;
    for (const std::string& name : names) {
        keys.push_back(group_key(name));
    }
    return keys;
}

// A position-dependent pattern: a shifted, truncated or duplicated piece shows.
std::string pattern(size_t size, uint32_t seed)
{
    std::string out(size, '\0');
    for (size_t i = 0; i < size; ++i) {
        const uint64_t x = (i + seed) * 0x9E3779B97F4A7C15ull;
        out[i] = static_cast<char>(x >> 56);
    }
    return out;
}

// Index of the first differing byte, or -1 (keeps a failure's output short for 1 MiB).
long first_difference(const std::string& a, const std::string& b)
{
    const size_t common = std::min(a.size(), b.size());
    for (size_t i = 0; i < common; ++i) {
        if (a[i] != b[i]) {
            return static_cast<long>(i);
        }
    }
    return a.size() == b.size() ? -1 : static_cast<long>(common);
}

// ---------------------------------------------------------------------------------------
// Recording callbacks, keyed by the handle's context.

struct Delivery {
    unsigned int nodeid = 0;
    std::string body;
};

struct Confchg {
    std::vector<unsigned int> members, left, joined;
    bool has_ring = false;
    evs_ring_id ring{};
};

struct EvsRecorder {
    std::vector<Delivery> deliveries;
    std::vector<Confchg> confchgs;
    std::string kinds;  // 'c' (confchg) or 'd' (delivery) per callback, in order
    // Runs after an event was recorded, on the dispatching thread.
    std::function<void(evs_handle_t)> hook;

    // The delivered bodies, flush() markers left out.
    std::vector<std::string> bodies() const
    {
        std::vector<std::string> out;
        for (const Delivery& delivery : deliveries) {
            if (delivery.body.rfind(kMarkerPrefix, 0) != 0) {
                out.push_back(delivery.body);
            }
        }
        return out;
    }
    size_t count_body(std::string_view body) const
    {
        return static_cast<size_t>(std::count_if(deliveries.begin(), deliveries.end(),
                                                 [&](const Delivery& d) { return d.body == body; }));
    }
    bool has_body(std::string_view body) const { return count_body(body) > 0; }
};

// Callbacks that ran for a handle without a recorder: after evs_finalize (the context is
// gone with the handle), so a count that rises means a callback after the finalize.
std::atomic<int> g_unrecorded{0};

EvsRecorder* evs_recorder_of(evs_handle_t handle)
{
    void* context = nullptr;
    if (evs_context_get(handle, &context) != CS_OK) {
        return nullptr;
    }
    return static_cast<EvsRecorder*>(context);
}

void record_evs_deliver(hdb_handle_t handle, unsigned int nodeid, const void* msg, size_t msg_len)
{
    EvsRecorder* rec = evs_recorder_of(handle);
    if (rec == nullptr) {
        ++g_unrecorded;
        return;
    }
    Delivery delivery;
    delivery.nodeid = nodeid;
    if (msg_len > 0) {
        delivery.body.assign(static_cast<const char*>(msg), msg_len);
    }
    rec->deliveries.push_back(std::move(delivery));
    rec->kinds.push_back('d');
    if (rec->hook) {
        rec->hook(handle);
    }
}

void record_evs_confchg(hdb_handle_t handle, const unsigned int* members, size_t n_members, const unsigned int* left,
                        size_t n_left, const unsigned int* joined, size_t n_joined, const evs_ring_id* ring)
{
    EvsRecorder* rec = evs_recorder_of(handle);
    if (rec == nullptr) {
        ++g_unrecorded;
        return;
    }
    Confchg confchg;
    if (n_members > 0) {
        confchg.members.assign(members, members + n_members);
    }
    if (n_left > 0) {
        confchg.left.assign(left, left + n_left);
    }
    if (n_joined > 0) {
        confchg.joined.assign(joined, joined + n_joined);
    }
    if (ring != nullptr) {
        confchg.has_ring = true;
        confchg.ring = *ring;  // valid only during the callback
    }
    rec->confchgs.push_back(std::move(confchg));
    rec->kinds.push_back('c');
    if (rec->hook) {
        rec->hook(handle);
    }
}

// Dispatches (poll on every fd, then CS_DISPATCH_ALL on each handle) until `done()`
// holds; false on timeout or a dispatch error. The poll only paces the loop: a broken
// readiness signal slows a test down but does not hide events.
bool pump_handles_until(const std::vector<evs_handle_t>& handles, const std::function<bool()>& done,
                        std::chrono::milliseconds timeout = kEventTimeout)
{
    std::vector<pollfd> fds;
    for (const evs_handle_t handle : handles) {
        int fd = -1;
        if (evs_fd_get(handle, &fd) != CS_OK) {
            return false;
        }
        fds.push_back({fd, POLLIN, 0});
    }
    const auto deadline = Clock::now() + timeout;
    while (true) {
        if (done()) {
            return true;
        }
        if (Clock::now() > deadline) {
            return false;
        }
        ::poll(fds.data(), fds.size(), 20);
        for (const evs_handle_t handle : handles) {
            if (evs_dispatch(handle, CS_DISPATCH_ALL) != CS_OK) {
                return done();
            }
        }
    }
}

// Retries `attempt` while flow control says CS_ERR_TRY_AGAIN, dispatching `drain`
// meanwhile (so that our own backlog can drain); bounded by kEventTimeout.
cs_error_t send_retrying(const std::function<cs_error_t()>& attempt, const std::vector<evs_handle_t>& drain)
{
    const auto deadline = Clock::now() + kEventTimeout;
    while (true) {
        const cs_error_t result = attempt();
        if (result != CS_ERR_TRY_AGAIN || Clock::now() > deadline) {
            return result;
        }
        for (const evs_handle_t handle : drain) {
            evs_dispatch(handle, CS_DISPATCH_ALL);
        }
        std::this_thread::sleep_for(100us);  // back-off, not synchronisation
    }
}

// A handle whose callbacks record into `rec` (the handle's context points to it).
class EvsClient {
public:
    struct Options {
        bool deliver = true;     // register evs_deliver_fn
        bool confchg = true;     // register evs_confchg_fn
        bool retry_init = false; // retry CS_ERR_TRY_AGAIN (processes connecting at once)
    };

    EvsClient() : EvsClient(Options{}) {}
    explicit EvsClient(Options options)
    {
        evs_callbacks_t callbacks{options.deliver ? record_evs_deliver : nullptr,
                                  options.confchg ? record_evs_confchg : nullptr};
        const auto deadline = Clock::now() + kEventTimeout;
        while (true) {
            init_result = evs_initialize(&handle, &callbacks);
            if (init_result != CS_ERR_TRY_AGAIN || !options.retry_init || Clock::now() > deadline) {
                break;
            }
            std::this_thread::sleep_for(1ms);
        }
        if (init_result == CS_OK) {
            // Before any dispatch: callbacks run only inside evs_dispatch().
            context_result = evs_context_set(handle, &rec);
        }
    }
    ~EvsClient()
    {
        if (init_result == CS_OK && !finalized) {
            evs_finalize(handle);
        }
    }
    EvsClient(const EvsClient&) = delete;
    EvsClient& operator=(const EvsClient&) = delete;

    bool ok() const { return init_result == CS_OK && context_result == CS_OK; }

    cs_error_t finalize()
    {
        finalized = true;
        return evs_finalize(handle);
    }

    cs_error_t join(const std::vector<std::string>& names)
    {
        const std::vector<evs_group> keys = group_keys(names);
        return evs_join(handle, keys.data(), keys.size());
    }
    cs_error_t leave(const std::vector<std::string>& names)
    {
        const std::vector<evs_group> keys = group_keys(names);
        return evs_leave(handle, keys.data(), keys.size());
    }

    // evs_mcast_joined / evs_mcast_groups, retrying CS_ERR_TRY_AGAIN.
    cs_error_t send(std::string_view body, evs_guarantee_t guarantee = EVS_TYPE_AGREED)
    {
        return send_iov({iovec{const_cast<char*>(body.data()), body.size()}}, guarantee);
    }
    cs_error_t send_iov(const std::vector<iovec>& parts, evs_guarantee_t guarantee = EVS_TYPE_AGREED)
    {
        return send_retrying(
            [&] { return evs_mcast_joined(handle, guarantee, parts.data(), static_cast<unsigned int>(parts.size())); },
            drain_handles());
    }
    cs_error_t send_groups(const std::vector<std::string>& names, std::string_view body,
                           evs_guarantee_t guarantee = EVS_TYPE_AGREED)
    {
        return send_groups_iov(names, {iovec{const_cast<char*>(body.data()), body.size()}}, guarantee);
    }
    cs_error_t send_groups_iov(const std::vector<std::string>& names, const std::vector<iovec>& parts,
                               evs_guarantee_t guarantee = EVS_TYPE_AGREED)
    {
        const std::vector<evs_group> keys = group_keys(names);
        return send_retrying(
            [&] {
                return evs_mcast_groups(handle, guarantee, keys.data(), keys.size(), parts.data(),
                                        static_cast<unsigned int>(parts.size()));
            },
            drain_handles());
    }

    int fd() const
    {
        int value = -1;
        evs_fd_get(handle, &value);
        return value;
    }

    bool pump_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = kEventTimeout)
    {
        return pump_handles_until({handle}, done, timeout);
    }
    bool pump_until_body(std::string_view body) { return pump_until([&] { return rec.has_body(body); }); }
    bool pump_until_deliveries(size_t count) { return pump_until([&] { return rec.deliveries.size() >= count; }); }
    bool pump_until_confchgs(size_t count) { return pump_until([&] { return rec.confchgs.size() >= count; }); }
    // Dispatches what arrives within `quiet_ms` (for checks that something does NOT
    // come); the last dispatch result.
    cs_error_t pump_for(int quiet_ms)
    {
        const auto deadline = Clock::now() + std::chrono::milliseconds(quiet_ms);
        const int descriptor = fd();
        cs_error_t result = CS_OK;
        while (Clock::now() < deadline && result == CS_OK) {
            fd_readable(descriptor, 20);
            result = evs_dispatch(handle, CS_DISPATCH_ALL);
        }
        return result;
    }

    evs_handle_t handle = 0;
    cs_error_t init_result = CS_ERR_LIBRARY;
    cs_error_t context_result = CS_ERR_LIBRARY;
    bool finalized = false;
    // Other handles to dispatch while a send of this one waits for room.
    std::vector<evs_handle_t> also_drain;
    EvsRecorder rec;

private:
    std::vector<evs_handle_t> drain_handles() const
    {
        std::vector<evs_handle_t> out{handle};
        out.insert(out.end(), also_drain.begin(), also_drain.end());
        return out;
    }
};

// The local node id as evs_membership_get reports it (0 on an error).
unsigned int local_nodeid(evs_handle_t handle)
{
    unsigned int local = 0;
    size_t entries = 0;
    return evs_membership_get(handle, &local, nullptr, &entries) == CS_OK ? local : 0;
}

// Sends a fresh marker from `sender` to `group` (one `receiver` joined) and dispatches
// `receiver` until it arrives. One sender's messages arrive in the order it sent them,
// so by then everything `sender` sent before that could reach `receiver` has: a check
// that something of `sender` was NOT delivered needs no quiet period.
::testing::AssertionResult flush(EvsClient& sender, const std::string& group, EvsClient& receiver)
{
    static int counter = 0;
    const std::string marker = std::string(kMarkerPrefix) + std::to_string(++counter);
    if (const cs_error_t sent = sender.send_groups({group}, marker); sent != CS_OK) {
        return ::testing::AssertionFailure() << "sending the marker gave " << sent;
    }
    if (!receiver.pump_until_body(marker)) {
        return ::testing::AssertionFailure() << "the marker to " << group << " was not delivered";
    }
    return ::testing::AssertionSuccess();
}

// Finalizes the handle inside the first callback that sees a confchg (`body` empty) or
// the delivery of `body`, and keeps what evs_finalize returned.
struct FinalizeInCallback {
    FinalizeInCallback(EvsClient& client, std::string body) : body_(std::move(body))
    {
        client.rec.hook = [this, &client](evs_handle_t handle) {
            const EvsRecorder& rec = client.rec;
            const bool hit = body_.empty() ? rec.kinds.back() == 'c'
                                           : (rec.kinds.back() == 'd' && rec.deliveries.back().body == body_);
            if (hit && !result) {
                result = evs_finalize(handle);
                client.finalized = true;
            }
        };
    }
    std::optional<cs_error_t> result;

private:
    std::string body_;
};

// Sets RCPG_IPC for a scope and restores the test daemon's name afterwards.
class ScopedIpcName {
public:
    explicit ScopedIpcName(const char* name)
    {
        if (const char* old = std::getenv("RCPG_IPC"); old != nullptr) {
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

size_t open_descriptors()
{
    size_t count = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        ++count;
    }
    return count;
}

// Every test gets its own rcpgd (a process: several tests fork clients), so groups
// never leak between tests.
class Evs : public ::testing::Test {
protected:
    rcpg::testing::DaemonProcess daemon_;
};

// ---------------------------------------------------------------------------------------
// Handles

TEST_F(Evs, InitializeGivesDistinctNonZeroHandlesAndRefusesANullHandlePointer)
{
    evs_callbacks_t callbacks{record_evs_deliver, record_evs_confchg};
    EXPECT_EQ(evs_initialize(nullptr, &callbacks), CS_ERR_INVALID_PARAM);
    // NULL callbacks are none, as corosync 1.4 took them: a handle that only sends.
    evs_handle_t send_only = 0;
    ASSERT_EQ(evs_initialize(&send_only, nullptr), CS_OK);
    EXPECT_NE(send_only, 0u);
    const evs_group group = [] {
        evs_group g{};
        std::strcpy(g.key, "send-only");
        return g;
    }();
    char text[] = "from a handle without callbacks";
    iovec iov{text, sizeof(text)};
    EXPECT_EQ(evs_mcast_groups(send_only, EVS_TYPE_AGREED, &group, 1, &iov, 1), CS_OK);
    EXPECT_EQ(evs_dispatch(send_only, CS_DISPATCH_ALL), CS_OK) << "its events are dropped";
    EXPECT_EQ(evs_finalize(send_only), CS_OK);
    evs_handle_t first = 0;
    evs_handle_t second = 0;
    ASSERT_EQ(evs_initialize(&first, &callbacks), CS_OK);
    ASSERT_EQ(evs_initialize(&second, &callbacks), CS_OK);
    EXPECT_NE(first, 0u);
    EXPECT_NE(second, 0u);
    EXPECT_NE(first, second);
    EXPECT_EQ(evs_finalize(first), CS_OK);
    EXPECT_EQ(evs_finalize(second), CS_OK);
}

TEST_F(Evs, InitializeWithoutADaemonFailsAndLeaksNothing)
{
    evs_callbacks_t callbacks{record_evs_deliver, record_evs_confchg};
    {
        ScopedIpcName no_daemon("rcpg-evs-conformance-no-such-daemon");
        evs_handle_t handle = 0;
        // corosync gives TRY_AGAIN, rcpg's CPG gives LIBRARY: either, never OK. The first
        // call may set up what the library keeps for good, so it is not counted.
        const cs_error_t first = evs_initialize(&handle, &callbacks);
        EXPECT_TRUE(first == CS_ERR_TRY_AGAIN || first == CS_ERR_LIBRARY) << "returned " << first;
        const size_t descriptors = open_descriptors();
        for (int i = 0; i < 20; ++i) {
            handle = 0;
            const cs_error_t result = evs_initialize(&handle, &callbacks);
            ASSERT_TRUE(result == CS_ERR_TRY_AGAIN || result == CS_ERR_LIBRARY)
                << "attempt " << i << " returned " << result;
            if (handle != 0) {
                EXPECT_EQ(evs_finalize(handle), CS_ERR_BAD_HANDLE) << "a failed evs_initialize left a live handle";
            }
        }
        EXPECT_EQ(open_descriptors(), descriptors) << "failed evs_initialize calls leaked descriptors";
    }
    // The test's daemon is found again once RCPG_IPC names it.
    EvsClient client;
    EXPECT_TRUE(client.ok());
}

TEST_F(Evs, InitialConfchgListsTheCurrentNodesAsMembersAndJoined)
{
    EvsClient client;
    ASSERT_TRUE(client.ok());
    const int fd = client.fd();
    // evs.h: evs_initialize returns with the initial confchg pending, the fd readable
    // (bounded, not immediate: the readiness may come from the daemon).
    ASSERT_TRUE(fd_readable(fd, kEventTimeoutMs)) << "no event pending after evs_initialize";
    unsigned int local = 0;
    unsigned int list[8] = {};
    size_t entries = 8;
    ASSERT_EQ(evs_membership_get(client.handle, &local, list, &entries), CS_OK);
    ASSERT_EQ(entries, 1u) << "a one-node cluster";
    EXPECT_EQ(list[0], local);

    ASSERT_EQ(evs_dispatch(client.handle, CS_DISPATCH_ALL), CS_OK);
    ASSERT_EQ(client.rec.kinds, "c") << "exactly the initial confchg";
    const Confchg& initial = client.rec.confchgs[0];
    EXPECT_EQ(initial.members, std::vector<unsigned int>{local});
    EXPECT_TRUE(initial.left.empty());
    EXPECT_EQ(initial.joined, initial.members) << "a new handle gets the current nodes as joined";
    ASSERT_TRUE(initial.has_ring) << "rcpg passes the ring id (corosync passed NULL)";
    EXPECT_EQ(initial.ring.nodeid, local) << "the sequencer of a one-node ring is the node";
    EXPECT_GT(initial.ring.seq, 0u);

    // Nothing else is pending.
    EXPECT_EQ(evs_dispatch(client.handle, CS_DISPATCH_ALL), CS_OK);
    EXPECT_FALSE(fd_readable(fd, kQuietMs)) << "readable after the initial confchg was dispatched";
    EXPECT_EQ(evs_dispatch(client.handle, CS_DISPATCH_ONE_NONBLOCKING), CS_ERR_TRY_AGAIN);
    EXPECT_EQ(client.rec.kinds, "c");

    // The node id is the daemon's, the one CPG reports too.
    cpg_handle_t cpg = 0;
    ASSERT_EQ(cpg_initialize(&cpg, nullptr), CS_OK);
    unsigned int cpg_local = 0;
    EXPECT_EQ(cpg_local_get(cpg, &cpg_local), CS_OK);
    EXPECT_EQ(cpg_finalize(cpg), CS_OK);
    EXPECT_EQ(local, cpg_local);
}

TEST_F(Evs, OtherClientsJoiningLeavingAndExitingMakeNoConfchg)
{
    EvsClient watcher;
    ASSERT_TRUE(watcher.ok());
    ASSERT_EQ(watcher.join({"watched"}), CS_OK);
    ASSERT_TRUE(watcher.pump_until_confchgs(1));
    const Confchg first = watcher.rec.confchgs[0];
    // Another process opens a handle, joins, leaves and exits: no node came or went.
    ChildProcess child([&]() -> int {
        EvsClient other(EvsClient::Options{.retry_init = true});
        if (!other.ok() || other.join({"watched", "elsewhere"}) != CS_OK) {
            return 2;
        }
        if (!other.pump_until_confchgs(1)) {
            return 3;
        }
        // The same ring and nodes as the watcher's (`first` is the fork's copy).
        const Confchg& own = other.rec.confchgs[0];
        if (!own.has_ring || own.ring.nodeid != first.ring.nodeid || own.ring.seq != first.ring.seq ||
            own.members != first.members) {
            return 4;
        }
        return other.leave({"watched"}) == CS_OK ? 0 : 5;
    });
    ASSERT_TRUE(child.started());
    EXPECT_EQ(child.wait(), 0) << "4: another process's handle saw another ring";
    {
        EvsClient other;
        ASSERT_TRUE(other.ok());
        ASSERT_TRUE(other.pump_until_confchgs(1));
        EXPECT_EQ(other.rec.confchgs[0].ring.nodeid, first.ring.nodeid);
        EXPECT_EQ(other.rec.confchgs[0].ring.seq, first.ring.seq);
        ASSERT_EQ(other.join({"watched"}), CS_OK);
        ASSERT_EQ(other.leave({"watched"}), CS_OK);
        ASSERT_EQ(other.finalize(), CS_OK);
    }
    EvsClient sender;
    ASSERT_TRUE(sender.ok());
    ASSERT_TRUE(flush(sender, "watched", watcher));
    // A confchg caused by the others is not ordered against the marker: watch a bit more.
    watcher.pump_for(kQuietMs);
    EXPECT_EQ(watcher.rec.confchgs.size(), 1u) << "a confchg without a change of nodes";
}

TEST_F(Evs, MembershipGetWritesAtMostTheCapacityAndChecksItsArguments)
{
    EvsClient client;
    ASSERT_TRUE(client.ok());
    constexpr unsigned int kUnwritten = 0xdeadbeef;
    unsigned int local = 0;
    unsigned int list[4] = {kUnwritten, kUnwritten, kUnwritten, kUnwritten};
    size_t entries = 4;
    ASSERT_EQ(evs_membership_get(client.handle, &local, list, &entries), CS_OK);
    EXPECT_NE(local, 0u);
    ASSERT_EQ(entries, 1u) << "one node";
    EXPECT_EQ(list[0], local);
    EXPECT_EQ(list[1], kUnwritten) << "written past the members";

    // Capacity 0: nothing written, 0 reported; the local node id still comes.
    list[0] = kUnwritten;
    entries = 0;
    unsigned int again = 0;
    ASSERT_EQ(evs_membership_get(client.handle, &again, list, &entries), CS_OK);
    EXPECT_EQ(entries, 0u);
    EXPECT_EQ(list[0], kUnwritten) << "written beyond a capacity of 0";
    EXPECT_EQ(again, local);

    // Capacity exactly the membership.
    entries = 1;
    ASSERT_EQ(evs_membership_get(client.handle, nullptr, list, &entries), CS_OK) << "local_nodeid may be NULL";
    EXPECT_EQ(entries, 1u);
    EXPECT_EQ(list[0], local);
    EXPECT_EQ(list[1], kUnwritten);

    // member_list may be NULL: only the local node id wanted.
    again = 0;
    entries = 4;
    EXPECT_EQ(evs_membership_get(client.handle, &again, nullptr, &entries), CS_OK);
    EXPECT_EQ(again, local);

    EXPECT_EQ(evs_membership_get(client.handle, &again, list, nullptr), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(evs_membership_get(client.handle, nullptr, nullptr, nullptr), CS_ERR_INVALID_PARAM);

    // The same nodes as the initial confchg's.
    ASSERT_TRUE(client.pump_until_confchgs(1));
    EXPECT_EQ(client.rec.confchgs[0].members, std::vector<unsigned int>{local});
}

TEST_F(Evs, NullCallbacksDropTheirEventsAndDispatchStillSucceeds)
{
    EvsClient none(EvsClient::Options{.deliver = false, .confchg = false});
    EvsClient deliver_only(EvsClient::Options{.confchg = false});
    EvsClient confchg_only(EvsClient::Options{.deliver = false});
    EvsClient witness;
    ASSERT_TRUE(none.ok() && deliver_only.ok() && confchg_only.ok() && witness.ok());
    for (EvsClient* client : {&none, &deliver_only, &confchg_only, &witness}) {
        ASSERT_EQ(client->join({"null-callbacks"}), CS_OK);
    }
    ASSERT_EQ(witness.send("to everyone"), CS_OK);
    // Sequenced (the witness has it): pending for every other handle, after its initial
    // confchg.
    ASSERT_TRUE(witness.pump_until_body("to everyone"));

    EXPECT_TRUE(fd_readable(none.fd(), kEventTimeoutMs)) << "events pending for the handle without callbacks";
    EXPECT_EQ(none.pump_for(kQuietMs), CS_OK);
    EXPECT_FALSE(fd_readable(none.fd(), kQuietMs)) << "dropped events stay pending";
    EXPECT_EQ(evs_dispatch(none.handle, CS_DISPATCH_ONE_NONBLOCKING), CS_ERR_TRY_AGAIN);

    ASSERT_TRUE(deliver_only.pump_until_body("to everyone"));
    EXPECT_EQ(deliver_only.pump_for(kQuietMs), CS_OK);
    EXPECT_EQ(deliver_only.rec.kinds, "d");

    ASSERT_TRUE(confchg_only.pump_until_confchgs(1));
    EXPECT_EQ(confchg_only.pump_for(kQuietMs), CS_OK);
    EXPECT_EQ(confchg_only.rec.kinds, "c");
    EXPECT_FALSE(fd_readable(confchg_only.fd(), kQuietMs));
}

int g_other_callbacks = 0;

void other_deliver(hdb_handle_t, unsigned int, const void*, size_t) { ++g_other_callbacks; }

void other_confchg(hdb_handle_t, const unsigned int*, size_t, const unsigned int*, size_t, const unsigned int*,
                   size_t, const evs_ring_id*)
{
    ++g_other_callbacks;
}

TEST_F(Evs, InitializeCopiesTheCallbacks)
{
    g_other_callbacks = 0;
    evs_callbacks_t callbacks{record_evs_deliver, record_evs_confchg};
    evs_handle_t handle = 0;
    ASSERT_EQ(evs_initialize(&handle, &callbacks), CS_OK);
    EvsRecorder rec;
    ASSERT_EQ(evs_context_set(handle, &rec), CS_OK);
    callbacks = {other_deliver, other_confchg};
    const evs_group group = group_key("copied");
    ASSERT_EQ(evs_join(handle, &group, 1), CS_OK);
    char byte = 'c';
    iovec part{&byte, 1};
    ASSERT_EQ(evs_mcast_joined(handle, EVS_TYPE_AGREED, &part, 1), CS_OK);
    EXPECT_TRUE(pump_handles_until({handle}, [&] { return rec.kinds.size() >= 2; }));
    EXPECT_EQ(rec.kinds, "cd");
    EXPECT_EQ(g_other_callbacks, 0) << "the callbacks were read again after evs_initialize";
    EXPECT_EQ(evs_finalize(handle), CS_OK);
}

TEST_F(Evs, ContextStartsNullAndIsKeptPerHandle)
{
    evs_callbacks_t callbacks{};
    evs_handle_t first = 0;
    evs_handle_t second = 0;
    ASSERT_EQ(evs_initialize(&first, &callbacks), CS_OK);
    ASSERT_EQ(evs_initialize(&second, &callbacks), CS_OK);
    void* context = reinterpret_cast<void*>(0x1);
    ASSERT_EQ(evs_context_get(first, &context), CS_OK);
    EXPECT_EQ(context, nullptr);
    int anchor_a = 0;
    int anchor_b = 0;
    ASSERT_EQ(evs_context_set(first, &anchor_a), CS_OK);
    ASSERT_EQ(evs_context_set(second, &anchor_b), CS_OK);
    ASSERT_EQ(evs_context_get(first, &context), CS_OK);
    EXPECT_EQ(context, &anchor_a);
    ASSERT_EQ(evs_context_get(second, &context), CS_OK);
    EXPECT_EQ(context, &anchor_b) << "contexts are per handle";
    ASSERT_EQ(evs_context_set(first, nullptr), CS_OK);
    ASSERT_EQ(evs_context_get(first, &context), CS_OK);
    EXPECT_EQ(context, nullptr);
    ASSERT_EQ(evs_context_get(second, &context), CS_OK);
    EXPECT_EQ(context, &anchor_b);
    EXPECT_EQ(evs_finalize(first), CS_OK);
    EXPECT_EQ(evs_finalize(second), CS_OK);
}

TEST_F(Evs, NullPointerArgumentsGiveInvalidParamAndChangeNothing)
{
    EvsClient client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join({"nulls"}), CS_OK);
    const evs_group group = group_key("nulls");
    char byte = 'x';
    iovec part{&byte, 1};
    EXPECT_EQ(evs_fd_get(client.handle, nullptr), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(evs_context_get(client.handle, nullptr), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(evs_join(client.handle, nullptr, 1), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(evs_leave(client.handle, nullptr, 1), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(evs_mcast_joined(client.handle, EVS_TYPE_AGREED, nullptr, 1), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(evs_mcast_groups(client.handle, EVS_TYPE_AGREED, nullptr, 1, &part, 1), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(evs_mcast_groups(client.handle, EVS_TYPE_AGREED, &group, 1, nullptr, 1), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(evs_membership_get(client.handle, nullptr, nullptr, nullptr), CS_ERR_INVALID_PARAM);
    // Still joined once (the refused leave left nothing), nothing refused was sent.
    ASSERT_EQ(client.send("valid"), CS_OK);
    ASSERT_TRUE(client.pump_until_body("valid"));
    EXPECT_EQ(client.rec.bodies(), std::vector<std::string>{"valid"});
    EXPECT_EQ(client.leave({"nulls"}), CS_OK);
}

// Calls every handle-taking function with `bad` and otherwise valid arguments.
void expect_every_function_refuses(evs_handle_t bad, const std::string& label)
{
    SCOPED_TRACE(label);
    int fd = -1;
    void* context = nullptr;
    int anchor = 0;
    const evs_group group = group_key("bad-handle");
    char byte = 'b';
    iovec part{&byte, 1};
    unsigned int local = 0;
    unsigned int list[4];
    size_t entries = 4;
    EXPECT_EQ(evs_fd_get(bad, &fd), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(evs_context_get(bad, &context), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(evs_context_set(bad, &anchor), CS_ERR_BAD_HANDLE);
    for (cs_dispatch_flags_t mode :
         {CS_DISPATCH_ONE, CS_DISPATCH_ALL, CS_DISPATCH_BLOCKING, CS_DISPATCH_ONE_NONBLOCKING}) {
        // Bounded: a dispatch that waited on a bad handle would hang the test.
        EXPECT_EQ(Background<cs_error_t>([bad, mode] { return evs_dispatch(bad, mode); }).wait(kEventTimeout),
                  CS_ERR_BAD_HANDLE)
            << "dispatch mode " << mode;
    }
    EXPECT_EQ(evs_join(bad, &group, 1), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(evs_leave(bad, &group, 1), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(evs_mcast_joined(bad, EVS_TYPE_AGREED, &part, 1), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(evs_mcast_groups(bad, EVS_TYPE_AGREED, &group, 1, &part, 1), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(evs_membership_get(bad, &local, list, &entries), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(evs_finalize(bad), CS_ERR_BAD_HANDLE);
}

TEST_F(Evs, EveryFunctionGivesBadHandleForMadeUpAndFinalizedHandles)
{
    EvsClient live;
    ASSERT_TRUE(live.ok());
    evs_callbacks_t callbacks{};
    evs_handle_t finalized = 0;
    ASSERT_EQ(evs_initialize(&finalized, &callbacks), CS_OK);
    ASSERT_EQ(evs_finalize(finalized), CS_OK);
    EXPECT_EQ(evs_finalize(finalized), CS_ERR_BAD_HANDLE) << "finalize twice";

    expect_every_function_refuses(0, "handle 0");
    expect_every_function_refuses(0xdeadbeef, "handle 0xdeadbeef");
    expect_every_function_refuses(UINT64_MAX, "handle ~0");
    expect_every_function_refuses(finalized, "finalized handle");
    // The live handle is unaffected by all of that.
    ASSERT_EQ(live.join({"still-alive"}), CS_OK);
    ASSERT_EQ(live.send("alive"), CS_OK);
    EXPECT_TRUE(live.pump_until_body("alive"));
}

TEST_F(Evs, ParentHandlesGiveBadHandleInAForkedChild)
{
    EvsClient parent;
    ASSERT_TRUE(parent.ok());
    ASSERT_EQ(parent.join({"forked"}), CS_OK);
    ChildProcess child([&]() -> int {
        int fd = -1;
        if (evs_fd_get(parent.handle, &fd) != CS_ERR_BAD_HANDLE) {
            return 2;
        }
        const std::string body = "sent with the parent's handle";
        iovec part{const_cast<char*>(body.data()), body.size()};
        if (evs_mcast_joined(parent.handle, EVS_TYPE_AGREED, &part, 1) != CS_ERR_BAD_HANDLE) {
            return 3;
        }
        const evs_group group = group_key("forked");
        if (evs_join(parent.handle, &group, 1) != CS_ERR_BAD_HANDLE) {
            return 4;
        }
        if (evs_dispatch(parent.handle, CS_DISPATCH_ALL) != CS_ERR_BAD_HANDLE) {
            return 5;
        }
        if (evs_finalize(parent.handle) != CS_ERR_BAD_HANDLE) {
            return 6;
        }
        evs_callbacks_t none{};
        evs_handle_t own = 0;
        if (evs_initialize(&own, &none) != CS_OK || evs_finalize(own) != CS_OK) {
            return 7;
        }
        return 0;
    });
    ASSERT_TRUE(child.started());
    EXPECT_EQ(child.wait(), 0) << "2-6: a parent's handle worked in the child; 7: the child's own failed";
    // The child's attempts did not disturb the parent's handle (nor send through it).
    ASSERT_EQ(parent.send("after the fork"), CS_OK);
    ASSERT_TRUE(parent.pump_until_body("after the fork"));
    EXPECT_EQ(parent.rec.bodies(), std::vector<std::string>{"after the fork"});
    EXPECT_EQ(parent.rec.confchgs.size(), 1u);
}

// ---------------------------------------------------------------------------------------
// Join and leave

TEST_F(Evs, JoinTakesFiftyGroupsPerCallAndFiftyOneJoinNone)
{
    EvsClient receiver;
    EvsClient sender;
    ASSERT_TRUE(receiver.ok() && sender.ok());
    std::vector<std::string> fifty_one;
    for (size_t i = 0; i <= kMaxGroupsPerJoin; ++i) {
        fifty_one.push_back("many-" + std::to_string(i));
    }
    const std::vector<std::string> fifty(fifty_one.begin(), fifty_one.begin() + kMaxGroupsPerJoin);
    EXPECT_EQ(receiver.join(fifty_one), CS_ERR_TOO_MANY_GROUPS);
    ASSERT_EQ(receiver.join({"many-marker"}), CS_OK);
    ASSERT_EQ(sender.send_groups({fifty_one[0]}, "to a refused group"), CS_OK);
    ASSERT_TRUE(flush(sender, "many-marker", receiver));
    EXPECT_FALSE(receiver.rec.has_body("to a refused group")) << "the refused join joined some groups";
    EXPECT_EQ(receiver.leave({fifty_one[0]}), CS_ERR_NOT_EXIST);
    EXPECT_EQ(receiver.leave({fifty_one[50]}), CS_ERR_NOT_EXIST);

    ASSERT_EQ(receiver.join(fifty), CS_OK);
    // The limit is per call, not per handle.
    std::vector<std::string> fifty_more;
    for (size_t i = 0; i < kMaxGroupsPerJoin; ++i) {
        fifty_more.push_back("more-" + std::to_string(i));
    }
    ASSERT_EQ(receiver.join(fifty_more), CS_OK) << "a second call of 50";
    ASSERT_EQ(sender.send_groups({fifty[0]}, "to the first"), CS_OK);
    ASSERT_EQ(sender.send_groups({fifty[49]}, "to the fiftieth"), CS_OK);
    ASSERT_EQ(sender.send_groups({fifty_more[49]}, "to the hundredth"), CS_OK);
    ASSERT_EQ(sender.send_groups({fifty_one[50]}, "to the 51st, never joined"), CS_OK);
    ASSERT_TRUE(flush(sender, "many-marker", receiver));
    EXPECT_EQ(receiver.rec.bodies(), (std::vector<std::string>{"to the first", "to the fiftieth", "to the hundredth"}));
}

TEST_F(Evs, AGroupJoinedTwiceIsLeftOncePerLeave)
{
    EvsClient receiver;
    EvsClient sender;
    ASSERT_TRUE(receiver.ok() && sender.ok());
    ASSERT_EQ(receiver.join({"twice"}), CS_OK);
    ASSERT_EQ(receiver.join({"twice"}), CS_OK);
    ASSERT_EQ(receiver.join({"twice-marker"}), CS_OK);

    ASSERT_EQ(sender.send_groups({"twice"}, "joined twice"), CS_OK);
    ASSERT_TRUE(flush(sender, "twice-marker", receiver));
    EXPECT_EQ(receiver.rec.count_body("joined twice"), 1u) << "delivered once per handle";

    ASSERT_EQ(receiver.leave({"twice"}), CS_OK);
    ASSERT_EQ(sender.send_groups({"twice"}, "after one leave"), CS_OK);
    ASSERT_TRUE(flush(sender, "twice-marker", receiver));
    EXPECT_EQ(receiver.rec.count_body("after one leave"), 1u) << "one leave left both entries";

    ASSERT_EQ(receiver.leave({"twice"}), CS_OK);
    ASSERT_EQ(sender.send_groups({"twice"}, "after two leaves"), CS_OK);
    ASSERT_TRUE(flush(sender, "twice-marker", receiver));
    EXPECT_EQ(receiver.rec.count_body("after two leaves"), 0u) << "still joined after two leaves";
    EXPECT_EQ(receiver.leave({"twice"}), CS_ERR_NOT_EXIST);

    // The same within one call.
    ASSERT_EQ(receiver.join({"pair", "pair"}), CS_OK);
    ASSERT_EQ(receiver.leave({"pair"}), CS_OK);
    ASSERT_EQ(sender.send_groups({"pair"}, "pair joined once more"), CS_OK);
    ASSERT_TRUE(flush(sender, "twice-marker", receiver));
    EXPECT_EQ(receiver.rec.count_body("pair joined once more"), 1u);
    EXPECT_EQ(receiver.leave({"pair", "pair"}), CS_ERR_NOT_EXIST) << "only one entry was left";
}

TEST_F(Evs, LeaveStopsAtTheFirstGroupNotJoined)
{
    EvsClient receiver;
    EvsClient sender;
    ASSERT_TRUE(receiver.ok() && sender.ok());
    ASSERT_EQ(receiver.join({"first", "third"}), CS_OK);
    EXPECT_EQ(receiver.leave({"first", "second", "third"}), CS_ERR_NOT_EXIST);
    ASSERT_EQ(sender.send_groups({"first"}, "to first"), CS_OK);
    ASSERT_EQ(sender.send_groups({"third"}, "to third"), CS_OK);
    // "third" is still joined: its message doubles as the flush of "to first".
    ASSERT_TRUE(receiver.pump_until_body("to third")) << "the group after the missing one was left";
    EXPECT_FALSE(receiver.rec.has_body("to first")) << "the group before the missing one was not left";
    EXPECT_EQ(receiver.leave({"first"}), CS_ERR_NOT_EXIST);
    EXPECT_EQ(receiver.leave({"third"}), CS_OK);
}

TEST_F(Evs, GroupsAreComparedOnAll32Bytes)
{
    EvsClient receiver;
    EvsClient sender;
    ASSERT_TRUE(receiver.ok() && sender.ok());
    const std::string full(32, 'k');
    std::string last_differs = full;
    last_differs[31] = 'K';
    // Equal up to a NUL: a string comparison would take them for one group.
    const std::string nul_a("ab\0cd", 5);
    const std::string nul_b("ab\0ce", 5);
    ASSERT_EQ(receiver.join({full, nul_a}), CS_OK);
    ASSERT_EQ(sender.send_groups({last_differs}, "byte 31 differs"), CS_OK);
    ASSERT_EQ(sender.send_groups({nul_b}, "differs after a NUL"), CS_OK);
    ASSERT_EQ(sender.send_groups({"ab"}, "the prefix before the NUL"), CS_OK);
    ASSERT_EQ(sender.send_groups({full}, "full key"), CS_OK);
    ASSERT_EQ(sender.send_groups({nul_a}, "key with a NUL"), CS_OK);
    ASSERT_TRUE(receiver.pump_until_body("key with a NUL"));
    EXPECT_EQ(receiver.rec.bodies(), (std::vector<std::string>{"full key", "key with a NUL"}));
    EXPECT_EQ(receiver.leave({last_differs}), CS_ERR_NOT_EXIST);
    EXPECT_EQ(receiver.leave({nul_b}), CS_ERR_NOT_EXIST);
    EXPECT_EQ(receiver.leave({full}), CS_OK);
    EXPECT_EQ(receiver.leave({nul_a}), CS_OK);
}

TEST_F(Evs, JoinAndLeaveOfZeroGroupsSucceedAndChangeNothing)
{
    EvsClient client;
    ASSERT_TRUE(client.ok());
    EXPECT_EQ(evs_join(client.handle, nullptr, 0), CS_OK);
    EXPECT_EQ(evs_leave(client.handle, nullptr, 0), CS_OK);
    const evs_group group = group_key("zero");
    EXPECT_EQ(evs_join(client.handle, &group, 0), CS_OK);
    EXPECT_EQ(evs_leave(client.handle, &group, 1), CS_ERR_NOT_EXIST) << "a join of 0 groups joined one";
    ASSERT_EQ(evs_join(client.handle, &group, 1), CS_OK);
    EXPECT_EQ(evs_leave(client.handle, &group, 0), CS_OK);
    ASSERT_EQ(client.send("still joined"), CS_OK);
    ASSERT_TRUE(client.pump_until_body("still joined")) << "a leave of 0 groups left one";
}

// ---------------------------------------------------------------------------------------
// Multicast

TEST_F(Evs, McastJoinedReachesEveryHandleInOneOfTheGroupsOnce)
{
    EvsClient sender, in_one, in_both, twice, elsewhere;
    ASSERT_TRUE(sender.ok() && in_one.ok() && in_both.ok() && twice.ok() && elsewhere.ok());
    ASSERT_EQ(sender.join({"fan-1", "fan-2"}), CS_OK);
    ASSERT_EQ(in_one.join({"fan-1"}), CS_OK);
    ASSERT_EQ(in_both.join({"fan-1", "fan-2"}), CS_OK);
    ASSERT_EQ(twice.join({"fan-2", "fan-2"}), CS_OK);
    ASSERT_EQ(elsewhere.join({"fan-3"}), CS_OK);
    const unsigned int local = local_nodeid(sender.handle);
    ASSERT_EQ(sender.send("to fan-1 and fan-2"), CS_OK);
    ASSERT_EQ(sender.send("end"), CS_OK);
    for (EvsClient* receiver : {&sender, &in_one, &in_both, &twice}) {
        ASSERT_TRUE(receiver->pump_until_body("end"));
        EXPECT_EQ(receiver->rec.bodies(), (std::vector<std::string>{"to fan-1 and fan-2", "end"}))
            << "once per handle, the sender's own included";
        for (const Delivery& delivery : receiver->rec.deliveries) {
            EXPECT_EQ(delivery.nodeid, local);
        }
    }
    ASSERT_TRUE(flush(sender, "fan-3", elsewhere));
    EXPECT_TRUE(elsewhere.rec.bodies().empty()) << "a handle in none of the groups got a message";
}

TEST_F(Evs, McastJoinedWithNoGroupsJoinedReachesNobody)
{
    EvsClient sender;
    EvsClient receiver;
    ASSERT_TRUE(sender.ok() && receiver.ok());
    ASSERT_EQ(receiver.join({"nobody"}), CS_OK);
    EXPECT_EQ(sender.send("to no group"), CS_OK);
    ASSERT_EQ(sender.join({"nobody"}), CS_OK);
    ASSERT_EQ(sender.send("joined now"), CS_OK);
    ASSERT_TRUE(receiver.pump_until_body("joined now"));
    ASSERT_TRUE(sender.pump_until_body("joined now"));
    EXPECT_EQ(receiver.rec.bodies(), std::vector<std::string>{"joined now"});
    EXPECT_EQ(sender.rec.bodies(), std::vector<std::string>{"joined now"});
}

TEST_F(Evs, DeliveryGivesTheLocalNodeIdAndTheGatheredBytes)
{
    EvsClient sender;
    EvsClient other;
    ASSERT_TRUE(sender.ok() && other.ok());
    ASSERT_EQ(sender.join({"bytes"}), CS_OK);
    ASSERT_EQ(other.join({"bytes"}), CS_OK);
    const unsigned int local = local_nodeid(sender.handle);
    ASSERT_NE(local, 0u);
    std::vector<std::string> pieces = {"head-", "", std::string("\0\x01\x7f\x80\xff", 5), "-", pattern(1000, 3), "",
                                       "tail"};
    std::string expected;
    std::vector<iovec> parts;
    for (std::string& piece : pieces) {
        expected += piece;
        parts.push_back({piece.empty() ? nullptr : piece.data(), piece.size()});
    }
    ASSERT_EQ(sender.send_iov(parts), CS_OK);
    ASSERT_EQ(sender.send_groups_iov({"bytes"}, parts), CS_OK);
    for (EvsClient* receiver : {&sender, &other}) {
        ASSERT_TRUE(receiver->pump_until_deliveries(2));
        for (const Delivery& delivery : receiver->rec.deliveries) {
            EXPECT_EQ(delivery.nodeid, local);
            EXPECT_EQ(delivery.body.size(), expected.size());
            EXPECT_EQ(first_difference(delivery.body, expected), -1);
        }
    }
}

TEST_F(Evs, ZeroLengthMessagesAreDelivered)
{
    EvsClient client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join({"empty"}), CS_OK);
    const evs_group group = group_key("empty");
    EXPECT_EQ(evs_mcast_joined(client.handle, EVS_TYPE_AGREED, nullptr, 0), CS_OK);
    iovec empty_part{nullptr, 0};
    EXPECT_EQ(evs_mcast_joined(client.handle, EVS_TYPE_AGREED, &empty_part, 1), CS_OK);
    EXPECT_EQ(evs_mcast_groups(client.handle, EVS_TYPE_AGREED, &group, 1, nullptr, 0), CS_OK);
    ASSERT_EQ(client.send("end"), CS_OK);
    ASSERT_TRUE(client.pump_until_body("end"));
    EXPECT_EQ(client.rec.bodies(), (std::vector<std::string>{"", "", "", "end"}));
}

TEST_F(Evs, EveryGuaranteeIsDeliveredInTheSendersOrder)
{
    EvsClient sender;
    EvsClient receiver;
    ASSERT_TRUE(sender.ok() && receiver.ok());
    ASSERT_EQ(sender.join({"guarantees"}), CS_OK);
    ASSERT_EQ(receiver.join({"guarantees"}), CS_OK);
    std::vector<std::string> expected;
    // On one node SAFE is AGREED; UNORDERED and FIFO are delivered as AGREED.
    for (evs_guarantee_t guarantee : {EVS_TYPE_UNORDERED, EVS_TYPE_FIFO, EVS_TYPE_AGREED, EVS_TYPE_SAFE}) {
        const std::string joined = "joined-" + std::to_string(guarantee);
        const std::string named = "named-" + std::to_string(guarantee);
        ASSERT_EQ(sender.send(joined, guarantee), CS_OK);
        ASSERT_EQ(sender.send_groups({"guarantees"}, named, guarantee), CS_OK);
        expected.push_back(joined);
        expected.push_back(named);
    }
    for (EvsClient* client : {&sender, &receiver}) {
        ASSERT_TRUE(client->pump_until_deliveries(expected.size()));
        EXPECT_EQ(client->rec.bodies(), expected);
    }
}

TEST_F(Evs, McastGroupsReachesTheNamedGroupsWhetherTheSenderJoinedThemOrNot)
{
    EvsClient sender, member, bystander;
    ASSERT_TRUE(sender.ok() && member.ok() && bystander.ok());
    ASSERT_EQ(member.join({"named"}), CS_OK);
    ASSERT_EQ(bystander.join({"bystander"}), CS_OK);
    ASSERT_EQ(sender.send_groups({"named"}, "from outside"), CS_OK);
    ASSERT_EQ(sender.join({"sender-only"}), CS_OK);
    ASSERT_EQ(sender.send_groups({"named"}, "from a member of another group"), CS_OK);
    ASSERT_EQ(sender.send_groups({"named", "sender-only"}, "to both groups"), CS_OK);
    ASSERT_EQ(sender.send_groups({"named", "named"}, "named twice"), CS_OK);
    ASSERT_TRUE(member.pump_until_body("named twice"));
    EXPECT_EQ(member.rec.bodies(), (std::vector<std::string>{"from outside", "from a member of another group",
                                                             "to both groups", "named twice"}));
    // The sender hears only what went to a group it joined.
    ASSERT_TRUE(flush(sender, "sender-only", sender));
    EXPECT_EQ(sender.rec.bodies(), std::vector<std::string>{"to both groups"});
    ASSERT_TRUE(flush(sender, "bystander", bystander));
    EXPECT_TRUE(bystander.rec.bodies().empty());
}

TEST_F(Evs, MessagesOfAnotherProcessCarryTheLocalNodeId)
{
    EvsClient parent;
    ASSERT_TRUE(parent.ok());
    ASSERT_EQ(parent.join({"two-processes"}), CS_OK);
    const unsigned int local = local_nodeid(parent.handle);
    ASSERT_NE(local, 0u);
    Pipe ready;
    Pipe release;
    ChildProcess child([&]() -> int {
        ready.close_read();
        release.close_write();
        EvsClient own(EvsClient::Options{.retry_init = true});
        if (!own.ok() || own.join({"two-processes"}) != CS_OK) {
            return 2;
        }
        const unsigned int own_local = local_nodeid(own.handle);
        ready.write_bytes(&own_local, sizeof(own_local));
        if (!own.pump_until_body("to the child")) {
            return 3;
        }
        for (const Delivery& delivery : own.rec.deliveries) {
            if (delivery.body == "to the child" && delivery.nodeid != own_local) {
                return 4;
            }
        }
        if (own.send("to the parent") != CS_OK) {
            return 5;
        }
        // Stays until the parent has it.
        release.wait_eof(kEventTimeout);
        return 0;
    });
    ASSERT_TRUE(child.started());
    ready.close_write();
    release.close_read();
    unsigned int child_local = 0;
    ASSERT_TRUE(ready.read_bytes(&child_local, sizeof(child_local))) << "the child did not join";
    EXPECT_EQ(child_local, local) << "one node: both processes report the same local node id";
    ASSERT_EQ(parent.send("to the child"), CS_OK);
    ASSERT_TRUE(parent.pump_until_body("to the parent"));
    for (const Delivery& delivery : parent.rec.deliveries) {
        EXPECT_EQ(delivery.nodeid, local) << delivery.body;
    }
    release.close_write();
    EXPECT_EQ(child.wait(), 0) << "4: the child saw another node id";
}

struct Tag {
    uint32_t sender;
    uint32_t seq;
};

std::string tagged_body(uint32_t sender, uint32_t seq)
{
    std::string body(sizeof(Tag) + (seq * 37 + sender) % 200, static_cast<char>('a' + sender));
    const Tag tag{sender, seq};
    std::memcpy(body.data(), &tag, sizeof(tag));
    return body;
}

std::vector<std::pair<uint32_t, uint32_t>> tag_sequence(const EvsRecorder& rec)
{
    std::vector<std::pair<uint32_t, uint32_t>> out;
    for (const Delivery& delivery : rec.deliveries) {
        Tag tag{};
        if (delivery.body.size() >= sizeof(tag)) {
            std::memcpy(&tag, delivery.body.data(), sizeof(tag));
            out.emplace_back(tag.sender, tag.seq);
        }
    }
    return out;
}

// FNV-1a over the (sender, seq) sequence.
uint64_t sequence_hash(const std::vector<std::pair<uint32_t, uint32_t>>& sequence)
{
    uint64_t hash = 1469598103934665603ull;
    for (const auto& [sender, seq] : sequence) {
        for (uint32_t word : {sender, seq}) {
            for (int i = 0; i < 4; ++i) {
                hash ^= (word >> (8 * i)) & 0xff;
                hash *= 1099511628211ull;
            }
        }
    }
    return hash;
}

bool fifo_per_sender(const std::vector<std::pair<uint32_t, uint32_t>>& sequence)
{
    std::map<uint32_t, uint32_t> next;
    for (const auto& [sender, seq] : sequence) {
        if (seq != next[sender]) {
            return false;
        }
        ++next[sender];
    }
    return true;
}

struct OrderReport {
    uint64_t hash;
    uint32_t count;
    uint32_t fifo_ok;
};

TEST_F(Evs, TwoHandlesAndAnotherProcessSeeOneOrder)
{
    constexpr uint32_t kPerSender = 500;
    constexpr size_t kTotal = 3 * size_t{kPerSender};
    EvsClient a;
    EvsClient b;
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a.join({"order"}), CS_OK);
    ASSERT_EQ(b.join({"order"}), CS_OK);
    // Both receive everything: while one waits for room, the other's backlog drains too.
    a.also_drain = {b.handle};
    b.also_drain = {a.handle};
    Pipe ready;
    Pipe go;
    Pipe results;
    ChildProcess child([&]() -> int {
        ready.close_read();
        go.close_write();
        results.close_read();
        EvsClient own(EvsClient::Options{.retry_init = true});
        if (!own.ok() || own.join({"order"}) != CS_OK) {
            return 2;
        }
        ready.write_byte('j');
        if (!go.wait_eof(kEventTimeout)) {
            return 3;
        }
        for (uint32_t seq = 0; seq < kPerSender; ++seq) {
            if (own.send(tagged_body(2, seq)) != CS_OK) {
                return 4;
            }
            if (seq % 64 == 0) {
                evs_dispatch(own.handle, CS_DISPATCH_ALL);
            }
        }
        if (!own.pump_until_deliveries(kTotal)) {
            return 5;
        }
        const auto sequence = tag_sequence(own.rec);
        const OrderReport report{sequence_hash(sequence), static_cast<uint32_t>(sequence.size()),
                                 fifo_per_sender(sequence) ? 1u : 0u};
        results.write_bytes(&report, sizeof(report));
        return 0;
    });
    ASSERT_TRUE(child.started());
    ready.close_write();
    go.close_read();
    results.close_write();
    ASSERT_EQ(ready.read_byte(), 'j') << "the child did not join";
    go.close_write();  // the child starts sending while we do
    for (uint32_t seq = 0; seq < kPerSender; ++seq) {
        ASSERT_EQ(a.send(tagged_body(0, seq)), CS_OK);
        ASSERT_EQ(b.send(tagged_body(1, seq)), CS_OK);
        if (seq % 64 == 0) {
            evs_dispatch(a.handle, CS_DISPATCH_ALL);
            evs_dispatch(b.handle, CS_DISPATCH_ALL);
        }
    }
    ASSERT_TRUE(pump_handles_until({a.handle, b.handle}, [&] {
        return a.rec.deliveries.size() >= kTotal && b.rec.deliveries.size() >= kTotal;
    }));
    const auto sequence_a = tag_sequence(a.rec);
    const auto sequence_b = tag_sequence(b.rec);
    EXPECT_EQ(sequence_a.size(), kTotal);
    EXPECT_TRUE(fifo_per_sender(sequence_a)) << "a sender's messages out of order";
    EXPECT_TRUE(sequence_a == sequence_b) << "two handles of one process saw different orders";
    OrderReport report{};
    ASSERT_TRUE(results.read_bytes(&report, sizeof(report))) << "no result from the child";
    EXPECT_EQ(report.count, kTotal);
    EXPECT_EQ(report.fifo_ok, 1u);
    EXPECT_EQ(report.hash, sequence_hash(sequence_a)) << "the child saw another order";
    EXPECT_EQ(child.wait(), 0);
}

TEST_F(Evs, AJoinAppliesOnlyToMessagesSequencedAfterIt)
{
    EvsClient early;
    EvsClient late;
    ASSERT_TRUE(early.ok() && late.ok());
    ASSERT_EQ(early.join({"late-join"}), CS_OK);
    ASSERT_EQ(early.send("before the join"), CS_OK);
    // Delivered, so sequenced, before `late` joins (which has not dispatched at all).
    ASSERT_TRUE(early.pump_until_body("before the join"));
    ASSERT_EQ(late.join({"late-join"}), CS_OK);
    ASSERT_EQ(early.send("after the join"), CS_OK);
    ASSERT_TRUE(late.pump_until_body("after the join")) << "a message sent after evs_join returned";
    EXPECT_EQ(late.rec.bodies(), std::vector<std::string>{"after the join"});
}

TEST_F(Evs, LargeMessagesAreDeliveredIntact)
{
    EvsClient sender;
    EvsClient receiver;
    ASSERT_TRUE(sender.ok() && receiver.ok());
    ASSERT_EQ(sender.join({"large"}), CS_OK);
    ASSERT_EQ(receiver.join({"large"}), CS_OK);
    // The receiver reads only afterwards: its backlog must not stall the sender's retries.
    sender.also_drain = {receiver.handle};
    const std::vector<size_t> sizes = {64 * 1024, kMaxMessage - 8192};
    for (size_t i = 0; i < sizes.size(); ++i) {
        ASSERT_EQ(sender.send(pattern(sizes[i], static_cast<uint32_t>(i))), CS_OK) << sizes[i];
    }
    for (EvsClient* client : {&sender, &receiver}) {
        ASSERT_TRUE(client->pump_until_deliveries(sizes.size()));
        ASSERT_EQ(client->rec.deliveries.size(), sizes.size());
        for (size_t i = 0; i < sizes.size(); ++i) {
            EXPECT_EQ(client->rec.deliveries[i].body.size(), sizes[i]);
            EXPECT_EQ(first_difference(client->rec.deliveries[i].body, pattern(sizes[i], static_cast<uint32_t>(i))),
                      -1)
                << "size " << sizes[i];
        }
    }
}

TEST_F(Evs, AMessageWithItsGroupsAboveOneMebibyteGivesInvalidParam)
{
    EvsClient sender;
    EvsClient receiver;
    ASSERT_TRUE(sender.ok() && receiver.ok());
    ASSERT_EQ(receiver.join({"size-1"}), CS_OK);
    ASSERT_EQ(sender.join({"size-1"}), CS_OK);
    sender.also_drain = {receiver.handle};
    // evs_mcast_joined counts the groups the sender joined: one.
    const std::string at_one = pattern(kMaxMessage - kMessageOverhead - kGroupBytes, 1);
    EXPECT_EQ(sender.send(at_one), CS_OK) << "exactly 1 MiB with its group";
    EXPECT_EQ(sender.send(pattern(at_one.size() + 1, 2)), CS_ERR_INVALID_PARAM);
    // evs_mcast_groups counts the groups named: three.
    const std::vector<std::string> three = {"size-1", "size-x", "size-y"};
    const std::string at_three = pattern(kMaxMessage - kMessageOverhead - 3 * kGroupBytes, 3);
    EXPECT_EQ(sender.send_groups(three, at_three), CS_OK);
    EXPECT_EQ(sender.send_groups(three, pattern(at_three.size() + 1, 4)), CS_ERR_INVALID_PARAM);
    // A second joined group makes the first message one group too large.
    ASSERT_EQ(sender.join({"size-2"}), CS_OK);
    EXPECT_EQ(sender.send(at_one), CS_ERR_INVALID_PARAM) << "two joined groups";
    const std::string at_two = pattern(kMaxMessage - kMessageOverhead - 2 * kGroupBytes, 5);
    EXPECT_EQ(sender.send(at_two), CS_OK);
    EXPECT_EQ(sender.send(pattern(2 * kMaxMessage, 6)), CS_ERR_INVALID_PARAM);
    ASSERT_TRUE(flush(sender, "size-1", receiver));
    const std::vector<std::string> bodies = receiver.rec.bodies();
    ASSERT_EQ(bodies.size(), 3u) << "a refused message was delivered, or an accepted one was not";
    EXPECT_EQ(first_difference(bodies[0], at_one), -1);
    EXPECT_EQ(first_difference(bodies[1], at_three), -1);
    EXPECT_EQ(first_difference(bodies[2], at_two), -1);
}

TEST_F(Evs, IovecCountsAboveIovMaxAndNullIovecsGiveInvalidParam)
{
    EvsClient client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join({"iov"}), CS_OK);
    const evs_group group = group_key("iov");
    std::string bytes = pattern(kIovMax + 1, 5);
    std::vector<iovec> parts;
    for (char& byte : bytes) {
        parts.push_back({&byte, 1});
    }
    EXPECT_EQ(evs_mcast_joined(client.handle, EVS_TYPE_AGREED, parts.data(), kIovMax + 1), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(evs_mcast_groups(client.handle, EVS_TYPE_AGREED, &group, 1, parts.data(), kIovMax + 1),
              CS_ERR_INVALID_PARAM);
    EXPECT_EQ(evs_mcast_joined(client.handle, EVS_TYPE_AGREED, nullptr, 1), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(evs_mcast_groups(client.handle, EVS_TYPE_AGREED, &group, 1, nullptr, 3), CS_ERR_INVALID_PARAM);
    // IOV_MAX itself is fine, gathered in order.
    parts.pop_back();
    ASSERT_EQ(client.send_iov(parts), CS_OK);
    ASSERT_EQ(client.send("valid"), CS_OK);
    ASSERT_TRUE(client.pump_until_body("valid"));
    const std::vector<std::string> bodies = client.rec.bodies();
    ASSERT_EQ(bodies.size(), 2u) << "a refused message was delivered";
    EXPECT_EQ(first_difference(bodies[0], bytes.substr(0, kIovMax)), -1);
}

// ---------------------------------------------------------------------------------------
// Dispatch

TEST_F(Evs, DispatchOneHandlesExactlyOneEventPerCall)
{
    EvsClient client;
    EvsClient witness;
    ASSERT_TRUE(client.ok() && witness.ok());
    ASSERT_EQ(client.join({"one-by-one"}), CS_OK);
    ASSERT_EQ(witness.join({"one-by-one"}), CS_OK);
    for (const char* body : {"m1", "m2", "m3"}) {
        ASSERT_EQ(witness.send(body), CS_OK);
    }
    // All three sequenced: pending for `client` too, behind its initial confchg.
    ASSERT_TRUE(witness.pump_until_body("m3"));
    const evs_handle_t handle = client.handle;
    for (size_t expected = 1; expected <= 4; ++expected) {
        EXPECT_EQ(Background<cs_error_t>([handle] { return evs_dispatch(handle, CS_DISPATCH_ONE); }).wait(kEventTimeout),
                  CS_OK);
        EXPECT_EQ(client.rec.kinds.size(), expected) << "CS_DISPATCH_ONE handles exactly one event";
    }
    EXPECT_EQ(client.rec.kinds, "cddd");
    EXPECT_EQ(client.rec.bodies(), (std::vector<std::string>{"m1", "m2", "m3"}));
    EXPECT_EQ(evs_dispatch(handle, CS_DISPATCH_ONE_NONBLOCKING), CS_ERR_TRY_AGAIN);
}

TEST_F(Evs, OneNonblockingGivesTryAgainWithNothingPending)
{
    EvsClient client;
    ASSERT_TRUE(client.ok());
    ASSERT_TRUE(fd_readable(client.fd(), kEventTimeoutMs)) << "the initial confchg";
    EXPECT_EQ(evs_dispatch(client.handle, CS_DISPATCH_ONE_NONBLOCKING), CS_OK);
    EXPECT_EQ(client.rec.kinds, "c");
    EXPECT_EQ(evs_dispatch(client.handle, CS_DISPATCH_ONE_NONBLOCKING), CS_ERR_TRY_AGAIN);
    EXPECT_EQ(evs_dispatch(client.handle, CS_DISPATCH_ALL), CS_OK);
    ASSERT_EQ(client.join({"nonblocking"}), CS_OK);
    // Sent directly: the retrying send() might dispatch it on CS_ERR_TRY_AGAIN.
    char body[] = "pending";
    iovec part{body, sizeof(body) - 1};
    ASSERT_EQ(evs_mcast_joined(client.handle, EVS_TYPE_AGREED, &part, 1), CS_OK);
    ASSERT_TRUE(fd_readable(client.fd(), kEventTimeoutMs)) << "the own message";
    EXPECT_EQ(evs_dispatch(client.handle, CS_DISPATCH_ONE_NONBLOCKING), CS_OK);
    EXPECT_EQ(client.rec.kinds, "cd");
    EXPECT_EQ(evs_dispatch(client.handle, CS_DISPATCH_ONE_NONBLOCKING), CS_ERR_TRY_AGAIN);
    EXPECT_EQ(client.rec.bodies(), std::vector<std::string>{"pending"});
}

TEST_F(Evs, DispatchOneWaitsForAMessageFromAnotherProcess)
{
    EvsClient receiver;
    ASSERT_TRUE(receiver.ok());
    ASSERT_EQ(receiver.join({"wake-up"}), CS_OK);
    ASSERT_TRUE(receiver.pump_until_confchgs(1));
    const unsigned int local = local_nodeid(receiver.handle);
    Pipe go;
    Pipe release;
    // Forked before this test starts a thread; sends once the parent waits in ONE.
    ChildProcess child([&]() -> int {
        go.close_write();
        release.close_write();
        EvsClient sender(EvsClient::Options{.retry_init = true});
        if (!sender.ok()) {
            return 2;
        }
        if (go.read_byte() != 's') {
            return 3;
        }
        if (sender.send_groups({"wake-up"}, "from the child") != CS_OK) {
            return 4;
        }
        release.wait_eof(kEventTimeout);
        return 0;
    });
    ASSERT_TRUE(child.started());
    go.close_read();
    release.close_read();
    const evs_handle_t handle = receiver.handle;
    Background<cs_error_t> dispatching([handle] { return evs_dispatch(handle, CS_DISPATCH_ONE); });
    // Nothing is pending, so it must not return; by then it is waiting.
    EXPECT_FALSE(dispatching.finished_within(std::chrono::milliseconds(kQuietMs)))
        << "CS_DISPATCH_ONE returned with nothing pending";
    ASSERT_TRUE(go.write_byte('s'));
    const auto result = dispatching.wait(kEventTimeout);
    ASSERT_TRUE(result.has_value()) << "CS_DISPATCH_ONE did not return after the other process sent";
    EXPECT_EQ(*result, CS_OK);
    ASSERT_EQ(receiver.rec.bodies(), std::vector<std::string>{"from the child"});
    EXPECT_EQ(receiver.rec.deliveries[0].nodeid, local);
    release.close_write();
    EXPECT_EQ(child.wait(), 0);
}

TEST_F(Evs, BlockingDispatchRunsUntilACallbackFinalizesTheHandle)
{
    EvsClient target;
    EvsClient sender;
    ASSERT_TRUE(target.ok() && sender.ok());
    ASSERT_EQ(target.join({"blocking"}), CS_OK);
    FinalizeInCallback finalizer(target, "stop");
    const int unrecorded = g_unrecorded.load();
    const evs_handle_t handle = target.handle;
    Background<cs_error_t> dispatching([handle] { return evs_dispatch(handle, CS_DISPATCH_BLOCKING); });
    ASSERT_EQ(sender.send_groups({"blocking"}, "a"), CS_OK);
    ASSERT_EQ(sender.send_groups({"blocking"}, "b"), CS_OK);
    EXPECT_FALSE(dispatching.finished_within(std::chrono::milliseconds(kQuietMs)))
        << "CS_DISPATCH_BLOCKING returned while the handle was alive";
    ASSERT_EQ(sender.send_groups({"blocking"}, "stop"), CS_OK);
    ASSERT_EQ(sender.send_groups({"blocking"}, "after the stop"), CS_OK);
    const auto result = dispatching.wait(kEventTimeout);
    ASSERT_TRUE(result.has_value()) << "CS_DISPATCH_BLOCKING did not return after evs_finalize in a callback";
    EXPECT_EQ(*result, CS_ERR_BAD_HANDLE);
    EXPECT_EQ(finalizer.result, CS_OK) << "evs_finalize inside a callback";
    EXPECT_EQ(target.rec.confchgs.size(), 1u);
    EXPECT_EQ(target.rec.bodies(), (std::vector<std::string>{"a", "b", "stop"}));
    EXPECT_EQ(g_unrecorded.load(), unrecorded) << "a callback ran after evs_finalize";
    EXPECT_EQ(evs_finalize(handle), CS_ERR_BAD_HANDLE);
}

TEST_F(Evs, FinalizeInsideACallbackMakesEveryModeReturnBadHandle)
{
    for (cs_dispatch_flags_t mode :
         {CS_DISPATCH_ONE, CS_DISPATCH_ALL, CS_DISPATCH_BLOCKING, CS_DISPATCH_ONE_NONBLOCKING}) {
        SCOPED_TRACE("mode " + std::to_string(mode));
        EvsClient target;
        EvsClient sender;
        ASSERT_TRUE(target.ok() && sender.ok());
        const std::string group = "finalize-in-callback-" + std::to_string(mode);
        ASSERT_EQ(target.join({group}), CS_OK);
        ASSERT_EQ(sender.join({group}), CS_OK);
        ASSERT_EQ(sender.send("after the confchg"), CS_OK);
        // Sequenced (the sender has it): pending for the target, after its initial confchg.
        ASSERT_TRUE(sender.pump_until_body("after the confchg"));
        ASSERT_TRUE(fd_readable(target.fd(), kEventTimeoutMs));
        FinalizeInCallback finalizer(target, "");
        const int unrecorded = g_unrecorded.load();
        const evs_handle_t handle = target.handle;
        const auto result =
            Background<cs_error_t>([handle, mode] { return evs_dispatch(handle, mode); }).wait(kEventTimeout);
        ASSERT_TRUE(result.has_value()) << "dispatch did not return after evs_finalize in the callback";
        EXPECT_EQ(*result, CS_ERR_BAD_HANDLE);
        EXPECT_EQ(finalizer.result, CS_OK) << "evs_finalize inside the confchg callback";
        EXPECT_EQ(target.rec.kinds, "c") << "a callback after the finalize";
        EXPECT_EQ(g_unrecorded.load(), unrecorded) << "a callback ran after evs_finalize";
        EXPECT_EQ(evs_finalize(handle), CS_ERR_BAD_HANDLE);
        EXPECT_EQ(evs_dispatch(handle, CS_DISPATCH_ALL), CS_ERR_BAD_HANDLE);
    }
}

// The fd is readable only for a callback to come: another group's messages neither wake
// a handle nor count as pending (corosync's service never queued them for it), so a
// program that polls and then dispatches ONE never blocks for them.
TEST_F(Evs, MessagesOfAGroupNotJoinedLeaveTheFdUnreadable)
{
    EvsClient idle;
    EvsClient other;
    ASSERT_TRUE(idle.ok() && other.ok());
    ASSERT_TRUE(idle.pump_until_confchgs(1));
    ASSERT_EQ(evs_dispatch(idle.handle, CS_DISPATCH_ALL), CS_OK);
    ASSERT_EQ(idle.join({"mine"}), CS_OK);
    ASSERT_EQ(other.join({"theirs"}), CS_OK);
    ASSERT_FALSE(fd_readable(idle.fd(), 0)) << "readable before anything was sent";
    for (int i = 0; i < 20; ++i) {
        ASSERT_EQ(other.send("not for the idle handle"), CS_OK);
    }
    // Sequenced and published (the sender has its last one): nothing for the idle handle.
    ASSERT_TRUE(flush(other, "theirs", other));
    EXPECT_FALSE(fd_readable(idle.fd(), kQuietMs)) << "woken for another group's messages";
    EXPECT_EQ(evs_dispatch(idle.handle, CS_DISPATCH_ONE_NONBLOCKING), CS_ERR_TRY_AGAIN);
    // Its own group's message does make it readable, and is the one event there is.
    ASSERT_EQ(other.send_groups({"mine"}, "for it"), CS_OK);
    EXPECT_TRUE(fd_readable(idle.fd(), kEventTimeoutMs));
    EXPECT_EQ(evs_dispatch(idle.handle, CS_DISPATCH_ONE), CS_OK);
    EXPECT_TRUE(idle.rec.has_body("for it"));
    EXPECT_FALSE(fd_readable(idle.fd(), kQuietMs));
}

// A handle that only sends (no group, never dispatches) is not a reader of other
// handles' traffic: the daemon keeps nothing of it for it, so five rings' worth of EVS
// messages between others neither cut it off (its backlog never fills) nor hold anyone.
TEST(EvsSendOnly, AHandleThatNeverDispatchesIsNotCutOffByOthersTraffic)
{
    // Backlogs of 16 MiB, against 40 MiB of ring entries: a handle that kept them all
    // would be cut off; a reader that keeps up keeps little (a sender's queue of 8 MiB
    // may be published at once, so not less).
    rcpg::testing::DaemonProcess daemon({"--ring-mib", "8", "--client-backlog-mib", "16"});
    evs_handle_t publisher = 0;
    ASSERT_EQ(evs_initialize(&publisher, nullptr), CS_OK);
    EvsClient sender;
    EvsClient receiver;
    ASSERT_TRUE(sender.ok() && receiver.ok());
    ASSERT_EQ(receiver.join({"flood"}), CS_OK);
    const std::string body(16 * 1024, 'f');
    size_t sent = 0;
    const auto deadline = Clock::now() + kEventTimeout;
    while (sent < 2048 && Clock::now() < deadline) {  // 32 MiB: four rings
        const cs_error_t result = sender.send_groups({"flood"}, body);
        if (result == CS_OK) {
            ++sent;
        } else {
            ASSERT_EQ(result, CS_ERR_TRY_AGAIN);
        }
        ASSERT_EQ(evs_dispatch(receiver.handle, CS_DISPATCH_ALL), CS_OK);
        ASSERT_EQ(evs_dispatch(sender.handle, CS_DISPATCH_ALL), CS_OK);
    }
    ASSERT_EQ(sent, 2048u);
    ASSERT_TRUE(receiver.pump_until_deliveries(2048));
    // Still connected: its next send goes out and its dispatch works.
    const evs_group flood = [] {
        evs_group g{};
        std::strcpy(g.key, "flood");
        return g;
    }();
    char text[] = "still here";
    iovec iov{text, std::strlen(text)};
    EXPECT_EQ(evs_mcast_groups(publisher, EVS_TYPE_AGREED, &flood, 1, &iov, 1), CS_OK);
    EXPECT_TRUE(receiver.pump_until_body("still here"));
    EXPECT_EQ(evs_dispatch(publisher, CS_DISPATCH_ALL), CS_OK);
    EXPECT_EQ(evs_finalize(publisher), CS_OK);
}

}  // namespace
}  // namespace rcpg::conformance
