#!/usr/bin/env bash
# The benchmark suite: rcpg beside corosync 3.1.7 and beside the raw device, in one run.
#
# It brings up Soft-RoCE (scripts/softroce.sh: the host's rdma_rxe, or the qemu guest
# where the kernel has none), measures the device with perftest (ib_write_bw at every
# message size, ib_write_lat), then for each cluster size starts an rcpg cluster
# (scripts/cluster.sh) and a corosync cluster (bench/cluster/corosync-cluster.sh: knet,
# one network namespace per node) and drives both with the same client,
# bench/cpg_cluster_bench.c, built against each library, through the same workloads.
# Everything it started is stopped at the end, also on failure or interrupt. The
# report (report.md, from bench/report.sh), the raw figures (raw.csv, perftest.csv) and
# plots (plots/*.png, from bench/plot.sh) go to one directory. Under TCG the absolute
# figures are functional only: compare the ratios, which come from one run on one
# device.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
SELF=$ROOT/bench/run.sh
ALL_WORKLOADS="flood-1 flood-1-zcb flood-1-safe flood-all latency latency-safe churn evs-flood-1 evs-latency"

usage() {
    cat <<'EOF'
Usage: bench/run.sh [--smoke | --full] [OPTIONS]

Sizes of the run (the default is between the two: 14 minutes under TCG on 2 cores):
  --smoke                2 nodes, 1 KiB messages, every workload once, 1 s each: about
                         about 2 min under TCG; checks that everything runs (CI runs it)
  --full                 1, 2, 3, 4 and 8 nodes, 64 B to 1 MiB in 8 sizes, 3 rounds, 3 s
                         per workload: hours under TCG
Choices (after a size, they change it):
  --workloads "W..."     of: flood-1 flood-1-zcb flood-1-safe flood-all latency
                         latency-safe churn evs-flood-1 evs-latency (default: all)
  --nodes "N..."         rcpg cluster sizes (default "1 2 3")
  --corosync-nodes "N..."  corosync cluster sizes (default: as --nodes; "" for none)
  --sizes "B..."         message sizes in bytes (default "64 1024 65536 1048576")
  --rounds R             rounds over everything; the report gives medians (default 1)
  --seconds S            how long each sender sends (default 2)
  --sender-node K        the node that sends in the one-sender workloads (default 2, a
                         member for rcpg; 1 with a single node)
  --corosync-no-rr       corosync without its real-time scheduling (on few CPUs SCHED_RR
                         takes CPU from its own clients)
  --sequencer-copy MODE  auto, device or cpu (rcpg.conf sequencer_copy)
An existing cluster instead of local ones (no Soft-RoCE, no clusters started):
  --existing SYSTEM      rcpg or corosync: what the nodes below run
  --node "PREFIX"        once per node, in node order: the command prefix that runs a
                         program there, e.g. "ssh db1" or "env RCPG_IPC=rcpg-node1"; the
                         benchmark client must be at the same path there (--build)
  --perftest-address A   node 2's RDMA address, for ib_write_bw/ib_write_lat between
                         nodes 1 and 2 (default: no device baseline)
Output:
  --out DIR              where results go (default bench-results/suite-<time>)
  --build DIR            build directory with bin/ (default build)
  -h, --help             this text

Workloads (every message carries its sender, number and send time; receivers check
per-sender FIFO and hash the order they delivered):
  flood-1        one sender, as fast as flow control allows; a receiver on every node.
                 Figure: messages/s and MB/s at a receiver.
  flood-1-zcb    the same, sent with cpg_zcb_alloc/cpg_zcb_mcast_joined.
  flood-1-safe   the same, CPG_TYPE_SAFE (corosync delivers SAFE as AGREED).
  flood-all      one sender on every node; every process receives everything.
                 Figure: messages/s delivered per process.
  latency        one sender keeps one message in flight; receivers elsewhere. Figure:
                 the sender's ordered round trip (send to own delivery), p50, p99,
                 p99.9, max.
  latency-safe   the same, CPG_TYPE_SAFE.
  churn          flood-1 while one process per node leaves and joins the group over and
                 over. Figures: messages/s at a receiver, leave-and-join cycles/s, the
                 join latency (call to own join confchg).
  evs-flood-1    flood-1 through the EVS API (libevs) on the same daemons; rcpg only
                 (corosync 3 has no EVS). Figure: as flood-1, and the ratio to it.
  evs-latency    latency through the EVS API; rcpg only.

Output: DIR/report.md (a table per workload: rcpg, corosync, ratio, and the device),
DIR/raw.csv (one row per client process), DIR/perftest.csv, DIR/context.txt (commit,
host, kernel, device, whether the VM was used), DIR/plots/*.png, DIR/logs/. Progress
(what runs, how long is left) goes to standard error. Exit 0 when every workload of
rcpg ran and every run of it delivered one order, complete, FIFO; 1 otherwise (what
goes wrong with corosync is listed in the report and fails nothing). Needs root
(Soft-RoCE, namespaces) and a build (scripts/build.sh).
EOF
}

# A workload's client settings: mode, senders (1 or all), api, guarantee, churners.
workload_spec() {
    case $1 in
    flood-1) echo "flood 1 copy agreed 0" ;;
    flood-1-zcb) echo "flood 1 zcb agreed 0" ;;
    flood-1-safe) echo "flood 1 copy safe 0" ;;
    flood-all) echo "flood all copy agreed 0" ;;
    latency) echo "latency 1 copy agreed 0" ;;
    latency-safe) echo "latency 1 copy safe 0" ;;
    churn) echo "flood 1 copy agreed 1" ;;
    evs-flood-1) echo "flood 1 evs agreed 0" ;;
    evs-latency) echo "latency 1 evs agreed 0" ;;
    *) return 1 ;;
    esac
}

cell_pids=()
nodes_list="1 2 3"
corosync_nodes_list=
corosync_nodes_given=0
corosync_args=
sequencer_copy=auto
sizes="64 1024 65536 1048576"
workloads=$ALL_WORKLOADS
seconds=2
rounds=1
sender_node=2
out=
build=$ROOT/build
existing=
node_prefixes=()
perftest_address=

# ------------------------------------------------------------ progress
# One line per cell: what ran, its figure, and how long is left, from the time the
# cells so far took (cluster start-ups included). The count lives in $PROGRESS so that
# the cells of every cluster, each run by another process, add up.
progress() {
    local label=$1 figure=$2 finished total started now left
    read -r finished total started <"$PROGRESS"
    finished=$((finished + 1))
    echo "$finished $total $started" >"$PROGRESS"
    now=$(date +%s)
    left=$(((now - started) * (total - finished) / finished))
    printf '[%d/%d] %s: %s (%s elapsed, about %s left)\n' "$finished" "$total" "$label" "$figure" \
        "$(clock $((now - started)))" "$(clock "$left")" >&2
}
clock() { printf '%d:%02d' $(($1 / 60)) $(($1 % 60)); }
# corosync's real token timeout for a cluster of $1 nodes at its default token (3000 ms).
failure_timeout_ms() { echo $((3000 + ($1 > 2 ? ($1 - 2) * 650 : 0))); }

# ------------------------------------------------------------ one cluster's workloads
# Runs every workload and size once on the cluster at hand and appends one CSV row per
# client process to $OUT/raw.csv.
run_cells() {
    local system=$1 nodes=$2 round=$3 bench workload size
    case $system in
    rcpg) bench=$BUILD/bin/cpg_cluster_bench ;;
    corosync) bench=$BUILD/bin/cpg_cluster_bench_corosync ;;
    esac
    local sender=$SENDER_NODE
    [ "$nodes" -ge "$sender" ] || sender=1
    mkdir -p "$OUT/cells"
    for workload in $WORKLOADS; do
        for size in $SIZES; do
            run_cell "$system" "$nodes" "$round" "$bench" "$workload" "$size" "$sender"
        done
    done
}

run_cell() {
    local system=$1 nodes=$2 round=$3 bench=$4 workload=$5 size=$6 sender=$7
    local mode senders api guarantee churn members k args pids=() roles=() tag
    read -r mode senders api guarantee churn <<<"$(workload_spec "$workload")"
    tag="$system-$nodes-$workload-$size-$round"
    if [ "$system" = corosync ] && [ "$api" = zcb ] && [ "$size" -ge 1048576 ]; then
        # corosync 3.1.7 takes such a message with CS_OK and then cannot hand it to any
        # client ("qb_ipcs_event_send: Message too long"): the receivers would only wait
        # out their timeout. The report says so in the cell.
        echo "$system,$nodes,$workload,$size,$round,zcb-too-long" >>"$OUT/not-run.csv"
        progress "round $round $system $nodes nodes $workload $size B" "not run: corosync delivers no zcb message of 1 MiB"
        return
    fi
    if [ "$system" = corosync ] && [ "$api" = evs ]; then
        # corosync 2 dropped EVS; 3.1.7 has neither the service nor libevs.
        echo "$system,$nodes,$workload,$size,$round,no-evs" >>"$OUT/not-run.csv"
        progress "round $round $system $nodes nodes $workload $size B" "not run: corosync 3.1.7 has no EVS"
        return
    fi
    [ "$senders" = all ] && senders=$nodes
    members=$nodes
    [ "$churn" -eq 1 ] && members=$((2 * nodes))
    local common=(--members "$members" --senders "$senders" --size "$size" --seconds "$SECONDS_EACH"
                  --group "b$tag" --timeout-s $((SECONDS_EACH + 120)) --guarantee "$guarantee")
    [ "$api" = zcb ] && common+=(--zcb)
    [ "$api" = evs ] && common+=(--evs)
    for k in $(seq "$nodes"); do
        args=("${common[@]}" --mode "$mode" --quantiles "$OUT/cells/$tag.$k.q")
        if [ "$senders" -eq "$nodes" ] || [ "$k" -eq "$sender" ]; then
            args+=(--send)
        fi
        on_node "$system" "$k" "$bench" "${args[@]}" >"$OUT/cells/$tag.$k" 2>&1 &
        pids+=($!) roles+=("$k")
        if [ "$churn" -eq 1 ]; then
            on_node "$system" "$k" "$bench" "${common[@]}" --mode churn --quantiles "$OUT/cells/$tag.c$k.q" \
                >"$OUT/cells/$tag.c$k" 2>&1 &
            pids+=($!) roles+=("c$k")
        fi
    done
    cell_pids=("${pids[@]}")
    local failed=0 pid
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    cell_pids=()
    [ "$failed" -eq 0 ] || echo "  $tag: a client failed (see $OUT/cells/$tag.*)" >&2
    local role line role_sender
    for role in "${roles[@]}"; do
        # A client that printed nothing still gets a row, marked incomplete, so the
        # report's checks name its run.
        role_sender=
        [ "${role#c}" = "$role" ] || role_sender=2
        line=$(grep '^RESULT' "$OUT/cells/$tag.$role" || echo "RESULT complete=0 nodeid=node${role#c} sender=$role_sender")
        printf '%s,%s,%s,%s,%s,%s\n' "$system" "$nodes" "$workload" "$size" "$round" \
            "$(tr ' ' '\n' <<<"${line#RESULT }" | awk -F= '
                { v[$1] = $2 }
                END { printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s", v["sender"], v["nodeid"], v["msgs_per_s"],
                      v["mb_per_s"], v["lat_p50_us"], v["lat_p99_us"], v["lat_p999_us"], v["lat_max_us"],
                      v["order_digest"], v["complete"], v["fifo_errors"] }')" >>"$OUT/raw.csv"
    done
    progress "round $round $system $nodes nodes $workload $size B" "$(cell_figure "$system" "$nodes" "$workload" "$size" "$round")"
}

on_node() {
    local system=$1 k=$2
    shift 2
    if [ -n "${NODE_PREFIXES:-}" ]; then
        local prefix
        prefix=$(sed -n "${k}p" <<<"$NODE_PREFIXES")
        # shellcheck disable=SC2086 # the prefix is words: "ssh host", "env VAR=value"
        $prefix "$@"
        return
    fi
    case $system in
    rcpg) RCPG_IPC=rcpg-node$k "$@" ;;
    corosync) "$COROSYNC_CLUSTER_EXEC" "$k" "$@" ;;
    esac
}

# The cell's figure in a few words, and whether its processes agree.
cell_figure() {
    awk -F, -v s="$1" -v n="$2" -v w="$3" -v b="$4" -v r="$5" '
        $1 == s && $2 == n && $3 == w && $4 == b && $5 == r {
            rows++
            if ($6 == 2) { cycles += $8; joins = $10; next }
            if ($6 == 1) { sender_rate = $8; sender_mb = $9; p50 = $10; p99 = $11 }
            else { receiver_rate = $8; mb = $9 }
            if (digest == "") digest = $14
            if ($14 != digest || $15 != 1 || $16 != 0) bad = 1
        }
        END {
            if (receiver_rate == "") { receiver_rate = sender_rate; mb = sender_mb }  # one node: the sender alone
            if (w ~ /^latency/) printf "p50 %s us, p99 %s us", p50, p99
            else if (w == "flood-all") printf "%s msg/s per process", sender_rate
            else printf "%s msg/s, %s MB/s at a receiver", receiver_rate, mb
            if (w == "churn") printf ", %.0f joins/s (p50 %s us)", cycles, joins
            printf ", %d clients, %s", rows, bad ? "ORDER OR COMPLETENESS WRONG" : "one order"
        }' "$OUT/raw.csv"
}

# ib_write_bw at every size and ib_write_lat between nodes 1 and 2 of an existing cluster.
existing_perftest() {
    local round=$1 size result value
    for size in $SIZES 0; do
        local tool=ib_write_bw bytes=$size
        [ "$size" -eq 0 ] && tool=ib_write_lat bytes=64
        # shellcheck disable=SC2086 # the prefixes are words
        $NODE2_PREFIX "$tool" -s "$bytes" -n 2000 -R >"$OUT/logs/$tool-$bytes-$round.server" 2>&1 &
        sleep 2
        # shellcheck disable=SC2086
        result=$($NODE1_PREFIX "$tool" -s "$bytes" -n 2000 -R "$PERFTEST_ADDRESS" 2>&1 || true)
        wait || true
        if [ "$tool" = ib_write_bw ]; then
            value=$(awk -v s="$bytes" '$1 == s { print $4 }' <<<"$result")
        else
            value=$(awk '$1 == 64 { print $5 }' <<<"$result")
        fi
        echo "$tool,$bytes,$round,$value" >>"$OUT/perftest.csv"
        progress "round $round $tool -R $bytes B" "${value:-?}"
    done
}

if [ "${1:-}" = --cells ]; then
    run_cells "$2" "$3" "$4"
    exit 0
fi

while [ $# -gt 0 ]; do
    case $1 in
    --inside) inside=1; shift ;;
    --smoke) nodes_list=2 sizes=1024 rounds=1 seconds=1; shift ;;
    --full) nodes_list="1 2 3 4 8" sizes="64 256 1024 4096 16384 65536 262144 1048576" rounds=3 seconds=3; shift ;;
    --nodes) nodes_list=$2; shift 2 ;;
    --corosync-nodes) corosync_nodes_list=$2 corosync_nodes_given=1; shift 2 ;;
    --corosync-no-rr) corosync_args=--no-rr; shift ;;
    --sequencer-copy) sequencer_copy=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --workloads) workloads=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --sender-node) sender_node=$2; shift 2 ;;
    --existing) existing=$2; shift 2 ;;
    --node) node_prefixes+=("$2"); shift 2 ;;
    --perftest-address) perftest_address=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done

# ------------------------------------------------------------------ inside the device
if [ -n "${inside:-}" ]; then
    export NODES_LIST COROSYNC_NODES_LIST SIZES WORKLOADS SECONDS_EACH ROUNDS OUT BUILD SENDER_NODE COROSYNC_ARGS \
        SEQUENCER_COPY PROGRESS
    WORK=$(mktemp -d)  # perftest_pair's scratch
    trap 'rm -rf "$WORK"' EXIT
    # shellcheck disable=SC2034 # perftest_pair's first port; it advances it
    port=23000
    # shellcheck source=bench/perftest.sh
    source "$ROOT/bench/perftest.sh"
    echo "device $RCPG_RDMA_DEV on $RCPG_RDMA_ADDR ($([ "$RCPG_SOFTROCE" = vm ] && echo "Soft-RoCE in the qemu guest, TCG" || echo "Soft-RoCE on the host")), guest kernel $(uname -r), $(nproc) cpus" |
        tee -a "$OUT/context.txt" >&2
    for round in $(seq "$ROUNDS"); do
        for size in $SIZES; do
            # Result row of ib_write_bw: bytes iterations BW-peak BW-average(Gb/s) MsgRate.
            gbps=$({ perftest_pair ib_write_bw "$size" $((size >= 65536 ? 200 : 2000)) || true; } | awk -v s="$size" '$1 == s { print $4 }')
            echo "ib_write_bw,$size,$round,$gbps" >>"$OUT/perftest.csv"
            progress "round $round ib_write_bw -R $size B" "${gbps:-?} Gb/s"
        done
        # Result row of ib_write_lat: bytes iterations t_min t_max t_typical ... Under TCG
        # perftest sometimes cannot tell the CPU's clock and prints "inf": measured again.
        lat=
        for _ in 1 2 3; do
            lat=$({ perftest_pair ib_write_lat 64 2000 || true; } | awk '$1 == 64 && $5 ~ /^[0-9.]+$/ { print $5 }')
            [ -z "$lat" ] || break
        done
        echo "ib_write_lat,64,$round,$lat" >>"$OUT/perftest.csv"
        progress "round $round ib_write_lat -R 64 B" "${lat:-?} us typical"
        for nodes in $NODES_LIST; do
            # Both systems get the same time to declare a node failed: corosync's token
            # timeout, which it stretches by 650 ms per node above two (token_coefficient).
            # Under TCG an 8-node cluster under load starves nodes of CPU for seconds.
            "$ROOT/scripts/cluster.sh" --inside --nodes "$nodes" --ring-mib 32 --sequencer-copy "$SEQUENCER_COPY" \
                --failure-timeout-ms "$(failure_timeout_ms "$nodes")" \
                --bin "$BUILD/bin" --dir "$OUT/logs/rcpg-$nodes-$round" -- "$SELF" --cells rcpg "$nodes" "$round" >/dev/null ||
                echo "  rcpg cluster of $nodes nodes failed (logs in $OUT/logs/rcpg-$nodes-$round)" >&2
        done
        for nodes in $COROSYNC_NODES_LIST; do
            # shellcheck disable=SC2086 # empty or one option
            "$ROOT/bench/cluster/corosync-cluster.sh" run $COROSYNC_ARGS --nodes "$nodes" \
                --dir "$OUT/logs/corosync-$nodes-$round" -- "$SELF" --cells corosync "$nodes" "$round" >/dev/null ||
                echo "  corosync cluster of $nodes nodes failed (logs in $OUT/logs/corosync-$nodes-$round)" >&2
        done
    done
    exit 0
fi

# ------------------------------------------------------------------ on the host
# On Ctrl-C or SIGTERM the children are told to stop (SIGTERM: the guest and the local
# clusters clean up on it; clients started in the background ignore SIGINT), and the
# suite waits until they did.
child=
# shellcheck disable=SC2317 # called from the traps below
stop_children() {
    echo "run.sh: interrupted; stopping what it started" >&2
    local pid
    for pid in $child "${cell_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap 'stop_children; exit 130' INT
trap 'stop_children; exit 143' TERM
[ "$corosync_nodes_given" -eq 1 ] || corosync_nodes_list=$nodes_list
for w in $workloads; do
    workload_spec "$w" >/dev/null || { echo "run.sh: unknown workload '$w'" >&2; exit 2; }
done
for n in $nodes_list $corosync_nodes_list; do
    case $n in '' | *[!0-9]*) echo "run.sh: a cluster size must be a number, not '$n'" >&2; exit 2 ;; esac
    if [ "$n" -lt 1 ] || [ "$n" -gt 8 ]; then echo "run.sh: cluster sizes are 1 to 8" >&2; exit 2; fi
done
for b in $sizes; do
    case $b in '' | *[!0-9]*) echo "run.sh: a size must be a number of bytes, not '$b'" >&2; exit 2 ;; esac
    if [ "$b" -lt 24 ] || [ "$b" -gt 1048576 ]; then echo "run.sh: sizes are 24 B to 1 MiB" >&2; exit 2; fi
done
case $existing in
'') [ "${#node_prefixes[@]}" -eq 0 ] || { echo "run.sh: --node goes with --existing" >&2; exit 2; } ;;
rcpg | corosync)
    [ "${#node_prefixes[@]}" -ge 1 ] || { echo "run.sh: --existing needs a --node for every node" >&2; exit 2; } ;;
*) echo "run.sh: --existing is rcpg or corosync" >&2; exit 2 ;;
esac
build=$(cd "$build" && pwd -P)
for program in rcpgd cpg_cluster_bench cpg_cluster_bench_corosync; do
    [ -x "$build/bin/$program" ] || { echo "run.sh: $build/bin/$program missing: build first (scripts/build.sh)" >&2; exit 1; }
done
if [ -z "$existing" ] && [ -n "$corosync_nodes_list" ] && ! command -v corosync >/dev/null; then
    echo "run.sh: corosync is not installed (scripts/install-deps.sh)" >&2
    exit 1
fi
[ -n "$out" ] || out=$ROOT/bench-results/suite-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out/logs"
out=$(cd "$out" && pwd -P)
{
    echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo '+dirty')"
    echo "host $(hostname), $(nproc) cpus, kernel $(uname -r)"
    echo "workloads: $workloads; sizes: $sizes B; rounds: $rounds; $seconds s per sender"
    echo "sender of the one-sender workloads: node $sender_node"
    echo "rcpg sequencer_copy: $sequencer_copy"
    [ -n "$existing" ] ||
        echo "failure detection: rcpg failure_timeout_ms = corosync's token timeout for the size (3000 + 650 per node above 2)"
    [ -z "$corosync_args" ] || echo "corosync: $corosync_args"
} | tee "$out/context.txt" >&2
echo "system,nodes,workload,size,round,sender,nodeid,msgs_per_s,mb_per_s,p50_us,p99_us,p999_us,max_us,order_digest,complete,fifo_errors" >"$out/raw.csv"
echo "tool,size,round,value" >"$out/perftest.csv"
n_workloads=$(wc -w <<<"$workloads")
n_sizes=$(wc -w <<<"$sizes")
status=0
if [ -n "$existing" ]; then
    echo "existing $existing cluster of ${#node_prefixes[@]} nodes: ${node_prefixes[*]}" | tee -a "$out/context.txt" >&2
    total=$((rounds * n_workloads * n_sizes))
    [ -z "$perftest_address" ] || total=$((total + rounds * (n_sizes + 1)))
    echo "0 $total $(date +%s)" >"$out/.progress"
    export OUT=$out BUILD=$build SIZES=$sizes WORKLOADS=$workloads SECONDS_EACH=$seconds SENDER_NODE=$sender_node \
        PROGRESS=$out/.progress NODE_PREFIXES
    NODE_PREFIXES=$(printf '%s\n' "${node_prefixes[@]}")
    NODE1_PREFIX=${node_prefixes[0]} NODE2_PREFIX=${node_prefixes[1]:-} PERFTEST_ADDRESS=$perftest_address
    for round in $(seq "$rounds"); do
        [ -z "$perftest_address" ] || [ -z "$NODE2_PREFIX" ] || existing_perftest "$round"
        run_cells "$existing" "${#node_prefixes[@]}" "$round" || status=1
    done
else
    per_round=$((n_sizes + 1))
    for n in $nodes_list $corosync_nodes_list; do
        per_round=$((per_round + n_workloads * n_sizes))
    done
    echo "0 $((rounds * per_round)) $(date +%s)" >"$out/.progress"
    # In the background, so that a signal reaches the trap while it runs.
    "$ROOT/scripts/softroce.sh" run --timeout-s $((1800 + rounds * per_round * (seconds + 30))) --rw "$out" --rw "$ROOT" \
        --env NODES_LIST="$nodes_list" --env COROSYNC_NODES_LIST="$corosync_nodes_list" --env SIZES="$sizes" \
        --env WORKLOADS="$workloads" --env SECONDS_EACH="$seconds" --env ROUNDS="$rounds" --env OUT="$out" \
        --env SENDER_NODE="$sender_node" --env COROSYNC_ARGS="$corosync_args" \
        --env SEQUENCER_COPY="$sequencer_copy" --env BUILD="$build" --env PROGRESS="$out/.progress" \
        -- "$SELF" --inside &
    child=$!
    wait "$child" || status=$?
    child=
    if [ "$status" -eq 77 ]; then
        echo "run.sh: no RDMA device can be had here (scripts/softroce.sh)" >&2
        exit 77
    fi
fi
rm -f "$out/.progress"
# The report and plots are made here, after the guest: under TCG their many small
# processes would take minutes.
if [ "$(wc -l <"$out/raw.csv")" -gt 1 ]; then
    "$ROOT/bench/report.sh" "$out" >"$out/report.md" || status=1
    "$ROOT/bench/plot.sh" "$out" || echo "run.sh: no plots (bench/plot.sh failed)" >&2
    cat "$out/report.md"
else
    echo "run.sh: no workload ran" >&2
    status=1
fi
echo "results in $out" >&2
exit "$status"
