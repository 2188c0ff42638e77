// Whether a peer still works, from words it keeps moving in this node's memory: a
// heartbeat counter it writes for this purpose, and words it writes anyway while it
// works (a member's credit and SAFE words at the sequencer; the sequencer's
// cluster_tail at a member). A hung or stopped process writes none of them, even where
// its device still acknowledges; a stream of data that keeps the send queue full (and
// so delays heartbeats) moves the others. A closed connection is the transport's to
// report, at once; this is for the silent failure.
#pragma once

#include <cstdint>

namespace rcpg::ordering {

class PeerLiveness {
public:
    // Count silence from `now_ms` (a new connection, admission, a new view).
    void restart(uint64_t now_ms) { heard_ms_ = now_ms; }
    // The same, taking the heartbeat word as it is now as seen.
    void restart(uint64_t now_ms, uint64_t heartbeat)
    {
        heard_ms_ = now_ms;
        heartbeat_seen_ = heartbeat;
    }
    // The peer's words at `now_ms`: false once neither moved for more than `timeout_ms`.
    bool observe(uint64_t heartbeat, uint64_t progress, uint64_t now_ms, uint64_t timeout_ms)
    {
        if (heartbeat != heartbeat_seen_ || progress != progress_seen_) {
            heartbeat_seen_ = heartbeat;
            progress_seen_ = progress;
            heard_ms_ = now_ms;
            return true;
        }
        return now_ms - heard_ms_ <= timeout_ms;
    }
    uint64_t silent_ms(uint64_t now_ms) const { return now_ms - heard_ms_; }
    uint64_t heard_ms() const { return heard_ms_; }

private:
    uint64_t heartbeat_seen_ = 0;
    uint64_t progress_seen_ = 0;
    uint64_t heard_ms_ = 0;
};

}  // namespace rcpg::ordering
