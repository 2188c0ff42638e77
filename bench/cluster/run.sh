#!/usr/bin/env bash
# Multi-node ordered multicast: rcpg beside corosync 3.1.7 and beside perftest, on the
# same Soft-RoCE device, in one run.
#
# Every round starts, for each cluster size, an rcpg cluster (scripts/cluster.sh) and a
# corosync cluster (bench/cluster/corosync-cluster.sh: knet, one network namespace per
# node on a bridge) and runs the same client, bench/cpg_cluster_bench.c, built against
# each library, through the same workloads:
#   flood-1    one sender (node 2) sends as fast as flow control allows; every other
#              node has a receiver. Figure: messages/s and MB/s at a receiver.
#   flood-all  one sender on every node, all of them receive everything. Figure:
#              messages/s delivered per process.
#   latency    one sender (node 2) keeps one message in flight; receivers elsewhere.
#              Figure: the sender's ordered round trip, send to own delivery, p50/p99/p99.9.
# ib_write_bw -R at each message size and ib_write_lat -R at 64 B run in every round
# too. The report gives medians over rounds and ratios. Under TCG the absolute figures
# are functional only: compare the ratios, which come from one run on one device.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
SELF=$ROOT/bench/cluster/run.sh

usage() {
    cat <<'EOF'
Usage: bench/cluster/run.sh [OPTIONS]

Options:
  --nodes "N..."           rcpg cluster sizes (default "2 3 4 8")
  --corosync-nodes "N..."  corosync cluster sizes (default "3"; "" for none)
  --corosync-no-rr         run corosync without its real-time scheduling (sched_rr: no);
                           by default it runs as installed, SCHED_RR, which on few CPUs
                           takes CPU from its own clients
  --sequencer-copy MODE    auto, device or cpu: who copies payloads into rcpg's
                           sequencer ring (rcpg.conf sequencer_copy; auto is cpu on rxe)
  --sizes "B..."           message sizes in bytes (default "64 1024 4096 65536 1048576")
  --workloads "W..."       of flood-1 flood-all latency (default: all three)
  --seconds S              how long each sender sends (default 2)
  --sender-node K          the node that sends in flood-1 and latency (default 2, a member
                           for rcpg; 1 is rcpg's sequencer)
  --guarantee G            agreed (default) or safe: what every message is sent as
                           (corosync never implemented SAFE: it delivers it as AGREED)
  --rounds R               rounds over everything, medians reported (default 3)
  --quick                  --nodes 3 --sizes "64 65536" --rounds 1 --seconds 1
  --out DIR                where results go (default bench-results/cluster-<time>)
  --build DIR              build directory with bin/ (default build)
  -h, --help               this text

Output: DIR/raw.csv (one row per client process), DIR/report.md (tables), and the
logs of every daemon under DIR/logs. Needs root (namespaces, Soft-RoCE) and a build
with the benchmark clients (scripts/build.sh).
EOF
}

nodes_list="2 3 4 8"
corosync_nodes_list="3"
corosync_args=
sequencer_copy=auto
guarantee=agreed
sizes="64 1024 4096 65536 1048576"
workloads="flood-1 flood-all latency"
seconds=2
rounds=3
sender_node=2
out=
build=$ROOT/build

# ------------------------------------------------------------ one cluster's workloads
# Called as the command of a cluster: runs every workload and size once and appends one
# CSV row per client process to $OUT/raw.csv.
run_cells() {
    local system=$1 nodes=$2 round=$3 bench sender_node=$SENDER_NODE
    case $system in
    rcpg) bench=$BUILD/bin/cpg_cluster_bench ;;
    corosync) bench=$BUILD/bin/cpg_cluster_bench_corosync ;;
    esac
    [ "$nodes" -ge "$sender_node" ] || sender_node=1
    local cell=$OUT/cells
    mkdir -p "$cell"
    for workload in $WORKLOADS; do
        for size in $SIZES; do
            local tag="$system-$nodes-$workload-$size-$round" pids=() k args senders=1 mode=flood
            [ "$workload" = flood-all ] && senders=$nodes
            [ "$workload" = latency ] && mode=latency
            for k in $(seq "$nodes"); do
                args=(--members "$nodes" --senders "$senders" --mode "$mode" --size "$size" --seconds "$SECONDS_EACH"
                      --group "b$tag" --timeout-s $((SECONDS_EACH + 90)) --guarantee "$GUARANTEE")
                if [ "$workload" = flood-all ] || [ "$k" -eq "$sender_node" ]; then
                    args+=(--send)
                fi
                on_node "$system" "$k" "$bench" "${args[@]}" >"$cell/$tag.$k" 2>&1 &
                pids+=($!)
            done
            local failed=0
            for k in "${pids[@]}"; do wait "$k" || failed=1; done
            [ "$failed" -eq 0 ] || echo "  $tag: a client failed (see $cell/$tag.*)" >&2
            local line
            for k in $(seq "$nodes"); do
                # A client that printed nothing still gets a row, marked incomplete, so the
                # report's checks name its run.
                line=$(grep '^RESULT' "$cell/$tag.$k" || echo "RESULT complete=0 nodeid=node$k")
                printf '%s,%s,%s,%s,%s,%s\n' "$system" "$nodes" "$workload" "$size" "$round" \
                    "$(tr ' ' '\n' <<<"${line#RESULT }" | awk -F= '
                        { v[$1] = $2 }
                        END { printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s", v["sender"], v["nodeid"], v["msgs_per_s"],
                              v["mb_per_s"], v["lat_p50_us"], v["lat_p99_us"], v["lat_p999_us"], v["lat_max_us"],
                              v["order_digest"], v["complete"], v["fifo_errors"] }')" >>"$OUT/raw.csv"
            done
            progress "$system" "$nodes" "$workload" "$size" "$round"
        done
    done
}

on_node() {
    local system=$1 k=$2
    shift 2
    case $system in
    rcpg) RCPG_IPC=rcpg-node$k "$@" ;;
    corosync) "$COROSYNC_CLUSTER_EXEC" "$k" "$@" ;;
    esac
}

# One line per cell while the run goes on.
progress() {
    local system=$1 nodes=$2 workload=$3 size=$4 round=$5
    awk -F, -v s="$system" -v n="$nodes" -v w="$workload" -v b="$size" -v r="$round" '
        $1 == s && $2 == n && $3 == w && $4 == b && $5 == r {
            rows++
            if ($6 == 1) { sender_rate = $8; p50 = $10; p99 = $11 }
            else { receiver_rate = $8; mb = $9 }
            if (digest == "") digest = $14
            if ($14 != digest || $15 != 1 || $16 != 0) bad = 1
        }
        END {
            printf "  round %s %-8s %d nodes %-9s %7d B: ", r, s, n, w, b
            if (w == "latency") printf "p50 %s us, p99 %s us", p50, p99
            else if (w == "flood-all") printf "%s msg/s per process", sender_rate
            else printf "%s msg/s, %s MB/s at a receiver", receiver_rate, mb
            printf ", %d clients, order %s\n", rows, bad ? "MISMATCH" : "identical"
        }' "$OUT/raw.csv" >&2
}

if [ "${1:-}" = --cells ]; then
    run_cells "$2" "$3" "$4"
    exit 0
fi

while [ $# -gt 0 ]; do
    case $1 in
    --inside) inside=1; shift ;;
    --nodes) nodes_list=$2; shift 2 ;;
    --corosync-nodes) corosync_nodes_list=$2; shift 2 ;;
    --corosync-no-rr) corosync_args=--no-rr; shift ;;
    --sequencer-copy) sequencer_copy=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --workloads) workloads=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --guarantee) guarantee=$2; shift 2 ;;
    --sender-node) sender_node=$2; shift 2 ;;
    --quick) nodes_list=3; sizes="64 65536"; rounds=1; seconds=1; shift ;;
    --out) out=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done

if [ -z "${inside:-}" ]; then
    for w in $workloads; do
        case $w in flood-1 | flood-all | latency) ;; *) echo "run.sh: unknown workload '$w'" >&2; exit 2 ;; esac
    done
    case $guarantee in agreed | safe) ;; *) echo "run.sh: --guarantee must be agreed or safe" >&2; exit 2 ;; esac
    build=$(cd "$build" && pwd -P)
    for program in rcpgd cpg_cluster_bench cpg_cluster_bench_corosync; do
        [ -x "$build/bin/$program" ] || { echo "run.sh: $build/bin/$program missing: build first (scripts/build.sh)" >&2; exit 1; }
    done
    if [ -n "$corosync_nodes_list" ] && ! command -v corosync >/dev/null; then
        echo "run.sh: corosync is not installed (scripts/install-deps.sh)" >&2
        exit 1
    fi
    [ -n "$out" ] || out=$ROOT/bench-results/cluster-$(date +%Y%m%d-%H%M%S)
    mkdir -p "$out"
    out=$(cd "$out" && pwd -P)
    {
        echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo '+dirty')"
        echo "host $(hostname), $(nproc) cpus, kernel $(uname -r)"
    } | tee "$out/context.txt"
    # The report is built here, after the guest: under TCG its many small processes
    # would take minutes.
    status=0
    "$ROOT/scripts/softroce.sh" run --timeout-s 7200 --rw "$out" --rw "$ROOT" \
        --env NODES_LIST="$nodes_list" --env COROSYNC_NODES_LIST="$corosync_nodes_list" --env SIZES="$sizes" \
        --env WORKLOADS="$workloads" --env SECONDS_EACH="$seconds" --env ROUNDS="$rounds" --env OUT="$out" \
        --env SENDER_NODE="$sender_node" --env COROSYNC_ARGS="$corosync_args" \
        --env SEQUENCER_COPY="$sequencer_copy" --env GUARANTEE="$guarantee" \
        --env BUILD="$build" -- "$SELF" --inside || status=$?
    if [ -s "$out/raw.csv" ]; then
        "$ROOT/bench/cluster/report.sh" "$out" >"$out/report.md"
        cat "$out/report.md"
        echo "results in $out"
    fi
    exit "$status"
fi

# ------------------------------------------------------------------ inside the device
export NODES_LIST COROSYNC_NODES_LIST SIZES WORKLOADS SECONDS_EACH ROUNDS OUT BUILD SENDER_NODE COROSYNC_ARGS \
    SEQUENCER_COPY GUARANTEE
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# shellcheck disable=SC2034 # perftest_pair's first port; it advances it
port=23000
# shellcheck source=bench/perftest.sh
source "$ROOT/bench/perftest.sh"
echo "device $RCPG_RDMA_DEV ($RCPG_SOFTROCE) on $RCPG_RDMA_ADDR, kernel $(uname -r), $(nproc) cpus" | tee -a "$OUT/context.txt"
echo "sender of flood-1 and latency: node $SENDER_NODE" >>"$OUT/context.txt"
[ -z "$COROSYNC_ARGS" ] || echo "corosync: $COROSYNC_ARGS" >>"$OUT/context.txt"
echo "rcpg sequencer_copy: $SEQUENCER_COPY" >>"$OUT/context.txt"
echo "messages sent as: CPG_TYPE_${GUARANTEE^^}" >>"$OUT/context.txt"
echo "system,nodes,workload,size,round,sender,nodeid,msgs_per_s,mb_per_s,p50_us,p99_us,p999_us,max_us,order_digest,complete,fifo_errors" >"$OUT/raw.csv"
echo "tool,size,round,value" >"$OUT/perftest.csv"
mkdir -p "$OUT/logs"

for round in $(seq "$ROUNDS"); do
    for size in $SIZES; do
        # Result row of ib_write_bw: bytes iterations BW-peak BW-average(Gb/s) MsgRate.
        gbps=$({ perftest_pair ib_write_bw "$size" $((size >= 65536 ? 200 : 2000)) || true; } | awk -v s="$size" '$1 == s { print $4 }')
        echo "ib_write_bw,$size,$round,$gbps" >>"$OUT/perftest.csv"
        echo "  round $round ib_write_bw -R $size B: $gbps Gb/s"
    done
    # Result row of ib_write_lat: bytes iterations t_min t_max t_typical ...
    lat=$({ perftest_pair ib_write_lat 64 2000 || true; } | awk '$1 == 64 { print $5 }')
    echo "ib_write_lat,64,$round,$lat" >>"$OUT/perftest.csv"
    echo "  round $round ib_write_lat -R 64 B: $lat us"
    for nodes in $NODES_LIST; do
        "$ROOT/scripts/cluster.sh" --inside --nodes "$nodes" --ring-mib 32 --sequencer-copy "$SEQUENCER_COPY" --bin "$BUILD/bin" \
            --dir "$OUT/logs/rcpg-$nodes-$round" -- "$SELF" --cells rcpg "$nodes" "$round" >/dev/null ||
            echo "  rcpg cluster of $nodes nodes failed (logs in $OUT/logs/rcpg-$nodes-$round)" >&2
    done
    for nodes in $COROSYNC_NODES_LIST; do
        # shellcheck disable=SC2086 # empty or one option
        "$ROOT/bench/cluster/corosync-cluster.sh" run $COROSYNC_ARGS --nodes "$nodes" --dir "$OUT/logs/corosync-$nodes-$round" -- \
            "$SELF" --cells corosync "$nodes" "$round" >/dev/null ||
            echo "  corosync cluster of $nodes nodes failed (logs in $OUT/logs/corosync-$nodes-$round)" >&2
    done
done

