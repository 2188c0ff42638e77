// The local trust boundary, shared memory: an allowed client of another uid that speaks the
// protocol itself and keeps every descriptor rcpgd hands it cannot write the delivery ring
// (which every client reads) by any means a descriptor offers, and shares no descriptor
// with another client.
//
// Attack, as uid nobody: reopen the ring through /proc/self/fd read-write, map it shared
// and writable, map it read-only and mprotect the mapping writable, pwrite it, truncate
// it, punch a hole in it, chmod it, add or change seals. Each must fail, the ring's bytes
// must stay as rcpgd wrote them, and a client of the library must still get its messages.
#include "delivery/ring_format.hpp"
#include "tests/support/daemon_process.hpp"
#include "tests/support/raw_session.hpp"

#include <corosync/cpg.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace rcpg;

// What the hostile child managed; every field must stay false.
struct Breaches {
    bool opened_for_writing = false;
    bool mapped_writable = false;
    bool made_writable_by_mprotect = false;
    bool wrote_with_pwrite = false;
    bool truncated = false;
    bool punched_hole = false;
    bool changed_mode = false;
    bool changed_seals = false;
    bool wrote_through_reopened_fd = false;
    char session_error[160] = {};
};

constexpr uint8_t kScribble = 0xee;

// Runs as the attacker (already switched to its uid): every way to write the ring.
Breaches attack(const std::string& ipc_name)
{
    Breaches breaches;
    rcpg::testing::RawSession session = rcpg::testing::open_raw_session(ipc_name, "victims");
    if (!session.error.empty()) {
        std::snprintf(breaches.session_error, sizeof breaches.session_error, "%s", session.error.c_str());
        return breaches;
    }
    const int ring = session.fds[ipc::ring_fd].get();
    const size_t ring_file_bytes = delivery::kPageBytes + session.init.ring_data_bytes;
    const std::string path = "/proc/self/fd/" + std::to_string(ring);

    const int reopened = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (reopened >= 0) {
        breaches.opened_for_writing = true;
        const uint8_t byte = kScribble;
        breaches.wrote_through_reopened_fd = ::pwrite(reopened, &byte, 1, 0) == 1;
        void* shared = ::mmap(nullptr, ring_file_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, reopened, 0);
        if (shared != MAP_FAILED) {
            breaches.mapped_writable = true;
            static_cast<uint8_t*>(shared)[0] = kScribble;
            ::munmap(shared, ring_file_bytes);
        }
        ::close(reopened);
    }
    void* shared = ::mmap(nullptr, ring_file_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, ring, 0);
    if (shared != MAP_FAILED) {
        breaches.mapped_writable = true;
        static_cast<uint8_t*>(shared)[0] = kScribble;
        ::munmap(shared, ring_file_bytes);
    }
    void* read_only = ::mmap(nullptr, ring_file_bytes, PROT_READ, MAP_SHARED, ring, 0);
    if (read_only != MAP_FAILED) {
        if (::mprotect(read_only, ring_file_bytes, PROT_READ | PROT_WRITE) == 0) {
            breaches.made_writable_by_mprotect = true;
            static_cast<uint8_t*>(read_only)[0] = kScribble;
        }
        ::munmap(read_only, ring_file_bytes);
    }
    const uint8_t byte = kScribble;
    breaches.wrote_with_pwrite = ::pwrite(ring, &byte, 1, 0) == 1;
    breaches.truncated = ::ftruncate(ring, 0) == 0;
    breaches.punched_hole = ::fallocate(ring, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, delivery::kPageBytes) == 0;
    breaches.changed_mode = ::fchmod(ring, 0666) == 0;
    breaches.changed_seals = ::fcntl(ring, F_ADD_SEALS, F_SEAL_WRITE) == 0;
    return breaches;
}

bool switch_to(const passwd& user)
{
    return ::setgroups(0, nullptr) == 0 && ::setgid(user.pw_gid) == 0 && ::setuid(user.pw_uid) == 0;
}

// A client of the library that must still get what it sends.
bool round_trip()
{
    cpg_handle_t handle = 0;
    static int received = 0;
    received = 0;
    cpg_callbacks_t callbacks{[](cpg_handle_t, const cpg_name*, uint32_t, uint32_t, void*, size_t) { ++received; },
                              nullptr};
    if (cpg_initialize(&handle, &callbacks) != CS_OK) {
        return false;
    }
    cpg_name group{};
    group.length = 7;
    std::memcpy(group.value, "victims", 7);
    char text[] = "still intact";
    iovec part{text, sizeof text};
    bool ok = cpg_join(handle, &group) == CS_OK && cpg_mcast_joined(handle, CPG_TYPE_AGREED, &part, 1) == CS_OK;
    for (int i = 0; ok && i < 60'000 && received == 0; ++i) {
        ok = cpg_dispatch(handle, CS_DISPATCH_ALL) == CS_OK;
        ::usleep(1000);
    }
    cpg_finalize(handle);
    return ok && received == 1;
}

TEST(RingDescriptor, AnotherUidThatKeepsItCannotWriteTheRingByAnyMeans)
{
    if (::geteuid() != 0) {
        GTEST_SKIP() << "needs root, to run the attacker as a second uid (nobody)";
    }
    const passwd* nobody = ::getpwnam("nobody");
    ASSERT_NE(nobody, nullptr);
    const passwd attacker = *nobody;
    rcpg::testing::DaemonProcess daemon({"--allow-user", "nobody"});
    ASSERT_TRUE(daemon.running());

    // What rcpgd wrote, read through a descriptor of our own (root may open it).
    rcpg::testing::RawSession witness = rcpg::testing::open_raw_session(daemon.ipc_name(), "");
    ASSERT_TRUE(witness.error.empty()) << witness.error;
    const size_t ring_file_bytes = delivery::kPageBytes + witness.init.ring_data_bytes;
    const ipc::Mapping ring = ipc::map_fd(witness.fds[ipc::ring_fd].get(), ring_file_bytes, 0, ipc::Access::read_only);
    ASSERT_TRUE(ring);
    const auto* header = static_cast<const delivery::RingHeader*>(ring.get());
    ASSERT_EQ(header->magic, delivery::kRingMagic);

    int results[2];
    ASSERT_EQ(::pipe(results), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::close(results[0]);
        Breaches breaches;
        if (!switch_to(attacker)) {
            std::snprintf(breaches.session_error, sizeof breaches.session_error, "cannot become nobody");
        } else {
            breaches = attack(daemon.ipc_name());
        }
        (void)!::write(results[1], &breaches, sizeof breaches);
        ::_exit(0);
    }
    ::close(results[1]);
    Breaches breaches;
    ASSERT_EQ(::read(results[0], &breaches, sizeof breaches), static_cast<ssize_t>(sizeof breaches));
    ::close(results[0]);
    int status = 0;
    ::waitpid(child, &status, 0);

    ASSERT_STREQ(breaches.session_error, "") << "the attacker must be an allowed client";
    EXPECT_FALSE(breaches.opened_for_writing) << "reopened the ring read-write through /proc/self/fd";
    EXPECT_FALSE(breaches.wrote_through_reopened_fd);
    EXPECT_FALSE(breaches.mapped_writable) << "mapped the ring shared and writable";
    EXPECT_FALSE(breaches.made_writable_by_mprotect);
    EXPECT_FALSE(breaches.wrote_with_pwrite);
    EXPECT_FALSE(breaches.truncated);
    EXPECT_FALSE(breaches.punched_hole);
    EXPECT_FALSE(breaches.changed_mode);
    EXPECT_FALSE(breaches.changed_seals);
    EXPECT_EQ(header->magic, delivery::kRingMagic) << "the ring's first bytes changed";
    EXPECT_TRUE(round_trip()) << daemon.log();
}

// Flags of an open file description are shared by every descriptor of it: if clearing
// O_NONBLOCK through one client's doorbell shows through another's, they share one.
TEST(RingDescriptor, EveryClientRingsADoorbellOfItsOwn)
{
    rcpg::testing::DaemonProcess daemon;
    ASSERT_TRUE(daemon.running());
    rcpg::testing::RawSession first = rcpg::testing::open_raw_session(daemon.ipc_name(), "");
    rcpg::testing::RawSession second = rcpg::testing::open_raw_session(daemon.ipc_name(), "");
    ASSERT_TRUE(first.error.empty()) << first.error;
    ASSERT_TRUE(second.error.empty()) << second.error;
    const int mine = first.fds[ipc::doorbell_fd].get();
    const int theirs = second.fds[ipc::doorbell_fd].get();
    ASSERT_NE(::fcntl(theirs, F_GETFL) & O_NONBLOCK, 0);
    ASSERT_EQ(::fcntl(mine, F_SETFL, ::fcntl(mine, F_GETFL) & ~O_NONBLOCK), 0);
    EXPECT_NE(::fcntl(theirs, F_GETFL) & O_NONBLOCK, 0)
        << "one client's doorbell is another's: it could read their wake-ups or block their rings";
}

}  // namespace
