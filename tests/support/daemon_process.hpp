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
    // The same on a given IPC name, as a restarted daemon: its state directory (the ring
    // id) is the one of every daemon started on that name by this test process.
    DaemonProcess(std::vector<std::string> extra_args, std::string ipc_name);
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
    std::string state_dir_;
    bool owns_state_ = false;  // made up its name: removes the state directory at the end
    pid_t pid_ = -1;
};

// Path of a program built by this project (bin/ of the build tree).
std::string build_program(const std::string& name);

// What `rcpg-cpgtool --kv` prints for the daemon of $RCPG_IPC (its error output too).
std::string cpgtool_kv();

}  // namespace rcpg::testing
