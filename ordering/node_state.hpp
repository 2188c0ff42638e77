// A node's state: one value for where it stands in its life, and the transitions the
// protocol allows between them. Node keeps exactly one NodeState and changes it only
// through Node::set_state, which refuses (RCPG_ASSERT) any transition not listed here.
//
//   single                                  (no cluster: sequences its own clients)
//
//   joining ──► join_connecting ──► join_hello_sent ──► following ──► leaving ──► left
//      ▲  ◄───────────┴────────────────────┘  │            │
//      │  (refused, closed: ask the next)      │            │ lost the sequencer
//      └──────────► sequencing ◄── electing ◄──┼────────────┤ (or another node takes over)
//       (no cluster found: the first            │            ▼
//        of the order starts one)               │   failover_waiting ──► failover_connecting
//                                               │        ▲    ▲                  │
//                                               │        │    └──────────────────┤
//                                               │        │                       ▼
//                                               │        └──────── failover_hello_sent
//                                               │                                │
//                                               └──────── following ◄────────────┘
//                                                         (the new sequencer's view)
//
//   Any state but single may go to failed; left and failed are final.
//
// The role (single, sequencer, member) is a function of the state; a final state keeps
// the role the node had.
#pragma once

#include <cstdint>
#include <string_view>

namespace rcpg::ordering {

enum class Role : uint8_t { single, sequencer, member };

enum class NodeState : uint8_t {
    single,
    // Member, before its admission: asks the nodes of the sequencer order in turn.
    joining,              // no connection: asks the next node at the next connect time
    join_connecting,      // a connection to that node is under way
    join_hello_sent,      // connected, asked to be admitted: waits for the snapshot or a refusal
    // Member, admitted: serves clients.
    following,            // forwards to the sequencer, checks and applies what it writes
    leaving,              // asked to be removed: waits for its removal or the connection's end
    // Member that lost its sequencer: asks the next node of the view to take over.
    failover_waiting,     // no connection: asks the candidate at the next connect time
    failover_connecting,  // a connection to the candidate is under way
    failover_hello_sent,  // connected, asked to continue: waits for the candidate's view
    // Sequencer.
    electing,             // took over: collects the survivors' tails, repairs its ring
    sequencing,
    // Final.
    left,
    failed,
};

constexpr std::string_view to_string(NodeState state)
{
    switch (state) {
    case NodeState::single: return "single";
    case NodeState::joining: return "joining";
    case NodeState::join_connecting: return "join_connecting";
    case NodeState::join_hello_sent: return "join_hello_sent";
    case NodeState::following: return "following";
    case NodeState::leaving: return "leaving";
    case NodeState::failover_waiting: return "failover_waiting";
    case NodeState::failover_connecting: return "failover_connecting";
    case NodeState::failover_hello_sent: return "failover_hello_sent";
    case NodeState::electing: return "electing";
    case NodeState::sequencing: return "sequencing";
    case NodeState::left: return "left";
    case NodeState::failed: return "failed";
    }
    return "?";
}

constexpr bool is_final(NodeState state) { return state == NodeState::left || state == NodeState::failed; }

// The role of a state that is not final.
constexpr Role role_of(NodeState state)
{
    switch (state) {
    case NodeState::single: return Role::single;
    case NodeState::electing:
    case NodeState::sequencing: return Role::sequencer;
    default: return Role::member;
    }
}

constexpr bool is_joining(NodeState state)
{
    return state == NodeState::joining || state == NodeState::join_connecting || state == NodeState::join_hello_sent;
}

constexpr bool is_member_failover(NodeState state)
{
    return state == NodeState::failover_waiting || state == NodeState::failover_connecting ||
           state == NodeState::failover_hello_sent;
}

// A member connected to the node it takes for its sequencer (or candidate), with its
// session begun (hello sent).
constexpr bool is_connected(NodeState state)
{
    return state == NodeState::join_hello_sent || state == NodeState::following || state == NodeState::leaving ||
           state == NodeState::failover_hello_sent;
}

// A member admitted and under a sequencer it applies the ring of: what it owes a
// sequencer (credit, holds, heartbeats) it owes now.
constexpr bool is_following(NodeState state) { return state == NodeState::following || state == NodeState::leaving; }

constexpr bool is_connecting(NodeState state)
{
    return state == NodeState::join_connecting || state == NodeState::failover_connecting;
}

// Where a member's connection to its sequencer stands, within joining or failover.
enum class Link : uint8_t { none, connecting, hello_sent };

// The joining or failover state with that link; `state` is one of those.
constexpr NodeState with_link(NodeState state, Link link)
{
    const bool failover = is_member_failover(state);
    switch (link) {
    case Link::none: return failover ? NodeState::failover_waiting : NodeState::joining;
    case Link::connecting: return failover ? NodeState::failover_connecting : NodeState::join_connecting;
    case Link::hello_sent: return failover ? NodeState::failover_hello_sent : NodeState::join_hello_sent;
    }
    return state;
}

// Whether the protocol allows going from `from` to `to` (the same state is no transition).
constexpr bool transition_allowed(NodeState from, NodeState to)
{
    using S = NodeState;
    if (from == to) {
        return true;
    }
    if (is_final(from)) {
        return false;
    }
    if (to == S::failed) {
        return from != S::single;
    }
    switch (from) {
    case S::single:
        return false;
    case S::joining:
    case S::join_connecting:
    case S::join_hello_sent:
        // Among the joining states as the connection comes and goes; admitted (the
        // snapshot); or the first of the order starts the cluster.
        return is_joining(to) || to == S::following || to == S::sequencing;
    case S::following:
        return to == S::leaving || to == S::failover_waiting;
    case S::leaving:
        return to == S::left;
    case S::failover_waiting:
    case S::failover_connecting:
    case S::failover_hello_sent:
        // Among the failover states; this node is the next of the view (electing); or
        // the candidate's view came (following).
        return is_member_failover(to) || to == S::electing || (from == S::failover_hello_sent && to == S::following);
    case S::electing:
        return to == S::sequencing;
    case S::sequencing:
    case S::left:
    case S::failed:
        return false;
    }
    return false;
}

}  // namespace rcpg::ordering
