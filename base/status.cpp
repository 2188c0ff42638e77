#include "base/status.hpp"

#include <cstring>

namespace rcpg::base {

const char* to_string(Errc code)
{
    switch (code) {
    case Errc::ok: return "ok";
    case Errc::invalid_argument: return "invalid argument";
    case Errc::not_found: return "not found";
    case Errc::not_connected: return "not connected";
    case Errc::try_again: return "try again";
    case Errc::refused: return "refused";
    case Errc::device_error: return "device error";
    case Errc::malformed: return "malformed";
    case Errc::io_error: return "i/o error";
    }
    return "?";
}

const char* to_string(Layer layer)
{
    switch (layer) {
    case Layer::api: return "api";
    case Layer::device: return "device";
    case Layer::memory: return "memory";
    case Layer::cm: return "cm";
    case Layer::queue_pair: return "queue_pair";
    case Layer::completion: return "completion";
    case Layer::handshake: return "handshake";
    case Layer::ring: return "ring";
    case Layer::protocol: return "protocol";
    case Layer::config: return "config";
    case Layer::system: return "system";
    }
    return "?";
}

std::string Status::message() const
{
    if (ok()) {
        return "ok";
    }
    std::string text = to_string(layer_);
    text += ": ";
    text += to_string(code_);
    if (!context_.empty()) {
        text += ": ";
        text += context_;
    }
    return text;
}

Status errno_status(Errc code, Layer layer, const std::string& what, int error_number)
{
    return {code, layer, what + ": " + std::strerror(error_number)};
}

}  // namespace rcpg::base
