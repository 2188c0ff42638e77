/*
 * cluster_evs_test: EVS (libevs) on a 3-node cluster over RDMA: one order on every node,
 * beside CPG traffic on the same daemons, and a node's failure reported to the EVS
 * clients of the others at the same point of their streams.
 *
 *   scripts/cluster.sh run --nodes 3 -- cluster_evs_test PATH/TO/rcpg-cpgtool [VICTIM]
 *
 * (CTest: cluster_evs_test, labels rdma and e2e.) One EVS client process per node, and a
 * CPG client on nodes 1 and 3. Every EVS client first gets the membership 1 2 3 (all
 * joined) and joins group "evs-order"; node 3's also joins "evs-more", and the senders
 * send every third message with evs_mcast_groups to {"evs-more"} only, which reaches node
 * 3's client alone.
 *   order  Every EVS client sends N messages (sizes from 16 bytes to 8 KiB, so inline,
 *          device-copied and in-place payloads), half AGREED, half SAFE, while the two
 *          CPG clients flood a CPG group. Checked: every EVS client of "evs-order" gets
 *          all 3N of that group's messages and nothing else (node 3's also the others),
 *          intact, FIFO per sender, in one order: the hash of the stream is the same on
 *          every node; the CPG clients get their 2N messages intact. rcpg-cpgtool --evs
 *          on node 1 lists its EVS client with its group.
 *   down   The clients of the two other nodes keep sending while node VICTIM's rcpgd is
 *          killed (SIGKILL; default 1, the sequencer: node 2 takes over). Each survivor
 *          must get the transitional confchg (the two survivors, VICTIM left) and the
 *          regular one (the two survivors, nothing joined), with a ring id above the one
 *          before, and then each sends a last message; both stop once they have both
 *          last messages. Checked: the survivors' streams from the phase's start,
 *          confchgs included, are the same (hash), so the failure sits at the same point
 *          of the order on both, and every message a survivor's client sent was
 *          delivered (per sender, in order: the last message comes after all others).
 * Output: one line per step and a PASS/FAIL line; exit 0 pass, 1 fail, 2 usage.
 */
#define _GNU_SOURCE
#include <corosync/cpg.h>
#include <corosync/evs.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster_cpgtool.h"

#define NODES 3
#define WAIT_S 600
#define MAGIC 0x65767331u /* "evs1" */

enum { phase_order = 1, phase_down = 2, phase_last = 3 };

struct message_header {
    uint32_t magic;
    uint32_t nodeid;
    uint32_t phase;
    uint32_t index;
    uint32_t bytes;
    uint32_t more_only; /* sent to "evs-more" only */
};

/* What an EVS client reports to the parent at the end of each phase. */
struct phase_report {
    int ok;
    char problem[200];
    uint64_t messages;
    uint64_t hash;
    uint64_t common_hash; /* order: the messages of "evs-order" only, which all three get */
    uint32_t confchgs;
    /* The down phase: the two confchgs. */
    uint32_t trans_members[NODES], trans_count, trans_left[NODES], trans_left_count;
    uint32_t reg_members[NODES], reg_count, reg_joined_count;
    uint64_t ring_before, ring_after;
};

static uint32_t messages_per_sender = 300;
static int victim = 1;  /* the node whose rcpgd the down phase kills */
static int survivor_a = 2, survivor_b = 3;

/* ---- the EVS client's state (one per process) ---- */
static int self_node;
static uint64_t stream_hash;
static uint64_t common_hash;
static uint64_t stream_messages;
static uint32_t next_index[NODES + 1][phase_last + 1];
static uint32_t last_seen[NODES + 1];
static int joined_more;
static struct phase_report report;
static uint32_t confchg_count;
static uint64_t ring_seq;
static uint32_t current_members[NODES];
static uint32_t current_count;

static void problem(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void problem(const char *format, ...)
{
    if (!report.ok) {
        return; /* the first one is kept */
    }
    va_list args;
    va_start(args, format);
    vsnprintf(report.problem, sizeof report.problem, format, args);
    va_end(args);
    report.ok = 0;
}

static void mix_into(uint64_t *hash, uint64_t value)
{
    *hash = (*hash ^ value) * 1099511628211ull; /* FNV-1a over words */
}

static void mix(uint64_t value) { mix_into(&stream_hash, value); }

static uint8_t fill_byte(uint32_t nodeid, uint32_t index, size_t at) { return (uint8_t)(nodeid * 31u + index * 7u + at); }

static uint32_t size_of(uint32_t index)
{
    static const uint32_t sizes[] = {24, 100, 200, 1000, 4096, 8192, 64};
    return sizes[index % (sizeof sizes / sizeof sizes[0])];
}

static void on_deliver(hdb_handle_t handle, unsigned int nodeid, const void *msg, size_t len)
{
    (void)handle;
    struct message_header header;
    if (len < sizeof header) {
        problem("a message of %zu bytes", len);
        return;
    }
    memcpy(&header, msg, sizeof header);
    if (header.magic != MAGIC || header.nodeid != nodeid || header.nodeid < 1 || header.nodeid > NODES ||
        header.phase < phase_order || header.phase > phase_last || header.bytes != len) {
        problem("a foreign or damaged message (node %u, %zu bytes)", nodeid, len);
        return;
    }
    const uint8_t *bytes = msg;
    for (size_t at = sizeof header; at < len; ++at) {
        if (bytes[at] != fill_byte(header.nodeid, header.index, at)) {
            problem("message %u of node %u damaged at byte %zu", header.index, header.nodeid, at);
            return;
        }
    }
    if (header.more_only && !joined_more) {
        problem("message %u of node %u for evs-more only reached node %d", header.index, header.nodeid, self_node);
    }
    /* FIFO per sender (rising numbers; with the count checked at the end of the phase,
     * each one once). The down phase and its last message share one numbering. */
    const uint32_t phase = header.phase == phase_last ? phase_down : header.phase;
    if (phase != phase_order && header.index != next_index[header.nodeid][phase]) {
        /* The down phase's messages all go to "evs-order": none may be missing, also
         * across the failover (a survivor's message told taken is never lost). */
        problem("node %u's message %u of the down phase follows %u", header.nodeid, header.index,
                next_index[header.nodeid][phase]);
    } else if (header.index < next_index[header.nodeid][phase]) {
        problem("node %u's message %u of phase %u after %u", header.nodeid, header.index, phase,
                next_index[header.nodeid][phase] - 1);
    }
    next_index[header.nodeid][phase] = header.index + 1;
    if (!header.more_only) {
        mix_into(&common_hash, ((uint64_t)header.nodeid << 40) ^ ((uint64_t)header.phase << 32) ^ header.index);
    }
    if (header.phase == phase_last) {
        last_seen[header.nodeid] = 1;
    }
    ++stream_messages;
    mix(((uint64_t)header.nodeid << 40) ^ ((uint64_t)header.phase << 32) ^ header.index);
}

static void on_confchg(hdb_handle_t handle, const unsigned int *members, size_t member_count, const unsigned int *left,
                       size_t left_count, const unsigned int *joined, size_t joined_count,
                       const struct evs_ring_id *ring_id)
{
    (void)handle;
    if (ring_id == NULL || member_count > NODES || left_count > NODES || joined_count > NODES) {
        problem("a confchg without a ring id or with too many nodes");
        return;
    }
    ++confchg_count;
    mix(0xc0ull << 56 ^ ring_id->seq);
    for (size_t i = 0; i < member_count; ++i) {
        mix(0xa0ull << 56 ^ members[i]);
    }
    for (size_t i = 0; i < left_count; ++i) {
        mix(0xb0ull << 56 ^ left[i]);
    }
    for (size_t i = 0; i < joined_count; ++i) {
        mix(0xd0ull << 56 ^ joined[i]);
    }
    /* In the down phase: the transitional configuration (with the left node), then the
     * regular one. */
    if (left_count != 0) {
        report.trans_count = (uint32_t)member_count;
        memcpy(report.trans_members, members, member_count * sizeof *members);
        report.trans_left_count = (uint32_t)left_count;
        memcpy(report.trans_left, left, left_count * sizeof *left);
        report.ring_before = ring_seq;
    } else if (report.trans_left_count != 0 && report.reg_count == 0) {
        report.reg_count = (uint32_t)member_count;
        memcpy(report.reg_members, members, member_count * sizeof *members);
        report.reg_joined_count = (uint32_t)joined_count;
        report.ring_after = ring_id->seq;
    }
    ring_seq = ring_id->seq;
    current_count = (uint32_t)member_count;
    memcpy(current_members, members, member_count * sizeof *members);
}

static struct evs_group group_named(const char *name)
{
    struct evs_group group;
    memset(&group, 0, sizeof group);
    strncpy(group.key, name, sizeof group.key);
    return group;
}

static time_t deadline;

/* Dispatches what is pending, waiting up to `wait_ms` for it. False on an error. */
static int pump(evs_handle_t handle, int fd, int wait_ms)
{
    struct pollfd entry = {fd, POLLIN, 0};
    if (poll(&entry, 1, wait_ms) < 0 && errno != EINTR) {
        return 0;
    }
    const cs_error_t result = evs_dispatch(handle, CS_DISPATCH_ALL);
    if (result != CS_OK) {
        problem("evs_dispatch: %d", result);
        return 0;
    }
    return 1;
}

/* Sends message `index` of `phase`; retries while there is no room. */
static int send_one(evs_handle_t handle, int fd, uint32_t phase, uint32_t index)
{
    static uint8_t buffer[8192];
    struct message_header header = {MAGIC, (uint32_t)self_node, phase, index, size_of(index), 0};
    const struct evs_group more = group_named("evs-more");
    header.more_only = phase == phase_order && index % 3 == 2;
    memcpy(buffer, &header, sizeof header);
    for (size_t at = sizeof header; at < header.bytes; ++at) {
        buffer[at] = fill_byte(header.nodeid, index, at);
    }
    struct iovec iov[2] = {{buffer, 10}, {buffer + 10, header.bytes - 10}};
    const evs_guarantee_t guarantee = index % 2 == 0 ? EVS_TYPE_AGREED : EVS_TYPE_SAFE;
    while (time(NULL) < deadline) {
        const cs_error_t result = header.more_only ? evs_mcast_groups(handle, guarantee, &more, 1, iov, 2)
                                                   : evs_mcast_joined(handle, guarantee, iov, 2);
        if (result == CS_OK) {
            return 1;
        }
        if (result != CS_ERR_TRY_AGAIN) {
            problem("send of message %u: %d", index, result);
            return 0;
        }
        if (!pump(handle, fd, 1)) {
            return 0;
        }
    }
    problem("no room to send message %u within %d s", index, WAIT_S);
    return 0;
}

static void write_all(int fd, const void *data, size_t bytes)
{
    if (write(fd, data, bytes) != (ssize_t)bytes) {
        _exit(3);
    }
}

static void read_all(int fd, void *data, size_t bytes)
{
    if (read(fd, data, bytes) != (ssize_t)bytes) {
        _exit(3);
    }
}

/* The EVS client of `node`: reports each phase on `result`, waits for the parent's go
 * (one byte per phase) on `go`. */
static void evs_client(int node, int go, int result)
{
    char ipc[32];
    snprintf(ipc, sizeof ipc, "rcpg-node%d", node);
    setenv("RCPG_IPC", ipc, 1);
    self_node = node;
    report.ok = 1;
    stream_hash = 14695981039346656037ull;
    deadline = time(NULL) + WAIT_S;
    evs_callbacks_t callbacks = {on_deliver, on_confchg};
    evs_handle_t handle = 0;
    int fd = -1;
    if (evs_initialize(&handle, &callbacks) != CS_OK || evs_fd_get(handle, &fd) != CS_OK) {
        problem("evs_initialize failed");
    }
    /* The membership at connection: all three nodes, all joined. */
    while (report.ok && confchg_count == 0 && time(NULL) < deadline) {
        pump(handle, fd, 100);
    }
    if (report.ok && current_count != NODES) {
        problem("the first confchg lists %u nodes, not %d", current_count, NODES);
    }
    const struct evs_group groups[2] = {group_named("evs-order"), group_named("evs-more")};
    joined_more = node == 3;
    if (report.ok && evs_join(handle, groups, joined_more ? 2 : 1) != CS_OK) {
        problem("evs_join failed");
    }
    report.messages = 0;
    write_all(result, &report, sizeof report);
    char byte;
    read_all(go, &byte, 1);

    /* order: N messages from every node. */
    const uint64_t order_start = stream_messages;
    common_hash = 14695981039346656037ull;
    uint32_t sent = 0;
    uint64_t expected = 0;
    for (uint32_t index = 0; index < messages_per_sender; ++index) {
        expected += joined_more || index % 3 != 2 ? NODES : 0;
    }
    while (report.ok && stream_messages - order_start < expected && time(NULL) < deadline) {
        if (sent < messages_per_sender) {
            if (!send_one(handle, fd, phase_order, sent)) {
                break;
            }
            ++sent;
            pump(handle, fd, 0);
        } else {
            pump(handle, fd, 100);
        }
    }
    if (report.ok && stream_messages - order_start != expected) {
        problem("%" PRIu64 " messages in phase order, expected %" PRIu64, stream_messages - order_start, expected);
    }
    report.messages = stream_messages - order_start;
    report.hash = stream_hash;
    report.common_hash = common_hash;
    report.confchgs = confchg_count;
    write_all(result, &report, sizeof report);
    read_all(go, &byte, 1);
    if (node == victim) {
        /* Its rcpgd is killed: reads until the library says the daemon is gone. */
        while (time(NULL) < deadline && evs_dispatch(handle, CS_DISPATCH_ALL) == CS_OK) {
            struct pollfd entry = {fd, POLLIN, 0};
            poll(&entry, 1, 100);
        }
        _exit(0);
    }

    /* down: send until the failure is reported, then a last message; stop once both
     * survivors' last messages are here. */
    stream_hash = 14695981039346656037ull;
    const uint64_t down_start = stream_messages;
    uint32_t index = 0;
    int last_sent = 0;
    byte = 's';
    write_all(result, &byte, 1); /* sending: the parent may kill the victim */
    while (report.ok && !(last_seen[survivor_a] && last_seen[survivor_b]) && time(NULL) < deadline) {
        if (report.reg_count == 0) {
            if (!send_one(handle, fd, phase_down, index++)) {
                break;
            }
            pump(handle, fd, 10); /* a pace the guest keeps up with, while the victim dies */
        } else if (!last_sent) {
            if (!send_one(handle, fd, phase_last, index++)) {
                break;
            }
            last_sent = 1;
        } else {
            pump(handle, fd, 100);
        }
    }
    if (report.ok && !(last_seen[survivor_a] && last_seen[survivor_b])) {
        problem("the last messages did not arrive within %d s (confchgs: transitional %u, regular %u)", WAIT_S,
                report.trans_count, report.reg_count);
    }
    report.messages = stream_messages - down_start;
    report.hash = stream_hash;
    report.confchgs = confchg_count;
    write_all(result, &report, sizeof report);
    evs_finalize(handle);
    _exit(0);
}

/* ---- a CPG client flooding a group beside the EVS traffic ---- */
static uint64_t cpg_received, cpg_damaged;

static void cpg_deliver(cpg_handle_t handle, const struct cpg_name *group, uint32_t nodeid, uint32_t pid, void *msg,
                        size_t len)
{
    (void)handle, (void)group, (void)nodeid, (void)pid;
    if (len != 300 || ((uint8_t *)msg)[299] != (uint8_t)nodeid) {
        ++cpg_damaged;
    }
    ++cpg_received;
}

static void cpg_client(int node, int go, int result)
{
    char ipc[32];
    snprintf(ipc, sizeof ipc, "rcpg-node%d", node);
    setenv("RCPG_IPC", ipc, 1);
    deadline = time(NULL) + WAIT_S;
    cpg_callbacks_t callbacks = {cpg_deliver, NULL};
    cpg_handle_t handle = 0;
    struct cpg_name group;
    memset(&group, 0, sizeof group);
    strcpy(group.value, "cpg-beside-evs");
    group.length = (uint32_t)strlen(group.value);
    int fd = -1;
    char status = 'r';
    if (cpg_initialize(&handle, &callbacks) != CS_OK || cpg_join(handle, &group) != CS_OK ||
        cpg_fd_get(handle, &fd) != CS_OK) {
        status = 'x';
    }
    write_all(result, &status, 1);
    char byte;
    read_all(go, &byte, 1);
    uint8_t buffer[300];
    memset(buffer, 0, sizeof buffer);
    buffer[299] = (uint8_t)node;
    struct iovec iov = {buffer, sizeof buffer};
    uint32_t sent = 0;
    while (status == 'r' && cpg_received < 2ull * messages_per_sender && time(NULL) < deadline) {
        if (sent < messages_per_sender) {
            const cs_error_t error = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
            if (error == CS_OK) {
                ++sent;
            } else if (error != CS_ERR_TRY_AGAIN) {
                status = 'x';
            }
        }
        struct pollfd entry = {fd, POLLIN, 0};
        poll(&entry, 1, sent < messages_per_sender ? 0 : 100);
        if (cpg_dispatch(handle, CS_DISPATCH_ALL) != CS_OK) {
            status = 'x';
        }
    }
    status = status == 'r' && cpg_received == 2ull * messages_per_sender && cpg_damaged == 0 ? 'k' : 'x';
    write_all(result, &status, 1);
    cpg_finalize(handle);
    _exit(0);
}

/* ---- the parent ---- */
struct child {
    pid_t pid;
    int go;     /* write end */
    int result; /* read end */
};

static struct child start(void (*body)(int, int, int), int node)
{
    int go[2], result[2];
    if (pipe(go) != 0 || pipe(result) != 0) {
        perror("pipe");
        exit(1);
    }
    const pid_t pid = fork();
    if (pid == 0) {
        close(go[1]);
        close(result[0]);
        body(node, go[0], result[1]);
        _exit(0);
    }
    close(go[0]);
    close(result[1]);
    return (struct child){pid, go[1], result[0]};
}

/* Reads `bytes` from a child within WAIT_S; false when it ended first. */
static int read_child(const struct child *child, void *data, size_t bytes)
{
    struct pollfd entry = {child->result, POLLIN, 0};
    if (poll(&entry, 1, WAIT_S * 1000) != 1) {
        return 0;
    }
    return read(child->result, data, bytes) == (ssize_t)bytes;
}

static int failures;
static void check(int holds, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void check(int holds, const char *format, ...)
{
    if (holds) {
        return;
    }
    va_list args;
    va_start(args, format);
    fputs("cluster_evs_test:   FAIL: ", stdout);
    vprintf(format, args);
    fputs("\n", stdout);
    va_end(args);
    ++failures;
}

static int same_set(const uint32_t *list, uint32_t count, const uint32_t *expected, uint32_t expected_count)
{
    if (count != expected_count) {
        return 0;
    }
    for (uint32_t i = 0; i < count; ++i) {
        if (list[i] != expected[i]) {
            return 0;
        }
    }
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || getenv("RCPG_CLUSTER_CTL") == NULL) {
        fprintf(stderr, "usage: scripts/cluster.sh run --nodes 3 -- %s PATH/TO/rcpg-cpgtool\n", argv[0]);
        return 2;
    }
    const char *tool = argv[1];
    if (argc > 2) {
        victim = atoi(argv[2]);
        if (victim < 1 || victim > NODES) {
            fprintf(stderr, "cluster_evs_test: VICTIM is a node from 1 to %d\n", NODES);
            return 2;
        }
    }
    survivor_a = victim == 1 ? 2 : 1;
    survivor_b = victim == 3 ? 2 : 3;
    const char *count = getenv("RCPG_E2E_MESSAGES");
    if (count != NULL && atoi(count) > 0) {
        messages_per_sender = (uint32_t)atoi(count);
    }
    setenv("RCPG_DISPATCH_SPIN_US", "0", 1); /* the guest has two CPUs for three daemons */
    signal(SIGPIPE, SIG_IGN);
    fflush(stdout);

    struct child evs[NODES + 1], cpg[NODES + 1];
    for (int node = 1; node <= NODES; ++node) {
        evs[node] = start(evs_client, node);
    }
    cpg[1] = start(cpg_client, 1);
    cpg[3] = start(cpg_client, 3);
    struct phase_report reports[NODES + 1];
    for (int node = 1; node <= NODES; ++node) {
        if (!read_child(&evs[node], &reports[node], sizeof reports[node])) {
            check(0, "node %d's EVS client did not start", node);
        } else {
            check(reports[node].ok, "node %d's EVS client: %s", node, reports[node].problem);
        }
    }
    for (int node = 1; node <= NODES; node += 2) {
        char status = 0;
        check(read_child(&cpg[node], &status, 1) && status == 'r', "node %d's CPG client did not join", node);
    }
    if (failures != 0) {
        printf("cluster_evs_test: FAIL (start)\n");
        return 1;
    }
    const long long evs_clients = cpgtool_value(tool, 1, "evs_clients");
    printf("cluster_evs_test: every EVS client has the membership 1 2 3 and joined; node 1's rcpg-cpgtool lists "
           "%lld EVS client(s)\n",
           evs_clients);
    check(evs_clients == 1, "rcpg-cpgtool --evs on node 1 lists %lld EVS clients, not 1", evs_clients);

    /* order */
    const char go = 'g';
    for (int node = 1; node <= NODES; ++node) {
        write_all(evs[node].go, &go, 1);
    }
    write_all(cpg[1].go, &go, 1);
    write_all(cpg[3].go, &go, 1);
    for (int node = 1; node <= NODES; ++node) {
        if (!read_child(&evs[node], &reports[node], sizeof reports[node])) {
            check(0, "node %d's EVS client did not finish phase order", node);
            continue;
        }
        check(reports[node].ok, "node %d's EVS client in phase order: %s", node, reports[node].problem);
        printf("cluster_evs_test: order: node %d delivered %" PRIu64 " messages, stream hash %016" PRIx64 "\n", node,
               reports[node].messages, reports[node].hash);
    }
    /* Node 3's client has more (the "evs-more" messages): the messages all three get, in
     * the order each got them, must be the same everywhere. */
    check(reports[1].hash == reports[2].hash, "nodes 1 and 2 delivered different orders");
    check(reports[1].common_hash == reports[3].common_hash, "nodes 1 and 3 delivered different orders");
    for (int node = 1; node <= NODES; node += 2) {
        char status = 0;
        check(read_child(&cpg[node], &status, 1) && status == 'k',
              "node %d's CPG client did not get its group's %u messages intact", node, 2 * messages_per_sender);
        waitpid(cpg[node].pid, NULL, 0);
    }

    /* down */
    for (int node = 1; node <= NODES; ++node) {
        write_all(evs[node].go, &go, 1);
    }
    char sending = 0;
    check(read_child(&evs[survivor_a], &sending, 1) && read_child(&evs[survivor_b], &sending, 1),
          "the survivors did not start sending");
    char command[512];
    snprintf(command, sizeof command, "\"$RCPG_CLUSTER_CTL\" kill %d", victim);
    printf("cluster_evs_test: down: killing node %d's rcpgd%s while nodes %d and %d send\n", victim,
           victim == 1 ? " (the sequencer)" : "", survivor_a, survivor_b);
    fflush(stdout);
    check(system(command) == 0, "cluster.sh ctl kill failed");
    const uint32_t survivors[2] = {(uint32_t)survivor_a, (uint32_t)survivor_b};
    const uint32_t gone[1] = {(uint32_t)victim};
    for (int node = 1; node <= NODES; ++node) {
        if (node == victim) {
            continue;
        }
        if (!read_child(&evs[node], &reports[node], sizeof reports[node])) {
            check(0, "node %d's EVS client did not finish phase down", node);
            continue;
        }
        const struct phase_report *r = &reports[node];
        check(r->ok, "node %d's EVS client in phase down: %s", node, r->problem);
        check(same_set(r->trans_members, r->trans_count, survivors, 2) &&
                  same_set(r->trans_left, r->trans_left_count, gone, 1),
              "node %d: the transitional confchg lists %u members and %u left, not %d %d and %d", node,
              r->trans_count, r->trans_left_count, survivor_a, survivor_b, victim);
        check(same_set(r->reg_members, r->reg_count, survivors, 2) && r->reg_joined_count == 0,
              "node %d: the regular confchg lists %u members and %u joined, not %d %d and none", node, r->reg_count,
              r->reg_joined_count, survivor_a, survivor_b);
        check(r->ring_after > r->ring_before, "node %d: the ring id did not rise (%" PRIu64 " then %" PRIu64 ")", node,
              r->ring_before, r->ring_after);
        printf("cluster_evs_test: down: node %d delivered %" PRIu64 " messages and the failure, ring %" PRIu64
               " -> %" PRIu64 ", stream hash %016" PRIx64 "\n",
               node, r->messages, r->ring_before, r->ring_after, r->hash);
    }
    check(reports[survivor_a].hash == reports[survivor_b].hash &&
              reports[survivor_a].messages == reports[survivor_b].messages,
          "the survivors saw the failure at different points of their streams");
    for (int node = 1; node <= NODES; ++node) {
        waitpid(evs[node].pid, NULL, 0);
    }
    printf("cluster_evs_test: %s\n", failures == 0 ? "PASS" : "FAIL");
    return failures == 0 ? 0 : 1;
}
