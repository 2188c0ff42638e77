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

Options:
  --nodes N        number of nodes (default 3; 1..16)
  --ring-mib M     delivery ring size (default 64)
  --dir DIR        where configuration and logs go (default: a new directory
                   under ${TMPDIR:-/tmp}; kept after the run)
  --bin DIR        where rcpgd is (default: build/bin)
  --port P         rdma_cm port of node 1; node k uses P+k-1 (default 7401)
  --timeout-s N    hard limit for the whole run (default 600)
  --log-level L    rcpgd's log level (default info)
  -h, --help       show this text
EOF
}

nodes=3
ring_mib=64
dir=
bin=$ROOT/build/bin
port=7401
timeout_s=600
log_level=info
inside=0

while [ $# -gt 0 ]; do
    case $1 in
    run) shift ;;
    --inside) inside=1; shift ;;
    --nodes) nodes=$2; shift 2 ;;
    --ring-mib) ring_mib=$2; shift 2 ;;
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
if [ "$nodes" -lt 1 ] || [ "$nodes" -gt 16 ]; then
    echo "cluster.sh: --nodes must be from 1 to 16" >&2
    exit 2
fi
if [ ! -x "$bin/rcpgd" ]; then
    echo "cluster.sh: no rcpgd in $bin (build first: scripts/build.sh)" >&2
    exit 2
fi
if [ -z "$dir" ]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/rcpg-cluster.XXXXXX")
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd -P)

if [ "$inside" -eq 0 ]; then
    # The daemons need the RDMA device: run this script again where it is.
    exec "$ROOT/scripts/softroce.sh" run --timeout-s "$timeout_s" --rw "$dir" --rw "$PWD" -- \
        "$SELF" --inside --nodes "$nodes" --ring-mib "$ring_mib" --dir "$dir" --bin "$bin" --port "$port" \
        --log-level "$log_level" -- "$@"
fi

# ------------------------------------------------------------ where the device is
address=${RCPG_RDMA_ADDR:?cluster.sh: RCPG_RDMA_ADDR not set (run through scripts/softroce.sh)}
device=${RCPG_RDMA_DEV:-}
pids=()

stop_all() {
    local pid
    # Members first, so each leaves the running cluster cleanly; the sequencer last.
    for ((k = ${#pids[@]} - 1; k >= 0; k--)); do
        pid=${pids[$k]}
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}
trap stop_all EXIT
trap 'exit 130' INT TERM

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
    for ((k = 1; k <= nodes; k++)); do
        echo "    node {"
        echo "        nodeid: $k"
        echo "        port: $((port + k - 1))"
        echo "    }"
    done
    echo "}"
} >"$dir/rcpg.conf"

for ((k = 1; k <= nodes; k++)); do
    "$bin/rcpgd" --config "$dir/rcpg.conf" --nodeid "$k" --ipc "rcpg-node$k" --log-level "$log_level" \
        >"$dir/node$k.log" 2>&1 &
    pids+=($!)
    # The sequencer (node 1) first: the others are admitted in order.
    if [ "$k" -eq 1 ]; then
        for _ in $(seq 100); do
            grep -q "serving IPC" "$dir/node1.log" && break
            kill -0 "${pids[0]}" 2>/dev/null || break
            sleep 0.1
        done
    fi
done
for ((k = 1; k <= nodes; k++)); do
    ready=0
    for _ in $(seq 300); do
        if grep -q "serving IPC" "$dir/node$k.log"; then
            ready=1
            break
        fi
        kill -0 "${pids[$((k - 1))]}" 2>/dev/null || break
        sleep 0.1
    done
    if [ "$ready" -ne 1 ]; then
        echo "cluster.sh: node $k did not come up; its log:" >&2
        cat "$dir/node$k.log" >&2
        exit 1
    fi
    echo "node $k: RCPG_IPC=rcpg-node$k"
done
export RCPG_CLUSTER_NODES=$nodes RCPG_CLUSTER_DIR=$dir
status=0
"$@" || status=$?
stop_all
exit "$status"
