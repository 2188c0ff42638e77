// The EVS service: what rcpgd does for libevs clients beyond what every client gets.
//
// EVS groups are local state of a handle, as in corosync 1.x (services/evs.c keeps each
// connection's groups and filters at delivery): nothing about them travels through the
// order. An EVS message is one data entry with the EVS group number, sequenced like any
// other (the same total order as CPG's), whose payload names its groups; every EVS client
// reads every EVS entry and its library delivers those of the groups it had joined when
// the entry was sequenced at this node. The daemon keeps each client's groups only to
// tell it where a join or leave takes effect (the ring's next seq) and to show them to
// operators.
#include "daemon/daemon.hpp"

#include "daemon/client_session.hpp"
#include "daemon/daemon_internal.hpp"
#include "daemon/log.hpp"

#include <corosync/corotypes.h>

#include <algorithm>

namespace rcpg::daemon {

void Daemon::send_evs_groups_response(ClientSession& session, ipc::RequestId request, cs_error_t error, uint32_t done)
{
    ipc::EvsGroupsResponse response{};
    response.header = {static_cast<int32_t>(request), sizeof(response), error};
    // Everything with this seq or later is sequenced after the change, here: the client
    // has read nothing of it yet (it reads only what is published, below this).
    response.next_seq = ring_->next_seq();
    response.done = done;
    qb_ipcs_response_send(session.connection, &response, sizeof(response));
}

void Daemon::handle_evs_join(ClientSession& session, const ipc::EvsGroupsRequest& request)
{
    // corosync refuses more than 50 groups in one call; rcpg also bounds what one handle
    // holds, since the daemon keeps the list. Either way nothing is joined.
    if (request.keys.size() > ipc::kEvsMaxGroupsPerJoin ||
        session.evs_groups.size() + request.keys.size() > ipc::kEvsMaxGroupsPerHandle) {
        send_evs_groups_response(session, ipc::RequestId::evs_join, CS_ERR_TOO_MANY_GROUPS, 0);
        return;
    }
    session.evs_groups.insert(session.evs_groups.end(), request.keys.begin(), request.keys.end());
    send_evs_groups_response(session, ipc::RequestId::evs_join, CS_OK, static_cast<uint32_t>(request.keys.size()));
}

void Daemon::handle_evs_leave(ClientSession& session, const ipc::EvsGroupsRequest& request)
{
    // As corosync: each group in turn leaves its first occurrence; the first one not
    // joined ends the call with CS_ERR_NOT_EXIST, and the ones before it stay left.
    uint32_t done = 0;
    for (const ipc::EvsKey& key : request.keys) {
        auto found = std::find(session.evs_groups.begin(), session.evs_groups.end(), key);
        if (found == session.evs_groups.end()) {
            send_evs_groups_response(session, ipc::RequestId::evs_leave, CS_ERR_NOT_EXIST, done);
            return;
        }
        session.evs_groups.erase(found);
        ++done;
    }
    send_evs_groups_response(session, ipc::RequestId::evs_leave, CS_OK, done);
}

void Daemon::handle_view_get(ClientSession& session)
{
    const ordering::View& view = node_->view();
    ipc::ViewResponse response{};
    response.header = {static_cast<int32_t>(ipc::RequestId::view_get),
                       static_cast<int32_t>(sizeof(response) + view.members.size() * sizeof(uint32_t)), CS_OK};
    response.nodeid = options_.nodeid;
    response.ring = {view.ring_nodeid, static_cast<uint32_t>(view.members.size()), view.ring_seq};
    iovec parts[2] = {{&response, sizeof(response)},
                      {const_cast<uint32_t*>(view.members.data()), view.members.size() * sizeof(uint32_t)}};
    qb_ipcs_response_sendv(session.connection, parts, 2);
}

void Daemon::handle_evs_groups(ClientSession& session)
{
    std::vector<ipc::EvsGroupRow> rows;
    for (const auto& [connection, client] : sessions_) {
        if (!client->initialized || !client->evs) {
            continue;
        }
        ipc::EvsGroupRow row{};
        row.pid = static_cast<uint32_t>(client->pid);
        row.first_of_client = 1;
        if (client->evs_groups.empty()) {
            rows.push_back(row);
            continue;
        }
        row.has_key = 1;
        for (const ipc::EvsKey& key : client->evs_groups) {
            std::copy(key.begin(), key.end(), row.key);
            rows.push_back(row);
            row.first_of_client = 0;
        }
    }
    // Cut to what one response holds; `total` says how many there were.
    const size_t fits = (ipc::kIpcMaxMessageBytes - sizeof(ipc::EvsGroupsList)) / sizeof(ipc::EvsGroupRow);
    ipc::EvsGroupsList header{};
    header.total = static_cast<uint32_t>(std::min<size_t>(rows.size(), UINT32_MAX));
    rows.resize(std::min(rows.size(), fits));
    header.count = static_cast<uint32_t>(rows.size());
    header.header = {static_cast<int32_t>(ipc::RequestId::evs_groups),
                     static_cast<int32_t>(sizeof(header) + rows.size() * sizeof(ipc::EvsGroupRow)), CS_OK};
    iovec parts[2] = {{&header, sizeof(header)}, {rows.data(), rows.size() * sizeof(ipc::EvsGroupRow)}};
    qb_ipcs_response_sendv(session.connection, parts, 2);
}

}  // namespace rcpg::daemon
