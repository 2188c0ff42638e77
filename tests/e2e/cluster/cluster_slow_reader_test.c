/*
 * cluster_slow_reader_test: a member stopped (SIGSTOP) on one node of a 3-node cluster while
 * a client on another node floods its group costs the cluster nothing, and gets every
 * message when it continues.
 *
 *   scripts/cluster.sh run --nodes 3 --ring-mib 8 --stuck-client-timeout-ms 1000 -- \
 *       cluster_slow_reader_test PATH/TO/rcpg-cpgtool [MESSAGE_BYTES [HOLDERS]]
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
 * With HOLDERS readers on node 2 (from 4 KiB; CTest cluster_many_held_readers_test), each
 * stops in the callback of its own message: node 2 tells the sequencer of six held
 * payloads at most, so the readers beyond six keep the cluster waiting until the
 * stuck-client rule cuts them off (they end with CS_ERR_LIBRARY), and the others get
 * everything.
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
#define MAX_HOLDERS 8
#define HOLD_WORDS 6 /* ordering/cluster_wire.hpp: wire::kHoldWords */

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
 * call fails, or WAIT_S passed), reports on `result`. It stops itself in the callback of
 * message `stop_at` (UINT64_MAX: never). */
static pid_t start_reader(int node, uint64_t stop_at, int ready, int result)
{
    const pid_t pid = fork();
    if (pid != 0) {
        return pid;
    }
    char ipc[32];
    snprintf(ipc, sizeof ipc, "rcpg-node%d", node);
    stop_in_callback_at = stop_at;
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
    if (argc < 2 || argc > 4 || getenv("RCPG_CLUSTER_DIR") == NULL ||
        (argc >= 3 && (atoi(argv[2]) < 16 || atoi(argv[2]) > 65536)) ||
        (argc == 4 && (atoi(argv[3]) < 1 || atoi(argv[3]) > MAX_HOLDERS || atoi(argv[2]) < 4096))) {
        fprintf(stderr, "usage: scripts/cluster.sh run --nodes 3 --ring-mib 8 -- cluster_slow_reader_test "
                        "PATH/TO/rcpg-cpgtool [MESSAGE_BYTES: 16..65536 [HOLDERS: 1..%d, from 4096 bytes]]\n",
                MAX_HOLDERS);
        return 2;
    }
    const char *tool = argv[1];
    if (argc >= 3) {
        flood_message_bytes = (size_t)atoi(argv[2]);
    }
    const int in_callback = flood_message_bytes >= 4096;
    const int holders = argc == 4 ? atoi(argv[3]) : 1; /* node 2's readers */
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (uint64_t sent_bytes = 0; sent_bytes < FLOOD_BYTES; ++total_messages) {
        sent_bytes += message_bytes(total_messages);
    }
    const uint64_t stop_at = total_messages / 16;
    /* A member tells its sequencer of at most HOLD_WORDS held payloads; a reader holding
     * one more is what keeps the cluster waiting, and the stuck-client rule cuts it off. */
    const int expected_cut = holders > HOLD_WORDS ? holders - HOLD_WORDS : 0;
    int failed = 0;
    const int readers = holders + 1; /* node 2's, then node 3's */
    int ready[2], result[MAX_HOLDERS + 1][2];
    pid_t pids[MAX_HOLDERS + 1];
    if (pipe(ready) != 0) {
        return 1;
    }
    for (int k = 0; k < readers; ++k) {
        if (pipe(result[k]) != 0) {
            return 1;
        }
        const int node = k < holders ? 2 : 3;
        const uint64_t stops = node == 2 && in_callback ? stop_at + (uint64_t)k : UINT64_MAX;
        pids[k] = start_reader(node, stops, ready[1], result[k][1]);
    }
    for (int k = 0; k < readers; ++k) {
        char byte = 0;
        if (read(ready[0], &byte, 1) != 1 || byte != 'j') {
            printf("cluster_slow_reader_test: FAIL: the readers did not join\n");
            for (int j = 0; j < readers; ++j) {
                kill(pids[j], SIGKILL);
            }
            return 1;
        }
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
            if (!in_callback && sent == stop_at) {
                kill(pids[0], SIGSTOP); /* in the middle of reading the flood */
            } else if (in_callback && sent == stop_at + 16 + (uint64_t)holders) {
                /* The rest of the flood goes while they are stopped in those callbacks (the
                 * ring holds far more than these: none was moved before). */
                for (int k = 0; k < holders; ++k) {
                    int status = 0;
                    if (waitpid(pids[k], &status, WUNTRACED) != pids[k] || !WIFSTOPPED(status)) {
                        printf("cluster_slow_reader_test: FAIL: a reader on node 2 did not stop in its callback\n");
                        failed = 1;
                    }
                }
                if (failed) {
                    break;
                }
                printf("cluster_slow_reader_test: %d reader(s) on node 2 stopped in the callbacks of messages "
                       "%llu..%llu\n",
                       holders, (unsigned long long)stop_at, (unsigned long long)(stop_at + (uint64_t)holders - 1));
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
    printf("cluster_slow_reader_test: sent %llu of %llu messages (%u MiB) in %lld s while node 2's readers were "
           "stopped; %llu retries\n",
           (unsigned long long)sent, (unsigned long long)total_messages, FLOOD_BYTES >> 20,
           (long long)(time(NULL) - started), (unsigned long long)retries);
    if (sent != total_messages) {
        printf("cluster_slow_reader_test: FAIL: the flood did not complete while the readers were stopped\n");
        failed = 1;
    }
    const long long moves = cpgtool_value(tool, 2, "backlog_moves");
    const long long stuck = cpgtool_value(tool, 2, "stuck_clients_disconnected");
    printf("cluster_slow_reader_test: node 2: backlog_moves=%lld stuck_clients_disconnected=%lld (%d expected)\n",
           moves, stuck, expected_cut);
    if (moves <= 0 || stuck != expected_cut) {
        printf("cluster_slow_reader_test: FAIL: node 2 did not move its readers' entries, or cut off other than "
               "%d\n",
               expected_cut);
        failed = 1;
    }
    for (int k = 0; k < holders; ++k) {
        kill(pids[k], SIGCONT);
    }
    int complete = 0, cut = 0;
    for (int k = 0; k < readers; ++k) {
        const int node = k < holders ? 2 : 3;
        struct reader_report got;
        memset(&got, 0, sizeof got);
        const ssize_t n = read(result[k][0], &got, sizeof got);
        waitpid(pids[k], NULL, 0);
        printf("cluster_slow_reader_test: node %d's reader %d: %llu of %llu delivered in order, %llu damaged or out "
               "of order, %llu left, last dispatch %d\n",
               node, k, (unsigned long long)got.delivered, (unsigned long long)total_messages,
               (unsigned long long)got.damaged, (unsigned long long)got.left, got.last_result);
        if (n == (ssize_t)sizeof got && got.delivered == total_messages && got.damaged == 0) {
            complete += node == 2;
        } else if (n == (ssize_t)sizeof got && node == 2 && got.last_result == CS_ERR_LIBRARY) {
            ++cut; /* cut off: it ends with CS_ERR_LIBRARY, nothing spins */
        } else {
            printf("cluster_slow_reader_test: FAIL: node %d's reader %d neither got the whole flood nor ended "
                   "cut off\n",
                   node, k);
            failed = 1;
        }
    }
    if (complete != holders - expected_cut || cut != expected_cut) {
        printf("cluster_slow_reader_test: FAIL: %d of node 2's readers got everything and %d were cut off; "
               "expected %d and %d\n",
               complete, cut, holders - expected_cut, expected_cut);
        failed = 1;
    }
    cpg_finalize(sender);
    printf("cluster_slow_reader_test: %s\n", failed ? "FAIL" : "PASS");
    return failed;
}
