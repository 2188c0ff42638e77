// The totem confchg callback of model v1: with CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF
// the handle gets the current ring once, right after its own join confchg (one member,
// node 1, ring id of node 1); without the flag, or without a join, it gets none on
// this one-node cluster where the ring never changes.
#include "tests/conformance/conformance.hpp"

namespace rcpg::conformance {
namespace {

using Totem = Conformance;

TEST_F(Totem, InitialTotemConfFollowsTheOwnJoinConfchgOnce)
{
    Client client(Client::Options{.totem = true, .flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF});
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("totem-initial"), CS_OK);
    ASSERT_TRUE(client.pump_until_count(Event::totem, 1));
    ASSERT_EQ(client.rec.events.size(), 2u);
    EXPECT_EQ(client.rec.events[0].kind, Event::confchg) << "own join confchg first";
    const Event& totem = client.rec.events[1];
    ASSERT_EQ(totem.kind, Event::totem);
    EXPECT_EQ(totem.ring.nodeid, 1u);
    ASSERT_EQ(totem.totem_members.size(), 1u);
    EXPECT_EQ(totem.totem_members[0], 1u);

    // More traffic and membership changes of the group: no second initial ring.
    Pipe ready;
    Pipe release;
    ChildProcess other([&]() -> int {
        ready.close_read();
        release.close_write();
        Client child(Client::Options{.retry_init = true});
        if (!child.ok() || child.join("totem-initial") != CS_OK) {
            return 2;
        }
        ready.write_byte('j');
        release.wait_eof(kEventTimeout);
        return 0;
    });
    ASSERT_TRUE(other.started());
    ready.close_write();
    release.close_read();
    ASSERT_EQ(ready.read_byte(), 'j');
    ASSERT_EQ(client.send("after"), CS_OK);
    ASSERT_TRUE(client.pump_until_body("after"));
    release.close_write();
    EXPECT_EQ(other.wait(), 0);
    ASSERT_TRUE(client.pump_until_count(Event::confchg, 3));  // own join, child join, child PROCDOWN
    client.pump_for(100);
    EXPECT_EQ(client.rec.count(Event::totem), 1u);
}

TEST_F(Totem, NothingIsPendingAfterTheInitialTotemConf)
{
    // Once the join confchg and the initial ring were handled, nothing else is pending.
    Client client(Client::Options{.totem = true, .flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF});
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("totem-one"), CS_OK);
    ASSERT_TRUE(client.pump_until_count(Event::totem, 1));
    EXPECT_EQ(cpg_dispatch(client.handle, CS_DISPATCH_ONE_NONBLOCKING), CS_ERR_TRY_AGAIN);
    EXPECT_FALSE(fd_readable(client.fd(), kQuietMs)) << "readable with nothing pending";
}

TEST_F(Totem, NoTotemConfWithoutTheFlag)
{
    Client client(Client::Options{.totem = true, .flags = 0});
    ASSERT_TRUE(client.ok());
    ASSERT_EQ(client.join("totem-none"), CS_OK);
    ASSERT_EQ(client.send("message"), CS_OK);
    ASSERT_TRUE(client.pump_until_body("message"));
    client.pump_for(kQuietMs);
    EXPECT_EQ(client.rec.count(Event::totem), 0u);
    EXPECT_EQ(client.rec.count(Event::confchg), 1u);
}

TEST_F(Totem, NoTotemConfWithoutAJoin)
{
    Client client(Client::Options{.totem = true, .flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF});
    ASSERT_TRUE(client.ok());
    // Others join and talk; this handle never joins.
    Client other;
    ASSERT_TRUE(other.ok());
    ASSERT_EQ(other.join("totem-elsewhere"), CS_OK);
    ASSERT_EQ(other.send("chatter"), CS_OK);
    ASSERT_TRUE(other.pump_until_body("chatter"));
    EXPECT_FALSE(fd_readable(client.fd(), kQuietMs));
    EXPECT_EQ(cpg_dispatch(client.handle, CS_DISPATCH_ONE_NONBLOCKING), CS_ERR_TRY_AGAIN);
    EXPECT_TRUE(client.rec.events.empty());
}

TEST_F(Totem, EveryFlaggedHandleGetsItsOwnInitialTotemConf)
{
    Client a(Client::Options{.totem = true, .flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF});
    Client b(Client::Options{.totem = true, .flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF});
    Client plain(Client::Options{.totem = true, .flags = 0});
    ASSERT_TRUE(a.ok() && b.ok() && plain.ok());
    ASSERT_EQ(a.join("totem-a"), CS_OK);
    ASSERT_EQ(b.join("totem-b"), CS_OK);
    ASSERT_EQ(plain.join("totem-a-too"), CS_OK);
    ASSERT_TRUE(a.pump_until_count(Event::totem, 1));
    ASSERT_TRUE(b.pump_until_count(Event::totem, 1));
    ASSERT_TRUE(plain.pump_until_count(Event::confchg, 1));
    a.pump_for(50);
    b.pump_for(50);
    plain.pump_for(50);
    EXPECT_EQ(a.rec.count(Event::totem), 1u);
    EXPECT_EQ(b.rec.count(Event::totem), 1u);
    EXPECT_EQ(plain.rec.count(Event::totem), 0u);
    EXPECT_EQ(a.rec.of(Event::totem)[0]->ring.nodeid, 1u);
    EXPECT_EQ(b.rec.of(Event::totem)[0]->ring.nodeid, 1u);
    EXPECT_EQ(a.rec.of(Event::totem)[0]->ring.seq, b.rec.of(Event::totem)[0]->ring.seq) << "one ring";
}

}  // namespace
}  // namespace rcpg::conformance
