// The daemon's cluster state: the transport, and what this node keeps for its role
// (sequencer: one RemoteNode per other node; member: its writer to the sequencer).
// The protocol is described in ordering/NOTES.md.
#pragma once

#include "libcpg/ipc/shm.hpp"
#include "ordering/cluster_wire.hpp"
#include "ordering/delivery_stream.hpp"
#include "transport/ring_reader.hpp"
#include "transport/ring_writer.hpp"
#include "transport/transport.hpp"

#include <sys/mman.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace rcpg::daemon {

// Page-aligned private memory for registration (rings, credit words, staging).
class AnonymousMemory {
public:
    AnonymousMemory() = default;
    explicit AnonymousMemory(size_t bytes)
    {
        void* address = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (address != MAP_FAILED) {
            mapping_ = ipc::Mapping(address, bytes);
        }
    }
    std::byte* bytes() const { return mapping_.bytes(); }
    size_t size() const { return mapping_.size(); }
    explicit operator bool() const { return static_cast<bool>(mapping_); }

private:
    ipc::Mapping mapping_;
};

// A registration that is undone when it goes (before the memory it names).
class Registration {
public:
    Registration() = default;
    Registration(transport::Transport& transport, transport::RegionId region) : transport_(&transport), region_(region) {}
    Registration(Registration&& other) noexcept
        : transport_(std::exchange(other.transport_, nullptr)), region_(other.region_)
    {
    }
    Registration& operator=(Registration&& other) noexcept
    {
        if (this != &other) {
            reset();
            transport_ = std::exchange(other.transport_, nullptr);
            region_ = other.region_;
        }
        return *this;
    }
    ~Registration() { reset(); }
    void reset()
    {
        if (transport_ != nullptr) {
            (void)transport_->deregister_region(region_);
            transport_ = nullptr;
        }
    }
    transport::RegionId id() const { return region_; }
    explicit operator bool() const { return transport_ != nullptr; }

private:
    transport::Transport* transport_ = nullptr;
    transport::RegionId region_;
};

// Per local client, on a member node.
struct ClusterSessionState {
    Registration arena;              // the client's send arena, source of forwarded payloads
    AnonymousMemory staging;         // a DataPrefix per submission slot, then one op slot
    Registration staging_region;
    // (batch, sub_head): what the client may reuse once that forwarded batch completed.
    std::deque<std::pair<uint64_t, uint64_t>> pending_heads;
    bool op_in_flight = false;       // a join, leave or procdown not yet seen delivered
};

inline constexpr size_t kOpSlotBytes = 256;

// The sequencer's view of another node.
struct RemoteNode {
    enum class State : uint8_t {
        absent,     // not connected
        connected,  // connected, not yet admitted (waits for its hello)
        member,     // in the view: its ring gets every entry
        leaving,    // asked to leave: gets its own removal, then nothing
    };
    uint32_t nodeid = 0;
    State state = State::absent;
    AnonymousMemory inbound_memory;  // its inbound ring: data then control block
    Registration inbound_region;
    std::optional<transport::RingReader> inbound;
    std::optional<transport::RingReader::Record> pending;  // read, waits for ring room
    std::optional<ordering::DeliveryStream> stream;
    AnonymousMemory snapshot_memory;  // source of its admission snapshot write
    Registration snapshot_region;
    uint64_t* credit_word = nullptr;  // where it publishes its consumed position
    std::optional<ordering::wire::Hello> hello;
};

struct ClusterState {
    std::unique_ptr<transport::Transport> transport;
    uint32_t sequencer = 0;
    Registration ring_region;  // this node's delivery ring mapping
    std::vector<transport::Event> events;
    uint64_t clock_ms = 0;

    // Sequencer.
    AnonymousMemory credit_memory;  // one 64-byte line per node: its delivery credit word
    Registration credit_region;
    std::map<uint32_t, RemoteNode> remotes;
    std::deque<uint32_t> pending_removals;  // nodes whose NODEDOWN waits for ring room
    bool replication_blocked = false;       // a send queue was full: retry after completions

    // Member.
    bool connected = false;
    bool connecting = false;
    uint64_t next_connect_ms = 0;
    bool admitted = false;
    bool leaving = false;
    bool left = false;
    AnonymousMemory member_memory;  // inbound credit word, then the snapshot region
    Registration member_region;
    std::optional<transport::RingWriter> writer;
    std::optional<transport::RemoteRegion> delivery_credit;  // at the sequencer
    uint64_t processed = 0;           // ring position checked and applied up to
    uint64_t published_credit = 0;    // last consumed position written to the sequencer
    uint64_t next_batch = 1;
    uint64_t completed_batch = 0;
    bool forwarded_uncommitted = false;
};

}  // namespace rcpg::daemon
