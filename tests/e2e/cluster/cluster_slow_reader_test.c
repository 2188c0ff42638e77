/*
 * cluster_slow_reader_test: a member stopped (SIGSTOP) on one node of a 3-node cluster while
 * a client on another node floods its group costs the cluster nothing, and gets every
 * message when it continues.
 *
 *   scripts/cluster.sh run --nodes 3 --ring-mib 8 --stuck-client-timeout-ms 1000 -- \
 *       cluster_slow_reader_test PATH/TO/rcpg-cpgtool [MESSAGE_BYTES]
 *
 * (CTest: cluster_slow_reader_test and cluster_held_reader_test, labels rdma and e2e.) A
 * reader on node 2 (a member) and one on node 3 join group "slow". A sender on node 1
 * (the sequencer) sends 32 MiB (four times the ring) in messages of MESSAGE_BYTES
 * (default 320). Node 2's reader stops after the flood's first sixteenth: below 4 KiB the
 * test stops it from outside, between callbacks; from 4 KiB on (delivered in place, from
 * the ring) it stops itself inside the callback of that message, so it holds the
 * message's payload in node 2's ring, which the sequencer writes. The flood must
 * complete while node 2's reader is still stopped, which it can only if node 2 moves its
 * entries out of the ring (node 2's credit is what the sequencer waits for) and, for the
 * held one, tells the sequencer to go round its payload lap after lap; and although the
 * reader stays stopped far longer than the stuck-client timeout it must not be cut off.
 * Then it continues: the held payload must be as it was, both readers must have every
 * message, in order, intact, and node 2's rcpg-cpgtool must have counted the moves.
 * Output: one line per step and a PASS/FAIL line; exit 0 pass, 1 fail, 2 usage.
 */
#define _GNU_SOURCE
#include <corosync/cpg.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster_cpgtool.h"

#define FLOOD_BYTES (32u << 20)
#define WAIT_S 600

struct reader_report {
    uint64_t delivered;
    uint64_t damaged;
    uint64_t left; /* members seen to leave meanwhile (none is expected) */
    int last_result;
};

static uint64_t total_messages;
static struct reader_report report;
static uint64_t expected;
static size_t flood_message_bytes = 320;
/* Node 2's reader stops itself in the callback of this message (UINT64_MAX: it does not). */
static uint64_t stop_in_callback_at = UINT64_MAX;

static size_t message_bytes(uint64_t number) { return (void)number, flood_message_bytes; }

static uint8_t fill_byte(uint64_t number, size_t index) { return (uint8_t)(number * 131u + index); }

static void on_deliver(cpg_handle_t handle, const struct cpg_name *group, uint32_t nodeid, uint32_t pid, void *msg,
                       size_t len)
{
    (void)handle, (void)group, (void)nodeid, (void)pid;
    uint64_t number = 0;
    const uint8_t *bytes = msg;
    int intact = len >= sizeof number;
    if (intact) {
        memcpy(&number, bytes, sizeof number);
        if (number == stop_in_callback_at) {
            raise(SIGSTOP); /* the payload below is checked after the flood went round it */
        }
        intact = number == expected && len == message_bytes(number);
        for (size_t i = sizeof number; intact && i < len; ++i) {
            intact = bytes[i] == fill_byte(number, i);
        }
    }
    if (!intact) {
        ++report.damaged;
        return;
    }
    ++expected;
    ++report.delivered;
}

static void on_confchg(cpg_handle_t handle, const struct cpg_name *group, const struct cpg_address *members,
                       size_t member_count, const struct cpg_address *left, size_t left_count,
                       const struct cpg_address *joined, size_t joined_count)
{
    (void)handle, (void)group, (void)members, (void)member_count, (void)left, (void)joined, (void)joined_count;
    report.left += left_count;
}

static struct cpg_name group_named(const char *text)
{
    struct cpg_name name;
    memset(&name, 0, sizeof name);
    name.length = (uint32_t)strlen(text);
    memcpy(name.value, text, name.length);
    return name;
}

/* A reader on `node`: joins, says so on `ready`, reads until it has the whole flood (or a
 * call fails, or WAIT_S passed), reports on `result`. */
static pid_t start_reader(int node, int ready, int result)
{
    const pid_t pid = fork();
    if (pid != 0) {
        return pid;
    }
    char ipc[32];
    snprintf(ipc, sizeof ipc, "rcpg-node%d", node);
    if (node != 2) {
        stop_in_callback_at = UINT64_MAX;
    }
    setenv("RCPG_IPC", ipc, 1);
    cpg_callbacks_t callbacks = {on_deliver, on_confchg};
    cpg_handle_t handle = 0;
    struct cpg_name group = group_named("slow");
    char byte = 'x';
    if (cpg_initialize(&handle, &callbacks) == CS_OK && cpg_join(handle, &group) == CS_OK) {
        byte = 'j';
    }
    if (write(ready, &byte, 1) != 1) {
        _exit(1);
    }
    const time_t deadline = time(NULL) + WAIT_S;
    cs_error_t dispatched = CS_OK;
    while (expected < total_messages && time(NULL) < deadline) {
        dispatched = cpg_dispatch(handle, CS_DISPATCH_ONE_NONBLOCKING);
        if (dispatched == CS_ERR_TRY_AGAIN) {
            usleep(200);
        } else if (dispatched != CS_OK) {
            break;
        }
    }
    report.last_result = dispatched;
    if (write(result, &report, sizeof report) != (ssize_t)sizeof report) {
        _exit(1);
    }
    _exit(0);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || getenv("RCPG_CLUSTER_DIR") == NULL ||
        (argc == 3 && (atoi(argv[2]) < 16 || atoi(argv[2]) > 65536))) {
        fprintf(stderr, "usage: scripts/cluster.sh run --nodes 3 --ring-mib 8 -- cluster_slow_reader_test "
                        "PATH/TO/rcpg-cpgtool [MESSAGE_BYTES: 16..65536]\n");
        return 2;
    }
    const char *tool = argv[1];
    if (argc == 3) {
        flood_message_bytes = (size_t)atoi(argv[2]);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (uint64_t sent_bytes = 0; sent_bytes < FLOOD_BYTES; ++total_messages) {
        sent_bytes += message_bytes(total_messages);
    }
    const uint64_t stop_at = total_messages / 16;
    if (flood_message_bytes >= 4096) {
        stop_in_callback_at = stop_at;
    }
    int failed = 0;
    int ready[2], result[2][2];
    if (pipe(ready) != 0 || pipe(result[0]) != 0 || pipe(result[1]) != 0) {
        return 1;
    }
    const pid_t stopped = start_reader(2, ready[1], result[0][1]);
    const pid_t reading = start_reader(3, ready[1], result[1][1]);
    char byte[2] = {0, 0};
    if (read(ready[0], &byte[0], 1) != 1 || read(ready[0], &byte[1], 1) != 1 || byte[0] != 'j' || byte[1] != 'j') {
        printf("cluster_slow_reader_test: FAIL: the readers did not join\n");
        kill(stopped, SIGKILL);
        kill(reading, SIGKILL);
        return 1;
    }

    setenv("RCPG_IPC", "rcpg-node1", 1);
    cpg_callbacks_t callbacks = {NULL, NULL};
    cpg_handle_t sender = 0;
    struct cpg_name group = group_named("slow");
    if (cpg_initialize(&sender, &callbacks) != CS_OK || cpg_join(sender, &group) != CS_OK) {
        printf("cluster_slow_reader_test: FAIL: the sender did not join\n");
        return 1;
    }
    static uint8_t message[65536];
    uint64_t sent = 0, retries = 0;
    const time_t deadline = time(NULL) + WAIT_S;
    const time_t started = time(NULL);
    while (sent < total_messages && time(NULL) < deadline) {
        const size_t bytes = message_bytes(sent);
        memcpy(message, &sent, sizeof sent);
        for (size_t i = sizeof sent; i < bytes; ++i) {
            message[i] = fill_byte(sent, i);
        }
        struct iovec part = {message, bytes};
        const cs_error_t result_code = cpg_mcast_joined(sender, CPG_TYPE_AGREED, &part, 1);
        if (result_code == CS_OK) {
            ++sent;
            if (stop_in_callback_at == UINT64_MAX && sent == stop_at) {
                kill(stopped, SIGSTOP); /* in the middle of reading the flood */
            } else if (stop_in_callback_at != UINT64_MAX && sent == stop_at + 16) {
                /* The rest of the flood goes while it is stopped in that callback (the
                 * ring holds far more than these 16: it was never moved before). */
                int status = 0;
                if (waitpid(stopped, &status, WUNTRACED) != stopped || !WIFSTOPPED(status)) {
                    printf("cluster_slow_reader_test: FAIL: node 2's reader did not stop in its callback\n");
                    failed = 1;
                    break;
                }
                printf("cluster_slow_reader_test: node 2's reader stopped in the callback of message %llu\n",
                       (unsigned long long)stop_at);
            }
        } else if (result_code == CS_ERR_TRY_AGAIN) {
            ++retries;
            usleep(100);
        } else {
            printf("cluster_slow_reader_test: cpg_mcast_joined: %d\n", result_code);
            break;
        }
        if (sent % 256 == 0 || result_code != CS_OK) {
            cpg_dispatch(sender, CS_DISPATCH_ALL);
        }
    }
    printf("cluster_slow_reader_test: sent %llu of %llu messages (%u MiB) in %lld s while node 2's reader was "
           "stopped; %llu retries\n",
           (unsigned long long)sent, (unsigned long long)total_messages, FLOOD_BYTES >> 20,
           (long long)(time(NULL) - started), (unsigned long long)retries);
    if (sent != total_messages) {
        printf("cluster_slow_reader_test: FAIL: the flood did not complete while the reader was stopped\n");
        failed = 1;
    }
    const long long moves = cpgtool_value(tool, 2, "backlog_moves");
    const long long stuck = cpgtool_value(tool, 2, "stuck_clients_disconnected");
    printf("cluster_slow_reader_test: node 2: backlog_moves=%lld stuck_clients_disconnected=%lld\n", moves, stuck);
    if (moves <= 0 || stuck != 0) {
        printf("cluster_slow_reader_test: FAIL: node 2 did not move its reader's entries, or cut it off\n");
        failed = 1;
    }
    kill(stopped, SIGCONT);
    for (int k = 0; k < 2; ++k) {
        const pid_t reader = k == 0 ? stopped : reading;
        struct reader_report got;
        memset(&got, 0, sizeof got);
        const ssize_t n = read(result[k][0], &got, sizeof got);
        waitpid(reader, NULL, 0);
        printf("cluster_slow_reader_test: node %d's reader: %llu of %llu delivered in order, %llu damaged or out of "
               "order, %llu left, last dispatch %d\n",
               k == 0 ? 2 : 3, (unsigned long long)got.delivered, (unsigned long long)total_messages,
               (unsigned long long)got.damaged, (unsigned long long)got.left, got.last_result);
        if (n != (ssize_t)sizeof got || got.delivered != total_messages || got.damaged != 0) {
            printf("cluster_slow_reader_test: FAIL: node %d's reader did not get the whole flood\n", k == 0 ? 2 : 3);
            failed = 1;
        }
    }
    cpg_finalize(sender);
    printf("cluster_slow_reader_test: %s\n", failed ? "FAIL" : "PASS");
    return failed;
}
