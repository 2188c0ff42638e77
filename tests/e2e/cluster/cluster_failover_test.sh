#!/usr/bin/env bash
# A 3-node rcpg cluster over RDMA survives the failure of a member and then of the
# sequencer, end to end, through corosync's CPG API: clients keep sending throughout,
# nothing a surviving client was told was taken is lost, and one order holds.
#
# Runs inside scripts/cluster.sh (which boots the Soft-RoCE guest if needed), with all
# three nodes started:
#   scripts/cluster.sh run --nodes 3 [--bin DIR] [--dir DIR] -- \
#       tests/e2e/cluster/cluster_failover_test.sh PATH/TO/cluster_failover_client PATH/TO/rcpg-cpgtool
# (CTest: cluster_failover_test, labels rdma and e2e.) Every client is a
# cluster_failover_client process (cluster_failover_client.c: message layout, output
# and status files), all in group "failover".
#
# Phases, each waited for (and its expectations checked) before the next starts:
#   flow           C clients on each node join; once the group has all 3 x C they send,
#                  R messages per second each, until every client delivered F messages.
#                  rcpg-cpgtool: nodes 2 and 3 pin their clients' 8 MiB copy parts;
#                  node 1, the sequencer, copies with its CPU and pins nothing.
#   kill-member    node 3's rcpgd gets SIGKILL while its clients send. The clients on
#                  nodes 1 and 2 see NODEDOWN for node 3's processes and a totem
#                  confchg without node 3; node 3's clients end with "daemon-gone".
#   rejoin         node 3 is started again; the sequencer (node 1) admits it; one
#                  receive-only client joins there and delivers F messages.
#   kill-sequencer node 1's rcpgd (the sequencer) gets SIGKILL. Node 2 takes over: the
#                  clients on nodes 2 and 3 see NODEDOWN for node 1's processes and a
#                  totem confchg without node 1 with ring id node 2; node 1's clients
#                  end with "daemon-gone"; traffic goes on (F more messages each).
#   end            the stop file appears: every surviving client sends an end marker
#                  and ends once every member's end marker was delivered (the same
#                  event everywhere).
#   minority       node 3's rcpgd gets SIGKILL again. Node 2, the sequencer, is left
#                  with 1 of 3 configured nodes: no majority, so it stops, with exit
#                  status 1 (rcpgd --help: a service manager restarts it).
# Then, on the clients' files:
#   order          no corrupt message; per sender FIFO without gaps or duplicates,
#                  from seq 0 for clients that were members before any send; node 2's
#                  clients delivered the same messages and events (confchgs, totem
#                  confchgs) in the same order; the receive-only client exactly their
#                  suffix from its join on; node 3's killed clients a prefix of it;
#                  node 1's killed clients a prefix of it too, but for what only the
#                  failed sequencer delivered: messages after the survivors' last entry
#                  from it, so where the survivors have node 1's NODEDOWN (counted and
#                  reported; they may be lost, as AGREED allows).
#   acked          every message a surviving client's cpg_mcast_joined returned CS_OK
#                  for (its A lines) is delivered exactly once, in send order, by every
#                  surviving client (the receive-only one: from its first delivery of
#                  that sender on); senders on killed nodes: delivered 0..k consecutively.
#   membership     node 2's clients see, in this order, NODEDOWN (reason 3) for exactly
#                  node 3's clients, a totem confchg without node 3, one with node 3
#                  back, NODEDOWN for exactly node 1's clients, a totem confchg without
#                  node 1 with ring id node 2; the receive-only client the second half.
#                  No other process leaves.
# The summary reports the failover times: from each SIGKILL (the time cluster.sh
# recorded) to the NODEDOWN confchg and the totem confchg at node 2's clients (the first
# and the last of them; CLOCK_REALTIME of one machine), how long the killed rcpgd took to
# be gone, and rcpgd's own last_failover_ms of nodes 2 and 3 (rcpg-cpgtool --kv; "n/a"
# where the daemon does not report it); $RCPG_CLUSTER_DIR/failover/times.kv has them as
# key=value lines. Times are reported, never asserted.
#
# Environment: RCPG_E2E_RATE_PER_S (R, default 200), RCPG_E2E_CLIENTS (C, default 2),
# RCPG_E2E_FLOW_MESSAGES (F, default 300).
# Output: a PASS/FAIL line per phase with what differs, then a summary; the clients'
# files stay in $RCPG_CLUSTER_DIR/failover/, the daemons' logs in $RCPG_CLUSTER_DIR.
# Exit 0 pass, 1 fail, 2 usage.

# The predicates run through wait_for, which shellcheck does not follow.
# shellcheck disable=SC2317
set -uo pipefail

client=${1:-}
tool=${2:-}
if [ -z "$client" ] || [ ! -x "$client" ] || [ -z "$tool" ] || [ ! -x "$tool" ] || [ -z "${RCPG_CLUSTER_DIR:-}" ] ||
    [ -z "${RCPG_CLUSTER_CTL:-}" ]; then
    echo "usage: scripts/cluster.sh run --nodes 3 -- $0 PATH/TO/cluster_failover_client PATH/TO/rcpg-cpgtool" >&2
    exit 2
fi
if [ "${RCPG_CLUSTER_NODES:-0}" -ne 3 ]; then
    echo "cluster_failover_test: needs a 3-node cluster (got ${RCPG_CLUSTER_NODES:-none})" >&2
    exit 2
fi
for k in 1 2 3; do
    if ! grep -q "serving IPC" "$RCPG_CLUSTER_DIR/node$k.log" 2>/dev/null; then
        echo "cluster_failover_test: node $k is not up (start all three nodes, no --late)" >&2
        exit 2
    fi
done

rate_per_s=${RCPG_E2E_RATE_PER_S:-200}
per_node=${RCPG_E2E_CLIENTS:-2}
flow_messages=${RCPG_E2E_FLOW_MESSAGES:-300}
total=$((3 * per_node))
# Generous: the guest is slow (TCG), more so on a busy host, and a failover waits for
# heartbeats only when a connection does not close; a SIGKILL closes them. A client of
# node 2 lives through every phase, so its limit covers all of theirs.
membership_timeout_s=90
flow_timeout_s=180
failure_timeout_s=90
end_timeout_s=180
client_timeout_s=$((3 * membership_timeout_s + 3 * flow_timeout_s + 2 * failure_timeout_s + end_timeout_s))
# Clients block in poll, never spin: the guest has two CPUs for three daemons and seven
# clients.
export RCPG_DISPATCH_SPIN_US=0

work=$RCPG_CLUSTER_DIR/failover
rm -rf "$work"
mkdir -p "$work"
stop_file=$work/stop

phases_passed=0
phases_failed=0
phase_errors=()

note() { echo "cluster_failover_test: $*"; }
error() {
    phase_errors+=("$*")
    echo "cluster_failover_test:   FAIL: $*"
}

begin_phase() {
    phase=$1
    phase_errors=()
    phase_start=$SECONDS
    note "phase $phase: $2"
}

end_phase() {
    local detail=$*
    if [ "${#phase_errors[@]}" -eq 0 ]; then
        note "PASS phase $phase ($((SECONDS - phase_start)) s): $detail"
        phases_passed=$((phases_passed + 1))
        return 0
    fi
    note "FAIL phase $phase ($((SECONDS - phase_start)) s): ${#phase_errors[@]} problem(s), listed above"
    phases_failed=$((phases_failed + 1))
    return 1
}

# ------------------------------------------------------------------ clients
# Client names: node<k>-<i> send, node3-r is the receive-only client on the restarted
# node 3. Their pids go into client_pids[name], exit statuses into client_status[name]
# once they ended.
declare -A client_pids client_status

start_client() {
    local node=$1 name=$2
    shift 2
    RCPG_IPC=rcpg-node$node "$client" --group failover --out "$work/$name.out" --status-file "$work/$name.status" \
        --stop-file "$stop_file" --timeout-s "$client_timeout_s" "$@" 2>"$work/$name.err" &
    client_pids[$name]=$!
}

# Appends the names of the sending clients on the given nodes to the array named $1.
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

# Sets `value` to KEY's value in client NAME's status file, empty if none. No fork: it
# runs ten times a second per client in a guest with little CPU to spare.
status_get() {
    local key v
    value=
    [ -f "$work/$1.status" ] || return 0
    while IFS='=' read -r key v; do
        if [ "$key" = "$2" ]; then
            value=$v
            return 0
        fi
    done <"$work/$1.status"
}

status_summary() {
    [ -f "$work/$1.status" ] && tr '\n' ' ' <"$work/$1.status"
}

in_list() {  # in_list ITEM COMMA-LIST
    case ",$2," in *",$1,"*) return 0 ;; esac
    return 1
}

# Predicates over a client's status file, for wait_for: NAME ARG.
has_members() { status_get "$1" max_members && [ "${value:-0}" -ge "$2" ]; }
is_joined() { status_get "$1" joined && [ "$value" = 1 ]; }
delivered_at_least() { status_get "$1" delivered && [ "${value:-0}" -ge "$2" ]; }
delivered_past_target() { status_get "$1" delivered && [ "${value:-0}" -ge "${target[$1]}" ]; }
has_node_in_view() { status_get "$1" ring_members && in_list "$2" "$value"; }
# NODEDOWN for node ARG's processes, and a totem confchg without it.
saw_removal() {
    status_get "$1" nodedown
    in_list "$2" "$value" || return 1
    status_get "$1" ring_members
    [ -n "$value" ] && ! in_list "$2" "$value"
}
# The same, by a view whose ring id is node 2's.
saw_removal_by_node2() {
    saw_removal "$1" "$2" || return 1
    status_get "$1" ring
    [ "${value%%.*}" = 2 ]
}
declare -A target

# Waits until PREDICATE NAME ARG holds for every named client. False, with an error that
# shows the status of the clients still missing, after TIMEOUT_S or when one of them ended.
wait_for() {
    local what=$1 timeout_s=$2 predicate=$3 arg=$4 name deadline
    shift 4
    deadline=$((SECONDS + timeout_s))
    while :; do
        local missing=()
        for name in "$@"; do
            "$predicate" "$name" "$arg" && continue
            missing+=("$name")
            if ! kill -0 "${client_pids[$name]}" 2>/dev/null; then
                error "client $name ended before $what: $(tail -n 2 "$work/$name.err" | tr '\n' ' ')"
                return 1
            fi
        done
        [ "${#missing[@]}" -eq 0 ] && return 0
        if [ "$SECONDS" -ge "$deadline" ]; then
            error "after $timeout_s s, not yet $what:"
            for name in "${missing[@]}"; do
                echo "      $name: $(status_summary "$name")"
            done
            return 1
        fi
        sleep 0.1
    done
}

# Waits up to TIMEOUT_S for the named clients to exit and records their statuses; one
# still running then is killed (status 124 is recorded for it) and is an error.
reap_clients() {
    local timeout_s=$1 name deadline status
    shift
    deadline=$((SECONDS + timeout_s))
    for name in "$@"; do
        while kill -0 "${client_pids[$name]}" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
            sleep 0.1
        done
        if kill -0 "${client_pids[$name]}" 2>/dev/null; then
            error "client $name did not end within $timeout_s s: $(status_summary "$name")"
            kill -TERM "${client_pids[$name]}" 2>/dev/null
            wait "${client_pids[$name]}" 2>/dev/null
            client_status[$name]=124
            continue
        fi
        status=0
        wait "${client_pids[$name]}" || status=$?
        client_status[$name]=$status
        if [ "$status" -ne 0 ]; then
            error "client $name exited with $status: $(tail -n 3 "$work/$name.err" | tr '\n' ' ')"
        fi
    done
}

# ------------------------------------------------------------------ nodes

# SIGKILL to node K's rcpgd; sets killed_ns to when the signal went and gone_ns to when
# the process was gone, as cluster.sh recorded them (killed_ns: else just before asking
# for the kill; gone_ns: else empty).
kill_node() {
    local k=$1 before_ns output
    before_ns=$(date +%s%N)
    if ! output=$("$RCPG_CLUSTER_CTL" kill "$k" 2>&1); then
        error "could not kill node $k: $output"
        return 1
    fi
    killed_ns='' gone_ns=''
    { read -r killed_ns && read -r gone_ns; } 2>/dev/null <"$RCPG_CLUSTER_DIR/node$k.killed"
    case $killed_ns in
    '' | *[!0-9]*) killed_ns=$before_ns ;;
    esac
    case $gone_ns in
    *[!0-9]*) gone_ns= ;;
    esac
    note "node $k killed (SIGKILL)"
}

# Saves node K's rcpg-cpgtool --kv output as status.<label>.node<k> (none if it failed).
save_tool_status() {
    local out=$work/status.$1.node$2
    "$tool" --kv --ipc "rcpg-node$2" >"$out" 2>"$out.err" || rm -f "$out"
}

# KEY from a saved tool status, "n/a" when the daemon did not report it.
tool_value() {
    local found
    found=$(sed -n "s/^$3=//p" "$work/status.$1.node$2" 2>/dev/null)
    echo "${found:-n/a}"
}

# ------------------------------------------------------------------ checks on output files
# One awk pass over every client's file does all checks: in this guest each process
# started costs about 0.1 s, so the checks start few.
#
# Arguments: name:role pairs, in the order of the files, which are given after them.
# Roles: gone (killed member node 3), sequencer (killed node 1), full (node 2: a member
# before anyone sent, to the end), late (the receive-only client on the restarted node 3).
# The killed nodes' files come first, so their processes are known when the survivors'
# confchgs are read. Prints "P <phase> <problem>" and "X <key> <value...>" lines.
analyze() {
    local roles=$1
    shift
    awk -v roles="$roles" '
        function problem(phase, text) { print "P " phase " " text }
        function field(line, name,   n, parts, i) {
            n = split(line, parts, " ")
            for (i = 2; i <= n; i++) if (index(parts[i], name "=") == 1) return substr(parts[i], length(name) + 2)
            return ""
        }
        BEGIN {
            nfiles = split(roles, pairs, " ")
            for (i = 1; i <= nfiles; i++) { split(pairs[i], kv, ":"); fname[i] = kv[1]; frole[i] = kv[2] }
            f = 0
        }
        FNR == 1 {
            f++
            node[f] = substr($3, 8); pid[f] = substr($4, 5); id[f] = node[f] ":" pid[f]
            if (frole[f] == "gone") { want3[id[f] ":3"] = 1; n3++ }
            if (frole[f] == "sequencer") { want1[id[f] ":3"] = 1; n1++ }
            if (frole[f] == "full" && ref == "") ref = f
            survivor[f] = frole[f] == "full" || frole[f] == "late"
            # Membership stages, for survivors: 0 before node 3 fails, 1 its NODEDOWNs seen,
            # 2 view without it, 3 node 3 back (where the receive-only client starts),
            # 4 NODEDOWNs of node 1 seen, 5 view without node 1 with ring id of node 2.
            stage[f] = frole[f] == "late" ? 3 : 0
            next
        }
        $1 == "A" {
            if ($2 != acks[f] && ++ack_gaps[f] <= 3) problem("acked", fname[f] ": ack of seq " $2 " follows " acks[f] - 1)
            acks[f] = $2 + 1
            next
        }
        $1 == "M" {
            key = $2 ":" $3
            if ($6 != "ok" && ++bad[f] <= 3) problem("order", fname[f] ": corrupt message: " $0)
            if ((f, key) in expect) {
                if ($4 != expect[f, key] && ++fifo[f] <= 3)
                    problem("order", fname[f] ": sender " key ": seq " $4 " follows " expect[f, key] - 1 \
                        " (gap, duplicate or reorder)")
            } else if (frole[f] != "late" && $4 != 0) {
                problem("order", fname[f] ": sender " key " starts at seq " $4 ", not 0")
            }
            expect[f, key] = $4 + 1
            dseq[f, key, ++dcount[f, key]] = $4
            msg[f, ++nmsg[f]] = $0
            ev[f, ++nev[f]] = $0
            next
        }
        $1 == "C" || $1 == "T" {
            t = substr($2, 3)
            line = $0
            sub(/ t=[0-9]+/, "", line)
            ev[f, ++nev[f]] = line
        }
        $1 == "C" {
            joined = field($0, "joined")
            n = split(joined, list, ",")
            for (i = 1; i <= n; i++) { split(list[i], parts, ":"); joinpos[f, parts[1] ":" parts[2]] = nev[f] }
            left = field($0, "left")
            if (!survivor[f] || left == "") next
            n = split(left, gone, ",")
            for (i = 1; i <= n; i++) {
                if (gone[i] in want3) {
                    if (stage[f] > 1) problem("membership", fname[f] ": node 3 process " gone[i] " leaves after the view without node 3: " line)
                    else { if (!seen3[f]++) print "X nodedown3 " fname[f] " " t; stage[f] = 1 }
                } else if (gone[i] in want1) {
                    if (stage[f] < 3) problem("membership", fname[f] ": node 1 process " gone[i] " leaves before node 3 was back in the view: " line)
                    else if (stage[f] > 4) problem("membership", fname[f] ": node 1 process " gone[i] " leaves after the view without node 1: " line)
                    else { if (!seen1[f]++) print "X nodedown1 " fname[f] " " t; stage[f] = 4 }
                } else {
                    problem("membership", fname[f] ": unexpected departure " gone[i] ": " line)
                }
            }
            next
        }
        $1 == "T" {
            if (!survivor[f]) next
            members = "," field($0, "members") ","
            ring = field($0, "ring")
            if (stage[f] == 1) {
                if (seen3[f] < n3) problem("membership", fname[f] ": totem confchg before all of node 3 left: " line)
                if (index(members, ",3,")) problem("membership", fname[f] ": the totem confchg after the NODEDOWN of node 3 still has node 3: " line)
                else { print "X view3 " fname[f] " " t; stage[f] = 2 }
            } else if (stage[f] == 2 && index(members, ",3,")) {
                stage[f] = 3
            } else if (stage[f] == 4) {
                if (seen1[f] < n1) problem("membership", fname[f] ": totem confchg before all of node 1 left: " line)
                if (index(members, ",1,")) problem("membership", fname[f] ": the totem confchg after the NODEDOWN of node 1 still has node 1: " line)
                else {
                    if (ring !~ /^2\./) problem("membership", fname[f] ": the view without node 1 has ring id " ring ", not one of node 2")
                    print "X view1 " fname[f] " " t
                    print "X ring1 " ring
                    stage[f] = 5
                }
            }
            next
        }
        $1 == "E" { ending[f] = substr($0, 3) }

        # Compares the event streams of a and b from the later of their joins (see the
        # header of this script for the modes).
        function compare(a, b, mode,   sa, sb, la, lb, i, count, j) {
            if ((a, id[b]) in joinpos) { sa = joinpos[a, id[b]]; sb = joinpos[b, id[b]] }
            else if ((b, id[a]) in joinpos) { sa = joinpos[a, id[a]]; sb = joinpos[b, id[a]] }
            if (sa == "" || sb == "") {
                problem("order", "no common join confchg between " fname[a] " (" id[a] ") and " fname[b] " (" id[b] ")")
                return
            }
            la = nev[a] - sa + 1; lb = nev[b] - sb + 1
            for (i = 0; i < la && i < lb; i++) if (ev[a, sa + i] != ev[b, sb + i]) break
            if (i == la && i == lb) { only[b] = 0; return }
            if (i == lb && mode != "exact") { only[b] = 0; return }
            if (i < la && i < lb && mode == "sequencer" && ev[a, sa + i] ~ ("^C reason=3 .*left=(.*,)?" node[b] ":")) {
                for (j = sb + i; j <= nev[b]; j++) if (ev[b, j] ~ /^M /) count++
                only[b] = count + 0
                return
            }
            problem("order", "event streams of " fname[a] " and " fname[b] " differ from their common join on: " la \
                " vs " lb " events; first difference at event " i + 1 ": " \
                (i < la ? ev[a, sa + i] : "(end)") " / " (i < lb ? ev[b, sb + i] : "(end)"))
        }
        # Every message survivor s acked is delivered exactly once and in order by r (the
        # receive-only client: from its first delivery of s on).
        function check_acked(s, r,   key, count, first, k) {
            key = id[s]
            count = dcount[r, key] + 0
            first = 0
            if (frole[r] == "late" && s != r) {
                if (count == 0) { problem("acked", fname[r] " delivered nothing of " fname[s] ", which acked " acks[s] + 0); return }
                first = dseq[r, key, 1]
            }
            for (k = 1; k <= count; k++) if (dseq[r, key, k] != first + k - 1) break
            if (k <= count || count != acks[s] - first)
                problem("acked", fname[r] " delivered " count " messages of " fname[s] " (" key "), which acked seq " \
                    first ".." acks[s] - 1 " (" acks[s] - first "); " (k <= count ? "delivery " k " is seq " dseq[r, key, k] \
                    ", expected " first + k - 1 : "the last delivered is seq " (count ? dseq[r, key, count] : "none")))
        }
        END {
            for (f = 1; f <= nfiles; f++) {
                if (bad[f] > 3) problem("order", fname[f] ": " bad[f] " corrupt messages in all")
                if (fifo[f] > 3) problem("order", fname[f] ": " fifo[f] " FIFO violations in all")
                if (survivor[f] && ending[f] != "") problem("order", fname[f] ": ended with \"" ending[f] "\"")
                if (!survivor[f] && ending[f] != "daemon-gone")
                    problem("order", fname[f] ": ended with \"" ending[f] "\", expected daemon-gone")
            }
            if (ref == "") { problem("order", "no client of node 2"); exit }
            for (f = 1; f <= nfiles; f++) {
                if (f == ref) continue
                if (frole[f] == "full") {
                    for (i = 1; i <= nmsg[f] && i <= nmsg[ref]; i++) if (msg[f, i] != msg[ref, i]) break
                    if (i <= nmsg[f] || i <= nmsg[ref])
                        problem("order", fname[f] " delivered other messages or another order than " fname[ref] \
                            ": " nmsg[f] " vs " nmsg[ref] " messages, first difference at message " i)
                    compare(ref, f, "exact")
                } else if (frole[f] == "late") {
                    same = nmsg[f] <= nmsg[ref]
                    for (i = 1; same && i <= nmsg[f]; i++) same = msg[f, i] == msg[ref, nmsg[ref] - nmsg[f] + i]
                    if (!same) problem("order", fname[f] ": its " nmsg[f] " messages are not the last ones of " fname[ref])
                    compare(ref, f, "exact")
                    print "X late_messages " nmsg[f]
                } else {
                    compare(ref, f, frole[f] == "gone" ? "prefix" : "sequencer")
                }
            }
            print "X ref_messages " nmsg[ref]
            for (s = 1; s <= nfiles; s++) {
                if (survivor[s]) {
                    for (r = 1; r <= nfiles; r++) if (survivor[r]) check_acked(s, r)
                    acked_survivors += acks[s]
                } else {
                    print "X killed_sender " fname[s] " " dcount[ref, id[s]] + 0 " " acks[s] + 0
                }
                if (frole[s] == "sequencer") print "X only_at_failed " fname[s] " " (s in only ? only[s] : "?")
            }
            print "X acked_survivors " acked_survivors + 0
            print "X complete 1"
            for (f = 1; f <= nfiles; f++) {
                if (!survivor[f]) continue
                s = stage[f]
                if (s < 1) problem("membership", fname[f] ": no NODEDOWN for the processes of node 3")
                else if (s < 2) problem("membership", fname[f] ": no totem confchg without node 3 after its NODEDOWN")
                else if (s < 3) problem("membership", fname[f] ": no totem confchg with node 3 back")
                else if (s < 4) problem("membership", fname[f] ": no NODEDOWN for the processes of node 1")
                else if (s < 5) problem("membership", fname[f] ": no totem confchg without node 1 after its NODEDOWN")
                if (frole[f] == "full" && s >= 1 && seen3[f] != n3)
                    problem("membership", fname[f] ": " seen3[f] " of the " n3 " processes of node 3 left with NODEDOWN")
                if (s >= 4 && seen1[f] != n1)
                    problem("membership", fname[f] ": " seen1[f] " of the " n1 " processes of node 1 left with NODEDOWN")
            }
        }' "$@"
}

# Milliseconds from ns $1 to ns $2, one decimal; "n/a" without both.
ms_between() {
    if [ -z "${1:-}" ] || [ -z "${2:-}" ]; then
        echo "n/a"
        return
    fi
    local ns=$(($2 - $1)) sign=
    if [ "$ns" -lt 0 ]; then
        sign=- ns=$((-ns))
    fi
    echo "$sign$((ns / 1000000)).$((ns % 1000000 / 100000))"
}

# Ends the run after a failed phase: the clients stop, and what is there is shown.
abort_run() {
    touch "$stop_file"
    local name running=()
    for name in "${!client_pids[@]}"; do
        [ -n "${client_status[$name]:-}" ] || running+=("$name")
    done
    phase_errors=()
    [ "${#running[@]}" -gt 0 ] && reap_clients 20 "${running[@]}" >/dev/null
    note "FAIL: phase $phase failed, the run stopped there ($SECONDS s). Clients' files in $work;" \
        "daemon logs in $RCPG_CLUSTER_DIR/node<k>.log, their ends:"
    for name in $(printf '%s\n' "${!client_pids[@]}" | sort); do
        echo "    $name: $(status_summary "$name")"
    done
    for log in "$RCPG_CLUSTER_DIR"/node*.log; do
        echo "--- $log"
        tail -n 15 "$log"
    done
    exit 1
}

# ------------------------------------------------------------------ phase flow
begin_phase flow "$per_node clients on each node join; once all $total are members they send $rate_per_s/s each"
senders1=() senders2=() senders3=()
add_names senders1 1
add_names senders2 2
add_names senders3 3
for name in "${senders1[@]}" "${senders3[@]}"; do
    start_client "${name:4:1}" "$name" --rate-per-s "$rate_per_s" --wait-members "$total" --may-lose-daemon
done
for name in "${senders2[@]}"; do
    start_client 2 "$name" --rate-per-s "$rate_per_s" --wait-members "$total"
done
all_senders=("${senders1[@]}" "${senders2[@]}" "${senders3[@]}")
wait_for "a member of a group of $total" "$membership_timeout_s" has_members "$total" "${all_senders[@]}" &&
    wait_for "delivered $flow_messages messages" "$flow_timeout_s" delivered_at_least "$flow_messages" "${all_senders[@]}"
# Pinned client memory: a member registers each client's 8 MiB copy part to forward
# from it; node 1 sequences with its CPU (rxe's default), reads no arena by device, and
# so pins none.
if [ "${#phase_errors[@]}" -eq 0 ]; then
    for k in 1 2 3; do
        save_tool_status flow "$k"
    done
    [ "$(tool_value flow 1 client_pinned_bytes)" = 0 ] ||
        error "node 1, a sequencer copying with its CPU, pins $(tool_value flow 1 client_pinned_bytes) bytes of" \
            "client memory, expected 0"
    for k in 2 3; do
        [ "$(tool_value flow "$k" client_pinned_bytes)" = $((per_node * (8 << 20))) ] ||
            error "node $k pins $(tool_value flow "$k" client_pinned_bytes) bytes of client memory for its" \
                "$per_node clients, expected their copy parts, $((per_node * (8 << 20)))"
    done
fi
end_phase "all $total clients members and sending; each delivered $flow_messages messages or more;" \
    "the members pinned their clients' copy parts, the sequencer nothing" || abort_run

# ------------------------------------------------------------------ phase kill-member
begin_phase kill-member "node 3 is killed (SIGKILL) while its clients send"
kill_node 3 && kill3_ns=$killed_ns gone3_ns=$gone_ns &&
    wait_for "past node 3's NODEDOWN and a view without it" "$failure_timeout_s" saw_removal 3 \
        "${senders1[@]}" "${senders2[@]}"
seen_after_s=$((SECONDS - phase_start))
reap_clients "$failure_timeout_s" "${senders3[@]}"
save_tool_status member-failed 1
end_phase "the clients on nodes 1 and 2 saw node 3's NODEDOWN and a view without it (within $seen_after_s s);" \
    "node 3's clients ended when their daemon went away" || abort_run

# ------------------------------------------------------------------ phase rejoin
begin_phase rejoin "node 3 starts again and is admitted; a receive-only client joins there"
rejoin_start=$SECONDS
if ctl_output=$("$RCPG_CLUSTER_CTL" start 3 2>&1); then
    note "node 3 serving again after $((SECONDS - rejoin_start)) s"
    start_client 3 node3-r --receive-only
    wait_for "joined" "$membership_timeout_s" is_joined "" node3-r &&
        wait_for "a view with node 3 back" "$membership_timeout_s" has_node_in_view 3 "${senders1[@]}" "${senders2[@]}" &&
        wait_for "delivered $flow_messages messages" "$flow_timeout_s" delivered_at_least "$flow_messages" node3-r
else
    error "node 3 did not start again: $(echo "$ctl_output" | tail -n 5)"
fi
end_phase "node 3 readmitted after $((SECONDS - rejoin_start)) s; its receive-only client joined and delivered" \
    "$flow_messages messages" || abort_run

# ------------------------------------------------------------------ phase kill-sequencer
begin_phase kill-sequencer "node 1, the sequencer, is killed (SIGKILL) while its clients send"
survivors=("${senders2[@]}" node3-r)
kill_node 1 && kill1_ns=$killed_ns gone1_ns=$gone_ns &&
    wait_for "past node 1's NODEDOWN and node 2's view without it" "$failure_timeout_s" saw_removal_by_node2 1 \
        "${survivors[@]}"
seen_after_s=$((SECONDS - phase_start))
reap_clients "$failure_timeout_s" "${senders1[@]}"
if [ "${#phase_errors[@]}" -eq 0 ]; then
    for name in "${survivors[@]}"; do
        status_get "$name" delivered
        target[$name]=$((value + flow_messages))
    done
    wait_for "delivered $flow_messages more messages after the failover" "$flow_timeout_s" delivered_past_target "" \
        "${survivors[@]}"
fi
save_tool_status sequencer-failed 2
save_tool_status sequencer-failed 3
end_phase "the clients on nodes 2 and 3 saw node 1's NODEDOWN and node 2's view without it (within" \
    "$seen_after_s s), then $flow_messages more messages each; node 1's clients ended when their daemon went away" ||
    abort_run

# ------------------------------------------------------------------ phase end
begin_phase end "the stop file appears; the survivors exchange end markers and finish"
touch "$stop_file"
reap_clients "$end_timeout_s" "${survivors[@]}"
for name in "${all_senders[@]}" node3-r; do
    [ -s "$work/$name.out" ] || error "client $name wrote no output"
done
end_phase "the ${#survivors[@]} surviving clients delivered every member's end marker and exited 0" || abort_run

# ------------------------------------------------------------------ phase minority
begin_phase minority "node 3 is killed; node 2, the sequencer, is left alone of 3 configured nodes"
node2_status=
if kill_node 3; then
    deadline=$((SECONDS + failure_timeout_s))
    while [ ! -s "$RCPG_CLUSTER_DIR/node2.status" ] && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.1
    done
    read -r node2_status 2>/dev/null <"$RCPG_CLUSTER_DIR/node2.status"
fi
if [ -z "$node2_status" ]; then
    error "node 2's rcpgd still runs $failure_timeout_s s after it lost its majority"
else
    # 1 asks a service manager for the restart that rejoins it to a running cluster.
    [ "$node2_status" = 1 ] || error "node 2's rcpgd exited with status $node2_status, expected 1 (lost its cluster)"
    grep -q "no majority" "$RCPG_CLUSTER_DIR/node2.log" || error "node 2's log does not say it had no majority"
    if ctl_output=$("$RCPG_CLUSTER_CTL" stop 2 2>&1) || [[ $ctl_output != *"exited with status 1"* ]]; then
        error "cluster.sh ctl stop 2 did not report node 2's failure: $ctl_output"
    fi
fi
end_phase "node 2 stopped with status 1 for lack of a majority, and cluster.sh reported it" || true

# ------------------------------------------------------------------ checks
declare -A problems facts
roles='' files=()
for name in "${senders3[@]}"; do roles+=" $name:gone"; files+=("$work/$name.out"); done
for name in "${senders1[@]}"; do roles+=" $name:sequencer"; files+=("$work/$name.out"); done
for name in "${senders2[@]}"; do roles+=" $name:full"; files+=("$work/$name.out"); done
roles+=" node3-r:late"
files+=("$work/node3-r.out")
while read -r kind key rest; do
    case $kind in
    P) problems[$key]+="$rest"$'\n' ;;
    X)
        case $key in
        nodedown3 | view3 | nodedown1 | view1 | killed_sender | only_at_failed)
            facts[$key.${rest%% *}]=${rest#* } ;;
        *) facts[$key]=$rest ;;
        esac
        ;;
    esac
done < <(analyze "${roles# }" "${files[@]}")

report_problems() {
    local problem
    while IFS= read -r problem; do
        [ -n "$problem" ] && error "$problem"
    done <<<"${problems[$1]:-}"
}

begin_phase order "one order, FIFO, intact messages"
[ -n "${facts[complete]:-}" ] || error "the analysis of the clients' files did not complete"
report_problems order
only_at_node1=
for name in "${senders1[@]}"; do
    only_at_node1+="${facts[only_at_failed.$name]:-?}/"
done
end_phase "node 2's clients delivered the same ${facts[ref_messages]:-?} messages and events in one order;" \
    "node3-r the last ${facts[late_messages]:-?} of them; node 3's killed clients a prefix; node 1's too, but for" \
    "${only_at_node1%/} messages only the failed sequencer delivered" || true

begin_phase acked "nothing a surviving client was told was taken is lost"
report_problems acked
# What senders on killed nodes had acked and node 2 did not deliver was lost with the node
# (AGREED promises nothing more): reported only.
lost_detail=
for name in "${senders3[@]}" "${senders1[@]}"; do
    read -r got acked <<<"${facts[killed_sender.$name]:-? ?}"
    lost_detail+=" $name $got of $acked,"
done
end_phase "the survivors' ${facts[acked_survivors]:-?} acknowledged messages delivered exactly once, in order, by" \
    "every survivor; the killed nodes' senders delivered consecutively (at node 2, delivered of acked:${lost_detail%,})" ||
    true

begin_phase membership "NODEDOWN for node 3's, then node 1's processes, each followed by a view without the node"
report_problems membership
end_phase "node 2's clients saw node 3 fail, come back, and node 1 fail; node3-r saw node 1 fail; ring id" \
    "${facts[ring1]:-?} after it" || true

# ------------------------------------------------------------------ summary
# From the SIGKILL to the event at node 2's clients: "first..last" of them (clients on one
# node get the same entry at different times: each waits for the guest's CPUs).
failover_ms() {
    local key=$1 since_ns=$2 name at first='' last=''
    for name in "${senders2[@]}"; do
        at=${facts[$key.$name]:-}
        [ -n "$at" ] || { echo "n/a"; return; }
        if [ -z "$first" ] || [ "$at" -lt "$first" ]; then first=$at; fi
        if [ -z "$last" ] || [ "$at" -gt "$last" ]; then last=$at; fi
    done
    echo "$(ms_between "$since_ns" "$first")..$(ms_between "$since_ns" "$last")"
}
# The same figures as key=value lines for bench/failover/run.sh: *_ms from the SIGKILL.
edge_ms() {  # key since_ns first|last
    local span
    span=$(failover_ms "$1" "$2")
    case $span in
    n/a) echo "n/a" ;;
    *) if [ "$3" = first ]; then echo "${span%%..*}"; else echo "${span##*..}"; fi ;;
    esac
}
{
    echo "member_gone_ms=$(ms_between "$kill3_ns" "$gone3_ns")"
    echo "member_nodedown_first_ms=$(edge_ms nodedown3 "$kill3_ns" first)"
    echo "member_view_last_ms=$(edge_ms view3 "$kill3_ns" last)"
    echo "sequencer_gone_ms=$(ms_between "$kill1_ns" "$gone1_ns")"
    echo "sequencer_nodedown_first_ms=$(edge_ms nodedown1 "$kill1_ns" first)"
    echo "sequencer_view_last_ms=$(edge_ms view1 "$kill1_ns" last)"
    echo "rcpgd_failover_ms_node2=$(tool_value sequencer-failed 2 last_failover_ms)"
    echo "rcpgd_failover_ms_node3=$(tool_value sequencer-failed 3 last_failover_ms)"
    echo "records_resent_node2=$(tool_value sequencer-failed 2 records_resent)"
    echo "records_resent_node3=$(tool_value sequencer-failed 3 records_resent)"
    echo "phases_failed=$phases_failed"
} >"$work/times.kv"
times="node 3 killed (its rcpgd gone after $(ms_between "$kill3_ns" "$gone3_ns") ms) -> at node 2's clients"
times+=" NODEDOWN after $(failover_ms nodedown3 "$kill3_ns") ms, view after $(failover_ms view3 "$kill3_ns") ms;"
times+=" node 1, the sequencer, killed (gone after $(ms_between "$kill1_ns" "$gone1_ns") ms) ->"
times+=" NODEDOWN after $(failover_ms nodedown1 "$kill1_ns") ms, view after $(failover_ms view1 "$kill1_ns") ms;"
times+=" rcpgd last_failover_ms: node 2 $(tool_value sequencer-failed 2 last_failover_ms),"
times+=" node 3 $(tool_value sequencer-failed 3 last_failover_ms)"
times+=" (failovers: node 2 $(tool_value sequencer-failed 2 failovers), node 3 $(tool_value sequencer-failed 3 failovers);"
times+=" nodes_failed: node 1 $(tool_value member-failed 1 nodes_failed), node 2 $(tool_value sequencer-failed 2 nodes_failed);"
times+=" records_resent: node 2 $(tool_value sequencer-failed 2 records_resent),"
times+=" node 3 $(tool_value sequencer-failed 3 records_resent))"
if [ "$phases_failed" -eq 0 ]; then
    note "PASS: $phases_passed of 8 phases passed ($SECONDS s); $times"
    exit 0
fi
note "FAIL: $phases_failed of 8 phases failed ($SECONDS s); $times"
note "clients' files in $work; daemon logs in $RCPG_CLUSTER_DIR/node<k>.log, their ends:"
for log in "$RCPG_CLUSTER_DIR"/node*.log; do
    echo "--- $log"
    tail -n 15 "$log"
done
exit 1
