// The dynamic-linking view of a shared library, read straight from its ELF file: what the
// dynamic linker sees when a program loads it (SONAME, DT_NEEDED, version definitions,
// exported symbols with their versions). Only 64-bit little-endian ELF, which is what rcpg
// builds; anything else or any out-of-bounds offset throws std::runtime_error naming the
// file and the problem.
#ifndef RCPG_TESTS_ABI_ELF_DYNAMIC_INFO_H
#define RCPG_TESTS_ABI_ELF_DYNAMIC_INFO_H

#include <cstdint>
#include <string>
#include <vector>

namespace rcpg::abi_test {

// Version name of a symbol whose .gnu.version index is 1, or which has no version table:
// objdump prints "Base"; programs reference such symbols without a version.
inline constexpr const char* kBaseVersion = "Base";

struct VersionDefinition {
    std::uint16_t index = 0; // what .gnu.version entries refer to
    std::uint16_t flags = 0; // VER_FLG_BASE marks the entry named after the SONAME
    std::string name;
};

// A symbol other objects can bind to: defined here, global or weak, default or protected.
struct ExportedSymbol {
    std::string name;
    unsigned type = 0;        // STT_FUNC, STT_OBJECT, ...
    unsigned binding = 0;     // STB_GLOBAL, STB_WEAK, ...
    bool is_absolute = false; // SHN_ABS: a value, not an address in the library
    std::string version;      // a version definition's name, or kBaseVersion
    bool is_default_version = true; // false for name@VERSION (hidden), true for name@@VERSION
};

struct ElfDynamicInfo {
    std::string soname; // empty when there is no DT_SONAME
    std::vector<std::string> needed;
    std::vector<VersionDefinition> version_definitions;
    std::vector<ExportedSymbol> exported_symbols;
};

ElfDynamicInfo read_elf_dynamic_info(const std::string& path);

} // namespace rcpg::abi_test

#endif // RCPG_TESTS_ABI_ELF_DYNAMIC_INFO_H
