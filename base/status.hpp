// The one error convention of rcpg's C++ layers: a function that can fail returns a
// Status (or a Result<T>, a value or the Status saying why not). A Status carries a code
// the caller can act on (Errc), the layer that failed (the transport's sub-layers, the
// protocol, the configuration, ...) and a short context string for logs: for a
// configuration file, "FILE:LINE: problem". The C edge never sees these: rcpgd answers
// its clients with cs_error_t codes (to_cs_error in daemon/), libcpg with its own.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace rcpg::base {

enum class Errc : uint8_t {
    ok = 0,
    invalid_argument,  // the caller broke a documented precondition
    not_found,         // unknown peer, region, device or remote descriptor
    not_connected,     // the peer has no established connection (or lost it)
    try_again,         // a queue or ring is full now; poll() and retry
    refused,           // the peer or this node refused a connection
    device_error,      // a verbs or rdma_cm call failed
    malformed,         // bytes from another node, or a file, did not decode or check out
    io_error,          // a system call on a file, socket or mapping failed
};

// Which layer produced the error, so a log line says where to look: the caller's
// arguments (api), the transport's sub-layers (device to ring), the ordering protocol,
// the configuration, the daemon's own files and sockets (system).
enum class Layer : uint8_t { api, device, memory, cm, queue_pair, completion, handshake, ring, protocol, config, system };

const char* to_string(Errc code);
const char* to_string(Layer layer);

class [[nodiscard]] Status {
public:
    Status() = default;
    Status(Errc code, Layer layer, std::string context)
        : code_(code), layer_(layer), context_(std::move(context))
    {
    }
    static Status ok_status() { return {}; }

    bool ok() const { return code_ == Errc::ok; }
    explicit operator bool() const { return ok(); }
    Errc code() const { return code_; }
    Layer layer() const { return layer_; }
    const std::string& context() const { return context_; }
    // "cm: refused: unknown node 7" — for logs and test failure messages.
    std::string message() const;
    // The same error, its context preceded by what the caller was doing:
    // "cannot register the ring: " + context.
    Status in(const std::string& what) const { return ok() ? *this : Status{code_, layer_, what + ": " + context_}; }

private:
    Errc code_ = Errc::ok;
    Layer layer_ = Layer::api;
    std::string context_;
};

// Builds a Status for a failed system or verbs call that set errno (or returned it).
Status errno_status(Errc code, Layer layer, const std::string& what, int error_number);

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
    Result(Status status) : value_(std::move(status)) {}  // NOLINT: implicit by design

    bool ok() const { return std::holds_alternative<T>(value_); }
    explicit operator bool() const { return ok(); }
    T& value() & { return std::get<T>(value_); }
    const T& value() const& { return std::get<T>(value_); }
    T&& value() && { return std::get<T>(std::move(value_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    Status status() const { return ok() ? Status{} : std::get<Status>(value_); }

private:
    std::variant<T, Status> value_;
};

}  // namespace rcpg::base
