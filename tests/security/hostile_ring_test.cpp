// The local trust boundary, the reader's side: libcpg checks every ring entry before it
// uses a byte of it. Entries rcpgd's writer never writes (delivery::check_entry says which)
// are written into a real daemon's ring (through /proc/PID/mem, as a daemon gone wrong
// or memory corrupted behind its back would leave them) and published to a joined client:
// its cpg_dispatch must return CS_ERR_LIBRARY, neither crash, nor overflow, nor loop
// forever, nor deliver anything; and every later call must say CS_ERR_LIBRARY too.
#include "delivery/ring_format.hpp"
#include "tests/support/daemon_process.hpp"

#include <corosync/cpg.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace rcpg;
using delivery::EntryHeader;
using delivery::EntryKind;

constexpr uint64_t kRingBytes = 8ull << 20;

// The daemon's own mapping of its ring, reached through /proc/PID/mem (root).
class DaemonRing {
public:
    explicit DaemonRing(pid_t pid) : mem_(::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDWR))
    {
        std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
        std::string line;
        while (std::getline(maps, line)) {
            if (line.find("memfd:rcpg-delivery-ring") != std::string::npos) {
                base_ = std::stoull(line.substr(0, line.find('-')), nullptr, 16);
                break;
            }
        }
    }
    ~DaemonRing()
    {
        if (mem_ >= 0) {
            ::close(mem_);
        }
    }
    bool ok() const { return mem_ >= 0 && base_ != 0; }

    uint64_t tail() { return read_at<uint64_t>(offsetof(delivery::RingHeader, tail)); }
    void set_tail(uint64_t tail) { write_at(offsetof(delivery::RingHeader, tail), &tail, sizeof tail); }
    void write_data(uint64_t position, const void* bytes, size_t size)
    {
        write_at(delivery::kPageBytes + (position & (kRingBytes - 1)), bytes, size);
    }
    std::vector<std::byte> read_data(uint64_t position, size_t size)
    {
        std::vector<std::byte> bytes(size);
        EXPECT_EQ(::pread(mem_, bytes.data(), size, static_cast<off_t>(base_ + delivery::kPageBytes + position)),
                  static_cast<ssize_t>(size));
        return bytes;
    }

private:
    template <typename T>
    T read_at(uint64_t offset)
    {
        T value{};
        EXPECT_EQ(::pread(mem_, &value, sizeof value, static_cast<off_t>(base_ + offset)),
                  static_cast<ssize_t>(sizeof value));
        return value;
    }
    void write_at(uint64_t offset, const void* bytes, size_t size)
    {
        EXPECT_EQ(::pwrite(mem_, bytes, size, static_cast<off_t>(base_ + offset)), static_cast<ssize_t>(size));
    }

    int mem_;
    uint64_t base_ = 0;
};

struct Seen {
    int messages = 0;
    int confchgs = 0;
};

// A client of the library joined to "victim", its own join seen; the group's id and the
// last sequence number taken from the ring as rcpgd wrote it.
class Victim {
public:
    explicit Victim(DaemonRing& ring)
    {
        cpg_callbacks_t callbacks{
            [](cpg_handle_t delivered_to, const cpg_name*, uint32_t, uint32_t, void*, size_t) {
                void* context = nullptr;
                cpg_context_get(delivered_to, &context);
                ++static_cast<Seen*>(context)->messages;
            },
            [](cpg_handle_t delivered_to, const cpg_name*, const cpg_address*, size_t, const cpg_address*, size_t,
               const cpg_address*, size_t) {
                void* context = nullptr;
                cpg_context_get(delivered_to, &context);
                ++static_cast<Seen*>(context)->confchgs;
            }};
        EXPECT_EQ(cpg_initialize(&handle, &callbacks), CS_OK);
        cpg_context_set(handle, &seen);
        cpg_name group{};
        group.length = 6;
        std::memcpy(group.value, "victim", 6);
        EXPECT_EQ(cpg_join(handle, &group), CS_OK);
        for (int i = 0; i < 60'000 && seen.confchgs == 0; ++i) {
            EXPECT_EQ(cpg_dispatch(handle, CS_DISPATCH_ALL), CS_OK);
            ::usleep(1000);
        }
        EXPECT_EQ(seen.confchgs, 1);
        // The join's confchg is the last entry in the ring: walk the ring to it.
        tail = ring.tail();
        uint64_t position = 0;
        while (position < tail) {
            EntryHeader entry;
            const auto bytes = ring.read_data(position, sizeof entry);
            std::memcpy(&entry, bytes.data(), sizeof entry);
            if (entry.entry_bytes == 0) {
                ADD_FAILURE() << "rcpgd's ring is not as expected at " << position;
                break;
            }
            if (entry.kind == EntryKind::confchg) {
                group_id = entry.group_id;
                last_seq = entry.seq;
            }
            position += entry.entry_bytes;
        }
    }
    ~Victim() { cpg_finalize(handle); }

    // Dispatches on another thread: a library that loops forever must fail the test, not
    // hang it. Such a thread cannot be stopped, so the test process ends there, failed.
    cs_error_t dispatch()
    {
        auto done = std::make_shared<std::promise<cs_error_t>>();
        std::future<cs_error_t> result = done->get_future();
        std::thread([handle = handle, done] { done->set_value(cpg_dispatch(handle, CS_DISPATCH_ALL)); }).detach();
        if (result.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
            std::fprintf(stderr, "FAILED: cpg_dispatch did not return within 60 s: it loops on the entry\n");
            std::fflush(stderr);
            ::_exit(1);
        }
        return result.get();
    }

    cpg_handle_t handle = 0;
    Seen seen;
    uint64_t tail = 0;
    uint32_t group_id = 0;
    uint64_t last_seq = 0;
};

// An entry header for the victim's group, next in sequence, at ring position `position`.
EntryHeader entry_for(const Victim& victim, EntryKind kind)
{
    EntryHeader entry{};
    entry.kind = kind;
    entry.seq = victim.last_seq + 1;
    entry.group_id = victim.group_id;
    entry.nodeid = 1;
    entry.pid = 4242;
    return entry;
}

struct Hostile {
    std::string what;
    std::vector<std::byte> bytes;  // the entry as written at the victim's tail
    uint64_t published = 0;        // how far the tail is moved past it (0: the entry's size)
};

std::vector<std::byte> bytes_of(const EntryHeader& entry, size_t total, const void* payload = nullptr,
                                size_t payload_bytes = 0)
{
    std::vector<std::byte> bytes(total);
    std::memcpy(bytes.data(), &entry, sizeof entry);
    if (payload != nullptr) {
        std::memcpy(bytes.data() + entry.payload_offset, payload, payload_bytes);
    }
    return bytes;
}

std::vector<Hostile> hostile_entries(const Victim& victim)
{
    std::vector<Hostile> cases;
    {
        EntryHeader entry = entry_for(victim, EntryKind::data);
        entry.entry_bytes = 0;  // a reader that trusts it never moves on
        cases.push_back({"an entry of 0 bytes", bytes_of(entry, 64), 64});
    }
    {
        // 8 KiB not on pages: a reader that trusts it copies it into its 4 KiB buffer.
        EntryHeader entry = entry_for(victim, EntryKind::data);
        entry.payload_bytes = 8192;
        entry.total_bytes = 8192;
        entry.payload_offset = sizeof(EntryHeader);
        entry.entry_bytes = sizeof(EntryHeader) + 8192;
        std::vector<char> payload(8192, 'o');
        cases.push_back({"a large payload off its pages", bytes_of(entry, entry.entry_bytes, payload.data(), 8192)});
    }
    {
        EntryHeader entry = entry_for(victim, EntryKind::data);
        entry.payload_bytes = 16;
        entry.total_bytes = 16;
        entry.payload_offset = 0x7fff0000;  // far outside the entry and the ring
        entry.entry_bytes = 64;
        cases.push_back({"a payload offset outside the entry", bytes_of(entry, 64)});
    }
    {
        EntryHeader entry = entry_for(victim, EntryKind::confchg);
        entry.payload_bytes = 8;  // shorter than a confchg's own header
        entry.payload_offset = sizeof(EntryHeader);
        entry.entry_bytes = sizeof(EntryHeader) + 8;
        cases.push_back({"a confchg shorter than its header", bytes_of(entry, entry.entry_bytes)});
    }
    {
        delivery::ConfchgPayload confchg{};
        confchg.member_count = 0x40000000;  // far more members than the entry holds
        confchg.group_length = 6;
        std::memcpy(confchg.group_value, "victim", 6);
        EntryHeader entry = entry_for(victim, EntryKind::confchg);
        entry.payload_bytes = sizeof confchg;
        entry.payload_offset = sizeof(EntryHeader);
        entry.entry_bytes = sizeof(EntryHeader) + sizeof confchg;
        cases.push_back({"a confchg with more members than bytes",
                         bytes_of(entry, entry.entry_bytes, &confchg, sizeof confchg)});
    }
    {
        delivery::ConfchgPayload confchg{};
        confchg.group_length = 4096;  // longer than any group name
        EntryHeader entry = entry_for(victim, EntryKind::confchg);
        entry.payload_bytes = sizeof confchg;
        entry.payload_offset = sizeof(EntryHeader);
        entry.entry_bytes = sizeof(EntryHeader) + sizeof confchg;
        cases.push_back({"a confchg with a group name too long", bytes_of(entry, entry.entry_bytes, &confchg,
                                                                          sizeof confchg)});
    }
    {
        EntryHeader entry = entry_for(victim, static_cast<EntryKind>(77));
        entry.payload_offset = sizeof(EntryHeader);
        entry.entry_bytes = sizeof(EntryHeader);
        cases.push_back({"an entry of no known kind", bytes_of(entry, entry.entry_bytes)});
    }
    {
        EntryHeader entry = entry_for(victim, EntryKind::data);
        entry.payload_bytes = 8;
        entry.total_bytes = 8;
        entry.payload_offset = sizeof(EntryHeader);
        entry.entry_bytes = sizeof(EntryHeader) + 8;
        entry.flags = 0x4000;  // no such flag
        cases.push_back({"a data entry with unknown flags", bytes_of(entry, entry.entry_bytes)});
    }
    {
        // A well-formed entry, but the tail claims more than a whole ring was written.
        EntryHeader entry = entry_for(victim, EntryKind::data);
        entry.payload_bytes = 8;
        entry.total_bytes = 8;
        entry.payload_offset = sizeof(EntryHeader);
        entry.entry_bytes = sizeof(EntryHeader) + 8;
        cases.push_back({"a tail more than a ring ahead", bytes_of(entry, entry.entry_bytes), 3 * kRingBytes});
    }
    return cases;
}

TEST(HostileRing, AnEntryRcpgdNeverWritesIsTheDaemonsFailureNeverUndefinedBehaviour)
{
    if (::geteuid() != 0) {
        GTEST_SKIP() << "needs root, to write into the daemon's ring through /proc/PID/mem";
    }
    size_t count = 0;
    for (size_t index = 0;; ++index) {
        rcpg::testing::DaemonProcess daemon({"--ring-mib", std::to_string(kRingBytes >> 20)});
        ASSERT_TRUE(daemon.running());
        DaemonRing ring(daemon.pid());
        ASSERT_TRUE(ring.ok()) << "cannot reach the daemon's ring";
        Victim victim(ring);
        ASSERT_NE(victim.group_id, 0u);
        const std::vector<Hostile> cases = hostile_entries(victim);
        count = cases.size();
        if (index >= cases.size()) {
            break;
        }
        const Hostile& hostile = cases[index];
        SCOPED_TRACE(hostile.what);
        ring.write_data(victim.tail, hostile.bytes.data(), hostile.bytes.size());
        ring.set_tail(victim.tail + (hostile.published != 0 ? hostile.published : hostile.bytes.size()));

        EXPECT_EQ(victim.dispatch(), CS_ERR_LIBRARY);
        EXPECT_EQ(victim.seen.messages, 0) << "delivered something of it";
        EXPECT_EQ(victim.seen.confchgs, 1) << "delivered a confchg of it";
        EXPECT_EQ(cpg_dispatch(victim.handle, CS_DISPATCH_ALL), CS_ERR_LIBRARY) << "the ring is broken for good";
        char text[] = "after";
        iovec part{text, sizeof text};
        EXPECT_EQ(cpg_mcast_joined(victim.handle, CPG_TYPE_AGREED, &part, 1), CS_ERR_LIBRARY);
    }
    EXPECT_GT(count, 8u);
}

}  // namespace
