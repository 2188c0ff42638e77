// Election: a node taking over after its sequencer failed collects the survivors' tails,
// then repairs its own ring up to the longest one.
//
// The node next in the sequencer order promotes itself and waits for every other node
// of the lost sequencer's view that it does not suspect to ask to continue, telling
// where its ring ends (a Rejoin), until a failure timeout passed. Then the target is
// fixed: the longest tail of the answers, its own among them, and the node that has it
// (the holder). Every ring holds the same entries at the same positions, so the repair
// reads the positions it misses from the holder's ring into its own. If the holder is
// lost meanwhile, its answer is forgotten and the target chosen again. The reads, the
// quorum and the new view are Node's (node_failover.cpp); this is the bookkeeping, with
// no transport of its own.
#pragma once

#include "ordering/membership.hpp"

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <vector>

namespace rcpg::ordering {

// Where a surviving node's ring stood when it asked the new sequencer to continue.
struct Rejoin {
    uint64_t tail = 0;
    uint64_t next_seq = 0;
    uint64_t reclaim_limit = 0;
};

// Ring positions [begin, end).
struct PositionRange {
    uint64_t begin = 0;
    uint64_t end = 0;
    bool operator==(const PositionRange&) const = default;
};

// What a repair reads of [from, to) (to - from at most one ring), as pieces that do not
// cross the ring's end, leaving out the bytes of this node's held payloads (`holds`,
// entries of earlier laps that its readers still hold in place) where they come round
// again. The sequencer went round every such hold with a skip entry (a hold with no word
// at the sequencer kept the credit, and so the order, a lap short of it), so those bytes
// are a skip's inside in every ring: the survivor read from need not have them (it may
// have been admitted after that entry), and this node's readers still need its own.
std::vector<PositionRange> repair_reads(uint64_t from, uint64_t to, uint64_t ring_bytes,
                                        std::span<const PositionRange> holds);

class Election {
public:
    // `members`: the view the failed sequencer left behind (sorted). Where this node's own
    // ring stands follows (add_own), before anything else.
    Election(uint32_t self, std::vector<uint32_t> members, uint64_t started_ms, uint64_t deadline_ms);
    void add_own(Rejoin own) { rejoined_[self_] = own; }

    const std::vector<uint32_t>& members() const { return members_; }
    uint64_t started_ms() const { return started_ms_; }
    const std::map<uint32_t, Rejoin>& rejoined() const { return rejoined_; }

    // Whether `nodeid`'s request to continue is taken: of the view, not suspected, and
    // before the target is fixed (a later one would have to be repaired again).
    bool accepts(uint32_t nodeid, const std::set<uint32_t>& suspects) const;
    void add(uint32_t nodeid, Rejoin rejoin);
    // The node is gone: its answer no longer counts, and if it held the target, the target
    // is chosen again (its reads will never complete).
    void lose(uint32_t nodeid);

    // Every node of the view that is not suspected answered, or the deadline passed.
    bool answers_in(const std::set<uint32_t>& suspects, uint64_t now_ms) const;
    // The nodes that answered, this one included, by id.
    std::vector<uint32_t> survivors() const;
    // Fixes the target: the longest tail among the answers and the node that has it (this
    // node on a tie).
    void fix_target();
    const std::optional<uint64_t>& target() const { return target_; }
    uint32_t holder() const { return holder_; }

    // The repair: the reads still to post, in order (repair_reads' pieces), posted one by
    // one as the send queue takes them.
    void plan_reads(std::vector<PositionRange> pieces) { unposted_.assign(pieces.begin(), pieces.end()); }
    const PositionRange* next_read() const { return unposted_.empty() ? nullptr : &unposted_.front(); }
    void read_posted();
    // A repair read from `peer` landed. One from a holder given up on (its connection
    // lost, or a post failed) does not count towards the current target's.
    void read_completed(uint32_t peer);
    // The target is fixed and every repair read was posted and landed: the new view may go out.
    bool repaired() const { return target_.has_value() && unposted_.empty() && reads_pending_ == 0; }

private:
    uint32_t self_;
    std::vector<uint32_t> members_;
    uint64_t started_ms_;
    uint64_t deadline_ms_;
    std::map<uint32_t, Rejoin> rejoined_;
    std::optional<uint64_t> target_;
    uint32_t holder_ = 0;
    std::deque<PositionRange> unposted_;
    uint32_t reads_pending_ = 0;
};

}  // namespace rcpg::ordering
