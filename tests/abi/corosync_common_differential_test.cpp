// rcpg's libcorosync_common.so.4 and corosync's give the same answer for every input in
// -300..300 (all errnos and cs_error_t codes, and the space around them) and for extremes.
//
// Both libraries have the SONAME libcorosync_common.so.4. rcpg's is linked in; corosync's
// is opened by absolute path with RTLD_LOCAL, which loads it as a second object, and its
// functions are looked up on that handle only. Both are called through the same C shim.

#include "corosync_common_calls.h"
#include "loaded_library.h"

#include <corosync/corotypes.h>

#include <dlfcn.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <climits>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

namespace rcpg::abi_test {
namespace {

constexpr int kSweepLow = -300;
constexpr int kSweepHigh = 300;
constexpr std::size_t kMismatchesShown = 10;

std::vector<int> inputs_to_compare()
{
    std::vector<int> inputs;
    for (int value = kSweepLow; value <= kSweepHigh; ++value) {
        inputs.push_back(value);
    }
    for (const int extreme : {INT_MIN, INT_MIN + 1, -65536, 65536, 1 << 30, INT_MAX - 1, INT_MAX}) {
        inputs.push_back(extreme);
    }
    return inputs;
}

// One failure listing the first differences, rather than hundreds of lines.
void expect_no_mismatches(const char* function, const std::vector<std::string>& mismatches)
{
    if (mismatches.empty()) {
        return;
    }
    std::ostringstream report;
    report << function << " differs from corosync's for " << mismatches.size() << " input(s):";
    for (std::size_t i = 0; i < mismatches.size() && i < kMismatchesShown; ++i) {
        report << "\n  " << mismatches[i];
    }
    ADD_FAILURE() << report.str();
}

struct Implementation {
    cs_strerror_fn cs_strerror_impl = nullptr;
    cs_error_mapping_fn qb_to_cs_error_impl = nullptr;
    cs_error_mapping_fn hdb_error_to_cs_impl = nullptr;
};

class CorosyncCommonVersusCorosync : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (access(REFERENCE_COROSYNC_COMMON_PATH, F_OK) != 0) {
            GTEST_SKIP() << "corosync's " << REFERENCE_COROSYNC_COMMON_PATH
                         << " is not installed (Debian package libcorosync-common4): "
                            "nothing to compare rcpg's helpers with";
        }
        reference_handle_ = dlopen(REFERENCE_COROSYNC_COMMON_PATH, RTLD_NOW | RTLD_LOCAL);
        ASSERT_NE(reference_handle_, nullptr) << dlerror();
        reference_.cs_strerror_impl =
            reinterpret_cast<cs_strerror_fn>(lookup_reference("cs_strerror"));
        reference_.qb_to_cs_error_impl =
            reinterpret_cast<cs_error_mapping_fn>(lookup_reference("qb_to_cs_error"));
        reference_.hdb_error_to_cs_impl =
            reinterpret_cast<cs_error_mapping_fn>(lookup_reference("hdb_error_to_cs"));
        ASSERT_FALSE(HasFailure());

        // Two different files must answer, or the comparison proves nothing.
        ASSERT_EQ(library_containing(call_cs_strerror(reference_.cs_strerror_impl, CS_OK)),
                  canonical_path(REFERENCE_COROSYNC_COMMON_PATH));
        ASSERT_EQ(library_containing(call_cs_strerror(rcpg_.cs_strerror_impl, CS_OK)),
                  canonical_path(RCPG_COROSYNC_COMMON_PATH));
    }

    void TearDown() override
    {
        if (reference_handle_ != nullptr) {
            dlclose(reference_handle_);
        }
    }

    void* lookup_reference(const char* name)
    {
        void* address = dlsym(reference_handle_, name);
        if (address == nullptr) {
            ADD_FAILURE() << "corosync's library lacks " << name << ": " << dlerror();
        }
        return address;
    }

    void compare_mapping(const char* function, cs_error_mapping_fn Implementation::*member)
    {
        std::vector<std::string> mismatches;
        for (const int input : inputs_to_compare()) {
            const int expected = call_cs_error_mapping(reference_.*member, input);
            const int actual = call_cs_error_mapping(rcpg_.*member, input);
            if (actual != expected) {
                mismatches.push_back(std::string(function) + "(" + std::to_string(input) +
                                     "): rcpg " + std::to_string(actual) + ", corosync " +
                                     std::to_string(expected));
            }
        }
        expect_no_mismatches(function, mismatches);
    }

    void* reference_handle_ = nullptr;
    Implementation reference_;
    const Implementation rcpg_{&cs_strerror, &qb_to_cs_error, &hdb_error_to_cs};
};

TEST_F(CorosyncCommonVersusCorosync, CsStrerrorGivesTheSameText)
{
    std::vector<std::string> mismatches;
    for (const int code : inputs_to_compare()) {
        const char* expected = call_cs_strerror(reference_.cs_strerror_impl, code);
        const char* actual = call_cs_strerror(rcpg_.cs_strerror_impl, code);
        ASSERT_NE(expected, nullptr) << "corosync's cs_strerror(" << code << ")";
        if (actual == nullptr || std::strcmp(actual, expected) != 0) {
            mismatches.push_back("cs_strerror(" + std::to_string(code) + "): rcpg \"" +
                                 (actual == nullptr ? "(null)" : actual) + "\", corosync \"" +
                                 expected + "\"");
        }
    }
    expect_no_mismatches("cs_strerror", mismatches);
}

TEST_F(CorosyncCommonVersusCorosync, QbToCsErrorMapsEveryResultTheSame)
{
    compare_mapping("qb_to_cs_error", &Implementation::qb_to_cs_error_impl);
}

TEST_F(CorosyncCommonVersusCorosync, HdbErrorToCsMapsEveryResultTheSame)
{
    compare_mapping("hdb_error_to_cs", &Implementation::hdb_error_to_cs_impl);
}

} // namespace
} // namespace rcpg::abi_test
