#!/usr/bin/env bash
# Markdown report of a bench/run.sh result directory (raw.csv, perftest.csv,
# context.txt): a table per workload with medians over rounds, rcpg beside corosync and
# beside the device, then the checks. Exit 1 when a check of rcpg failed.
#
#   bench/report.sh DIR
set -euo pipefail

dir=${1:?usage: report.sh DIR}
raw=$dir/raw.csv
perf=$dir/perftest.csv
[ -f "$raw" ] || { echo "report.sh: no $raw" >&2; exit 1; }

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "–"; else printf "%.2f", a / b }'; }
# A small fraction, in two significant digits.
fraction() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "–"; else printf "%.2g", a / b }'; }
or_dash() { if [ -n "$1" ]; then printf '%s' "$1"; else printf '–'; fi; }
rate() {
    case $1 in
    '') printf '–' ;;
    *[!0-9.]*) printf '%s' "$1" ;;
    *) printf '%.0f' "$1" ;;
    esac
}
# Whether run.sh left the cell out by design (not-run.csv: system,nodes,workload,size,round,why).
not_run() { [ -f "$dir/not-run.csv" ] && grep -q "^$1,$2,$3,$4," "$dir/not-run.csv"; }

rounds=$(awk -F, 'NR > 1 { print $5 }' "$raw" | sort -un | wc -l)
sender_node=$(sed -n 's/^sender of the one-sender workloads: node //p' "$dir/context.txt" 2>/dev/null)
sender_node=${sender_node:-2}
echo "# rcpg beside corosync and the device: ordered multicast over Soft-RoCE"
echo
sed 's/^/    /' "$dir/context.txt" 2>/dev/null || true
echo
echo "Medians over $rounds round(s). Every client is the same source (bench/cpg_cluster_bench.c) built"
echo "against rcpg's libcpg and against corosync's; \"–\": not measured (or, on one node, no RDMA to"
echo "compare with). rcpg's sequencer is node 1."
echo "Plots: plots/throughput-*.png (msg/s and MB/s against message size), plots/latency-*.png"
echo "(distribution of the round trip)."

flood_table() {  # workload, title, what the extra column compares with (or "")
    local workload=$1 title=$2 versus=$3 footnote=
    [ -n "$(cells "$workload")" ] || return 0
    echo
    echo "## $title ($workload)"
    echo
    echo "rcpg's sequencer writes each message into every other node's ring, and a sender that"
    echo "is not the sequencer first writes it to the sequencer. \"device MB/s\" counts every such"
    echo "crossing of the device: under Soft-RoCE each costs the same CPUs, so that is the figure"
    echo "to hold against ib_write_bw, one stream on the same device."
    echo
    local extra_head='' extra_rule=''
    if [ -n "$versus" ]; then
        extra_head=" rcpg / rcpg $versus |"
        extra_rule="---:|"
    fi
    echo "| nodes | size B | rcpg msg/s | rcpg MB/s | corosync msg/s | corosync MB/s | rcpg / corosync | rcpg device MB/s | ib_write_bw MB/s | rcpg / ib_write_bw (receiver) | (device) |$extra_head"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|$extra_rule"
    local nodes size
    while read -r nodes size; do
        local r_rate r_mb c_rate c_mb gbps wire_mb crossings device_mb extra=''
        r_rate=$(receiver_figure rcpg "$nodes" "$workload" "$size" 8)
        r_mb=$(receiver_figure rcpg "$nodes" "$workload" "$size" 9)
        c_rate=$(receiver_figure corosync "$nodes" "$workload" "$size" 8)
        c_mb=$(receiver_figure corosync "$nodes" "$workload" "$size" 9)
        if [ -z "$c_rate" ] && not_run corosync "$nodes" "$workload" "$size"; then
            c_rate="not run†" c_mb="†"
            footnote=1
        fi
        gbps=$(perftest_figure ib_write_bw "$size")
        [ "$nodes" -gt 1 ] || gbps=  # one node: no RDMA to compare with
        wire_mb=$(awk -v g="$gbps" 'BEGIN { if (g != "") printf "%.1f", g * 1000 / 8 }')
        crossings=$((nodes - 1))
        [ "$sender_node" -eq 1 ] || [ "$nodes" -lt "$sender_node" ] || crossings=$nodes
        device_mb=$(awk -v m="$r_mb" -v c="$crossings" 'BEGIN { if (m != "" && c > 0) printf "%.1f", m * c }')
        if [ -n "$versus" ]; then
            extra=" $(ratio "$r_rate" "$(receiver_figure rcpg "$nodes" "$versus" "$size" 8)") |"
        fi
        echo "| $nodes | $size | $(rate "$r_rate") | $(or_dash "$r_mb") | $(rate "$c_rate") | $(or_dash "$c_mb") | $(ratio "$r_rate" "$c_rate") | $(or_dash "$device_mb") | $(or_dash "$wire_mb") | $(ratio "$r_mb" "$wire_mb") | $(ratio "$device_mb" "$wire_mb") |$extra"
    done < <(cells "$workload")
    if [ -n "${footnote:-}" ]; then
        echo
        case $workload in
        evs-*)
            echo "† Not run: corosync 3.1.7 has no EVS (2.0 dropped the service and libevs)." ;;
        *)
            echo "† Not run: corosync 3.1.7 accepts a zero-copy message of 1 MiB with CS_OK and then"
            echo "cannot hand it to any client; its log says \"qb_ipcs_event_send: Message too long (90)\""
            echo "(the delivery event does not fit the client's 1 MiB event buffer)." ;;
        esac
    fi
}

latency_table() {  # workload, title, the workload of the extra column (or "")
    local workload=$1 title=$2 versus=${3:-}
    [ -n "$(cells "$workload")" ] || return 0
    echo
    echo "## $title ($workload), µs"
    echo
    echo "From the sender's call to its own delivery, one message in flight, which for an rcpg"
    echo "sender on a node other than the sequencer includes the trip to it and back."
    echo "ib_write_lat -R 64 B: $(or_dash "$(perftest_figure ib_write_lat 64)") µs."
    echo
    echo "\"ib_write_lat / rcpg\": the device's one-way latency as a fraction of rcpg's ordered round trip."
    echo
    local extra_head='' extra_rule=''
    if [ -n "$versus" ]; then
        extra_head=" rcpg $versus / rcpg (p50) |"
        extra_rule="---:|"
    fi
    echo "| nodes | size B | rcpg p50 | rcpg p99 | rcpg p99.9 | rcpg max | corosync p50 | corosync p99 | corosync p99.9 | corosync max | corosync / rcpg (p50) | ib_write_lat / rcpg (p50) |$extra_head"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|$extra_rule"
    local nodes size r50 r99 r999 rmax c50 c99 c999 cmax device_lat
    device_lat=$(perftest_figure ib_write_lat 64)
    while read -r nodes size; do
        read -r r50 r99 r999 rmax <<<"$(for column in 10 11 12 13; do or_dash "$(figure rcpg "$nodes" "$workload" "$size" 1 $column)"; printf ' '; done)"
        read -r c50 c99 c999 cmax <<<"$(for column in 10 11 12 13; do or_dash "$(figure corosync "$nodes" "$workload" "$size" 1 $column)"; printf ' '; done)"
        local extra=''
        if [ -n "$versus" ]; then
            extra=" $(ratio "$(figure rcpg "$nodes" "$versus" "$size" 1 10)" "${r50/–/}") |"
        fi
        echo "| $nodes | $size | $r50 | $r99 | $r999 | $rmax | $c50 | $c99 | $c999 | $cmax | $(ratio "${c50/–/}" "${r50/–/}") | $(fraction "$([ "$nodes" -eq 1 ] || echo "$device_lat")" "${r50/–/}") |$extra"
    done < <(cells "$workload")
}

flood_table flood-1 "One sender, every other node receives" ""
flood_table flood-1-zcb "One sender with the zero-copy API" flood-1
flood_table flood-1-safe "One sender, CPG_TYPE_SAFE (corosync delivers it as AGREED)" flood-1

if [ -n "$(cells flood-all)" ]; then
    echo
    echo "## Every node sends, every process receives everything (flood-all)"
    echo
    echo "| nodes | size B | rcpg msg/s per process | rcpg MB/s | corosync msg/s per process | corosync MB/s | rcpg / corosync | rcpg / ib_write_bw |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
    while read -r nodes size; do
        r_rate=$(figure rcpg "$nodes" flood-all "$size" "" 8)
        r_mb=$(figure rcpg "$nodes" flood-all "$size" "" 9)
        c_rate=$(figure corosync "$nodes" flood-all "$size" "" 8)
        c_mb=$(figure corosync "$nodes" flood-all "$size" "" 9)
        wire_mb=
        [ "$nodes" -eq 1 ] || wire_mb=$(awk -v g="$(perftest_figure ib_write_bw "$size")" 'BEGIN { if (g != "") printf "%.1f", g * 1000 / 8 }')
        echo "| $nodes | $size | $(rate "$r_rate") | $(or_dash "$r_mb") | $(rate "$c_rate") | $(or_dash "$c_mb") | $(ratio "$r_rate" "$c_rate") | $(ratio "$r_mb" "$wire_mb") |"
    done < <(cells flood-all)
fi

latency_table latency "Ordered round trip"
latency_table latency-safe "Ordered round trip, CPG_TYPE_SAFE (corosync: AGREED)"
flood_table evs-flood-1 "One sender through EVS (libevs) on the same daemons; corosync 3.1.7 has no EVS" flood-1
latency_table evs-latency "Ordered round trip through EVS (libevs); corosync 3.1.7 has no EVS" latency

if [ -n "$(cells churn)" ]; then
    echo
    echo "## One sender while processes leave and join (churn)"
    echo
    echo "One process per node leaves and joins the group over and over while node $sender_node floods it:"
    echo "every membership change is a confchg in the same order as the messages. joins/s: leave-and-join"
    echo "cycles of all of them together; join µs: from cpg_join to the process's own join confchg."
    echo
    echo "| nodes | size B | rcpg msg/s | rcpg joins/s | rcpg join p50 µs | rcpg join p99 µs | corosync msg/s | corosync joins/s | corosync join p50 µs | corosync join p99 µs | rcpg / corosync (msg/s) | (joins/s) |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    while read -r nodes size; do
        r_rate=$(receiver_figure rcpg "$nodes" churn "$size" 8)
        r_joins=$(figure rcpg "$nodes" churn "$size" 2 8 sum)
        r_j50=$(figure rcpg "$nodes" churn "$size" 2 10)
        r_j99=$(figure rcpg "$nodes" churn "$size" 2 11)
        c_rate=$(receiver_figure corosync "$nodes" churn "$size" 8)
        c_joins=$(figure corosync "$nodes" churn "$size" 2 8 sum)
        c_j50=$(figure corosync "$nodes" churn "$size" 2 10)
        c_j99=$(figure corosync "$nodes" churn "$size" 2 11)
        echo "| $nodes | $size | $(rate "$r_rate") | $(rate "$r_joins") | $(or_dash "$r_j50") | $(or_dash "$r_j99") | $(rate "$c_rate") | $(rate "$c_joins") | $(or_dash "$c_j50") | $(or_dash "$c_j99") | $(ratio "$r_rate" "$c_rate") | $(ratio "$r_joins" "$c_joins") |"
    done < <(cells churn)
fi

if [ -s "$perf" ] && [ "$(wc -l <"$perf")" -gt 1 ]; then
    echo
    echo "## The device alone (perftest, -R: connection through rdma_cm)"
    echo
    echo "| size B | ib_write_bw Gb/s | MB/s |"
    echo "|---:|---:|---:|"
    while read -r size; do
        gbps=$(perftest_figure ib_write_bw "$size")
        echo "| $size | $(or_dash "$gbps") | $(or_dash "$(awk -v g="$gbps" 'BEGIN { if (g != "") printf "%.1f", g * 1000 / 8 }')") |"
    done < <(awk -F, 'NR > 1 && $1 == "ib_write_bw" { print $2 }' "$perf" | sort -un)
    echo
    echo "ib_write_lat 64 B, typical: $(or_dash "$(perftest_figure ib_write_lat 64)") µs."
fi

echo
echo "## Checks"
echo
# Every cell of the plan ran (for each system and cluster size that ran at all), and in
# every cell the processes that received the whole stream agree on one order, complete,
# per-sender FIFO; churners only have to finish.
plan_workloads=$(sed -n 's/^workloads: \([^;]*\);.*/\1/p' "$dir/context.txt" 2>/dev/null)
inputs=("$raw")
[ -f "$dir/not-run.csv" ] && inputs=("$dir/not-run.csv" "$raw")
plan_sizes=$(sed -n 's/^workloads: [^;]*; sizes: \([0-9 ]*\) B;.*/\1/p' "$dir/context.txt" 2>/dev/null)
awk -F, -v plan_w="$plan_workloads" -v plan_s="$plan_sizes" '
    FILENAME ~ /not-run.csv$/ {
        by_design[$1 " " $2 " " $5 " " $3 " " $4] = $6
        cluster[$1 " " $2 " " $5] = 1
        next
    }
    FNR > 1 {
        key = $1 " " $2 " nodes " $3 " " $4 " B round " $5
        cluster[$1 " " $2 " " $5] = 1
        present[$1 " " $2 " " $5 " " $3 " " $4] = 1
        if (!(key in seen)) { seen[key] = 1; order[++n] = key }
        if ($6 == 2) {
            if ($15 != 1) incomplete[key] = 1
            rows++
            next
        }
        if (!(key in digest)) digest[key] = $14
        if ($14 != digest[key]) mismatch[key] = 1
        if ($15 != 1 || $16 != 0) incomplete[key] = 1
        if ($8 + 0 <= 0) nothing[key] = 1
        rows++
    }
    # What goes wrong with corosync is listed but fails nothing: the suite checks rcpg.
    function problem(k, what) {
        print "- " what ": " k
        if (k ~ /^rcpg /) bad++; else corosync_bad++
    }
    END {
        bad = 0
        for (i = 1; i <= n; i++) {
            k = order[i]
            if (k in mismatch) problem(k, "order differs between processes")
            if (k in incomplete) problem(k, "incomplete or FIFO violated")
            if (k in nothing) problem(k, "a process reports no rate")
        }
        nw = split(plan_w, ws, " "); ns = split(plan_s, ss, " ")
        for (c in cluster) {
            for (i = 1; i <= nw; i++) for (j = 1; j <= ns; j++) {
                split(c, part, " ")
                if ((c " " ws[i] " " ss[j]) in by_design) {
                    print "- not run, by design (" by_design[c " " ws[i] " " ss[j]] "): " part[1] " " part[2] " nodes " ws[i] " " ss[j] " B round " part[3]
                } else if (!((c " " ws[i] " " ss[j]) in present)) {
                    problem(part[1] " " part[2] " nodes " ws[i] " " ss[j] " B round " part[3], "did not run")
                }
            }
        }
        printf "- %d client processes in %d runs; %s\n", rows, n,
               bad ? "rcpg: see above" : "every run of rcpg delivered one identical order, per-sender FIFO, complete"
        if (corosync_bad) printf "- corosync: %d problem(s) listed above (they do not fail the run)\n", corosync_bad
        exit bad ? 1 : 0
    }' "${inputs[@]}"
