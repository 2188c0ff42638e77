// When this node writes its heartbeats, and which it still owes. Every node writes a
// rising counter into a word at each node it depends on (a member at its sequencer, the
// sequencer at every member), kHeartbeatsPerTimeout times per failure timeout, so that one
// or two lost to a busy peer do not fail this node there. A write the send queue refused
// (data keeps it full while a node catches up) is owed and tried at every step until it
// goes. The writes themselves are Node's (node_heartbeats.cpp); whether a peer's words
// still move is PeerLiveness's.
#pragma once

#include <cstdint>
#include <vector>

namespace rcpg::ordering {

inline constexpr uint64_t kHeartbeatsPerTimeout = 4;

class HeartbeatSchedule {
public:
    explicit HeartbeatSchedule(uint64_t failure_timeout_ms) : interval_ms_(failure_timeout_ms / kHeartbeatsPerTimeout) {}

    bool due(uint64_t now_ms) const { return now_ms >= next_ms_; }
    // A round at once (a new view: its members hear from the new sequencer at once).
    void due_now(uint64_t now_ms) { next_ms_ = now_ms; }
    // Starts a round at `now_ms`: the counter value every write of the round carries.
    // What the last round still owed is given up: this round's writes replace it.
    uint64_t begin_round(uint64_t now_ms)
    {
        ++counter_;
        next_ms_ = now_ms + interval_ms_;
        owed_.clear();
        return counter_;
    }
    // The value written last (a takeover notice carries it too).
    uint64_t counter() const { return counter_; }

    void owe(uint32_t peer) { owed_.push_back(peer); }
    bool owes() const { return !owed_.empty(); }
    // Tries the owed writes again: `settled(peer)` is true when the write went, or need
    // not go any more.
    template <typename Settled>
    void retry(Settled settled)
    {
        std::erase_if(owed_, settled);
    }
    // When the next step must run: at once while something is owed, else at the next round.
    uint64_t next_ms(uint64_t now_ms) const { return owed_.empty() ? next_ms_ : now_ms + 1; }

private:
    uint64_t interval_ms_;
    uint64_t counter_ = 0;
    uint64_t next_ms_ = 0;
    std::vector<uint32_t> owed_;
};

}  // namespace rcpg::ordering
