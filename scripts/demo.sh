#!/usr/bin/env bash
# The main job on the embedded default: a one-node rcpgd with no configuration, and a
# short demonstration against it with corosync's own API: throughput floods (copying
# and zero-copy sends) and the self-delivery round trip. Stops the daemon it started.
#
#   scripts/demo.sh [--build DIR] [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."

build=build
seconds=2
while (($#)); do
  case $1 in
    --build) build=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
bin=$build/bin

export RCPG_IPC="rcpg-demo-$$"
log=$(mktemp)
"$bin/rcpgd" --ipc "$RCPG_IPC" >"$log" 2>&1 &
daemon=$!
trap 'kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null; rm -f "$log"' EXIT INT TERM
for _ in $(seq 100); do
  grep -q "serving IPC" "$log" && break
  kill -0 "$daemon" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.05
done
sed 's/^/  daemon: /' "$log"

echo "rcpgd is serving a one-node cluster on RCPG_IPC=$RCPG_IPC"
echo
echo "Flood: one process sends to its own group as fast as flow control allows."
"$bin/cpg_flood" -s 64 -t "$seconds"
"$bin/cpg_flood" -s 40000 -t "$seconds"
"$bin/cpg_flood" -z -s 40000 -t "$seconds"
echo
echo "Self-delivery round trip (send, then dispatch until the message is back):"
"$bin/cpg_pingpong" -s 64 -n 20000
"$bin/cpg_pingpong" -s 65536 -n 5000
echo
echo "Compare with corosync on this machine: bench/compare-corosync.sh"
