// libFuzzer target for the words other nodes write into a node's memory: a ring's
// committed tail and credit request (written by the ring's writer), and a writer's credit
// (written by the reader), as transport/ring_layout.hpp takes them. The input is a ring
// size and a sequence of (word, value) writes a hostile or broken peer could make, with
// the owner's own progress (records read and released, records committed) in between.
// Checks, after every step: the tail never goes back nor more than a ring past what was
// released; a request is never past the tail; a credit never goes back nor past what was
// committed; so the owner never reads past what the writer may have written, and a writer
// never overwrites what the reader still holds.
#include "transport/ring_layout.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace {

void check(bool ok)
{
    if (!ok) {
        std::abort();
    }
}

uint64_t word_at(const uint8_t* data)
{
    uint64_t value = 0;
    std::memcpy(&value, data, sizeof value);
    return value;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    using namespace rcpg::transport::ring;
    if (size < 1) {
        return 0;
    }
    const uint64_t ring_bytes = uint64_t{1} << (8 + data[0] % 24);
    // Reader side: what it released and has seen committed; writer side: what it committed
    // and the credit it has.
    uint64_t released = 0, tail = 0, requested = 0;
    uint64_t committed = 0, consumed = 0;
    for (size_t at = 1; at + 9 <= size; at += 9) {
        const uint8_t op = data[at];
        const uint64_t value = word_at(data + at + 1);
        switch (op % 5) {
        case 0: {  // the peer writes the tail word
            const uint64_t before = tail;
            tail = accept_tail(value, tail, released, ring_bytes);
            check(tail >= before && tail - released <= ring_bytes);
            break;
        }
        case 1: {  // the peer writes the credit request word
            const uint64_t before = requested;
            requested = accept_request(value, requested, tail);
            check(requested >= before && requested <= tail);
            break;
        }
        case 2: {  // the peer writes the writer's credit word
            const uint64_t before = consumed;
            consumed = accept_credit(value, consumed, committed);
            check(consumed >= before && consumed <= committed);
            break;
        }
        case 3:  // the reader releases some of what it saw committed
            released += (tail - released) == 0 ? 0 : value % (tail - released + 1);
            break;
        case 4:  // the writer commits within its credit
            committed += (consumed + ring_bytes - committed) == 0 ? 0 : value % (consumed + ring_bytes - committed + 1);
            break;
        }
        check(released <= tail && tail - released <= ring_bytes);
        check(consumed <= committed && committed - consumed <= ring_bytes);
    }
    return 0;
}
