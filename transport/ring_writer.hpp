// RingWriter: appends variable-size records into a peer's ring by RDMA WRITE, then
// commits them with a separate 8-byte tail write on the same queue pair, ordered after
// the data (the reader never judges a record complete by a byte inside it). Credits flow
// back: the reader RDMA-writes its consumed position into our credit word, and we never
// write past consumed + ring_bytes, so unconsumed bytes are never overwritten. The
// reader publishes lazily (every quarter ring); a writer short of room asks for credits
// by writing its committed position into the ring's credit request word — once per
// committed position, and only then, so credits stay off the latency path.
//
// Records are staged and posted as one post list per commit() (one doorbell). Small
// records (header + payload within the inline limit) are copied into a registered shadow
// of the remote ring, at the offset they will have there, so that small records that
// follow each other go as one write however many there are (the device inlines it if
// it is small enough). Larger ones go as an inline header write plus a zero-copy write
// of the caller's registered payload, which stays the transport's until the commit's
// tail write completes (commit(signaled = true) reports it) — see transport/NOTES.md.
// A shadow byte is rewritten only after the ring wrapped past it, i.e. after the reader
// credited it, which it can only do once the write that carried it has landed.
#pragma once

#include "transport/registered_memory.hpp"
#include "transport/ring_layout.hpp"
#include "transport/transport.hpp"

#include <array>
#include <optional>
#include <cstdint>
#include <vector>

namespace rcpg::transport {

class RingWriter {
public:
    // Bytes of one inline staging slot: the largest record copied into a work request.
    static constexpr uint32_t kInlineSlotBytes = 256;
    static_assert(kInlineSlotBytes >= ring::kHeaderBytes + ring::kTailWordBytes);
    static_assert(kInlineSlotBytes % ring::kRecordAlignBytes == 0);
    // Records staged before a commit is forced to post (without the tail) to make room.
    static constexpr uint32_t kMaxStagedRecords = 32;
    // A record is up to 3 writes (padding, header, payload); a commit adds the tail.
    static constexpr uint32_t kMaxStagedWrites = 3 * kMaxStagedRecords + 1;

    // `ring` is what the reader exposed: ring_bytes of data then the control block.
    // `credit_word` is the registered, peer-writable word the reader publishes into.
    // `shadow`: registered memory of a writer that is gone (take_shadow()), reused when it
    // has the ring's size: registering a ring's worth of memory can take hundreds of
    // milliseconds on a slow host, too long for a failover.
    static Result<RingWriter> create(Transport& transport, NodeId peer, RemoteRegion ring, const PeerWord* credit_word,
                                     RegisteredMemory shadow = {});
    // The shadow, for the next writer; only once nothing posted by this one can still
    // read it (its connection is gone). The writer is unusable afterwards.
    RegisteredMemory take_shadow() { return std::move(shadow_); }

    // Stages a record whose payload is gathered from registered memory (zero copy).
    // try_again when the ring lacks room: the writer has then asked the reader for
    // credits (if it had committed anything not yet credited); commit what is staged,
    // poll and retry.
    Status append(uint32_t type, std::span<const LocalSlice> payload);
    // Stages a record copied from `payload` now, through the shadow (any size up to
    // max_payload_bytes(); meant for small records and control messages).
    Status append_copy(uint32_t type, std::span<const std::byte> payload);
    // Posts the staged records and the tail write. With `signaled`, write_completed(wr_id)
    // reports that the tail — and so every record before it — has been written. With
    // `imm`, the tail goes as WRITE_WITH_IMM: the reader gets imm_received, which wakes a
    // reader that sleeps on the transport's wait_fd().
    Status commit(bool signaled = false, uint64_t wr_id = 0, std::optional<uint32_t> imm = std::nullopt);

    // Sends the credit request (see above) as WRITE_WITH_IMM carrying `imm`, for a reader
    // that sleeps on the transport's wait_fd(): a plain write would not wake it, and a
    // writer short of room would wait until the reader woke for something else.
    void wake_reader_for_credits(uint32_t imm) { credit_request_imm_ = imm; }
    // Whether a record with this payload fits now (after reading the credit word).
    bool has_room(uint64_t payload_bytes);
    uint64_t ring_bytes() const { return ring_bytes_; }
    uint64_t max_payload_bytes() const { return ring::max_record_bytes(ring_bytes_) - ring::kHeaderBytes; }
    uint32_t max_inline_payload_bytes() const { return inline_limit_ - ring::kHeaderBytes; }
    uint64_t appended() const { return tail_; }    // position after the last staged record
    uint64_t committed() const { return committed_; }
    uint64_t consumed() const { return consumed_; }  // as last published by the reader

private:
    void refresh_credits();
    void request_credits();
    Status reserve(uint64_t record_bytes, uint32_t writes_needed);
    std::byte* stage_inline(uint64_t remote_offset, uint32_t bytes);
    void stage_header(uint64_t remote_offset, uint32_t payload_bytes, uint32_t type);
    Status post_staged(bool with_tail, bool signaled, uint64_t wr_id, std::optional<uint32_t> imm = std::nullopt);

    RingWriter(Transport& transport, NodeId peer, RemoteRegion ring, const PeerWord* credit_word,
               RegisteredMemory shadow);
    // Stages a record from `pieces`, copied into the shadow.
    Status append_small(uint32_t type, std::span<const std::span<const std::byte>> pieces, uint64_t payload_bytes);

    Transport* transport_;
    NodeId peer_;
    RemoteRegion ring_;
    uint64_t ring_bytes_;
    const PeerWord* credit_word_;
    uint32_t inline_limit_;
    uint64_t tail_ = 0;
    uint64_t committed_ = 0;
    uint64_t consumed_ = 0;
    uint64_t posted_tail_ = 0;  // data up to here is posted (maybe not committed)
    uint64_t requested_ = 0;    // committed position of the last credit request posted
    // Staging: fixed capacity, so the spans inside `writes_` never dangle.
    std::vector<WriteRequest> writes_;
    std::vector<std::array<std::byte, kInlineSlotBytes>> inline_slots_;
    std::vector<std::array<LocalSlice, kMaxSourcesPerWrite>> sources_;
    uint32_t staged_ = 0;
    uint32_t staged_records_ = 0;
    RegisteredMemory shadow_;  // ring_bytes, at the remote ring's offsets
    std::optional<uint32_t> credit_request_imm_;
    // The staged write small records may extend: it ends where the next record goes.
    std::optional<uint32_t> open_shadow_write_;
};

}  // namespace rcpg::transport
