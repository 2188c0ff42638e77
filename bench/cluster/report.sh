#!/usr/bin/env bash
# Markdown report of a bench/cluster/run.sh result directory (raw.csv, perftest.csv,
# context.txt): medians over rounds, rcpg beside corosync and beside ib_write_bw.
#
#   bench/cluster/report.sh DIR
set -euo pipefail

dir=${1:?usage: report.sh DIR}
raw=$dir/raw.csv
perf=$dir/perftest.csv
[ -f "$raw" ] || { echo "report.sh: no $raw" >&2; exit 1; }

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Column COLUMN of the rows of one cell and round; SENDER: 0 receivers, 1 senders, "" all.
column_of() {
    local system=$1 nodes=$2 workload=$3 size=$4 round=$5 sender=$6 column=$7
    awk -F, -v s="$system" -v n="$nodes" -v w="$workload" -v b="$size" -v r="$round" -v snd="$sender" -v c="$column" \
        'NR > 1 && $1 == s && $2 == n && $3 == w && $4 == b && $5 == r && (snd == "" || $6 == snd) && $c != "" { print $c }' "$raw"
}

# Median over rounds of the per-round median over the chosen processes.
figure() {
    local system=$1 nodes=$2 workload=$3 size=$4 sender=$5 column=$6 round
    for round in $(awk -F, 'NR > 1 { print $5 }' "$raw" | sort -un); do
        column_of "$system" "$nodes" "$workload" "$size" "$round" "$sender" "$column" | median
    done | { grep -v '^$' || true; } | median
}

perftest_figure() {  # tool size -> median over rounds
    [ -f "$perf" ] || return 0
    awk -F, -v t="$1" -v b="$2" 'NR > 1 && $1 == t && $2 == b && $4 != "" { print $4 }' "$perf" | median
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "–"; else printf "%.2f", a / b }'; }
or_dash() { if [ -n "$1" ]; then printf '%s' "$1"; else printf '–'; fi; }
rate() { if [ -n "$1" ]; then printf '%.0f' "$1"; else printf '–'; fi; }

cells() {  # workload -> "nodes size" pairs present, sorted
    awk -F, -v w="$1" 'NR > 1 && $3 == w { print $2, $4 }' "$raw" | sort -u -k1,1n -k2,2n
}

rounds=$(awk -F, 'NR > 1 { print $5 }' "$raw" | sort -un | wc -l)
sender_node=$(sed -n 's/^sender of flood-1 and latency: node //p' "$dir/context.txt" 2>/dev/null)
sender_node=${sender_node:-2}
echo "# rcpg beside corosync and perftest: ordered multicast over Soft-RoCE"
echo
sed 's/^/    /' "$dir/context.txt" 2>/dev/null || true
echo
echo "Medians over $rounds round(s). Every client is the same source (bench/cpg_cluster_bench.c) built"
echo "against rcpg's libcpg and against corosync's. rcpg's sequencer is node 1."

if [ -n "$(cells flood-1)" ]; then
    echo
    echo "## One sender, every other node receives (flood-1)"
    echo
    echo "rcpg's sequencer writes each message into every other node's ring, and a sender that"
    echo "is not the sequencer first writes it to the sequencer. \"device MB/s\" counts every such"
    echo "crossing of the device: under Soft-RoCE each costs the same CPUs, so that is the figure"
    echo "to hold against ib_write_bw, one stream on the same device."
    echo
    echo "| nodes | size B | rcpg msg/s | rcpg MB/s | corosync msg/s | corosync MB/s | rcpg / corosync | rcpg device MB/s | ib_write_bw MB/s | rcpg / ib_write_bw (receiver) | (device) |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    while read -r nodes size; do
        r_rate=$(figure rcpg "$nodes" flood-1 "$size" 0 8)
        r_mb=$(figure rcpg "$nodes" flood-1 "$size" 0 9)
        c_rate=$(figure corosync "$nodes" flood-1 "$size" 0 8)
        c_mb=$(figure corosync "$nodes" flood-1 "$size" 0 9)
        gbps=$(perftest_figure ib_write_bw "$size")
        wire_mb=$(awk -v g="$gbps" 'BEGIN { if (g != "") printf "%.1f", g * 1000 / 8 }')
        crossings=$((nodes - 1))
        [ "$sender_node" -eq 1 ] || crossings=$nodes
        device_mb=$(awk -v m="$r_mb" -v c="$crossings" 'BEGIN { if (m != "") printf "%.1f", m * c }')
        echo "| $nodes | $size | $(rate "$r_rate") | $(or_dash "$r_mb") | $(rate "$c_rate") | $(or_dash "$c_mb") | $(ratio "$r_rate" "$c_rate") | $(or_dash "$device_mb") | $(or_dash "$wire_mb") | $(ratio "$r_mb" "$wire_mb") | $(ratio "$device_mb" "$wire_mb") |"
    done < <(cells flood-1)
fi

if [ -n "$(cells flood-all)" ]; then
    echo
    echo "## Every node sends, every process receives everything (flood-all)"
    echo
    echo "| nodes | size B | rcpg msg/s per process | rcpg MB/s | corosync msg/s per process | corosync MB/s | rcpg / corosync |"
    echo "|---:|---:|---:|---:|---:|---:|---:|"
    while read -r nodes size; do
        r_rate=$(figure rcpg "$nodes" flood-all "$size" "" 8)
        r_mb=$(figure rcpg "$nodes" flood-all "$size" "" 9)
        c_rate=$(figure corosync "$nodes" flood-all "$size" "" 8)
        c_mb=$(figure corosync "$nodes" flood-all "$size" "" 9)
        echo "| $nodes | $size | $(rate "$r_rate") | $(or_dash "$r_mb") | $(rate "$c_rate") | $(or_dash "$c_mb") | $(ratio "$r_rate" "$c_rate") |"
    done < <(cells flood-all)
fi

if [ -n "$(cells latency)" ]; then
    echo
    echo "## Ordered round trip, one message in flight (latency), µs"
    echo
    echo "From the sender's call to its own delivery, which for an rcpg sender on a node other"
    echo "than the sequencer includes the trip to it and back."
    echo "ib_write_lat -R 64 B: $(or_dash "$(perftest_figure ib_write_lat 64)") µs."
    echo
    echo "| nodes | size B | rcpg p50 | rcpg p99 | rcpg p99.9 | corosync p50 | corosync p99 | corosync p99.9 | corosync / rcpg (p50) |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    while read -r nodes size; do
        read -r r50 r99 r999 <<<"$(for column in 10 11 12; do or_dash "$(figure rcpg "$nodes" latency "$size" 1 $column)"; printf ' '; done)"
        read -r c50 c99 c999 <<<"$(for column in 10 11 12; do or_dash "$(figure corosync "$nodes" latency "$size" 1 $column)"; printf ' '; done)"
        echo "| $nodes | $size | $r50 | $r99 | $r999 | $c50 | $c99 | $c999 | $(ratio "${c50/–/}" "${r50/–/}") |"
    done < <(cells latency)
fi

echo
echo "## Checks"
echo
awk -F, 'NR > 1 {
        key = $1 " " $2 " nodes " $3 " " $4 " B round " $5
        if (!(key in digest)) { digest[key] = $14; order[++n] = key }
        if ($14 != digest[key]) mismatch[key] = 1
        if ($15 != 1 || $16 != 0) incomplete[key] = 1
        rows++
    }
    END {
        bad = 0
        for (i = 1; i <= n; i++) {
            k = order[i]
            if (k in mismatch) { print "- order differs between processes: " k; bad++ }
            if (k in incomplete) { print "- incomplete or FIFO violated: " k; bad++ }
        }
        printf "- %d client processes in %d runs; %s\n", rows, n,
               bad ? "see above" : "every run delivered one identical order, per-sender FIFO, complete"
    }' "$raw"
