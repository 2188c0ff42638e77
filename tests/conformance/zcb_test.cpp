// Zero-copy buffers: cpg_zcb_alloc / cpg_zcb_free (200000 pairs with up to 2000 live
// buffers, all OK), cpg_zcb_mcast_joined (content, lengths 0 .. several MiB, the buffer
// reusable as soon as the call returns), and rcpg's documented errors: INVALID_PARAM for
// a foreign, interior, freed or other handle's pointer and for a length beyond the
// buffer, NOT_EXIST when not joined, BAD_HANDLE after finalize.
#include "tests/conformance/conformance.hpp"

#include <cstdlib>
#include <deque>
#include <set>

namespace rcpg::conformance {
namespace {

using Zcb = Conformance;

void fill(void* buffer, size_t size, uint32_t seed)
{
    auto* bytes = static_cast<unsigned char*>(buffer);
    for (size_t i = 0; i < size; ++i) {
        bytes[i] = static_cast<unsigned char>(((i + seed) * 2654435761u) >> 24);
    }
}

std::string filled(size_t size, uint32_t seed)
{
    std::string out(size, '\0');
    fill(out.data(), size, seed);
    return out;
}

TEST_F(Zcb, AllocAndFree200000PairsWithUpTo2000Live)
{
    Client client;
    ASSERT_TRUE(client.ok());
    std::deque<void*> live;
    size_t failures = 0;
    for (uint32_t i = 0; i < 200000; ++i) {
        const size_t size = 1 + (i * 7919u) % 4096;
        void* buffer = nullptr;
        if (cpg_zcb_alloc(client.handle, size, &buffer) != CS_OK || buffer == nullptr) {
            ++failures;
            continue;
        }
        static_cast<char*>(buffer)[0] = 1;
        static_cast<char*>(buffer)[size - 1] = 2;
        live.push_back(buffer);
        if (live.size() == 2000 || (i % 3 == 0 && !live.empty())) {
            // Mostly oldest-first, sometimes newest-first.
            void* victim = (i % 5 == 0) ? live.back() : live.front();
            if (i % 5 == 0) {
                live.pop_back();
            } else {
                live.pop_front();
            }
            if (cpg_zcb_free(client.handle, victim) != CS_OK) {
                ++failures;
            }
        }
    }
    EXPECT_EQ(failures, 0u);
    for (void* buffer : live) {
        EXPECT_EQ(cpg_zcb_free(client.handle, buffer), CS_OK);
    }
}

TEST_F(Zcb, LiveBuffersAreDistinctAndDoNotOverlap)
{
    Client client;
    ASSERT_TRUE(client.ok());
    std::vector<std::pair<char*, size_t>> buffers;
    for (size_t i = 0; i < 2000; ++i) {
        const size_t size = 1 + (i * 131) % 9000;
        void* buffer = nullptr;
        ASSERT_EQ(cpg_zcb_alloc(client.handle, size, &buffer), CS_OK);
        buffers.emplace_back(static_cast<char*>(buffer), size);
        std::memset(buffer, static_cast<int>(i & 0xff), size);
    }
    for (size_t i = 0; i < buffers.size(); ++i) {
        const auto [pointer, size] = buffers[i];
        for (size_t b = 0; b < size; ++b) {
            ASSERT_EQ(static_cast<unsigned char>(pointer[b]), i & 0xff) << "buffer " << i << " overwritten";
        }
    }
    for (auto [pointer, size] : buffers) {
        EXPECT_EQ(cpg_zcb_free(client.handle, pointer), CS_OK);
    }
}

TEST_F(Zcb, McastJoinedDeliversTheBufferContent)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("zcb-content"), CS_OK);
    const std::vector<size_t> sizes = {1, 100, 4096, 65536, 1048576};
    for (size_t i = 0; i < sizes.size(); ++i) {
        void* buffer = nullptr;
        ASSERT_EQ(cpg_zcb_alloc(client.handle, sizes[i], &buffer), CS_OK);
        fill(buffer, sizes[i], static_cast<uint32_t>(i));
        ASSERT_EQ(cpg_zcb_mcast_joined(client.handle, CPG_TYPE_AGREED, buffer, sizes[i]), CS_OK) << sizes[i];
        ASSERT_EQ(cpg_zcb_free(client.handle, buffer), CS_OK);
    }
    ASSERT_TRUE(client.pump_until_count(Event::message, sizes.size()));
    const auto messages = client.rec.of(Event::message);
    for (size_t i = 0; i < sizes.size(); ++i) {
        EXPECT_EQ(messages[i]->body.size(), sizes[i]);
        EXPECT_TRUE(messages[i]->body == filled(sizes[i], static_cast<uint32_t>(i))) << "size " << sizes[i];
        EXPECT_EQ(messages[i]->pid, self_pid());
    }
}

TEST_F(Zcb, PartOfABufferMayBeSent)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("zcb-part"), CS_OK);
    void* buffer = nullptr;
    ASSERT_EQ(cpg_zcb_alloc(client.handle, 1000, &buffer), CS_OK);
    fill(buffer, 1000, 3);
    ASSERT_EQ(cpg_zcb_mcast_joined(client.handle, CPG_TYPE_AGREED, buffer, 10), CS_OK);
    ASSERT_TRUE(client.pump_until_count(Event::message, 1));
    EXPECT_EQ(client.rec.of(Event::message)[0]->body, filled(1000, 3).substr(0, 10));
    EXPECT_EQ(cpg_zcb_free(client.handle, buffer), CS_OK);
}

TEST_F(Zcb, BufferIsReusableAsSoonAsTheCallReturns)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("zcb-reuse"), CS_OK);
    const std::vector<size_t> sizes = {64, 8192, 1048576, 2 * 1048576 + 3};
    std::vector<std::string> expected;
    for (size_t size : sizes) {
        void* buffer = nullptr;
        ASSERT_EQ(cpg_zcb_alloc(client.handle, size, &buffer), CS_OK);
        for (uint32_t round = 0; round < 4; ++round) {
            fill(buffer, size, round);
            ASSERT_EQ(cpg_zcb_mcast_joined(client.handle, CPG_TYPE_AGREED, buffer, size), CS_OK) << size;
            expected.push_back(filled(size, round));
            // Changed right after the call: what was delivered must be the old content.
            std::memset(buffer, 0xee, size);
        }
        ASSERT_EQ(cpg_zcb_free(client.handle, buffer), CS_OK);
    }
    ASSERT_TRUE(client.pump_until_count(Event::message, expected.size()));
    const auto messages = client.rec.of(Event::message);
    ASSERT_EQ(messages.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
        EXPECT_TRUE(messages[i]->body == expected[i]) << "message " << i << " of " << expected[i].size() << " bytes";
    }
}

TEST_F(Zcb, FreeingRightAfterSendingKeepsTheMessage)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("zcb-free-after"), CS_OK);
    for (uint32_t i = 0; i < 50; ++i) {
        void* buffer = nullptr;
        ASSERT_EQ(cpg_zcb_alloc(client.handle, 5000, &buffer), CS_OK);
        fill(buffer, 5000, i);
        ASSERT_EQ(cpg_zcb_mcast_joined(client.handle, CPG_TYPE_AGREED, buffer, 5000), CS_OK);
        ASSERT_EQ(cpg_zcb_free(client.handle, buffer), CS_OK);
        // The next allocation may reuse the same block at once.
        void* next = nullptr;
        ASSERT_EQ(cpg_zcb_alloc(client.handle, 5000, &next), CS_OK);
        std::memset(next, 0, 5000);
        ASSERT_EQ(cpg_zcb_free(client.handle, next), CS_OK);
    }
    ASSERT_TRUE(client.pump_until_count(Event::message, 50));
    const auto messages = client.rec.of(Event::message);
    for (uint32_t i = 0; i < 50; ++i) {
        EXPECT_TRUE(messages[i]->body == filled(5000, i)) << i;
    }
}

TEST_F(Zcb, LengthZeroIsDelivered)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("zcb-zero"), CS_OK);
    void* buffer = nullptr;
    ASSERT_EQ(cpg_zcb_alloc(client.handle, 0, &buffer), CS_OK);
    EXPECT_NE(buffer, nullptr);
    ASSERT_EQ(cpg_zcb_mcast_joined(client.handle, CPG_TYPE_AGREED, buffer, 0), CS_OK);
    void* other = nullptr;
    ASSERT_EQ(cpg_zcb_alloc(client.handle, 100, &other), CS_OK);
    ASSERT_EQ(cpg_zcb_mcast_joined(client.handle, CPG_TYPE_AGREED, other, 0), CS_OK);
    ASSERT_TRUE(client.pump_until_count(Event::message, 2));
    EXPECT_EQ(client.rec.bodies(), (std::vector<std::string>{"", ""}));
    EXPECT_EQ(cpg_zcb_free(client.handle, buffer), CS_OK);
    EXPECT_EQ(cpg_zcb_free(client.handle, other), CS_OK);
}

TEST_F(Zcb, FreeOfAForeignPointerGivesInvalidParam)
{
    Client client;
    ASSERT_TRUE(client.ok());
    void* heap = std::malloc(256);
    EXPECT_EQ(cpg_zcb_free(client.handle, heap), CS_ERR_INVALID_PARAM);
    std::free(heap);
    int on_stack = 0;
    EXPECT_EQ(cpg_zcb_free(client.handle, &on_stack), CS_ERR_INVALID_PARAM);
    void* buffer = nullptr;
    ASSERT_EQ(cpg_zcb_alloc(client.handle, 256, &buffer), CS_OK);
    EXPECT_EQ(cpg_zcb_free(client.handle, static_cast<char*>(buffer) + 8), CS_ERR_INVALID_PARAM) << "interior";
    EXPECT_EQ(cpg_zcb_free(client.handle, buffer), CS_OK);
}

TEST_F(Zcb, DoubleFreeGivesInvalidParam)
{
    Client client;
    ASSERT_TRUE(client.ok());
    void* buffer = nullptr;
    ASSERT_EQ(cpg_zcb_alloc(client.handle, 100, &buffer), CS_OK);
    EXPECT_EQ(cpg_zcb_free(client.handle, buffer), CS_OK);
    EXPECT_EQ(cpg_zcb_free(client.handle, buffer), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_zcb_free(client.handle, buffer), CS_ERR_INVALID_PARAM);
    // A heap-backed (larger than the arena) buffer too.
    void* huge = nullptr;
    ASSERT_EQ(cpg_zcb_alloc(client.handle, 64u << 20, &huge), CS_OK);
    EXPECT_EQ(cpg_zcb_free(client.handle, huge), CS_OK);
    EXPECT_EQ(cpg_zcb_free(client.handle, huge), CS_ERR_INVALID_PARAM);
}

TEST_F(Zcb, McastOfAForeignPointerGivesInvalidParam)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("zcb-foreign"), CS_OK);
    std::vector<char> heap(256, 'h');
    EXPECT_EQ(cpg_zcb_mcast_joined(client.handle, CPG_TYPE_AGREED, heap.data(), heap.size()), CS_ERR_INVALID_PARAM);
    void* buffer = nullptr;
    ASSERT_EQ(cpg_zcb_alloc(client.handle, 256, &buffer), CS_OK);
    EXPECT_EQ(cpg_zcb_mcast_joined(client.handle, CPG_TYPE_AGREED, static_cast<char*>(buffer) + 16, 16),
              CS_ERR_INVALID_PARAM)
        << "interior pointer";
    EXPECT_EQ(cpg_zcb_mcast_joined(client.handle, CPG_TYPE_AGREED, buffer, 100000), CS_ERR_INVALID_PARAM)
        << "length beyond the buffer";
    ASSERT_EQ(cpg_zcb_free(client.handle, buffer), CS_OK);
    EXPECT_EQ(cpg_zcb_mcast_joined(client.handle, CPG_TYPE_AGREED, buffer, 16), CS_ERR_INVALID_PARAM)
        << "freed buffer";
    client.pump_for(50);
    EXPECT_EQ(client.rec.count(Event::message), 0u);
}

TEST_F(Zcb, McastWhenNotJoinedGivesNotExist)
{
    Client client;
    ASSERT_TRUE(client.ok());
    void* buffer = nullptr;
    ASSERT_EQ(cpg_zcb_alloc(client.handle, 64, &buffer), CS_OK);
    fill(buffer, 64, 1);
    EXPECT_EQ(cpg_zcb_mcast_joined(client.handle, CPG_TYPE_AGREED, buffer, 64), CS_ERR_NOT_EXIST);
    EXPECT_EQ(cpg_zcb_mcast_joined(client.handle, CPG_TYPE_AGREED, buffer, 0), CS_ERR_NOT_EXIST);
    ASSERT_EQ(client.join("zcb-joined-later"), CS_OK);
    EXPECT_EQ(cpg_zcb_mcast_joined(client.handle, CPG_TYPE_AGREED, buffer, 64), CS_OK);
    ASSERT_EQ(client.leave("zcb-joined-later"), CS_OK);
    EXPECT_EQ(cpg_zcb_mcast_joined(client.handle, CPG_TYPE_AGREED, buffer, 64), CS_ERR_NOT_EXIST) << "after leave";
    ASSERT_TRUE(client.pump_until_count(Event::confchg, 2));
    EXPECT_EQ(client.rec.count(Event::message), 1u);
    EXPECT_EQ(cpg_zcb_free(client.handle, buffer), CS_OK);
}

TEST_F(Zcb, BuffersBelongToTheHandleThatAllocatedThem)
{
    Client a;
    Client b;
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a.join("zcb-a"), CS_OK);
    ASSERT_EQ(b.join("zcb-b"), CS_OK);
    void* of_a = nullptr;
    void* of_b = nullptr;
    ASSERT_EQ(cpg_zcb_alloc(a.handle, 512, &of_a), CS_OK);
    ASSERT_EQ(cpg_zcb_alloc(b.handle, 512, &of_b), CS_OK);
    EXPECT_NE(of_a, of_b);
    fill(of_a, 512, 10);
    fill(of_b, 512, 20);
    EXPECT_EQ(cpg_zcb_free(b.handle, of_a), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_zcb_mcast_joined(b.handle, CPG_TYPE_AGREED, of_a, 512), CS_ERR_INVALID_PARAM);
    EXPECT_EQ(cpg_zcb_mcast_joined(a.handle, CPG_TYPE_AGREED, of_a, 512), CS_OK);
    EXPECT_EQ(cpg_zcb_mcast_joined(b.handle, CPG_TYPE_AGREED, of_b, 512), CS_OK);
    ASSERT_TRUE(a.pump_until_count(Event::message, 1));
    ASSERT_TRUE(b.pump_until_count(Event::message, 1));
    EXPECT_TRUE(a.rec.of(Event::message)[0]->body == filled(512, 10));
    EXPECT_TRUE(b.rec.of(Event::message)[0]->body == filled(512, 20));
    EXPECT_EQ(cpg_zcb_free(a.handle, of_a), CS_OK);
    EXPECT_EQ(cpg_zcb_free(b.handle, of_b), CS_OK);
}

TEST_F(Zcb, BufferLargerThanTheArenaStillWorks)
{
    Client client;
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("zcb-huge"), CS_OK);
    const size_t size = 25u << 20;
    void* buffer = nullptr;
    ASSERT_EQ(cpg_zcb_alloc(client.handle, size, &buffer), CS_OK);
    fill(buffer, size, 77);
    ASSERT_EQ(cpg_zcb_mcast_joined(client.handle, CPG_TYPE_AGREED, buffer, size), CS_OK);
    ASSERT_EQ(cpg_zcb_free(client.handle, buffer), CS_OK);
    ASSERT_TRUE(client.pump_until_count(Event::message, 1, kEventTimeout));
    EXPECT_EQ(client.rec.of(Event::message)[0]->body.size(), size);
    EXPECT_TRUE(client.rec.of(Event::message)[0]->body == filled(size, 77));
}

TEST_F(Zcb, FinalizeWithLiveBuffersAndAllocAfterFinalize)
{
    Client client;
    ASSERT_TRUE(client.ok());
    std::vector<void*> buffers(10);
    for (auto& buffer : buffers) {
        ASSERT_EQ(cpg_zcb_alloc(client.handle, 1024, &buffer), CS_OK);
    }
    const cpg_handle_t handle = client.handle;
    EXPECT_EQ(client.finalize(), CS_OK);
    void* after = nullptr;
    EXPECT_EQ(cpg_zcb_alloc(handle, 16, &after), CS_ERR_BAD_HANDLE);
    EXPECT_EQ(cpg_zcb_free(handle, buffers[0]), CS_ERR_BAD_HANDLE);
    // A new handle works normally.
    Client fresh;
    ASSERT_TRUE(fresh.ok());
    void* buffer = nullptr;
    ASSERT_EQ(cpg_zcb_alloc(fresh.handle, 1024, &buffer), CS_OK);
    EXPECT_EQ(cpg_zcb_free(fresh.handle, buffer), CS_OK);
}

}  // namespace
}  // namespace rcpg::conformance
