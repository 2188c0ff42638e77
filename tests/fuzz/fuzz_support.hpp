// What the fuzz targets share: a property check that stops the run where it fails, and
// reading a parameter of the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace rcpg::fuzz {

// A property every accepted input must keep: libFuzzer reports the abort with its input.
inline void check(bool holds)
{
    if (!holds) {
        std::abort();
    }
}

template <typename T>
T read_at(const uint8_t* data, size_t offset)
{
    T value;
    std::memcpy(&value, data + offset, sizeof value);
    return value;
}

}  // namespace rcpg::fuzz
