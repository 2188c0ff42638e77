/*
 * cpg_cluster_bench: one process of a multi-node CPG benchmark. Start one on each node
 * (or several); they join one group, wait until it has --members processes, and then
 * the senders send while everybody delivers. Only corosync's CPG API is used, so the
 * same source runs against rcpg and against corosync.
 *
 * Every message carries the sender's sequence number and CLOCK_MONOTONIC send time.
 * The nodes of a local cluster share that clock (one host or one guest), so a receiver
 * measures one-way latency, from the call that sent to the callback that delivered.
 *
 * Modes:
 *   flood    senders send as fast as flow control allows for --seconds;
 *   latency  senders keep one message in flight: send, wait for their own delivery,
 *            send the next (the sender's figure is the ordered round trip);
 *   churn    joins, and once the first data message came (the senders started, so
 *            every process of --members is in), leaves and joins again and again for
 *            --seconds (finalizing and joining on a new handle: in corosync 3.1.7 a
 *            handle that left cannot join again): membership changes in the stream the
 *            others receive. Count it in
 *            --members. Its figures: leave-and-join cycles per second (msgs_per_s) and
 *            the join latency, from the call to its own join in a confchg (lat_*).
 * A sender ends with an end marker; everybody stops once every sender's marker came.
 *
 * --evs (rcpg's build only: corosync 3 has no EVS) sends and delivers through the EVS API
 * (libevs.so.4) instead, on the same daemon: every process joins the EVS group of the
 * same name, then the CPG group, which serves only to wait for every process (EVS has
 * no group membership); messages then go to the EVS group. EVS tells a message's
 * sending node, not its process: one sender per node.
 *
 * Prints one line per process:
 *   RESULT mode=.. api=.. guarantee=.. size=.. sender=0|1 nodeid=.. sent=.. try_again=..
 *          delivered=.. seconds=.. msgs_per_s=.. mb_per_s=.. lat_p50_us=.. lat_p99_us=..
 *          lat_p999_us=.. lat_max_us=.. fifo_errors=.. order_digest=.. complete=0|1
 * (sender=2 for a churn process).
 * `seconds` runs from the first to the last data message this process delivered;
 * `order_digest` hashes the sequence of (sender, number) it delivered, so processes
 * that delivered one identical order print one identical digest. --quantiles FILE writes
 * the latency distribution: lines "fraction microseconds", 0 to 1 in steps of 0.005,
 * then 0.999, 0.9999 and 1 (for plots).
 */
#define _GNU_SOURCE
#include <corosync/cpg.h>
#ifdef RCPG_BENCH_EVS
#include <corosync/evs.h>
#endif

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

#define MAX_SENDERS 64

struct message_header {
    uint32_t magic;
    uint32_t is_end;
    uint64_t number;  /* per sender, from 0 */
    uint64_t sent_ns; /* CLOCK_MONOTONIC */
};
#define MESSAGE_MAGIC 0x72637062u

struct sender_state {
    uint32_t nodeid;
    uint32_t pid;
    uint64_t next_number;
    int ended;
};

static struct sender_state senders[MAX_SENDERS];
static size_t sender_count;
static size_t ended_count;
static size_t members_now;
/* Set once a confchg showed every process of the run: one dispatch may deliver that
 * confchg and the next (a churner leaving again) together, so the count seen after a
 * dispatch may never be the full one. */
static size_t members_wanted;
static int members_reached;
static uint32_t own_nodeid;
static uint32_t own_pid;
static uint64_t own_delivered_number = UINT64_MAX; /* latency mode: last own message back */
static uint64_t delivered_messages;
static uint64_t delivered_bytes;
static uint64_t fifo_errors;
static uint64_t foreign_messages;
static uint64_t first_delivery_ns;
static uint64_t last_delivery_ns;
static uint64_t order_digest = 1469598103934665603ull; /* FNV-1a offset basis */
static uint64_t *latencies_ns;
static size_t latency_count;
static size_t latency_capacity;
static int churn_mode;      /* latencies are its joins, not deliveries */
static int own_join_seen;   /* churn: its own join came in a confchg */
static int own_leave_seen;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void digest_u64(uint64_t value)
{
    for (int i = 0; i < 8; i++) {
        order_digest ^= (value >> (8 * i)) & 0xffu;
        order_digest *= 1099511628211ull;
    }
}

static struct sender_state *sender_of(uint32_t nodeid, uint32_t pid)
{
    for (size_t i = 0; i < sender_count; i++) {
        if (senders[i].nodeid == nodeid && senders[i].pid == pid) {
            return &senders[i];
        }
    }
    if (sender_count == MAX_SENDERS) {
        return NULL;
    }
    senders[sender_count] = (struct sender_state){nodeid, pid, 0, 0};
    return &senders[sender_count++];
}

static void record_latency(uint64_t latency_ns)
{
    if (latency_count == latency_capacity) {
        size_t capacity = latency_capacity ? latency_capacity * 2 : 65536;
        uint64_t *grown = realloc(latencies_ns, capacity * sizeof(*grown));
        if (grown == NULL) {
            return; /* keep the samples so far: percentiles of a prefix, not a crash */
        }
        latencies_ns = grown;
        latency_capacity = capacity;
    }
    latencies_ns[latency_count++] = latency_ns;
}

static void on_message(uint32_t nodeid, uint32_t pid, const void *msg, size_t msg_len)
{
    const uint64_t delivered_at_ns = now_ns();
    struct message_header header;
    if (msg_len < sizeof(header)) {
        foreign_messages++;
        return;
    }
    memcpy(&header, msg, sizeof(header));
    if (header.magic != MESSAGE_MAGIC) {
        foreign_messages++;
        return;
    }
    struct sender_state *sender = sender_of(nodeid, pid);
    if (sender == NULL) {
        foreign_messages++;
        return;
    }
    if (header.number != sender->next_number) {
        fifo_errors++;
    }
    sender->next_number = header.number + 1;
    digest_u64(((uint64_t)nodeid << 32) | pid);
    digest_u64(header.number);
    if (nodeid == own_nodeid && pid == own_pid) {
        own_delivered_number = header.number;
    }
    if (header.is_end) {
        if (!sender->ended) {
            sender->ended = 1;
            ended_count++;
        }
        return;
    }
    if (delivered_messages == 0) {
        first_delivery_ns = delivered_at_ns;
    }
    last_delivery_ns = delivered_at_ns;
    delivered_messages++;
    delivered_bytes += msg_len;
    if (!churn_mode) {
        record_latency(delivered_at_ns - header.sent_ns);
    }
}

static void on_deliver(cpg_handle_t handle, const struct cpg_name *group, uint32_t nodeid, uint32_t pid,
                       void *msg, size_t msg_len)
{
    (void)handle;
    (void)group;
    on_message(nodeid, pid, msg, msg_len);
}

#ifdef RCPG_BENCH_EVS
static int evs_mode;
static evs_handle_t evs_handle;
static int evs_fd = -1;
static struct evs_group evs_group_key;

/* EVS names the sending node only: every process is taken as 0 there, this one too (one
 * sender per node), so that every receiver hashes the same (node, process) pairs. */
static void on_evs_deliver(hdb_handle_t handle, unsigned int nodeid, const void *msg, size_t msg_len)
{
    (void)handle;
    on_message(nodeid, 0, msg, msg_len);
}
#endif

static void on_confchg(cpg_handle_t handle, const struct cpg_name *group, const struct cpg_address *members,
                       size_t n_members, const struct cpg_address *left, size_t n_left,
                       const struct cpg_address *joined, size_t n_joined)
{
    (void)handle; (void)group; (void)members;
    members_now = n_members;
    members_reached |= members_wanted != 0 && n_members >= members_wanted;
    for (size_t i = 0; i < n_joined; i++) {
        own_join_seen |= joined[i].nodeid == own_nodeid && joined[i].pid == own_pid;
    }
    for (size_t i = 0; i < n_left; i++) {
        own_leave_seen |= left[i].nodeid == own_nodeid && left[i].pid == own_pid;
    }
}

static int compare_u64(const void *a, const void *b)
{
    const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static double percentile_us(double fraction)
{
    if (latency_count == 0) {
        return 0.0;
    }
    size_t index = (size_t)(fraction * (double)(latency_count - 1) + 0.5);
    return (double)latencies_ns[index] / 1e3;
}

/* The distribution for plots: "fraction microseconds" lines. */
static int write_quantiles(const char *path)
{
    FILE *out = fopen(path, "w");
    if (out == NULL) {
        perror(path);
        return -1;
    }
    for (int step = 0; step <= 200 && latency_count > 0; step++) {
        fprintf(out, "%.3f %.1f\n", step / 200.0, percentile_us(step / 200.0));
        if (step == 199) {
            fprintf(out, "0.999 %.1f\n0.9999 %.1f\n", percentile_us(0.999), percentile_us(0.9999));
        }
    }
    return fclose(out) == 0 ? 0 : -1;
}

static void usage(FILE *out)
{
    fputs("Usage: cpg_cluster_bench --members N [--senders K] [--send] [OPTIONS]\n"
          "  --members N     start once the group has N processes (every process of the run)\n"
          "  --senders K     how many of them send (default 1): everybody stops after K end markers\n"
          "  --send          this process is one of the senders\n"
          "  --mode MODE     flood (default), latency or churn (join and leave over and over)\n"
          "  --size BYTES    message size (default 64, at least 24)\n"
          "  --seconds S     how long a sender sends (default 3)\n"
          "  --zcb           send with cpg_zcb_alloc/cpg_zcb_mcast_joined\n"
          "  --guarantee G   agreed (default) or safe: CPG_TYPE_AGREED or CPG_TYPE_SAFE\n"
          "  --group NAME    group name (default cpg_cluster_bench)\n"
          "  --timeout-s S   give up (exit 1) after S seconds in all (default 120)\n"
          "  --quantiles F   write the latency distribution to F (fraction, microseconds)\n"
          "  --evs           send and deliver through the EVS API (libevs) on the same daemon;\n"
          "                  the CPG group only gathers the processes (rcpg's build only)\n",
          out);
}

static cs_error_t dispatch_or_wait(cpg_handle_t handle, int fd, int wait_ms)
{
#ifdef RCPG_BENCH_EVS
    if (evs_mode && members_reached) {
        /* The traffic is on the EVS handle once every process is in. */
        struct pollfd pfd = {evs_fd, POLLIN, 0};
        if (wait_ms > 0 && poll(&pfd, 1, wait_ms) < 0 && errno != EINTR) {
            return CS_ERR_LIBRARY;
        }
        return evs_dispatch(evs_handle, CS_DISPATCH_ALL);
    }
#endif
    struct pollfd pfd = {fd, POLLIN, 0};
    if (wait_ms > 0 && poll(&pfd, 1, wait_ms) < 0 && errno != EINTR) {
        return CS_ERR_LIBRARY;
    }
    return cpg_dispatch(handle, CS_DISPATCH_ALL);
}

static cpg_guarantee_t guarantee = CPG_TYPE_AGREED;

static cs_error_t send_one(cpg_handle_t handle, void *buffer, size_t size, int use_zcb)
{
#ifdef RCPG_BENCH_EVS
    if (evs_mode) {
        struct iovec iov = {buffer, size};
        return evs_mcast_joined(evs_handle, guarantee == CPG_TYPE_SAFE ? EVS_TYPE_SAFE : EVS_TYPE_AGREED, &iov, 1);
    }
#endif
    if (use_zcb) {
        return cpg_zcb_mcast_joined(handle, guarantee, buffer, size);
    }
    struct iovec iov = {buffer, size};
    return cpg_mcast_joined(handle, guarantee, &iov, 1);
}

static cpg_callbacks_t callbacks = {on_deliver, on_confchg};
static int churn_result(uint64_t cycles, uint64_t started_ns, int failed, cs_error_t rc, const char *quantiles_path);

/* Waits until `seen` is set by a confchg; 0 when it came before the deadline. */
static int wait_for_own(cpg_handle_t handle, int fd, const int *seen, uint64_t deadline_ns)
{
    while (!*seen) {
        if (now_ns() > deadline_ns || dispatch_or_wait(handle, fd, 100) != CS_OK) {
            return -1;
        }
    }
    return 0;
}

/* Churn mode: in once the stream runs, then out and in again for `seconds`. Every join is
 * on a new handle: in corosync 3.1.7 a handle that left can never join again. */
static int churn(cpg_handle_t handle, int fd, const struct cpg_name *group, double seconds, uint64_t deadline_ns,
                 const char *quantiles_path)
{
    cs_error_t rc;
    int failed = 0;
    while ((rc = cpg_join(handle, group)) == CS_ERR_TRY_AGAIN && now_ns() < deadline_ns) {
        usleep(1000);
    }
    failed = rc != CS_OK;
    while (!failed && delivered_messages == 0 && now_ns() < deadline_ns) {
        failed = dispatch_or_wait(handle, fd, 100) != CS_OK;
    }
    const uint64_t started_ns = now_ns();
    const uint64_t stop_ns = started_ns + (uint64_t)(seconds * 1e9);
    uint64_t cycles = 0;
    while (!failed && delivered_messages > 0 && now_ns() < stop_ns) {
        own_leave_seen = 0;
        while ((rc = cpg_leave(handle, group)) == CS_ERR_TRY_AGAIN && now_ns() < deadline_ns) {
            dispatch_or_wait(handle, fd, 1);
        }
        failed = rc != CS_OK || wait_for_own(handle, fd, &own_leave_seen, deadline_ns) != 0;
        cpg_finalize(handle);
        if (failed) {
            return churn_result(cycles, started_ns, 1, rc, quantiles_path);
        }
        while ((rc = cpg_initialize(&handle, &callbacks)) == CS_ERR_TRY_AGAIN && now_ns() < deadline_ns) {
            usleep(1000);
        }
        if (rc != CS_OK) {
            return churn_result(cycles, started_ns, 1, rc, quantiles_path);
        }
        cpg_fd_get(handle, &fd);
        const uint64_t join_ns = now_ns();
        own_join_seen = 0;
        while ((rc = cpg_join(handle, group)) == CS_ERR_TRY_AGAIN && now_ns() < deadline_ns) {
            dispatch_or_wait(handle, fd, 1);
        }
        failed = rc != CS_OK || wait_for_own(handle, fd, &own_join_seen, deadline_ns) != 0;
        if (!failed) {
            record_latency(now_ns() - join_ns);
            cycles++;
        }
    }
    cpg_finalize(handle);
    return churn_result(cycles, started_ns, failed, rc, quantiles_path);
}

static int churn_result(uint64_t cycles, uint64_t started_ns, int failed, cs_error_t rc, const char *quantiles_path)
{
    const double elapsed_s = (double)(now_ns() - started_ns) / 1e9;
    qsort(latencies_ns, latency_count, sizeof(*latencies_ns), compare_u64);
    printf("RESULT mode=churn api=copy guarantee=agreed size=0 sender=2 nodeid=%u sent=0 try_again=0 delivered=%llu "
           "seconds=%.3f msgs_per_s=%.1f mb_per_s=0 lat_p50_us=%.1f lat_p99_us=%.1f lat_p999_us=%.1f lat_max_us=%.1f "
           "fifo_errors=0 order_digest=0 complete=%d\n",
           own_nodeid, (unsigned long long)delivered_messages, elapsed_s, elapsed_s > 0 ? (double)cycles / elapsed_s : 0.0,
           percentile_us(0.50), percentile_us(0.99), percentile_us(0.999),
           latency_count ? (double)latencies_ns[latency_count - 1] / 1e3 : 0.0, !failed && cycles > 0);
    if (failed) {
        fprintf(stderr, "cpg_cluster_bench: churn stopped after %llu cycles: %d\n", (unsigned long long)cycles, rc);
    }
    if (quantiles_path != NULL && write_quantiles(quantiles_path) != 0) {
        return 1;
    }
    free(latencies_ns);
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"members", required_argument, NULL, 'm'}, {"senders", required_argument, NULL, 'k'},
        {"send", no_argument, NULL, 'S'},          {"mode", required_argument, NULL, 'M'},
        {"size", required_argument, NULL, 's'},    {"seconds", required_argument, NULL, 't'},
        {"zcb", no_argument, NULL, 'z'},           {"group", required_argument, NULL, 'g'},
        {"timeout-s", required_argument, NULL, 'T'}, {"help", no_argument, NULL, 'h'},
        {"guarantee", required_argument, NULL, 'G'}, {"quantiles", required_argument, NULL, 'Q'},
        {"evs", no_argument, NULL, 'E'},           {NULL, 0, NULL, 0}};
    size_t members = 0, sender_total = 1, size = 64;
    double seconds = 3.0, timeout_s = 120.0;
    int is_sender = 0, use_zcb = 0, latency_mode = 0;
    const char *group_text = "cpg_cluster_bench";
    const char *quantiles_path = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'm': members = strtoull(optarg, NULL, 10); break;
        case 'k': sender_total = strtoull(optarg, NULL, 10); break;
        case 'S': is_sender = 1; break;
        case 'M':
            if (strcmp(optarg, "latency") == 0) {
                latency_mode = 1;
            } else if (strcmp(optarg, "churn") == 0) {
                churn_mode = 1;
            } else if (strcmp(optarg, "flood") != 0) {
                fprintf(stderr, "cpg_cluster_bench: unknown mode '%s'\n", optarg);
                return 2;
            }
            break;
        case 's': size = strtoull(optarg, NULL, 10); break;
        case 't': seconds = atof(optarg); break;
        case 'z': use_zcb = 1; break;
        case 'g': group_text = optarg; break;
        case 'T': timeout_s = atof(optarg); break;
        case 'Q': quantiles_path = optarg; break;
        case 'G':
            if (strcmp(optarg, "safe") == 0) {
                guarantee = CPG_TYPE_SAFE;
            } else if (strcmp(optarg, "agreed") != 0) {
                fprintf(stderr, "cpg_cluster_bench: unknown guarantee '%s'\n", optarg);
                return 2;
            }
            break;
        case 'E':
#ifdef RCPG_BENCH_EVS
            evs_mode = 1;
            break;
#else
            fprintf(stderr, "cpg_cluster_bench: built without EVS (corosync 3 has none)\n");
            return 2;
#endif
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (churn_mode) {
        members = 1; /* waits for the first data message instead */
        is_sender = 0;
    }
    if (members == 0 || sender_total == 0 || sender_total > MAX_SENDERS || size < sizeof(struct message_header) ||
        seconds <= 0 || timeout_s <= 0 || strlen(group_text) >= CPG_MAX_NAME_LENGTH) {
        usage(stderr);
        return 2;
    }
    members_wanted = members;
    const uint64_t deadline_ns = now_ns() + (uint64_t)(timeout_s * 1e9);
    cpg_handle_t handle;
    cs_error_t rc;
    while ((rc = cpg_initialize(&handle, &callbacks)) == CS_ERR_TRY_AGAIN) {
        usleep(1000);
    }
    if (rc != CS_OK) {
        fprintf(stderr, "cpg_initialize: %d\n", rc);
        return 1;
    }
    cpg_local_get(handle, &own_nodeid);
    own_pid = (uint32_t)getpid();
    struct cpg_name group;
    group.length = (uint32_t)strlen(group_text);
    memcpy(group.value, group_text, group.length);
    int fd;
    cpg_fd_get(handle, &fd);
    if (churn_mode) {
        return churn(handle, fd, &group, seconds, deadline_ns, quantiles_path);
    }
#ifdef RCPG_BENCH_EVS
    if (evs_mode) {
        own_pid = 0; /* as EVS delivers it (on_evs_deliver) */
        /* Joined to the EVS group before the CPG group: once the CPG group is complete,
         * every process's EVS handle takes the messages. */
        static evs_callbacks_t evs_callbacks = {on_evs_deliver, NULL};
        while ((rc = evs_initialize(&evs_handle, &evs_callbacks)) == CS_ERR_TRY_AGAIN) {
            usleep(1000);
        }
        strncpy(evs_group_key.key, group_text, sizeof(evs_group_key.key));
        if (rc != CS_OK || (rc = evs_fd_get(evs_handle, &evs_fd)) != CS_OK ||
            (rc = evs_join(evs_handle, &evs_group_key, 1)) != CS_OK) {
            fprintf(stderr, "cpg_cluster_bench: EVS: %d\n", rc);
            return 1;
        }
    }
#endif
    while ((rc = cpg_join(handle, &group)) == CS_ERR_TRY_AGAIN) {
        usleep(1000);
    }
    if (rc != CS_OK) {
        fprintf(stderr, "cpg_join: %d\n", rc);
        return 1;
    }
    while (!members_reached) {
        if (now_ns() > deadline_ns) {
            fprintf(stderr, "cpg_cluster_bench: the group never had %zu members (it has %zu)\n", members, members_now);
            return 1;
        }
        if ((rc = dispatch_or_wait(handle, fd, 10)) != CS_OK) {
            fprintf(stderr, "cpg_dispatch: %d\n", rc);
            return 1;
        }
    }

#ifdef RCPG_BENCH_EVS
    if (evs_mode) {
        /* Gathered: the CPG handle goes, so that it is not a reader that never reads
         * (a handle that only left would hold the ring until it read its own leave).
         * Every process saw the group complete before any departure, in the one order. */
        cpg_finalize(handle);
    }
#endif
    uint64_t sent = 0, try_again = 0;
    if (is_sender) {
        void *buffer = NULL;
        if (use_zcb) {
            if ((rc = cpg_zcb_alloc(handle, size, &buffer)) != CS_OK) {
                fprintf(stderr, "cpg_zcb_alloc: %d\n", rc);
                return 1;
            }
        } else {
            buffer = calloc(1, size);
        }
        const uint64_t stop_ns = now_ns() + (uint64_t)(seconds * 1e9);
        int ending = 0;
        for (;;) {
            const int sending_end = now_ns() >= stop_ns;
            struct message_header header = {MESSAGE_MAGIC, (uint32_t)sending_end, sent, now_ns()};
            memcpy(buffer, &header, sizeof(header));
            rc = send_one(handle, buffer, sending_end ? sizeof(header) : size, use_zcb);
            if (rc == CS_OK) {
                sent++;
                if (sending_end) {
                    ending = 1;
                }
                if (latency_mode || ending) {
                    /* One in flight: wait for it to come back before the next. */
                    while (own_delivered_number != sent - 1 && now_ns() < deadline_ns) {
                        if ((rc = dispatch_or_wait(handle, fd, 100)) != CS_OK) {
                            break;
                        }
                    }
                } else if (sent % 64 == 0) {
                    rc = dispatch_or_wait(handle, fd, 0);
                }
            } else if (rc == CS_ERR_TRY_AGAIN || rc == CS_ERR_INTERRUPT) {
                /* INTERRUPT: corosync cut a fragmented message short at a membership
                 * change; receivers drop its fragments, so it is sent again whole. */
                try_again++;
                rc = dispatch_or_wait(handle, fd, 1);
            }
            if (rc != CS_OK) {
                fprintf(stderr, "cpg_cluster_bench: send or dispatch failed: %d\n", rc);
                return 1;
            }
            if (ending || now_ns() > deadline_ns) {
                break;
            }
        }
        if (use_zcb) {
            cpg_zcb_free(handle, buffer);
        } else {
            free(buffer);
        }
        if (ending) {
            sent--; /* the end marker is not data */
        }
    }
    while (ended_count < sender_total && now_ns() < deadline_ns) {
        if ((rc = dispatch_or_wait(handle, fd, 100)) != CS_OK) {
            fprintf(stderr, "cpg_dispatch: %d\n", rc);
            return 1;
        }
    }
    const int complete = ended_count == sender_total;
    qsort(latencies_ns, latency_count, sizeof(*latencies_ns), compare_u64);
    const double elapsed_s =
        delivered_messages > 1 ? (double)(last_delivery_ns - first_delivery_ns) / 1e9 : 0.0;
    printf("RESULT mode=%s api=%s guarantee=%s size=%zu sender=%d nodeid=%u sent=%llu try_again=%llu delivered=%llu "
           "seconds=%.3f msgs_per_s=%.0f mb_per_s=%.2f lat_p50_us=%.1f lat_p99_us=%.1f lat_p999_us=%.1f "
           "lat_max_us=%.1f fifo_errors=%llu order_digest=%016llx complete=%d\n",
           latency_mode ? "latency" : "flood",
#ifdef RCPG_BENCH_EVS
           evs_mode ? "evs" :
#endif
           use_zcb ? "zcb" : "copy",
           guarantee == CPG_TYPE_SAFE ? "safe" : "agreed", size, is_sender, own_nodeid,
           (unsigned long long)sent, (unsigned long long)try_again, (unsigned long long)delivered_messages,
           elapsed_s, elapsed_s > 0 ? (double)delivered_messages / elapsed_s : 0.0,
           elapsed_s > 0 ? (double)delivered_bytes / elapsed_s / 1e6 : 0.0, percentile_us(0.50),
           percentile_us(0.99), percentile_us(0.999),
           latency_count ? (double)latencies_ns[latency_count - 1] / 1e3 : 0.0,
           (unsigned long long)fifo_errors, (unsigned long long)order_digest, complete);
#ifdef RCPG_BENCH_EVS
    if (evs_mode) {
        evs_finalize(evs_handle);
    } else
#endif
    {
        cpg_finalize(handle);
    }
    if (quantiles_path != NULL && write_quantiles(quantiles_path) != 0) {
        return 1;
    }
    free(latencies_ns);
    if (!complete) {
        fprintf(stderr, "cpg_cluster_bench: %zu of %zu senders ended before the deadline\n", ended_count,
                sender_total);
    }
    return complete && fifo_errors == 0 && foreign_messages == 0 ? 0 : 1;
}
