// A client's backlog: where the daemon moves a slow reader's entries out of the delivery
// ring, so that the ring's slots are reused and nobody waits for that reader.
//
// A ring of its own (a sealed memfd of the client's budget, a power of two), in the
// delivery ring's entry format with positions of its own: entries are appended in ring
// order, placed as place_entry() places them, never wrap (a pad fills the end), so the
// client reads it with the same checked reader (delivery::read_entry). Only the daemon writes
// it; the client maps a read-only descriptor and reports how far it has read, which the
// daemon clamps. Nothing is overwritten before the client reported it read: an entry
// that does not fit is the client's budget exceeded.
#pragma once

#include "libcpg/ipc/shm.hpp"
#include "delivery/ring_format.hpp"

#include <cstdint>
#include <optional>
#include <span>

namespace rcpg::daemon {

class ClientBacklog {
public:
    // A backlog of `bytes` (a power of two, at least delivery::kMaxEntryBytes). Memory is
    // taken only as entries are written. nullopt with errno on failure.
    static std::optional<ClientBacklog> create(uint64_t bytes);

    // A read-only descriptor for the client.
    ipc::UniqueFd client_fd() const { return ipc::reopen_read_only(fd_.get()); }
    uint64_t capacity() const { return bytes_; }
    uint64_t tail() const { return tail_; }
    // Bytes the client has not read yet (after the last note_read).
    uint64_t used() const { return tail_ - read_; }

    // Takes the client's report of how far it has read, clamped to what can be true: it
    // only moves forward and never past the tail. When everything is read, the memory
    // goes back to the system.
    void note_read(uint64_t reported);

    // Appends a copy of a checked ring entry. False (nothing written) when it does not fit
    // beside what the client has not read.
    bool append(const delivery::EntryHeader& header, std::span<const std::byte> payload);

private:
    ClientBacklog(ipc::UniqueFd fd, ipc::Mapping mapping, uint64_t bytes)
        : fd_(std::move(fd)), mapping_(std::move(mapping)), bytes_(bytes)
    {
    }
    std::byte* at(uint64_t position) { return mapping_.bytes() + (position & (bytes_ - 1)); }

    ipc::UniqueFd fd_;
    ipc::Mapping mapping_;
    uint64_t bytes_ = 0;
    uint64_t tail_ = 0;
    uint64_t read_ = 0;
    bool written_ = false;  // memory was taken since it was last given back
};

}  // namespace rcpg::daemon
