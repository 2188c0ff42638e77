#include "ordering/ring_applier.hpp"

#include "base/assert.hpp"
#include "delivery/ring_entry.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace rcpg::ordering {

using delivery::EntryKind;

void RingApplier::start_at(uint64_t position, uint64_t next_seq)
{
    ring_.start_at(position, next_seq);
    processed_ = position;
}

base::Status RingApplier::check_committed(uint64_t committed) const
{
    if (committed < processed_ || committed - processed_ > ring_.data_bytes() ||
        committed % delivery::kEntryAlignBytes != 0) {
        return {base::Errc::malformed, base::Layer::protocol,
                fmt::format("the sequencer committed position {} beyond what it may write (applied up to {})",
                            committed, processed_)};
    }
    return {};
}

base::Result<std::optional<RingApplier::Entry>> RingApplier::next(uint64_t committed)
{
    const uint64_t ring_bytes = ring_.data_bytes();
    while (processed_ < committed) {
        const uint64_t position = processed_;
        const uint64_t offset = position & (ring_bytes - 1);
        const std::byte* at = ring_.data() + offset;
        auto entry = delivery::check_entry({at, ring_bytes - offset}, position, ring_bytes, committed - position);
        const bool filler = entry && (entry->kind == EntryKind::pad || entry->kind == EntryKind::skip);
        if (!entry || (!filler && entry->seq != ring_.next_seq())) {
            // What lies there, raw (the first words of an entry header), for the post-mortem.
            delivery::EntryHeader raw{};
            std::memcpy(&raw, at, std::min<uint64_t>(sizeof(raw), ring_bytes - offset));
            return base::Status{
                base::Errc::malformed, base::Layer::protocol,
                fmt::format("the sequencer wrote a malformed or out-of-order entry at position {} (committed {}; "
                            "there: {} bytes, kind {}, flags {:#x}, seq {} where {} was due, payload {} at {})",
                            position, committed, raw.entry_bytes, static_cast<unsigned>(raw.kind), raw.flags, raw.seq,
                            ring_.next_seq(), raw.payload_bytes, raw.payload_offset)};
        }
        processed_ = position + entry->entry_bytes;
        if (filler) {
            ring_.adopt(ring_.last_position(), processed_, ring_.next_seq());
            continue;
        }
        ring_.adopt(position, processed_, entry->seq + 1);
        return std::optional<Entry>(Entry{*entry, position, {at + entry->payload_offset, entry->payload_bytes}});
    }
    // Every entry was checked to lie within what was committed: the walk ends exactly there.
    RCPG_ASSERT(processed_ == committed, "applied up to {}, committed {}", processed_, committed);
    return std::optional<Entry>{};
}

}  // namespace rcpg::ordering
