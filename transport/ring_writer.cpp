#include "transport/ring_writer.hpp"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstring>
#include <string>
#include <utility>

namespace rcpg::transport {
namespace {

Status ring_error(Errc code, const std::string& what) { return {code, Layer::ring, what}; }

}  // namespace

Result<RingWriter> RingWriter::create(Transport& transport, NodeId peer, RemoteRegion ring, const PeerWord* credit_word,
                                      RegisteredMemory shadow)
{
    if (ring.bytes <= ring::kControlBytes || !ring::valid_ring_bytes(ring.bytes - ring::kControlBytes)) {
        return ring_error(Errc::invalid_argument,
                          "remote ring region of " + std::to_string(ring.bytes) + " bytes is not a power of two plus the control block");
    }
    if (credit_word == nullptr) {
        return ring_error(Errc::invalid_argument, "credit word missing");
    }
    if (transport.max_inline_bytes() < ring::kHeaderBytes + ring::kTailWordBytes) {
        return ring_error(Errc::invalid_argument, "transport's inline limit is below a record header");
    }
    if (shadow && shadow.size() == ring.bytes - ring::kControlBytes) {
        return RingWriter(transport, peer, ring, credit_word, std::move(shadow));
    }
    auto fresh = RegisteredMemory::create(transport, ring.bytes - ring::kControlBytes, RegionAccess::local);
    if (!fresh) {
        return fresh.status();
    }
    return RingWriter(transport, peer, ring, credit_word, std::move(*fresh));
}

RingWriter::RingWriter(Transport& transport, NodeId peer, RemoteRegion ring, const PeerWord* credit_word,
                       RegisteredMemory shadow)
    : transport_(&transport),
      peer_(peer),
      ring_(ring),
      ring_bytes_(ring.bytes - ring::kControlBytes),
      credit_word_(credit_word),
      inline_limit_(std::min<uint32_t>(transport.max_inline_bytes(), kInlineSlotBytes) & ~(ring::kRecordAlignBytes - 1)),
      writes_(kMaxStagedWrites),
      inline_slots_(kMaxStagedWrites),
      sources_(kMaxStagedWrites),
      shadow_(std::move(shadow))
{
}

void RingWriter::refresh_credits()
{
    // The reader's NIC writes this word; an aligned 8-byte store lands whole on the
    // devices we support. A value outside [consumed_, committed_] can only be a torn or
    // corrupt write: keep the old one (credits are conservative, never optimistic).
    consumed_ = ring::accept_credit(credit_word_->load(), consumed_, committed_);
}

bool RingWriter::has_room(uint64_t payload_bytes)
{
    const uint64_t record = ring::record_bytes(payload_bytes);
    const uint64_t room_to_end = ring_bytes_ - (tail_ & (ring_bytes_ - 1));
    const uint64_t needed = record + (record > room_to_end ? room_to_end : 0);
    refresh_credits();
    return tail_ + needed - consumed_ <= ring_bytes_;
}

void RingWriter::request_credits()
{
    // Only committed bytes can be credited, and one request per committed position is
    // enough: the reader keeps publishing until it has credited the requested position.
    // Posted after the tail write of that position on the same queue pair, so the reader
    // never sees a request beyond the tail it can read.
    if (committed_ <= requested_ || committed_ == consumed_) {
        return;
    }
    const uint64_t position = committed_;
    WriteRequest write;
    write.inline_bytes = std::as_bytes(std::span<const uint64_t>(&position, 1));
    write.destination = ring_.at(ring_bytes_ + offsetof(ring::Control, credit_request));
    write.imm = credit_request_imm_;
    if (transport_->post_write(peer_, write).ok()) {
        requested_ = position;
    }
    // Otherwise (send queue full, link gone) the next reserve() asks again; a lost link
    // is the caller's disconnected event.
}

Status RingWriter::reserve(uint64_t record_bytes, uint32_t writes_needed)
{
    if (record_bytes > ring::max_record_bytes(ring_bytes_)) {
        return ring_error(Errc::invalid_argument, "record of " + std::to_string(record_bytes) + " bytes exceeds half the ring");
    }
    if (!has_room(record_bytes - ring::kHeaderBytes)) {
        request_credits();
        // Short enough for std::string's inline buffer: a writer spinning on try_again
        // does not allocate (like the queue pair's "send queue full").
        return ring_error(Errc::try_again, "out of credits");
    }
    // Keep one write free for the tail; post what is staged if the record would not fit.
    if (staged_ + writes_needed + 1 > kMaxStagedWrites || staged_records_ == kMaxStagedRecords) {
        if (Status status = post_staged(false, false, 0); !status) {
            return status;
        }
    }
    // Pad to the end of the ring if the record would cross it.
    const uint64_t offset = tail_ & (ring_bytes_ - 1);
    const uint64_t room_to_end = ring_bytes_ - offset;
    if (record_bytes > room_to_end) {
        stage_header(offset, static_cast<uint32_t>(room_to_end - ring::kHeaderBytes), ring::kPaddingType);
        tail_ += room_to_end;
    }
    return {};
}

std::byte* RingWriter::stage_inline(uint64_t remote_offset, uint32_t bytes)
{
    assert(staged_ < kMaxStagedWrites && bytes <= inline_limit_);
    open_shadow_write_.reset();
    WriteRequest& write = writes_[staged_];
    write = WriteRequest{};
    write.inline_bytes = std::span<const std::byte>(inline_slots_[staged_].data(), bytes);
    write.destination = ring_.at(remote_offset);
    return inline_slots_[staged_++].data();
}

void RingWriter::stage_header(uint64_t remote_offset, uint32_t payload_bytes, uint32_t type)
{
    const ring::RecordHeader header{payload_bytes, type};
    std::memcpy(stage_inline(remote_offset, ring::kHeaderBytes), &header, sizeof header);
}

Status RingWriter::append(uint32_t type, std::span<const LocalSlice> payload)
{
    if (payload.size() > kMaxSourcesPerWrite || type == ring::kPaddingType) {
        return ring_error(Errc::invalid_argument, "too many payload pieces, or the padding type");
    }
    uint64_t payload_bytes = 0;
    for (const LocalSlice& slice : payload) {
        payload_bytes += slice.bytes;
    }
    const uint64_t record = ring::record_bytes(payload_bytes);
    if (ring::kHeaderBytes + payload_bytes <= inline_limit_) {
        std::array<std::span<const std::byte>, kMaxSourcesPerWrite> pieces;
        for (size_t i = 0; i < payload.size(); ++i) {
            const LocalSlice& slice = payload[i];
            const std::span<std::byte> region = transport_->region_bytes(slice.region);
            if (slice.offset > region.size() || slice.bytes > region.size() - slice.offset) {
                return ring_error(Errc::invalid_argument, "payload slice leaves its region");
            }
            pieces[i] = region.subspan(slice.offset, slice.bytes);
        }
        return append_small(type, std::span(pieces.data(), payload.size()), payload_bytes);
    }
    if (Status status = reserve(record, 3); !status) {
        return status;
    }
    const uint64_t offset = tail_ & (ring_bytes_ - 1);
    stage_header(offset, static_cast<uint32_t>(payload_bytes), type);
    WriteRequest& write = writes_[staged_];
    write = WriteRequest{};
    std::copy(payload.begin(), payload.end(), sources_[staged_].begin());
    write.sources = std::span<const LocalSlice>(sources_[staged_].data(), payload.size());
    write.destination = ring_.at(offset + ring::kHeaderBytes);
    ++staged_;
    ++staged_records_;
    tail_ += record;
    return {};
}

Status RingWriter::append_copy(uint32_t type, std::span<const std::byte> payload)
{
    if (type == ring::kPaddingType) {
        return ring_error(Errc::invalid_argument, "the padding type is reserved");
    }
    if (payload.size() > max_payload_bytes()) {
        return ring_error(Errc::invalid_argument, "record of " + std::to_string(payload.size()) + " bytes exceeds half the ring");
    }
    const std::span<const std::byte> pieces[1] = {payload};
    return append_small(type, pieces, payload.size());
}

Status RingWriter::append_small(uint32_t type, std::span<const std::span<const std::byte>> pieces,
                                uint64_t payload_bytes)
{
    const uint64_t record = ring::record_bytes(payload_bytes);
    if (Status status = reserve(record, 2); !status) {
        return status;
    }
    const uint64_t offset = tail_ & (ring_bytes_ - 1);
    std::byte* at = shadow_.data() + offset;
    const ring::RecordHeader header{static_cast<uint32_t>(payload_bytes), type};
    std::memcpy(at, &header, sizeof header);
    at += sizeof header;
    for (const std::span<const std::byte> piece : pieces) {
        if (!piece.empty()) {  // an empty span's data() may be null, which memcpy must not get
            std::memcpy(at, piece.data(), piece.size());
        }
        at += piece.size();
    }
    std::memset(at, 0, record - ring::kHeaderBytes - payload_bytes);  // the alignment padding
    if (open_shadow_write_ && sources_[*open_shadow_write_][0].offset + sources_[*open_shadow_write_][0].bytes == offset) {
        sources_[*open_shadow_write_][0].bytes += static_cast<uint32_t>(record);
    } else {
        WriteRequest& write = writes_[staged_];
        write = WriteRequest{};
        sources_[staged_][0] = shadow_.slice(offset, static_cast<uint32_t>(record));
        write.sources = std::span<const LocalSlice>(sources_[staged_].data(), 1);
        write.destination = ring_.at(offset);
        open_shadow_write_ = staged_++;
    }
    ++staged_records_;
    tail_ += record;
    return {};
}

Status RingWriter::commit(bool signaled, uint64_t wr_id, std::optional<uint32_t> imm)
{
    if (tail_ == committed_ && staged_ == 0 && !signaled) {
        return {};
    }
    return post_staged(true, signaled, wr_id, imm);
}

Status RingWriter::post_staged(bool with_tail, bool signaled, uint64_t wr_id, std::optional<uint32_t> imm)
{
    uint32_t count = staged_;
    if (with_tail) {
        // The tail goes last in the same post list: RC executes it after the data.
        std::memcpy(stage_inline(ring_bytes_, ring::kTailWordBytes), &tail_, sizeof tail_);
        writes_[staged_ - 1].signaled = signaled;
        writes_[staged_ - 1].wr_id = wr_id;
        writes_[staged_ - 1].imm = imm;
        count = staged_;
    }
    if (count == 0) {
        return {};
    }
    Status status = transport_->post_writes(peer_, {writes_.data(), count});
    if (!status) {
        if (with_tail) {
            --staged_;  // all or none was posted: unstage the tail, keep the records
        }
        return status;
    }
    staged_ = 0;
    staged_records_ = 0;
    open_shadow_write_.reset();
    posted_tail_ = tail_;
    if (with_tail) {
        committed_ = tail_;
    }
    return {};
}

}  // namespace rcpg::transport
