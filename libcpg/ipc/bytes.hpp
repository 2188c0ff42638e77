// memcpy for lengths that may be 0, where the pointers may then be null (an empty
// vector's data()): memcpy itself requires valid pointers even for 0 bytes.
#pragma once

#include <cstddef>
#include <cstring>

namespace rcpg::ipc {

inline void copy_bytes(void* destination, const void* source, size_t bytes)
{
    if (bytes != 0) {
        std::memcpy(destination, source, bytes);
    }
}

}  // namespace rcpg::ipc
