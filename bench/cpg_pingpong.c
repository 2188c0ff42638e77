/*
 * cpg_pingpong: self-delivery round trip. Sends one message to its own group and waits
 * in cpg_dispatch(CS_DISPATCH_ONE) until it comes back, many times, and reports the
 * distribution. Only corosync's CPG API is used, so the same source runs against rcpg
 * and against corosync.
 *
 * Prints one line: "RESULT size=<bytes> rounds=<n> min_us=.. p50_us=.. p99_us=.. p999_us=.. max_us=..".
 */
#define _GNU_SOURCE
#include <corosync/cpg.h>

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static volatile uint64_t returned;

static void on_deliver(cpg_handle_t handle, const struct cpg_name *group, uint32_t nodeid, uint32_t pid,
                       void *msg, size_t msg_len)
{
    (void)handle; (void)group; (void)nodeid; (void)pid; (void)msg; (void)msg_len;
    returned++;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int compare_u64(const void *a, const void *b)
{
    const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double percentile_us(const uint64_t *sorted, size_t n, double p)
{
    size_t index = (size_t)(p * (double)(n - 1));
    return (double)sorted[index] / 1000.0;
}

int main(int argc, char **argv)
{
    size_t size = 64;
    size_t rounds = 20000;
    size_t warmup = 1000;
    int opt;
    while ((opt = getopt(argc, argv, "s:n:h")) != -1) {
        switch (opt) {
        case 's': size = strtoull(optarg, NULL, 10); break;
        case 'n': rounds = strtoull(optarg, NULL, 10); break;
        case 'h':
            puts("Usage: cpg_pingpong [-s BYTES] [-n ROUNDS]");
            return 0;
        default:
            fputs("Usage: cpg_pingpong [-s BYTES] [-n ROUNDS]\n", stderr);
            return 2;
        }
    }
    if (rounds == 0) {
        return 2;
    }
    cpg_callbacks_t callbacks = {on_deliver, NULL};
    cpg_handle_t handle;
    if (cpg_initialize(&handle, &callbacks) != CS_OK) {
        fputs("cpg_initialize failed\n", stderr);
        return 1;
    }
    struct cpg_name group = {14, "cpg_pingpong"};
    group.length = (uint32_t)strlen("cpg_pingpong");
    cs_error_t rc;
    while ((rc = cpg_join(handle, &group)) == CS_ERR_TRY_AGAIN) {
        usleep(1000);
    }
    if (rc != CS_OK) {
        fprintf(stderr, "cpg_join: %d\n", rc);
        return 1;
    }
    char *buffer = calloc(1, size ? size : 1);
    uint64_t *samples = calloc(rounds, sizeof(uint64_t));
    struct iovec iov = {buffer, size};
    /* The own join confchg comes first. */
    cpg_dispatch(handle, CS_DISPATCH_ONE);
    for (size_t i = 0; i < warmup + rounds; i++) {
        const uint64_t target = returned + 1;
        const uint64_t start = now_ns();
        while ((rc = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1)) == CS_ERR_TRY_AGAIN) {
        }
        if (rc != CS_OK) {
            fprintf(stderr, "cpg_mcast_joined: %d\n", rc);
            return 1;
        }
        while (returned < target) {
            if ((rc = cpg_dispatch(handle, CS_DISPATCH_ONE)) != CS_OK) {
                fprintf(stderr, "cpg_dispatch: %d\n", rc);
                return 1;
            }
        }
        if (i >= warmup) {
            samples[i - warmup] = now_ns() - start;
        }
    }
    qsort(samples, rounds, sizeof(uint64_t), compare_u64);
    printf("RESULT size=%zu rounds=%zu min_us=%.2f p50_us=%.2f p99_us=%.2f p999_us=%.2f max_us=%.2f\n", size,
           rounds, (double)samples[0] / 1000.0, percentile_us(samples, rounds, 0.5),
           percentile_us(samples, rounds, 0.99), percentile_us(samples, rounds, 0.999),
           (double)samples[rounds - 1] / 1000.0);
    cpg_finalize(handle);
    free(samples);
    free(buffer);
    return 0;
}
