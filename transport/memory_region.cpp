#include "transport/memory_region.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

namespace rcpg::transport {

int access_flags(RegionAccess access)
{
    // Local write is needed for read destinations and receive buffers, and is what
    // rdma-core requires alongside remote write. No IBV_ACCESS_RELAXED_ORDERING: the tail
    // commit relies on writes of one queue pair landing in order (transport/NOTES.md).
    switch (access) {
    case RegionAccess::local: return IBV_ACCESS_LOCAL_WRITE;
    case RegionAccess::remote_write: return IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE;
    case RegionAccess::remote_read: return IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ;
    case RegionAccess::remote_read_write:
        return IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
    }
    return IBV_ACCESS_LOCAL_WRITE;
}

Result<MemoryRegion> register_memory(ibv_pd* pd, void* addr, size_t bytes, int access)
{
    if (addr == nullptr || bytes == 0) {
        return Status{Errc::invalid_argument, Layer::memory, "register: empty range"};
    }
    ibv_mr* mr = ibv_reg_mr(pd, addr, bytes, access);
    if (mr == nullptr) {
        return errno_status(Errc::device_error, Layer::memory, "ibv_reg_mr of " + std::to_string(bytes) + " bytes", errno);
    }
    return MemoryRegion(mr);
}

Result<RegionId> RegionTable::add(void* addr, size_t bytes, RegionAccess access)
{
    auto mr = register_memory(pd_, addr, bytes, access_flags(access));
    if (!mr) {
        return mr.status();
    }
    return adopt(std::move(mr).value());
}

RegionId RegionTable::adopt(MemoryRegion mr)
{
    for (size_t i = 0; i < regions_.size(); ++i) {
        if (!regions_[i]) {
            regions_[i] = std::move(mr);
            return RegionId{static_cast<uint32_t>(i + 1)};
        }
    }
    regions_.push_back(std::move(mr));
    return RegionId{static_cast<uint32_t>(regions_.size())};
}

Result<MemoryRegion> RegionTable::take(RegionId region)
{
    if (find(region) == nullptr) {
        return Status{Errc::not_found, Layer::memory, "no region " + std::to_string(region.value)};
    }
    return std::move(regions_[region.value - 1]);
}

const ibv_mr* RegionTable::find(RegionId region) const
{
    if (region.value == 0 || region.value > regions_.size()) {
        return nullptr;
    }
    return regions_[region.value - 1].get();
}

Result<ibv_sge> RegionTable::sge(const LocalSlice& slice) const
{
    const ibv_mr* mr = find(slice.region);
    if (mr == nullptr) {
        return Status{Errc::not_found, Layer::memory, "no region " + std::to_string(slice.region.value)};
    }
    if (slice.offset > mr->length || slice.bytes > mr->length - slice.offset) {
        return Status{Errc::invalid_argument, Layer::memory, "slice leaves region " + std::to_string(slice.region.value)};
    }
    return ibv_sge{reinterpret_cast<uint64_t>(mr->addr) + slice.offset, slice.bytes, mr->lkey};
}

Result<SharedMemory> SharedMemory::create(const char* name, size_t bytes)
{
    const int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) {
        return errno_status(Errc::device_error, Layer::memory, "memfd_create", errno);
    }
    if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
        const int error = errno;
        close(fd);
        return errno_status(Errc::device_error, Layer::memory, "ftruncate memfd", error);
    }
    void* data = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (data == MAP_FAILED) {
        const int error = errno;
        close(fd);
        return errno_status(Errc::device_error, Layer::memory, "mmap memfd", error);
    }
    return SharedMemory(fd, static_cast<std::byte*>(data), bytes);
}

Result<SharedMemory> SharedMemory::map_again() const
{
    const int fd = dup(fd_);
    if (fd < 0) {
        return errno_status(Errc::device_error, Layer::memory, "dup memfd", errno);
    }
    void* data = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (data == MAP_FAILED) {
        const int error = errno;
        close(fd);
        return errno_status(Errc::device_error, Layer::memory, "mmap memfd again", error);
    }
    return SharedMemory(fd, static_cast<std::byte*>(data), bytes_);
}

SharedMemory::SharedMemory(SharedMemory&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0))
{
}

SharedMemory& SharedMemory::operator=(SharedMemory&& other) noexcept
{
    if (this != &other) {
        reset();
        fd_ = std::exchange(other.fd_, -1);
        data_ = std::exchange(other.data_, nullptr);
        bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
}

SharedMemory::~SharedMemory() { reset(); }

void SharedMemory::reset()
{
    if (data_ != nullptr) {
        munmap(data_, bytes_);
        data_ = nullptr;
    }
    if (fd_ >= 0) {
        close(fd_);
        fd_ = -1;
    }
}

}  // namespace rcpg::transport
