// Buffers for cpg_zcb_alloc(): blocks of the handle's shared send arena, so that
// cpg_zcb_mcast_joined() only publishes an offset. Power-of-two size classes with free
// lists make alloc and free O(1). A request the arena cannot hold gets ordinary heap
// memory, which cpg_zcb_mcast_joined() then sends by copying.
//
// The table of live buffers is the authority (not a header in the arena, which the
// application can overwrite), so a foreign or twice-freed pointer is always recognised.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace rcpg::libcpg {

class ZcbAllocator {
public:
    struct Buffer {
        uint64_t capacity;      // usable bytes
        bool in_arena;
        uint8_t size_class;     // arena blocks only
    };

    void attach(std::byte* arena, uint64_t region_offset, uint64_t region_bytes);
    ~ZcbAllocator();

    void* allocate(size_t bytes);
    // False when `pointer` is not a live buffer of this allocator.
    bool free(void* pointer);
    // The live buffer starting at `pointer`, or nullptr.
    const Buffer* find(const void* pointer) const;
    // Offset of an arena buffer from the start of the arena.
    uint64_t arena_offset(const void* pointer) const
    {
        return static_cast<uint64_t>(static_cast<const std::byte*>(pointer) - arena_);
    }

    mutable std::mutex mutex;

private:
    static constexpr unsigned kMinClass = 6;   // 64-byte blocks
    static constexpr unsigned kClassCount = 40;

    std::byte* arena_ = nullptr;
    uint64_t bump_ = 0;       // next fresh offset in the region
    uint64_t region_end_ = 0;
    std::vector<uint64_t> free_lists_[kClassCount];
    std::unordered_map<const void*, Buffer> live_;
};

}  // namespace rcpg::libcpg
