/*
 * cluster_mid_send_test: a client killed in the middle of a large message on one node of
 * a 3-node cluster leaves no half message and no hole on any node.
 *
 *   scripts/cluster.sh run --nodes 3 --ring-mib 16 -- cluster_mid_send_test PATH/TO/rcpg-cpgtool
 *
 * (CTest: cluster_mid_send_test, labels rdma and e2e.) A watcher on every node joins group
 * "midsend"; node 3's watcher does not read yet, so its ring fills and flow control holds
 * the cluster back. On node 2 a client sends a 48 MiB message (48 fragments of 1 MiB, more
 * than a 16 MiB ring holds while node 3 does not read) and is killed with SIGKILL once the
 * sequencer has sequenced some of its fragments. Then node 3's watcher reads, and a second
 * client on node 2 sends a small and a fragmented 3 MiB message, and then a 64 KiB one with
 * the zero-copy API (the first from that part of its arena, which node 2 registers with
 * the device only then).
 *
 * Before that second client, six clients on node 2 are killed with SIGKILL while they
 * initialize, most of them while node 2 pins their send arenas for the device (which it
 * does off its sequencing thread); node 2 must drop them and go on serving.
 *
 * Every watcher must then have delivered nothing of the killed client, seen it leave with
 * CPG_REASON_PROCDOWN, and delivered the second client's three messages whole, byte for
 * byte. Output: one line per watcher and a PASS/FAIL line; exit 0 pass, 1 fail, 2 usage.
 */
#define _GNU_SOURCE
#include <corosync/cpg.h>

#include <inttypes.h>
#include <poll.h>
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

#define NODES 3
#define DOOMED_BYTES (48u << 20)
#define SMALL_BYTES 100u
#define LARGE_BYTES ((3u << 20) + 123u)
#define ZCB_BYTES ((64u << 10) + 7u)
#define WATCH_TIMEOUT_S 360

static const char *tool;

static struct cpg_name group_named(const char *text)
{
    struct cpg_name name;
    memset(&name, 0, sizeof name);
    name.length = (uint32_t)strlen(text);
    memcpy(name.value, text, name.length);
    return name;
}

static uint8_t pattern_byte(size_t index, size_t length) { return (uint8_t)((index * 7u + length * 13u + 1u) & 0xffu); }

static void fill(char *bytes, size_t length)
{
    for (size_t i = 0; i < length; ++i) {
        bytes[i] = (char)pattern_byte(i, length);
    }
}

static int connect_to(int node, cpg_handle_t *handle, cpg_callbacks_t *callbacks)
{
    char ipc[32];
    snprintf(ipc, sizeof ipc, "rcpg-node%d", node);
    setenv("RCPG_IPC", ipc, 1);
    const struct cpg_name group = group_named("midsend");
    return cpg_initialize(handle, callbacks) == CS_OK && cpg_join(*handle, &group) == CS_OK ? 0 : -1;
}

/* Starts `count` clients on `node`, kills them with SIGKILL one by one after they began
 * their cpg_initialize, and waits until the node counts only `clients_after` clients again.
 * Returns 0 when it did within the time allowed. */
static int kill_while_initializing(int node, int count, long long clients_after)
{
    int started[2];
    if (pipe(started) != 0) {
        return -1;
    }
    pid_t children[16];
    for (int i = 0; i < count; ++i) {
        children[i] = fork();
        if (children[i] == 0) {
            char ipc[32];
            snprintf(ipc, sizeof ipc, "rcpg-node%d", node);
            setenv("RCPG_IPC", ipc, 1);
            cpg_handle_t handle = 0;
            cpg_callbacks_t callbacks = {NULL, NULL};
            (void)!write(started[1], "s", 1);
            cpg_initialize(&handle, &callbacks);
            pause();
            _exit(0);
        }
    }
    char byte;
    for (int i = 0; i < count; ++i) {
        if (read(started[0], &byte, 1) != 1) {
            return -1;
        }
    }
    /* Staggered, so that some die before they are connected, some while their arena is
     * being pinned (tens of ms under TCG, serialized), and some once they are served. */
    for (int i = 0; i < count; ++i) {
        usleep(15000);
        kill(children[i], SIGKILL);
        waitpid(children[i], NULL, 0);
    }
    close(started[0]);
    close(started[1]);
    long long clients = -1;
    const time_t deadline = time(NULL) + 120;
    while ((clients = cpgtool_value(tool, node, "local_clients")) != clients_after && time(NULL) < deadline) {
        usleep(100000);
    }
    printf("cluster_mid_send_test: %d clients killed while they initialized on node %d; it counts %lld clients "
           "(want %lld)\n",
           count, node, clients, clients_after);
    return clients == clients_after ? 0 : -1;
}

/* ------------------------------------------------------------------ a watcher */

static struct {
    int node;
    uint32_t doomed_pid;
    uint32_t survivor_pid;
    int doomed_delivered;   /* messages of the killed client: must stay 0 */
    int doomed_procdown;    /* it left with CPG_REASON_PROCDOWN */
    int small_ok, large_ok, zcb_ok, survivor_bad;
} watch;

static void watcher_deliver(cpg_handle_t handle, const struct cpg_name *name, uint32_t nodeid, uint32_t pid, void *message,
                            size_t length)
{
    (void)handle, (void)name, (void)nodeid;
    if (pid == watch.doomed_pid) {
        ++watch.doomed_delivered;
        return;
    }
    if (pid != watch.survivor_pid) {
        return;
    }
    const unsigned char *bytes = message;
    int whole = length == SMALL_BYTES || length == LARGE_BYTES || length == ZCB_BYTES;
    for (size_t i = 0; whole && i < length; ++i) {
        whole = bytes[i] == pattern_byte(i, length);
    }
    if (!whole) {
        ++watch.survivor_bad;
    } else if (length == SMALL_BYTES) {
        ++watch.small_ok;
    } else if (length == ZCB_BYTES) {
        ++watch.zcb_ok;
    } else {
        ++watch.large_ok;
    }
}

static void watcher_confchg(cpg_handle_t handle, const struct cpg_name *name, const struct cpg_address *members, size_t n_members,
                            const struct cpg_address *left, size_t n_left, const struct cpg_address *joined, size_t n_joined)
{
    (void)handle, (void)name, (void)members, (void)n_members, (void)joined, (void)n_joined;
    for (size_t i = 0; i < n_left; ++i) {
        if (left[i].pid == watch.doomed_pid && left[i].reason == CPG_REASON_PROCDOWN) {
            ++watch.doomed_procdown;
        }
    }
}

/* Joins, tells the parent (ready_fd), waits for "go" on go_fd, learns the two senders'
 * pids from it, and reads until the survivor's two messages came. Exits 0 when all held. */
static void run_watcher(int node, int ready_fd, int go_fd)
{
    cpg_callbacks_t callbacks = {watcher_deliver, watcher_confchg};
    cpg_handle_t handle = 0;
    watch.node = node;
    if (connect_to(node, &handle, &callbacks) != 0) {
        printf("cluster_mid_send_test: node %d: watcher could not join\n", node);
        _exit(1);
    }
    (void)!write(ready_fd, "r", 1);
    uint32_t pids[2];
    if (node == NODES) {
        /* The stuck reader: nothing is read until the killed client is gone. */
        if (read(go_fd, pids, sizeof pids) != (ssize_t)sizeof pids) {
            _exit(1);
        }
    } else {
        /* The others read all along: the pids arrive while messages do. */
        int fd = -1;
        cpg_fd_get(handle, &fd);
        struct pollfd polled[2] = {{fd, POLLIN, 0}, {go_fd, POLLIN, 0}};
        for (;;) {
            if (poll(polled, 2, 1000) < 0) {
                continue;
            }
            if (polled[1].revents != 0) {
                if (read(go_fd, pids, sizeof pids) != (ssize_t)sizeof pids) {
                    _exit(1);
                }
                break;
            }
            if (polled[0].revents != 0 && cpg_dispatch(handle, CS_DISPATCH_ALL) != CS_OK) {
                printf("cluster_mid_send_test: node %d: dispatch failed\n", node);
                _exit(1);
            }
        }
    }
    watch.doomed_pid = pids[0];
    watch.survivor_pid = pids[1];
    const time_t deadline = time(NULL) + WATCH_TIMEOUT_S;
    int fd = -1;
    cpg_fd_get(handle, &fd);
    while ((watch.small_ok + watch.large_ok + watch.zcb_ok + watch.survivor_bad < 3 || watch.doomed_procdown == 0) &&
           time(NULL) < deadline) {
        struct pollfd polled = {fd, POLLIN, 0};
        poll(&polled, 1, 200);
        if (cpg_dispatch(handle, CS_DISPATCH_ALL) != CS_OK) {
            printf("cluster_mid_send_test: node %d: dispatch failed\n", node);
            _exit(1);
        }
    }
    const int pass = watch.doomed_delivered == 0 && watch.doomed_procdown == 1 && watch.small_ok == 1 &&
                     watch.large_ok == 1 && watch.zcb_ok == 1 && watch.survivor_bad == 0;
    printf("cluster_mid_send_test: node %d: %s: killed client's messages delivered %d (want 0), its PROCDOWN %d "
           "(want 1); next client's messages whole %d of 3, damaged %d\n",
           node, pass ? "ok" : "WRONG", watch.doomed_delivered, watch.doomed_procdown,
           watch.small_ok + watch.large_ok + watch.zcb_ok,
           watch.survivor_bad);
    fflush(stdout);
    cpg_finalize(handle);
    _exit(pass ? 0 : 1);
}

/* ------------------------------------------------------------------ the senders */

static void run_doomed(int ready_fd)
{
    /* Its send must still wait for room when the kill comes, however slow the guest is:
     * its library gives up on a fragment without room only after this (600 s). */
    setenv("RCPG_FRAGMENT_ROOM_TIMEOUT_MS", "600000", 1);
    cpg_handle_t handle = 0;
    if (connect_to(2, &handle, NULL) != 0) {
        _exit(1);
    }
    char *large = malloc(DOOMED_BYTES);
    if (large == NULL) {
        _exit(1);
    }
    memset(large, 'D', DOOMED_BYTES);
    struct iovec iov = {large, DOOMED_BYTES};
    (void)!write(ready_fd, "r", 1);
    cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
    /* Killed before it gets here: a send that returned would be a failure of the test. */
    printf("cluster_mid_send_test: the 48 MiB send returned before the kill\n");
    _exit(3);
}

static void run_survivor(void)
{
    cpg_handle_t handle = 0;
    if (connect_to(2, &handle, NULL) != 0) {
        _exit(1);
    }
    static char small[SMALL_BYTES];
    char *large = malloc(LARGE_BYTES);
    if (large == NULL) {
        _exit(1);
    }
    fill(small, sizeof small);
    fill(large, LARGE_BYTES);
    struct iovec small_iov = {small, sizeof small};
    struct iovec large_iov = {large, LARGE_BYTES};
    const time_t deadline = time(NULL) + WATCH_TIMEOUT_S;
    cs_error_t error;
    while ((error = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &small_iov, 1)) == CS_ERR_TRY_AGAIN &&
           time(NULL) < deadline) {
        usleep(10000);
    }
    while (error == CS_OK && (error = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &large_iov, 1)) == CS_ERR_TRY_AGAIN &&
           time(NULL) < deadline) {
        usleep(10000);
    }
    void *zcb = NULL;
    if (error == CS_OK && (error = cpg_zcb_alloc(handle, ZCB_BYTES, &zcb)) == CS_OK) {
        fill(zcb, ZCB_BYTES);
        while ((error = cpg_zcb_mcast_joined(handle, CPG_TYPE_AGREED, zcb, ZCB_BYTES)) == CS_ERR_TRY_AGAIN &&
               time(NULL) < deadline) {
            usleep(10000);
        }
    }
    if (error != CS_OK) {
        printf("cluster_mid_send_test: the next client's send failed: %d\n", error);
        _exit(1);
    }
    /* Stay until the watchers are done: leaving first would be fine, but the test reads clearer. */
    pause();
    _exit(0);
}

/* ------------------------------------------------------------------ the test */

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: scripts/cluster.sh run --nodes 3 --ring-mib 16 -- %s PATH/TO/rcpg-cpgtool\n", argv[0]);
        return 2;
    }
    tool = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    int ready[2];
    if (pipe(ready) != 0) {
        return 1;
    }
    pid_t watchers[NODES];
    int go[NODES][2];
    for (int node = 1; node <= NODES; ++node) {
        if (pipe(go[node - 1]) != 0) {
            return 1;
        }
        watchers[node - 1] = fork();
        if (watchers[node - 1] == 0) {
            run_watcher(node, ready[1], go[node - 1][0]);
        }
    }
    char byte;
    for (int i = 0; i < NODES; ++i) {
        if (read(ready[0], &byte, 1) != 1) {
            return 1;
        }
    }
    const long long before = cpgtool_value(tool, 1, "messages_sequenced");
    const pid_t doomed = fork();
    if (doomed == 0) {
        run_doomed(ready[1]);
    }
    if (read(ready[0], &byte, 1) != 1) {
        return 1;
    }
    /* Kill it once two fragments (2 MiB) are sequenced: well inside the message, and long
     * before its library would give up waiting for room and abort the message. */
    long long now = before;
    const time_t deadline = time(NULL) + 180;
    while (before >= 0 && now < before + 2 && time(NULL) < deadline) {
        usleep(20000);
        now = cpgtool_value(tool, 1, "messages_sequenced");
    }
    int failed = 0;
    if (before < 0 || now < before + 2) {
        printf("cluster_mid_send_test: FAIL: no fragment of the 48 MiB message was sequenced (%lld, then %lld)\n", before,
               now);
        failed = 1;
    }
    kill(doomed, SIGKILL);
    int status = 0;
    waitpid(doomed, &status, 0);
    if (!WIFSIGNALED(status)) {
        printf("cluster_mid_send_test: FAIL: the sending client ended before the kill\n");
        failed = 1;
    }
    const long long at_kill = cpgtool_value(tool, 1, "messages_sequenced");
    printf("cluster_mid_send_test: client %d on node 2 killed with %lld of its fragments sequenced\n", (int)doomed,
           at_kill - before);

    if (kill_while_initializing(2, 6, 1) != 0) {
        printf("cluster_mid_send_test: FAIL: node 2 did not go back to its one watcher\n");
        failed = 1;
    }

    const pid_t survivor = fork();
    if (survivor == 0) {
        run_survivor();
    }
    const uint32_t pids[2] = {(uint32_t)doomed, (uint32_t)survivor};
    for (int node = 1; node <= NODES; ++node) {
        if (write(go[node - 1][1], pids, sizeof pids) != (ssize_t)sizeof pids) {
            return 1;
        }
    }
    for (int node = 1; node <= NODES; ++node) {
        waitpid(watchers[node - 1], &status, 0);
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    kill(survivor, SIGTERM);
    waitpid(survivor, NULL, 0);
    printf("cluster_mid_send_test: %s\n", failed ? "FAIL" : "PASS");
    return failed ? 1 : 0;
}
