#include "daemon/daemon.hpp"

#include "daemon/client_session.hpp"
#include "daemon/daemon_internal.hpp"
#include "daemon/log.hpp"
#include "libcpg/ipc/bytes.hpp"
#include "delivery/ring_entry.hpp"

#include <corosync/corotypes.h>
#include <linux/futex.h>
#include <sys/eventfd.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <new>

namespace rcpg::daemon {

using delivery::ConfchgPayload;
using delivery::EntryHeader;
using delivery::EntryKind;
using namespace daemon_detail;
using base::Errc;
using base::Layer;

base::Result<std::unique_ptr<Daemon>> Daemon::create(const Options& options)
{
    std::unique_ptr<Daemon> daemon(new Daemon(options));
    if (base::Status started = daemon->start(); !started) {
        return started;
    }
    return daemon;
}

Daemon::Daemon(const Options& options) : options_(options), ring_ids_(options.state_dir, options.nodeid) {}

Daemon::~Daemon()
{
    // Registrations under way, and those not yet adopted, go before the transport does.
    background_.stop();
    if (service_ != nullptr) {
        qb_ipcs_destroy(service_);
    }
    // Sessions hold registrations with the cluster's transport: they go before it does.
    sessions_.clear();
    closing_.clear();
}

base::Status Daemon::start()
{
    if (!loop_.valid()) {
        return base::errno_status(Errc::io_error, Layer::system, "epoll_create1", errno);
    }
    if (!ordering::DeliveryRing::valid_size(options_.ring_bytes)) {
        return {Errc::invalid_argument, Layer::config,
                fmt::format("ring size {} bytes must be a power of two of at least {} bytes", options_.ring_bytes,
                            4 * delivery::kMaxEntryBytes)};
    }
    if (!delivery::is_power_of_two(options_.submission_capacity)) {
        return {Errc::invalid_argument, Layer::config,
                fmt::format("submission capacity {} must be a power of two", options_.submission_capacity)};
    }
    ring_ = std::make_unique<ordering::DeliveryRing>(options_.ring_bytes, options_.nodeid);
    if (!ring_->valid()) {
        return base::errno_status(Errc::io_error, Layer::system, "cannot create the delivery ring", errno);
    }
    const base::Result<uint64_t> saved = ring_ids_.load();
    if (!saved) {
        return saved.status();
    }
    saved_ring_seq_ = *saved;
    if (base::Status node = start_node(); !node) {
        return node;
    }
    save_ring_seq();
    // A member serves clients only once it is admitted (on_admitted starts the IPC).
    return node_->role() == Role::member ? base::Status{} : start_ipc();
}

// Called whenever the view may have changed: a view's ring id is stored before the loop
// turns again, so no restart hands out one at or below it.
void Daemon::save_ring_seq()
{
    const uint64_t ring_seq = node_->view().ring_seq;
    if (ring_seq <= saved_ring_seq_) {
        return;
    }
    if (base::Status saved = ring_ids_.save(ring_seq); !saved) {
        // Serving goes on; only a restart's ring id may then repeat an earlier one.
        RCPG_LOG_WARN("ring id {} not kept across restarts: {}", ring_seq, saved.message());
    }
    saved_ring_seq_ = ring_seq;
}

base::Status Daemon::start_ipc()
{
    fd_socket_ = ipc::listen_fd_socket(options_.ipc_name);
    if (!fd_socket_) {
        return {Errc::io_error, Layer::system,
                fmt::format("cannot listen on @{}: {} (is another rcpgd running with RCPG_IPC={}?)",
                            ipc::fd_socket_name(options_.ipc_name), std::strerror(errno), options_.ipc_name)};
    }
    loop_.add(fd_socket_.get(), POLLIN, [this](uint32_t) { on_fd_socket_readable(); });

    static qb_ipcs_service_handlers handlers{};
    handlers.connection_accept = [](qb_ipcs_connection_t* c, uid_t uid, gid_t gid) -> int32_t {
        return static_cast<Daemon*>(qb_ipcs_connection_service_context_get(c))->on_accept(c, uid, gid);
    };
    handlers.connection_created = [](qb_ipcs_connection_t* c) {
        static_cast<Daemon*>(qb_ipcs_connection_service_context_get(c))->on_created(c);
    };
    handlers.msg_process = [](qb_ipcs_connection_t* c, void* data, size_t size) -> int32_t {
        return static_cast<Daemon*>(qb_ipcs_connection_service_context_get(c))->on_message(c, data, size);
    };
    handlers.connection_closed = [](qb_ipcs_connection_t*) -> int32_t { return 0; };
    handlers.connection_destroyed = [](qb_ipcs_connection_t* c) {
        static_cast<Daemon*>(qb_ipcs_connection_service_context_get(c))->on_destroyed(c);
    };
    service_ = qb_ipcs_create(options_.ipc_name.c_str(), 0, QB_IPC_SHM, &handlers);
    if (service_ == nullptr) {
        return base::errno_status(Errc::io_error, Layer::system, fmt::format("qb_ipcs_create({})", options_.ipc_name),
                                  errno);
    }
    qb_ipcs_service_context_set(service_, this);
    qb_ipcs_enforce_buffer_size(service_, ipc::kIpcMaxMessageBytes);
    qb_ipcs_poll_handlers poll_handlers = loop_.qb_handlers();
    qb_ipcs_poll_handlers_set(service_, &poll_handlers);
    if (int32_t rc = qb_ipcs_run(service_); rc != 0) {
        return {Errc::io_error, Layer::system,
                fmt::format("cannot serve IPC '{}': {} (is another rcpgd running with RCPG_IPC={}?)",
                            options_.ipc_name, std::strerror(-rc), options_.ipc_name)};
    }
    RCPG_LOG_INFO("rcpgd serving IPC '{}' as node {} (ring {} MiB, {})", options_.ipc_name, options_.nodeid,
                  options_.ring_bytes >> 20,
                  node_->role() == Role::single ? std::string("one-node cluster")
                                        : fmt::format("cluster of {} nodes, sequencer {}",
                                                      options_.cluster.nodes.size(), node_->sequencer()));
    return {};
}


// ---------------------------------------------------------------------------------------
// The loop

bool Daemon::turn(uint64_t now_ms)
{
    auto& ring_header = ring_->header();
    // Clients look at it before they send: still this millisecond, the daemon is there.
    if (ring_header.alive_ms.load(std::memory_order_relaxed) != now_ms) {
        ring_header.alive_ms.store(now_ms, std::memory_order_relaxed);
    }
    bool worked = node_->role() != Role::single && node_->step(now_ms);
    if (node_->view().ring_seq > saved_ring_seq_) {
        save_ring_seq();
    }
    worked |= drain_submissions();
    if (!closing_.empty()) {
        finish_closing_sessions();
    }
    // Raised flow control clears only here once readers made room without anything
    // new being published (a zero-copy sender waits for it to clear).
    if (ring_header.flow_control.load(std::memory_order_relaxed) != 0) {
        update_flow_control();
    }
    return worked;
}

Daemon::SleepPlan Daemon::plan_sleep(uint64_t now_ms)
{
    auto& ring_header = ring_->header();
    int timeout_ms = kIdleWakeMs;
    // Raised before the last look at the submission rings: a client that publishes after
    // that look sees it and rings (Dekker, seq_cst on both sides).
    ring_header.daemon_sleeping.store(1, std::memory_order_seq_cst);
    if (ring_blocked_ || !closing_.empty() || ring_header.flow_control.load(std::memory_order_relaxed) != 0) {
        // Work that waits for readers to make room: re-check soon rather than spin.
        timeout_ms = kBlockedRecheckMs;
    } else if (submissions_pending()) {
        ring_header.daemon_sleeping.store(0, std::memory_order_relaxed);
        return {SleepPlan::Kind::again, 0};
    }
    if (node_->role() != Role::single) {
        const ordering::Node::Sleep sleep = node_->prepare_sleep(now_ms);
        if (sleep == ordering::Node::Sleep::busy) {
            ring_header.daemon_sleeping.store(0, std::memory_order_relaxed);
            return {SleepPlan::Kind::busy, 0};
        }
        if (sleep == ordering::Node::Sleep::poll_soon) {
            timeout_ms = kBlockedRecheckMs;
        }
        // Heartbeats go out and are checked on time, also when nothing else happens.
        const uint64_t timer_ms = node_->next_timer_ms();
        timeout_ms = std::min<int>(
            timeout_ms, timer_ms > now_ms ? static_cast<int>(std::min<uint64_t>(timer_ms - now_ms, kIdleWakeMs)) : 0);
    }
    return {SleepPlan::Kind::sleep, timeout_ms};
}

void Daemon::wait(int timeout_ms)
{
    loop_.run_once(timeout_ms);
    ring_->header().daemon_sleeping.store(0, std::memory_order_relaxed);
}

void Daemon::run(const std::atomic<bool>& stop)
{
    const uint64_t busy_poll_ns = uint64_t{options_.busy_poll_us} * 1000;
    uint64_t last_work_ns = now_ns();
    uint64_t last_ipc_poll_ns = 0;
    stop_ = &stop;
    while (!stop.load(std::memory_order_relaxed) && !failed()) {
        const bool worked = turn(coarse_clock_ms());
        const uint64_t now = now_ns();
        if (worked) {
            last_work_ns = now;
        }
        if (now - last_work_ns < busy_poll_ns) {
            if (now - last_ipc_poll_ns >= kIpcPollIntervalNs) {
                loop_.run_once(0);
                last_ipc_poll_ns = now;
            }
            continue;
        }
        const SleepPlan plan = plan_sleep(coarse_clock_ms());
        if (plan.kind == SleepPlan::Kind::again) {
            continue;
        }
        if (plan.kind == SleepPlan::Kind::busy) {
            last_work_ns = now_ns();
            continue;
        }
        wait(plan.timeout_ms);
        last_ipc_poll_ns = last_work_ns = now_ns();
    }
    if (node_->role() == Role::member && !failed()) {
        leave_cluster();
    }
}

}  // namespace rcpg::daemon
