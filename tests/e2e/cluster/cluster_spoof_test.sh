#!/usr/bin/env bash
# A host on the fabric without the cluster key cannot evict a node, start a failover,
# stop an rcpgd or keep a genuine node out by connection attempts that name nodes: a
# refused or unproven attempt is nobody's word.
#
#   scripts/cluster.sh run --nodes 3 --late 3 -- tests/e2e/cluster/cluster_spoof_test.sh PATH/TO/fabric_rogue PATH/TO/rcpg-cpgtool
#
# (CTest: cluster_spoof_test, labels rdma, e2e and security.) Nodes 1 (the sequencer)
# and 2 run; node 3 is configured but not started. fabric_rogue makes attempts claiming
# to be
#   - the node itself (at nodes 1 and 2),
#   - the member (node 2, at the sequencer) and the sequencer (node 1, at the member),
#   - the absent node 3 (at both),
# each with a forged tag, as garbage, and as a replay of a genuine request (made with the
# cluster's key file, as if captured: claiming node 3, the node accepts it at the CM level
# and refuses it when no proof comes; claiming a connected node, it is refused at once).
# Every attempt must end with the rogue told nothing; then both rcpgds must still answer
# with the same view (1 2) and ring id, no failover and no node failed, and have counted
# every attempt. Last, node 3 starts while replays claiming it are pending at both nodes:
# it is admitted (view 1 2 3 everywhere). Before that, a holder of the key posing as
# node 3 learns nothing of either node's ring and cannot write past what it was given.
# Exit 0 pass, 1 fail, 2 usage.
set -u
if [ $# -ne 2 ] || [ -z "${RCPG_CLUSTER_DIR:-}" ]; then
    echo "usage: scripts/cluster.sh run --nodes 3 -- $0 FABRIC_ROGUE RCPG_CPGTOOL" >&2
    exit 2
fi
rogue=$1
cpgtool=$2
conf=$RCPG_CLUSTER_DIR/rcpg.conf
address=$(sed -n 's/^ *ring0_addr: *//p' "$conf" | head -1)
mapfile -t ports < <(sed -n 's/^ *port: *//p' "$conf")
failed=0
fail() {
    echo "cluster_spoof_test: FAIL: $*"
    failed=1
}

# kv K: rcpg-cpgtool --kv of node K; value K KEY: one value from it.
kv() { "$cpgtool" --ipc "rcpg-node$1" --kv; }
value() { kv "$1" | sed -n "s/^$2=//p" | head -1; }

declare -A ring_before
for k in 1 2; do
    ring_before[$k]=$(value "$k" ring_seq)
    [ -n "${ring_before[$k]}" ] || fail "node $k does not answer before the attempts"
done

# attempt K CLAIM MODE: one attempt at node K claiming node CLAIM (in the foreground).
declare -A attempts=([1]=0 [2]=0)
attempt() {
    local k=$1 claim=$2 mode=$3 extra=()
    case $mode in
    forged) ;;
    malformed) extra=(--malformed) ;;
    replayed) extra=(--key "$RCPG_CLUSTER_DIR/authkey") ;;
    esac
    if ! "$rogue" --to "$address:${ports[$((k - 1))]}" --claim "$claim" --target "$k" "${extra[@]}"; then
        fail "attempt at node $k claiming node $claim ($mode): the node told the rogue something, or never ended it"
    fi
    attempts[$k]=$((attempts[$k] + 1))
}

for mode in forged malformed replayed; do
    attempt 1 1 "$mode"   # the node itself
    attempt 2 2 "$mode"
    attempt 1 2 "$mode"   # the member, at the sequencer
    attempt 2 1 "$mode"   # the sequencer, at the member
    attempt 1 3 "$mode"   # the absent node
    attempt 2 3 "$mode"
done

for k in 1 2; do
    if ! status=$(kv "$k"); then
        fail "node $k's rcpgd does not answer after the attempts"
        continue
    fi
    get() { sed -n "s/^$1=//p" <<<"$status" | head -1; }
    echo "node $k: view $(get view), ring_seq $(get ring_seq), failovers $(get failovers), nodes_failed $(get nodes_failed)," \
        "handshakes_refused $(get handshakes_refused) of ${attempts[$k]} attempts"
    [ "$(get view)" = "1 2" ] || fail "node $k's view is '$(get view)', not '1 2'"
    [ "$(get ring_seq)" = "${ring_before[$k]}" ] || fail "node $k's ring id moved: ${ring_before[$k]} -> $(get ring_seq)"
    [ "$(get failovers)" = 0 ] || fail "node $k failed over"
    [ "$(get nodes_failed)" = 0 ] || fail "node $k removed a node for failing"
    [ "$(get handshakes_refused)" -ge "${attempts[$k]}" ] 2>/dev/null ||
        fail "node $k counted $(get handshakes_refused) refused attempts of ${attempts[$k]}"
done

# A holder of the key, as the absent node 3 (the worst a member can be): the member's and
# the sequencer's hellos name only node 3's own regions there, none of a ring (tags 1
# ring, 2 snapshot region, 8 ring control words, 9 repair window), and the device refuses
# a write past what it was given. Neither rcpgd notices more than a connection that broke.
for k in 2 1; do
    if ! "$rogue" --to "$address:${ports[$((k - 1))]}" --claim 3 --target "$k" --key "$RCPG_CLUSTER_DIR/authkey" \
        --prove "1 2 8 9"; then
        fail "a key holder as node 3 was shown a ring of node $k, or wrote past what it was given"
    fi
done
for k in 1 2; do
    [ "$(value "$k" view)" = "1 2" ] || fail "node $k's view is '$(value "$k" view)' after the key holder's attempt"
    [ "$(value "$k" failovers)" = 0 ] || fail "node $k failed over after the key holder's attempt"
done

# Replays claiming node 3 pending at both nodes while the real node 3 starts.
"$rogue" --to "$address:${ports[0]}" --claim 3 --target 1 --key "$RCPG_CLUSTER_DIR/authkey" >/dev/null &
pending1=$!
"$rogue" --to "$address:${ports[1]}" --claim 3 --target 2 --key "$RCPG_CLUSTER_DIR/authkey" >/dev/null &
pending2=$!
sleep 1
"$RCPG_CLUSTER_CTL" start 3 || fail "node 3 did not start"
deadline=$((SECONDS + 120))
until [ "$(value 1 view)" = "1 2 3" ] && [ "$(value 2 view)" = "1 2 3" ] && [ "$(value 3 view)" = "1 2 3" ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        fail "node 3 was not admitted within 120 s (views: '$(value 1 view)', '$(value 2 view)', '$(value 3 view)')"
        break
    fi
    sleep 0.5
done
wait "$pending1" || fail "the replay claiming node 3 at node 1 got an answer"
wait "$pending2" || fail "the replay claiming node 3 at node 2 got an answer"
echo "after node 3 started: views '$(value 1 view)', '$(value 2 view)', '$(value 3 view)'"

if [ "$failed" -ne 0 ]; then
    echo "cluster_spoof_test: FAIL"
    exit 1
fi
echo "cluster_spoof_test: PASS"
