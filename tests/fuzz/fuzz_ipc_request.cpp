// Fuzzes the daemon's decoder of control requests: whatever bytes a local process sends,
// decode_request() either rejects them or returns a request whose fields are in range.
#include "libcpg/ipc/protocol.hpp"

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    using namespace rcpg::ipc;
    const auto decoded = decode_request({reinterpret_cast<const std::byte*>(data), size});
    if (!decoded) {
        return 0;
    }
    // What the decoder accepts, the daemon uses without further checks: hold it to that.
    if (const auto* group = std::get_if<GroupRequest>(&decoded->body)) {
        if (group->group.length > CPG_MAX_NAME_LENGTH || group->header.size != static_cast<int32_t>(size)) {
            std::abort();
        }
    }
    if (const auto* iteration = std::get_if<IterationRequest>(&decoded->body)) {
        if (iteration->group.length > CPG_MAX_NAME_LENGTH || iteration->iteration_type < 1 ||
            iteration->iteration_type > 3 || iteration->has_group > 1) {
            std::abort();
        }
    }
    if (const auto* bare = std::get_if<BareRequest>(&decoded->body)) {
        const bool bare_id = decoded->id == RequestId::finalize || decoded->id == RequestId::local_get ||
                             decoded->id == RequestId::wake_me || decoded->id == RequestId::status ||
                             decoded->id == RequestId::view_get || decoded->id == RequestId::evs_groups;
        if (!bare_id || size != sizeof(BareRequest) || bare->header.id != static_cast<int32_t>(decoded->id)) {
            std::abort();
        }
    }
    if (const auto* groups = std::get_if<EvsGroupsRequest>(&decoded->body)) {
        const bool evs_id = decoded->id == RequestId::evs_join || decoded->id == RequestId::evs_leave;
        if (!evs_id || size != sizeof(EvsGroupsRequestHeader) + groups->keys.size() * sizeof(EvsKey)) {
            std::abort();
        }
    }
    if (const auto* init = std::get_if<InitRequest>(&decoded->body)) {
        if (init->protocol_version != kProtocolVersion) {
            std::abort();
        }
    }
    return 0;
}
