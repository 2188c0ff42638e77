#include "daemon/client_backlog.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <cstring>

namespace rcpg::daemon {

std::optional<ClientBacklog> ClientBacklog::create(uint64_t bytes)
{
    if (!delivery::is_power_of_two(bytes) || bytes < delivery::kMaxEntryBytes) {
        errno = EINVAL;
        return std::nullopt;
    }
    // Not write-sealed: the daemon gives memory back by punching holes, which a write seal
    // forbids. The client gets a read-only descriptor, and the mode keeps it from opening
    // the file again for writing (through /proc/PID/fd) unless it is the daemon's user.
    ipc::UniqueFd fd = ipc::create_sealed_memfd("rcpg-client-backlog", bytes);
    if (!fd || ::fchmod(fd.get(), S_IRUSR | S_IWUSR) != 0) {
        return std::nullopt;
    }
    ipc::Mapping mapping = ipc::map_fd(fd.get(), bytes, 0, ipc::Access::read_write);
    if (!mapping) {
        return std::nullopt;
    }
    return ClientBacklog(std::move(fd), std::move(mapping), bytes);
}

void ClientBacklog::note_read(uint64_t reported)
{
    if (reported > read_ && reported <= tail_) {
        read_ = reported;
    }
    if (read_ == tail_ && written_) {
        // Caught up: the pages it used go back to the system (a hole reads as zeros, and
        // nobody reads there before the daemon writes it again).
        ::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(bytes_));
        written_ = false;
    }
}

bool ClientBacklog::append(const delivery::EntryHeader& header, std::span<const std::byte> payload)
{
    const bool on_page = (header.flags & delivery::kFlagPayloadOnPage) != 0;
    uint64_t position = tail_;
    delivery::EntryPlacement placement = delivery::place_entry(position, static_cast<uint32_t>(payload.size()), on_page);
    const uint64_t to_end = bytes_ - (position & (bytes_ - 1));
    uint64_t pad_bytes = 0;
    if (placement.entry_bytes > to_end) {
        pad_bytes = to_end;  // entries never wrap: a pad fills the end
        position += pad_bytes;
        placement = delivery::place_entry(position, static_cast<uint32_t>(payload.size()), on_page);
    }
    if (position + placement.entry_bytes - read_ > bytes_) {
        return false;
    }
    if (pad_bytes != 0) {
        delivery::EntryHeader pad{};
        pad.entry_bytes = static_cast<uint32_t>(pad_bytes);
        pad.kind = delivery::EntryKind::pad;
        std::memcpy(at(tail_), &pad, 8);  // a pad is read from its size and kind alone
    }
    delivery::EntryHeader copy = header;
    copy.entry_bytes = placement.entry_bytes;
    copy.payload_offset = placement.payload_offset;
    std::byte* entry = at(position);
    std::memcpy(entry, &copy, sizeof(copy));
    if (!payload.empty()) {
        std::memcpy(entry + placement.payload_offset, payload.data(), payload.size());
    }
    tail_ = position + placement.entry_bytes;
    written_ = true;
    return true;
}

}  // namespace rcpg::daemon
