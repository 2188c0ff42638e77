// Memory registered with a transport, released in the right order: the registration
// goes before the memory it names, so the device can never be left holding pages that
// were unmapped or reused.
//
// RegisteredMemory owns both (page-aligned private memory: rings, credit words,
// staging, shadows). Registration owns only the registration of memory that lives
// elsewhere (a shared delivery-ring mapping, a client's arena).
#pragma once

#include "transport/transport.hpp"

#include <cstddef>
#include <cstdint>

namespace rcpg::transport {

class Registration {
public:
    Registration() = default;
    Registration(Transport& transport, RegionId region) : transport_(&transport), region_(region) {}
    Registration(Registration&& other) noexcept;
    Registration& operator=(Registration&& other) noexcept;
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    ~Registration() { reset(); }

    // Registers [address, address + bytes); the caller keeps the memory alive longer.
    static Result<Registration> create(Transport& transport, void* address, size_t bytes, RegionAccess access);
    // Names what transport.prepare_region prepared (on the transport's thread).
    static Result<Registration> adopt(Transport& transport, std::unique_ptr<PreparedRegion> prepared);

    void reset();
    // Gives the region up without unpinning it here: see Transport::release_region.
    Result<std::unique_ptr<PreparedRegion>> release();
    RegionId id() const { return region_; }
    explicit operator bool() const { return transport_ != nullptr; }

private:
    Transport* transport_ = nullptr;
    RegionId region_;
};

class RegisteredMemory {
public:
    RegisteredMemory() = default;
    RegisteredMemory(RegisteredMemory&& other) noexcept;
    RegisteredMemory& operator=(RegisteredMemory&& other) noexcept;
    RegisteredMemory(const RegisteredMemory&) = delete;
    RegisteredMemory& operator=(const RegisteredMemory&) = delete;
    ~RegisteredMemory() { reset(); }

    // Zero-filled private memory of at least `bytes` (rounded up to whole pages).
    static Result<RegisteredMemory> create(Transport& transport, size_t bytes, RegionAccess access);

    void reset();
    std::byte* data() const { return data_; }
    size_t size() const { return bytes_; }
    RegionId region() const { return registration_.id(); }
    LocalSlice slice(uint64_t offset, uint32_t bytes) const { return {region(), offset, bytes}; }
    explicit operator bool() const { return data_ != nullptr; }

private:
    RegisteredMemory(std::byte* data, size_t bytes, Registration registration)
        : data_(data), bytes_(bytes), registration_(std::move(registration))
    {
    }
    std::byte* data_ = nullptr;
    size_t bytes_ = 0;
    Registration registration_;
};

}  // namespace rcpg::transport
