// The totem ring id's sequence number, kept across restarts as corosync keeps it
// (/var/lib/corosync/ringid_<address>): a restarted node's first view gets a ring id above
// every one it had before, so an application that compares ring ids sees them rise also
// across a daemon restart. One decimal number in `<state_dir>/ringid_<nodeid>`, replaced
// atomically (written beside it, then renamed).
#pragma once

#include "base/status.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace rcpg::daemon {

class RingIdStore {
public:
    RingIdStore(std::string state_dir, uint32_t nodeid);

    const std::string& path() const { return path_; }
    // The stored sequence number; 0 when there is none yet. An error ("FILE:1: problem")
    // when the file cannot be read or does not hold one number.
    base::Result<uint64_t> load() const;
    // Stores `ring_seq` (creating the directory, mode 0700, if needed).
    base::Status save(uint64_t ring_seq) const;

private:
    std::string dir_;
    std::string path_;
};

}  // namespace rcpg::daemon
