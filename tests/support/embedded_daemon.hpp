// An rcpgd serving inside the test process: a daemon::Daemon on a thread of its own,
// stepped with the clock (turn, plan_sleep, wait) as rcpgd's loop steps it, on an IPC
// name of its own exported as RCPG_IPC. For tests that only need a daemon to talk to:
// no process to start and stop, so they run faster. Tests that fork clients keep a
// separate daemon (DaemonProcess): a child forked while the daemon's thread holds a lock
// (libqb's log, the allocator's arenas) could inherit it held.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

namespace rcpg::daemon {
class Daemon;
}

namespace rcpg::testing {

class EmbeddedDaemon {
public:
    // Starts serving; throws std::runtime_error when the daemon cannot start.
    EmbeddedDaemon();
    ~EmbeddedDaemon();
    EmbeddedDaemon(const EmbeddedDaemon&) = delete;
    EmbeddedDaemon& operator=(const EmbeddedDaemon&) = delete;

    const std::string& ipc_name() const { return ipc_name_; }
    // The process the clients' peer credentials name: this one.
    pid_t pid() const { return ::getpid(); }

private:
    std::string ipc_name_;
    std::string state_dir_;
    std::unique_ptr<daemon::Daemon> daemon_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace rcpg::testing
