/*
 * Compiles <corosync/evs.h> on its own, first in the translation unit, and checks its
 * layout against corosync 1.4's (evs_layout_expectations.h) at compile time. The same
 * file is built as C11 and as C++20 against rcpg's header; no corosync 1.x header is
 * installed to cross-check against, so the expectations are figures written down from
 * corosync 1.4's header.
 *
 * At run time it checks what 1.4 programs did with the header's names that a static
 * assertion does not show: a group initialized the 1.4 way ({ "key1" }) is the key
 * followed by zero bytes (groups are compared whole, all 32 bytes), and the EVS_* names
 * work as case labels (so two of them with one value would not compile). It calls no
 * evs_* function: no libevs is linked into this program.
 */
#include <corosync/evs.h>

#include "evs_layout_expectations.h"

#include <stdio.h>
#include <string.h>

#ifndef ABI_LAYOUT_VARIANT
#error "ABI_LAYOUT_VARIANT names the header and language under test"
#endif

static int failures = 0;

static void expect(int condition, const char *what)
{
    if (!condition) {
        fprintf(stderr, "FAIL %s\n", what);
        ++failures;
    }
}

/* As corosync 1.4's test/testevs.c and most 1.4 programs declared their groups. */
static struct evs_group groups_as_in_1_4[2] = {
    { "key1" },
    { "a key of thirty-one characters." }
};

static void check_group_initializers_fill_with_zeros(void)
{
    char expected[32];

    memset(expected, 0, sizeof expected);
    memcpy(expected, "key1", 4);
    expect(memcmp(groups_as_in_1_4[0].key, expected, sizeof expected) == 0,
           "{ \"key1\" } is the key and 28 zero bytes");

    memset(expected, 0, sizeof expected);
    memcpy(expected, "a key of thirty-one characters.", 31);
    expect(memcmp(groups_as_in_1_4[1].key, expected, sizeof expected) == 0,
           "a 31-character key keeps its terminating zero");
}

/* The names 1.4 programs compared results with, mapped back the way such a program's
 * error reporting did. */
static const char *evs_error_name(evs_error_t error)
{
    switch (error) {
    case EVS_OK: return "EVS_OK";
    case EVS_ERR_LIBRARY: return "EVS_ERR_LIBRARY";
    case EVS_ERR_TIMEOUT: return "EVS_ERR_TIMEOUT";
    case EVS_ERR_TRY_AGAIN: return "EVS_ERR_TRY_AGAIN";
    case EVS_ERR_INVALID_PARAM: return "EVS_ERR_INVALID_PARAM";
    case EVS_ERR_NO_MEMORY: return "EVS_ERR_NO_MEMORY";
    case EVS_ERR_BAD_HANDLE: return "EVS_ERR_BAD_HANDLE";
    case EVS_ERR_ACCESS: return "EVS_ERR_ACCESS";
    case EVS_ERR_NOT_EXIST: return "EVS_ERR_NOT_EXIST";
    case EVS_ERR_EXIST: return "EVS_ERR_EXIST";
    case EVS_ERR_NOT_SUPPORTED: return "EVS_ERR_NOT_SUPPORTED";
    case EVS_ERR_SECURITY: return "EVS_ERR_SECURITY";
    case EVS_ERR_TOO_MANY_GROUPS: return "EVS_ERR_TOO_MANY_GROUPS";
    default: return "other";
    }
}

static const char *evs_dispatch_name(cs_dispatch_flags_t flags)
{
    switch (flags) {
    case EVS_DISPATCH_ONE: return "EVS_DISPATCH_ONE";
    case EVS_DISPATCH_ALL: return "EVS_DISPATCH_ALL";
    case EVS_DISPATCH_BLOCKING: return "EVS_DISPATCH_BLOCKING";
    default: return "other";
    }
}

static void check_compatibility_names_map_to_corotypes_codes(void)
{
    expect(strcmp(evs_error_name(CS_OK), "EVS_OK") == 0, "CS_OK is EVS_OK");
    expect(strcmp(evs_error_name(CS_ERR_TRY_AGAIN), "EVS_ERR_TRY_AGAIN") == 0,
           "CS_ERR_TRY_AGAIN is EVS_ERR_TRY_AGAIN");
    expect(strcmp(evs_error_name(CS_ERR_NOT_SUPPORTED), "EVS_ERR_NOT_SUPPORTED") == 0,
           "CS_ERR_NOT_SUPPORTED is EVS_ERR_NOT_SUPPORTED");
    expect(strcmp(evs_error_name(CS_ERR_SECURITY), "EVS_ERR_SECURITY") == 0,
           "CS_ERR_SECURITY is EVS_ERR_SECURITY");
    expect(strcmp(evs_error_name(CS_ERR_BUSY), "other") == 0,
           "CS_ERR_BUSY has no EVS_ name");
    expect(strcmp(evs_dispatch_name(CS_DISPATCH_ALL), "EVS_DISPATCH_ALL") == 0,
           "CS_DISPATCH_ALL is EVS_DISPATCH_ALL");
}

int main(void)
{
    check_group_initializers_fill_with_zeros();
    check_compatibility_names_map_to_corotypes_codes();
    if (failures != 0) {
        fprintf(stderr, "%s: %d runtime check(s) failed\n", ABI_LAYOUT_VARIANT, failures);
        return 1;
    }
    printf("%s: layout static assertions compiled; runtime checks passed\n", ABI_LAYOUT_VARIANT);
    return 0;
}
