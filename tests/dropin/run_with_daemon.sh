#!/usr/bin/env bash
# Runs a command against a private rcpgd of the build tree.
#   run_with_daemon.sh RCPGD COMMAND [ARGS...]
set -euo pipefail
rcpgd=$1
shift
export RCPG_IPC="rcpg-dropin-$$"
log=$(mktemp)
"$rcpgd" --ipc "$RCPG_IPC" >"$log" 2>&1 &
daemon=$!
trap 'kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 200); do
  [[ -n $(grep -l "serving IPC" "$log" 2>/dev/null) ]] && break
  kill -0 "$daemon" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.05
done
"$@"
