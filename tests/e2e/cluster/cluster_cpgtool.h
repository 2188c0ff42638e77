/*
 * A counter or field of a cluster node's rcpgd, as rcpg-cpgtool --kv prints it: what the
 * cluster test programs read to see what a daemon did. Static, in a header: each test
 * program is a single file of its own. The including file defines _GNU_SOURCE first.
 */
#ifndef RCPG_TESTS_E2E_CLUSTER_CPGTOOL_H
#define RCPG_TESTS_E2E_CLUSTER_CPGTOOL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The value of `key` at node `node` (IPC name rcpg-nodeN), or -1 when the tool failed or
 * did not print it. */
static inline long long cpgtool_value(const char *tool, int node, const char *key)
{
    char command[4200];
    snprintf(command, sizeof command, "%s --kv --ipc rcpg-node%d 2>/dev/null", tool, node);
    FILE *pipe = popen(command, "r");
    long long value = -1;
    char line[512];
    const size_t key_length = strlen(key);
    while (pipe != NULL && fgets(line, sizeof line, pipe) != NULL) {
        if (strncmp(line, key, key_length) == 0 && line[key_length] == '=') {
            value = strtoll(line + key_length + 1, NULL, 10);
        }
    }
    if (pipe != NULL) {
        pclose(pipe);
    }
    return value;
}

#endif
