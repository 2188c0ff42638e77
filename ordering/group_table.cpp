#include "ordering/group_table.hpp"

#include <algorithm>

namespace rcpg::ordering {

JoinCheck GroupTable::check_join(const GroupName& group, ProcessId process) const
{
    return is_member(group, process) ? JoinCheck::already_member : JoinCheck::allowed;
}

bool GroupTable::is_member(const GroupName& group, ProcessId process) const
{
    auto found = groups_.find(group);
    return found != groups_.end() && found->second.members.contains(process);
}

uint32_t GroupTable::allocate_id()
{
    // Data entries and clients tell groups apart by id, so a new group never gets a live
    // group's id: ids wrap after 2^32 - 1, and a snapshot may name a live id as the next.
    // Every node applies this same rule to the same history, so all agree on the id. The
    // EVS number is never a CPG group's (delivery::kEvsGroupId).
    while (next_group_id_ == 0 || next_group_id_ == delivery::kEvsGroupId || names_by_id_.contains(next_group_id_)) {
        ++next_group_id_;
    }
    return next_group_id_++;
}

GroupChange GroupTable::join(const GroupName& group, ProcessId process)
{
    auto [it, created] = groups_.try_emplace(group);
    if (created) {
        it->second.id = allocate_id();
        names_by_id_[it->second.id] = group;
    }
    it->second.members.insert(process);
    GroupChange change;
    change.group_id = it->second.id;
    change.name = group;
    change.joined.push_back({process.nodeid, process.pid, delivery::reason_join});
    change.members = to_addresses(it->second.members);
    return change;
}

std::optional<GroupChange> GroupTable::remove(const GroupName& group,
                                              const std::vector<ProcessId>& processes,
                                              delivery::Reason reason)
{
    auto found = groups_.find(group);
    if (found == groups_.end()) {
        return std::nullopt;
    }
    GroupChange change;
    change.group_id = found->second.id;
    change.name = group;
    for (ProcessId process : processes) {
        if (found->second.members.erase(process) != 0) {
            change.left.push_back({process.nodeid, process.pid, static_cast<uint32_t>(reason)});
        }
    }
    if (change.left.empty()) {
        return std::nullopt;
    }
    change.members = to_addresses(found->second.members);
    if (found->second.members.empty()) {
        names_by_id_.erase(found->second.id);
        groups_.erase(found);
    }
    return change;
}

std::vector<delivery::MemberAddress> GroupTable::members(const GroupName& group) const
{
    auto found = groups_.find(group);
    return found == groups_.end() ? std::vector<delivery::MemberAddress>{} : to_addresses(found->second.members);
}

std::optional<uint32_t> GroupTable::group_id(const GroupName& group) const
{
    auto found = groups_.find(group);
    if (found == groups_.end()) {
        return std::nullopt;
    }
    return found->second.id;
}

const GroupName* GroupTable::name_of(uint32_t group_id) const
{
    auto found = names_by_id_.find(group_id);
    return found == names_by_id_.end() ? nullptr : &found->second;
}

std::vector<std::pair<GroupName, std::vector<ProcessId>>> GroupTable::processes_of_node(uint32_t nodeid) const
{
    return processes_of_nodes({&nodeid, 1});
}

std::vector<std::pair<GroupName, std::vector<ProcessId>>> GroupTable::processes_of_nodes(
    std::span<const uint32_t> nodeids) const
{
    std::vector<std::pair<GroupName, std::vector<ProcessId>>> result;
    for (const auto& [name, group] : groups_) {
        std::vector<ProcessId> processes;
        for (const ProcessId& process : group.members) {
            if (std::find(nodeids.begin(), nodeids.end(), process.nodeid) != nodeids.end()) {
                processes.push_back(process);
            }
        }
        if (!processes.empty()) {
            result.emplace_back(name, std::move(processes));
        }
    }
    return result;
}

GroupTable::Snapshot GroupTable::snapshot() const
{
    Snapshot result;
    result.next_group_id = next_group_id_;
    for (const auto& [name, group] : groups_) {
        result.groups.push_back({group.id, name, {group.members.begin(), group.members.end()}});
    }
    return result;
}

bool GroupTable::restore(const Snapshot& snapshot)
{
    std::map<GroupName, Group> groups;
    std::map<uint32_t, GroupName> names;
    for (const SnapshotGroup& group : snapshot.groups) {
        if (group.id == 0 || group.id == delivery::kEvsGroupId || group.members.empty() ||
            !names.emplace(group.id, group.name).second) {
            return false;
        }
        auto [it, created] = groups.try_emplace(group.name);
        if (!created) {
            return false;
        }
        it->second.id = group.id;
        it->second.members.insert(group.members.begin(), group.members.end());
    }
    if (snapshot.next_group_id == 0) {
        return false;
    }
    groups_ = std::move(groups);
    names_by_id_ = std::move(names);
    next_group_id_ = snapshot.next_group_id;
    return true;
}

std::vector<GroupTable::Row> GroupTable::rows() const
{
    std::vector<Row> result;
    for (const auto& [name, group] : groups_) {
        for (ProcessId process : group.members) {
            result.push_back({name, process});
        }
    }
    return result;
}

std::vector<delivery::MemberAddress> GroupTable::to_addresses(const std::set<ProcessId>& members)
{
    std::vector<delivery::MemberAddress> result;
    result.reserve(members.size());
    for (ProcessId process : members) {
        result.push_back({process.nodeid, process.pid, delivery::reason_undefined});
    }
    return result;
}

}  // namespace rcpg::ordering
