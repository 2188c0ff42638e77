/*
 * cluster_order_client: one process of the cluster order test (cluster_order_test.sh).
 * It uses only corosync's CPG API, so the same program runs against corosync too.
 *
 * It joins GROUP, waits until the group has --wait-members members (from its confchgs),
 * sends --send messages with cpg_mcast_joined(CPG_TYPE_AGREED) (on CS_ERR_TRY_AGAIN it
 * dispatches and retries), and dispatches until it has delivered the last message
 * (seq --per-sender - 1) of --senders distinct senders. Then it writes what it saw, in
 * delivery order, to --out and exits 0:
 *
 *   # order_client nodeid=N pid=P group=G sent=M
 *   M <nodeid> <pid> <seq> <length> <ok|BAD>        one line per delivered message
 *   C reason=<r> joined=<n:p:r,...> left=<n:p:r,...> members=<n:p,...>   one per confchg
 *   E <what>                                         how it ended, when not by completion
 *
 * Lists in C lines are sorted, so the lines of one confchg are the same on every member.
 * Nothing is recorded after the completing message: every client's file ends at the
 * same event. With --until-daemon-gone it sends nothing and ends (E daemon-gone) when
 * dispatch reports CS_ERR_LIBRARY: a member whose daemon is stopped under it.
 *
 * A message of `length` bytes, a deterministic function of sender and seq: mostly
 * 24..4095, some 8..23, some 4096 and 4097..16384 (delivered in place from the ring),
 * every 97th 64 KiB. Bytes 0..3 seq, 4..7 length; from 24 bytes on also 8..11 nodeid,
 * 12..15 pid, 16..19 FNV-1a checksum of the fill, 20..23 magic "rcpo"; the rest is
 * fill generated from (nodeid, pid, seq). A receiver checks every field against the
 * callback's sender and the fill byte for byte ("ok"), else writes "BAD".
 *
 * Exit: 0 done (or, with --until-daemon-gone, the daemon went away), 1 a CPG call failed
 * or the timeout passed (the file is written anyway, ending in an E line), 2 usage.
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
#include <unistd.h>

#include "cluster_client_common.h"

enum {
    kShortHeaderBytes = 8,       /* below kHeaderBytes a message carries seq and length only */
    kMaxMessageBytes = 65536,
    kSendBurst = 16,             /* sends between two dispatches */
    kIdlePollMs = 50,            /* poll timeout while there is nothing to send */
    kTryAgainPollMs = 1,         /* poll timeout after CS_ERR_TRY_AGAIN */
};
static const uint32_t kMagic = 0x6f706372; /* "rcpo" */

/* ------------------------------------------------------------------ options */

struct options {
    const char *group;
    const char *out_path;
    const char *ready_path;
    uint32_t send_count;       /* messages this process sends */
    uint32_t per_sender;       /* messages every sender sends (default: send_count) */
    uint32_t senders;          /* distinct senders whose last message ends the run */
    uint32_t wait_members;     /* group size before sending */
    int wait_nodedown;         /* send only after a confchg with CPG_REASON_NODEDOWN */
    uint32_t late_members;     /* --late-members: group size the late joiners bring */
    uint32_t before_late;      /* at most this many messages before late_members */
    uint32_t pace_ms;          /* one message per pace_ms before late_members */
    int until_daemon_gone;     /* send nothing; end when the daemon goes away */
    double timeout_s;
};

static struct options opt = {.timeout_s = 120.0};

/* ------------------------------------------------------------------ state */

struct sender {
    uint32_t nodeid;
    uint32_t pid;
    uint32_t next_seq;     /* expected next seq (FIFO), valid once seen */
    int done;
};

static struct sender senders[64];
static size_t sender_count;
static size_t senders_done;
static int all_done;            /* stop recording: the completing message was delivered */

static uint32_t own_nodeid, own_pid;
static uint32_t group_members;  /* size of the group after the last confchg */
static int joined;              /* our own join confchg was delivered */
static int nodedown_seen;
static uint64_t delivered, bad_messages, fifo_violations;
static uint8_t expected_fill[kMaxMessageBytes];

static void write_output(void)
{
    FILE *out = open_output("order_client", opt.out_path);
    fprintf(out, "# order_client nodeid=%" PRIu32 " pid=%" PRIu32 " group=%s sent=%" PRIu32 "\n", own_nodeid,
            own_pid, opt.group, opt.send_count);
    finish_output(out, "order_client", opt.out_path);
}

static void fail(const char *format, ...)
{
    char text[512];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof(text), format, args);
    va_end(args);
    fprintf(stderr,
            "order_client %" PRIu32 ":%" PRIu32 " (group %s): FAIL: %s [delivered %" PRIu64
            ", senders done %zu/%" PRIu32 ", members %" PRIu32 "]\n",
            own_nodeid, own_pid, opt.group ? opt.group : "?", text, delivered, senders_done, opt.senders,
            group_members);
    if (opt.out_path != NULL && !all_done) {
        all_done = 1;
        write_output();
        append_fail_line(opt.out_path, text);
    }
    exit(1);
}

/* ------------------------------------------------------------------ message contents */

/* Lengths: mostly 24..4095; some 8..23; some exactly 4096 and 4097..16384 (delivered in
 * place); every 97th message 64 KiB. */
static uint32_t message_length(uint32_t nodeid, uint32_t pid, uint32_t seq)
{
    const uint64_t h = message_key(nodeid, pid, seq);
    if (seq % 97 == 41) {
        return kMaxMessageBytes;
    }
    switch (h % 16) {
    case 0: return kShortHeaderBytes + (uint32_t)((h >> 8) % (kHeaderBytes - kShortHeaderBytes));
    case 1: return 4096;
    case 2:
    case 3: return 4097 + (uint32_t)((h >> 8) % (16384 - 4097 + 1));
    default: return kHeaderBytes + (uint32_t)((h >> 8) % (4096 - kHeaderBytes));
    }
}

static size_t fill_offset(uint32_t length)
{
    return length >= kHeaderBytes ? kHeaderBytes : kShortHeaderBytes;
}

static void build_message(uint8_t *message, uint32_t seq, uint32_t *length_out)
{
    const uint32_t length = message_length(own_nodeid, own_pid, seq);
    const size_t offset = fill_offset(length);
    fill_bytes(message + offset, length - offset, own_nodeid, own_pid, seq);
    if (length >= kHeaderBytes) {
        write_header(message, seq, length, own_nodeid, own_pid, kMagic);
    } else {
        memcpy(message + 0, &seq, 4);
        memcpy(message + 4, &length, 4);
    }
    *length_out = length;
}

/* Checks a delivered message; returns its seq (UINT32_MAX if not even that is readable). */
static uint32_t check_message(uint32_t nodeid, uint32_t pid, const uint8_t *message, size_t bytes, int *ok)
{
    uint32_t seq = UINT32_MAX, length = 0;
    *ok = 0;
    if (bytes < kShortHeaderBytes) {
        return seq;
    }
    memcpy(&seq, message, 4);
    memcpy(&length, message + 4, 4);
    if (length != bytes || length != message_length(nodeid, pid, seq)) {
        return seq;
    }
    const size_t offset = fill_offset(length);
    if (length >= kHeaderBytes) {
        const struct message_header header = read_header(message);
        if (header.nodeid != nodeid || header.pid != pid || header.magic != kMagic ||
            header.checksum != fnv1a(message + offset, length - offset)) {
            return seq;
        }
    }
    fill_bytes(expected_fill, length - offset, nodeid, pid, seq);
    *ok = memcmp(expected_fill, message + offset, length - offset) == 0;
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
    if (sender_count == sizeof(senders) / sizeof(senders[0])) {
        fail("more than %zu senders", sender_count);
    }
    senders[sender_count] = (struct sender){.nodeid = nodeid, .pid = pid, .next_seq = UINT32_MAX};
    return &senders[sender_count++];
}

static void on_deliver(cpg_handle_t handle, const struct cpg_name *group, uint32_t nodeid, uint32_t pid, void *msg,
                       size_t msg_len)
{
    (void)handle;
    (void)group;
    if (all_done) {
        return;
    }
    int ok;
    const uint32_t seq = check_message(nodeid, pid, msg, msg_len, &ok);
    delivered++;
    if (!ok) {
        bad_messages++;
    }
    record("M %" PRIu32 " %" PRIu32 " %" PRIu32 " %zu %s\n", nodeid, pid, seq, msg_len, ok ? "ok" : "BAD");
    struct sender *from = sender_of(nodeid, pid);
    /* A late joiner starts in the middle of a sender's stream; from then on, FIFO. */
    if (from->next_seq != UINT32_MAX && seq != from->next_seq) {
        fifo_violations++;
    }
    from->next_seq = seq + 1;
    if (ok && opt.per_sender > 0 && seq == opt.per_sender - 1 && !from->done) {
        from->done = 1;
        senders_done++;
        if (senders_done == opt.senders) {
            all_done = 1;
        }
    }
}

static void on_confchg(cpg_handle_t handle, const struct cpg_name *group, const struct cpg_address *members,
                       size_t n_members, const struct cpg_address *left, size_t n_left,
                       const struct cpg_address *joined_list, size_t n_joined)
{
    (void)handle;
    (void)group;
    if (all_done) {
        return;
    }
    record_confchg("", 2048, members, n_members, left, n_left, joined_list, n_joined);
    group_members = (uint32_t)n_members;
    for (size_t i = 0; i < n_joined; i++) {
        if (joined_list[i].nodeid == own_nodeid && joined_list[i].pid == own_pid) {
            joined = 1;
        }
    }
    for (size_t i = 0; i < n_left; i++) {
        if (left[i].reason == CPG_REASON_NODEDOWN) {
            nodedown_seen = 1;
        }
    }
}

/* ------------------------------------------------------------------ main loop */

static void usage(FILE *out)
{
    fputs("Usage: cluster_order_client --group G --out FILE (--senders S | --until-daemon-gone) [options]\n"
          "  --send M             messages to send (default 0)\n"
          "  --senders S          end after the last message of S distinct senders\n"
          "  --per-sender M       messages each sender sends (default: --send)\n"
          "  --wait-members N     send only once the group has N members (default 1)\n"
          "  --wait-nodedown      send only after a confchg with reason CPG_REASON_NODEDOWN\n"
          "  --late-members N     before the group has N members, send at most --before-late\n"
          "  --before-late K      messages, one per --pace-ms ms (default 20)\n"
          "  --pace-ms T\n"
          "  --until-daemon-gone  send nothing; end (exit 0) when the daemon goes away\n"
          "  --ready-file PATH    create PATH once the group has --wait-members members\n"
          "  --timeout-s T        give up after T seconds (default 120)\n",
          out);
}

static uint32_t parse_u32(const char *text, const char *name)
{
    char *end;
    errno = 0;
    unsigned long value = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || end == text || value > UINT32_MAX) {
        fprintf(stderr, "order_client: %s needs a number, not '%s'\n", name, text);
        exit(2);
    }
    return (uint32_t)value;
}

static void parse_options(int argc, char **argv)
{
    static const struct option longs[] = {
        {"group", required_argument, NULL, 'g'},        {"out", required_argument, NULL, 'o'},
        {"send", required_argument, NULL, 's'},         {"senders", required_argument, NULL, 'S'},
        {"per-sender", required_argument, NULL, 'p'},   {"wait-members", required_argument, NULL, 'w'},
        {"wait-nodedown", no_argument, NULL, 'd'},      {"late-members", required_argument, NULL, 'l'},
        {"before-late", required_argument, NULL, 'k'},  {"pace-ms", required_argument, NULL, 'P'},
        {"until-daemon-gone", no_argument, NULL, 'u'},  {"ready-file", required_argument, NULL, 'r'},
        {"timeout-s", required_argument, NULL, 't'},    {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int per_sender_set = 0;
    opt.wait_members = 1;
    opt.pace_ms = 20;
    int c;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (c) {
        case 'g': opt.group = optarg; break;
        case 'o': opt.out_path = optarg; break;
        case 's': opt.send_count = parse_u32(optarg, "--send"); break;
        case 'S': opt.senders = parse_u32(optarg, "--senders"); break;
        case 'p': opt.per_sender = parse_u32(optarg, "--per-sender"); per_sender_set = 1; break;
        case 'w': opt.wait_members = parse_u32(optarg, "--wait-members"); break;
        case 'd': opt.wait_nodedown = 1; break;
        case 'l': opt.late_members = parse_u32(optarg, "--late-members"); break;
        case 'k': opt.before_late = parse_u32(optarg, "--before-late"); break;
        case 'P': opt.pace_ms = parse_u32(optarg, "--pace-ms"); break;
        case 'u': opt.until_daemon_gone = 1; break;
        case 'r': opt.ready_path = optarg; break;
        case 't': opt.timeout_s = atof(optarg); break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (!per_sender_set) {
        opt.per_sender = opt.send_count;
    }
    if (opt.group == NULL || opt.out_path == NULL || optind != argc || strlen(opt.group) > CPG_MAX_NAME_LENGTH ||
        opt.timeout_s <= 0 || (opt.senders > 0 && opt.per_sender == 0) ||
        (opt.until_daemon_gone ? (opt.send_count > 0 || opt.senders > 0) : opt.senders == 0) ||
        opt.senders > sizeof(senders) / sizeof(senders[0])) {
        usage(stderr);
        exit(2);
    }
}

static void write_ready_file(void)
{
    FILE *ready = fopen(opt.ready_path, "w");
    if (ready == NULL) {
        fail("cannot create %s: %s", opt.ready_path, strerror(errno));
    }
    fprintf(ready, "%" PRIu32 " %" PRIu32 "\n", own_nodeid, own_pid);
    fclose(ready);
}

int main(int argc, char **argv)
{
    parse_options(argc, argv);
    own_pid = (uint32_t)getpid();
    cpg_callbacks_t callbacks = {on_deliver, on_confchg};
    cpg_handle_t handle;
    cs_error_t rc = cpg_initialize(&handle, &callbacks);
    if (rc != CS_OK) {
        fail("cpg_initialize: %s", cs_strerror(rc));
    }
    int fd;
    local_node(handle, &own_nodeid, &fd);
    const double deadline = monotonic_s() + opt.timeout_s;
    if ((rc = join_group(handle, opt.group, deadline)) != CS_OK) {
        fail("cpg_join: %s", cs_strerror(rc));
    }

    static uint8_t message[kMaxMessageBytes];
    uint32_t sent = 0, length = 0;
    uint64_t try_again = 0;
    int have_message = 0, ready = 0;
    double next_paced_send = 0;
    while (!all_done) {
        const double now = monotonic_s();
        if (now > deadline) {
            fail("timeout after %.0f s: %s", opt.timeout_s,
                 !joined                                   ? "own join confchg never came"
                 : group_members < opt.wait_members        ? "the group never had --wait-members members"
                 : opt.wait_nodedown && !nodedown_seen     ? "no NODEDOWN confchg came"
                 : opt.until_daemon_gone                   ? "the daemon did not go away"
                 : sent < opt.send_count                   ? "could not send every message"
                                                           : "not every sender's last message was delivered");
        }
        if (!ready && joined && group_members >= opt.wait_members) {
            ready = 1;
            if (opt.ready_path != NULL) {
                write_ready_file();
            }
        }
        int may_send = ready && sent < opt.send_count && (!opt.wait_nodedown || nodedown_seen);
        int paced = 0;
        if (may_send && opt.late_members > 0 && group_members < opt.late_members) {
            paced = 1;
            may_send = sent < opt.before_late && now >= next_paced_send;
        }
        int blocked = 0;
        for (int burst = 0; may_send && burst < (paced ? 1 : kSendBurst) && sent < opt.send_count; burst++) {
            if (!have_message) {
                build_message(message, sent, &length);
                have_message = 1;
            }
            struct iovec iov = {message, length};
            rc = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
            if (rc == CS_OK) {
                sent++;
                have_message = 0;
                next_paced_send = now + opt.pace_ms / 1000.0;
            } else if (rc == CS_ERR_TRY_AGAIN) {
                try_again++;
                blocked = 1;
                break;
            } else {
                fail("cpg_mcast_joined (message %" PRIu32 "): %s", sent, cs_strerror(rc));
            }
        }
        const int sending = may_send && !blocked && sent < opt.send_count && !paced;
        if (!sending) {
            /* Nothing to send now: sleep until an event (or the pace) is due. */
            struct pollfd pfd = {fd, POLLIN, 0};
            int timeout_ms = blocked ? kTryAgainPollMs : kIdlePollMs;
            if (paced && timeout_ms > (int)opt.pace_ms) {
                timeout_ms = (int)opt.pace_ms;
            }
            poll(&pfd, 1, timeout_ms);
        }
        rc = cpg_dispatch(handle, CS_DISPATCH_ALL);
        if (rc != CS_OK) {
            if (opt.until_daemon_gone && rc == CS_ERR_LIBRARY) {
                record("E daemon-gone\n");
                all_done = 1;
                break;
            }
            fail("cpg_dispatch: %s", cs_strerror(rc));
        }
    }
    if (bad_messages || fifo_violations) {
        fprintf(stderr, "order_client %" PRIu32 ":%" PRIu32 ": %" PRIu64 " bad messages, %" PRIu64
                        " FIFO violations (see %s)\n",
                own_nodeid, own_pid, bad_messages, fifo_violations, opt.out_path);
    }
    write_output();
    fprintf(stderr,
            "order_client %" PRIu32 ":%" PRIu32 " (group %s): done: sent %" PRIu32 ", delivered %" PRIu64
            ", try_again %" PRIu64 "\n",
            own_nodeid, own_pid, opt.group, sent, delivered, try_again);
    if (!opt.until_daemon_gone) {
        cpg_finalize(handle);
    }
    return 0;
}
