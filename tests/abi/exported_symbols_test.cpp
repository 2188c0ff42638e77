// The dynamic-linking interface of the built libcpg.so.4 and libcorosync_common.so.4
// (contract section 1), read from the ELF files: SONAME, DT_NEEDED, the exact set of
// exported functions and the symbol version each carries. A program linked against
// corosync's libcpg asks for twelve functions at COROSYNC_CPG_1.0 and eight without a
// version; rcpg's library has to answer exactly that, and export nothing more.
// Where corosync's own libraries are installed, the two are compared directly.

#include "elf_dynamic_info.h"
#include "loaded_library.h"

#include <dlfcn.h>
#include <elf.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <string>

namespace rcpg::abi_test {
namespace {

constexpr const char* kCpgVersion = "COROSYNC_CPG_1.0";

// Contract 1.1: corosync 3.1.7's version script names twelve functions; the other eight
// are exported at the base version because that script has no "local: *".
const std::map<std::string, std::string> kLibcpgFunctionVersions = {
    {"cpg_initialize", kCpgVersion},
    {"cpg_finalize", kCpgVersion},
    {"cpg_fd_get", kCpgVersion},
    {"cpg_dispatch", kCpgVersion},
    {"cpg_join", kCpgVersion},
    {"cpg_leave", kCpgVersion},
    {"cpg_mcast_joined", kCpgVersion},
    {"cpg_membership_get", kCpgVersion},
    {"cpg_context_get", kCpgVersion},
    {"cpg_context_set", kCpgVersion},
    {"cpg_zcb_alloc", kCpgVersion},
    {"cpg_zcb_free", kCpgVersion},
    {"cpg_model_initialize", kBaseVersion},
    {"cpg_max_atomic_msgsize_get", kBaseVersion},
    {"cpg_local_get", kBaseVersion},
    {"cpg_flow_control_state_get", kBaseVersion},
    {"cpg_zcb_mcast_joined", kBaseVersion},
    {"cpg_iteration_initialize", kBaseVersion},
    {"cpg_iteration_next", kBaseVersion},
    {"cpg_iteration_finalize", kBaseVersion},
};

// Contract 1.2: unversioned, and no cs_error_to_errno (corosync never had one).
const std::map<std::string, std::string> kCorosyncCommonFunctionVersions = {
    {"cs_strerror", kBaseVersion},
    {"qb_to_cs_error", kBaseVersion},
    {"hdb_error_to_cs", kBaseVersion},
};

// Contract for libevs.so.4 (corosync 1.4's lib/libevs.versions): nine functions in
// COROSYNC_EVS_2.0; evs_context_get and evs_context_set, which that script neither names
// nor makes local, at the base version.
constexpr const char* kEvsVersion = "COROSYNC_EVS_2.0";

const std::map<std::string, std::string> kLibevsFunctionVersions = {
    {"evs_initialize", kEvsVersion},
    {"evs_finalize", kEvsVersion},
    {"evs_fd_get", kEvsVersion},
    {"evs_dispatch", kEvsVersion},
    {"evs_join", kEvsVersion},
    {"evs_leave", kEvsVersion},
    {"evs_mcast_joined", kEvsVersion},
    {"evs_mcast_groups", kEvsVersion},
    {"evs_membership_get", kEvsVersion},
    {"evs_context_get", kBaseVersion},
    {"evs_context_set", kBaseVersion},
};

bool is_function(const ExportedSymbol& symbol)
{
    return symbol.type == STT_FUNC || symbol.type == STT_GNU_IFUNC;
}

std::map<std::string, std::string> function_versions(const ElfDynamicInfo& info)
{
    std::map<std::string, std::string> versions;
    for (const auto& symbol : info.exported_symbols) {
        if (is_function(symbol)) {
            versions[symbol.name] = symbol.version;
        }
    }
    return versions;
}

// Every exported symbol, functions and data alike, as "name@version".
std::set<std::string> versioned_names(const ElfDynamicInfo& info)
{
    std::set<std::string> names;
    for (const auto& symbol : info.exported_symbols) {
        names.insert(symbol.name + "@" + symbol.version);
    }
    return names;
}

template <class Container> std::string describe_difference(const Container& expected,
                                                            const Container& actual)
{
    std::ostringstream text;
    for (const auto& entry : expected) {
        if (actual.count(entry.first) == 0) {
            text << "\n  missing: " << entry.first;
        } else if (actual.at(entry.first) != entry.second) {
            text << "\n  " << entry.first << ": " << actual.at(entry.first) << ", expected "
                 << entry.second;
        }
    }
    for (const auto& entry : actual) {
        if (expected.count(entry.first) == 0) {
            text << "\n  unexpected: " << entry.first << " (" << entry.second << ")";
        }
    }
    return text.str();
}

std::string describe_difference(const std::set<std::string>& expected,
                                const std::set<std::string>& actual)
{
    std::ostringstream text;
    for (const auto& name : expected) {
        if (actual.count(name) == 0) {
            text << "\n  only in corosync's: " << name;
        }
    }
    for (const auto& name : actual) {
        if (expected.count(name) == 0) {
            text << "\n  only in rcpg's: " << name;
        }
    }
    return text.str();
}

bool contains(const std::vector<std::string>& list, const std::string& wanted)
{
    return std::find(list.begin(), list.end(), wanted) != list.end();
}

std::string joined(const std::vector<std::string>& list)
{
    std::string text;
    for (const auto& item : list) {
        text += (text.empty() ? "" : ", ") + item;
    }
    return text;
}

bool file_exists(const char* path)
{
    return access(path, F_OK) == 0;
}

// ---- libcpg.so.4 ----------------------------------------------------------------------

TEST(RcpgLibcpgElf, SonameIsLibcpgSo4)
{
    EXPECT_EQ(read_elf_dynamic_info(RCPG_LIBCPG_PATH).soname, "libcpg.so.4");
}

// Programs linked against corosync's libcpg may use libqb and the cs_* helpers without
// linking them themselves; they get them through these entries.
TEST(RcpgLibcpgElf, NeedsLibcorosyncCommonAndLibqb)
{
    const auto needed = read_elf_dynamic_info(RCPG_LIBCPG_PATH).needed;
    EXPECT_TRUE(contains(needed, "libcorosync_common.so.4")) << "DT_NEEDED: " << joined(needed);
    EXPECT_TRUE(contains(needed, "libqb.so.100")) << "DT_NEEDED: " << joined(needed);
}

TEST(RcpgLibcpgElf, ExportsExactlyTheTwentyCpgFunctionsAtCorosyncsVersions)
{
    const auto actual = function_versions(read_elf_dynamic_info(RCPG_LIBCPG_PATH));
    EXPECT_TRUE(actual == kLibcpgFunctionVersions)
        << "exported functions differ from the contract:"
        << describe_difference(kLibcpgFunctionVersions, actual);
}

// name@@VERSION, not name@VERSION: a plain link against rcpg's library must pick them up.
TEST(RcpgLibcpgElf, VersionedFunctionsAreTheDefaultVersion)
{
    for (const auto& symbol : read_elf_dynamic_info(RCPG_LIBCPG_PATH).exported_symbols) {
        EXPECT_TRUE(symbol.is_default_version) << symbol.name << "@" << symbol.version;
    }
}

// Programs linked against corosync's libcpg carry "libcpg.so.4 needs COROSYNC_CPG_1.0";
// without that definition the dynamic linker refuses to start them.
TEST(RcpgLibcpgElf, DefinesTheBaseVersionAndCorosyncCpg10)
{
    const auto definitions = read_elf_dynamic_info(RCPG_LIBCPG_PATH).version_definitions;
    ASSERT_EQ(definitions.size(), 2u);
    EXPECT_EQ(definitions[0].index, VER_NDX_GLOBAL);
    EXPECT_EQ(definitions[0].flags & VER_FLG_BASE, VER_FLG_BASE);
    EXPECT_EQ(definitions[0].name, "libcpg.so.4");
    EXPECT_EQ(definitions[1].index, 2);
    EXPECT_EQ(definitions[1].flags & VER_FLG_BASE, 0);
    EXPECT_EQ(definitions[1].name, kCpgVersion);
}

// The linker's version-node marker (an absolute symbol named after the version) is the
// only non-function corosync's library exports; anything else would be leaked internals.
TEST(RcpgLibcpgElf, ExportsNoDataBesidesTheVersionMarker)
{
    for (const auto& symbol : read_elf_dynamic_info(RCPG_LIBCPG_PATH).exported_symbols) {
        if (is_function(symbol)) {
            continue;
        }
        EXPECT_TRUE(symbol.is_absolute && symbol.name == kCpgVersion &&
                    symbol.version == kCpgVersion)
            << "unexpected exported non-function " << symbol.name << "@" << symbol.version;
    }
}

// The same question asked of glibc's dynamic linker instead of this test's ELF reader.
// dlvsym() with an unknown version must fail, or a success would mean nothing.
TEST(RcpgLibcpgDynamicLinker, ResolvesEachFunctionAsProgramsLinkedAgainstCorosyncAskForIt)
{
    void* handle = dlopen(RCPG_LIBCPG_PATH, RTLD_LAZY | RTLD_LOCAL);
    ASSERT_NE(handle, nullptr) << dlerror();
    EXPECT_EQ(library_containing(dlsym(handle, "cpg_initialize")),
              canonical_path(RCPG_LIBCPG_PATH));
    for (const auto& [name, version] : kLibcpgFunctionVersions) {
        void* unversioned = dlsym(handle, name.c_str());
        EXPECT_NE(unversioned, nullptr) << name;
        if (version == kCpgVersion) {
            EXPECT_EQ(dlvsym(handle, name.c_str(), kCpgVersion), unversioned)
                << name << "@" << kCpgVersion;
            EXPECT_EQ(dlvsym(handle, name.c_str(), "COROSYNC_CPG_0.9"), nullptr)
                << name << "@COROSYNC_CPG_0.9 should not exist";
        }
    }
    dlclose(handle);
}

// ---- libevs.so.4 ------------------------------------------------------------------------

TEST(RcpgLibevsElf, SonameIsLibevsSo4)
{
    EXPECT_EQ(read_elf_dynamic_info(RCPG_LIBEVS_PATH).soname, "libevs.so.4");
}

TEST(RcpgLibevsElf, ExportsExactlyTheElevenEvsFunctionsAtCorosyncsVersions)
{
    const auto actual = function_versions(read_elf_dynamic_info(RCPG_LIBEVS_PATH));
    EXPECT_TRUE(actual == kLibevsFunctionVersions)
        << "exported functions differ from the contract:" << describe_difference(kLibevsFunctionVersions, actual);
}

// name@@COROSYNC_EVS_2.0, not name@COROSYNC_EVS_2.0: a plain link must pick them up.
TEST(RcpgLibevsElf, VersionedFunctionsAreTheDefaultVersion)
{
    for (const auto& symbol : read_elf_dynamic_info(RCPG_LIBEVS_PATH).exported_symbols) {
        EXPECT_TRUE(symbol.is_default_version) << symbol.name << "@" << symbol.version;
    }
}

// Programs linked against corosync 1.4's libevs carry "libevs.so.4 needs COROSYNC_EVS_2.0";
// without that definition the dynamic linker refuses to start them.
TEST(RcpgLibevsElf, DefinesTheBaseVersionAndCorosyncEvs20)
{
    const auto definitions = read_elf_dynamic_info(RCPG_LIBEVS_PATH).version_definitions;
    ASSERT_EQ(definitions.size(), 2u);
    EXPECT_EQ(definitions[0].index, VER_NDX_GLOBAL);
    EXPECT_EQ(definitions[0].flags & VER_FLG_BASE, VER_FLG_BASE);
    EXPECT_EQ(definitions[0].name, "libevs.so.4");
    EXPECT_EQ(definitions[1].index, 2);
    EXPECT_EQ(definitions[1].flags & VER_FLG_BASE, 0);
    EXPECT_EQ(definitions[1].name, kEvsVersion);
}

// Nothing but the linker's marker for the version node besides the functions: no leaked
// internals, none of libcpg's or libcorosync_common's functions exported again.
TEST(RcpgLibevsElf, ExportsNoDataBesidesTheVersionMarker)
{
    for (const auto& symbol : read_elf_dynamic_info(RCPG_LIBEVS_PATH).exported_symbols) {
        if (is_function(symbol)) {
            continue;
        }
        EXPECT_TRUE(symbol.is_absolute && symbol.name == kEvsVersion && symbol.version == kEvsVersion)
            << "unexpected exported non-function " << symbol.name << "@" << symbol.version;
    }
}

TEST(RcpgLibevsDynamicLinker, ResolvesEachFunctionAsProgramsLinkedAgainstCorosyncAskForIt)
{
    void* handle = dlopen(RCPG_LIBEVS_PATH, RTLD_LAZY | RTLD_LOCAL);
    ASSERT_NE(handle, nullptr) << dlerror();
    EXPECT_EQ(library_containing(dlsym(handle, "evs_initialize")), canonical_path(RCPG_LIBEVS_PATH));
    for (const auto& [name, version] : kLibevsFunctionVersions) {
        void* unversioned = dlsym(handle, name.c_str());
        EXPECT_NE(unversioned, nullptr) << name;
        if (version == kEvsVersion) {
            EXPECT_EQ(dlvsym(handle, name.c_str(), kEvsVersion), unversioned) << name << "@" << kEvsVersion;
        }
    }
    dlclose(handle);
}

// ---- libcorosync_common.so.4 ------------------------------------------------------------

TEST(RcpgCorosyncCommonElf, SonameIsLibcorosyncCommonSo4)
{
    EXPECT_EQ(read_elf_dynamic_info(RCPG_COROSYNC_COMMON_PATH).soname, "libcorosync_common.so.4");
}

TEST(RcpgCorosyncCommonElf, ExportsExactlyTheThreeHelpersUnversioned)
{
    const auto info = read_elf_dynamic_info(RCPG_COROSYNC_COMMON_PATH);
    const auto actual = function_versions(info);
    EXPECT_TRUE(actual == kCorosyncCommonFunctionVersions)
        << "exported functions differ from the contract:"
        << describe_difference(kCorosyncCommonFunctionVersions, actual);
    EXPECT_TRUE(info.version_definitions.empty()) << "corosync's library defines no versions";
    for (const auto& symbol : info.exported_symbols) {
        EXPECT_TRUE(is_function(symbol)) << "unexpected exported non-function " << symbol.name;
    }
}

// corosync's has no DT_NEEDED at all; a C++ runtime dependency would mean the helpers
// stopped being plain functions over static strings. Sanitizer runtimes bring their own.
TEST(RcpgCorosyncCommonElf, NeedsNothingButLibc)
{
    if (RCPG_SANITIZED_BUILD) {
        GTEST_SKIP() << "sanitizer build: its runtime adds libstdc++, libm and libgcc_s";
    }
    for (const auto& library : read_elf_dynamic_info(RCPG_COROSYNC_COMMON_PATH).needed) {
        EXPECT_EQ(library, "libc.so.6");
    }
}

// ---- against corosync's own libraries ---------------------------------------------------

TEST(AgainstCorosync, LibcpgExportsTheSameSymbolsAtTheSameVersions)
{
    if (!file_exists(REFERENCE_LIBCPG_PATH)) {
        GTEST_SKIP() << "corosync's " << REFERENCE_LIBCPG_PATH
                     << " is not installed (Debian package libcpg4): no direct comparison";
    }
    const auto reference = read_elf_dynamic_info(REFERENCE_LIBCPG_PATH);
    const auto rcpg = read_elf_dynamic_info(RCPG_LIBCPG_PATH);
    EXPECT_EQ(rcpg.soname, reference.soname);
    const auto expected = versioned_names(reference);
    const auto actual = versioned_names(rcpg);
    EXPECT_TRUE(actual == expected) << "exported symbols differ:"
                                    << describe_difference(expected, actual);
}

TEST(AgainstCorosync, LibcorosyncCommonExportsTheSameSymbols)
{
    if (!file_exists(REFERENCE_COROSYNC_COMMON_PATH)) {
        GTEST_SKIP() << "corosync's " << REFERENCE_COROSYNC_COMMON_PATH
                     << " is not installed (Debian package libcorosync-common4): "
                        "no direct comparison";
    }
    const auto reference = read_elf_dynamic_info(REFERENCE_COROSYNC_COMMON_PATH);
    const auto rcpg = read_elf_dynamic_info(RCPG_COROSYNC_COMMON_PATH);
    EXPECT_EQ(rcpg.soname, reference.soname);
    const auto expected = versioned_names(reference);
    const auto actual = versioned_names(rcpg);
    EXPECT_TRUE(actual == expected) << "exported symbols differ:"
                                    << describe_difference(expected, actual);
}

} // namespace
} // namespace rcpg::abi_test
