// Errors of the transport layer: a code the layer above can act on, the sub-layer that
// failed (verbs, rdma_cm, the handshake, the caller's arguments) and a short context
// string for logs. The C edge (libcpg) never sees these; the daemon maps them.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace rcpg::transport {

enum class Errc : uint8_t {
    ok = 0,
    invalid_argument,  // the caller broke a documented precondition
    not_found,         // unknown peer, region, device or remote descriptor
    not_connected,     // the peer has no established connection (or lost it)
    try_again,         // a queue or ring is full now; poll() and retry
    refused,           // the peer or this node refused a connection
    device_error,      // a verbs or rdma_cm call failed
    malformed,         // bytes from another node did not decode
};

// Which layer produced the error, so a log line says where to look.
enum class Layer : uint8_t { api, device, memory, cm, queue_pair, completion, handshake, ring };

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

}  // namespace rcpg::transport
