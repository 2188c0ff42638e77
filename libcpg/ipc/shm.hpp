// RAII owners for file descriptors and memory mappings, and shared-memory files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

namespace rcpg::ipc {

class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept
    {
        if (this != &other) {
            reset(std::exchange(other.fd_, -1));
        }
        return *this;
    }
    ~UniqueFd() { reset(); }

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    int release() { return std::exchange(fd_, -1); }
    void reset(int fd = -1);

private:
    int fd_ = -1;
};

class Mapping {
public:
    Mapping() = default;
    Mapping(void* address, size_t bytes) : address_(address), bytes_(bytes) {}
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    Mapping(Mapping&& other) noexcept
        : address_(std::exchange(other.address_, nullptr)), bytes_(std::exchange(other.bytes_, 0))
    {
    }
    Mapping& operator=(Mapping&& other) noexcept
    {
        if (this != &other) {
            reset();
            address_ = std::exchange(other.address_, nullptr);
            bytes_ = std::exchange(other.bytes_, 0);
        }
        return *this;
    }
    ~Mapping() { reset(); }

    void* get() const { return address_; }
    std::byte* bytes() const { return static_cast<std::byte*>(address_); }
    size_t size() const { return bytes_; }
    explicit operator bool() const { return address_ != nullptr; }
    void reset();

private:
    void* address_ = nullptr;
    size_t bytes_ = 0;
};

enum class Access { read_only, read_write, copy_on_write };

// Maps `bytes` of `fd` from `offset`. Returns an empty mapping and sets errno on failure.
Mapping map_fd(int fd, size_t bytes, size_t offset, Access access);

// A sealed memfd of exactly `bytes`: it can neither shrink nor grow, so whoever maps it
// can never fault on a truncated file. Returns an invalid fd and sets errno on failure.
// With `final` false it takes more seals later (seal_writes), else none.
UniqueFd create_sealed_memfd(const char* name, size_t bytes, bool final = true);

// For a file only its creator writes, once the creator has mapped it writable: nobody
// else may write it, whatever they do with a descriptor of it. No new writable shared
// mapping, write(2), fallocate or size change works on it any more (F_SEAL_FUTURE_WRITE,
// for every holder, the creator included; the creator's mapping stays writable), only
// its owner may open it again (mode 0400, against a reopen through /proc/PID/fd), and the
// seals are final. Requires create_sealed_memfd(..., false). False with errno on failure.
bool seal_writes(int fd);

// A new read-only descriptor of the same file, for handing out read-only access.
UniqueFd reopen_read_only(int fd);

}  // namespace rcpg::ipc
