/*
 * A CPG program as users write them: only corosync's API, built against corosync's own
 * header. The drop-in tests build it twice, against Debian's libcpg.so.4 (then run with
 * LD_LIBRARY_PATH pointing at rcpg's build) and against rcpg's library, and run it
 * against rcpgd. It exits 0 only if every step behaves as corosync documents.
 *
 * With $EXPECT_LIBCPG_DIR set, it also checks that the libcpg.so.4 it runs with is the one
 * in that directory (so a pass cannot come from the wrong library).
 */
#define _GNU_SOURCE
#include <corosync/cpg.h>

#include <dlfcn.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "dropin_client: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

static int confchgs, totem_confchgs;
static uint64_t delivered, delivered_bytes;
static unsigned char last_first_byte;

static void deliver(cpg_handle_t h, const struct cpg_name *g, uint32_t nodeid, uint32_t pid, void *msg, size_t len)
{
    (void)h; (void)g; (void)nodeid;
    CHECK(pid == (uint32_t)getpid());
    if (len > 0) {
        unsigned char *bytes = msg;
        last_first_byte = bytes[0];
        bytes[0] ^= 0xff; /* callbacks may modify the message in place */
    }
    delivered++;
    delivered_bytes += len;
}

static void confchg(cpg_handle_t h, const struct cpg_name *g, const struct cpg_address *members, size_t n_members,
                    const struct cpg_address *left, size_t n_left, const struct cpg_address *joined, size_t n_joined)
{
    (void)h; (void)g; (void)members; (void)left; (void)joined;
    confchgs++;
    if (confchgs == 1) {
        CHECK(n_joined == 1 && joined[0].reason == CPG_REASON_JOIN && n_members == 1 && n_left == 0);
    }
}

static void totem(cpg_handle_t h, struct cpg_ring_id ring, uint32_t n, const uint32_t *members)
{
    (void)h; (void)ring;
    CHECK(n >= 1 && members != NULL);
    totem_confchgs++;
}

static void check_library_origin(void)
{
    const char *expected = getenv("EXPECT_LIBCPG_DIR");
    if (expected == NULL) {
        return;
    }
    Dl_info info;
    CHECK(dladdr((void *)cpg_initialize, &info) != 0);
    char real_lib[PATH_MAX], real_dir[PATH_MAX];
    CHECK(realpath(info.dli_fname, real_lib) != NULL);
    CHECK(realpath(expected, real_dir) != NULL);
    if (strncmp(real_lib, real_dir, strlen(real_dir)) != 0) {
        fprintf(stderr, "dropin_client: libcpg is %s, expected one in %s\n", real_lib, real_dir);
        exit(1);
    }
}

int main(void)
{
    check_library_origin();
    cpg_model_v1_data_t model = {CPG_MODEL_V1, deliver, confchg, totem, CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF};
    cpg_handle_t handle;
    CHECK(cpg_model_initialize(&handle, CPG_MODEL_V1, (cpg_model_data_t *)&model, &model) == CS_OK);
    void *context = NULL;
    CHECK(cpg_context_get(handle, &context) == CS_OK && context == &model);
    int fd = -1, fd_again = -2;
    CHECK(cpg_fd_get(handle, &fd) == CS_OK && cpg_fd_get(handle, &fd_again) == CS_OK && fd == fd_again);
    uint32_t atomic = 0;
    CHECK(cpg_max_atomic_msgsize_get(handle, &atomic) == CS_OK && atomic >= 1000000);
    unsigned int nodeid = 0;
    CHECK(cpg_local_get(handle, &nodeid) == CS_OK && nodeid != 0);

    struct cpg_name group;
    strcpy(group.value, "dropin");
    group.length = (uint32_t)strlen(group.value) + 1; /* counting the NUL, as Pacemaker does */
    CHECK(cpg_join(handle, &group) == CS_OK);
    CHECK(cpg_join(handle, &group) == CS_ERR_EXIST);

    /* Own join confchg, then the initial totem confchg. */
    struct pollfd pfd = {fd, POLLIN, 0};
    CHECK(poll(&pfd, 1, 5000) == 1);
    while (confchgs == 0 || totem_confchgs == 0) {
        CHECK(cpg_dispatch(handle, CS_DISPATCH_ONE) == CS_OK);
    }

    const int count = 1000;
    char payload[256];
    for (int i = 0; i < count; i++) {
        memset(payload, i & 0xff, sizeof(payload));
        struct iovec iov[2] = {{payload, 100}, {payload + 100, 156}};
        cs_error_t rc;
        while ((rc = cpg_mcast_joined(handle, CPG_TYPE_AGREED, iov, 2)) == CS_ERR_TRY_AGAIN) {
            cpg_dispatch(handle, CS_DISPATCH_ALL);
        }
        CHECK(rc == CS_OK);
    }
    while (delivered < (uint64_t)count) {
        CHECK(poll(&pfd, 1, 5000) == 1);
        CHECK(cpg_dispatch(handle, CS_DISPATCH_ALL) == CS_OK);
    }
    CHECK(delivered_bytes == (uint64_t)count * 256 && last_first_byte == ((count - 1) & 0xff));

    /* Zero-copy buffer, reused right after the call returns. */
    void *zcb = NULL;
    CHECK(cpg_zcb_alloc(handle, 5000, &zcb) == CS_OK && zcb != NULL);
    memset(zcb, 0x5a, 5000);
    CHECK(cpg_zcb_mcast_joined(handle, CPG_TYPE_AGREED, zcb, 5000) == CS_OK);
    memset(zcb, 0, 5000);
    while (delivered < (uint64_t)count + 1) {
        CHECK(cpg_dispatch(handle, CS_DISPATCH_ONE) == CS_OK);
    }
    CHECK(last_first_byte == 0x5a);
    CHECK(cpg_zcb_free(handle, zcb) == CS_OK);

    struct cpg_address members[CPG_MEMBERS_MAX];
    int n_members = CPG_MEMBERS_MAX;
    CHECK(cpg_membership_get(handle, &group, members, &n_members) == CS_OK && n_members == 1);
    CHECK(members[0].pid == (uint32_t)getpid());

    cpg_iteration_handle_t iteration;
    struct cpg_iteration_description_t description;
    CHECK(cpg_iteration_initialize(handle, CPG_ITERATION_ALL, NULL, &iteration) == CS_OK);
    CHECK(cpg_iteration_next(iteration, &description) == CS_OK && description.pid == (uint32_t)getpid());
    CHECK(cpg_iteration_next(iteration, &description) == CS_ERR_NO_SECTIONS);
    CHECK(cpg_iteration_finalize(iteration) == CS_OK);

    cpg_flow_control_state_t flow;
    CHECK(cpg_flow_control_state_get(handle, &flow) == CS_OK);

    CHECK(cpg_leave(handle, &group) == CS_OK);
    while (confchgs < 2) {
        CHECK(cpg_dispatch(handle, CS_DISPATCH_ONE) == CS_OK);
    }
    CHECK(cpg_finalize(handle) == CS_OK);
    CHECK(cpg_finalize(handle) == CS_ERR_BAD_HANDLE);
    CHECK(strcmp(cs_strerror(CS_OK), "success") == 0);
    printf("dropin_client: ok\n");
    return 0;
}
