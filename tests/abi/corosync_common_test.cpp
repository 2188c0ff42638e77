// rcpg's libcorosync_common.so.4 against the documented tables (contract section 3):
// cs_strerror() text for every code, qb_to_cs_error() for every errno corosync maps, and
// hdb_error_to_cs(). Values outside the tables are passed from C, as real callers do.

#include "corosync_common_calls.h"
#include "loaded_library.h"

#include <corosync/corotypes.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <climits>
#include <string>

namespace rcpg::abi_test {
namespace {

struct ExpectedText {
    cs_error_t code;
    const char* text;
};

struct ExpectedMapping {
    const char* input_name; // how the table in the contract spells the input
    int input;
    cs_error_t result;
};

#define NEGATED_ERRNO(name, result) ExpectedMapping{"-" #name, -(name), result}

const char* strerror_from_c(int code)
{
    return call_cs_strerror(&cs_strerror, code);
}

// Results compare as ints: a wrong implementation may return a value outside the enum.
int code_of(cs_error_t error)
{
    return static_cast<int>(error);
}

int qb_to_cs_error_from_c(int result)
{
    return call_cs_error_mapping(&qb_to_cs_error, result);
}

int hdb_error_to_cs_from_c(int result)
{
    return call_cs_error_mapping(&hdb_error_to_cs, result);
}

// The same SONAME is installed by corosync; a missing RUNPATH would silently test theirs.
TEST(CorosyncCommonUnderTest, IsRcpgsBuildNotTheSystemLibrary)
{
    EXPECT_EQ(library_containing(cs_strerror(CS_OK)), canonical_path(RCPG_COROSYNC_COMMON_PATH));
}

TEST(CsStrerror, NamesEveryErrorCode)
{
    const ExpectedText expected[] = {
        {CS_OK, "success"},
        {CS_ERR_LIBRARY, "CS_ERR_LIBRARY"},
        {CS_ERR_VERSION, "CS_ERR_VERSION"},
        {CS_ERR_INIT, "CS_ERR_INIT"},
        {CS_ERR_TIMEOUT, "CS_ERR_TIMEOUT"},
        {CS_ERR_TRY_AGAIN, "CS_ERR_TRY_AGAIN"},
        {CS_ERR_INVALID_PARAM, "CS_ERR_INVALID_PARAM"},
        {CS_ERR_NO_MEMORY, "CS_ERR_NO_MEMORY"},
        {CS_ERR_BAD_HANDLE, "CS_ERR_BAD_HANDLE"},
        {CS_ERR_BUSY, "CS_ERR_BUSY"},
        {CS_ERR_ACCESS, "CS_ERR_ACCESS"},
        {CS_ERR_NOT_EXIST, "CS_ERR_NOT_EXIST"},
        {CS_ERR_NAME_TOO_LONG, "CS_ERR_NAME_TOO_LONG"},
        {CS_ERR_EXIST, "CS_ERR_EXIST"},
        {CS_ERR_NO_SPACE, "CS_ERR_NO_SPACE"},
        {CS_ERR_INTERRUPT, "CS_ERR_INTERRUPT"},
        {CS_ERR_NAME_NOT_FOUND, "CS_ERR_NAME_NOT_FOUND"},
        {CS_ERR_NO_RESOURCES, "CS_ERR_NO_RESOURCES"},
        {CS_ERR_NOT_SUPPORTED, "CS_ERR_NOT_SUPPORTED"},
        {CS_ERR_BAD_OPERATION, "CS_ERR_BAD_OPERATION"},
        {CS_ERR_FAILED_OPERATION, "CS_ERR_FAILED_OPERATION"},
        {CS_ERR_MESSAGE_ERROR, "CS_ERR_MESSAGE_ERROR"},
        {CS_ERR_QUEUE_FULL, "CS_ERR_QUEUE_FULL"},
        {CS_ERR_QUEUE_NOT_AVAILABLE, "CS_ERR_QUEUE_NOT_AVAILABLE"},
        {CS_ERR_BAD_FLAGS, "CS_ERR_BAD_FLAGS"},
        {CS_ERR_TOO_BIG, "CS_ERR_TOO_BIG"},
        {CS_ERR_NO_SECTIONS, "CS_ERR_NO_SECTIONS"},
        {CS_ERR_CONTEXT_NOT_FOUND, "CS_ERR_CONTEXT_NOT_FOUND"},
        {CS_ERR_TOO_MANY_GROUPS, "CS_ERR_TOO_MANY_GROUPS"},
        {CS_ERR_SECURITY, "CS_ERR_SECURITY"},
    };
    for (const auto& [code, text] : expected) {
        const char* actual = cs_strerror(code);
        ASSERT_NE(actual, nullptr) << "cs_strerror(" << code << ")";
        EXPECT_STREQ(actual, text) << "cs_strerror(" << code << ")";
    }
}

// Callers printf("%s") the result unchecked, so every other code needs a real string.
TEST(CsStrerror, UnknownCodesGiveTheSameStaticString)
{
    const char* const first = strerror_from_c(0); // 0 is not a code: CS_OK is 1
    ASSERT_NE(first, nullptr);
    EXPECT_STREQ(first, "unknown error");
    // Static storage inside the library: not heap, not a per-call buffer.
    EXPECT_EQ(library_containing(first), canonical_path(RCPG_COROSYNC_COMMON_PATH));

    // 29 is the gap in the enum; the others surround the last codes or are far outside.
    for (const int code : {29, 31, 99, 101, 127, 128, 200, -1, -100, INT_MIN, INT_MAX}) {
        EXPECT_EQ(strerror_from_c(code), first) << "cs_strerror(" << code << ")";
    }
}

TEST(QbToCsError, NonNegativeResultsAreOk)
{
    for (const int result : {0, 1, 4096, INT_MAX}) {
        EXPECT_EQ(qb_to_cs_error_from_c(result), code_of(CS_OK)) << "qb_to_cs_error(" << result << ")";
    }
}

TEST(QbToCsError, MapsEveryDocumentedErrno)
{
    const ExpectedMapping expected[] = {
        NEGATED_ERRNO(EBADF, CS_ERR_BAD_HANDLE),
        NEGATED_ERRNO(ENOMEM, CS_ERR_NO_MEMORY),
        NEGATED_ERRNO(ENOMSG, CS_ERR_TRY_AGAIN),
        NEGATED_ERRNO(ENOBUFS, CS_ERR_TRY_AGAIN),
        NEGATED_ERRNO(ETIMEDOUT, CS_ERR_TRY_AGAIN),
        NEGATED_ERRNO(EAGAIN, CS_ERR_TRY_AGAIN),
        NEGATED_ERRNO(EBADE, CS_ERR_FAILED_OPERATION),
        NEGATED_ERRNO(ETIME, CS_ERR_TIMEOUT),
        NEGATED_ERRNO(EINVAL, CS_ERR_INVALID_PARAM),
        NEGATED_ERRNO(EBUSY, CS_ERR_BUSY),
        NEGATED_ERRNO(EACCES, CS_ERR_ACCESS),
        NEGATED_ERRNO(EOVERFLOW, CS_ERR_NAME_TOO_LONG),
        NEGATED_ERRNO(EEXIST, CS_ERR_EXIST),
        NEGATED_ERRNO(ENOSPC, CS_ERR_NO_SPACE),
        NEGATED_ERRNO(EINTR, CS_ERR_INTERRUPT),
        NEGATED_ERRNO(ENOENT, CS_ERR_NOT_EXIST),
        NEGATED_ERRNO(ENODEV, CS_ERR_NOT_EXIST),
        NEGATED_ERRNO(ENOSYS, CS_ERR_NOT_SUPPORTED),
        NEGATED_ERRNO(ENOTSUP, CS_ERR_NOT_SUPPORTED),
        NEGATED_ERRNO(EBADMSG, CS_ERR_MESSAGE_ERROR),
        NEGATED_ERRNO(EMSGSIZE, CS_ERR_TOO_BIG),
        NEGATED_ERRNO(E2BIG, CS_ERR_TOO_BIG),
    };
    for (const auto& [name, input, result] : expected) {
        EXPECT_EQ(qb_to_cs_error_from_c(input), code_of(result)) << "qb_to_cs_error(" << name << ")";
    }
}

// Linux spells some errnos twice; the alias must map like the name in the table.
TEST(QbToCsError, ErrnoAliasesMapLikeTheNameTheyShareAValueWith)
{
    static_assert(EWOULDBLOCK == EAGAIN && EOPNOTSUPP == ENOTSUP);
    EXPECT_EQ(qb_to_cs_error_from_c(-EWOULDBLOCK), code_of(CS_ERR_TRY_AGAIN));
    EXPECT_EQ(qb_to_cs_error_from_c(-EOPNOTSUPP), code_of(CS_ERR_NOT_SUPPORTED));
}

// A vanished daemon shows up as these; clients react to CS_ERR_LIBRARY by reconnecting.
TEST(QbToCsError, ConnectionLossAndUnlistedErrnosAreLibraryErrors)
{
    const ExpectedMapping expected[] = {
        NEGATED_ERRNO(ECONNREFUSED, CS_ERR_LIBRARY),
        NEGATED_ERRNO(ENOTCONN, CS_ERR_LIBRARY),
        NEGATED_ERRNO(EPIPE, CS_ERR_LIBRARY),
        NEGATED_ERRNO(ECONNRESET, CS_ERR_LIBRARY),
        NEGATED_ERRNO(ESHUTDOWN, CS_ERR_LIBRARY),
        NEGATED_ERRNO(EPERM, CS_ERR_LIBRARY),
        NEGATED_ERRNO(EIO, CS_ERR_LIBRARY),
        NEGATED_ERRNO(EMFILE, CS_ERR_LIBRARY),
        {"-4096", -4096, CS_ERR_LIBRARY},
        {"INT_MIN", INT_MIN, CS_ERR_LIBRARY},
    };
    for (const auto& [name, input, result] : expected) {
        EXPECT_EQ(qb_to_cs_error_from_c(input), code_of(result)) << "qb_to_cs_error(" << name << ")";
    }
}

TEST(HdbErrorToCs, MapsEveryDocumentedResult)
{
    EXPECT_EQ(hdb_error_to_cs_from_c(0), code_of(CS_OK));
    const ExpectedMapping expected[] = {
        NEGATED_ERRNO(EBADF, CS_ERR_BAD_HANDLE),
        NEGATED_ERRNO(ENOMEM, CS_ERR_NO_MEMORY),
        NEGATED_ERRNO(EMFILE, CS_ERR_NO_RESOURCES),
        NEGATED_ERRNO(EACCES, CS_ERR_ACCESS),
    };
    for (const auto& [name, input, result] : expected) {
        EXPECT_EQ(hdb_error_to_cs_from_c(input), code_of(result)) << "hdb_error_to_cs(" << name << ")";
    }
}

// Unlike qb_to_cs_error, positive values are not success here.
TEST(HdbErrorToCs, EverythingElseIsALibraryError)
{
    const ExpectedMapping expected[] = {
        {"1", 1, CS_ERR_LIBRARY},
        {"INT_MAX", INT_MAX, CS_ERR_LIBRARY},
        NEGATED_ERRNO(EPERM, CS_ERR_LIBRARY),
        NEGATED_ERRNO(EINVAL, CS_ERR_LIBRARY),
        NEGATED_ERRNO(EAGAIN, CS_ERR_LIBRARY),
        NEGATED_ERRNO(ENOENT, CS_ERR_LIBRARY),
        NEGATED_ERRNO(ENFILE, CS_ERR_LIBRARY),
        {"INT_MIN", INT_MIN, CS_ERR_LIBRARY},
    };
    for (const auto& [name, input, result] : expected) {
        EXPECT_EQ(hdb_error_to_cs_from_c(input), code_of(result)) << "hdb_error_to_cs(" << name << ")";
    }
}

} // namespace
} // namespace rcpg::abi_test
