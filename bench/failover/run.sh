#!/usr/bin/env bash
# How long a failure takes to heal: runs the 3-node failover scenario of
# tests/e2e/cluster/cluster_failover_test.sh (clients sending on every node; node 3
# killed with SIGKILL, restarted; then node 1, the sequencer, killed) several times in
# one Soft-RoCE session, a fresh cluster each time, and reports medians. Times are from
# each SIGKILL, on one clock, to what node 2's clients see; the daemons' own figure is
# rcpgd's last_failover_ms (from noticing the loss to the new view).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
SELF=$ROOT/bench/failover/run.sh

usage() {
    cat <<'EOF'
Usage: bench/failover/run.sh [OPTIONS]

Options:
  --runs N       fresh 3-node clusters, one failover scenario each (default 5)
  --out DIR      where results go (default bench-results/failover-<time>)
  --build DIR    build directory with bin/ and tests/ (default build)
  -h, --help     this text

Output: DIR/runs.csv (one row per run, the columns below), DIR/report.md (median, min
and max of each), DIR/context.txt, and every run's daemon logs and client files under
DIR/logs/run-<k>. A run takes about a minute under TCG. Needs root (Soft-RoCE) and a
build (scripts/build.sh).

Columns, in ms: member_gone (SIGKILL of node 3 until its rcpgd is gone: the kernel
tearing down its RDMA resources), member_nodedown_first (until the first of node 2's
clients holds NODEDOWN for node 3's processes), member_view_last (until the last of them
holds the view without node 3); the same three for the sequencer, node 1; and
rcpgd_failover_node2/3 (rcpgd's last_failover_ms at the two survivors).
EOF
}

runs=5
out=
build=$ROOT/build
columns="member_gone_ms member_nodedown_first_ms member_view_last_ms sequencer_gone_ms sequencer_nodedown_first_ms sequencer_view_last_ms rcpgd_failover_ms_node2 rcpgd_failover_ms_node3"

if [ "${1:-}" = --inside ]; then
    # In the device's machine: one fresh cluster per run (the environment comes from below).
    : "${RUNS:?}" "${OUT:?}" "${BUILD:?}" "${COLUMNS:?}"
    for run in $(seq "$RUNS"); do
        echo "failover run $run of $RUNS"
        dir=$OUT/logs/run-$run
        status=0
        "$ROOT/scripts/cluster.sh" --inside --nodes 3 --port 7451 --bin "$BUILD/bin" --dir "$dir" -- \
            "$ROOT/tests/e2e/cluster/cluster_failover_test.sh" "$BUILD/tests/cluster_failover_client" \
            "$BUILD/bin/rcpg-cpgtool" >"$dir.log" 2>&1 || status=$?
        grep -E "cluster_failover_test: (PASS|FAIL)" "$dir.log" || echo "  run $run: no summary (exit $status)"
        row=$run,$status
        for column in $COLUMNS; do
            row+=,$(sed -n "s/^$column=//p" "$dir/failover/times.kv" 2>/dev/null || true)
        done
        echo "$row" >>"$OUT/runs.csv"
    done
    exit 0
fi

while [ $# -gt 0 ]; do
    case $1 in
    --runs) runs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "failover/run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
case $runs in '' | *[!0-9]* | 0) echo "failover/run.sh: --runs needs a positive number" >&2; exit 2 ;; esac
build=$(cd "$build" && pwd -P)
for program in bin/rcpgd bin/rcpg-cpgtool tests/cluster_failover_client; do
    [ -x "$build/$program" ] || { echo "failover/run.sh: $build/$program missing: build first (scripts/build.sh)" >&2; exit 1; }
done
[ -n "$out" ] || out=$ROOT/bench-results/failover-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out/logs"
out=$(cd "$out" && pwd -P)
{
    echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo '+dirty')"
    echo "host $(hostname), $(nproc) cpus, kernel $(uname -r)"
} | tee "$out/context.txt"
echo "run,exit,${columns// /,}" >"$out/runs.csv"
status=0
"$ROOT/scripts/softroce.sh" run --timeout-s $((300 + 240 * runs)) --rw "$out" --rw "$ROOT" \
    --env RUNS="$runs" --env OUT="$out" --env BUILD="$build" --env COLUMNS="$columns" \
    -- "$SELF" --inside || status=$?

# median, min and max of each column over the runs that passed
{
    echo "# Failover times, 3 nodes ($(sed -n 1p "$out/context.txt"))"
    echo
    echo "$(awk -F, 'NR > 1 && $2 == 0' "$out/runs.csv" | wc -l) of $runs runs passed; medians over those, in ms from the SIGKILL."
    echo
    echo "| figure | median | min | max |"
    echo "|---|---:|---:|---:|"
    index=3
    for column in $columns; do
        awk -F, -v c="$index" 'NR > 1 && $2 == 0 && $c ~ /^[0-9.]+$/ { print $c }' "$out/runs.csv" | sort -g |
            awk -v name="${column%_ms}" '{ v[NR] = $1 }
                END {
                    if (NR == 0) { printf "| %s | n/a | | |\n", name; exit }
                    m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                    printf "| %s | %s | %s | %s |\n", name, m, v[1], v[NR]
                }'
        index=$((index + 1))
    done
} >"$out/report.md"
cat "$out/report.md"
echo "results in $out"
if [ "$status" -eq 0 ] && awk -F, 'NR > 1 && $2 != 0 { bad = 1 } END { exit !bad }' "$out/runs.csv"; then
    echo "failover/run.sh: some runs failed: their logs are in $out/logs" >&2
    status=1
fi
exit "$status"
