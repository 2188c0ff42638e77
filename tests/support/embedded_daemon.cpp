#include "tests/support/embedded_daemon.hpp"

#include "daemon/daemon.hpp"
#include "daemon/log.hpp"

#include <signal.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <stdexcept>

namespace rcpg::testing {
namespace {

std::atomic<int> g_instance{0};

// The longest the daemon's thread sleeps between looks at the stop flag: a test's end
// waits at most this long for it.
constexpr int kStopCheckMs = 20;

}  // namespace

EmbeddedDaemon::EmbeddedDaemon()
{
    static std::once_flag process_setup;
    std::call_once(process_setup, [] {
        // As rcpgd's main: warnings and errors to stderr, a client gone mid-reply is no signal.
        daemon::log_setup("rcpgd-embedded", LOG_WARNING, false);
        ::signal(SIGPIPE, SIG_IGN);
    });
    ipc_name_ = "rcpgemb-" + std::to_string(::getpid()) + "-" + std::to_string(g_instance++);
    state_dir_ = "/tmp/" + ipc_name_ + ".state";
    daemon::Options options;
    options.ipc_name = ipc_name_;
    options.state_dir = state_dir_;
    options.busy_poll_us = 20;
    auto created = daemon::Daemon::create(options);
    if (!created) {
        throw std::runtime_error("embedded rcpgd cannot start: " + created.status().message());
    }
    daemon_ = std::move(*created);
    ::setenv("RCPG_IPC", ipc_name_.c_str(), 1);
    thread_ = std::thread([this] {
        // rcpgd's loop, stepped here with the same clock, its sleeps cut short so that the
        // stop flag is seen.
        while (!stop_.load(std::memory_order_relaxed)) {
            if (daemon_->turn(daemon::coarse_clock_ms())) {
                daemon_->wait(0);  // clients' requests and connections, as rcpgd's busy poll takes them
                continue;
            }
            const daemon::Daemon::SleepPlan plan = daemon_->plan_sleep(daemon::coarse_clock_ms());
            if (plan.kind == daemon::Daemon::SleepPlan::Kind::sleep) {
                daemon_->wait(std::min(plan.timeout_ms, kStopCheckMs));
            } else if (plan.kind == daemon::Daemon::SleepPlan::Kind::busy) {
                daemon_->wait(0);
            }
        }
    });
}

EmbeddedDaemon::~EmbeddedDaemon()
{
    stop_.store(true, std::memory_order_relaxed);
    thread_.join();
    daemon_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(state_dir_, ignored);
}

}  // namespace rcpg::testing
