// Runs an rcpgd of the build tree for a test, on an IPC name of its own, so tests can run
// side by side with each other and with any other daemon on the machine.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace rcpg::testing {

class DaemonProcess {
public:
    // Starts `rcpgd` with `extra_args` on a fresh IPC name and exports it as RCPG_IPC.
    // Waits until the daemon accepts clients.
    explicit DaemonProcess(std::vector<std::string> extra_args = {});
    ~DaemonProcess();
    DaemonProcess(const DaemonProcess&) = delete;
    DaemonProcess& operator=(const DaemonProcess&) = delete;

    bool running() const { return pid_ > 0; }
    const std::string& ipc_name() const { return ipc_name_; }
    pid_t pid() const { return pid_; }
    // Stops the daemon (SIGTERM, then SIGKILL) and returns its exit status.
    int stop();
    // Everything the daemon logged so far.
    std::string log() const;

private:
    std::string ipc_name_;
    std::string log_path_;
    pid_t pid_ = -1;
};

// Path of a program built by this project (bin/ of the build tree).
std::string build_program(const std::string& name);

}  // namespace rcpg::testing
