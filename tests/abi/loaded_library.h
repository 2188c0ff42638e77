// Which file a loaded address belongs to. rcpg's libcorosync_common.so.4 and corosync's
// share a SONAME, so a test that means to exercise one of them checks it got that one.
#ifndef RCPG_TESTS_ABI_LOADED_LIBRARY_H
#define RCPG_TESTS_ABI_LOADED_LIBRARY_H

#include <dlfcn.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace rcpg::abi_test {

// Symlinks resolved, so libfoo.so.4 and libfoo.so.4.0.0 compare equal; the input unchanged
// if it cannot be resolved, so a failure message still shows it.
inline std::string canonical_path(const std::string& path)
{
    std::error_code error;
    const auto resolved = std::filesystem::canonical(path, error);
    return error ? path : resolved.string();
}

// Empty when the address is in no loaded object.
inline std::string library_containing(const void* address)
{
    Dl_info info{};
    if (dladdr(address, &info) == 0 || info.dli_fname == nullptr) {
        return {};
    }
    return canonical_path(info.dli_fname);
}

} // namespace rcpg::abi_test

#endif // RCPG_TESTS_ABI_LOADED_LIBRARY_H
