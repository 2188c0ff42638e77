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
# Up to 60 s: a bound for a hang, far above a busy machine's start.
for _ in $(seq 1200); do
  [[ -n $(grep -l "serving IPC" "$log" 2>/dev/null) ]] && break
  kill -0 "$daemon" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.05
done
if ! grep -q "serving IPC" "$log"; then
  echo "run_with_daemon: rcpgd did not serve within 60 s; its log:" >&2
  cat "$log" >&2
  exit 1
fi
"$@"
