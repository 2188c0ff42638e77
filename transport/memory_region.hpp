// Registered memory. A MemoryRegion pins and registers one range with the protection
// domain; a RegionTable names the registered ranges by RegionId and turns LocalSlices
// into scatter-gather entries with bounds checks. SharedMemory is a memfd mapping
// (MAP_SHARED), the kind the daemon registers while client processes map the same fd.
#pragma once

#include "transport/status.hpp"
#include "transport/transport.hpp"

#include <infiniband/verbs.h>

#include <memory>
#include <optional>
#include <vector>

namespace rcpg::transport {

struct MrDeleter {
    void operator()(ibv_mr* mr) const { ibv_dereg_mr(mr); }
};
using MemoryRegion = std::unique_ptr<ibv_mr, MrDeleter>;

struct MwDeleter {
    void operator()(ibv_mw* window) const { ibv_dealloc_mw(window); }
};
using MemoryWindow = std::unique_ptr<ibv_mw, MwDeleter>;

int access_flags(RegionAccess access);
Result<MemoryRegion> register_memory(ibv_pd* pd, void* addr, size_t bytes, int access);

class RegionTable {
public:
    explicit RegionTable(ibv_pd* pd) : pd_(pd) {}
    Result<RegionId> add(void* addr, size_t bytes, RegionAccess access);
    // Names a region registered already (with this table's protection domain).
    RegionId adopt(MemoryRegion mr);
    // Takes a region out of the table, still registered.
    Result<MemoryRegion> take(RegionId region);
    const ibv_mr* find(RegionId region) const;
    // The scatter-gather entry for `slice`, or an error if it leaves its region.
    Result<ibv_sge> sge(const LocalSlice& slice) const;

private:
    ibv_pd* pd_;
    std::vector<MemoryRegion> regions_;  // index = RegionId.value - 1; null = free
};

// An anonymous shared-memory file (memfd) and one MAP_SHARED mapping of it.
class SharedMemory {
public:
    static Result<SharedMemory> create(const char* name, size_t bytes);
    SharedMemory(SharedMemory&& other) noexcept;
    SharedMemory& operator=(SharedMemory&& other) noexcept;
    ~SharedMemory();

    std::byte* data() const { return data_; }
    size_t bytes() const { return bytes_; }
    int fd() const { return fd_; }
    // Another mapping of the same file, as a second process would map it.
    Result<SharedMemory> map_again() const;

private:
    SharedMemory(int fd, std::byte* data, size_t bytes) : fd_(fd), data_(data), bytes_(bytes) {}
    void reset();
    int fd_ = -1;
    std::byte* data_ = nullptr;
    size_t bytes_ = 0;
};

}  // namespace rcpg::transport
