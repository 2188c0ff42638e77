#!/usr/bin/env bash
# PNG plots of a bench/run.sh result directory, with gnuplot (Debian's gnuplot-nox):
#   plots/throughput-<workload>.png  MB/s at a receiver against message size, a line per
#                                    system and cluster size, and ib_write_bw's
#   plots/latency-<workload>-<size>.png  distribution of the sender's round trip (round 1),
#                                    a line per system and cluster size
#   plots/join-latency-<size>.png    churn: distribution of the join latency (node 1's
#                                    churner, round 1)
#
#   bench/plot.sh DIR
set -euo pipefail

dir=${1:?usage: plot.sh DIR}
raw=$dir/raw.csv
perf=$dir/perftest.csv
[ -f "$raw" ] || { echo "plot.sh: no $raw" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot is not installed (scripts/install-deps.sh)" >&2; exit 1; }
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

plots=$dir/plots
data=$plots/data
mkdir -p "$data"
sender_node=$(sed -n 's/^sender of the one-sender workloads: node //p' "$dir/context.txt" 2>/dev/null)
sender_node=${sender_node:-2}

systems_and_sizes() {  # workload -> "system nodes" pairs present
    awk -F, -v w="$1" 'NR > 1 && $3 == w { print $1, $2 }' "$raw" | sort -u -k1,1r -k2,2n
}

# One gnuplot "plot" clause per data file: FILE|TITLE lines on stdin.
plot_clauses() {
    local clauses='' file title
    while IFS='|' read -r file title; do
        clauses+="${clauses:+, }'$file' using 1:2 with linespoints title '$title'"
    done
    echo "$clauses"
}

for workload in flood-1 flood-1-zcb flood-1-safe flood-all churn; do
    [ -n "$(cells "$workload")" ] || continue
    lines=()
    while read -r system nodes; do
        file=$data/throughput-$workload-$system-$nodes.dat
        for size in $(cells "$workload" | awk -v n="$nodes" '$1 == n { print $2 }'); do
            if [ "$workload" = flood-all ]; then
                mb=$(figure "$system" "$nodes" "$workload" "$size" "" 9)
            else
                mb=$(receiver_figure "$system" "$nodes" "$workload" "$size" 9)
            fi
            [ -z "$mb" ] || echo "$size $mb"
        done >"$file"
        [ -s "$file" ] && lines+=("$file|$system, $nodes node$([ "$nodes" -eq 1 ] || echo s)")
    done < <(systems_and_sizes "$workload")
    file=$data/ib_write_bw.dat
    awk -F, 'NR > 1 && $1 == "ib_write_bw" && $4 != "" { print $2 }' "$perf" 2>/dev/null | sort -un | while read -r size; do
        echo "$size $(perftest_figure ib_write_bw "$size" | awk '{ printf "%.1f", $1 * 1000 / 8 }')"
    done >"$file"
    [ -s "$file" ] && lines+=("$file|ib_write_bw (the device, one stream)")
    [ "${#lines[@]}" -gt 0 ] || continue
    gnuplot <<EOF
set terminal pngcairo size 900,560 noenhanced
set output '$plots/throughput-$workload.png'
set title 'Throughput at a receiver: $workload'
set xlabel 'message size (bytes)'
set ylabel 'MB/s'
set logscale xy 2
set format x '%.0b %BB'
set key top left
set grid
plot $(printf '%s\n' "${lines[@]}" | plot_clauses)
EOF
done

for workload in latency latency-safe churn; do
    [ -n "$(cells "$workload")" ] || continue
    for size in $(cells "$workload" | awk '{ print $2 }' | sort -un); do
        lines=()
        while read -r system nodes; do
            if [ "$workload" = churn ]; then
                file=$dir/cells/$system-$nodes-$workload-$size-1.c1.q
            else
                k=$sender_node
                [ "$nodes" -ge "$k" ] || k=1
                file=$dir/cells/$system-$nodes-$workload-$size-1.$k.q
            fi
            if [ -s "$file" ]; then
                awk '{ print $2, $1 }' "$file" >"$data/$workload-$size-$system-$nodes.dat"
                lines+=("$data/$workload-$size-$system-$nodes.dat|$system, $nodes node$([ "$nodes" -eq 1 ] || echo s)")
            fi
        done < <(systems_and_sizes "$workload")
        [ "${#lines[@]}" -gt 0 ] || continue
        if [ "$workload" = churn ]; then
            output=$plots/join-latency-$size.png
            title="Join latency while $size B messages flood the group: cpg_join to own join confchg"
            xlabel='join latency (µs)'
        else
            output=$plots/latency-$workload-$size.png
            title="Ordered round trip, $size B, one message in flight ($workload)"
            xlabel='round trip (µs)'
        fi
        gnuplot <<EOF
set terminal pngcairo size 900,560 noenhanced
set output '$output'
set title '$title'
set xlabel '$xlabel'
set ylabel 'fraction of messages at or below'
set logscale x 10
set yrange [0:1]
set key top left
set grid
plot $(printf '%s\n' "${lines[@]}" | plot_clauses | sed 's/with linespoints/with lines/g')
EOF
    done
done
find "$plots" -maxdepth 1 -name '*.png' -printf 'plot: %p\n' | sort >&2
