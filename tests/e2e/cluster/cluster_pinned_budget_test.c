/*
 * cluster_pinned_budget_test: a cluster node pins its clients' send memory for its RDMA
 * device only up to its budget (max_pinned_mib), so an allowed user cannot lock the
 * node's memory by opening clients.
 *
 *   scripts/cluster.sh run --nodes 2 --max-pinned-mib 64 -- cluster_pinned_budget_test
 *
 * (CTest: cluster_pinned_budget_test, labels rdma, e2e and security.) On node 2, a member
 * (which pins every client's arena, 32 MiB), clients are opened until one is refused: two
 * fit in 64 MiB, the third gets CS_ERR_NO_RESOURCES; once one of the two ends, a new one
 * fits again (its memory was given back), and the two still send and receive.
 * Output: one line per step and a PASS/FAIL line; exit 0 pass, 1 fail, 2 usage.
 */
#define _GNU_SOURCE
#include <corosync/cpg.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define WAIT_S 120

static int delivered;

static void on_deliver(cpg_handle_t handle, const struct cpg_name *group, uint32_t nodeid, uint32_t pid, void *msg,
                       size_t len)
{
    (void)handle, (void)group, (void)nodeid, (void)pid, (void)msg, (void)len;
    ++delivered;
}

static cs_error_t open_client(cpg_handle_t *handle)
{
    cpg_callbacks_t callbacks = {on_deliver, NULL};
    return cpg_initialize(handle, &callbacks);
}

/* The client joins, sends one message and gets it back; says which step failed. */
static int round_trip(cpg_handle_t handle)
{
    struct cpg_name group = {.length = 6};
    memcpy(group.value, "pinned", 6);
    char text[] = "within the budget";
    struct iovec part = {text, sizeof text};
    const cs_error_t joined = cpg_join(handle, &group);
    if (joined != CS_OK) {
        printf("cluster_pinned_budget_test: cpg_join: %d\n", joined);
        return -1;
    }
    const int before = delivered;
    const time_t deadline = time(NULL) + WAIT_S;
    cs_error_t sent;
    unsigned tries = 0;
    while ((sent = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &part, 1)) == CS_ERR_TRY_AGAIN && time(NULL) < deadline) {
        ++tries;
        usleep(10000);
    }
    cs_error_t dispatched = CS_OK;
    while (sent == CS_OK && delivered == before && time(NULL) < deadline) {
        dispatched = cpg_dispatch(handle, CS_DISPATCH_ALL);
        usleep(1000);
    }
    if (delivered == before) {
        printf("cluster_pinned_budget_test: cpg_mcast_joined: %d after %u tries of CS_ERR_TRY_AGAIN; last cpg_dispatch: "
               "%d; delivered: %d\n",
               sent, tries, dispatched, delivered);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    (void)argv;
    if (argc != 1 || getenv("RCPG_CLUSTER_DIR") == NULL) {
        fprintf(stderr, "usage: scripts/cluster.sh run --nodes 2 --max-pinned-mib 64 -- cluster_pinned_budget_test\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    setenv("RCPG_IPC", "rcpg-node2", 1);
    int failed = 0;
    cpg_handle_t first = 0, second = 0, third = 0, again = 0;
    const cs_error_t one = open_client(&first);
    const cs_error_t two = open_client(&second);
    const cs_error_t three = open_client(&third);
    printf("cluster_pinned_budget_test: three clients on node 2 (64 MiB, 32 MiB each): %d %d %d\n", one, two, three);
    if (one != CS_OK || two != CS_OK) {
        printf("cluster_pinned_budget_test: FAIL: the first two did not fit\n");
        failed = 1;
    }
    if (three != CS_ERR_NO_RESOURCES) {
        printf("cluster_pinned_budget_test: FAIL: the third was not refused with CS_ERR_NO_RESOURCES\n");
        failed = 1;
    }
    if (three == CS_OK) {
        cpg_finalize(third);
    }
    if (one == CS_OK) {
        cpg_finalize(first);
    }
    /* The daemon learns of the end asynchronously: a bounded retry. */
    cs_error_t refit = CS_ERR_NO_RESOURCES;
    const time_t deadline = time(NULL) + WAIT_S;
    while ((refit = open_client(&again)) == CS_ERR_NO_RESOURCES && time(NULL) < deadline) {
        usleep(20000);
    }
    printf("cluster_pinned_budget_test: after one ended, a new client: %d\n", refit);
    if (refit != CS_OK) {
        printf("cluster_pinned_budget_test: FAIL: the memory of the client that ended was not given back\n");
        failed = 1;
    }
    if (two == CS_OK && round_trip(second) != 0) {
        printf("cluster_pinned_budget_test: FAIL: a client within the budget did not get its message back\n");
        failed = 1;
    }
    printf("cluster_pinned_budget_test: %s\n", failed ? "FAIL" : "PASS");
    return failed;
}
