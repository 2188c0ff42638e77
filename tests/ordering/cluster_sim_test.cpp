// Whole clusters of ordering::Node on the memory transport, stepped with an injected
// clock from a seed: nodes that find each other (the first of the order starts the
// cluster), each with simulated clients that join groups, send (some messages SAFE), and
// leave, and one reader per node that consumes its delivery ring (some slowly, so credits
// and a full ring are exercised). A member that starts late joins the running cluster;
// one leaves cleanly. In the failure runs nodes crash or hang — members, the sequencer,
// the node taking over from it — and some start again and rejoin. The fabric delays every
// operation by a seeded amount, so operations of different connections interleave
// differently in every run.
//
// Checked for every run: every node delivered entries of one order, byte for byte, at
// the same sequence numbers, with no gap, the live ones up to the same end; a failed node
// a prefix of it up to its removal; nothing a live client handed over is lost or
// duplicated, per sender in order, payload intact; every live node ends with the same
// group table and view, of the live nodes; a SAFE message reaches a reader only once
// every live node it belongs to holds it; without a majority left every node stops; the
// late node's first entry is the view that admits it; the leaver's processes get
// NODEDOWN, then the view without it.
//
// Some messages go out in fragments (as libcpg sends those above the atomic size), and
// some clients die in the middle of one: every node reassembles as libcpg does, and the
// order must hold only whole messages and, of a dead client, every fragment it handed
// over, then its PROCDOWN (which discards the half message), then nothing more of it.
#include "ordering/node.hpp"
#include "tests/transport/transport_test_support.hpp"
#include "transport/memory_transport.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <functional>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace rcpg::ordering {
namespace {

using delivery::EntryKind;
using transport::FaultConfig;
using transport::MemoryFabric;
using transport::MemoryTransport;

constexpr uint64_t kRingBytes = 8ull << 20;
constexpr uint64_t kInboundRingBytes = 64 * 1024;
constexpr uint32_t kSequencer = 1;
constexpr uint32_t kStagingSlotBytes = 4096;
constexpr uint32_t kStagingSlots = 256;
constexpr uint64_t kFormingLimitMs = 5000;

// A node that fails at `at_ms`: it crashes (its connections close, as a dead process's
// do) or hangs (stops without a word: only the heartbeats tell). Node 0: whichever node
// sequences (or takes over) then.
struct Failure {
    uint64_t at_ms = 0;
    uint32_t nodeid = 0;
    bool hang = false;
    uint64_t restart_after_ms = 0;  // then it starts again, a new process (0: never)
};

// The network splits `side` from the other nodes at `at_ms` and heals `heal_after_ms`
// later; then every node that stopped for want of a majority starts again (as a service
// manager would restart it) and rejoins.
struct Partition {
    uint64_t at_ms = 0;
    std::set<uint32_t> side;
    uint64_t heal_after_ms = 0;
};

struct Scenario {
    uint64_t seed = 1;
    bool late_join = true;         // node `nodes` starts late
    bool clean_leave = true;       // node 2 leaves cleanly (with 3+ nodes)
    std::vector<Failure> failures;
    std::optional<Partition> partition;
    uint32_t failure_timeout_ms = 40;
    int nodes = 3;                 // node `nodes` starts late, node 2 leaves (with 3+ nodes)
    int clients_per_node = 3;
    // EVS clients besides (libevs): in no group, they send EVS records (the EVS flag and
    // group number, never fragmented) from the start to the end, which any node in the
    // view may send and which must survive failovers like the others.
    int evs_clients_per_node = 0;
    uint32_t min_payload = 1;
    uint32_t max_payload = 200;    // at most kStagingSlotBytes - 16
    uint64_t run_ms = 400;         // clients send during this time
    uint64_t late_start_ms = 120;
    uint64_t leave_at_ms = 250;
    uint32_t max_delay_ms = 3;
    uint32_t sends_per_tick = 4;   // per client, at most
    uint32_t slow_reader_entries_per_tick = 0;  // node 2's reader (0: reads everything)
    uint32_t safe_one_in = 0;      // every this many messages is sent SAFE (0: none)
    uint32_t fragmented_one_in = 0;  // every this many of a client's messages goes in fragments (0: none)
    uint32_t client_deaths = 0;      // clients that die in the middle of a fragmented message
    // The holding node's reader holds this many payloads in place at a time while clients
    // send, each for hold_ms, reading on past them (as a client delivered in place and
    // then moved to a backlog does): nobody may write over them meanwhile.
    uint32_t held_payloads = 0;
    uint64_t hold_ms = 0;
    uint32_t holding_node = 3;
    // The sequencer crashes as soon as node 3 applied a lap past the end of the holding
    // node's first held payload: just after the writer went round it.
    bool fail_sequencer_past_first_hold = false;
};

// What a node's reader saw at one sequence number.
struct Delivered {
    EntryKind kind;
    uint32_t group_id;
    uint32_t nodeid;
    uint32_t pid;
    std::vector<std::byte> payload;
    uint16_t flags;
    uint32_t total_bytes;
    bool operator==(const Delivered&) const = default;
};

// The message a client sends: who, which one, and a pattern the receiver re-derives.
std::vector<std::byte> make_payload(uint32_t nodeid, uint32_t pid, uint64_t counter, uint32_t bytes)
{
    std::vector<std::byte> payload(std::max<uint32_t>(bytes, 16));
    std::memcpy(payload.data(), &nodeid, 4);
    std::memcpy(payload.data() + 4, &pid, 4);
    std::memcpy(payload.data() + 8, &counter, 8);
    for (size_t i = 16; i < payload.size(); ++i) {
        payload[i] = static_cast<std::byte>((counter * 131 + i * 7 + pid) & 0xff);
    }
    return payload;
}

GroupName group_named(const std::string& text)
{
    GroupName name;
    name.length = static_cast<uint32_t>(text.size());
    std::memcpy(name.value.data(), text.data(), text.size());
    return name;
}

std::string text_of(const GroupName& name) { return std::string(name.value.data(), name.length); }

bool same_rows(const std::vector<GroupTable::Row>& a, const std::vector<GroupTable::Row>& b)
{
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const GroupTable::Row& x, const GroupTable::Row& y) {
        return x.group == y.group && x.process == y.process;
    });
}

struct Client {
    uint32_t pid = 0;
    bool evs = false;  // an EVS client: no group, EVS records only
    GroupName group;
    // dying: killed, its PROCDOWN not yet accepted by the node; dead: nothing more of it.
    enum class State : uint8_t { idle, joining, joined, leaving, left, dying, dead } state = State::idle;
    uint32_t group_id = 0;
    uint64_t sent = 0;  // whole messages the node accepted
    // The message going out in fragments (number `sent`): its size and the bytes of it
    // the node accepted so far.
    bool fragmenting = false;
    uint32_t fragmented_bytes = 0;
    uint32_t fragmented_accepted = 0;
};

class SimNode final : public LocalSide {
public:
    // A restarted node is a new incarnation: new processes (pids), a fresh ring.
    SimNode(MemoryFabric& fabric, const Scenario& scenario, uint32_t nodeid, std::mt19937_64& random,
            uint32_t incarnation = 0)
        : nodeid_(nodeid), scenario_(scenario), random_(random), ring_(kRingBytes, nodeid)
    {
        EXPECT_TRUE(ring_.valid());
        NodeConfig config;
        config.nodeid = nodeid;
        for (int node = 1; node <= scenario.nodes; ++node) {
            config.nodes.push_back(static_cast<uint32_t>(node));
        }
        config.inbound_ring_bytes = kInboundRingBytes;  // the sequencer order: by id
        config.failure_timeout_ms = scenario.failure_timeout_ms;
        if (std::getenv("RCPG_SIM_LOG") != nullptr) {  // the nodes' own account of a replayed seed
            config.log = [nodeid](LogLevel, std::string_view text) {
                std::fprintf(stderr, "node %u: %.*s\n", nodeid, static_cast<int>(text.size()), text.data());
            };
        }
        auto transport = std::make_unique<MemoryTransport>(fabric, transport::testing::make_config(nodeid, scenario.nodes));
        auto created = Node::create(std::move(config), ring_, *this, std::move(transport));
        EXPECT_TRUE(created.ok()) << created.status().message();
        if (created) {
            node_ = std::move(*created);
        }
        if (node_) {
            auto staging = transport::RegisteredMemory::create(*node_->transport(), size_t{kStagingSlots} * kStagingSlotBytes,
                                                               transport::RegionAccess::local);
            EXPECT_TRUE(staging.ok());
            staging_ = std::move(*staging);
        }
        for (int i = 0; i < scenario.clients_per_node; ++i) {
            Client& client = clients_.emplace_back();
            client.pid = 1000 + 100 * incarnation + static_cast<uint32_t>(i);
            client.group = group_named(i % 2 == 0 ? "even" : "odd");
        }
        for (int i = 0; i < scenario.evs_clients_per_node; ++i) {
            Client& client = clients_.emplace_back();
            client.pid = 1050 + 100 * incarnation + static_cast<uint32_t>(i);
            client.evs = true;
        }
    }

    Node& node() { return *node_; }
    const Node& node() const { return *node_; }
    DeliveryRing& ring() { return ring_; }
    const std::map<uint64_t, Delivered>& delivered() const { return delivered_; }
    std::vector<Client>& clients() { return clients_; }
    uint64_t first_seq() const { return delivered_.empty() ? 0 : delivered_.begin()->first; }
    bool stopped() const { return stopped_; }
    // Messages its clients handed over that the node has not released yet (a member's
    // until they are in its ring, the sequencer's until the device copied them).
    uint32_t unreleased() const { return staging_used_; }
    void stop() { stopped_ = true; }
    // Failed (crashed or hung): stepped no more; what it delivered before stays checkable.
    bool failed_here() const { return failed_here_; }
    void fail_here()
    {
        failed_here_ = true;
        stopped_ = true;
    }

    // One turn: the node, then the clients, then what the node owes the others, then the reader.
    void turn(uint64_t now_ms, bool clients_send, bool clients_leave)
    {
        if (stopped_ || !node_) {
            return;
        }
        node_->step(now_ms);
        if (node_->admitted() && !node_->failed()) {
            run_clients(clients_send, clients_leave);
        }
        if (node_->role() == Role::sequencer) {
            bool blocked = false;
            node_->drain_inbound(blocked);
            node_->replicate();
            ring_.publish(node_->publishable_tail());
        } else {
            node_->commit_forwarded();
        }
        read(clients_send, now_ms);
    }

    // LocalSide.
    uint64_t local_reclaim_limit() override { return read_position_; }
    void on_entry(uint32_t) override {}
    bool on_admitted() override
    {
        read_position_ = ring_start_ = ring_.published_tail();
        return true;
    }
    void on_own_join(const GroupName& group, uint32_t pid, uint32_t group_id, uint64_t, uint64_t) override
    {
        for (Client& client : clients_) {
            if (client.pid == pid && client.state == Client::State::joining && client.group == group) {
                client.state = Client::State::joined;
                client.group_id = group_id;
            }
        }
    }
    void on_own_removal(const GroupName& group, uint32_t pid) override
    {
        for (Client& client : clients_) {
            if (client.pid == pid && client.state == Client::State::leaving && client.group == group) {
                client.state = Client::State::left;
            }
        }
    }
    void on_batch_completed(uint64_t batch) override
    {
        while (!in_flight_.empty() && in_flight_.front().first <= batch) {
            staging_used_ -= in_flight_.front().second;
            in_flight_.pop_front();
        }
    }
    void on_applied() override { ring_.publish(node_->publishable_tail()); }

    // Holds its reader took (Scenario::held_payloads), and of those the ones whose bytes
    // came round a lap or more while held.
    uint32_t holds_taken() const { return holds_taken_; }
    uint32_t holds_lapped() const { return holds_lapped_; }
    // Where the first payload it still holds ends (0: none held).
    uint64_t first_hold_end() const
    {
        return held_.empty() ? 0 : held_.front().position + held_.front().bytes.size();
    }

    // Where this node's ring starts (its admission); what it must hold of a SAFE message.
    uint64_t ring_start() const { return ring_start_; }
    // Called for every SAFE message a reader is handed: (reader, position, end).
    std::function<void(uint32_t, uint64_t, uint64_t)> on_safe_read;

private:
    void run_clients(bool clients_send, bool clients_leave)
    {
        const bool member = node_->role() == Role::member;
        for (Client& client : clients_) {
            const ProcessId process{nodeid_, client.pid};
            switch (client.state) {
            case Client::State::idle:
                if (client.evs) {
                    // Nothing to join: it sends from its first tick on.
                    if (clients_send) {
                        client.state = Client::State::joined;
                        client.group_id = delivery::kEvsGroupId;
                    }
                } else if (clients_send && !member && node_->sequence_change(client.group, process, delivery::reason_join)) {
                    client.state = Client::State::joined;
                    client.group_id = *node_->groups().group_id(client.group);
                } else if (clients_send && member &&
                           node_->forward_group_op(client.pid, client.group, delivery::reason_join)) {
                    client.state = Client::State::joining;
                }
                break;
            case Client::State::joined:
                // The first client stays: its process goes with its node (NODEDOWN).
                if (clients_leave && &client != &clients_.front() && !client.fragmenting && !client.evs) {
                    if (!member && node_->sequence_change(client.group, process, delivery::reason_leave)) {
                        client.state = Client::State::left;
                    } else if (member && node_->forward_group_op(client.pid, client.group, delivery::reason_leave)) {
                        client.state = Client::State::leaving;
                    }
                    break;
                }
                if (clients_send) {
                    send(client);
                }
                break;
            case Client::State::dying:
                // As rcpgd does for a session that ended: what it accepted goes first,
                // then the PROCDOWN.
                if (!member ? node_->sequence_change(client.group, process, delivery::reason_process_down)
                            : node_->forward_group_op(client.pid, client.group, delivery::reason_process_down)) {
                    client.state = Client::State::dead;
                }
                break;
            case Client::State::joining:
            case Client::State::leaving:
            case Client::State::left:
            case Client::State::dead:
                break;
            }
        }
    }

    void send(Client& client)
    {
        std::uniform_int_distribution<uint32_t> count(0, scenario_.sends_per_tick);
        std::uniform_int_distribution<uint32_t> size(scenario_.min_payload, scenario_.max_payload);
        for (uint32_t n = count(random_); n > 0; --n) {
            uint16_t flags =
                scenario_.safe_one_in != 0 && client.sent % scenario_.safe_one_in == 0 ? delivery::kFlagSafe : 0;
            flags |= client.evs ? delivery::kFlagEvs : 0;
            if (!client.fragmenting && !client.evs && scenario_.fragmented_one_in != 0 &&
                client.sent % scenario_.fragmented_one_in == scenario_.fragmented_one_in - 1) {
                // Two to four fragments of up to max_payload bytes, the last one shorter.
                client.fragmenting = true;
                client.fragmented_bytes = scenario_.max_payload * (1 + random_() % 3) + 1 +
                                          static_cast<uint32_t>(random_() % scenario_.max_payload);
                client.fragmented_accepted = 0;
            }
            if (!client.fragmenting) {
                const std::vector<std::byte> payload = make_payload(nodeid_, client.pid, client.sent, size(random_));
                if (!submit(client, payload, flags, static_cast<uint32_t>(payload.size()))) {
                    return;  // full: the client tries again later
                }
                ++client.sent;
                continue;
            }
            const std::vector<std::byte> whole =
                make_payload(nodeid_, client.pid, client.sent, client.fragmented_bytes);
            const uint32_t offset = client.fragmented_accepted;
            const uint32_t piece = std::min(scenario_.max_payload, client.fragmented_bytes - offset);
            uint16_t piece_flags = flags | delivery::kFlagFragment;
            piece_flags |= offset == 0 ? delivery::kFlagFragmentFirst : 0;
            piece_flags |= offset + piece == client.fragmented_bytes ? delivery::kFlagFragmentLast : 0;
            if (!submit(client, std::span(whole).subspan(offset, piece), piece_flags, client.fragmented_bytes)) {
                return;
            }
            client.fragmented_accepted += piece;
            if (client.fragmented_accepted == client.fragmented_bytes) {
                client.fragmenting = false;
                ++client.sent;
            }
        }
    }

    // Hands one entry's payload to the node the way rcpgd does for a local client; false
    // when there is no room now.
    bool submit(Client& client, std::span<const std::byte> payload, uint16_t flags, uint32_t total_bytes)
    {
        const auto payload_bytes = static_cast<uint32_t>(payload.size());
        if (node_->role() != Role::member && !node_->copies_by_device(payload.size())) {
            return node_->sequence_data(client.group_id, {nodeid_, client.pid}, flags, total_bytes, payload);
        }
        // A slot per message, reused once the batch that carried it completed.
        if (staging_used_ == kStagingSlots) {
            return false;
        }
        const uint64_t offset = uint64_t{next_slot_} * kStagingSlotBytes;
        if (node_->role() != Role::member) {
            // The loopback copies it from registered memory, like a member's forwarding.
            std::memcpy(staging_.data() + offset, payload.data(), payload.size());
            if (!node_->sequence_data_by_device(client.group_id, {nodeid_, client.pid}, flags, total_bytes,
                                                staging_.slice(offset, payload_bytes))) {
                return false;
            }
        } else {
            const wire::DataPrefix prefix{client.pid, client.group_id, flags, 0, total_bytes};
            std::memcpy(staging_.data() + offset, &prefix, sizeof prefix);
            std::memcpy(staging_.data() + offset + sizeof prefix, payload.data(), payload.size());
            const transport::LocalSlice parts[2] = {
                staging_.slice(offset, sizeof prefix),
                staging_.slice(offset + sizeof prefix, payload_bytes),
            };
            if (!node_->forward_data(parts, payload_bytes)) {
                return false;  // inbound ring or send queue full
            }
        }
        take_slot();
        return true;
    }

    // A staging slot per message in flight, reused once the batch that read it completed.
    void take_slot()
    {
        next_slot_ = (next_slot_ + 1) % kStagingSlots;
        ++staging_used_;
        const uint64_t batch = node_->releasing_batch();
        if (!in_flight_.empty() && in_flight_.back().first == batch) {
            ++in_flight_.back().second;
        } else {
            in_flight_.emplace_back(batch, 1);
        }
    }

    struct HeldPayload {
        uint64_t position;
        std::vector<std::byte> bytes;  // as read
        uint64_t until_ms;
        uint64_t tail_then;
    };

    // The held payloads are as they were read; the ended ones are let go.
    void check_holds(bool clients_send, uint64_t now_ms)
    {
        const uint64_t ring_bytes = ring_.data_bytes();
        const size_t before = held_.size();
        std::erase_if(held_, [&](const HeldPayload& held) {
            const std::byte* at = ring_.data() + (held.position & (ring_bytes - 1));
            EXPECT_EQ(std::memcmp(at, held.bytes.data(), held.bytes.size()), 0)
                << "node " << nodeid_ << ": the payload held at " << held.position << " was written over (tail now "
                << ring_.published_tail() << ")";
            if (clients_send && now_ms < held.until_ms && !::testing::Test::HasFailure()) {
                return false;
            }
            holds_lapped_ += ring_.published_tail() > held.tail_then + ring_bytes ? 1 : 0;
            return true;
        });
        if (held_.size() != before) {
            publish_holds();
        }
    }
    void publish_holds()
    {
        std::vector<DeliveryRing::Hold> holds;
        for (const HeldPayload& held : held_) {
            holds.push_back({held.position, held.bytes.size()});
        }
        ring_.set_holds(std::move(holds));
    }

    // Node 2's reader may be slow while clients send; it catches up once they stop.
    void read(bool clients_send, uint64_t now_ms)
    {
        const bool holding = nodeid_ == scenario_.holding_node && scenario_.held_payloads != 0;
        if (holding) {
            check_holds(clients_send, now_ms);
        }
        const uint64_t ring_bytes = ring_.data_bytes();
        uint32_t budget = nodeid_ == 2 && scenario_.slow_reader_entries_per_tick != 0 && clients_send
                              ? scenario_.slow_reader_entries_per_tick
                              : UINT32_MAX;
        while (read_position_ < ring_.published_tail() && budget-- > 0) {
            const uint64_t offset = read_position_ & (ring_bytes - 1);
            const std::byte* at = ring_.data() + offset;
            auto entry = wire::check_entry({at, ring_bytes - offset}, read_position_, ring_bytes,
                                           ring_.published_tail() - read_position_);
            ASSERT_TRUE(entry) << "node " << nodeid_ << " position " << read_position_;
            read_position_ += entry->entry_bytes;
            if (entry->kind == EntryKind::pad || entry->kind == EntryKind::skip) {
                continue;
            }
            if (entry->kind == EntryKind::data && (entry->flags & delivery::kFlagSafe) != 0 && on_safe_read) {
                on_safe_read(nodeid_, read_position_ - entry->entry_bytes, read_position_);
            }
            Delivered delivered{entry->kind, entry->group_id, entry->nodeid, entry->pid,
                                std::vector<std::byte>(at + entry->payload_offset,
                                                       at + entry->payload_offset + entry->payload_bytes),
                                entry->flags, entry->total_bytes};
            const bool fresh = delivered_.emplace(entry->seq, std::move(delivered)).second;
            EXPECT_TRUE(fresh) << "node " << nodeid_ << " read seq " << entry->seq << " twice";
            if (holding && clients_send && entry->kind == EntryKind::data && held_.size() < scenario_.held_payloads &&
                entry->payload_bytes >= delivery::kEntryAlignBytes) {
                // Whole 8-byte words of it: what an entry's payload takes up.
                const uint64_t bytes = entry->payload_bytes & ~uint64_t{delivery::kEntryAlignBytes - 1};
                held_.push_back({read_position_ - entry->entry_bytes + entry->payload_offset,
                                 std::vector<std::byte>(at + entry->payload_offset, at + entry->payload_offset + bytes),
                                 now_ms + scenario_.hold_ms, ring_.published_tail()});
                ++holds_taken_;
                publish_holds();
            }
        }
    }

    uint32_t nodeid_;
    const Scenario& scenario_;
    std::mt19937_64& random_;
    DeliveryRing ring_;
    std::unique_ptr<Node> node_;
    std::vector<Client> clients_;
    uint64_t read_position_ = 0;
    uint64_t ring_start_ = 0;
    std::vector<HeldPayload> held_;
    uint32_t holds_taken_ = 0;
    uint32_t holds_lapped_ = 0;
    std::map<uint64_t, Delivered> delivered_;
    transport::RegisteredMemory staging_;
    uint32_t next_slot_ = 0;
    uint32_t staging_used_ = 0;
    std::deque<std::pair<uint64_t, uint32_t>> in_flight_;  // (batch, slots)
    bool stopped_ = false;
    bool failed_here_ = false;
};

std::string describe(const Scenario& scenario)
{
    return "seed " + std::to_string(scenario.seed) + ", " + std::to_string(scenario.nodes) + " nodes";
}

class Cluster {
public:
    explicit Cluster(const Scenario& scenario)
        : scenario_(scenario), fabric_(scenario.seed, FaultConfig{0, scenario.max_delay_ms, 0.0}), random_(scenario.seed)
    {
        // Node `nodes` (a member) starts late, if the scenario says so; the others now.
        for (int node = 1; node <= scenario.nodes; ++node) {
            if (node < scenario.nodes || !scenario.late_join) {
                start(static_cast<uint32_t>(node));
            }
        }
    }

    // The node that sequences now (none while a failover is under way).
    SimNode* sequencer()
    {
        for (auto& [nodeid, sim] : nodes_) {
            if (!sim->stopped() && sim->node().role() == Role::sequencer && !sim->node().in_failover()) {
                return sim.get();
            }
        }
        return nullptr;
    }
    uint32_t sequencer_id()
    {
        for (auto& [nodeid, sim] : nodes_) {
            if (sim.get() == sequencer()) {
                return nodeid;
            }
        }
        return 0;
    }
    MemoryFabric& fabric() { return fabric_; }
    // Scenario::fail_sequencer_past_first_hold: when the sequencer failed, node 2 had not
    // yet applied where the held payload came round (so its repair reads over it).
    bool behind_past_hold() const { return behind_past_hold_; }

    SimNode& node(uint32_t nodeid) { return *nodes_.at(nodeid); }
    bool has(uint32_t nodeid) const { return nodes_.count(nodeid) != 0; }
    const std::map<uint32_t, std::unique_ptr<SimNode>>& nodes() const { return nodes_; }

    void run()
    {
        const auto late = static_cast<uint32_t>(scenario_.nodes);
        const uint32_t leaver = scenario_.nodes >= 3 && scenario_.clean_leave ? 2 : 0;
        // The nodes first find each other: the first of the sequencer order starts the
        // cluster once it found none running, the others are admitted. The scenario's
        // times count from when every node started so far is in.
        uint64_t now = 0;
        for (; now < kFormingLimitMs && !formed(); ++now) {
            step_all(now, true);
        }
        ASSERT_TRUE(formed()) << "the cluster did not form within " << kFormingLimitMs << " ms";
        const uint64_t formed_at = now;
        for (; now < formed_at + scenario_.run_ms; ++now) {
            const uint64_t at = now - formed_at;
            now_at_ = at;
            if (at == scenario_.late_start_ms && scenario_.late_join) {
                start(late);
            }
            for (const auto& [restart_at, nodeid] : restarts_) {
                if (restart_at == at) {
                    restart(nodeid);
                }
            }
            if (scenario_.partition && at == scenario_.partition->at_ms) {
                fabric_.partition(scenario_.partition->side);
            }
            if (scenario_.partition && at == scenario_.partition->at_ms + scenario_.partition->heal_after_ms) {
                fabric_.heal();
                for (uint32_t nodeid : stopped_themselves_) {
                    restart(nodeid);
                }
                stopped_themselves_.clear();
            }
            for (const Failure& failure : scenario_.failures) {
                if (failure.at_ms == at) {
                    fail(failure);
                }
            }
            if (scenario_.fail_sequencer_past_first_hold && !failed_past_hold_ && sequencer() != nullptr) {
                const uint64_t hold_end = node(scenario_.holding_node).first_hold_end();
                if (hold_end != 0 && has(3) && node(3).ring().unpublished_tail() >= hold_end + kRingBytes) {
                    // Node 2 (which takes over) has yet to get there: its repair covers it.
                    behind_past_hold_ = node(2).ring().unpublished_tail() < hold_end + kRingBytes;
                    fail({at, 0, false});
                    failed_past_hold_ = true;
                }
            }
            if (deaths_ < scenario_.client_deaths && at >= next_death_at_ms_) {
                kill_client_mid_message();
            }
            if (leaver != 0 && at >= scenario_.leave_at_ms && !leave_begun_) {
                // The leaver's clients leave their groups first, except one: its
                // process goes with the node (NODEDOWN).
                leave_begun_ = node(leaver).node().begin_leave();
            }
            step_all(now, true, at);
            if (leave_begun_ && node(leaver).node().left() && !node(leaver).stopped()) {
                node(leaver).node().disconnect_from_sequencer();
                node(leaver).stop();
            }
        }
        // Quiesce: no new sends; run until every live node delivered the sequencer's tail.
        for (uint64_t until = now + 3000; now < until; ++now) {
            step_all(now, false);
            if (leave_begun_ && node(leaver).node().left() && !node(leaver).stopped()) {
                node(leaver).node().disconnect_from_sequencer();
                node(leaver).stop();
            }
            if (caught_up() || all_live_failed()) {
                break;
            }
        }
    }

    // Forms the cluster with no client sending, then lets it idle: nothing but the
    // protocol's own traffic.
    void form_and_idle(uint64_t idle_ms)
    {
        uint64_t& now = idle_clock_ms_;
        for (; now < kFormingLimitMs && !formed(); ++now) {
            step_all(now, false);
        }
        ASSERT_TRUE(formed()) << "the cluster did not form within " << kFormingLimitMs << " ms";
        for (const uint64_t end = now + idle_ms; now < end; ++now) {
            step_all(now, false);
        }
    }
    // After form_and_idle: steps on, no client sending, until `done` holds (true) or
    // `limit_ms` passed (false).
    bool idle_until(const std::function<bool()>& done, uint64_t limit_ms)
    {
        for (const uint64_t end = idle_clock_ms_ + limit_ms; idle_clock_ms_ < end; ++idle_clock_ms_) {
            if (done()) {
                return true;
            }
            step_all(idle_clock_ms_, false);
        }
        return done();
    }
    // The node's process ends at once (its connections break).
    void crash(uint32_t nodeid)
    {
        fabric_.crash(nodeid);
        node(nodeid).fail_here();
        failed_.emplace_back(nodeid, &node(nodeid));
    }

    bool formed() const
    {
        for (const auto& [nodeid, sim] : nodes_) {
            if (!sim->node().admitted()) {
                return false;
            }
        }
        return true;
    }

    // Live: not made to fail by the scenario (a node that stopped for want of a majority
    // is live here: it has to notice and stop by itself).
    std::vector<uint32_t> live() const
    {
        std::vector<uint32_t> ids;
        for (const auto& [nodeid, sim] : nodes_) {
            if (!sim->failed_here() && !(sim->stopped() && sim->node().left())) {
                ids.push_back(nodeid);
            }
        }
        return ids;
    }
    bool all_live_failed() const
    {
        for (uint32_t nodeid : live()) {
            if (!nodes_.at(nodeid)->node().failed()) {
                return false;
            }
        }
        return true;
    }

    bool caught_up()
    {
        SimNode* sequencer = this->sequencer();
        if (sequencer == nullptr) {
            return false;
        }
        const auto& reference = sequencer->delivered();
        // Nothing on the wire, and nothing appended at the sequencer that is not yet
        // published (a device copy whose completion is not processed yet).
        if (reference.empty() || fabric_.in_flight() != 0 ||
            sequencer->ring().published_tail() != sequencer->ring().unpublished_tail()) {
            return false;
        }
        // Nothing waits in the sequencer's inbound rings either (a turn that found its ring
        // full leaves records there with every tail equal).
        for (const RemoteStatus& remote : sequencer->node().remote_status()) {
            if (remote.inbound_used_bytes != 0) {
                return false;
            }
        }
        for (auto& [nodeid, sim] : nodes_) {
            if (sim->stopped()) {
                continue;
            }
            if (sim->node().in_failover() || sim->unreleased() != 0 || sim->delivered().empty() ||
                sim->delivered().rbegin()->first != reference.rbegin()->first) {
                return false;
            }
        }
        return true;
    }

private:
    void fail(const Failure& failure)
    {
        uint32_t nodeid = failure.nodeid;
        if (nodeid == 0) {
            // Whoever sequences, or (during a failover) the first live node by id: the one
            // taking over.
            nodeid = sequencer_id();
            for (auto it = nodes_.begin(); nodeid == 0 && it != nodes_.end(); ++it) {
                nodeid = it->second->stopped() ? 0 : it->first;
            }
        }
        if (nodeid == 0 || !has(nodeid) || node(nodeid).stopped()) {
            return;
        }
        if (!failure.hang) {
            fabric_.crash(nodeid);
        }
        node(nodeid).fail_here();
        failed_.emplace_back(nodeid, &node(nodeid));
        if (failure.restart_after_ms != 0) {
            restarts_.emplace_back(now_at_ + failure.restart_after_ms, nodeid);
        }
    }

    // A client of a working node dies in the middle of a fragmented message (some of it
    // accepted, not all); the first client of each node stays (its process goes with
    // its node). None in the middle of one now: tried again at the next tick.
    void kill_client_mid_message()
    {
        std::vector<Client*> candidates;
        for (auto& [nodeid, sim] : nodes_) {
            if (sim->stopped() || !sim->node().admitted() || sim->node().failed()) {
                continue;
            }
            for (Client& client : sim->clients()) {
                if (&client != &sim->clients().front() && client.state == Client::State::joined &&
                    client.fragmenting && client.fragmented_accepted != 0) {
                    candidates.push_back(&client);
                }
            }
        }
        if (candidates.empty()) {
            return;
        }
        candidates[random_() % candidates.size()]->state = Client::State::dying;
        ++deaths_;
        next_death_at_ms_ = now_at_ + 20 + random_() % 100;
    }

    // The failed process is gone for good (a hung one is killed now); a new one starts
    // with the node's id and asks the running cluster to admit it.
    void restart(uint32_t nodeid)
    {
        fabric_.crash(nodeid);
        retired_.push_back(std::move(nodes_.at(nodeid)));
        start(nodeid, ++incarnations_[nodeid]);
    }

public:
    // Every failed incarnation, with the id of its node.
    const std::vector<std::pair<uint32_t, SimNode*>>& failed_nodes() const { return failed_; }
    const std::vector<std::unique_ptr<SimNode>>& retired() const { return retired_; }
    bool restarted(uint32_t nodeid) const { return incarnations_.contains(nodeid); }

private:
    void start(uint32_t nodeid, uint32_t incarnation = 0)
    {
        auto sim = std::make_unique<SimNode>(fabric_, scenario_, nodeid, random_, incarnation);
        // SAFE: a reader gets the message only once every live node whose ring it
        // belongs in holds it.
        sim->on_safe_read = [this](uint32_t reader, uint64_t position, uint64_t end) {
            ++safe_reads_;
            // The view as the sequencer has it now (the reader's own while a failover
            // is under way): a node removed before the message never gets it.
            SimNode* now_sequencing = sequencer();
            const std::vector<uint32_t> view = now_sequencing != nullptr ? now_sequencing->node().view().members
                                                                         : node(reader).node().view().members;
            for (auto& [holder, other] : nodes_) {
                if (other->stopped() || !other->node().admitted() || other->ring_start() > position ||
                    std::find(view.begin(), view.end(), holder) == view.end()) {
                    continue;
                }
                EXPECT_GE(other->ring().unpublished_tail(), end)
                    << "node " << reader << " was handed the SAFE message at " << position << " before node "
                    << holder << " held it";
            }
        };
        nodes_[nodeid] = std::move(sim);
    }

public:
    uint64_t safe_reads() const { return safe_reads_; }
    uint32_t client_deaths() const { return deaths_; }

private:

    void step_all(uint64_t now, bool send, uint64_t at = 0)
    {
        // The order nodes take their turns in differs per tick, from the seed.
        std::vector<uint32_t> order;
        for (auto& [nodeid, sim] : nodes_) {
            order.push_back(nodeid);
        }
        std::shuffle(order.begin(), order.end(), random_);
        for (uint32_t nodeid : order) {
            SimNode& sim = *nodes_[nodeid];
            const bool leaving =
                nodeid == 2 && scenario_.nodes >= 3 && scenario_.clean_leave && at + 30 >= scenario_.leave_at_ms;
            sim.turn(now, send && !leaving, leaving && send && at + 30 == scenario_.leave_at_ms);
            if (!sim.stopped() && sim.node().failed()) {
                // It stopped itself (no majority): its process ends, as rcpgd exits.
                fabric_.crash(nodeid);
                sim.fail_here();
                failed_.emplace_back(nodeid, &sim);
                stopped_themselves_.push_back(nodeid);
            }
        }
    }

    const Scenario& scenario_;
    MemoryFabric fabric_;
    std::mt19937_64 random_;
    std::map<uint32_t, std::unique_ptr<SimNode>> nodes_;
    std::vector<std::pair<uint32_t, SimNode*>> failed_;
    std::vector<uint32_t> stopped_themselves_;
    std::vector<std::pair<uint64_t, uint32_t>> restarts_;  // (scenario time, node)
    bool failed_past_hold_ = false;
    bool behind_past_hold_ = false;
    std::vector<std::unique_ptr<SimNode>> retired_;        // failed incarnations, kept for the checks
    std::map<uint32_t, uint32_t> incarnations_;
    uint64_t now_at_ = 0;
    uint64_t idle_clock_ms_ = 0;  // form_and_idle and idle_until
    bool leave_begun_ = false;
    uint64_t safe_reads_ = 0;
    uint32_t deaths_ = 0;
    uint64_t next_death_at_ms_ = 40;
};

// The position from which a failed node's deliveries may differ from the survivors':
// the first entry of the view change that removes it (the NODEDOWN confchgs of every
// node lost at once, one per group, then the totem confchg; the first of them need not
// name this node, which may have no process in that group). Before it, the node held a
// prefix of the one order; after it (it was sequencing or had the longest tail when it
// failed with the sequencer) what only it saw is not part of the order.
uint64_t removal_seq(const std::map<uint64_t, Delivered>& order, uint32_t nodeid, uint64_t after_seq)
{
    auto nodedown_only = [](const Delivered& entry) {
        if (entry.kind != EntryKind::confchg) {
            return false;
        }
        auto confchg = wire::decode_confchg(entry.payload);
        return confchg && confchg->joined.empty() && !confchg->left.empty() &&
               std::all_of(confchg->left.begin(), confchg->left.end(),
                           [](const delivery::MemberAddress& left) { return left.reason == delivery::reason_node_down; });
    };
    for (auto it = order.lower_bound(after_seq); it != order.end(); ++it) {
        const auto& [seq, entry] = *it;
        bool removes = false;
        if (entry.kind == EntryKind::totem_confchg) {
            auto view = wire::decode_totem(entry.payload);
            removes = view && std::find(view->members.begin(), view->members.end(), nodeid) == view->members.end();
        } else if (entry.kind == EntryKind::confchg) {
            auto confchg = wire::decode_confchg(entry.payload);
            removes = confchg && std::any_of(confchg->left.begin(), confchg->left.end(), [&](const delivery::MemberAddress& left) {
                          return left.nodeid == nodeid && left.reason == delivery::reason_node_down;
                      });
        }
        if (!removes) {
            continue;
        }
        uint64_t first = seq;
        for (auto back = it; back != order.begin() && std::prev(back)->first == first - 1 &&
                             std::prev(back)->first >= after_seq && nodedown_only(std::prev(back)->second);
             --back) {
            --first;
        }
        return first;
    }
    return UINT64_MAX;
}

// The rule the nodes follow: more than half of the configured nodes, or exactly half
// with the first of the sequencer order (node 1 here).
bool majority(const std::vector<uint32_t>& nodes, int configured)
{
    const auto present = static_cast<int>(nodes.size());
    return 2 * present > configured ||
           (2 * present == configured && std::find(nodes.begin(), nodes.end(), 1u) != nodes.end());
}

// A minority is left: every node must have stopped (no second order may start), and what
// the nodes delivered before never contradicts itself.
void check_minority(Cluster& cluster)
{
    std::vector<std::pair<uint32_t, const SimNode*>> nodes;
    for (uint32_t nodeid : cluster.live()) {
        EXPECT_TRUE(cluster.node(nodeid).node().failed()) << "node " << nodeid << " went on without a majority";
        nodes.emplace_back(nodeid, &cluster.node(nodeid));
    }
    // Those that stopped themselves too (a crashed sequencer's newest entries were never
    // part of any order, and a node taking over after it may have used those numbers).
    for (const auto& [nodeid, incarnation] : cluster.failed_nodes()) {
        if (incarnation->node().failed()) {
            nodes.emplace_back(nodeid, incarnation);
        }
    }
    std::map<uint64_t, std::pair<uint32_t, Delivered>> seen;
    for (const auto& [nodeid, sim] : nodes) {
        for (const auto& [seq, entry] : sim->delivered()) {
            auto [at, fresh] = seen.emplace(seq, std::make_pair(nodeid, entry));
            ASSERT_TRUE(at->second.second == entry) << "nodes " << at->second.first << " and " << nodeid
                                                    << " differ at seq " << seq;
            (void)fresh;
        }
    }
}

// Every check of a finished run.
void check(Cluster& cluster, const Scenario& scenario)
{
    SCOPED_TRACE(describe(scenario));
    if (!majority(cluster.live(), scenario.nodes)) {
        std::printf("%s: %zu failed, no majority left: every live node stopped\n", describe(scenario).c_str(),
                    cluster.failed_nodes().size());
        check_minority(cluster);
        return;
    }
    ASSERT_TRUE(cluster.caught_up()) << "the live nodes did not all reach the sequencer's tail";
    SimNode& final_sequencer = *cluster.sequencer();
    const auto& reference = final_sequencer.delivered();
    ASSERT_FALSE(reference.empty());
    const auto& failed = cluster.failed_nodes();

    // One order: every live node's entries are the sequencer's, at the same sequence
    // numbers, consecutive from the first it saw, up to the same end. The order is the
    // union of what they saw; a failed node saw a prefix of it (up to its removal).
    std::map<uint64_t, Delivered> order;
    for (const auto& [nodeid, sim] : cluster.nodes()) {
        if (sim->failed_here()) {
            continue;
        }
        EXPECT_FALSE(sim->node().failed()) << "node " << nodeid;
        EXPECT_EQ(sim->node().counters().protocol_violations, 0u) << "node " << nodeid;
        uint64_t expected_seq = sim->first_seq();
        for (const auto& [seq, entry] : sim->delivered()) {
            ASSERT_EQ(seq, expected_seq) << "node " << nodeid << " has a gap";
            ++expected_seq;
            auto [at, fresh] = order.emplace(seq, entry);
            ASSERT_TRUE(at->second == entry) << "node " << nodeid << " differs at seq " << seq;
            (void)fresh;
        }
        if (!sim->stopped()) {
            ASSERT_EQ(sim->delivered().rbegin()->first, reference.rbegin()->first) << "node " << nodeid << " behind";
        }
    }
    for (const auto& [nodeid, incarnation] : failed) {
        const SimNode& sim = *incarnation;
        const uint64_t removed_at = removal_seq(order, nodeid, sim.first_seq());
        EXPECT_NE(removed_at, UINT64_MAX) << "failed node " << nodeid << " was never removed";
        for (const auto& [seq, entry] : sim.delivered()) {
            if (seq >= removed_at) {
                break;
            }
            auto [at, fresh] = order.emplace(seq, entry);
            ASSERT_TRUE(at->second == entry) << "failed node " << nodeid << " differs at seq " << seq
                                             << " before its removal at " << removed_at;
            (void)fresh;
        }
    }
    uint64_t expected_seq = 1;
    for (const auto& [seq, entry] : order) {
        ASSERT_EQ(seq, expected_seq) << "no node saw seq " << expected_seq;
        ++expected_seq;
    }

    // No loss, no duplicates, per-sender FIFO, intact payloads, whole messages: each
    // sender's messages appear in the order as 0, 1, 2, ... — all it handed over if its
    // node lives on. Fragments are reassembled as libcpg does (a confchg that removes the
    // sender discards its half message); after that confchg nothing more of it comes.
    struct Sender {
        uint64_t next = 0;                // whole messages so far
        std::vector<std::byte> partial;   // of a message in fragments
        uint32_t partial_total = 0;
        bool in_message = false;
        std::optional<uint32_t> removed_reason;
        uint32_t discarded_bytes = 0;     // of the half message its removal discarded
    };
    std::map<std::pair<uint32_t, uint32_t>, Sender> senders;
    for (const auto& [seq, entry] : order) {
        if (entry.kind == EntryKind::confchg) {
            auto confchg = wire::decode_confchg(entry.payload);
            ASSERT_TRUE(confchg) << "seq " << seq;
            for (const delivery::MemberAddress& left : confchg->left) {
                Sender& sender = senders[{left.nodeid, left.pid}];
                sender.removed_reason = left.reason;
                sender.discarded_bytes = sender.in_message ? static_cast<uint32_t>(sender.partial.size()) : 0;
                sender.in_message = false;
                sender.partial.clear();
            }
            continue;
        }
        if (entry.kind != EntryKind::data) {
            continue;
        }
        Sender& sender = senders[{entry.nodeid, entry.pid}];
        ASSERT_FALSE(sender.removed_reason) << "sender " << entry.nodeid << "/" << entry.pid << " at seq " << seq
                                            << ", after its removal";
        const bool fragment = (entry.flags & delivery::kFlagFragment) != 0;
        if (fragment && (entry.flags & delivery::kFlagFragmentFirst) == 0) {
            ASSERT_TRUE(sender.in_message) << "seq " << seq << ": a fragment without the start of its message";
            ASSERT_EQ(entry.total_bytes, sender.partial_total) << "seq " << seq;
            sender.partial.insert(sender.partial.end(), entry.payload.begin(), entry.payload.end());
            ASSERT_LE(sender.partial.size(), sender.partial_total) << "seq " << seq;
        } else {
            ASSERT_FALSE(sender.in_message) << "seq " << seq << ": a new message of " << entry.nodeid << "/"
                                            << entry.pid << " before its half one ended";
            if (fragment) {
                sender.in_message = true;
                sender.partial = entry.payload;
                sender.partial_total = entry.total_bytes;
            }
        }
        if (fragment && (entry.flags & delivery::kFlagFragmentLast) == 0) {
            continue;
        }
        const std::vector<std::byte>& whole = fragment ? sender.partial : entry.payload;
        ASSERT_GE(whole.size(), 16u);
        if (fragment) {
            ASSERT_EQ(whole.size(), sender.partial_total) << "message ending at seq " << seq;
        }
        uint32_t nodeid;
        uint32_t pid;
        uint64_t counter;
        std::memcpy(&nodeid, whole.data(), 4);
        std::memcpy(&pid, whole.data() + 4, 4);
        std::memcpy(&counter, whole.data() + 8, 8);
        ASSERT_EQ(nodeid, entry.nodeid) << "seq " << seq;
        ASSERT_EQ(pid, entry.pid) << "seq " << seq;
        ASSERT_EQ(counter, sender.next) << "sender " << nodeid << "/" << pid << " at seq " << seq;
        ++sender.next;
        ASSERT_TRUE(whole == make_payload(nodeid, pid, counter, static_cast<uint32_t>(whole.size())))
            << "payload of the message ending at seq " << seq;
        sender.in_message = false;
        sender.partial.clear();
    }
    uint64_t total_sent = 0;
    for (const auto& [nodeid, incarnation] : failed) {
        for (Client& client : incarnation->clients()) {
            EXPECT_LE(senders[std::make_pair(nodeid, client.pid)].next, client.sent)
                << "sender " << nodeid << "/" << client.pid;
            total_sent += client.sent;
        }
    }
    for (const auto& [nodeid, sim] : cluster.nodes()) {
        if (sim->failed_here()) {
            continue;  // counted above
        }
        for (Client& client : sim->clients()) {
            const Sender& sender = senders[std::make_pair(nodeid, client.pid)];
            EXPECT_EQ(sender.next, client.sent) << "sender " << nodeid << "/" << client.pid;
            EXPECT_GT(client.sent, 0u) << "client " << nodeid << "/" << client.pid << " never got to send";
            total_sent += client.sent;
            if (client.state == Client::State::dead) {
                // Every fragment it handed over is there, then its PROCDOWN discarded them.
                EXPECT_EQ(sender.removed_reason, std::optional<uint32_t>(delivery::reason_process_down))
                    << "dead client " << nodeid << "/" << client.pid;
                EXPECT_EQ(sender.discarded_bytes, client.fragmented_accepted)
                    << "the half message of dead client " << nodeid << "/" << client.pid;
            } else if (client.state == Client::State::left) {
                EXPECT_EQ(sender.removed_reason, std::optional<uint32_t>(delivery::reason_leave))
                    << "client " << nodeid << "/" << client.pid;
            } else if (sim->stopped()) {
                // Still in its group when its node left the cluster.
                EXPECT_EQ(sender.removed_reason, std::optional<uint32_t>(delivery::reason_node_down))
                    << "client " << nodeid << "/" << client.pid;
            } else {
                // It may have stopped in the middle of a message when sending ended.
                EXPECT_FALSE(sender.removed_reason) << "client " << nodeid << "/" << client.pid;
                const uint32_t accepted = client.fragmenting ? client.fragmented_accepted : 0;
                EXPECT_EQ(sender.in_message, accepted != 0) << "client " << nodeid << "/" << client.pid;
                EXPECT_EQ(sender.partial.size(), accepted) << "client " << nodeid << "/" << client.pid;
            }
        }
    }
    uint64_t failover_ms = 0;
    for (const auto& [nodeid, sim] : cluster.nodes()) {
        if (!sim->stopped()) {
            failover_ms = std::max(failover_ms, sim->node().counters().last_failover_ms);
        }
    }
    std::printf("%s: %llu messages, %zu entries, %llu SAFE reads, %u clients died mid-message, %zu failed, "
                "%zu restarted, sequencer %u, failover %llu ms\n",
                describe(scenario).c_str(), static_cast<unsigned long long>(total_sent), order.size(),
                static_cast<unsigned long long>(cluster.safe_reads()), cluster.client_deaths(), failed.size(),
                cluster.retired().size(),
                cluster.sequencer_id(), static_cast<unsigned long long>(failover_ms));

    if (failed.empty()) {
        // Payloads above the inline limit reach the sequencer's ring by device copy (its
        // loopback), from a member's inbound ring or a local client's memory; only the
        // sequencer's own clients' first messages, sent before the loopback was up, were
        // copied by the CPU. No member is admitted before that.
        uint64_t above_inline = 0;
        uint64_t from_members_above_inline = 0;
        for (const auto& [seq, entry] : reference) {
            if (entry.kind == EntryKind::data && entry.payload.size() > 128) {
                ++above_inline;
                from_members_above_inline += entry.nodeid != kSequencer ? 1 : 0;
            }
        }
        const uint64_t copied = cluster.node(kSequencer).node().counters().messages_copied_by_device;
        EXPECT_LE(copied, above_inline);
        EXPECT_GE(copied, from_members_above_inline);
        if (from_members_above_inline > 0) {
            EXPECT_GT(copied, from_members_above_inline) << "the sequencer's own clients' payloads went by device too";
        }
    }

    // Same group table and view on every live node; the view is the live nodes, and no
    // process of a failed node is left in a group.
    const Node& sequencer = final_sequencer.node();
    std::vector<uint32_t> live;
    for (const auto& [nodeid, sim] : cluster.nodes()) {
        if (sim->stopped()) {
            continue;
        }
        live.push_back(nodeid);
        EXPECT_TRUE(same_rows(sim->node().groups().rows(), sequencer.groups().rows())) << "node " << nodeid;
        EXPECT_EQ(sim->node().view().members, sequencer.view().members) << "node " << nodeid;
        EXPECT_EQ(sim->node().view().ring_seq, sequencer.view().ring_seq) << "node " << nodeid;
        EXPECT_EQ(sim->node().view().ring_nodeid, cluster.sequencer_id()) << "node " << nodeid;
    }
    EXPECT_EQ(sequencer.view().members, live);
    for (const GroupTable::Row& row : sequencer.groups().rows()) {
        for (const auto& [nodeid, incarnation] : failed) {
            for (Client& client : incarnation->clients()) {
                EXPECT_FALSE(row.process == (ProcessId{nodeid, client.pid}))
                    << "a process of failed node " << nodeid << " is still in " << text_of(row.group);
            }
        }
    }
    // The sequencer is the first live node in the sequencer order (by id here) that has
    // been there all along: a node that failed and came back joins as a member.
    for (uint32_t nodeid : live) {
        if (nodeid < cluster.sequencer_id()) {
            EXPECT_TRUE(cluster.restarted(nodeid)) << "node " << nodeid << " comes before sequencer "
                                                   << cluster.sequencer_id() << " in the order";
        }
    }

    if (scenario.nodes < 3 || !scenario.late_join || !scenario.clean_leave) {
        return;
    }
    // The late node's first entry is the view that admits it.
    const auto late = static_cast<uint32_t>(scenario.nodes);
    const auto& late_delivered = cluster.node(late).delivered();
    ASSERT_FALSE(late_delivered.empty());
    ASSERT_EQ(late_delivered.begin()->second.kind, EntryKind::totem_confchg);
    auto totem = wire::decode_totem(late_delivered.begin()->second.payload);
    ASSERT_TRUE(totem);
    EXPECT_TRUE(std::find(totem->members.begin(), totem->members.end(), late) != totem->members.end());

    // The leaver: gone from the view; NODEDOWN for its processes still in a group, before
    // the view without it; none of its processes remain anywhere.
    EXPECT_TRUE(cluster.node(2).node().left());
    EXPECT_EQ(std::count(sequencer.view().members.begin(), sequencer.view().members.end(), 2u), 0);
    std::optional<uint64_t> nodedown_seq;
    std::optional<uint64_t> view_without_seq;
    for (const auto& [seq, entry] : order) {
        if (entry.kind == EntryKind::confchg) {
            auto confchg = wire::decode_confchg(entry.payload);
            ASSERT_TRUE(confchg);
            for (const delivery::MemberAddress& left : confchg->left) {
                if (left.nodeid == 2 && left.reason == delivery::reason_node_down) {
                    nodedown_seq = seq;
                }
            }
        } else if (entry.kind == EntryKind::totem_confchg && !view_without_seq) {
            auto view = wire::decode_totem(entry.payload);
            ASSERT_TRUE(view);
            const bool had_two = cluster.node(2).first_seq() <= seq;
            if (had_two && std::find(view->members.begin(), view->members.end(), 2u) == view->members.end()) {
                view_without_seq = seq;
            }
        }
    }
    ASSERT_TRUE(view_without_seq) << "no view without the leaver";
    for (const GroupTable::Row& row : sequencer.groups().rows()) {
        EXPECT_NE(row.process.nodeid, 2u) << "a process of the leaver is still in " << text_of(row.group);
    }
    // Its first client stays in its group until the node goes: NODEDOWN, before the view.
    if (cluster.node(2).clients().front().state == Client::State::joined) {
        ASSERT_TRUE(nodedown_seq) << "no NODEDOWN for the leaver's remaining process";
        EXPECT_LT(*nodedown_seq, *view_without_seq);
    }
}

Scenario scenario_for(uint64_t seed)
{
    Scenario scenario;
    scenario.seed = seed;
    std::mt19937_64 random(seed * 0x9e3779b97f4a7c15ull);
    scenario.nodes = 3 + static_cast<int>(random() % 3);       // 3..5
    scenario.clients_per_node = 1 + static_cast<int>(random() % 4);
    scenario.max_delay_ms = static_cast<uint32_t>(random() % 5);
    scenario.max_payload = random() % 2 == 0 ? 120 : 3000;     // below and above the inline limit
    scenario.slow_reader_entries_per_tick = random() % 3 == 0 ? 2 : 0;
    scenario.safe_one_in = random() % 2 == 0 ? 0 : 1 + static_cast<uint32_t>(random() % 8);
    scenario.fragmented_one_in = random() % 2 == 0 ? 0 : 2 + static_cast<uint32_t>(random() % 6);
    scenario.client_deaths = scenario.fragmented_one_in == 0 ? 0 : static_cast<uint32_t>(random() % 3);
    return scenario;
}

// Which seeds a run takes, from the environment:
//   RCPG_SIM_SEED=N        replays seed N alone;
//   RCPG_SIM_FIRST_SEED=F  starts at F (default 1);
//   RCPG_SIM_SEEDS=K       runs K seeds (default 40), or at most K with a budget;
//   RCPG_SIM_BUDGET_S=S    runs seeds until S seconds are spent (a soak: how many fit
//                          depends on the machine, never whether the test passes).
// A seed is never cut short: a budget is checked between seeds. The run prints which
// seeds it ran and how to replay one; a failing seed prints its own replay command.
struct SeedPlan {
    uint64_t first = 1;
    uint64_t max_seeds = 40;
    double budget_s = 0;  // 0: no budget, run max_seeds
};

uint64_t env_u64(const char* name, uint64_t fallback)
{
    const char* text = std::getenv(name);
    if (text == nullptr || *text == '\0') {
        return fallback;
    }
    char* end = nullptr;
    const unsigned long long value = std::strtoull(text, &end, 10);
    if (*end != '\0') {
        ADD_FAILURE() << name << "=" << text << " is not a number";
        return fallback;
    }
    return value;
}

SeedPlan seed_plan()
{
    SeedPlan plan;
    if (std::getenv("RCPG_SIM_SEED") != nullptr) {
        plan.first = env_u64("RCPG_SIM_SEED", 1);
        plan.max_seeds = 1;
        return plan;
    }
    plan.first = env_u64("RCPG_SIM_FIRST_SEED", 1);
    plan.budget_s = static_cast<double>(env_u64("RCPG_SIM_BUDGET_S", 0));
    plan.max_seeds = env_u64("RCPG_SIM_SEEDS", plan.budget_s > 0 ? UINT64_MAX : 40);
    return plan;
}

void run_seeds(Scenario (*scenario_for_seed)(uint64_t))
{
    const SeedPlan plan = seed_plan();
    const ::testing::TestInfo& test = *::testing::UnitTest::GetInstance()->current_test_info();
    const std::string replay = std::string(" ") + ::testing::internal::GetArgvs()[0] + " --gtest_filter=" +
                               test.test_suite_name() + "." + test.name();
    const auto started = std::chrono::steady_clock::now();
    auto spent_s = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    };
    uint64_t ran = 0;
    for (uint64_t seed = plan.first; ran < plan.max_seeds; ++seed) {
        if (plan.budget_s > 0 && ran > 0 && spent_s() >= plan.budget_s) {
            break;
        }
        const Scenario scenario = scenario_for_seed(seed);
        Cluster cluster(scenario);
        cluster.run();
        check(cluster, scenario);
        ++ran;
        if (::testing::Test::HasFailure()) {
            FAIL() << "replay with: RCPG_SIM_SEED=" << seed << replay;
        }
    }
    const std::string budget =
        plan.budget_s > 0 ? " of a " + std::to_string(static_cast<uint64_t>(plan.budget_s)) + " s budget" : "";
    std::printf("%s: ran %llu seeds (%llu..%llu) in %.1f s%s; replay one with RCPG_SIM_SEED=N%s\n", test.name(),
                static_cast<unsigned long long>(ran), static_cast<unsigned long long>(plan.first),
                static_cast<unsigned long long>(plan.first + ran - 1), spent_s(), budget.c_str(), replay.c_str());
}

TEST(ClusterSim, ManySeedsOneOrderNoLossLateJoinAndCleanLeave) { run_seeds(scenario_for); }

// Nodes fail while clients send: a member, the sequencer, the sequencer and then the
// node taking over from it (during the failover), a member and later the sequencer;
// each by crashing (its connections close) or hanging (only heartbeats tell), and some
// start again and rejoin. Or the network splits and heals: the side without a majority
// stops, and its nodes start again and rejoin.
Scenario failure_scenario_for(uint64_t seed)
{
    Scenario scenario;
    scenario.seed = seed;
    std::mt19937_64 random(seed * 0xbf58476d1ce4e5b9ull);
    scenario.late_join = false;
    scenario.clean_leave = false;
    // 3..16 nodes: larger clusters a quarter of the time (and fewer clients each there).
    scenario.nodes = random() % 4 == 0 ? 8 + static_cast<int>(random() % 9) : 3 + static_cast<int>(random() % 5);
    scenario.clients_per_node = 1 + static_cast<int>(random() % (scenario.nodes > 7 ? 2 : 3));
    scenario.max_delay_ms = static_cast<uint32_t>(random() % 5);
    scenario.max_payload = random() % 2 == 0 ? 120 : 3000;
    scenario.slow_reader_entries_per_tick = random() % 3 == 0 ? 2 : 0;
    scenario.run_ms = 500;
    scenario.safe_one_in = random() % 2 == 0 ? 0 : 1 + static_cast<uint32_t>(random() % 8);
    const uint64_t first_at = 60 + random() % 200;
    auto hang = [&] { return random() % 3 == 0; };
    auto member = [&] { return 2 + static_cast<uint32_t>(random() % static_cast<uint64_t>(scenario.nodes - 1)); };
    // Half of the single failed nodes come back (a new process), into a cluster that may
    // have another sequencer by then: they have to find it.
    auto restart_after = [&] { return random() % 2 == 0 ? 0 : 30 + random() % 120; };
    switch (random() % 5) {
    case 4: {
        // A partition: either side may hold the sequencer, and either may be the bigger.
        Partition partition;
        partition.at_ms = first_at;
        partition.heal_after_ms = 60 + random() % 150;
        const auto side_size = 1 + random() % static_cast<uint64_t>(scenario.nodes - 1);
        std::vector<uint32_t> ids;
        for (int node = 1; node <= scenario.nodes; ++node) {
            ids.push_back(static_cast<uint32_t>(node));
        }
        std::shuffle(ids.begin(), ids.end(), random);
        partition.side.insert(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(side_size));
        scenario.partition = partition;
        break;
    }
    case 0:
        scenario.failures = {{first_at, member(), hang(), restart_after()}};
        break;
    case 1:
        scenario.failures = {{first_at, 0, hang(), restart_after()}};
        break;
    // Two failures come back to nobody: whether a majority is left must not depend on
    // how soon a restarted node is in again.
    case 2:
        // The second while the first failover is still under way.
        scenario.failures = {{first_at, 0, hang()}, {first_at + 1 + random() % (2 * scenario.failure_timeout_ms), 0, hang()}};
        break;
    default:
        scenario.failures = {{first_at, member(), hang()}, {first_at + 100 + random() % 100, 0, hang()}};
        break;
    }
    scenario.fragmented_one_in = random() % 2 == 0 ? 0 : 2 + static_cast<uint32_t>(random() % 6);
    scenario.client_deaths = scenario.fragmented_one_in == 0 ? 0 : static_cast<uint32_t>(random() % 3);
    // Drawn last: the seeds' other choices stay what they were.
    scenario.evs_clients_per_node = static_cast<int>(random() % 2);
    return scenario;
}

TEST(ClusterSim, ManySeedsNodeAndSequencerFailuresLoseNothing) { run_seeds(failure_scenario_for); }

// EVS records (any process of a node in the view may send them; no group) forwarded to a
// sequencer that crashes: the node taking over sequences its own and the others send
// theirs again, none is lost or reordered, on every seed of a short run of crashes.
TEST(ClusterSim, EvsRecordsSurviveTheSequencersCrash)
{
    for (uint64_t seed = 1; seed <= 8; ++seed) {
        Scenario scenario;
        scenario.seed = seed;
        scenario.late_join = false;
        scenario.clean_leave = false;
        scenario.nodes = 3 + static_cast<int>(seed % 3);
        scenario.clients_per_node = 1;
        scenario.evs_clients_per_node = 2;
        scenario.max_payload = seed % 2 == 0 ? 120 : 3000;
        scenario.run_ms = 400;
        scenario.failures = {{100 + seed * 17, 0, false}};
        Cluster cluster(scenario);
        cluster.run();
        check(cluster, scenario);
        if (::testing::Test::HasFailure()) {
            FAIL() << "seed " << seed;
        }
    }
}

// Large messages with slow readers: the delivery rings wrap several times, and the
// sequencer waits for credit from the slowest node instead of overwriting.
TEST(ClusterSim, RingsWrapUnderSlowReaders)
{
    Scenario scenario;
    scenario.seed = 7;
    scenario.nodes = 3;
    scenario.clients_per_node = 2;
    scenario.min_payload = 2000;
    scenario.max_payload = 4000;
    scenario.sends_per_tick = 8;
    scenario.run_ms = 1500;
    scenario.late_start_ms = 300;
    scenario.leave_at_ms = 1200;
    scenario.slow_reader_entries_per_tick = 6;
    Cluster cluster(scenario);
    cluster.run();
    check(cluster, scenario);
    uint64_t bytes = 0;
    for (const auto& [seq, entry] : cluster.node(kSequencer).delivered()) {
        bytes += entry.payload.size();
    }
    EXPECT_GT(bytes, 3 * kRingBytes) << "the ring should have wrapped at least three times";
    EXPECT_GT(cluster.node(kSequencer).node().counters().ring_full_events, 0u) << "the slow reader never held it back";
}

// A member's reader holds payloads in place while it reads on (delivered in place, then
// moved to a backlog): the member's credit passes them, so the sequencer must know of
// them and go round them in every ring, lap after lap; through a failover too, where the
// next sequencer learns of them anew. More holds than the member has words for keep its
// credit before the rest.
Scenario holding_scenario(uint32_t held_payloads, bool sequencer_fails)
{
    Scenario scenario;
    scenario.seed = 11;
    scenario.nodes = 3;
    scenario.late_join = false;
    scenario.clean_leave = false;
    scenario.clients_per_node = 3;
    scenario.min_payload = 1000;
    scenario.max_payload = 4000;
    scenario.sends_per_tick = 8;
    scenario.run_ms = 1200;
    scenario.held_payloads = held_payloads;
    scenario.hold_ms = 300;
    if (sequencer_fails) {
        scenario.failures = {{500, 0, false}};
    }
    return scenario;
}

void check_holding(const Scenario& scenario)
{
    Cluster cluster(scenario);
    cluster.run();
    check(cluster, scenario);
    const SimNode& holder = cluster.node(scenario.holding_node);
    EXPECT_GT(holder.holds_taken(), scenario.held_payloads);
    if (scenario.held_payloads <= wire::kHoldWords) {
        EXPECT_GT(holder.holds_lapped(), 0u) << "no held payload's bytes came round a lap while it was held";
    } else {
        // The credit stays before the holds without a word: nothing laps them meanwhile.
        EXPECT_EQ(holder.holds_lapped(), 0u);
    }
}

TEST(ClusterSim, AMembersHeldPayloadsAreNeverWrittenOver) { check_holding(holding_scenario(3, false)); }
TEST(ClusterSim, MoreHeldPayloadsThanHoldWordsKeepTheCreditBeforeTheRest) { check_holding(holding_scenario(8, false)); }
TEST(ClusterSim, HeldPayloadsOutliveTheSequencer) { check_holding(holding_scenario(3, true)); }

// The node that takes over (node 2) has a reader holding payloads from before node 3 was
// admitted. Where they come round, the order has skips whose insides no ring is sent,
// and node 3's ring never had those bytes. When the sequencer fails while node 2 is
// behind node 3, node 2 repairs the end of its ring from node 3's: the held bytes must
// stay node 2's own (a raw read of the whole range would copy node 3's over them).
TEST(ClusterSim, TheRepairLeavesTheHeldPayloadsOfTheNodeTakingOverAlone)
{
    const uint64_t seeds = env_u64("RCPG_SIM_SEEDS", 20);
    uint64_t repaired_over_hold = 0;
    for (uint64_t seed = 1; seed <= seeds; ++seed) {
        Scenario scenario = holding_scenario(3, false);
        scenario.seed = seed;
        scenario.holding_node = 2;
        scenario.late_join = true;
        scenario.late_start_ms = 20;
        scenario.hold_ms = 1'000'000;  // the whole run
        scenario.max_delay_ms = 4;
        scenario.fail_sequencer_past_first_hold = true;
        Cluster cluster(scenario);
        cluster.run();
        check(cluster, scenario);
        ASSERT_FALSE(::testing::Test::HasFailure()) << "seed " << seed;
        repaired_over_hold += cluster.behind_past_hold() ? 1 : 0;
    }
    // The delays are random: in some seeds node 2 is ahead of node 3 when it fails.
    EXPECT_GT(repaired_over_hold, 0u) << "no seed repaired over a held payload: the test tests nothing";
    std::printf("%lu of %lu seeds repaired over a held payload\n", static_cast<unsigned long>(repaired_over_hold),
                static_cast<unsigned long>(seeds));
}

// A member admitted while nothing else happens holds the view that admits it. The
// sequencer writes that view's entry and its tail word right behind the admission
// snapshot; when all of it lands before the member applies the snapshot, placing its
// ring at the admission position must not undo the tail word that already landed (the
// entry would then wait for the next traffic).
TEST(ClusterSim, AnIdleMemberHoldsTheViewThatAdmitsIt)
{
    for (uint64_t seed = 1; seed <= 40; ++seed) {
        Scenario scenario;
        scenario.seed = seed;
        scenario.nodes = 3;
        scenario.late_join = false;
        scenario.clean_leave = false;
        scenario.max_delay_ms = static_cast<uint32_t>(seed % 3);  // 0: everything lands in the same step
        Cluster cluster(scenario);
        cluster.form_and_idle(200);
        const View& sequencer = cluster.node(kSequencer).node().view();
        ASSERT_EQ(sequencer.members, (std::vector<uint32_t>{1, 2, 3})) << "seed " << seed;
        for (uint32_t nodeid : {2u, 3u}) {
            EXPECT_EQ(cluster.node(nodeid).node().view().members, sequencer.members) << "seed " << seed << ", node " << nodeid;
            EXPECT_EQ(cluster.node(nodeid).node().view().ring_seq, sequencer.ring_seq) << "seed " << seed << ", node " << nodeid;
        }
    }
}

// What a node's ring is exposed to follows the roles: the sequencer may write it (data
// area and the three words behind the entries), no other node may reach it at all, and
// the node that takes over after a failure may read it only until the survivors continue.
TEST(ClusterSim, ARingIsExposedToItsSequencerAloneAndReadableOnlyForARepair)
{
    Scenario scenario;
    scenario.seed = 5;
    scenario.nodes = 4;
    scenario.late_join = false;
    scenario.clean_leave = false;
    scenario.max_delay_ms = 1;
    Cluster cluster(scenario);
    cluster.form_and_idle(500);
    // What `owner` exposes to `peer` under `tag`, as `peer` learnt it.
    const auto exposed = [&](uint32_t owner, uint32_t peer, uint32_t tag) {
        return cluster.node(peer).node().transport()->remote_region(owner, tag).has_value();
    };
    const auto ring_tags = {wire::kTagDeliveryRing, wire::kTagRingControl, wire::kTagSnapshot, wire::kTagRepairRing};
    const auto reaches_nothing = [&](uint32_t owner, uint32_t peer) {
        return std::none_of(ring_tags.begin(), ring_tags.end(), [&](uint32_t tag) { return exposed(owner, peer, tag); });
    };
    for (uint32_t peer : {2u, 3u, 4u}) {
        // The sequencer's ring is no one's: it asked the others to let it join before it
        // started the cluster, and took back what it had exposed to them.
        EXPECT_TRUE(reaches_nothing(1, peer)) << "node " << peer << " reaches the sequencer's ring";
    }
    for (uint32_t owner : {2u, 3u, 4u}) {
        EXPECT_TRUE(exposed(owner, 1, wire::kTagDeliveryRing) && exposed(owner, 1, wire::kTagRingControl)) << owner;
        EXPECT_FALSE(exposed(owner, 1, wire::kTagRepairRing)) << owner;
        for (uint32_t peer : {2u, 3u, 4u}) {
            if (peer == owner) {
                continue;
            }
            // The members keep connections to each other (they continue over them after a
            // failover): what they reach of each other's memory is the point.
            ASSERT_TRUE(cluster.node(peer).node().transport()->is_connected(owner)) << peer << " to " << owner;
            EXPECT_TRUE(reaches_nothing(owner, peer)) << "node " << peer << " reaches node " << owner << "'s ring";
        }
    }

    cluster.crash(1);
    // Node 2 takes over; the survivors expose their rings to it, readable for the repair.
    bool readable_during_failover = false;
    const bool continued = cluster.idle_until(
        [&] {
            readable_during_failover |= exposed(3, 2, wire::kTagRepairRing) && exposed(4, 2, wire::kTagRepairRing);
            return cluster.sequencer_id() == 2 && !cluster.node(3).node().in_failover() &&
                   !cluster.node(4).node().in_failover();
        },
        10000);
    ASSERT_TRUE(continued) << "the survivors did not continue under node 2";
    EXPECT_TRUE(readable_during_failover);
    cluster.idle_until([] { return false; }, 100);  // the withdrawals reach node 2
    for (uint32_t owner : {3u, 4u}) {
        EXPECT_TRUE(exposed(owner, 2, wire::kTagDeliveryRing) && exposed(owner, 2, wire::kTagRingControl)) << owner;
        EXPECT_FALSE(exposed(owner, 2, wire::kTagRepairRing)) << "node " << owner << "'s ring is still readable";
        EXPECT_TRUE(reaches_nothing(owner, owner == 3 ? 4 : 3));
    }
}

// The sequencer fails right after it wrote a view (a node's removal) that the members have
// not applied yet. Each member applies what was committed before it fences the lost
// sequencer, that view among them: it names the lost sequencer, so it must not end the
// failover the member has just begun. The survivors continue under the next node.
TEST(ClusterSim, AViewOfTheLostSequencerAppliedWhileFencingItDoesNotEndTheFailover)
{
    int caught_between = 0;
    for (uint64_t seed = 1; seed <= 20; ++seed) {
        Scenario scenario;
        scenario.seed = seed;
        scenario.nodes = 5;
        scenario.late_join = false;
        scenario.clean_leave = false;
        scenario.max_delay_ms = 0;
        Cluster cluster(scenario);
        cluster.form_and_idle(200);
        cluster.crash(5);
        const auto has_5 = [&](uint32_t nodeid) {
            const std::vector<uint32_t>& members = cluster.node(nodeid).node().view().members;
            return std::find(members.begin(), members.end(), 5u) != members.end();
        };
        // The first moment the sequencer wrote the view without node 5 while a member has
        // not applied it (how often that moment comes depends on the order of turns).
        const bool between = cluster.idle_until(
            [&] { return !has_5(1) && (has_5(3) || has_5(4)); }, 5000);
        if (!between) {
            continue;
        }
        ++caught_between;
        cluster.crash(1);
        const bool continued = cluster.idle_until(
            [&] {
                return cluster.sequencer_id() == 2 && !cluster.node(3).node().in_failover() &&
                       !cluster.node(4).node().in_failover() && cluster.node(2).node().view().members.size() == 3;
            },
            20000);
        ASSERT_TRUE(continued) << "seed " << seed << ": the survivors did not continue under node 2";
        for (uint32_t nodeid : {2u, 3u, 4u}) {
            EXPECT_FALSE(cluster.node(nodeid).node().failed()) << "seed " << seed << ", node " << nodeid;
            EXPECT_EQ(cluster.node(nodeid).node().view().members, (std::vector<uint32_t>{2, 3, 4}))
                << "seed " << seed << ", node " << nodeid;
        }
    }
    std::printf("%d seeds caught the moment\n", caught_between);
    EXPECT_GT(caught_between, 0) << "no seed caught the sequencer between writing a view and a member applying it";
}

// A sequencer (faulty, or someone who took its place) writes into a member's ring an
// entry that claims to be that member's own forwarded record, numbered as the next one
// due, though the member never sent it. The member must take it for the protocol
// violation it is and stop, as for any entry it cannot account for: neither deliver it
// as its own client's message nor trip over its own bookkeeping.
TEST(ClusterSim, AnEntryClaimingAMembersRecordThatItNeverSentIsAViolation)
{
    Scenario scenario;
    scenario.seed = 3;
    scenario.nodes = 2;
    scenario.late_join = false;
    scenario.clean_leave = false;
    scenario.clients_per_node = 0;  // the member forwards nothing at all
    scenario.max_delay_ms = 1;
    Cluster cluster(scenario);
    cluster.form_and_idle(200);
    SimNode& member = cluster.node(2);
    ASSERT_EQ(member.node().role(), Role::member);
    ASSERT_FALSE(member.node().failed());

    // What the sequencer's RDMA write would leave in the member's memory: the entry, then
    // the committed position in the ring header.
    DeliveryRing& ring = member.ring();
    const uint64_t position = ring.unpublished_tail();
    const delivery::EntryPlacement placement = delivery::place_entry(position, 8, false);
    ASSERT_LE((position & (kRingBytes - 1)) + placement.entry_bytes, kRingBytes);
    delivery::EntryHeader entry{};
    entry.entry_bytes = placement.entry_bytes;
    entry.kind = delivery::EntryKind::data;
    entry.seq = ring.next_seq();
    entry.nodeid = 2;
    entry.group_id = 1;
    entry.pid = 4242;
    entry.payload_bytes = 8;
    entry.payload_offset = placement.payload_offset;
    entry.total_bytes = 8;
    entry.origin_seq = 1;  // "the member's first record": it sent none
    auto* at = const_cast<std::byte*>(ring.data()) + (position & (kRingBytes - 1));  // the peer's write
    std::memcpy(at, &entry, sizeof(entry));
    ring.header().cluster_tail.store(position + placement.entry_bytes, std::memory_order_release);

    const bool stopped = cluster.idle_until([&] { return member.failed_here(); }, 100);
    EXPECT_TRUE(stopped) << "the member went on after its sequencer named a record it never sent";
    EXPECT_EQ(member.node().counters().protocol_violations, 1u);
    EXPECT_EQ(member.node().counters().messages_delivered, 0u);
}

}  // namespace
}  // namespace rcpg::ordering
