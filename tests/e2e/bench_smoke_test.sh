#!/usr/bin/env bash
# The benchmark suite's smoke run (bench/run.sh --smoke: Soft-RoCE, a 2-node rcpg and a
# 2-node corosync cluster, every workload once at 1 KiB) works end to end: it exits 0
# (every workload of rcpg ran and every run of it delivered one order, complete, FIFO),
# and its output is sane: a table per workload in report.md, rows of both systems for
# every workload, a positive rate and a complete run in every row of rcpg in raw.csv and
# a measured rate of corosync in every workload, ib_write_bw and ib_write_lat figures,
# the context names the commit and the device, and the plots are PNG files. Figures are
# never compared with anything.
#
#   tests/e2e/bench_smoke_test.sh BUILD_DIR OUT_DIR
set -uo pipefail

build=${1:?usage: bench_smoke_test.sh BUILD_DIR OUT_DIR}
out=${2:?usage: bench_smoke_test.sh BUILD_DIR OUT_DIR}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
rm -rf "$out"
"$root/bench/run.sh" --smoke --build "$build" --out "$out"
status=$?
[ "$status" -ne 77 ] || exit 77
failures=0
fail() { echo "bench_smoke_test: FAIL: $*"; failures=$((failures + 1)); }

[ "$status" -eq 0 ] || fail "bench/run.sh --smoke exited with $status"
report=$out/report.md raw=$out/raw.csv
for workload in flood-1 flood-1-zcb flood-1-safe flood-all latency latency-safe churn evs-flood-1 evs-latency; do
    grep -q "^## .*($workload)" "$report" 2>/dev/null || fail "report.md has no table for $workload"
    systems="rcpg corosync"
    [ "${workload#evs-}" = "$workload" ] || systems=rcpg  # corosync 3 has no EVS
    for system in $systems; do
        rows=$(awk -F, -v s="$system" -v w="$workload" 'NR > 1 && $1 == s && $3 == w' "$raw" 2>/dev/null | wc -l)
        [ "$rows" -ge 2 ] || fail "$system $workload: $rows client rows in raw.csv"
    done
done
bad_rows=$(awk -F, 'NR > 1 && $1 == "rcpg" && !($8 + 0 > 0 && $15 == 1)' "$raw" 2>/dev/null | wc -l)
[ "$bad_rows" -eq 0 ] || fail "$bad_rows rows of rcpg in raw.csv without a positive rate or not complete"
# corosync 3.1.7 now and then loses a process's view of the group under churn (a receiver
# that never sees more than itself); the report lists that as corosync's failure. Here
# every workload must still have measured corosync: some process with a positive rate.
for workload in flood-1 flood-1-zcb flood-1-safe flood-all latency latency-safe churn; do
    measured=$(awk -F, -v w="$workload" 'NR > 1 && $1 == "corosync" && $3 == w && $8 + 0 > 0' "$raw" 2>/dev/null | wc -l)
    [ "$measured" -gt 0 ] || fail "corosync $workload: no process measured a rate"
done
awk -F, 'NR > 1 && $1 == "corosync" && !($8 + 0 > 0 && $15 == 1) {
        print "bench_smoke_test: note: corosync " $3 " node " $7 ": incomplete (listed in the report)" }' "$raw" 2>/dev/null
grep -Eq '^ib_write_bw,1024,1,[0-9.]+$' "$out/perftest.csv" 2>/dev/null || fail "no ib_write_bw figure"
grep -Eq '^ib_write_lat,64,1,[0-9.]+$' "$out/perftest.csv" 2>/dev/null || fail "no ib_write_lat figure"
grep -q '^commit ' "$out/context.txt" 2>/dev/null || fail "context.txt does not name the commit"
grep -q '^device ' "$out/context.txt" 2>/dev/null || fail "context.txt does not name the device"
for plot in throughput-flood-1 throughput-flood-all latency-latency-1024 join-latency-1024; do
    head -c 8 "$out/plots/$plot.png" 2>/dev/null | grep -q 'PNG' || fail "plots/$plot.png is missing or not a PNG"
done
if [ "$failures" -eq 0 ]; then
    echo "bench_smoke_test: PASS: every workload ran on rcpg and corosync; report, CSV, device figures and plots are there"
    exit 0
fi
exit 1
