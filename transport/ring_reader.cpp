#include "transport/ring_reader.hpp"

#include <atomic>
#include <cstring>
#include <string>

namespace rcpg::transport {

Result<RingReader> RingReader::create(Transport& transport, NodeId writer, std::span<std::byte> region,
                                      RemoteAddr credit_word, uint64_t publish_every_bytes)
{
    if (region.size() <= ring::kControlBytes || !ring::valid_ring_bytes(region.size() - ring::kControlBytes)) {
        return Status{Errc::invalid_argument, Layer::ring, "ring region is not a power of two plus the control block"};
    }
    if (reinterpret_cast<uintptr_t>(region.data()) % ring::kRecordAlignBytes != 0) {
        return Status{Errc::invalid_argument, Layer::ring, "ring region is not 8-byte aligned"};
    }
    const uint64_t ring_bytes = region.size() - ring::kControlBytes;
    if (publish_every_bytes == 0) {
        publish_every_bytes = ring_bytes / 4;
    }
    if (publish_every_bytes > ring_bytes) {
        return Status{Errc::invalid_argument, Layer::ring, "credit batch larger than the ring"};
    }
    return RingReader(transport, writer, region, credit_word, publish_every_bytes);
}

RingReader::RingReader(Transport& transport, NodeId writer, std::span<std::byte> region, RemoteAddr credit_word,
                       uint64_t publish_every_bytes)
    : transport_(&transport),
      writer_(writer),
      data_(region.data()),
      ring_bytes_(region.size() - ring::kControlBytes),
      control_(reinterpret_cast<ring::Control*>(region.data() + ring_bytes_)),
      credit_word_(credit_word),
      publish_every_bytes_(publish_every_bytes)
{
}

uint64_t RingReader::committed_tail()
{
    // The tail only grows, by at most the ring (the writer respects our credits). Any
    // other value is a torn or corrupt write: keep the last good one.
    tail_ = ring::accept_tail(control_->tail.load(), tail_, released_, ring_bytes_);
    return tail_;
}

uint64_t RingReader::credit_request()
{
    // The writer posts a request after the tail write that covers it, on the same queue
    // pair: read the request first, then the tail, and a legal request is never beyond
    // it. Anything else (torn, corrupt, going backwards) keeps the last good value.
    requested_ = ring::accept_request(control_->credit_request.load(), requested_, committed_tail());
    return requested_;
}

Result<std::optional<RingReader::Record>> RingReader::next()
{
    if (broken_) {
        return Status{Errc::malformed, Layer::ring, "ring reader stopped at a malformed record"};
    }
    const uint64_t tail = committed_tail();
    while (cursor_ < tail) {
        const uint64_t offset = cursor_ & (ring_bytes_ - 1);
        ring::RecordHeader header;
        std::memcpy(&header, data_ + offset, sizeof header);
        if (header.type == ring::kPaddingType) {
            // Padding fills exactly the rest of the ring.
            if (header.payload_bytes != ring_bytes_ - offset - ring::kHeaderBytes) {
                broken_ = true;
                return Status{Errc::malformed, Layer::ring, "padding record of the wrong size at " + std::to_string(cursor_)};
            }
            if (released_ == cursor_) {
                released_ += ring_bytes_ - offset;  // nothing in front of it is held
            }
            cursor_ += ring_bytes_ - offset;
            continue;
        }
        const uint64_t record = ring::record_bytes(header.payload_bytes);
        if (record > ring_bytes_ - offset || cursor_ + record > tail) {
            broken_ = true;
            return Status{Errc::malformed, Layer::ring,
                          "record of " + std::to_string(header.payload_bytes) + " bytes at " + std::to_string(cursor_) +
                              " crosses the ring end or the committed tail"};
        }
        Record result{header.type, {data_ + offset + ring::kHeaderBytes, header.payload_bytes}, cursor_, cursor_ + record};
        cursor_ += record;
        return std::optional<Record>(result);
    }
    return std::optional<Record>();
}

void RingReader::release(const Record& record)
{
    if (record.end > released_ && record.end <= cursor_) {
        released_ = record.end;
    }
    // Padding directly behind the released record belongs to nobody: release it too, so
    // an idle reader's published position reaches the tail.
    const uint64_t offset = released_ & (ring_bytes_ - 1);
    if (released_ < cursor_ && offset != 0) {
        ring::RecordHeader header;
        std::memcpy(&header, data_ + offset, sizeof header);
        if (header.type == ring::kPaddingType) {
            released_ += ring_bytes_ - offset;
        }
    }
}

Status RingReader::publish_credits()
{
    const uint64_t unpublished = released_ - published_;
    if (unpublished == 0) {
        return {};
    }
    if (unpublished < publish_every_bytes_ && credit_request() <= published_) {
        return {};
    }
    const uint64_t position = released_;
    WriteRequest write;
    write.inline_bytes = std::as_bytes(std::span<const uint64_t>(&position, 1));
    write.destination = credit_word_;
    if (Status status = transport_->post_write(writer_, write); !status) {
        return status;
    }
    published_ = position;
    return {};
}

}  // namespace rcpg::transport
