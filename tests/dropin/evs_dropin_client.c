/*
 * An EVS program as corosync 1.4 users wrote them: only the EVS API of <corosync/evs.h>,
 * with the names 1.4 programs used (evs_error_t, EVS_OK, EVS_ERR_TRY_AGAIN,
 * EVS_DISPATCH_ALL, ...). No corosync 1.x header or library is installed here, so it is
 * built against rcpg's header (tests/abi/evs_layout_check.c is what ties that header to
 * corosync 1.4's figures), linked against rcpg's libevs.so.4 and run against rcpgd.
 *
 * Steps: open a handle; its descriptor becomes readable with the initial configuration
 * change, which must list this node (as evs_membership_get reports it); join two groups;
 * multicast to the joined groups and to named groups, several iovecs a message; receive
 * every message of this handle's groups exactly once, in the order sent, with this node's
 * id and the bytes sent, and none of a group it never joined or has left; leave; finalize.
 * Every wait is bounded: 60 s in all for the whole run.
 *
 * Exits 0 if every step behaves as documented, 1 with a message on stderr otherwise.
 * With $EXPECT_LIBEVS_DIR set, it also checks that the libevs.so.4 it runs with is the
 * one in that directory (so a pass cannot come from the wrong library).
 */
#define _GNU_SOURCE
#include <corosync/evs.h>

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "evs_dropin_client: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

/* A call that must return `expected`; prints what it returned otherwise. */
#define CHECK_RESULT(call, expected)                                                     \
    do {                                                                                 \
        evs_error_t check_result_ = (call);                                              \
        if (check_result_ != (expected)) {                                               \
            fprintf(stderr, "evs_dropin_client: %s:%d: %s returned %d, expected %s (%d)\n", \
                    __FILE__, __LINE__, #call, (int)check_result_, #expected, (int)(expected)); \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

/* ---- the bound on every wait ---------------------------------------------------------- */

static struct timespec deadline;

static void start_deadline(void)
{
    CHECK(clock_gettime(CLOCK_MONOTONIC, &deadline) == 0);
    deadline.tv_sec += 60; /* a bound for a hang, far above a busy machine's run */
}

static int milliseconds_left(void)
{
    struct timespec now;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &now) == 0);
    long long left = (long long)(deadline.tv_sec - now.tv_sec) * 1000 +
                     (deadline.tv_nsec - now.tv_nsec) / 1000000;
    if (left <= 0) {
        fprintf(stderr, "evs_dropin_client: no progress within 60 s\n");
        exit(1);
    }
    return left > INT_MAX ? INT_MAX : (int)left;
}

/* ---- the messages ----------------------------------------------------------------------- */

enum message_kind {
    KIND_JOINED = 1,      /* evs_mcast_joined to both joined groups: delivered once each */
    KIND_GROUPS = 2,      /* evs_mcast_groups to one joined group */
    KIND_NOT_JOINED = 3,  /* evs_mcast_groups to a group this handle is not in: never delivered */
    KIND_SENTINEL = 4,    /* sent after KIND_NOT_JOINED: once it is in, that one would be too */
    KIND_COUNT = 5
};

#define MESSAGE_MAGIC 0x45565331u /* "EVS1" */
#define MESSAGES_PER_KIND 200
#define LARGE_BODY_BYTES (300 * 1024)

struct message_header {
    uint32_t magic;
    uint32_t kind;
    uint32_t seq;
    uint32_t body_len;
};

static unsigned char body_byte(uint32_t kind, uint32_t seq, size_t offset)
{
    return (unsigned char)(seq * 31u + (uint32_t)offset * 7u + kind * 101u + (uint32_t)(offset >> 8));
}

/* Body lengths from 1 byte to a few kB (past the 128-byte inline limit), and one large. */
static uint32_t body_length(uint32_t kind, uint32_t seq)
{
    if (kind == KIND_JOINED && seq == MESSAGES_PER_KIND / 2) {
        return LARGE_BODY_BYTES;
    }
    return 1 + (seq * 37u + kind * 13u) % 3000u;
}

static unsigned char send_body[LARGE_BODY_BYTES];

/* ---- what the callbacks saw ------------------------------------------------------------- */

static unsigned int local_nodeid;
static int confchgs;
static int first_confchg_lists_local_node_as_member;
static int first_confchg_lists_local_node_as_joined;
static size_t first_confchg_left_entries = (size_t)-1;
static uint32_t next_seq[KIND_COUNT];
static uint64_t delivered_bytes;

static int lists(const unsigned int *list, size_t entries, unsigned int nodeid)
{
    for (size_t i = 0; i < entries; i++) {
        if (list[i] == nodeid) {
            return 1;
        }
    }
    return 0;
}

static void deliver(hdb_handle_t handle, unsigned int nodeid, const void *msg, size_t msg_len)
{
    (void)handle;
    struct message_header header;

    CHECK(nodeid == local_nodeid);
    CHECK(msg != NULL && msg_len >= sizeof header);
    memcpy(&header, msg, sizeof header); /* msg need not be aligned for the header */
    CHECK(header.magic == MESSAGE_MAGIC);
    if (header.kind == KIND_NOT_JOINED) {
        fprintf(stderr, "evs_dropin_client: got message %u of a group this handle is not in\n",
                header.seq);
        exit(1);
    }
    CHECK(header.kind == KIND_JOINED || header.kind == KIND_GROUPS || header.kind == KIND_SENTINEL);
    /* Once each, in the order sent: one sender's messages keep its order. */
    if (header.seq != next_seq[header.kind]) {
        fprintf(stderr, "evs_dropin_client: kind %u: got message %u, expected %u\n", header.kind,
                header.seq, next_seq[header.kind]);
        exit(1);
    }
    next_seq[header.kind]++;
    CHECK(header.body_len == body_length(header.kind, header.seq));
    CHECK(msg_len == sizeof header + header.body_len);
    const unsigned char *body = (const unsigned char *)msg + sizeof header;
    for (size_t i = 0; i < header.body_len; i++) {
        if (body[i] != body_byte(header.kind, header.seq, i)) {
            fprintf(stderr, "evs_dropin_client: kind %u message %u: byte %zu is %u, expected %u\n",
                    header.kind, header.seq, i, body[i], body_byte(header.kind, header.seq, i));
            exit(1);
        }
    }
    delivered_bytes += msg_len;
}

static void confchg(hdb_handle_t handle,
                    const unsigned int *member_list, size_t member_list_entries,
                    const unsigned int *left_list, size_t left_list_entries,
                    const unsigned int *joined_list, size_t joined_list_entries,
                    const struct evs_ring_id *ring_id)
{
    (void)handle;
    (void)left_list;
    (void)ring_id; /* corosync 1.4 passed NULL; a 1.4 program does not read it */
    confchgs++;
    if (confchgs == 1) {
        first_confchg_lists_local_node_as_member = lists(member_list, member_list_entries, local_nodeid);
        first_confchg_lists_local_node_as_joined = lists(joined_list, joined_list_entries, local_nodeid);
        first_confchg_left_entries = left_list_entries;
    }
}

static evs_callbacks_t callbacks = {
    deliver,
    confchg
};

/* Declared the 1.4 way: the key and zeros; groups are compared whole. */
static struct evs_group joined_groups[2] = {
    { "rcpg dropin evs a" },
    { "rcpg dropin evs b" }
};
static struct evs_group never_joined_group[1] = {
    { "rcpg dropin evs never joined" }
};

/* ---- waiting and sending ---------------------------------------------------------------- */

static evs_handle_t the_handle;
static int evs_fd = -1;

/* Waits for the descriptor (bounded), then runs what is pending. */
static void poll_and_dispatch(void)
{
    struct pollfd pfd = {evs_fd, POLLIN, 0};
    int ready = poll(&pfd, 1, milliseconds_left());
    if (ready < 0 && errno == EINTR) {
        return;
    }
    CHECK(ready >= 0);
    if (ready == 1) {
        CHECK((pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) == 0);
        CHECK_RESULT(evs_dispatch(the_handle, EVS_DISPATCH_ALL), EVS_OK);
    }
}

/* Header, then the body in two pieces around an empty iovec: four iovecs a message. */
static void prepare(enum message_kind kind, uint32_t seq, struct message_header *header,
                    struct iovec iov[4])
{
    header->magic = MESSAGE_MAGIC;
    header->kind = (uint32_t)kind;
    header->seq = seq;
    header->body_len = body_length(kind, seq);
    for (size_t i = 0; i < header->body_len; i++) {
        send_body[i] = body_byte(kind, seq, i);
    }
    size_t first = header->body_len / 3;
    iov[0].iov_base = header;
    iov[0].iov_len = sizeof *header;
    iov[1].iov_base = send_body;
    iov[1].iov_len = first;
    iov[2].iov_base = send_body + first;
    iov[2].iov_len = 0;
    iov[3].iov_base = send_body + first;
    iov[3].iov_len = header->body_len - first;
}

/* As 1.4 programs did: retry on EVS_ERR_TRY_AGAIN, dispatching meanwhile (bounded here). */
static void send_joined(enum message_kind kind, uint32_t seq)
{
    struct message_header header;
    struct iovec iov[4];
    evs_error_t result;

    prepare(kind, seq, &header, iov);
    while ((result = evs_mcast_joined(the_handle, EVS_TYPE_AGREED, iov, 4)) == EVS_ERR_TRY_AGAIN) {
        poll_and_dispatch();
    }
    CHECK_RESULT(result, EVS_OK);
}

static void send_to_groups(const struct evs_group *to, size_t to_count, evs_guarantee_t guarantee,
                           enum message_kind kind, uint32_t seq)
{
    struct message_header header;
    struct iovec iov[4];
    evs_error_t result;

    prepare(kind, seq, &header, iov);
    while ((result = evs_mcast_groups(the_handle, guarantee, to, to_count, iov, 4)) == EVS_ERR_TRY_AGAIN) {
        poll_and_dispatch();
    }
    CHECK_RESULT(result, EVS_OK);
}

static void wait_for(enum message_kind kind, uint32_t count)
{
    while (next_seq[kind] < count) {
        poll_and_dispatch();
    }
}

/* ---- the library this runs with --------------------------------------------------------- */

static void check_library_origin(void)
{
    const char *expected = getenv("EXPECT_LIBEVS_DIR");
    if (expected == NULL) {
        return;
    }
    Dl_info info;
    CHECK(dladdr((void *)evs_initialize, &info) != 0);
    char real_lib[PATH_MAX], real_dir[PATH_MAX];
    CHECK(realpath(info.dli_fname, real_lib) != NULL);
    CHECK(realpath(expected, real_dir) != NULL);
    if (strncmp(real_lib, real_dir, strlen(real_dir)) != 0) {
        fprintf(stderr, "evs_dropin_client: libevs is %s, expected one in %s\n", real_lib, real_dir);
        exit(1);
    }
}

int main(void)
{
    check_library_origin();
    start_deadline();

    CHECK_RESULT(evs_initialize(&the_handle, &callbacks), EVS_OK);

    void *context = &callbacks;
    CHECK_RESULT(evs_context_get(the_handle, &context), EVS_OK);
    CHECK(context == NULL);
    CHECK_RESULT(evs_context_set(the_handle, &joined_groups), EVS_OK);
    CHECK_RESULT(evs_context_get(the_handle, &context), EVS_OK);
    CHECK(context == (void *)&joined_groups);

    int fd_again = -2;
    CHECK_RESULT(evs_fd_get(the_handle, &evs_fd), EVS_OK);
    CHECK_RESULT(evs_fd_get(the_handle, &fd_again), EVS_OK);
    CHECK(evs_fd >= 0 && evs_fd == fd_again);

    unsigned int members[64];
    size_t member_entries = 64;
    CHECK_RESULT(evs_membership_get(the_handle, &local_nodeid, members, &member_entries), EVS_OK);
    CHECK(local_nodeid != 0);
    CHECK(member_entries >= 1 && member_entries <= 64);
    CHECK(lists(members, member_entries, local_nodeid));

    /* The initial configuration change: this node, listed as a member that joined. */
    while (confchgs == 0) {
        poll_and_dispatch();
    }
    CHECK(first_confchg_lists_local_node_as_member);
    CHECK(first_confchg_lists_local_node_as_joined);
    CHECK(first_confchg_left_entries == 0);

    CHECK_RESULT(evs_join(the_handle, joined_groups, 2), EVS_OK);

    /* To the joined groups; then to named groups: one joined (SAFE: on one node it is
     * AGREED), one never joined, followed by a sentinel to a joined group. */
    for (uint32_t seq = 0; seq < MESSAGES_PER_KIND; seq++) {
        send_joined(KIND_JOINED, seq);
    }
    for (uint32_t seq = 0; seq < MESSAGES_PER_KIND; seq++) {
        send_to_groups(&joined_groups[1], 1, EVS_TYPE_SAFE, KIND_GROUPS, seq);
    }
    send_to_groups(never_joined_group, 1, EVS_TYPE_AGREED, KIND_NOT_JOINED, 0);
    send_to_groups(&joined_groups[0], 1, EVS_TYPE_AGREED, KIND_SENTINEL, 0);
    wait_for(KIND_JOINED, MESSAGES_PER_KIND);
    wait_for(KIND_GROUPS, MESSAGES_PER_KIND);
    wait_for(KIND_SENTINEL, 1);

    /* Left groups are no longer delivered: after leaving the first group, a message to it
     * is not, and the sentinel behind it, to the second, is. */
    CHECK_RESULT(evs_leave(the_handle, &joined_groups[0], 1), EVS_OK);
    CHECK_RESULT(evs_leave(the_handle, &joined_groups[0], 1), EVS_ERR_NOT_EXIST);
    send_to_groups(&joined_groups[0], 1, EVS_TYPE_AGREED, KIND_NOT_JOINED, 1);
    send_to_groups(&joined_groups[1], 1, EVS_TYPE_AGREED, KIND_SENTINEL, 1);
    wait_for(KIND_SENTINEL, 2);
    CHECK_RESULT(evs_leave(the_handle, &joined_groups[1], 1), EVS_OK);

    CHECK(next_seq[KIND_JOINED] == MESSAGES_PER_KIND && next_seq[KIND_GROUPS] == MESSAGES_PER_KIND &&
          next_seq[KIND_SENTINEL] == 2);

    CHECK_RESULT(evs_finalize(the_handle), EVS_OK);
    CHECK_RESULT(evs_finalize(the_handle), EVS_ERR_BAD_HANDLE);
    int fd_after = -1;
    CHECK_RESULT(evs_fd_get(the_handle, &fd_after), EVS_ERR_BAD_HANDLE);

    printf("evs_dropin_client: ok (%u messages, %llu bytes delivered)\n",
           (unsigned)(next_seq[KIND_JOINED] + next_seq[KIND_GROUPS] + next_seq[KIND_SENTINEL]),
           (unsigned long long)delivered_bytes);
    return 0;
}
