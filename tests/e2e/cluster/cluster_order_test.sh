#!/usr/bin/env bash
# A 3-node rcpg cluster over RDMA delivers one order, end to end, through corosync's CPG
# API: several clients on every node, a node that starts late, a node that stops cleanly.
#
# Runs inside scripts/cluster.sh (which boots the Soft-RoCE guest if needed), started with
# node 3 late:
#   scripts/cluster.sh run --late 3 [--bin DIR] [--dir DIR] -- \
#       tests/e2e/cluster/cluster_order_test.sh PATH/TO/cluster_order_client PATH/TO/rcpg-cpgtool
# (CTest: cluster_order_test, labels rdma and e2e.) Every client is a
# cluster_order_client process (cluster_order_client.c: message layout, output file).
#
# Four phases, each checked before the next starts; the three with clients each in their
# own group:
#   late   nodes 1 and 2 only: C clients on each join, and once all are members they send,
#          one message per 20 ms, at most 9/10 M each. Node 3 is started meanwhile, its C
#          clients join; everybody then sends the rest (M per client in all).
#   order  all three nodes: C clients on each start at once and send M each.
#   status rcpg-cpgtool --kv on every node, before and after phase order: every node
#          reports the view 1 2 3 with the same ring id and node 1 as sequencer; node 1
#          the role sequencer with nodes 2 and 3 as members, nodes 2 and 3 the role
#          member; during phase order every node delivered C x 3 x M messages into its
#          ring and the same bytes, which node 1 sequenced; nodes 2 and 3 each forwarded
#          their clients' C x M; node 1's device (its loopback) copied every payload
#          above the 128-byte inline limit into its ring; no node counted a protocol
#          violation.
#   down   all three nodes: C clients on each join; once all are members, node 2's rcpgd
#          gets SIGTERM while its clients are idle members. The clients on nodes 1 and 3
#          wait for the NODEDOWN confchg, then send M each.
# Checked in every phase:
#   - every client exits 0 and every message it delivered has the right length, header
#     and bytes (checksum ok);
#   - per sender, seqs are consecutive (FIFO); a client that was a member before any
#     message was sent delivers 0..M-1 of every sender, senders x M messages in all;
#   - one order: the message lines of every such client are identical; the whole event
#     stream (messages and confchgs) of any two clients is identical from the later of
#     their two joins on, so a late joiner sees exactly the suffix of the others' stream
#     from its own join confchg (a client whose daemon stopped: a prefix of that suffix).
# Phase late also: messages were exchanged before node 3's clients joined. Phase down
# also: before node 2 stops, rcpg-cpgtool --groups on every node lists exactly the
# phase's clients (nodeid:pid) as the group's members; the clients on nodes 1 and 3 see
# CPG_REASON_NODEDOWN (3) for exactly node 2's processes, and no other departure.
#
# Environment: RCPG_E2E_MESSAGES (M, default 2000), RCPG_E2E_CLIENTS (C, default 2).
# Output: a PASS/FAIL line per phase with what differs (phase status also shows what
# rcpg-cpgtool prints for the three nodes), then a summary; the clients' files stay in
# $RCPG_CLUSTER_DIR/order/<phase>/, the tool's in $RCPG_CLUSTER_DIR/order/status/.
# Exit 0 pass, 1 fail, 2 usage.

# check_file and compare_streams run through errors_from, which shellcheck does not follow.
# shellcheck disable=SC2317
set -uo pipefail

client=${1:-}
tool=${2:-}
if [ -z "$client" ] || [ ! -x "$client" ] || [ -z "$tool" ] || [ ! -x "$tool" ] || [ -z "${RCPG_CLUSTER_DIR:-}" ] ||
    [ -z "${RCPG_CLUSTER_CTL:-}" ]; then
    echo "usage: scripts/cluster.sh run --late 3 -- $0 PATH/TO/cluster_order_client PATH/TO/rcpg-cpgtool" >&2
    exit 2
fi
if [ "${RCPG_CLUSTER_NODES:-0}" -ne 3 ]; then
    echo "cluster_order_test: needs a 3-node cluster (got ${RCPG_CLUSTER_NODES:-none})" >&2
    exit 2
fi
if grep -q "serving IPC" "$RCPG_CLUSTER_DIR/node3.log" 2>/dev/null; then
    echo "cluster_order_test: node 3 must start late (scripts/cluster.sh --late 3)" >&2
    exit 2
fi

messages=${RCPG_E2E_MESSAGES:-2000}
per_node=${RCPG_E2E_CLIENTS:-2}
down_node=2
# Limits for what must happen, not how long it takes: a slow or busy host's guest may
# take several times the usual (a pass takes well under a third of each).
client_timeout_s=400
ready_timeout_s=180
# Clients block in poll, never spin: the guest has two CPUs for three daemons and up to
# six clients.
export RCPG_DISPATCH_SPIN_US=0

work=$RCPG_CLUSTER_DIR/order
rm -rf "$work"
mkdir -p "$work"

phases_passed=0
phases_failed=0
phase_errors=()

note() { echo "cluster_order_test: $*"; }
error() {
    phase_errors+=("$*")
    echo "cluster_order_test:   FAIL: $*"
}

# ------------------------------------------------------------------ clients
# Client names are node<k>-<i>; their pids (the shell's) go into client_pids[name].
declare -A client_pids

start_client() {
    local phase=$1 node=$2 name=$3
    shift 3
    RCPG_IPC=rcpg-node$node "$client" --group "order-$phase" --out "$work/$phase/$name.out" \
        --timeout-s "$client_timeout_s" "$@" 2>"$work/$phase/$name.err" &
    client_pids[$name]=$!
}

# Waits for every client; an exit status other than 0 is an error.
wait_clients() {
    local name status
    for name in "${!client_pids[@]}"; do
        status=0
        wait "${client_pids[$name]}" || status=$?
        if [ "$status" -ne 0 ]; then
            error "client $name exited with $status: $(tail -n 3 "$work/$phase/$name.err" | tr '\n' ' ')"
        fi
    done
    client_pids=()
}

# Ends every client of the phase (it cannot finish: the cluster is not what it waits for).
kill_clients() {
    local name
    for name in "${!client_pids[@]}"; do
        kill -TERM "${client_pids[$name]}" 2>/dev/null
        wait "${client_pids[$name]}" 2>/dev/null
    done
    client_pids=()
}

# Waits until the named clients wrote their ready files (the group has the members they
# wait for); false after the timeout or when one of them ended.
wait_ready() {
    local name deadline=$((SECONDS + ready_timeout_s)) missing
    while :; do
        missing=
        for name in "$@"; do
            if [ ! -s "$work/$phase/$name.ready" ]; then
                missing+=" $name"
                if ! kill -0 "${client_pids[$name]}" 2>/dev/null; then
                    error "client $name ended before the group was complete"
                    return 1
                fi
            fi
        done
        [ -z "$missing" ] && return 0
        if [ "$SECONDS" -ge "$deadline" ]; then
            error "after ${ready_timeout_s} s the group was still incomplete for:$missing"
            return 1
        fi
        sleep 0.1
    done
}

# ------------------------------------------------------------------ checks on output files

# The "nodeid:pid" of a client, from its file's header line.
client_id() {
    sed -n '1s/^# order_client nodeid=\([0-9]*\) pid=\([0-9]*\) .*/\1:\2/p' "$1"
}

# Line number (in the file) of the confchg in which client id $2 joined, empty if none.
join_line() {
    awk -v id="$2:" '$1 == "C" && index($3, "joined=") == 1 {
        n = split(substr($3, 8), list, ",")
        for (i = 1; i <= n; i++) if (index(list[i], id) == 1) { print NR; exit }
    }' "$1"
}

# Per-client checks: messages ok, FIFO per sender, and for a full member all of
# 0..M-1 of S senders. Prints one line per problem.
check_file() {
    local file=$1 full=$2 senders=$3 allow_gone=$4
    awk -v M="$messages" -v S="$senders" -v full="$full" -v allow_gone="$allow_gone" '
        $1 == "M" {
            count++
            key = $2 ":" $3
            if ($6 != "ok" && ++bad <= 3) print "corrupt message: " $0
            if (key in expect) {
                if ($4 != expect[key] && ++fifo <= 3)
                    print "FIFO: sender " key " seq " $4 " follows " expect[key] - 1
            } else {
                distinct++
                if (full && $4 != 0) print "sender " key " starts at seq " $4 ", not 0"
            }
            expect[key] = $4 + 1
        }
        $1 == "E" && !(allow_gone && $2 == "daemon-gone") { print "client ended with: " substr($0, 3) }
        END {
            if (bad > 3) print bad " corrupt messages in all"
            if (fifo > 3) print fifo " FIFO violations in all"
            if (allow_gone) exit
            for (key in expect) if (expect[key] != M) print "sender " key " ends at seq " expect[key] - 1 ", not " M - 1
            if (distinct != S) print distinct " senders, expected " S
            if (full && count != S * M) print count " messages, expected " S * M
        }' "$file"
}

# The event stream of a file from line $2 on (messages and confchgs; no E line).
stream_from() {
    tail -n "+$2" "$1" | grep -E '^(M|C) '
}

# Compares two clients' event streams from the later of their joins. With prefix=1 the
# second file may end early (its daemon stopped).
compare_streams() {
    local ref=$1 other=$2 prefix=$3 ref_id other_id line_ref line_other
    ref_id=$(client_id "$ref")
    other_id=$(client_id "$other")
    line_ref=$(join_line "$ref" "$other_id")
    if [ -n "$line_ref" ]; then
        line_other=$(join_line "$other" "$other_id")
    else
        line_other=$(join_line "$other" "$ref_id")
        line_ref=$(join_line "$ref" "$ref_id")
    fi
    local ref_name other_name
    ref_name=$(basename "$ref" .out)
    other_name=$(basename "$other" .out)
    if [ -z "$line_ref" ] || [ -z "$line_other" ]; then
        echo "no common join confchg between $ref_name ($ref_id) and $other_name ($other_id)"
        return
    fi
    local a=$work/$phase/.a b=$work/$phase/.b
    stream_from "$ref" "$line_ref" >"$a"
    stream_from "$other" "$line_other" >"$b"
    if [ "$prefix" -eq 1 ]; then
        head -n "$(wc -l <"$b")" "$a" >"$a.head" && mv "$a.head" "$a"
    fi
    if ! cmp -s "$a" "$b"; then
        local first
        first=$(cmp "$a" "$b" 2>&1 | sed -n 's/.*, line \([0-9]*\).*/\1/p')
        echo "event streams of $ref_name and $other_name differ from their common join on:" \
            "$(wc -l <"$a") vs $(wc -l <"$b") events, first difference at event ${first:-(end of the shorter)}"
        diff "$a" "$b" | head -n 8 | sed 's/^/      /' >&2
    fi
}

# The departures (nodeid:pid:reason) a client saw in its confchgs, one a line, sorted.
departures() {
    awk '$1 == "C" { for (i = 2; i <= NF; i++) if (index($i, "left=") == 1 && length($i) > 5) {
        n = split(substr($i, 6), list, ","); for (j = 1; j <= n; j++) print list[j] } }' "$1" | sort
}

# Every line COMMAND prints becomes an error, after PREFIX.
errors_from() {
    local prefix=$1 problem
    shift
    while IFS= read -r problem; do
        error "$prefix$problem"
    done < <("$@")
}

# Runs the common checks over a phase's files. Arguments: senders, the full members,
# then "--late" and the late joiners, then "--gone" and the clients whose daemon stopped.
# False if a client wrote no file (nothing else is checked then).
check_phase() {
    local senders=$1
    shift
    local -a full=() late=() gone=()
    local mode=full name
    for name in "$@"; do
        case $name in
        --late) mode=late; continue ;;
        --gone) mode=gone; continue ;;
        esac
        case $mode in
        full) full+=("$name") ;;
        late) late+=("$name") ;;
        gone) gone+=("$name") ;;
        esac
    done
    for name in "${full[@]}" "${late[@]}" "${gone[@]}"; do
        if [ ! -s "$work/$phase/$name.out" ]; then
            error "client $name wrote no output"
            return 1
        fi
    done
    for name in "${full[@]}"; do
        errors_from "$name: " check_file "$work/$phase/$name.out" 1 "$senders" 0
    done
    for name in "${late[@]}"; do
        errors_from "$name: " check_file "$work/$phase/$name.out" 0 "$senders" 0
    done
    for name in "${gone[@]}"; do
        errors_from "$name: " check_file "$work/$phase/$name.out" 0 0 1
    done
    # One order: the full members' message lines are identical...
    local ref=$work/$phase/${full[0]}.out
    grep '^M ' "$ref" >"$work/$phase/.ref-messages"
    for name in "${full[@]:1}"; do
        if ! grep '^M ' "$work/$phase/$name.out" | cmp -s - "$work/$phase/.ref-messages"; then
            error "$name delivered other messages or another order than ${full[0]}:"
            grep '^M ' "$work/$phase/$name.out" | diff "$work/$phase/.ref-messages" - | head -n 8 | sed 's/^/      /'
        fi
    done
    # ... and every client's event stream matches the reference from their later join.
    for name in "${full[@]:1}" "${late[@]}"; do
        errors_from "" compare_streams "$ref" "$work/$phase/$name.out" 0
    done
    for name in "${gone[@]}"; do
        errors_from "" compare_streams "$ref" "$work/$phase/$name.out" 1
    done
    return 0
}

begin_phase() {
    phase=$1
    phase_errors=()
    phase_start=$SECONDS
    mkdir -p "$work/$phase"
    note "phase $phase: $2"
}

end_phase() {
    local detail=$*
    if [ "${#phase_errors[@]}" -eq 0 ]; then
        note "PASS phase $phase ($((SECONDS - phase_start)) s): $detail"
        phases_passed=$((phases_passed + 1))
    else
        note "FAIL phase $phase ($((SECONDS - phase_start)) s): ${#phase_errors[@]} problem(s), listed above;" \
            "files in $work/$phase"
        phases_failed=$((phases_failed + 1))
    fi
}

# Appends the names of the clients on the given nodes (node<k>-<i>) to the array named $1.
add_names() {
    local -n into=$1
    local node i
    shift
    for node in "$@"; do
        for ((i = 1; i <= per_node; i++)); do
            into+=("node$node-$i")
        done
    done
}

# ------------------------------------------------------------------ rcpg-cpgtool

# Saves every node's status (rcpg-cpgtool --kv) as status/<label>.node<k>; a node the tool
# could not ask gets no file, and the tool's message in status/<label>.node<k>.err.
save_status() {
    local label=$1 k out
    mkdir -p "$work/status"
    for k in 1 2 3; do
        out=$work/status/$label.node$k
        "$tool" --kv --ipc "rcpg-node$k" >"$out" 2>"$out.err" || rm -f "$out"
    done
}

# The value of KEY in node K's status LABEL.
status_value() {
    sed -n "s/^$3=//p" "$work/status/$1.node$2" 2>/dev/null
}

# How much KEY grew on node K from status "before" to "after"; empty if unknown.
status_growth() {
    local before after
    before=$(status_value before "$1" "$2")
    after=$(status_value after "$1" "$2")
    [ -n "$before" ] && [ -n "$after" ] && echo $((after - before))
}

# Every node lists group $1 with exactly the named clients (node<k>-<i>) as its members.
check_listed_members() {
    local group=$1 k name node out listed expected
    shift
    expected=$(for name in "$@"; do
        node=${name#node}
        echo "${node%%-*}:${client_pids[$name]}"
    done | sort | tr '\n' ' ')
    for k in 1 2 3; do
        if ! out=$("$tool" --kv --groups --ipc "rcpg-node$k" 2>&1); then
            error "rcpg-cpgtool --groups on node $k failed: $out"
            continue
        fi
        listed=$(echo "$out" | awk -F= -v group="$group" '
            $1 ~ /^group\.[0-9]+\.name$/ && substr($0, length($1) + 2) == group { want = $1; sub(/name$/, "members", want); next }
            $1 == want { print substr($0, length($1) + 2) }' | tr ' ' '\n' | sort | tr '\n' ' ')
        if [ "$listed" != "$expected" ]; then
            error "rcpg-cpgtool on node $k lists '${listed% }' as members of $group, expected '${expected% }'"
        fi
    done
}

# ------------------------------------------------------------------ phase late
begin_phase late "nodes 1 and 2 exchange messages, node 3 starts, its clients join"
early=() newcomers=()
add_names early 1 2
add_names newcomers 3
total=$((3 * per_node))
hold=$((messages * 9 / 10))
for name in "${early[@]}"; do
    node=${name#node}
    node=${node%%-*}
    start_client late "$node" "$name" --send "$messages" --senders "$total" --wait-members "${#early[@]}" \
        --late-members "$total" --before-late "$hold" --pace-ms 20 --ready-file "$work/late/$name.ready"
done
if wait_ready "${early[@]}"; then
    sleep 1  # let them exchange messages first
    node3_start=$SECONDS
    if ctl_output=$("$RCPG_CLUSTER_CTL" start 3 2>&1); then
        note "node 3 started and serving after $((SECONDS - node3_start)) s"
        for name in "${newcomers[@]}"; do
            start_client late 3 "$name" --send "$messages" --senders "$total" --wait-members "$total"
        done
    else
        error "node 3 did not start: $(echo "$ctl_output" | tail -n 5)"
        kill_clients
    fi
else
    kill_clients
fi
wait_clients
detail=
if check_phase "$total" "${early[@]}" --late "${newcomers[@]}"; then
    # Where the newcomers came in, in the reference stream.
    ref=$work/late/${early[0]}.out
    first_join=
    for name in "${newcomers[@]}"; do
        line=$(join_line "$ref" "$(client_id "$work/late/$name.out")")
        if [ -n "$line" ] && { [ -z "$first_join" ] || [ "$line" -lt "$first_join" ]; }; then first_join=$line; fi
    done
    before=$(head -n "${first_join:-0}" "$ref" | grep -c '^M ')
    in_flight=$(head -n "${first_join:-0}" "$ref" | awk -v hold="$hold" '$1 == "M" { last[$2 ":" $3] = $4 }
        END { for (k in last) if (last[k] < hold - 1) n++; print n + 0 }')
    if [ "$before" -eq 0 ]; then
        error "no message was delivered before node 3's clients joined"
    fi
    seen=$(for name in "${newcomers[@]}"; do grep -c '^M ' "$work/late/$name.out"; done | tr '\n' ' ')
    detail="$total clients, $((total * messages)) messages in one order; node 3's clients joined after message $before"
    detail+=" ($in_flight of ${#early[@]} early senders still sending) and delivered the suffix: ${seen% } messages"
fi
end_phase "$detail"
if ! grep -q "serving IPC" "$RCPG_CLUSTER_DIR/node3.log"; then
    note "FAIL: node 3 never came up; the other phases need it. Daemon logs: $RCPG_CLUSTER_DIR/node<k>.log"
    tail -n 10 "$RCPG_CLUSTER_DIR"/node*.log
    exit 1
fi

# ------------------------------------------------------------------ phase order
save_status before
begin_phase order "$per_node clients on each of the 3 nodes send $messages messages each"
everyone=()
add_names everyone 1 2 3
for name in "${everyone[@]}"; do
    node=${name#node}
    node=${node%%-*}
    start_client order "$node" "$name" --send "$messages" --senders "$total" --wait-members "$total"
done
wait_clients
check_phase "$total" "${everyone[@]}" || true
end_phase "$total clients delivered the same $((total * messages)) messages in the same order"

# ------------------------------------------------------------------ phase status
begin_phase status "rcpg-cpgtool on every node: one view, node 1 sequences, counters add up over phase order"
save_status after
for label in before after; do
    for k in 1 2 3; do
        if [ ! -s "$work/status/$label.node$k" ]; then
            error "rcpg-cpgtool --kv on node $k ($label phase order) failed: $(cat "$work/status/$label.node$k.err")"
        fi
    done
done
sent=$((total * messages))
ring_id_1="$(status_value after 1 sequencer).$(status_value after 1 ring_seq)"
sequenced_bytes=$(status_growth 1 bytes_sequenced)
if [ "$(status_growth 1 messages_sequenced)" != "$sent" ]; then
    error "node 1 sequenced $(status_growth 1 messages_sequenced) messages during phase order, expected $sent"
fi
# Payloads above the 128-byte inline limit reach node 1's ring by its loopback (the
# device), not by a CPU copy: one device copy per such message of the phase.
large=$(awk '$1 == "M" && $5 > 128' "$work/order/${everyone[0]}.out" | wc -l)
if [ "$large" -eq 0 ] || [ "$(status_growth 1 messages_copied_by_device)" != "$large" ]; then
    error "node 1 copied $(status_growth 1 messages_copied_by_device) payloads by device during phase order;" \
        "$large messages were above the inline limit"
fi
if [ "$(grep -c '^remote\.[0-9]*\.state=member$' "$work/status/after.node1" 2>/dev/null)" != 2 ] ||
    [ "$(status_value after 1 remote.2.state)" != member ] || [ "$(status_value after 1 remote.3.state)" != member ]; then
    error "node 1 does not report nodes 2 and 3 as its members: $(grep '^remote\..*\.state=' "$work/status/after.node1" 2>/dev/null |
        tr '\n' ' ')"
fi
for k in 1 2 3; do
    role=$(status_value after "$k" role)
    if [ "$role" != "$([ "$k" -eq 1 ] && echo sequencer || echo member)" ]; then
        error "node $k reports role '$role'"
    fi
    [ "$(status_value after "$k" view)" = "1 2 3" ] ||
        error "node $k reports view '$(status_value after "$k" view)', expected '1 2 3'"
    [ "$(status_value after "$k" sequencer)" = 1 ] ||
        error "node $k reports sequencer '$(status_value after "$k" sequencer)', expected 1"
    ring_id="$(status_value after "$k" sequencer).$(status_value after "$k" ring_seq)"
    [ "$ring_id" = "$ring_id_1" ] || error "node $k reports ring id $ring_id, node 1 $ring_id_1"
    [ "$(status_growth "$k" messages_delivered)" = "$sent" ] ||
        error "node $k delivered $(status_growth "$k" messages_delivered) messages during phase order, expected $sent"
    [ "$(status_growth "$k" bytes_delivered)" = "$sequenced_bytes" ] ||
        error "node $k delivered $(status_growth "$k" bytes_delivered) bytes during phase order;" \
            "node 1 sequenced $sequenced_bytes"
    if [ "$k" -ne 1 ] && [ "$(status_growth "$k" messages_forwarded)" != $((per_node * messages)) ]; then
        error "node $k forwarded $(status_growth "$k" messages_forwarded) messages during phase order," \
            "expected its clients' $((per_node * messages))"
    fi
    [ "$(status_value after "$k" protocol_violations)" = 0 ] ||
        error "node $k counted $(status_value after "$k" protocol_violations) protocol violations"
done
note "rcpg-cpgtool --ipc rcpg-node1 --ipc rcpg-node2 --ipc rcpg-node3:"
"$tool" --ipc rcpg-node1 --ipc rcpg-node2 --ipc rcpg-node3 2>&1 | sed 's/^/    /'
end_phase "every node reports view 1 2 3, ring id $ring_id_1 and node 1 sequencing;" \
    "each delivered the $sent messages ($sequenced_bytes bytes) node 1 sequenced"

# ------------------------------------------------------------------ phase down
begin_phase down "node $down_node stops while its clients are idle members; the others go on"
survivors=() leavers=()
add_names leavers "$down_node"
for node in 1 2 3; do
    [ "$node" -eq "$down_node" ] || add_names survivors "$node"
done
for name in "${survivors[@]}"; do
    node=${name#node}
    node=${node%%-*}
    start_client down "$node" "$name" --send "$messages" --senders "${#survivors[@]}" --wait-members "$total" \
        --wait-nodedown --ready-file "$work/down/$name.ready"
done
for name in "${leavers[@]}"; do
    start_client down "$down_node" "$name" --until-daemon-gone --wait-members "$total" \
        --ready-file "$work/down/$name.ready"
done
if wait_ready "${survivors[@]}" "${leavers[@]}"; then
    check_listed_members order-down "${survivors[@]}" "${leavers[@]}"
    if ctl_output=$("$RCPG_CLUSTER_CTL" stop "$down_node" 2>&1); then
        note "node $down_node stopped (SIGTERM)"
    else
        error "node $down_node did not stop cleanly: $ctl_output"
    fi
else
    kill_clients
fi
wait_clients
if check_phase "${#survivors[@]}" "${survivors[@]}" --gone "${leavers[@]}"; then
    # Departures the survivors saw: exactly node 2's clients, each with NODEDOWN.
    expected=$(for name in "${leavers[@]}"; do echo "$(client_id "$work/down/$name.out"):3"; done | sort | tr '\n' ' ')
    for name in "${survivors[@]}"; do
        seen=$(departures "$work/down/$name.out" | tr '\n' ' ')
        if [ "$seen" != "$expected" ]; then
            error "$name saw departures '${seen% }', expected node $down_node's clients with NODEDOWN: '${expected% }'"
        fi
    done
fi
end_phase "the ${#survivors[@]} clients on the other nodes saw NODEDOWN for exactly node $down_node's" \
    "${#leavers[@]} clients, then delivered $((${#survivors[@]} * messages)) messages in one order"

# ------------------------------------------------------------------ summary
if [ "$phases_failed" -eq 0 ]; then
    note "PASS: $phases_passed of 4 phases passed ($SECONDS s)"
    exit 0
fi
note "FAIL: $phases_failed of 4 phases failed ($SECONDS s); daemon logs in $RCPG_CLUSTER_DIR/node<k>.log, their ends:"
for log in "$RCPG_CLUSTER_DIR"/node*.log; do
    echo "--- $log"
    tail -n 10 "$log"
done
exit 1
