#include "tests/support/raw_session.hpp"

#include <cstring>
#include <utility>
#include <vector>

namespace rcpg::testing {

RawSession::RawSession(RawSession&& other) noexcept
    : connection(std::exchange(other.connection, nullptr)),
      init(other.init),
      fds(std::move(other.fds)),
      control(std::move(other.control)),
      error(std::move(other.error))
{
}

RawSession::~RawSession()
{
    if (connection != nullptr) {
        qb_ipcc_disconnect(connection);
    }
}

RawSession open_raw_session(const std::string& ipc_name, const std::string& group, uint32_t init_flags)
{
    RawSession session;
    session.connection = qb_ipcc_connect(ipc_name.c_str(), ipc::kIpcMaxMessageBytes);
    if (session.connection == nullptr) {
        session.error = "connect: " + std::string(std::strerror(errno));
        return session;
    }
    ipc::InitRequest request{};
    request.header = {static_cast<int32_t>(ipc::RequestId::init), sizeof(request)};
    request.protocol_version = ipc::kProtocolVersion;
    request.flags = init_flags;
    iovec part{&request, sizeof(request)};
    const ssize_t got = qb_ipcc_sendv_recv(session.connection, &part, 1, &session.init, sizeof(session.init),
                                           kRawReplyTimeoutMs);
    if (got != static_cast<ssize_t>(sizeof(session.init)) || session.init.header.error != CS_OK) {
        session.error = "init: reply of " + std::to_string(got) + " bytes, error " +
                        std::to_string(got > 0 ? session.init.header.error : 0);
        return session;
    }
    ipc::Token token;
    std::memcpy(token.data(), session.init.token, token.size());
    if (const int rc = ipc::receive_client_fds(ipc_name, token, session.fds); rc != 0) {
        session.error = "descriptors: " + std::string(std::strerror(-rc));
        return session;
    }
    session.control = ipc::map_fd(session.fds[ipc::control_fd].get(), session.init.control_bytes, 0,
                                  ipc::Access::read_write);
    if (!session.control) {
        session.error = "map the control block: " + std::string(std::strerror(errno));
        return session;
    }
    if (group.empty()) {
        return session;
    }
    // Joined, so that submissions are not simply dropped as from a non-member.
    ipc::GroupRequest join{};
    join.header = {static_cast<int32_t>(ipc::RequestId::join), sizeof(join)};
    join.group.length = static_cast<uint32_t>(group.size());
    std::memcpy(join.group.value, group.data(), group.size());
    part = {&join, sizeof(join)};
    std::vector<char> reply(4096);
    if (qb_ipcc_sendv_recv(session.connection, &part, 1, reply.data(), reply.size(), kRawReplyTimeoutMs) <= 0) {
        session.error = "join: no reply";
    }
    return session;
}

}  // namespace rcpg::testing
