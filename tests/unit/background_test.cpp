// The daemon's background thread (daemon/background.hpp): work runs off the loop's thread
// in the order given, what follows it runs on the loop's thread when the loop turns, and
// stop() waits for the work under way, drops the rest without running it, and refuses
// what comes later.
#include "daemon/background.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

namespace rcpg::daemon {
namespace {

// Turns the loop until `done` holds or about 10 s passed.
template <typename Done>
bool turn_until(EventLoop& loop, Done done)
{
    for (int turn = 0; turn < 1000 && !done(); ++turn) {
        loop.run_once(10);
    }
    return done();
}

TEST(Background, WorkRunsOffTheLoopThreadInOrderAndItsFollowUpOnIt)
{
    EventLoop loop;
    Background background(loop);
    const std::thread::id loop_thread = std::this_thread::get_id();
    std::vector<int> worked;  // written by the worker, read after its follow-up ran
    std::vector<int> followed;
    std::atomic<int> off_thread{0};
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(background.run(
            [&, i] {
                worked.push_back(i);
                off_thread += std::this_thread::get_id() != loop_thread;
            },
            [&, i] {
                EXPECT_EQ(std::this_thread::get_id(), loop_thread);
                followed.push_back(i);
            }));
    }
    EXPECT_TRUE(followed.empty()) << "follow-ups run only when the loop turns";
    ASSERT_TRUE(turn_until(loop, [&] { return followed.size() == 5; }));
    EXPECT_EQ(worked, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_EQ(followed, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_EQ(off_thread.load(), 5);
}

TEST(Background, StopWaitsForTheWorkUnderWayDropsTheRestAndRefusesMore)
{
    EventLoop loop;
    Background background(loop);
    std::atomic<bool> started{false};
    std::atomic<bool> release{false};
    std::atomic<int> finished{0};
    int followed = 0;
    auto tracker = std::make_shared<int>(0);  // held by every closure: all must be destroyed
    ASSERT_TRUE(background.run(
        [&, tracker] {
            started = true;
            while (!release) {
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
            ++finished;
        },
        [&, tracker] { ++followed; }));
    ASSERT_TRUE(background.run([&, tracker] { ++finished; }, [&, tracker] { ++followed; }));
    while (!started) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    // The work under way ends only once stop() has begun, however the threads are
    // scheduled: the queued work must then be dropped, not started.
    std::thread releaser([&] {
        while (!background.stopping()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        release = true;
    });
    background.stop();
    releaser.join();
    EXPECT_EQ(finished.load(), 1) << "the work under way ends; the queued one never starts";
    loop.run_once(0);
    EXPECT_EQ(followed, 0) << "nothing is followed up after stop()";
    EXPECT_EQ(tracker.use_count(), 1) << "stop() destroyed every closure it dropped";

    // Stopped for good: later work is refused, and its closures go at once.
    EXPECT_FALSE(background.run([&, tracker] { ++finished; }, [&, tracker] { ++followed; }));
    EXPECT_EQ(tracker.use_count(), 1);
    loop.run_once(0);
    EXPECT_EQ(finished.load(), 1);
}

}  // namespace
}  // namespace rcpg::daemon
