/*
 * cluster_failover_client: one process of the cluster failover test
 * (cluster_failover_test.sh). It uses only corosync's CPG API, so the same program runs
 * against corosync too.
 *
 * It joins GROUP and, once the group has had --wait-members members, sends AGREED
 * messages at --rate-per-s until the --stop-file appears (on CS_ERR_TRY_AGAIN it
 * dispatches and retries the same message; a stall is not made up for by a burst
 * afterwards). Then it sends one end marker and dispatches until every process of its
 * current group membership (from its confchgs) has delivered its end marker, writes what
 * it saw to --out and exits 0. With --receive-only it sends nothing but the end marker.
 *
 *   # failover_client nodeid=N pid=P group=G mode=send|receive-only rate_per_s=R
 *   A <seq>                                      a send that returned CS_OK, in send order
 *   M <nodeid> <pid> <seq> <length> <ok|BAD> [end]  one per delivered message; "end": the
 *                                                sender's end marker
 *   C t=<ns> reason=<r> joined=<n:p:r,...> left=<n:p:r,...> members=<n:p,...>
 *   T t=<ns> ring=<nodeid>.<seq> members=<n,...>  a totem confchg (cluster membership)
 *   E <what>                                     how it ended, when not by completion
 *
 * t is CLOCK_REALTIME in ns when the callback ran, so the test can measure from the time
 * it killed a node. Lists are sorted, so one confchg gives the same line on every member
 * but for t. Nothing is recorded after the completing event: every surviving client's file
 * ends at the same event of the one order.
 *
 * When the local daemon goes away (CS_ERR_LIBRARY), the client delivers what is left in
 * its ring, writes its file ending in "E daemon-gone" and exits 0 with --may-lose-daemon,
 * else 1.
 *
 * --status-file is rewritten (write, then rename) on every confchg and every 200 ms while
 * things change, so the test can follow the run without parsing the output:
 *   joined=0|1 members=N max_members=N delivered=N acked=N nodedown=<nodeids,...>
 *   ring=<nodeid>.<seq> ring_members=<n,...> state=running|stopping|done|daemon-gone|fail
 * (one key=value a line; nodedown lists each node whose processes left with
 * CPG_REASON_NODEDOWN, in the order seen).
 *
 * A message of `length` bytes, a deterministic function of sender and seq: mostly
 * 24..1023, every 32nd or so 4096..8191 (delivered in place from the ring). Bytes 0..3
 * seq, 4..7 length, 8..11 nodeid, 12..15 pid, 16..19 FNV-1a checksum of the fill, 20..23
 * magic ("rcpf", the end marker "rcpe"); the rest is fill generated from (nodeid, pid,
 * seq). A receiver checks every field against the callback's sender and the fill byte for
 * byte ("ok"), else writes "BAD".
 *
 * Exit: 0 done (or the daemon went away, with --may-lose-daemon), 1 a CPG call failed or
 * the timeout passed (the file is written anyway, ending in an E line), 2 usage.
 */
#define _GNU_SOURCE
#include <corosync/cpg.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "cluster_client_common.h"

enum {
    kMaxMessageBytes = 8192,
    kMaxMembers = 256,
    kMaxSenders = 256,
    kIdlePollMs = 50,
    kTryAgainPollMs = 1,
    kStopCheckMs = 20,        /* how often the stop file is looked for */
    kStatusIntervalMs = 200,  /* status rewrites while only counters change */
};
static const uint32_t kMagic = 0x66706372;    /* "rcpf" */
static const uint32_t kEndMagic = 0x65706372; /* "rcpe" */

/* ------------------------------------------------------------------ options */

struct options {
    const char *group;
    const char *out_path;
    const char *stop_path;
    const char *status_path;
    double rate_per_s;
    uint32_t wait_members;
    int receive_only;
    int may_lose_daemon;
    double timeout_s;
};

static struct options opt = {.rate_per_s = 500.0, .wait_members = 1, .timeout_s = 120.0};

/* ------------------------------------------------------------------ state */

struct sender {
    uint32_t nodeid;
    uint32_t pid;
    uint32_t next_seq; /* expected next seq (FIFO), valid once seen */
    int end_seen;
};

static struct sender senders[kMaxSenders];
static size_t sender_count;

static struct cpg_address members[kMaxMembers]; /* after the last confchg */
static size_t member_count;
static uint32_t max_members;

static uint32_t own_nodeid, own_pid;
static int joined;
static int all_done; /* the completing event was delivered: record nothing more */
static const char *state_name = "running";

static uint32_t nodedown_nodes[kMaxMembers];
static size_t nodedown_count;
static struct cpg_ring_id ring_id;
static int ring_known;
static uint32_t ring_members[kMaxMembers];
static uint32_t ring_member_count;

static uint64_t delivered, bad_messages, fifo_violations;
static uint32_t acked; /* also the seq of the next message */
static int status_urgent = 1, status_dirty = 1;

static uint8_t expected_fill[kMaxMessageBytes];

static uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void write_output(void)
{
    FILE *out = open_output("failover_client", opt.out_path);
    fprintf(out, "# failover_client nodeid=%" PRIu32 " pid=%" PRIu32 " group=%s mode=%s rate_per_s=%g\n", own_nodeid,
            own_pid, opt.group, opt.receive_only ? "receive-only" : "send", opt.receive_only ? 0.0 : opt.rate_per_s);
    finish_output(out, "failover_client", opt.out_path);
}

static void write_status(void)
{
    if (opt.status_path == NULL) {
        return;
    }
    char text[4096];
    size_t used = 0;
#define APPEND(...)                                                                                                    \
    do {                                                                                                               \
        int n_ = snprintf(text + used, sizeof(text) - used, __VA_ARGS__);                                              \
        used += n_ > 0 ? (size_t)n_ : 0;                                                                               \
        if (used >= sizeof(text)) {                                                                                    \
            used = sizeof(text) - 1;                                                                                   \
        }                                                                                                              \
    } while (0)
    APPEND("joined=%d\nmembers=%zu\nmax_members=%" PRIu32 "\ndelivered=%" PRIu64 "\nacked=%" PRIu32 "\nnodedown=",
           joined, member_count, max_members, delivered, acked);
    for (size_t i = 0; i < nodedown_count; i++) {
        APPEND("%s%" PRIu32, i ? "," : "", nodedown_nodes[i]);
    }
    APPEND("\nring=");
    if (ring_known) {
        APPEND("%" PRIu32 ".%" PRIu64, ring_id.nodeid, ring_id.seq);
    }
    APPEND("\nring_members=");
    for (uint32_t i = 0; i < ring_member_count; i++) {
        APPEND("%s%" PRIu32, i ? "," : "", ring_members[i]);
    }
    APPEND("\nstate=%s\n", state_name);
#undef APPEND
    /* Readers poll the file: a rename never shows them half of it. */
    char temporary[4200];
    snprintf(temporary, sizeof(temporary), "%s.tmp", opt.status_path);
    FILE *out = fopen(temporary, "w");
    if (out == NULL) {
        return;
    }
    fwrite(text, 1, used, out);
    if (fclose(out) == 0) {
        rename(temporary, opt.status_path);
    }
}

static void fail(const char *format, ...)
{
    char text[512];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof(text), format, args);
    va_end(args);
    fprintf(stderr,
            "failover_client %" PRIu32 ":%" PRIu32 " (group %s): FAIL: %s [acked %" PRIu32 ", delivered %" PRIu64
            ", members %zu]\n",
            own_nodeid, own_pid, opt.group ? opt.group : "?", text, acked, delivered, member_count);
    if (opt.out_path != NULL && !all_done) {
        all_done = 1;
        write_output();
        append_fail_line(opt.out_path, text);
    }
    state_name = "fail";
    write_status();
    exit(1);
}

/* ------------------------------------------------------------------ message contents */

/* Mostly small (inline in the ring), some of a page and more: those are delivered in
 * place, a path of their own also when they are sent again after a failover. */
static uint32_t message_length(uint32_t nodeid, uint32_t pid, uint32_t seq)
{
    const uint64_t h = message_key(nodeid, pid, seq);
    if (h % 32 == 0) {
        return 4096 + (uint32_t)((h >> 8) % 4096);
    }
    return kHeaderBytes + (uint32_t)((h >> 8) % (1024 - kHeaderBytes));
}

static uint32_t build_message(uint8_t *message, uint32_t seq, int end)
{
    const uint32_t length = message_length(own_nodeid, own_pid, seq);
    fill_bytes(message + kHeaderBytes, length - kHeaderBytes, own_nodeid, own_pid, seq);
    write_header(message, seq, length, own_nodeid, own_pid, end ? kEndMagic : kMagic);
    return length;
}

/* Checks a delivered message; returns its seq (UINT32_MAX if not even that is readable). */
static uint32_t check_message(uint32_t nodeid, uint32_t pid, const uint8_t *message, size_t bytes, int *ok, int *end)
{
    uint32_t seq = UINT32_MAX;
    *ok = 0;
    *end = 0;
    if (bytes < kHeaderBytes) {
        if (bytes >= 4) {
            memcpy(&seq, message, 4);
        }
        return seq;
    }
    const struct message_header header = read_header(message);
    const uint32_t length = header.length;
    seq = header.seq;
    *end = header.magic == kEndMagic;
    if (length != bytes || length != message_length(nodeid, pid, seq) || header.nodeid != nodeid ||
        header.pid != pid || (header.magic != kMagic && header.magic != kEndMagic) ||
        header.checksum != fnv1a(message + kHeaderBytes, length - kHeaderBytes)) {
        return seq;
    }
    fill_bytes(expected_fill, length - kHeaderBytes, nodeid, pid, seq);
    *ok = memcmp(expected_fill, message + kHeaderBytes, length - kHeaderBytes) == 0;
    return seq;
}

/* ------------------------------------------------------------------ callbacks */

static struct sender *sender_of(uint32_t nodeid, uint32_t pid)
{
    for (size_t i = 0; i < sender_count; i++) {
        if (senders[i].nodeid == nodeid && senders[i].pid == pid) {
            return &senders[i];
        }
    }
    if (sender_count == kMaxSenders) {
        fail("more than %zu senders", sender_count);
    }
    senders[sender_count] = (struct sender){.nodeid = nodeid, .pid = pid, .next_seq = UINT32_MAX};
    return &senders[sender_count++];
}

static int end_seen_of(uint32_t nodeid, uint32_t pid)
{
    for (size_t i = 0; i < sender_count; i++) {
        if (senders[i].nodeid == nodeid && senders[i].pid == pid) {
            return senders[i].end_seen;
        }
    }
    return 0;
}

/* Done once every current member, this process included, delivered its end marker: a
 * function of the one stream, so every surviving client ends at the same event. */
static void check_complete(void)
{
    if (!joined || all_done) {
        return;
    }
    for (size_t i = 0; i < member_count; i++) {
        if (!end_seen_of(members[i].nodeid, members[i].pid)) {
            return;
        }
    }
    all_done = 1;
}

static void on_deliver(cpg_handle_t handle, const struct cpg_name *group, uint32_t nodeid, uint32_t pid, void *msg,
                       size_t msg_len)
{
    (void)handle;
    (void)group;
    if (all_done) {
        return;
    }
    int ok, end;
    const uint32_t seq = check_message(nodeid, pid, msg, msg_len, &ok, &end);
    delivered++;
    status_dirty = 1;
    if (!ok) {
        bad_messages++;
    }
    record("M %" PRIu32 " %" PRIu32 " %" PRIu32 " %zu %s%s\n", nodeid, pid, seq, msg_len, ok ? "ok" : "BAD",
           ok && end ? " end" : "");
    struct sender *from = sender_of(nodeid, pid);
    /* A late joiner starts in the middle of a sender's stream; from then on, FIFO. */
    if (from->next_seq != UINT32_MAX && seq != from->next_seq) {
        fifo_violations++;
    }
    from->next_seq = seq + 1;
    if (ok && end) {
        from->end_seen = 1;
        check_complete();
    }
}

static int compare_u32(const void *a, const void *b)
{
    const uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void note_nodedown(uint32_t nodeid)
{
    for (size_t i = 0; i < nodedown_count; i++) {
        if (nodedown_nodes[i] == nodeid) {
            return;
        }
    }
    if (nodedown_count < kMaxMembers) {
        nodedown_nodes[nodedown_count++] = nodeid;
    }
}

static void on_confchg(cpg_handle_t handle, const struct cpg_name *group, const struct cpg_address *member_list,
                       size_t n_members, const struct cpg_address *left, size_t n_left,
                       const struct cpg_address *joined_list, size_t n_joined)
{
    (void)handle;
    (void)group;
    if (all_done) {
        return;
    }
    char time_field[32];
    snprintf(time_field, sizeof(time_field), "t=%" PRIu64 " ", realtime_ns());
    record_confchg(time_field, 4096, member_list, n_members, left, n_left, joined_list, n_joined);
    if (n_members > kMaxMembers) {
        fail("confchg with %zu members", n_members);
    }
    memcpy(members, member_list, n_members * sizeof(*member_list));
    member_count = n_members;
    if (n_members > max_members) {
        max_members = (uint32_t)n_members;
    }
    for (size_t i = 0; i < n_joined; i++) {
        if (joined_list[i].nodeid == own_nodeid && joined_list[i].pid == own_pid) {
            joined = 1;
        }
    }
    for (size_t i = 0; i < n_left; i++) {
        if (left[i].reason == CPG_REASON_NODEDOWN) {
            note_nodedown(left[i].nodeid);
        }
    }
    status_urgent = 1;
    /* A member that left without its end marker is no longer waited for. */
    check_complete();
}

static void on_totem_confchg(cpg_handle_t handle, struct cpg_ring_id ring, uint32_t n_members,
                             const uint32_t *member_list)
{
    (void)handle;
    if (all_done) {
        return;
    }
    const uint64_t t_ns = realtime_ns();
    if (n_members > kMaxMembers) {
        fail("totem confchg with %" PRIu32 " members", n_members);
    }
    memcpy(ring_members, member_list, n_members * sizeof(*member_list));
    ring_member_count = n_members;
    qsort(ring_members, n_members, sizeof(*ring_members), compare_u32);
    ring_id = ring;
    ring_known = 1;
    char text[4096];
    size_t used = 0;
    text[0] = '\0';
    for (uint32_t i = 0; i < n_members && used < sizeof(text); i++) {
        int n = snprintf(text + used, sizeof(text) - used, "%s%" PRIu32, i ? "," : "", ring_members[i]);
        used += n > 0 ? (size_t)n : 0;
    }
    record("T t=%" PRIu64 " ring=%" PRIu32 ".%" PRIu64 " members=%s\n", t_ns, ring.nodeid, ring.seq, text);
    status_urgent = 1;
}

/* ------------------------------------------------------------------ main loop */

static void usage(FILE *out)
{
    fputs("Usage: cluster_failover_client --group G --out FILE --stop-file PATH [options]\n"
          "  --rate-per-s R       messages per second (default 500)\n"
          "  --wait-members N     start sending once the group has had N members (default 1)\n"
          "  --receive-only       send nothing but the end marker\n"
          "  --may-lose-daemon    exit 0 when the local daemon goes away\n"
          "  --status-file PATH   keep PATH up to date with the client's progress\n"
          "  --timeout-s T        give up after T seconds (default 120)\n",
          out);
}

static double parse_number(const char *text, const char *name)
{
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (errno != 0 || *end != '\0' || end == text || !(value > 0) || value > 1e9) {
        fprintf(stderr, "failover_client: %s needs a positive number, not '%s'\n", name, text);
        exit(2);
    }
    return value;
}

static void parse_options(int argc, char **argv)
{
    static const struct option longs[] = {
        {"group", required_argument, NULL, 'g'},       {"out", required_argument, NULL, 'o'},
        {"stop-file", required_argument, NULL, 's'},   {"status-file", required_argument, NULL, 'S'},
        {"rate-per-s", required_argument, NULL, 'r'},  {"wait-members", required_argument, NULL, 'w'},
        {"receive-only", no_argument, NULL, 'R'},      {"may-lose-daemon", no_argument, NULL, 'm'},
        {"timeout-s", required_argument, NULL, 't'},   {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (c) {
        case 'g': opt.group = optarg; break;
        case 'o': opt.out_path = optarg; break;
        case 's': opt.stop_path = optarg; break;
        case 'S': opt.status_path = optarg; break;
        case 'r': opt.rate_per_s = parse_number(optarg, "--rate-per-s"); break;
        case 'w': opt.wait_members = (uint32_t)parse_number(optarg, "--wait-members"); break;
        case 'R': opt.receive_only = 1; break;
        case 'm': opt.may_lose_daemon = 1; break;
        case 't': opt.timeout_s = parse_number(optarg, "--timeout-s"); break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (opt.group == NULL || opt.out_path == NULL || opt.stop_path == NULL || optind != argc ||
        strlen(opt.group) > CPG_MAX_NAME_LENGTH || opt.wait_members > kMaxMembers) {
        usage(stderr);
        exit(2);
    }
}

/* Delivers what the dead daemon left in the ring, then ends the client. */
static void daemon_gone(cpg_handle_t handle, double deadline)
{
    while (cpg_dispatch(handle, CS_DISPATCH_ALL) == CS_OK && monotonic_s() < deadline) {
    }
    if (!all_done) {
        record("E daemon-gone\n");
        all_done = 1;
    }
    write_output();
    state_name = "daemon-gone";
    write_status();
    fprintf(stderr,
            "failover_client %" PRIu32 ":%" PRIu32 " (group %s): daemon gone: acked %" PRIu32 ", delivered %" PRIu64
            "%s\n",
            own_nodeid, own_pid, opt.group, acked, delivered, opt.may_lose_daemon ? "" : " (not expected)");
    exit(opt.may_lose_daemon ? 0 : 1);
}

static const char *timeout_reason(int sending_started, int stopping, int end_sent)
{
    static char text[1024];
    if (!joined) {
        return "own join confchg never came";
    }
    if (!opt.receive_only && !sending_started && !stopping) {
        snprintf(text, sizeof(text), "the group never had %" PRIu32 " members", opt.wait_members);
        return text;
    }
    if (!stopping) {
        return "the stop file never appeared";
    }
    if (!end_sent) {
        return "could not send the end marker";
    }
    size_t used = (size_t)snprintf(text, sizeof(text), "no end marker delivered from");
    for (size_t i = 0; i < member_count && used < sizeof(text); i++) {
        if (!end_seen_of(members[i].nodeid, members[i].pid)) {
            int n = snprintf(text + used, sizeof(text) - used, " %" PRIu32 ":%" PRIu32, members[i].nodeid,
                             members[i].pid);
            used += n > 0 ? (size_t)n : 0;
        }
    }
    return text;
}

int main(int argc, char **argv)
{
    parse_options(argc, argv);
    own_pid = (uint32_t)getpid();
    cpg_model_v1_data_t model = {
        .model = CPG_MODEL_V1,
        .cpg_deliver_fn = on_deliver,
        .cpg_confchg_fn = on_confchg,
        .cpg_totem_confchg_fn = on_totem_confchg,
        .flags = 0,
    };
    cpg_handle_t handle;
    cs_error_t rc = cpg_model_initialize(&handle, CPG_MODEL_V1, (cpg_model_data_t *)&model, NULL);
    if (rc != CS_OK) {
        fail("cpg_model_initialize: %s", cs_strerror(rc));
    }
    int fd;
    local_node(handle, &own_nodeid, &fd);
    const double deadline = monotonic_s() + opt.timeout_s;
    rc = join_group(handle, opt.group, deadline);
    if (rc == CS_ERR_LIBRARY) {
        daemon_gone(handle, deadline);
    }
    if (rc != CS_OK) {
        fail("cpg_join: %s", cs_strerror(rc));
    }

    static uint8_t message[kMaxMessageBytes];
    uint32_t length = 0;
    uint64_t try_again = 0;
    int have_message = 0, sending_started = 0, stopping = 0, end_sent = 0;
    /* A token bucket: a stall (flow control, a failover) is not made up for by a burst
     * larger than the cap afterwards. */
    const double burst_cap = opt.rate_per_s / 50.0 > 1.0 ? opt.rate_per_s / 50.0 : 1.0;
    double tokens = 0, last_refill_s = monotonic_s(), next_stop_check_s = 0, next_status_s = 0;
    while (!all_done) {
        const double now = monotonic_s();
        if (now > deadline) {
            fail("timeout after %.0f s: %s", opt.timeout_s, timeout_reason(sending_started, stopping, end_sent));
        }
        if (!stopping && now >= next_stop_check_s) {
            next_stop_check_s = now + kStopCheckMs / 1000.0;
            if (access(opt.stop_path, F_OK) == 0) {
                stopping = 1;
                state_name = "stopping";
                status_urgent = 1;
                have_message = 0; /* never acked, so never sent: the end marker takes its seq */
            }
        }
        if (!sending_started && !opt.receive_only && joined && max_members >= opt.wait_members) {
            sending_started = 1;
            last_refill_s = now;
        }
        int blocked = 0, want_send = 0;
        if (stopping) {
            want_send = !end_sent && joined;
        } else if (sending_started) {
            tokens += (now - last_refill_s) * opt.rate_per_s;
            if (tokens > burst_cap) {
                tokens = burst_cap;
            }
            last_refill_s = now;
            want_send = tokens >= 1.0;
        }
        while (want_send) {
            if (!have_message) {
                length = build_message(message, acked, stopping);
                have_message = 1;
            }
            struct iovec iov = {message, length};
            rc = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
            if (rc == CS_OK) {
                record("A %" PRIu32 "\n", acked);
                acked++;
                have_message = 0;
                status_dirty = 1;
                if (stopping) {
                    end_sent = 1;
                    want_send = 0;
                } else {
                    tokens -= 1.0;
                    want_send = tokens >= 1.0;
                }
            } else if (rc == CS_ERR_TRY_AGAIN) {
                try_again++;
                blocked = 1;
                break;
            } else if (rc == CS_ERR_LIBRARY) {
                daemon_gone(handle, deadline);
            } else {
                fail("cpg_mcast_joined (seq %" PRIu32 "%s): %s", acked, stopping ? ", end marker" : "",
                     cs_strerror(rc));
            }
        }
        int timeout_ms = kIdlePollMs;
        if (blocked) {
            timeout_ms = kTryAgainPollMs;
        } else if (sending_started && !stopping) {
            const int until_token_ms = (int)((1.0 - tokens) / opt.rate_per_s * 1000.0) + 1;
            if (until_token_ms < timeout_ms) {
                timeout_ms = until_token_ms;
            }
        }
        if (!stopping && timeout_ms > kStopCheckMs) {
            timeout_ms = kStopCheckMs;
        }
        struct pollfd pfd = {fd, POLLIN, 0};
        poll(&pfd, 1, timeout_ms);
        rc = cpg_dispatch(handle, CS_DISPATCH_ALL);
        if (rc == CS_ERR_LIBRARY) {
            daemon_gone(handle, deadline);
        }
        if (rc != CS_OK && rc != CS_ERR_TRY_AGAIN) {
            fail("cpg_dispatch: %s", cs_strerror(rc));
        }
        if (status_urgent || (status_dirty && now >= next_status_s)) {
            write_status();
            status_urgent = status_dirty = 0;
            next_status_s = now + kStatusIntervalMs / 1000.0;
        }
    }
    if (bad_messages || fifo_violations) {
        fprintf(stderr,
                "failover_client %" PRIu32 ":%" PRIu32 ": %" PRIu64 " bad messages, %" PRIu64
                " FIFO violations (see %s)\n",
                own_nodeid, own_pid, bad_messages, fifo_violations, opt.out_path);
    }
    write_output();
    state_name = "done";
    write_status();
    fprintf(stderr,
            "failover_client %" PRIu32 ":%" PRIu32 " (group %s): done: acked %" PRIu32 ", delivered %" PRIu64
            ", try_again %" PRIu64 "\n",
            own_nodeid, own_pid, opt.group, acked, delivered, try_again);
    cpg_finalize(handle);
    return 0;
}
