#!/usr/bin/env bash
# Starts an N-node rcpg cluster on this host over Soft-RoCE, runs a command against it
# and stops everything it started.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
SELF=$ROOT/scripts/cluster.sh

usage() {
    cat <<'EOF'
Usage:
  cluster.sh run [OPTIONS] -- COMMAND [ARGS...]
  "$RCPG_CLUSTER_CTL" start|stop|kill K (from COMMAND, see below)

Starts an N-node rcpg cluster on this host and runs COMMAND while it is up, then stops
every daemon it started (also when COMMAND fails or the run is interrupted) and exits
with COMMAND's status. The RDMA device comes from scripts/softroce.sh: the host's
rdma_rxe module if the kernel has one, else a small qemu guest in which the cluster
and COMMAND run. Every node listens on the device's one address with its own rdma_cm
port.

COMMAND reaches node k (1..N) with RCPG_IPC=rcpg-node<k>; the cluster.sh prints these
lines before it starts COMMAND, and exports:
  RCPG_CLUSTER_NODES  the number of nodes
  RCPG_CLUSTER_DIR    the directory with rcpg.conf, the key and node<k>.log
  RCPG_CLUSTER_CTL    a program COMMAND runs to start, stop or kill one node while
                      the cluster is up: "$RCPG_CLUSTER_CTL" start K starts node K
                      (one given to --late, or one stopped or killed before) and
                      returns once it serves clients (status 1 if it did not come
                      up); stop K sends node K's rcpgd SIGTERM, so a member leaves
                      the cluster cleanly, and returns once it exited: status 0 if
                      rcpgd exited with 0, else 1 and a message (it needed SIGKILL
                      after 5 s, or failed or crashed); kill K sends it SIGKILL (a
                      failure: no clean leave), returns once it is gone, prints
                      "node K: killed" and leaves in node<K>.killed the time of the
                      signal and, on a second line, the time rcpgd was gone (both
                      ns since the epoch, CLOCK_REALTIME).
                      Node 1 sequences at the start. The sequencer has no clean
                      leave: stopped or killed, the others take it for failed and
                      the next node of the sequencer order (node id order) takes
                      over, as long as a majority of the configured nodes is left;
                      a killed member is removed from the view the same way. A
                      node killed or stopped can be started again: it finds the
                      node that sequences now and rejoins as a member.
                      Every start of node k appends to node<k>.log; an rcpgd that
                      exits with a status other than 0 gets a line there saying so
                      (after kill K, that it was killed), also when the cluster
                      stops at the end. A killed node is not stopped again at the
                      end, and its status does not count.

Options:
  --nodes N        number of nodes (default 3; 1..16)
  --late K         do not start node K (2..N) with the others: COMMAND starts it
                   with "$RCPG_CLUSTER_CTL" start K; repeatable
  --ring-mib M     delivery ring size (default 64)
  --failure-timeout-ms T
                   rcpg.conf failure_timeout_ms: silence after which a node
                   counts as failed (default: rcpgd's, 3000)
  --max-pinned-mib M
                   rcpg.conf max_pinned_mib: client memory a node pins for its
                   device (default: rcpgd's, 4096)
  --stuck-client-timeout-ms T
                   rcpg.conf stuck_client_timeout_ms: a client that holds the
                   full ring this long without reading is cut off (default:
                   rcpgd's, 10000; 0: never)
  --client-backlog-mib M
                   rcpg.conf client_backlog_mib: a slow reader's entries move to a
                   backlog of up to M MiB (default: rcpgd's, 256; 0: none, a
                   slow reader holds the ring)
  --sequencer-copy auto|device|cpu
                   who copies payloads into the sequencer's ring (rcpg.conf
                   sequencer_copy; default auto, which on rxe is cpu)
  --dir DIR        where configuration and logs go (default: a new directory
                   under ${TMPDIR:-/tmp}; kept after the run)
  --bin DIR        where rcpgd is (default: build/bin)
  --port P         rdma_cm port of node 1; node k uses P+k-1 (default 7401)
  --timeout-s N    hard limit for the whole run (default 600)
  --log-level L    rcpgd's log level: info (default) or debug; the launcher reads
                   from the log when a node serves clients
  -h, --help       show this text
EOF
}

nodes=3
ring_mib=64
failure_timeout_ms=
stuck_client_timeout_ms=
client_backlog_mib=
max_pinned_mib=
sequencer_copy=auto
dir=
bin=$ROOT/build/bin
port=7401
timeout_s=600
log_level=info
inside=0
ctl=0
late=()

while [ $# -gt 0 ]; do
    case $1 in
    run) shift ;;
    ctl) ctl=1; shift ;;
    --inside) inside=1; shift ;;
    --nodes) nodes=$2; shift 2 ;;
    --late) late+=("$2"); shift 2 ;;
    --ring-mib) ring_mib=$2; shift 2 ;;
    --failure-timeout-ms) failure_timeout_ms=$2; shift 2 ;;
    --stuck-client-timeout-ms) stuck_client_timeout_ms=$2; shift 2 ;;
    --client-backlog-mib) client_backlog_mib=$2; shift 2 ;;
    --max-pinned-mib) max_pinned_mib=$2; shift 2 ;;
    --sequencer-copy) sequencer_copy=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --timeout-s) timeout_s=$2; shift 2 ;;
    --log-level) log_level=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "cluster.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
if [ $# -eq 0 ]; then
    echo "cluster.sh: no COMMAND given" >&2
    usage >&2
    exit 2
fi
case $nodes in
'' | *[!0-9]*) echo "cluster.sh: --nodes needs a number" >&2; exit 2 ;;
esac
case $log_level in
info | debug) ;;
*) echo "cluster.sh: --log-level must be info or debug (readiness is read from rcpgd's log)" >&2; exit 2 ;;
esac
case $sequencer_copy in
auto | device | cpu) ;;
*) echo "cluster.sh: --sequencer-copy must be auto, device or cpu" >&2; exit 2 ;;
esac
if [ "$nodes" -lt 1 ] || [ "$nodes" -gt 16 ]; then
    echo "cluster.sh: --nodes must be from 1 to 16" >&2
    exit 2
fi
for k in "${late[@]}"; do
    case $k in
    '' | *[!0-9]*) echo "cluster.sh: --late needs a node number" >&2; exit 2 ;;
    esac
    if [ "$k" -lt 2 ] || [ "$k" -gt "$nodes" ]; then
        echo "cluster.sh: --late must name a node from 2 to $nodes (node 1 is the sequencer)" >&2
        exit 2
    fi
done
if [ ! -x "$bin/rcpgd" ]; then
    echo "cluster.sh: no rcpgd in $bin (build first: scripts/build.sh)" >&2
    exit 2
fi
if [ -z "$dir" ]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/rcpg-cluster.XXXXXX")
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd -P)

if [ "$inside" -eq 0 ] && [ "$ctl" -eq 0 ]; then
    # The daemons need the RDMA device: run this script again where it is.
    late_args=()
    for k in "${late[@]}"; do
        late_args+=(--late "$k")
    done
    [ -z "$failure_timeout_ms" ] || late_args+=(--failure-timeout-ms "$failure_timeout_ms")
    [ -z "$stuck_client_timeout_ms" ] || late_args+=(--stuck-client-timeout-ms "$stuck_client_timeout_ms")
    [ -z "$client_backlog_mib" ] || late_args+=(--client-backlog-mib "$client_backlog_mib")
    [ -z "$max_pinned_mib" ] || late_args+=(--max-pinned-mib "$max_pinned_mib")
    exec "$ROOT/scripts/softroce.sh" run --timeout-s "$timeout_s" --rw "$dir" --rw "$PWD" -- \
        "$SELF" --inside --nodes "$nodes" "${late_args[@]}" --ring-mib "$ring_mib" --dir "$dir" --bin "$bin" \
        --sequencer-copy "$sequencer_copy" --port "$port" --log-level "$log_level" -- "$@"
fi

# ------------------------------------------------------------ one node's daemon
# Each running node has its pid in node<k>.pid, so `ctl` (another process) can start and
# stop nodes too; stop_all stops whatever runs at the end.

alive() {
    local pid=$1 state=
    kill -0 "$pid" 2>/dev/null || return 1
    # A node started by `ctl` is no child of ours: once it exited it may linger as a zombie.
    read -r _ _ state _ <"/proc/$pid/stat" 2>/dev/null || return 1
    [ "$state" != Z ]
}

node_pid() {
    local pid=
    [ -f "$dir/node$1.pid" ] && read -r pid <"$dir/node$1.pid"
    echo "$pid"
}

serving_count() {
    local count
    count=$(grep -c "serving IPC" "$dir/node$1.log" 2>/dev/null) || true
    echo "${count:-0}"
}

# A small parent shell waits for the daemon and writes its exit status to node<k>.status
# (128+N: killed by signal N), also when `ctl`, which started it, is long gone. It holds
# no descriptor of its starter's (ctl's output may be a pipe its caller reads to the end).
start_node() {
    local k=$1
    rm -f "$dir/node$k.pid" "$dir/node$k.status" "$dir/node$k.killed"
    (
        "$bin/rcpgd" --config "$dir/rcpg.conf" --nodeid "$k" --ipc "rcpg-node$k" --log-level "$log_level" \
            --state-dir "$dir/state" \
            >>"$dir/node$k.log" 2>&1 </dev/null &
        echo $! >"$dir/node$k.pid"
        status=0
        wait $! 2>/dev/null || status=$?
        if [ -e "$dir/node$k.killed" ]; then
            gone_us=$EPOCHREALTIME
            echo "${gone_us//[.,]/}000" >>"$dir/node$k.killed"
        fi
        if [ "$status" -ne 0 ]; then
            # kill_node writes node<k>.killed before it sends the signal.
            [ -e "$dir/node$k.killed" ] && cause=" (killed by \"ctl kill $k\", as asked)" || cause=
            echo "cluster.sh: rcpgd of node $k exited with status $status$cause"
        fi
        echo "$status" >"$dir/node$k.status"
    ) </dev/null >>"$dir/node$k.log" 2>&1 &
    for _ in $(seq 600); do
        [ -s "$dir/node$k.pid" ] && return 0
        sleep 0.05
    done
    echo "cluster.sh: node $k: rcpgd did not start" >&2
    return 1
}

# Waits (up to tries × 0.1 s) until node k's log has more than `before` "serving IPC" lines.
wait_serving() {
    local k=$1 before=$2 tries=$3 pid
    pid=$(node_pid "$k")
    for _ in $(seq "$tries"); do
        [ "$(serving_count "$k")" -gt "$before" ] && return 0
        alive "$pid" || return 1
        sleep 0.1
    done
    return 1
}

# SIGTERM (the node leaves the cluster cleanly), SIGKILL after 30 s: a clean leave waits
# up to 2 s for the sequencer, and the guest may be starved of CPU. Status 1, with a
# message, if it needed SIGKILL or rcpgd exited with a status other than 0.
stop_node() {
    local k=$1 pid status=0 exit_status=
    pid=$(node_pid "$k")
    [ -n "$pid" ] || return 0
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 300); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
            echo "cluster.sh: node $k did not exit within 30 s of SIGTERM; killed" >&2
            status=1
        fi
    fi
    for _ in $(seq 300); do
        [ -s "$dir/node$k.status" ] && break
        sleep 0.1
    done
    [ -s "$dir/node$k.status" ] && read -r exit_status <"$dir/node$k.status"
    if [ "$status" -eq 0 ] && [ "${exit_status:-0}" != 0 ]; then
        echo "cluster.sh: rcpgd of node $k exited with status $exit_status$( [ "$exit_status" -gt 128 ] &&
            echo " (signal $((exit_status - 128)))")" >&2
        status=1
    fi
    rm -f "$dir/node$k.pid"
    return "$status"
}

# SIGKILL: the node fails, it does not leave. Returns once rcpgd is gone and its exit
# status was recorded, so a restart cannot race with the old waiter's files; the pid file
# goes, so the end-of-run cleanup does not stop the node again or count its status.
kill_node() {
    local k=$1 pid killed_at_us
    pid=$(node_pid "$k")
    if [ -z "$pid" ] || ! alive "$pid"; then
        echo "cluster.sh ctl: node $k is not running" >&2
        return 2
    fi
    killed_at_us=$EPOCHREALTIME
    echo "${killed_at_us//[.,]/}000" >"$dir/node$k.killed"
    kill -KILL "$pid" 2>/dev/null || true
    # The kernel tears the RDMA resources down before the process is gone.
    for _ in $(seq 300); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        echo "cluster.sh ctl: node $k still there 30 s after SIGKILL" >&2
        return 1
    fi
    for _ in $(seq 300); do
        [ -s "$dir/node$k.status" ] && break
        sleep 0.1
    done
    rm -f "$dir/node$k.pid"
    return 0
}

if [ "$ctl" -eq 1 ]; then
    action=$1 k=${2:-}
    case $k in
    '' | *[!0-9]*) echo "cluster.sh ctl: usage: start|stop|kill K" >&2; exit 2 ;;
    esac
    if [ "$k" -lt 1 ] || [ "$k" -gt "$nodes" ]; then
        echo "cluster.sh ctl: no node $k (the cluster has $nodes)" >&2
        exit 2
    fi
    case $action in
    start)
        pid=$(node_pid "$k")
        if [ -n "$pid" ] && alive "$pid"; then
            echo "cluster.sh ctl: node $k is running already" >&2
            exit 2
        fi
        before=$(serving_count "$k")
        start_node "$k" || exit 1
        if ! wait_serving "$k" "$before" 900; then
            echo "cluster.sh ctl: node $k did not come up; its log:" >&2
            cat "$dir/node$k.log" >&2
            exit 1
        fi
        echo "node $k: RCPG_IPC=rcpg-node$k"
        exit 0
        ;;
    stop)
        if stop_node "$k"; then
            echo "node $k: stopped"
            exit 0
        fi
        exit 1
        ;;
    kill)
        status=0
        kill_node "$k" || status=$?
        [ "$status" -eq 0 ] && echo "node $k: killed"
        exit "$status"
        ;;
    *) echo "cluster.sh ctl: usage: start|stop|kill K" >&2; exit 2 ;;
    esac
fi

# ------------------------------------------------------------ where the device is
address=${RCPG_RDMA_ADDR:?cluster.sh: RCPG_RDMA_ADDR not set (run through scripts/softroce.sh)}
device=${RCPG_RDMA_DEV:-}

stop_all() {
    # Members first, so each leaves the running cluster cleanly; the sequencer (the lowest
    # running node id, also after a failover) last.
    for ((k = nodes; k >= 1; k--)); do
        stop_node "$k" || true
    done
}
trap stop_all EXIT
trap 'exit 130' INT TERM

is_late() {
    local l
    for l in "${late[@]}"; do
        [ "$l" -eq "$1" ] && return 0
    done
    return 1
}

(umask 077 && head -c 32 /dev/urandom >"$dir/authkey")
{
    echo "# written by scripts/cluster.sh"
    echo "nodelist {"
    for ((k = 1; k <= nodes; k++)); do
        echo "    node {"
        echo "        ring0_addr: $address"
        echo "        nodeid: $k"
        echo "        name: node$k"
        echo "    }"
    done
    echo "}"
    echo "rcpg {"
    [ -n "$device" ] && echo "    device: $device"
    echo "    cluster_key_file: authkey"
    echo "    ring_mib: $ring_mib"
    [ -z "$failure_timeout_ms" ] || echo "    failure_timeout_ms: $failure_timeout_ms"
    [ -z "$stuck_client_timeout_ms" ] || echo "    stuck_client_timeout_ms: $stuck_client_timeout_ms"
    [ -z "$client_backlog_mib" ] || echo "    client_backlog_mib: $client_backlog_mib"
    [ -z "$max_pinned_mib" ] || echo "    max_pinned_mib: $max_pinned_mib"
    echo "    sequencer_copy: $sequencer_copy"
    for ((k = 1; k <= nodes; k++)); do
        echo "    node {"
        echo "        nodeid: $k"
        echo "        port: $((port + k - 1))"
        echo "    }"
    done
    echo "}"
} >"$dir/rcpg.conf"
# The program COMMAND runs to start and stop nodes.
{
    echo "#!/usr/bin/env bash"
    echo "# written by scripts/cluster.sh: start|stop|kill K"
    printf 'exec %q ctl --nodes %q --dir %q --bin %q --log-level %q -- "$@"\n' "$SELF" "$nodes" "$dir" "$bin" \
        "$log_level"
} >"$dir/ctl"
chmod +x "$dir/ctl"

for ((k = 1; k <= nodes; k++)); do
    : >"$dir/node$k.log"
    rm -f "$dir/node$k.pid"
done
for ((k = 1; k <= nodes; k++)); do
    is_late "$k" && continue
    start_node "$k" || exit 1
    # The sequencer (node 1) first: the others are admitted in order.
    if [ "$k" -eq 1 ]; then
        wait_serving 1 0 100 || true
    fi
done
for ((k = 1; k <= nodes; k++)); do
    if is_late "$k"; then
        echo "node $k: RCPG_IPC=rcpg-node$k (late: not started; \"\$RCPG_CLUSTER_CTL\" start $k starts it)"
        continue
    fi
    if ! wait_serving "$k" 0 900; then
        echo "cluster.sh: node $k did not come up; its log:" >&2
        cat "$dir/node$k.log" >&2
        exit 1
    fi
    echo "node $k: RCPG_IPC=rcpg-node$k"
done
export RCPG_CLUSTER_NODES=$nodes RCPG_CLUSTER_DIR=$dir RCPG_CLUSTER_CTL=$dir/ctl
status=0
"$@" || status=$?
stop_all
# A failed test leaves the nodes' own account beside its output: CI keeps nothing else.
if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
    for ((k = 1; k <= nodes; k++)); do
        echo "cluster.sh: the test failed (exit $status); the last lines of node $k's log:" >&2
        tail -n 60 "$dir/node$k.log" >&2
    done
fi
exit "$status"
