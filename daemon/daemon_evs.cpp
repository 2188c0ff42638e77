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

#include "delivery/evs_payload.hpp"
#include "delivery/ring_entry.hpp"

#include <algorithm>
#include <cstring>

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

// The most group keys of one message the daemon compares with a client's groups; a
// message naming more is taken as one of its (more room in its backlog, or a wake-up
// its library finds nothing for, never less).
constexpr uint32_t kEvsKeysCompared = 64;
// The most entries a wake-up decision reads; beyond, the client is woken.
constexpr int kEvsWakeWalkEntries = 256;

// Whether the EVS entry at `position` may be one `session`'s library delivers: one of its
// groups is joined now, or was left after the entry was sequenced here. A superset of what
// the library delivers (which also holds a join back to its seq): what the daemon wakes a
// client for and keeps for it in its backlog. A client with no groups gets no messages.
bool Daemon::evs_entry_wanted(ClientSession& session, uint64_t position, std::span<const std::byte> payload)
{
    if (session.evs_joined.empty() && session.evs_left.empty()) {
        return false;
    }
    const std::optional<delivery::EvsPayload> parts = delivery::check_evs_payload(payload);
    if (!parts) {
        return false;  // for nobody
    }
    if (parts->group_count > kEvsKeysCompared) {
        return true;
    }
    // What it has read past a leave it will not read again.
    const uint64_t read = std::max(session.consumed_high, session.moved_to);
    std::erase_if(session.evs_left, [read](const auto& left) { return left.second <= read; });
    for (uint32_t i = 0; i < parts->group_count; ++i) {
        ipc::EvsKey key;
        std::memcpy(key.data(), parts->keys.data() + size_t{i} * key.size(), key.size());
        if (session.evs_joined.contains(key)) {
            return true;
        }
        for (const auto& [left, until] : session.evs_left) {
            if (left == key && position < until) {
                return true;
            }
        }
    }
    return false;
}

// Whether an EVS client waiting from ring position `from` has a message of its groups
// among the published entries from there (read from the node's own ring, which it
// checked). A walk that cannot tell (too long, or over entries already reused) wakes it.
bool Daemon::evs_wake_due(ClientSession& session, uint64_t from)
{
    const uint64_t tail = ring_->published_tail();
    uint64_t position = std::max(from, session.moved_to);
    for (int walked = 0; position < tail; ++walked) {
        delivery::RingEntry entry{};
        if (walked == kEvsWakeWalkEntries ||
            delivery::read_entry(ring_->data(), ring_->data_bytes(), position, tail, entry) != delivery::RingStep::entry) {
            return true;
        }
        if (entry.header.kind == delivery::EntryKind::data && entry.header.group_id == delivery::kEvsGroupId &&
            evs_entry_wanted(session, position, entry.payload)) {
            return true;
        }
        position += entry.header.entry_bytes;
    }
    return false;
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
    for (const ipc::EvsKey& key : request.keys) {
        ++session.evs_joined[key];
    }
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
        if (--session.evs_joined[key] == 0) {
            session.evs_joined.erase(key);
        }
        // Its entries sequenced so far may be unread: they stay the client's.
        session.evs_left.emplace_back(key, ring_->unpublished_tail());
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
    // Rows up to what one response holds (built no further: anyone allowed to connect may
    // ask, and clients may hold many groups); `total` says how many there are.
    const size_t fits = (ipc::kIpcMaxMessageBytes - sizeof(ipc::EvsGroupsList)) / sizeof(ipc::EvsGroupRow);
    std::vector<ipc::EvsGroupRow> rows;
    uint64_t total = 0;
    const auto add = [&](const ipc::EvsGroupRow& row) {
        ++total;
        if (rows.size() < fits) {
            rows.push_back(row);
        }
    };
    for (const auto& [connection, client] : sessions_) {
        if (!client->initialized || !client->evs) {
            continue;
        }
        ipc::EvsGroupRow row{};
        row.pid = static_cast<uint32_t>(client->pid);
        row.first_of_client = 1;
        if (client->evs_groups.empty()) {
            add(row);
            continue;
        }
        if (rows.size() >= fits) {
            total += client->evs_groups.size();  // counted, not built
            continue;
        }
        row.has_key = 1;
        for (const ipc::EvsKey& key : client->evs_groups) {
            std::copy(key.begin(), key.end(), row.key);
            add(row);
            row.first_of_client = 0;
        }
    }
    ipc::EvsGroupsList header{};
    header.total = static_cast<uint32_t>(std::min<uint64_t>(total, UINT32_MAX));
    header.count = static_cast<uint32_t>(rows.size());
    header.header = {static_cast<int32_t>(ipc::RequestId::evs_groups),
                     static_cast<int32_t>(sizeof(header) + rows.size() * sizeof(ipc::EvsGroupRow)), CS_OK};
    iovec parts[2] = {{&header, sizeof(header)}, {rows.data(), rows.size() * sizeof(ipc::EvsGroupRow)}};
    qb_ipcs_response_sendv(session.connection, parts, 2);
}

}  // namespace rcpg::daemon
