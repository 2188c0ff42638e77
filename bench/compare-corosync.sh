#!/usr/bin/env bash
# Side by side, in one run: the same CPG client programs against a one-node rcpgd and
# against a one-node corosync 3.1.7 (Debian's package, knet on loopback). Each workload
# runs ROUNDS times, alternating the two systems; the table gives medians and ratios.
#
#   bench/compare-corosync.sh [--rounds N] [--seconds S] [--build DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=5
seconds=3
build=build
while (($#)); do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare-corosync.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

bin=$build/bin
for program in rcpgd cpg_flood cpg_pingpong cpg_flood_corosync cpg_pingpong_corosync; do
  [[ -x $bin/$program ]] || { echo "compare-corosync.sh: $bin/$program missing: build first (scripts/build.sh)" >&2; exit 1; }
done
command -v corosync >/dev/null || { echo "compare-corosync.sh: corosync is not installed (scripts/install-deps.sh)" >&2; exit 1; }
if pgrep -x corosync >/dev/null; then
  echo "compare-corosync.sh: a corosync is already running; it would share the 'cpg' IPC name" >&2
  exit 1
fi

work=$(mktemp -d)
rcpgd_pid=
corosync_pid=
cleanup() {
  [[ -n $rcpgd_pid ]] && kill "$rcpgd_pid" 2>/dev/null && wait "$rcpgd_pid" 2>/dev/null
  [[ -n $corosync_pid ]] && kill "$corosync_pid" 2>/dev/null && wait "$corosync_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

export RCPG_IPC="rcpg-bench-$$"
"$bin/rcpgd" --ipc "$RCPG_IPC" >"$work/rcpgd.log" 2>&1 &
rcpgd_pid=$!

cat >"$work/corosync.conf" <<CONF
totem {
  version: 2
  cluster_name: rcpgbench
  transport: knet
  crypto_cipher: none
  crypto_hash: none
}
nodelist {
  node {
    ring0_addr: 127.0.0.1
    nodeid: 1
    name: bench1
  }
}
logging {
  to_stderr: yes
  to_syslog: no
}
CONF
corosync -f -c "$work/corosync.conf" >"$work/corosync.log" 2>&1 &
corosync_pid=$!

wait_ready() {  # program, log: until a client can connect
  for _ in $(seq 300); do
    if "$1" -t 0.05 -s 64 >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "compare-corosync.sh: $2 did not come up:" >&2
  cat "$work/$2.log" >&2
  exit 1
}
wait_ready "$bin/cpg_flood" rcpgd
wait_ready "$bin/cpg_flood_corosync" corosync

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

# name | client args | metric | better (higher/lower)
workloads=(
  "flood 64 B, copy|cpg_flood -s 64 -t $seconds|msgs_per_s|higher"
  "flood 40 KB, copy (MB/s)|cpg_flood -s 40000 -t $seconds|mb_per_s|higher"
  "flood 40 KB, zcb (MB/s)|cpg_flood -z -s 40000 -t $seconds|mb_per_s|higher"
  "flood 1 MiB, copy (MB/s)|cpg_flood -s 1048576 -t $seconds|mb_per_s|higher"
  "self-delivery round trip 64 B, min (us)|cpg_pingpong -s 64 -n 20000|min_us|lower"
  "self-delivery round trip 64 B, p50 (us)|cpg_pingpong -s 64 -n 20000|p50_us|lower"
  "self-delivery round trip 64 B, p99 (us)|cpg_pingpong -s 64 -n 20000|p99_us|lower"
  "self-delivery round trip 64 KB, p50 (us)|cpg_pingpong -s 65536 -n 5000|p50_us|lower"
)

echo "rcpg $(git rev-parse --short HEAD 2>/dev/null || echo unknown) on $(hostname), kernel $(uname -r), $(nproc) cores"
echo "corosync $(corosync -v 2>/dev/null | sed -n 's/.*version .\([0-9.]*\).*/\1/p' | head -1), $rounds rounds per workload, medians"
echo
printf '| workload | rcpg | corosync | ratio |\n|---|---:|---:|---:|\n'
declare -A cache
for workload in "${workloads[@]}"; do
  IFS='|' read -r name command metric better <<<"$workload"
  read -r program args <<<"$command"
  for system in rcpg corosync; do
    key="$system|$command"
    if [[ -z ${cache[$key]:-} ]]; then
      : >"$work/$system.out"
      for ((r = 0; r < rounds; r++)); do
        if [[ $system == rcpg ]]; then exe=$bin/$program; else exe=$bin/${program}_corosync; fi
        # shellcheck disable=SC2086
        "$exe" $args >>"$work/$system.out" 2>>"$work/$system.err" || true
      done
      cache[$key]=$(cat "$work/$system.out")
    fi
  done
  rcpg_value=$(field "$metric" <<<"${cache[rcpg|$command]}" | median)
  corosync_value=$(field "$metric" <<<"${cache[corosync|$command]}" | median)
  if [[ -z $rcpg_value || -z $corosync_value ]]; then
    printf '| %s | %s | %s | failed |\n' "$name" "${rcpg_value:-failed}" "${corosync_value:-failed}"
    continue
  fi
  ratio=$(awk -v a="$rcpg_value" -v b="$corosync_value" -v better="$better" \
    'BEGIN { if (better == "higher") r = a / b; else r = b / a; printf "%.1fx %s", r, (better == "higher") ? "more" : "lower" }')
  printf '| %s | %s | %s | %s |\n' "$name" "$rcpg_value" "$corosync_value" "$ratio"
done
