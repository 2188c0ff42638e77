#!/usr/bin/env bash
# rcpg's transport beside perftest, on the same rxe device in one Soft-RoCE run:
#   throughput: ib_write_bw -R vs transport_bench --mode bw / ring-bw   (64 KiB writes)
#   latency:    ib_write_lat -R vs transport_bench --mode lat / ring-lat (64 B writes)
# Each pair runs REPS times, interleaved; the table shows medians (min..max) and ratios.
# Soft-RoCE under TCG gives functional numbers only: compare the ratios, not the values.
#
# Usage: bench/transport/run.sh [REPS]     (builds nothing: build transport_bench first)
# Env:   BW_ITERS (400), LAT_ITERS (2000), BUILD_DIR (build)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
BENCH=${BUILD_DIR:-$ROOT/build}/bin/transport_bench
BW_ITERS=${BW_ITERS:-400}
LAT_ITERS=${LAT_ITERS:-2000}
BW_SIZE=65536
LAT_SIZE=64

if [[ ${1:-} != --inside ]]; then
    REPS=${1:-5}
    [[ -x $BENCH ]] || { echo "run.sh: build transport_bench first ($BENCH)" >&2; exit 1; }
    echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty'), host $(hostname), $(nproc) cpus"
    exec "$ROOT/scripts/softroce.sh" run --timeout-s 900 \
        --env BW_ITERS="$BW_ITERS" --env LAT_ITERS="$LAT_ITERS" --env BENCH="$BENCH" --env REPS="$REPS" \
        -- "$ROOT/bench/transport/run.sh" --inside
fi

# ------------------------------------------------------------------ inside the device
DEV=${RCPG_RDMA_DEV:?}
ADDR=${RCPG_RDMA_ADDR:?}
REPS=${REPS:-5}
WORK=$(mktemp -d)
port=21000

# shellcheck source=bench/perftest.sh
source "$ROOT/bench/perftest.sh"

ours() {
    local mode=$1 size=$2 iters=$3
    port=$((port + 10))
    timeout 120 "$BENCH" --role server --mode "$mode" --port "$port" --size "$size" --iters "$iters" >/dev/null 2>"$WORK/srv.err" &
    local server=$!
    sleep 0.3
    retry "$BENCH" --role client --mode "$mode" --port "$port" --size "$size" --iters "$iters" | grep '^RESULT'
    wait "$server" || { cat "$WORK/srv.err" >&2; true; }
}

field() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }

for rep in $(seq "$REPS"); do
    # Result row of ib_write_bw: bytes iterations BW-peak BW-average MsgRate (Gb/s with --report_gbits).
    { perftest_pair ib_write_bw $BW_SIZE "$BW_ITERS" || true; } | awk -v s=$BW_SIZE '$1 == s { print $4 }' >>"$WORK/pt_bw"
    { ours bw $BW_SIZE "$BW_ITERS" || true; } | field gbps >>"$WORK/our_bw"
    { ours ring-bw $BW_SIZE "$BW_ITERS" || true; } | field gbps >>"$WORK/our_ring_bw"
    # Result row of ib_write_lat: bytes iterations t_min t_max t_typical t_avg ...
    { perftest_pair ib_write_lat $LAT_SIZE "$LAT_ITERS" || true; } | awk -v s=$LAT_SIZE '$1 == s { print $5 }' >>"$WORK/pt_lat"
    { ours lat $LAT_SIZE "$LAT_ITERS" || true; } | tee "$WORK/lat_row" | field lat_us_median >>"$WORK/our_lat"
    field connect_ms <"$WORK/lat_row" >>"$WORK/our_connect"
    { ours ring-lat $LAT_SIZE "$LAT_ITERS" || true; } | field lat_us_median >>"$WORK/our_ring_lat"
    echo "rep $rep: ib_write_bw $(tail -1 "$WORK/pt_bw") Gb/s, bw $(tail -1 "$WORK/our_bw"), ring-bw $(tail -1 "$WORK/our_ring_bw");" \
         "ib_write_lat $(tail -1 "$WORK/pt_lat") us, lat $(tail -1 "$WORK/our_lat"), ring-lat $(tail -1 "$WORK/our_ring_lat")"
done

stats() { sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR == 0) { print "- - -"; exit } printf "%s %s %s\n", v[int((NR + 1) / 2)], v[1], v[NR] }'; }
read -r pt_bw pt_bw_min pt_bw_max < <(stats "$WORK/pt_bw")
read -r pt_lat pt_lat_min pt_lat_max < <(stats "$WORK/pt_lat")
echo
echo "device $DEV ($RCPG_SOFTROCE) on $ADDR, $REPS repetitions, medians (min..max)"
printf '%-34s %-28s %s\n' "what" "median (min..max)" "vs perftest"
printf '%-34s %-28s %s\n' "ib_write_bw -R 64 KiB [Gb/s]" "$pt_bw ($pt_bw_min..$pt_bw_max)" "1.00"
for f in our_bw:"transport write 64 KiB [Gb/s]" our_ring_bw:"RingWriter record 64 KiB [Gb/s]"; do
    read -r m lo hi < <(stats "$WORK/${f%%:*}")
    printf '%-34s %-28s %s\n' "${f#*:}" "$m ($lo..$hi)" "$(awk -v a="$m" -v b="$pt_bw" 'BEGIN { printf "%.2f x (target >= 0.80)", a / b }')"
done
printf '%-34s %-28s %s\n' "ib_write_lat -R 64 B [us]" "$pt_lat ($pt_lat_min..$pt_lat_max)" "1.00"
for f in our_lat:"transport write 64 B [us]" our_ring_lat:"RingWriter record 64 B [us]"; do
    read -r m lo hi < <(stats "$WORK/${f%%:*}")
    printf '%-34s %-28s %s\n' "${f#*:}" "$m ($lo..$hi)" "$(awk -v a="$m" -v b="$pt_lat" 'BEGIN { printf "%.2f x (target <= 1.50)", a / b }')"
done
read -r m lo hi < <(stats "$WORK/our_connect")
printf '%-34s %-28s %s\n' "connection set-up [ms]" "$m ($lo..$hi)" "(connect() until the peer's regions are known)"
rm -rf "$WORK"
