/*
 * cpg_flood: one process sends as fast as flow control allows and receives its own
 * messages (self-delivery), like corosync's cpgbench. It uses only corosync's CPG API,
 * so the same source runs against rcpg and against corosync.
 *
 * Prints one line: "RESULT api=<copy|zcb> size=<bytes> seconds=<s> delivered=<n>
 * msgs_per_s=<r> mb_per_s=<r> try_again=<n> out_of_order=<n> rw_syscalls_per_msg=<r>",
 * the last being the read/write system calls this process made (from /proc/self/io)
 * per delivered message: what the library costs the kernel per message.
 */
#define _GNU_SOURCE
#include <corosync/cpg.h>

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static uint64_t delivered_messages;
static uint64_t delivered_bytes;
static uint64_t corrupted;

static void on_deliver(cpg_handle_t handle, const struct cpg_name *group, uint32_t nodeid, uint32_t pid,
                       void *msg, size_t msg_len)
{
    (void)handle;
    (void)group;
    (void)nodeid;
    (void)pid;
    /* The first 8 bytes carry the sequence number the sender wrote: check FIFO. */
    if (msg_len >= sizeof(uint64_t)) {
        uint64_t seq;
        memcpy(&seq, msg, sizeof(seq));
        if (seq != delivered_messages) {
            corrupted++;
        }
    }
    delivered_messages++;
    delivered_bytes += msg_len;
}

static void on_confchg(cpg_handle_t handle, const struct cpg_name *group, const struct cpg_address *members,
                       size_t n_members, const struct cpg_address *left, size_t n_left,
                       const struct cpg_address *joined, size_t n_joined)
{
    (void)handle; (void)group; (void)members; (void)n_members;
    (void)left; (void)n_left; (void)joined; (void)n_joined;
}

/* Read and write system calls made so far by this process (syscr + syscw). */
static unsigned long long rw_syscalls(void)
{
    FILE *io = fopen("/proc/self/io", "r");
    unsigned long long total = 0, value;
    char key[64];
    if (io == NULL) {
        return 0;
    }
    while (fscanf(io, "%63[^:]: %llu\n", key, &value) == 2) {
        if (strcmp(key, "syscr") == 0 || strcmp(key, "syscw") == 0) {
            total += value;
        }
    }
    fclose(io);
    return total;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *out)
{
    fputs("Usage: cpg_flood [-s BYTES] [-t SECONDS] [-z] [-g GROUP]\n"
          "  -s BYTES    message size (default 64, at least 8)\n"
          "  -t SECONDS  how long to send (default 3)\n"
          "  -z          send with cpg_zcb_alloc/cpg_zcb_mcast_joined instead of cpg_mcast_joined\n"
          "  -g GROUP    group name (default cpg_flood)\n",
          out);
}

int main(int argc, char **argv)
{
    size_t size = 64;
    double seconds = 3.0;
    int use_zcb = 0;
    const char *group_text = "cpg_flood";
    int opt;
    while ((opt = getopt(argc, argv, "s:t:zg:h")) != -1) {
        switch (opt) {
        case 's': size = strtoull(optarg, NULL, 10); break;
        case 't': seconds = atof(optarg); break;
        case 'z': use_zcb = 1; break;
        case 'g': group_text = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (size < sizeof(uint64_t) || seconds <= 0) {
        usage(stderr);
        return 2;
    }
    cpg_callbacks_t callbacks = {on_deliver, on_confchg};
    cpg_handle_t handle;
    cs_error_t rc = cpg_initialize(&handle, &callbacks);
    if (rc != CS_OK) {
        fprintf(stderr, "cpg_initialize: %d\n", rc);
        return 1;
    }
    struct cpg_name group;
    group.length = (uint32_t)strlen(group_text);
    memcpy(group.value, group_text, group.length);
    while ((rc = cpg_join(handle, &group)) == CS_ERR_TRY_AGAIN) {
        usleep(1000);
    }
    if (rc != CS_OK) {
        fprintf(stderr, "cpg_join: %d\n", rc);
        return 1;
    }
    void *buffer = NULL;
    if (use_zcb) {
        rc = cpg_zcb_alloc(handle, size, &buffer);
        if (rc != CS_OK) {
            fprintf(stderr, "cpg_zcb_alloc: %d\n", rc);
            return 1;
        }
    } else {
        buffer = calloc(1, size);
    }
    int fd;
    cpg_fd_get(handle, &fd);
    uint64_t sent = 0, try_again = 0;
    const unsigned long long syscalls_at_start = rw_syscalls();
    const double start = now_s();
    double end = start + seconds;
    while (now_s() < end) {
        for (int burst = 0; burst < 64; burst++) {
            memcpy(buffer, &sent, sizeof(sent));
            if (use_zcb) {
                rc = cpg_zcb_mcast_joined(handle, CPG_TYPE_AGREED, buffer, size);
            } else {
                struct iovec iov = {buffer, size};
                rc = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
            }
            if (rc == CS_OK) {
                sent++;
            } else if (rc == CS_ERR_TRY_AGAIN) {
                try_again++;
                break;
            } else {
                fprintf(stderr, "mcast: %d\n", rc);
                return 1;
            }
        }
        rc = cpg_dispatch(handle, CS_DISPATCH_ALL);
        if (rc != CS_OK) {
            fprintf(stderr, "cpg_dispatch: %d\n", rc);
            return 1;
        }
    }
    /* Drain what is still on its way, then count. */
    const double drain_deadline = now_s() + 30.0;
    while (delivered_messages < sent && now_s() < drain_deadline) {
        struct pollfd pfd = {fd, POLLIN, 0};
        poll(&pfd, 1, 100);
        cpg_dispatch(handle, CS_DISPATCH_ALL);
    }
    const double elapsed = now_s() - start;
    const unsigned long long syscalls = rw_syscalls() - syscalls_at_start;
    printf("RESULT api=%s size=%zu seconds=%.3f sent=%llu delivered=%llu msgs_per_s=%.0f mb_per_s=%.1f "
           "try_again=%llu out_of_order=%llu rw_syscalls_per_msg=%.4f\n",
           use_zcb ? "zcb" : "copy", size, elapsed, (unsigned long long)sent,
           (unsigned long long)delivered_messages, (double)delivered_messages / elapsed,
           (double)delivered_bytes / elapsed / 1e6, (unsigned long long)try_again,
           (unsigned long long)corrupted,
           delivered_messages ? (double)syscalls / (double)delivered_messages : 0.0);
    if (use_zcb) {
        cpg_zcb_free(handle, buffer);
    } else {
        free(buffer);
    }
    cpg_finalize(handle);
    return (delivered_messages == sent && corrupted == 0) ? 0 : 1;
}
