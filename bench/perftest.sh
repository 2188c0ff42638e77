# shellcheck shell=bash
# perftest baselines for the benchmark scripts, sourced inside the Soft-RoCE device's
# reach (RCPG_RDMA_DEV, RCPG_RDMA_ADDR set by scripts/softroce.sh).
#
#   perftest_pair TOOL SIZE ITERS   prints the client's output of ib_write_bw / ib_write_lat
#   retry CMD...                    runs CMD until it succeeds (40 tries)
# Uses and advances the caller's $port; needs $WORK for scratch files.

# A server has no ready signal: retry the client until it connects.
retry() {
    local _
    for _ in $(seq 40); do
        if timeout 120 "$@"; then return 0; fi
        sleep 0.25
    done
    return 1
}

# perftest's client can crash on a connection its server refused (seen with perftest 4.5
# on rxe), which can leave that server unusable: a failed pair is started again, on a
# new port, a few times.
perftest_pair() {
    local tool=$1 size=$2 iters=$3 attempt
    for attempt in 1 2 3; do
        port=$((port + 1))
        local out=$WORK/$tool.$port
        local args=(-R -d "$RCPG_RDMA_DEV" -p "$port" -s "$size" -n "$iters" -F)
        [[ $tool == ib_write_bw ]] && args+=(--report_gbits)
        timeout 120 "$tool" "${args[@]}" >"$out.server" 2>&1 &
        local server=$!
        if retry "$tool" "${args[@]}" "$RCPG_RDMA_ADDR" >"$out" 2>&1; then
            wait "$server" || true
            cat "$out"
            return 0
        fi
        kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true
        echo "perftest: $tool failed (attempt $attempt); retrying on a new port" >&2
    done
    return 1
}
