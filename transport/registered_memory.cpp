#include "transport/registered_memory.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <utility>

namespace rcpg::transport {

Registration::Registration(Registration&& other) noexcept
    : transport_(std::exchange(other.transport_, nullptr)), region_(other.region_)
{
}

Registration& Registration::operator=(Registration&& other) noexcept
{
    if (this != &other) {
        reset();
        transport_ = std::exchange(other.transport_, nullptr);
        region_ = other.region_;
    }
    return *this;
}

Result<Registration> Registration::create(Transport& transport, void* address, size_t bytes, RegionAccess access)
{
    auto region = transport.register_region(address, bytes, access);
    if (!region) {
        return region.status();
    }
    return Registration(transport, *region);
}

Result<Registration> Registration::adopt(Transport& transport, std::unique_ptr<PreparedRegion> prepared)
{
    auto region = transport.adopt_region(std::move(prepared));
    if (!region) {
        return region.status();
    }
    return Registration(transport, *region);
}

Result<std::unique_ptr<PreparedRegion>> Registration::release()
{
    if (transport_ == nullptr) {
        return std::unique_ptr<PreparedRegion>();
    }
    Transport* transport = std::exchange(transport_, nullptr);
    return transport->release_region(region_);
}

void Registration::reset()
{
    if (transport_ != nullptr) {
        (void)transport_->deregister_region(region_);
        transport_ = nullptr;
    }
}

RegisteredMemory::RegisteredMemory(RegisteredMemory&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      registration_(std::move(other.registration_))
{
}

RegisteredMemory& RegisteredMemory::operator=(RegisteredMemory&& other) noexcept
{
    if (this != &other) {
        reset();
        data_ = std::exchange(other.data_, nullptr);
        bytes_ = std::exchange(other.bytes_, 0);
        registration_ = std::move(other.registration_);
    }
    return *this;
}

Result<RegisteredMemory> RegisteredMemory::create(Transport& transport, size_t bytes, RegionAccess access)
{
    const auto page_bytes = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t rounded = (bytes + page_bytes - 1) / page_bytes * page_bytes;
    void* address = rounded == 0 ? MAP_FAILED
                                 : ::mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (address == MAP_FAILED) {
        return Status{Errc::device_error, Layer::memory, "mmap of " + std::to_string(bytes) + " bytes failed"};
    }
    auto registration = Registration::create(transport, address, rounded, access);
    if (!registration) {
        ::munmap(address, rounded);
        return registration.status();
    }
    return RegisteredMemory(static_cast<std::byte*>(address), rounded, std::move(*registration));
}

void RegisteredMemory::reset()
{
    registration_.reset();
    if (data_ != nullptr) {
        ::munmap(data_, bytes_);
        data_ = nullptr;
        bytes_ = 0;
    }
}

}  // namespace rcpg::transport
