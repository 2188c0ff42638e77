// Group membership as pure state: who is in which group, the confchg each change
// produces, and the rules that decide whether a join or leave is allowed. Callers apply
// changes in sequence order, so every node that applies the same sequence holds the same
// table and produces the same confchgs.
#pragma once

#include "base/assert.hpp"
#include "delivery/ring_format.hpp"

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <utility>
#include <set>
#include <span>
#include <vector>

namespace rcpg::ordering {

struct GroupName {
    uint32_t length = 0;
    std::array<char, delivery::kMaxGroupNameBytes> value{};

    // `length` bytes of a name its decoder checked (at most kMaxGroupNameBytes).
    static GroupName from(const char* bytes, uint32_t length)
    {
        RCPG_ASSERT(length <= delivery::kMaxGroupNameBytes, "group name of {} bytes", length);
        GroupName result;
        result.length = length;
        std::memcpy(result.value.data(), bytes, length);
        return result;
    }
    // Names compare as (length, bytes): "foo" and "foo\0" are different groups.
    auto operator<=>(const GroupName& other) const
    {
        if (auto order = length <=> other.length; order != 0) {
            return order;
        }
        const int bytes = std::memcmp(value.data(), other.value.data(), length);
        return bytes <=> 0;
    }
    bool operator==(const GroupName& other) const { return (*this <=> other) == 0; }
};

struct ProcessId {
    uint32_t nodeid = 0;
    uint32_t pid = 0;
    auto operator<=>(const ProcessId&) const = default;
};

struct GroupChange {
    uint32_t group_id = 0;
    GroupName name;
    std::vector<delivery::MemberAddress> left;
    std::vector<delivery::MemberAddress> joined;
    std::vector<delivery::MemberAddress> members;  // after the change, sorted by (nodeid, pid)
};

enum class JoinCheck { allowed, already_member };

class GroupTable {
public:
    JoinCheck check_join(const GroupName& group, ProcessId process) const;
    bool is_member(const GroupName& group, ProcessId process) const;

    // Adds `process` (which check_join allowed) and returns the confchg.
    GroupChange join(const GroupName& group, ProcessId process);

    // Removes `processes` of `group` with `reason`; those not members are ignored.
    // Returns nothing when none was a member.
    std::optional<GroupChange> remove(const GroupName& group, const std::vector<ProcessId>& processes,
                                      delivery::Reason reason);

    std::vector<delivery::MemberAddress> members(const GroupName& group) const;
    std::optional<uint32_t> group_id(const GroupName& group) const;
    // The group with this id, while it has members.
    const GroupName* name_of(uint32_t group_id) const;
    // Every group that has processes of `nodeid`, with those processes.
    std::vector<std::pair<GroupName, std::vector<ProcessId>>> processes_of_node(uint32_t nodeid) const;
    // The same for several nodes at once: per group, their processes in (nodeid, pid) order.
    std::vector<std::pair<GroupName, std::vector<ProcessId>>> processes_of_nodes(std::span<const uint32_t> nodeids) const;

    // The whole table, for a node that joins a running cluster: applying the same later
    // changes to a table rebuilt from it gives the same confchgs and group ids.
    struct SnapshotGroup {
        uint32_t id = 0;
        GroupName name;
        std::vector<ProcessId> members;
    };
    struct Snapshot {
        uint32_t next_group_id = 1;
        std::vector<SnapshotGroup> groups;
    };
    Snapshot snapshot() const;
    // Replaces the table; false (table unchanged) if the snapshot is inconsistent
    // (duplicate names or ids, an empty group, id 0).
    bool restore(const Snapshot& snapshot);

    struct Row {
        GroupName group;
        ProcessId process;
    };
    // Every (group, process), grouped by name in name order, members sorted.
    std::vector<Row> rows() const;
    size_t group_count() const { return groups_.size(); }

private:
    uint32_t allocate_id();

    struct Group {
        uint32_t id = 0;
        std::set<ProcessId> members;
    };
    static std::vector<delivery::MemberAddress> to_addresses(const std::set<ProcessId>& members);

    std::map<GroupName, Group> groups_;
    std::map<uint32_t, GroupName> names_by_id_;
    uint32_t next_group_id_ = 1;
};

}  // namespace rcpg::ordering
