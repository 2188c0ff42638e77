// RingReader: the owner's side of a ring that a peer fills with RingWriter. Reads
// committed records in place (zero copy) and hands the space back to the writer by
// RDMA-writing the consumed position into the writer's credit word — lazily: when a
// quarter of the ring (or the configured amount) has been released, or when the writer
// has asked for credits (its credit request word, in our control block, is beyond what
// we published). So a ping-pong of small records writes no credit at all, and a writer
// waiting for room is never left waiting on a credit that is not due — provided the
// owner calls publish_credits() regularly (it is two loads when nothing is due).
#pragma once

#include "transport/ring_layout.hpp"
#include "transport/transport.hpp"

#include <cstdint>
#include <optional>
#include <span>

namespace rcpg::transport {

class RingReader {
public:
    struct Record {
        uint32_t type = 0;
        std::span<const std::byte> payload;  // in the ring: valid until released
        uint64_t position = 0;               // of the header
        uint64_t end = 0;                    // position after the record
    };

    // `region` is the local ring region (ring_bytes of data then the control block) the
    // writer writes into; `credit_word` is where the writer wants our consumed position.
    // publish_every_bytes == 0 means a quarter of the ring.
    static Result<RingReader> create(Transport& transport, NodeId writer, std::span<std::byte> region,
                                     RemoteAddr credit_word, uint64_t publish_every_bytes = 0);

    // The next committed record after the last one returned, if any. A malformed record
    // (a header that does not fit the ring or the committed tail) is Errc::malformed and
    // the reader stops there: the writer is broken.
    Result<std::optional<Record>> next();
    // Frees everything up to record.end for the writer (in order: records are released
    // in the order next() returned them).
    void release(const Record& record);
    // Posts the consumed position if it is due (see the file comment); cheap otherwise.
    // Call it regularly, not only after release(): a writer's request may land later.
    Status publish_credits();

    uint64_t committed_tail();  // the tail the writer last committed
    uint64_t read_position() const { return cursor_; }
    uint64_t released() const { return released_; }
    uint64_t published() const { return published_; }

private:
    RingReader(Transport& transport, NodeId writer, std::span<std::byte> region, RemoteAddr credit_word, uint64_t publish_every_bytes);
    void skip_padding();
    uint64_t credit_request();

    Transport* transport_;
    NodeId writer_;
    std::byte* data_;
    uint64_t ring_bytes_;
    ring::Control* control_;
    RemoteAddr credit_word_;
    uint64_t publish_every_bytes_;
    uint64_t tail_ = 0;       // committed tail last read
    uint64_t cursor_ = 0;     // next record to return
    uint64_t released_ = 0;   // consumed by the layer above
    uint64_t published_ = 0;  // last consumed position posted to the writer
    uint64_t requested_ = 0;  // credit request last read (a committed position)
    bool broken_ = false;
};

}  // namespace rcpg::transport
