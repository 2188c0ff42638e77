/*
 * What cluster_order_client.c and cluster_failover_client.c share: the buffer their event
 * lines collect in and the output file it is written to, the confchg (C) line, joining
 * the group, and the parts of a message that are one scheme in both: the key of
 * (nodeid, pid, seq), the fill generated from it, its FNV-1a checksum and the layout of
 * the 24-byte header. Lengths, magics and what a receiver accepts stay with each client.
 *
 * Each client is a single-file test program of its own, so the shared code is static
 * functions in a header rather than a library. The including file defines _GNU_SOURCE
 * before it, and fail(), whose message names the program and its counters.
 */
#ifndef RCPG_TESTS_E2E_CLUSTER_CLIENT_COMMON_H
#define RCPG_TESTS_E2E_CLUSTER_CLIENT_COMMON_H

#include <corosync/cpg.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
    kHeaderBytes = 24, /* seq, length, nodeid, pid, checksum, magic */
};

static void fail(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ------------------------------------------------------------------ output */

static char *events; /* the output lines, in the order they happened */
static size_t events_bytes, events_capacity;

static inline void record(const char *format, ...) __attribute__((format(printf, 1, 2)));
static inline void record(const char *format, ...)
{
    char line[8192];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(line, sizeof(line), format, args);
    va_end(args);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        fail("event line too long");
    }
    if (events_bytes + (size_t)n + 1 > events_capacity) {
        size_t capacity = events_capacity ? events_capacity * 2 : 1 << 20;
        while (capacity < events_bytes + (size_t)n + 1) {
            capacity *= 2;
        }
        char *grown = realloc(events, capacity);
        if (grown == NULL) {
            fail("out of memory for %zu event bytes", capacity);
        }
        events = grown;
        events_capacity = capacity;
    }
    memcpy(events + events_bytes, line, (size_t)n);
    events_bytes += (size_t)n;
    events[events_bytes] = '\0';
}

/* The output file, for the caller's first line; errors end the program (exit 1) without
 * fail(), which writes this file itself. */
static inline FILE *open_output(const char *program, const char *path)
{
    FILE *out = fopen(path, "w");
    if (out == NULL) {
        fprintf(stderr, "%s: cannot write %s: %s\n", program, path, strerror(errno));
        exit(1);
    }
    return out;
}

/* Writes the recorded events after the caller's first line and closes the file. */
static inline void finish_output(FILE *out, const char *program, const char *path)
{
    if (events_bytes > 0 && fwrite(events, 1, events_bytes, out) != events_bytes) {
        fprintf(stderr, "%s: short write to %s\n", program, path);
        exit(1);
    }
    if (fclose(out) != 0) {
        fprintf(stderr, "%s: cannot write %s: %s\n", program, path, strerror(errno));
        exit(1);
    }
}

/* The E line of a failure does not go through the buffer, which may be what failed. */
static inline void append_fail_line(const char *path, const char *text)
{
    FILE *out = fopen(path, "a");
    if (out != NULL) {
        fprintf(out, "E fail %s\n", text);
        fclose(out);
    }
}

static inline int compare_address(const void *a, const void *b)
{
    const struct cpg_address *x = a, *y = b;
    if (x->nodeid != y->nodeid) {
        return x->nodeid < y->nodeid ? -1 : 1;
    }
    return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static inline void format_list(char *text, size_t capacity, const struct cpg_address *list, size_t count,
                               int with_reason)
{
    struct cpg_address sorted[256];
    size_t used = 0;
    if (count > sizeof(sorted) / sizeof(sorted[0])) {
        fail("confchg with %zu entries", count);
    }
    memcpy(sorted, list, count * sizeof(*list));
    qsort(sorted, count, sizeof(*sorted), compare_address);
    text[0] = '\0';
    for (size_t i = 0; i < count && used < capacity; i++) {
        int n = with_reason ? snprintf(text + used, capacity - used, "%s%" PRIu32 ":%" PRIu32 ":%" PRIu32,
                                       i ? "," : "", sorted[i].nodeid, sorted[i].pid, sorted[i].reason)
                            : snprintf(text + used, capacity - used, "%s%" PRIu32 ":%" PRIu32, i ? "," : "",
                                       sorted[i].nodeid, sorted[i].pid);
        used += n > 0 ? (size_t)n : 0;
    }
}

/* A C line: "C <time_field>reason=<r> joined=... left=... members=...". The lists are
 * sorted, so one confchg gives every member the same line but for time_field; each list
 * is cut at list_capacity - 1 characters (at most 4095). */
static inline void record_confchg(const char *time_field, size_t list_capacity, const struct cpg_address *member_list,
                                  size_t n_members, const struct cpg_address *left_list, size_t n_left,
                                  const struct cpg_address *joined_list, size_t n_joined)
{
    char joined_text[4096], left_text[4096], members_text[4096];
    if (list_capacity > sizeof(joined_text)) {
        list_capacity = sizeof(joined_text);
    }
    format_list(joined_text, list_capacity, joined_list, n_joined, 1);
    format_list(left_text, list_capacity, left_list, n_left, 1);
    format_list(members_text, list_capacity, member_list, n_members, 0);
    const uint32_t reason = n_joined ? joined_list[0].reason : n_left ? left_list[0].reason : 0;
    record("C %sreason=%" PRIu32 " joined=%s left=%s members=%s\n", time_field, reason, joined_text, left_text,
           members_text);
}

/* ------------------------------------------------------------------ group */

static inline double monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sets *nodeid as soon as it is known, so that a later fail() names it. */
static inline void local_node(cpg_handle_t handle, uint32_t *nodeid, int *fd)
{
    cs_error_t rc;
    unsigned int local;
    if ((rc = cpg_local_get(handle, &local)) != CS_OK) {
        fail("cpg_local_get: %s", cs_strerror(rc));
    }
    *nodeid = local;
    if ((rc = cpg_fd_get(handle, fd)) != CS_OK) {
        fail("cpg_fd_get: %s", cs_strerror(rc));
    }
}

/* cpg_join, retried while it says CS_ERR_TRY_AGAIN (until deadline, on the monotonic_s
 * clock); any other result is the caller's to judge. */
static inline cs_error_t join_group(cpg_handle_t handle, const char *name, double deadline)
{
    struct cpg_name group;
    group.length = (uint32_t)strlen(name);
    memcpy(group.value, name, group.length);
    cs_error_t rc;
    while ((rc = cpg_join(handle, &group)) == CS_ERR_TRY_AGAIN) {
        if (monotonic_s() > deadline) {
            fail("timeout: cpg_join kept returning CS_ERR_TRY_AGAIN");
        }
        usleep(1000);
    }
    return rc;
}

/* ------------------------------------------------------------------ message contents */

static inline uint64_t mix64(uint64_t x)
{
    /* splitmix64's finalizer */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Each client draws its lengths from this key as well as the fill. */
static inline uint64_t message_key(uint32_t nodeid, uint32_t pid, uint32_t seq)
{
    return mix64(((uint64_t)nodeid << 32 | pid) ^ mix64(seq));
}

static inline void fill_bytes(uint8_t *fill, size_t bytes, uint32_t nodeid, uint32_t pid, uint32_t seq)
{
    uint64_t state = message_key(nodeid, pid, seq) | 1;
    size_t i = 0;
    while (i < bytes) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        for (int b = 0; b < 8 && i < bytes; b++, i++) {
            fill[i] = (uint8_t)(state >> (8 * b));
        }
    }
}

static inline uint32_t fnv1a(const uint8_t *bytes, size_t count)
{
    uint32_t hash = 2166136261u;
    for (size_t i = 0; i < count; i++) {
        hash = (hash ^ bytes[i]) * 16777619u;
    }
    return hash;
}

struct message_header {
    uint32_t seq, length, nodeid, pid, checksum, magic;
};

/* Bytes 0..23 of a message of length >= kHeaderBytes whose fill is already in place: the
 * checksum covers it. */
static inline void write_header(uint8_t *message, uint32_t seq, uint32_t length, uint32_t nodeid, uint32_t pid,
                                uint32_t magic)
{
    const uint32_t checksum = fnv1a(message + kHeaderBytes, length - kHeaderBytes);
    memcpy(message + 0, &seq, 4);
    memcpy(message + 4, &length, 4);
    memcpy(message + 8, &nodeid, 4);
    memcpy(message + 12, &pid, 4);
    memcpy(message + 16, &checksum, 4);
    memcpy(message + 20, &magic, 4);
}

/* The fields as written, unchecked; message holds at least kHeaderBytes. */
static inline struct message_header read_header(const uint8_t *message)
{
    struct message_header header;
    memcpy(&header.seq, message + 0, 4);
    memcpy(&header.length, message + 4, 4);
    memcpy(&header.nodeid, message + 8, 4);
    memcpy(&header.pid, message + 12, 4);
    memcpy(&header.checksum, message + 16, 4);
    memcpy(&header.magic, message + 20, 4);
    return header;
}

#endif
