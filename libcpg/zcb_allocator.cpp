#include "libcpg/zcb_allocator.hpp"

#include <bit>
#include <cstdlib>

namespace rcpg::libcpg {
namespace {

// Arena blocks are aligned like the ring's entries and the heap fallback alike.
constexpr size_t kBufferAlignBytes = 64;

}  // namespace

void ZcbAllocator::attach(std::byte* arena, uint64_t region_offset, uint64_t region_bytes)
{
    arena_ = arena;
    bump_ = region_offset;
    region_end_ = region_offset + region_bytes;
}

ZcbAllocator::~ZcbAllocator()
{
    for (auto& [pointer, buffer] : live_) {
        if (!buffer.in_arena) {
            std::free(const_cast<void*>(pointer));
        }
    }
}

void* ZcbAllocator::allocate(size_t bytes)
{
    const uint64_t block = std::bit_ceil(std::max<uint64_t>(bytes, uint64_t{1} << kMinClass));
    const auto size_class = static_cast<uint8_t>(std::countr_zero(block));
    if (arena_ != nullptr && size_class < kClassCount) {
        uint64_t offset = 0;
        bool found = false;
        if (!free_lists_[size_class].empty()) {
            offset = free_lists_[size_class].back();
            free_lists_[size_class].pop_back();
            found = true;
        } else if (region_end_ - bump_ >= block) {
            offset = bump_;
            bump_ += block;
            found = true;
        }
        if (found) {
            void* pointer = arena_ + offset;
            live_[pointer] = Buffer{block, true, size_class};
            return pointer;
        }
    }
    void* pointer = std::aligned_alloc(kBufferAlignBytes, (std::max<size_t>(bytes, 1) + kBufferAlignBytes - 1) &
                                                              ~(kBufferAlignBytes - 1));
    if (pointer == nullptr) {
        return nullptr;
    }
    live_[pointer] = Buffer{bytes, false, 0};
    return pointer;
}

bool ZcbAllocator::free(void* pointer)
{
    auto found = live_.find(pointer);
    if (found == live_.end()) {
        return false;
    }
    if (found->second.in_arena) {
        free_lists_[found->second.size_class].push_back(arena_offset(pointer));
    } else {
        std::free(pointer);
    }
    live_.erase(found);
    return true;
}

const ZcbAllocator::Buffer* ZcbAllocator::find(const void* pointer) const
{
    auto found = live_.find(pointer);
    return found == live_.end() ? nullptr : &found->second;
}

}  // namespace rcpg::libcpg
