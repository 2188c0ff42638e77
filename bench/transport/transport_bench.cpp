// transport_bench: rcpg's transport on a real device, measured the way perftest measures
// the raw device, so bench/transport/run.sh can print both side by side from one run.
//
//   --mode bw        64 KiB (--size) RDMA WRITEs, back to back, like ib_write_bw
//   --mode ring-bw   the same bytes as RingWriter records (header, payload, tail commit,
//                    credits from a reader that consumes everything)
//   --mode lat       ping-pong of --size-byte writes, each side polling the last word of
//                    its buffer, like ib_write_lat; reports half the round trip
//   --mode ring-lat  ping-pong of --size-byte RingWriter records (record + tail write),
//                    the reader polling the committed tail
//
// Two processes: `--role server` (node 2, listens) and `--role client` (node 1, connects
// and measures). Address from RCPG_RDMA_ADDR (or --addr), device from RCPG_RDMA_DEV.
// `--yield-after-us N` (latency modes, default 50): see SpinWait.
// Output: one line "RESULT mode=... size=... iters=... gbps=... lat_us_median=...".
#include "transport/ring_reader.hpp"
#include "transport/ring_writer.hpp"
#include "transport/verbs_transport.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <sched.h>
#include <string>
#include <vector>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace {

using namespace rcpg::transport;

constexpr uint32_t kRingTag = 1;
constexpr uint32_t kCreditTag = 2;
constexpr uint64_t kRingBytes = 4u << 20;  // room for 64 records of 64 KiB
constexpr size_t kPostBatch = 8;
constexpr uint32_t kEndRecordType = 2;

struct Options {
    std::string role = "client";
    std::string mode = "bw";
    std::string addr;
    uint16_t port = 20400;
    uint32_t size = 65536;
    uint64_t iters = 1000;
    uint64_t yield_after_us = 50;  // latency modes: see SpinWait
};

uint64_t now_ns()
{
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}

// The clock poll() wants, in ms. The coarse clock is read from the vDSO whatever the
// clocksource; in the TCG guest CLOCK_MONOTONIC is a real system call (strace -c: one
// per now_ns()), which would otherwise sit in every poll() of the spin loops.
uint64_t coarse_now_ms()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

// A cheap monotonic tick count for spin budgets (not for reported times): the TSC where
// there is one, steady_clock elsewhere.
uint64_t spin_ticks()
{
#if defined(__x86_64__)
    return __rdtsc();
#else
    return now_ns();
#endif
}

// Ticks of spin_ticks() per microsecond, measured once against steady_clock.
uint64_t spin_ticks_per_us()
{
    static const uint64_t ticks_per_us = [] {
        const uint64_t start_ns = now_ns();
        const uint64_t start_ticks = spin_ticks();
        while (now_ns() - start_ns < 20'000'000) {
        }
        return std::max<uint64_t>(1, (spin_ticks() - start_ticks) * 1000 / (now_ns() - start_ns));
    }();
    return ticks_per_us;
}

[[noreturn]] void die(const std::string& what)
{
    std::fprintf(stderr, "transport_bench: %s\n", what.c_str());
    std::exit(1);
}

void check(const Status& status, const char* what)
{
    if (!status.ok()) {
        die(std::string(what) + ": " + status.message());
    }
}

uint64_t load(const std::byte* p)
{
    return std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(const_cast<std::byte*>(p))).load(std::memory_order_acquire);
}

struct Endpoint {
    explicit Endpoint(const Options& options)
    {
        const NodeId self = options.role == "server" ? 2 : 1;
        peer = 3 - self;
        TransportConfig config;
        config.self = self;
        config.nodes = {{1, options.addr, static_cast<uint16_t>(options.port + 1)},
                        {2, options.addr, static_cast<uint16_t>(options.port + 2)}};
        const std::string key = "rcpg-bench-cluster-key-000000000";
        for (char c : key) {
            config.cluster_key.push_back(static_cast<std::byte>(c));
        }
        config.connect_timeout_ms = 20000;
        if (const char* device = std::getenv("RCPG_RDMA_DEV")) {
            config.device_name = device;
        }
        auto created = VerbsTransport::create(config);
        if (!created) {
            die(created.status().message());
        }
        transport = std::move(created).value();
        ring.assign(ring::region_bytes(kRingBytes) / 8, 0);
        source.assign(std::max<size_t>(options.size, 64) / 8 + 1, 0);
        ring_region = *transport->register_region(ring.data(), ring.size() * 8, RegionAccess::remote_write);
        credit_region = *transport->register_region(&credit_word, sizeof credit_word, RegionAccess::remote_write);
        source_region = *transport->register_region(source.data(), source.size() * 8, RegionAccess::local);
        check(transport->expose(peer, kRingTag, ring_region, 0, ring.size() * 8, rcpg::transport::RegionAccess::remote_read_write), "expose ring");
        check(transport->expose(peer, kCreditTag, credit_region, 0, sizeof credit_word, rcpg::transport::RegionAccess::remote_read_write), "expose credit");
        // The client's connection set-up, from connect() until the peer's regions are known
        // (rdma_cm, the handshake, the hellos): what a node pays per peer it connects to.
        const uint64_t connect_start_ns = now_ns();
        if (self == 2) {
            check(transport->listen(), "listen");
        } else {
            check(transport->connect(peer), "connect");
        }
        while (!transport->is_connected(peer)) {
            poll();
        }
        connect_ms = static_cast<double>(now_ns() - connect_start_ns) / 1e6;
        remote_ring = *transport->remote_region(peer, kRingTag);
        writer.emplace(*RingWriter::create(*transport, peer, remote_ring, &credit_word));
        reader.emplace(*RingReader::create(*transport, peer, ring_bytes(), transport->remote_region(peer, kCreditTag)->at(0)));
    }
    double connect_ms = 0;
    std::span<std::byte> ring_bytes() { return std::as_writable_bytes(std::span(ring)); }
    std::byte* ring_data() { return reinterpret_cast<std::byte*>(ring.data()); }
    void poll()
    {
        events.clear();
        transport->poll(coarse_now_ms(), events);
        for (const Event& event : events) {
            if (event.kind == EventKind::disconnected || event.kind == EventKind::refused) {
                disconnected = true;
                if (event.reason != DisconnectReason::remote_close) {
                    die(std::string("peer lost: ") + event.detail.message());
                }
            }
            if (event.kind == EventKind::write_completed) {
                last_completed = event.wr_id;
            }
        }
    }
    std::unique_ptr<VerbsTransport> transport;
    NodeId peer = 0;
    std::vector<uint64_t> ring;
    alignas(64) rcpg::transport::PeerWord credit_word{};
    std::vector<uint64_t> source;
    RegionId ring_region, credit_region, source_region;
    RemoteRegion remote_ring;
    std::optional<RingWriter> writer;
    std::optional<RingReader> reader;
    std::vector<Event> events;
    uint64_t last_completed = 0;
    bool disconnected = false;
};

// Raw writes of `size` bytes, kPostBatch per post list, until `iters` are done.
double client_bw(Endpoint& e, const Options& o)
{
    const uint64_t slots = kRingBytes / o.size;
    std::vector<WriteRequest> batch(kPostBatch);
    const LocalSlice slice{e.source_region, 0, o.size};
    uint64_t posted = 0;
    const uint64_t start = now_ns();
    while (posted < o.iters) {
        const size_t n = std::min<uint64_t>(kPostBatch, o.iters - posted);
        for (size_t i = 0; i < n; ++i) {
            batch[i] = WriteRequest{};
            batch[i].sources = {&slice, 1};
            batch[i].destination = e.remote_ring.at(((posted + i) % slots) * o.size);
            batch[i].signaled = posted + i + 1 == o.iters;  // the last one tells us all are done
            batch[i].wr_id = posted + i + 1;
        }
        const Status status = e.transport->post_writes(e.peer, {batch.data(), n});
        if (status.code() == Errc::try_again) {
            e.poll();
            continue;
        }
        check(status, "post_writes");
        posted += n;
    }
    while (e.last_completed != o.iters) {
        e.poll();
    }
    return static_cast<double>(now_ns() - start) / 1e9;
}

double client_ring_bw(Endpoint& e, const Options& o)
{
    const LocalSlice slice{e.source_region, 0, o.size};
    uint64_t appended = 0;
    const uint64_t start = now_ns();
    while (appended < o.iters) {
        uint64_t in_batch = 0;
        while (appended < o.iters && in_batch < kPostBatch) {
            const Status status = e.writer->append(1, {&slice, 1});
            if (status.code() == Errc::try_again) {
                break;
            }
            check(status, "append");
            ++appended;
            ++in_batch;
        }
        if (in_batch > 0) {
            Status status = e.writer->commit(appended == o.iters, appended);
            while (status.code() == Errc::try_again) {
                e.poll();
                status = e.writer->commit(appended == o.iters, appended);
            }
            check(status, "commit");
        }
        e.poll();
    }
    while (e.last_completed != o.iters) {
        e.poll();
    }
    const double seconds = static_cast<double>(now_ns() - start) / 1e9;
    const std::array<std::byte, 8> end{};
    while (e.writer->append_copy(kEndRecordType, end).code() == Errc::try_again) {
        e.poll();
    }
    check(e.writer->commit(), "commit end");
    return seconds;
}

void server_ring_bw(Endpoint& e)
{
    for (;;) {
        auto next = e.reader->next();
        if (!next.ok()) {
            die(next.status().message());
        }
        if (next->has_value()) {
            e.reader->release(**next);
            if ((*next)->type == kEndRecordType) {
                return;
            }
        }
        Status status = e.reader->publish_credits();
        if (!status.ok() && status.code() != Errc::try_again) {
            die(status.message());
        }
        e.poll();
    }
}

// Waits for the peer's next message the way ib_write_lat does: a tight loop on memory.
// Every kPollEverySpins it also polls the transport (frees send-queue slots, notices a
// lost peer). rxe does part of its receive work in softirq/task context that may be
// queued on the CPU this process spins on, and a spinner that never yields leaves it
// there until the next tick (4 ms). Yielding at every poll, as this loop used to, costs
// ≈4 us of a 15 us half round trip (measured in the TCG guest), so it yields only once a
// wait has lasted yield_after_us — far beyond a normal round trip, well below a tick.
class SpinWait {
public:
    static constexpr uint64_t kPollEverySpins = 64;

    SpinWait(Endpoint& e, uint64_t yield_after_us) : e_(&e), yield_after_ticks_(yield_after_us * spin_ticks_per_us()) {}

    template <typename Ready>
    void until(Ready ready)
    {
        const uint64_t start_ticks = spin_ticks();
        for (uint64_t spins = 1; !ready(); ++spins) {
            if (spins % kPollEverySpins == 0) {
                e_->poll();
                if (spin_ticks() - start_ticks >= yield_after_ticks_) {
                    sched_yield();
                }
            }
        }
    }

private:
    Endpoint* e_;
    uint64_t yield_after_ticks_;
};

// Ping-pong: the last 8 bytes of each message carry its sequence number. Like
// ib_write_lat, one timestamp per iteration: a sample is the time between the client's
// consecutive posts (its whole round trip), halved.
std::vector<double> ping_pong(Endpoint& e, const Options& o, bool client)
{
    std::vector<double> half_rtt_us;
    const uint32_t size = std::max<uint32_t>(o.size, 8);
    std::byte* source = reinterpret_cast<std::byte*>(e.source.data());
    const std::byte* landing = e.ring_data() + size - 8;
    const LocalSlice slice{e.source_region, 0, size};
    SpinWait wait(e, o.yield_after_us);
    uint64_t previous_ns = now_ns();
    for (uint64_t seq = 1; seq <= o.iters; ++seq) {
        const auto send = [&] {
            std::memcpy(source + size - 8, &seq, 8);
            WriteRequest write;
            write.sources = {&slice, 1};
            write.destination = e.remote_ring.at(0);
            Status status = e.transport->post_write(e.peer, write);
            if (!client && status.code() == Errc::not_connected) {
                return;  // the client left after its last pong
            }
            while (status.code() == Errc::try_again) {
                e.poll();
                status = e.transport->post_write(e.peer, write);
            }
            check(status, "post_write");
        };
        if (client) {
            send();
        }
        wait.until([&] { return load(landing) == seq; });
        if (!client) {
            send();
        } else {
            const uint64_t t_ns = now_ns();
            half_rtt_us.push_back(static_cast<double>(t_ns - previous_ns) / 2000.0);
            previous_ns = t_ns;
        }
        if (seq % 16 == 0) {
            e.poll();
        }
    }
    return half_rtt_us;
}

std::vector<double> ring_ping_pong(Endpoint& e, const Options& o, bool client)
{
    std::vector<double> half_rtt_us;
    std::vector<std::byte> payload(o.size);
    SpinWait wait(e, o.yield_after_us);
    uint64_t previous_ns = now_ns();
    for (uint64_t seq = 1; seq <= o.iters; ++seq) {
        const auto send = [&] {
            Status status = e.writer->append_copy(1, payload);
            while (status.code() == Errc::try_again) {
                e.poll();
                status = e.writer->append_copy(1, payload);
            }
            check(status, "append_copy");
            check(e.writer->commit(), "commit");
        };
        if (client) {
            send();
        }
        wait.until([&] {
            auto next = e.reader->next();
            if (!next.ok()) {
                die(next.status().message());
            }
            if (!next->has_value()) {
                return false;
            }
            e.reader->release(**next);
            return true;
        });
        if (!client) {
            send();
        } else {
            const uint64_t t_ns = now_ns();
            half_rtt_us.push_back(static_cast<double>(t_ns - previous_ns) / 2000.0);
            previous_ns = t_ns;
        }
        // After the reply, off the round trip: credits are due only now and then.
        if (Status status = e.reader->publish_credits(); !status && status.code() != Errc::try_again) {
            die(status.message());
        }
        if (seq % 16 == 0) {
            e.poll();
        }
    }
    return half_rtt_us;
}

double percentile(std::vector<double> values, double p)
{
    std::sort(values.begin(), values.end());
    return values.empty() ? 0 : values[static_cast<size_t>(p * static_cast<double>(values.size() - 1))];
}

}  // namespace

int main(int argc, char** argv)
{
    Options o;
    if (const char* addr = std::getenv("RCPG_RDMA_ADDR")) {
        o.addr = addr;
    }
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i], value = argv[i + 1];
        if (flag == "--role") o.role = value;
        else if (flag == "--mode") o.mode = value;
        else if (flag == "--addr") o.addr = value;
        else if (flag == "--port") o.port = static_cast<uint16_t>(std::stoi(value));
        else if (flag == "--size") o.size = static_cast<uint32_t>(std::stoul(value));
        else if (flag == "--iters") o.iters = std::stoull(value);
        else if (flag == "--yield-after-us") o.yield_after_us = std::stoull(value);
        else die("unknown flag " + flag);
    }
    if (o.addr.empty()) {
        die("no address: set RCPG_RDMA_ADDR or --addr (run inside scripts/softroce.sh run)");
    }
    const bool client = o.role == "client";
    Endpoint e(o);
    if (o.mode == "bw" || o.mode == "ring-bw") {
        if (!client) {
            if (o.mode == "ring-bw") {
                server_ring_bw(e);
            }
            while (!e.disconnected) {
                e.poll();
            }
            return 0;
        }
        const double seconds = o.mode == "bw" ? client_bw(e, o) : client_ring_bw(e, o);
        const double gbps = static_cast<double>(o.iters) * o.size * 8 / seconds / 1e9;
        std::printf("RESULT mode=%s size=%u iters=%llu seconds=%.3f gbps=%.4f MiBps=%.2f connect_ms=%.2f device=%s\n",
                    o.mode.c_str(), o.size, static_cast<unsigned long long>(o.iters), seconds, gbps,
                    static_cast<double>(o.iters) * o.size / seconds / (1 << 20), e.connect_ms, e.transport->device().name.c_str());
    } else if (o.mode == "lat" || o.mode == "ring-lat") {
        const auto samples = o.mode == "lat" ? ping_pong(e, o, client) : ring_ping_pong(e, o, client);
        if (client) {
            std::printf("RESULT mode=%s size=%u iters=%llu lat_us_min=%.2f lat_us_median=%.2f lat_us_p99=%.2f connect_ms=%.2f "
                        "device=%s\n",
                        o.mode.c_str(), o.size, static_cast<unsigned long long>(o.iters), percentile(samples, 0),
                        percentile(samples, 0.5), percentile(samples, 0.99), e.connect_ms, e.transport->device().name.c_str());
        } else {
            // Stay until the client has seen the last pong and left.
            while (!e.disconnected) {
                e.poll();
            }
        }
    } else {
        die("unknown mode " + o.mode);
    }
    return 0;
}
