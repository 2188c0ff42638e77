/*
 * Compiles <corosync/cpg.h> on its own, first in the translation unit, and checks its
 * layout against corosync's (cpg_layout_expectations.h) at compile time. The same file is
 * built as C11 and as C++20, against rcpg's header and against Debian's.
 *
 * At run time it checks what a compiler cannot: the printf formats the header defines for
 * node and ring ids, and that cs_timestamp_get() is an inline usable without linking any
 * corosync library (none is linked into this program).
 */
#include <corosync/cpg.h>

#include "cpg_layout_expectations.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#ifndef ABI_LAYOUT_VARIANT
#error "ABI_LAYOUT_VARIANT names the header and language under test"
#endif

static int failures = 0;

static void expect_formatted(const char *what, const char *actual, const char *expected)
{
    if (strcmp(actual, expected) != 0) {
        fprintf(stderr, "FAIL %s: formatted \"%s\", expected \"%s\"\n", what, actual, expected);
        ++failures;
    }
}

/* Programs print node and ring ids with these; the text is what operators grep logs for. */
static void check_printf_formats(void)
{
    char text[64];

    snprintf(text, sizeof text, CS_PRI_NODE_ID, (uint32_t)4294967295u);
    expect_formatted("CS_PRI_NODE_ID", text, "4294967295");

    snprintf(text, sizeof text, CS_PRI_NODE_ID_PADDED, (uint32_t)42u);
    expect_formatted("CS_PRI_NODE_ID_PADDED", text, "        42");

    snprintf(text, sizeof text, CS_PRI_RING_ID_SEQ, (uint64_t)0xfedcba9876543210ull);
    expect_formatted("CS_PRI_RING_ID_SEQ", text, "fedcba9876543210");

    snprintf(text, sizeof text, CS_PRI_RING_ID, (uint32_t)0xabcu, (uint64_t)0x1234567890ull);
    expect_formatted("CS_PRI_RING_ID", text, "abc.1234567890");
}

/*
 * A clock that is running: corosync's header reads the wall clock, rcpg's reads
 * CLOCK_MONOTONIC; either is non-zero and does not go back between two back-to-back reads.
 */
static void check_timestamp_is_nanoseconds_from_a_running_clock(void)
{
    const uint64_t first_ns = cs_timestamp_get();
    const uint64_t second_ns = cs_timestamp_get();
    if (first_ns == 0 || second_ns < first_ns) {
        fprintf(stderr, "FAIL cs_timestamp_get: %" PRIu64 " then %" PRIu64 "\n", first_ns,
                second_ns);
        ++failures;
    }
}

int main(void)
{
    check_printf_formats();
    check_timestamp_is_nanoseconds_from_a_running_clock();
    if (failures != 0) {
        fprintf(stderr, "%s: %d runtime check(s) failed\n", ABI_LAYOUT_VARIANT, failures);
        return 1;
    }
    printf("%s: layout static assertions compiled; runtime checks passed\n", ABI_LAYOUT_VARIANT);
    return 0;
}
