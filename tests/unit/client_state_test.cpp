// What rcpgd keeps for a client and for itself besides the ring: a slow reader's backlog
// (daemon/client_backlog.hpp), read back with the reader every client uses, and the ring
// id kept across restarts (daemon/ring_id_store.hpp).
#include "daemon/client_backlog.hpp"
#include "daemon/ring_id_store.hpp"
#include "delivery/ring_entry.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

namespace {

using rcpg::daemon::ClientBacklog;
using rcpg::daemon::RingIdStore;
namespace ipc = rcpg::ipc;
namespace delivery = rcpg::delivery;

constexpr uint64_t kBacklogBytes = 8ull << 20;

delivery::EntryHeader data_header(uint64_t seq, uint32_t payload_bytes)
{
    delivery::EntryHeader header{};
    header.kind = delivery::EntryKind::data;
    header.flags = payload_bytes >= delivery::kInPlaceDeliveryMinBytes ? delivery::kFlagPayloadOnPage : 0;
    header.seq = seq;
    header.group_id = 3;
    header.nodeid = 1;
    header.pid = 42;
    header.payload_bytes = payload_bytes;
    header.total_bytes = payload_bytes;
    return header;
}

// Reads every entry of the backlog from `position` to the tail, as libcpg does.
std::vector<std::pair<uint64_t, std::vector<std::byte>>> read_all(const std::byte* data, uint64_t& position,
                                                                  uint64_t tail)
{
    std::vector<std::pair<uint64_t, std::vector<std::byte>>> entries;
    while (position < tail) {
        delivery::RingEntry entry{};
        if (delivery::read_entry(data, kBacklogBytes, position, tail, entry) != delivery::RingStep::entry) {
            ADD_FAILURE() << "no entry at " << position;
            break;
        }
        if (entry.header.kind == delivery::EntryKind::data) {
            entries.emplace_back(entry.header.seq, std::vector<std::byte>(entry.payload.begin(), entry.payload.end()));
        }
        position += entry.header.entry_bytes;
    }
    return entries;
}

TEST(ClientBacklog, EntriesGoRoundInOrderWithinTheBudgetAndNoFurther)
{
    std::optional<ClientBacklog> backlog = ClientBacklog::create(kBacklogBytes);
    ASSERT_TRUE(backlog);
    ipc::UniqueFd client = backlog->client_fd();
    ASSERT_TRUE(client);
    const ipc::Mapping view = ipc::map_fd(client.get(), kBacklogBytes, 0, ipc::Access::read_only);
    ASSERT_TRUE(view);
    uint64_t read = 0;
    uint64_t seq = 1;
    uint64_t next_expected = 1;
    // Three laps of the backlog in small and page-sized entries, read as they come.
    for (int round = 0; round < 1200; ++round) {
        const uint32_t bytes = round % 3 == 0 ? 65536 : 300;
        std::vector<std::byte> payload(bytes, std::byte(seq & 0xff));
        ASSERT_TRUE(backlog->append(data_header(seq, bytes), payload));
        ++seq;
        for (const auto& [entry_seq, entry_payload] : read_all(view.bytes(), read, backlog->tail())) {
            ASSERT_EQ(entry_seq, next_expected);
            ASSERT_EQ(entry_payload.size(), (next_expected - 1) % 3 == 0 ? 65536u : 300u);
            ASSERT_EQ(entry_payload.front(), std::byte(entry_seq & 0xff));
            ++next_expected;
        }
        backlog->note_read(read);
    }
    EXPECT_GT(backlog->tail(), 2 * kBacklogBytes) << "the entries did not go round";
    EXPECT_EQ(backlog->used(), 0u);
    // Unread, it fills up: the entry that does not fit is refused and nothing is overwritten.
    const std::vector<std::byte> large(65536, std::byte{7});
    uint64_t appended = 0;
    while (backlog->append(data_header(seq, 65536), large)) {
        ++seq;
        ++appended;
    }
    EXPECT_GT(appended, 100u);
    EXPECT_LE(backlog->used(), kBacklogBytes);
    const uint64_t start = read;
    const auto unread = read_all(view.bytes(), read, backlog->tail());
    EXPECT_EQ(unread.size(), appended);
    EXPECT_EQ(unread.front().first, next_expected) << "the oldest unread entry was overwritten";
    // A report beyond the tail, or backwards, is not believed.
    backlog->note_read(backlog->tail() + 4096);
    EXPECT_EQ(backlog->used(), backlog->tail() - start);
    backlog->note_read(start - 8);
    EXPECT_EQ(backlog->used(), backlog->tail() - start);
}

TEST(ClientBacklog, TheClientsDescriptorCannotWriteIt)
{
    std::optional<ClientBacklog> backlog = ClientBacklog::create(kBacklogBytes);
    ASSERT_TRUE(backlog);
    ipc::UniqueFd client = backlog->client_fd();
    ASSERT_TRUE(client);
    EXPECT_EQ(::mmap(nullptr, kBacklogBytes, PROT_READ | PROT_WRITE, MAP_SHARED, client.get(), 0), MAP_FAILED);
    const char byte = 1;
    EXPECT_EQ(::pwrite(client.get(), &byte, 1, 0), -1);
    EXPECT_NE(::ftruncate(client.get(), 0), 0);
    struct stat status{};
    ASSERT_EQ(::fstat(client.get(), &status), 0);
    EXPECT_EQ(status.st_mode & 077, 0u) << "another user could open it again";
}

class RingIdStoreTest : public ::testing::Test {
protected:
    void SetUp() override
    {
        char folder[] = "/tmp/rcpg-ringid-test-XXXXXX";
        ASSERT_NE(::mkdtemp(folder), nullptr);
        dir_ = folder;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string dir_;
};

TEST_F(RingIdStoreTest, ARingIdIsKeptAndAMissingFileIsZero)
{
    const RingIdStore store(dir_ + "/state", 7);
    auto missing = store.load();
    ASSERT_TRUE(missing.ok()) << missing.status().message();
    EXPECT_EQ(*missing, 0u);
    rcpg::base::Status saved = store.save(41);
    ASSERT_TRUE(saved.ok()) << saved.message();
    EXPECT_EQ(store.path(), dir_ + "/state/ringid_7");
    ASSERT_TRUE(store.load().ok());
    EXPECT_EQ(*store.load(), 41u);
    ASSERT_TRUE(store.save(18446744073709551615ull).ok());
    EXPECT_EQ(*store.load(), 18446744073709551615ull);
    auto other = RingIdStore(dir_ + "/state", 8).load();
    ASSERT_TRUE(other.ok());
    EXPECT_EQ(*other, 0u) << "per node id";
}

TEST_F(RingIdStoreTest, AnythingButOneNumberIsRefusedWithItsFileAndLine)
{
    const RingIdStore store(dir_, 1);
    for (const char* text : {"", "\n", "12x\n", "-3\n", " 12\n", "99999999999999999999999\n", "1\n2\n"}) {
        std::ofstream(store.path(), std::ios::trunc) << text;
        auto loaded = store.load();
        ASSERT_FALSE(loaded.ok()) << "'" << text << "'";
        EXPECT_EQ(loaded.status().code(), rcpg::base::Errc::malformed);
        EXPECT_EQ(loaded.status().context().rfind(store.path() + ":1: ", 0), 0u) << loaded.status().message();
    }
    std::ofstream(store.path(), std::ios::trunc) << std::string(100, '1');
    auto loaded = store.load();
    ASSERT_FALSE(loaded.ok());
    EXPECT_NE(loaded.status().context().find("longer than a ring id"), std::string::npos) << loaded.status().message();
}

}  // namespace
