#include "tests/support/daemon_process.hpp"

#include <corosync/cpg.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace rcpg::testing {
namespace {

std::atomic<int> g_instance{0};

}  // namespace

std::string build_program(const std::string& name) { return std::string(RCPG_BUILD_BIN_DIR) + "/" + name; }

std::string cpgtool_kv()
{
    const std::string command = build_program("rcpg-cpgtool") + " --kv 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    std::string out;
    char buffer[4096];
    while (pipe != nullptr && std::fgets(buffer, sizeof buffer, pipe) != nullptr) {
        out += buffer;
    }
    if (pipe != nullptr) {
        ::pclose(pipe);
    }
    return out;
}

DaemonProcess::DaemonProcess(std::vector<std::string> extra_args)
    : DaemonProcess(std::move(extra_args), "rcpgtest-" + std::to_string(::getpid()) + "-" + std::to_string(g_instance++))
{
    owns_state_ = true;
}

DaemonProcess::DaemonProcess(std::vector<std::string> extra_args, std::string ipc_name)
{
    ipc_name_ = std::move(ipc_name);
    log_path_ = "/tmp/" + ipc_name_ + "." + std::to_string(g_instance++) + ".log";
    state_dir_ = "/tmp/" + ipc_name_ + ".state";
    ::setenv("RCPG_IPC", ipc_name_.c_str(), 1);
    std::vector<std::string> args = {build_program("rcpgd"), "--ipc", ipc_name_, "--busy-poll-us", "20",
                                     "--state-dir", state_dir_};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    pid_ = ::fork();
    if (pid_ == 0) {
        const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (log_fd >= 0) {
            ::dup2(log_fd, STDERR_FILENO);
            ::dup2(log_fd, STDOUT_FILENO);
        }
        std::vector<char*> argv;
        for (auto& arg : args) {
            argv.push_back(arg.data());
        }
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    if (pid_ < 0) {
        throw std::runtime_error("fork failed");
    }
    // Ready when a client can connect: a bound for a hang, far above what a sanitizer build
    // on a busy machine takes.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
        cpg_handle_t handle;
        if (cpg_initialize(&handle, nullptr) == CS_OK) {
            cpg_finalize(handle);
            return;
        }
        int status;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("rcpgd exited at start: " + log());
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stop();
    throw std::runtime_error("rcpgd did not accept clients in time: " + log());
}

DaemonProcess::~DaemonProcess()
{
    stop();
    ::unlink(log_path_.c_str());
    if (owns_state_) {
        std::filesystem::remove_all(state_dir_);
    }
}

int DaemonProcess::stop()
{
    if (pid_ <= 0) {
        return -1;
    }
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 500; ++i) {
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return status;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
}

std::string DaemonProcess::log() const
{
    std::ifstream in(log_path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace rcpg::testing
