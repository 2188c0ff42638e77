// Threads: one thread dispatching a handle while another sends on it or joins it,
// handles used by several threads at once (each with its own handle and group),
// concurrent initialize/finalize, and context get/set from many threads.
#include "tests/conformance/conformance.hpp"

#include <atomic>
#include <set>

namespace rcpg::conformance {
namespace {

using Threads = Conformance;

TEST_F(Threads, JoinFromAnotherThreadWakesABlockedDispatchOne)
{
    Client client;
    ASSERT_TRUE(client.ok());
    const cpg_handle_t handle = client.handle;
    // Not joined yet: the dispatching thread waits for the join that happens later.
    Background<cs_error_t> dispatching([handle] { return cpg_dispatch(handle, CS_DISPATCH_ONE); });
    EXPECT_FALSE(dispatching.finished_within(200ms)) << "nothing was pending";
    ASSERT_EQ(client.join("woken-by-join"), CS_OK);
    auto result = dispatching.wait(kEventTimeout);
    ASSERT_TRUE(result.has_value()) << "the own join confchg did not wake the dispatching thread";
    EXPECT_EQ(*result, CS_OK);
    ASSERT_EQ(client.rec.count(Event::confchg), 1u);
    EXPECT_EQ(client.rec.events[0].joined.at(0).pid, self_pid());
}

TEST_F(Threads, SendingWhileAnotherThreadDispatchesBlocking)
{
    constexpr uint32_t kMessages = 20000;
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("send-while-dispatching"), CS_OK);
    ASSERT_TRUE(client.pump_until_count(Event::confchg, 1));
    std::atomic<uint32_t> received{0};
    std::atomic<bool> in_order{true};
    client.rec.hook = [&](cpg_handle_t handle, const Event& event) {
        if (event.kind != Event::message) {
            return;
        }
        uint32_t seq = 0;
        std::memcpy(&seq, event.body.data(), std::min(event.body.size(), sizeof(seq)));
        if (seq != received.load()) {
            in_order = false;
        }
        client.rec.events.clear();
        if (received.fetch_add(1) + 1 == kMessages) {
            cpg_finalize(handle);  // ends the blocking dispatch
        }
    };
    const cpg_handle_t handle = client.handle;
    client.finalized = true;  // by the callback
    Background<cs_error_t> dispatching([handle] { return cpg_dispatch(handle, CS_DISPATCH_BLOCKING); });
    size_t try_again = 0;
    for (uint32_t seq = 0; seq < kMessages; ++seq) {
        iovec part{&seq, sizeof(seq)};
        cs_error_t result;
        while ((result = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &part, 1)) == CS_ERR_TRY_AGAIN) {
            ++try_again;
            std::this_thread::sleep_for(50us);
        }
        ASSERT_EQ(result, CS_OK) << seq;
    }
    auto result = dispatching.wait(kEventTimeout);
    ASSERT_TRUE(result.has_value()) << "received " << received.load() << " of " << kMessages;
    EXPECT_EQ(*result, CS_ERR_BAD_HANDLE);
    EXPECT_EQ(received.load(), kMessages);
    EXPECT_TRUE(in_order.load());
    RecordProperty("try_again", static_cast<int>(try_again));
}

TEST_F(Threads, ThreadsWithTheirOwnHandlesDoNotInterfere)
{
    constexpr int kThreads = 4;
    constexpr uint32_t kMessages = 3000;
    std::vector<std::unique_ptr<Client>> clients;
    for (int t = 0; t < kThreads; ++t) {
        clients.push_back(std::make_unique<Client>());
        ASSERT_TRUE(clients.back()->ok());
    }
    std::vector<std::string> failures(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            Client& client = *clients[t];
            const std::string group = "thread-" + std::to_string(t);
            if (client.join(group) != CS_OK) {
                failures[t] = "join";
                return;
            }
            for (uint32_t seq = 0; seq < kMessages; ++seq) {
                const std::string body = group + ":" + std::to_string(seq);
                if (client.send(body) != CS_OK) {
                    failures[t] = "send";
                    return;
                }
                if (seq % 100 == 0) {
                    cpg_dispatch(client.handle, CS_DISPATCH_ALL);
                }
            }
            if (!client.pump_until_count(Event::message, kMessages, kEventTimeout)) {
                failures[t] = "receive";
                return;
            }
            const auto bodies = client.rec.bodies();
            for (uint32_t seq = 0; seq < kMessages; ++seq) {
                if (bodies[seq] != group + ":" + std::to_string(seq)) {
                    failures[t] = "order or foreign message at " + std::to_string(seq) + ": " + bodies[seq];
                    return;
                }
            }
            if (bodies.size() != kMessages) {
                failures[t] = "extra messages";
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    for (int t = 0; t < kThreads; ++t) {
        EXPECT_EQ(failures[t], "") << "thread " << t;
    }
}

TEST_F(Threads, ConcurrentInitializeAndFinalize)
{
    constexpr int kThreads = 4;
    constexpr int kRounds = 40;
    std::mutex mutex;
    std::set<cpg_handle_t> live;
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&] {
            for (int round = 0; round < kRounds; ++round) {
                cpg_handle_t handle = 0;
                cs_error_t result;
                while ((result = cpg_initialize(&handle, nullptr)) == CS_ERR_TRY_AGAIN) {
                    std::this_thread::sleep_for(1ms);
                }
                if (result != CS_OK || handle == 0) {
                    ++failures;
                    continue;
                }
                {
                    std::lock_guard lock(mutex);
                    if (!live.insert(handle).second) {
                        ++failures;  // two live handles with one value
                    }
                }
                unsigned int nodeid = 0;
                if (cpg_local_get(handle, &nodeid) != CS_OK || nodeid != 1) {
                    ++failures;
                }
                {
                    std::lock_guard lock(mutex);
                    live.erase(handle);
                }
                if (cpg_finalize(handle) != CS_OK || cpg_finalize(handle) != CS_ERR_BAD_HANDLE) {
                    ++failures;
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(failures.load(), 0);
}

TEST_F(Threads, ContextSetAndGetFromManyThreads)
{
    constexpr int kThreads = 4;
    constexpr int kHandlesPerThread = 25;
    std::vector<cpg_handle_t> handles(kThreads * kHandlesPerThread);
    for (auto& handle : handles) {
        ASSERT_EQ(cpg_initialize(&handle, nullptr), CS_OK);
    }
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 100000; ++i) {
                const cpg_handle_t handle = handles[t * kHandlesPerThread + i % kHandlesPerThread];
                void* value = reinterpret_cast<void*>(static_cast<uintptr_t>(i * kThreads + t + 1));
                void* read = nullptr;
                if (cpg_context_set(handle, value) != CS_OK || cpg_context_get(handle, &read) != CS_OK ||
                    read != value) {
                    ++failures;
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(failures.load(), 0);
    for (auto handle : handles) {
        EXPECT_EQ(cpg_finalize(handle), CS_OK);
    }
}

}  // namespace
}  // namespace rcpg::conformance
