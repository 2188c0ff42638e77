// NodeState: the transitions Node::set_state allows, and the role each state stands for.
#include "ordering/node_state.hpp"

#include <gtest/gtest.h>

#include <array>

namespace {

using rcpg::ordering::is_connected;
using rcpg::ordering::is_final;
using rcpg::ordering::Link;
using rcpg::ordering::NodeState;
using rcpg::ordering::Role;
using rcpg::ordering::role_of;
using rcpg::ordering::transition_allowed;
using rcpg::ordering::with_link;

constexpr std::array kAll{NodeState::single,          NodeState::joining,          NodeState::join_connecting,
                          NodeState::join_hello_sent, NodeState::following,        NodeState::leaving,
                          NodeState::failover_waiting, NodeState::failover_connecting, NodeState::failover_hello_sent,
                          NodeState::electing,        NodeState::sequencing,       NodeState::left,
                          NodeState::failed};

TEST(NodeState, NothingLeavesAFinalStateAndNothingEntersSingle)
{
    for (NodeState from : kAll) {
        for (NodeState to : kAll) {
            if (from == to) {
                continue;
            }
            if (is_final(from)) {
                EXPECT_FALSE(transition_allowed(from, to)) << to_string(from) << " -> " << to_string(to);
            }
        }
        if (from != NodeState::single) {
            EXPECT_FALSE(transition_allowed(from, NodeState::single)) << to_string(from) << " -> single";
            EXPECT_FALSE(transition_allowed(NodeState::single, from)) << "single -> " << to_string(from);
        }
    }
}

TEST(NodeState, EveryClusterStateMayFail)
{
    for (NodeState from : kAll) {
        EXPECT_EQ(transition_allowed(from, NodeState::failed),
                  from != NodeState::single && from != NodeState::left)
            << to_string(from);
    }
}

TEST(NodeState, AMemberIsAdmittedOnlyFromJoiningAndFollowsANewSequencerOnlyOnceConnectedToIt)
{
    EXPECT_TRUE(transition_allowed(NodeState::join_hello_sent, NodeState::following));
    EXPECT_TRUE(transition_allowed(NodeState::failover_hello_sent, NodeState::following));
    // A view applied while fencing the lost sequencer is that sequencer's, not the next one's.
    EXPECT_FALSE(transition_allowed(NodeState::failover_waiting, NodeState::following));
    EXPECT_FALSE(transition_allowed(NodeState::failover_connecting, NodeState::following));
    EXPECT_FALSE(transition_allowed(NodeState::electing, NodeState::following));
    EXPECT_FALSE(transition_allowed(NodeState::sequencing, NodeState::following));
}

TEST(NodeState, OnlyAFollowerLeavesOrLosesItsSequencer)
{
    for (NodeState from : kAll) {
        EXPECT_EQ(transition_allowed(from, NodeState::leaving), from == NodeState::following || from == NodeState::leaving)
            << to_string(from);
        EXPECT_EQ(transition_allowed(from, NodeState::left), from == NodeState::leaving || from == NodeState::left)
            << to_string(from);
    }
    EXPECT_TRUE(transition_allowed(NodeState::following, NodeState::failover_waiting));
    EXPECT_FALSE(transition_allowed(NodeState::leaving, NodeState::failover_waiting));
    EXPECT_FALSE(transition_allowed(NodeState::join_hello_sent, NodeState::failover_waiting));
}

TEST(NodeState, ANodeSequencesAfterAnElectionOrWhenItStartsTheCluster)
{
    for (NodeState from : kAll) {
        const bool expected = from == NodeState::sequencing || from == NodeState::electing || from == NodeState::joining ||
                              from == NodeState::join_connecting || from == NodeState::join_hello_sent;
        EXPECT_EQ(transition_allowed(from, NodeState::sequencing), expected) << to_string(from);
        const bool elects = from == NodeState::electing || from == NodeState::failover_waiting ||
                            from == NodeState::failover_connecting || from == NodeState::failover_hello_sent;
        EXPECT_EQ(transition_allowed(from, NodeState::electing), elects) << to_string(from);
    }
}

TEST(NodeState, TheLinkChangesWithinAPhaseOnly)
{
    for (Link link : {Link::none, Link::connecting, Link::hello_sent}) {
        EXPECT_TRUE(rcpg::ordering::is_joining(with_link(NodeState::join_hello_sent, link)));
        EXPECT_TRUE(rcpg::ordering::is_member_failover(with_link(NodeState::failover_waiting, link)));
    }
    EXPECT_EQ(with_link(NodeState::joining, Link::connecting), NodeState::join_connecting);
    EXPECT_EQ(with_link(NodeState::failover_connecting, Link::hello_sent), NodeState::failover_hello_sent);
    EXPECT_TRUE(is_connected(with_link(NodeState::joining, Link::hello_sent)));
    EXPECT_FALSE(is_connected(with_link(NodeState::failover_hello_sent, Link::none)));
}

TEST(NodeState, TheRoleFollowsTheState)
{
    EXPECT_EQ(role_of(NodeState::single), Role::single);
    EXPECT_EQ(role_of(NodeState::electing), Role::sequencer);
    EXPECT_EQ(role_of(NodeState::sequencing), Role::sequencer);
    for (NodeState state : {NodeState::joining, NodeState::join_connecting, NodeState::join_hello_sent,
                            NodeState::following, NodeState::leaving, NodeState::failover_waiting,
                            NodeState::failover_connecting, NodeState::failover_hello_sent}) {
        EXPECT_EQ(role_of(state), Role::member) << to_string(state);
    }
}

}  // namespace
