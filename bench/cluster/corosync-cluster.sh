#!/usr/bin/env bash
# Runs a local N-node corosync cluster (knet) on this machine, runs a command against it
# and takes everything down again. Each node is one corosync in its own network
# namespace (one veth into a bridge) and its own mount namespace, so N corosyncs and
# their clients coexist on one kernel exactly as N machines would: libqb's IPC
# listeners are abstract unix sockets (one set per network namespace) and its
# shared-memory rings are files in /dev/shm (one private tmpfs per node).
# See usage() for the interface.
#
# Every process start costs a lot under the softroce guest's TCG (0.1 s to over 0.5 s
# when the host is busy), so the
# set-up batches its ip commands, the per-node and per-client helpers are small POSIX sh
# scripts rather than this file again, and membership is polled through the logs first.
set -euo pipefail

PROG=corosync-cluster.sh

readonly MAX_NODES=8
# The nodes' addresses exist only inside their own namespaces and the bridge lives in a
# namespace of its own, so this range never meets the machine's real networks.
readonly NET_PREFIX=10.77.0
readonly FORM_LIMIT_S=120  # a cluster that has not formed by then will not
readonly EX_TIMEOUT=124    # as timeout(1)
readonly EX_SETUP=125      # the cluster could not be set up or did not form

usage() {
    local version
    version=$(corosync -v 2>/dev/null | sed -n "s/.*version '\([0-9.]*\)'.*/corosync \1/p" | head -n 1) || true
    cat <<EOF
Usage:
  $PROG run [OPTIONS] -- COMMAND [ARGS...]
  $PROG cleanup [--prefix P]
  $PROG -h | --help
  "\$COROSYNC_CLUSTER_EXEC" K PROGRAM [ARGS...]     (from COMMAND, see below)

run: starts an N-node corosync cluster on this machine (or inside a guest, e.g.
  scripts/softroce.sh run -- bench/cluster/$PROG run -- COMMAND), waits until every
  node sees all N members, runs COMMAND, then stops every corosync it started and
  removes the network namespaces (with their veths and bridge) it created. This also
  happens when COMMAND fails, on SIGINT/SIGTERM and on timeout. Exits with COMMAND's
  status.

  Node k (1..N) is ${version:-corosync} started with "corosync -f" in
    - network namespace <P>k (P: --prefix), interface eth0 with address
      $NET_PREFIX.k/24, the other end of its veth on bridge br0 in namespace <P>sw;
    - a mount namespace of its own with fresh tmpfs on /run (so also /var/run,
      /var/run/corosync and corosync.pid) and on /dev/shm (libqb's IPC rings and
      corosync's blackbox), and DIR/node<k>/lib and DIR/node<k>/log bind-mounted on
      /var/lib/corosync and /var/log/corosync.
  All nodes read one DIR/corosync.conf: totem knet, ip_version ipv4, no crypto, token
  --token-ms (real timeout token + (N-2) x 650 ms), nodelist ring0_addr $NET_PREFIX.k,
  nodeid k, name node<k>; votequorum; logging to stderr (DIR/node<k>.log) with
  timestamps; with --no-rr, system { sched_rr: no }. Each corosync finds its own
  node by the address on its eth0. Other settings are corosync's defaults.
  The cluster counts as formed when corosync-cmapctl on every node lists N members
  with status "joined" (runtime.members); if that takes more than $FORM_LIMIT_S s, the
  run fails.

  COMMAND runs in the machine's own namespaces, with these variables:
    COROSYNC_CLUSTER_EXEC   a program: "\$COROSYNC_CLUSTER_EXEC" K PROGRAM [ARGS...]
                            runs PROGRAM in node K's network and mount namespaces
                            (nsenter into its corosync), in the caller's working
                            directory and environment; PROGRAM's CPG/CMAP/quorum
                            clients thus reach node K's corosync and no other.
                            Exits with PROGRAM's status (nsenter's if PROGRAM cannot
                            be started), 2 if there is no node K, 1 if node K's
                            corosync is not running. Any process started this way
                            that is still running when the cluster stops is killed.
    COROSYNC_CLUSTER_NODES  N
    COROSYNC_CLUSTER_DIR    DIR: corosync.conf, node<k>.log (corosync's output),
                            node<k>.pid, node<k>/lib, node<k>/log, exec (the
                            program above), node.sh (what makes a node's mounts
                            and starts its corosync)

Options of run:
  --nodes N       number of nodes, 1..$MAX_NODES (default 3)
  --dir DIR       where configuration and logs go (default: a new directory under
                  \${TMPDIR:-/tmp}); kept after the run. In a softroce guest, /tmp
                  is discarded with the guest: give a DIR in a writable share (the
                  working directory, or one given with softroce.sh --rw) to keep it.
  --timeout-s S   limit for the whole run, set-up included (default 600); on expiry
                  COMMAND's process group gets SIGTERM (SIGKILL 5 s later), the
                  cluster is stopped and the exit status is $EX_TIMEOUT (also when
                  it expires before the cluster has formed)
  --token-ms T    totem token timeout in ms (default 3000, corosync's own default)
  --no-rr         keep corosync at normal scheduling priority. By default each
                  corosync raises itself to SCHED_RR priority 99 (as on a real
                  cluster); with more nodes than cores, busy real-time corosyncs
                  leave their clients little CPU time.
  --prefix P      names of the namespaces: <P>1..<P>N and <P>sw (default rcpgcs;
                  letters, digits and '-', at most 20 characters). Runs with
                  different prefixes can coexist; they use the same addresses, but
                  each inside its own namespaces.

cleanup: removes what a run with prefix P left behind (after the script itself was
  killed with SIGKILL, say): stops the processes inside the namespaces
  <P>1..<P>$MAX_NODES and <P>sw (SIGTERM, SIGKILL after 5 s) and deletes those
  namespaces. It touches nothing else (a COMMAND that outlived its script keeps
  running), and refuses while a run with that prefix is in progress (a run holds
  the lock /run/corosync-cluster-<P>.lock).

run refuses (exit 1, with a message) if not run as root; if ip, unshare, nsenter,
mount, corosync, corosync-cmapctl, timeout or flock is missing; if a run with the
same prefix is in progress; or if any namespace of its prefix (<P>sw,
<P>1..<P>$MAX_NODES) already exists (then run "$PROG cleanup" first: run never
removes what it did not create). If the kernel does not let it create namespaces,
a bridge or veths, it says so and exits $EX_SETUP (run it inside the softroce guest
instead).

Exit status: COMMAND's; 1 refused (see above); 2 usage error; $EX_TIMEOUT timeout;
$EX_SETUP set-up failed or the cluster did not form (node logs are shown); 130/143
interrupted by SIGINT/SIGTERM.
EOF
}

die() {
    echo "$PROG: $*" >&2
    exit 1
}

# ------------------------------------------------------------------ options

nodes=3
dir=
timeout_s=600
token_ms=3000
prefix=rcpgcs
sched_rr=1

parse_prefix() {
    if ! [[ $1 =~ ^[A-Za-z0-9-]{1,20}$ ]]; then
        echo "$PROG: --prefix: letters, digits and '-', 1..20 characters" >&2
        exit 2
    fi
    prefix=$1
}

# Single-quoted for sh, whatever $1 contains.
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# Seconds (one decimal) since $1, a time in microseconds (${EPOCHREALTIME/./}).
since() {
    local d=$((${EPOCHREALTIME/./} - $1))
    printf '%d.%d' $((d / 1000000)) $((d / 100000 % 10))
}

# ------------------------------------------------------------------ helper scripts

# DIR/node.sh DIR K: the first process of node K's namespaces (started through ip netns
# exec and unshare --mount). It makes the node's private mounts and becomes its corosync,
# which is then the one process holding that mount namespace.
write_node_script() {
    local text
    IFS= read -r -d '' text <<'EOF' || true
#!/bin/sh
# written by corosync-cluster.sh: DIR K, run in node K's fresh namespaces
set -eu
dir=$1 k=$2
mount -t tmpfs -o mode=0755,nosuid,nodev corosync-run /run
# /var/run is a symbolic link to /run on current systems; cover it where it is not.
[ -L /var/run ] || mount -t tmpfs -o mode=0755,nosuid,nodev corosync-run /var/run
if [ ! -d /dev/shm ]; then
    echo "corosync-cluster.sh: node $k: /dev/shm does not exist (libqb's IPC needs it)" >&2
    exit 1
fi
mount -t tmpfs -o mode=1777,nosuid,nodev corosync-shm /dev/shm
for d in lib log; do
    if [ -d /var/$d/corosync ]; then
        mount --bind "$dir/node$k/$d" /var/$d/corosync
    fi
done
exec corosync -f -c "$dir/corosync.conf"
EOF
    printf '%s\n' "$text" >"$dir/node.sh"
}

# DIR/exec, COROSYNC_CLUSTER_EXEC. Node K is entered through its corosync's pid (the one
# process in its mount namespace); the pid is checked against the named network
# namespace, so a recycled pid is never entered.
write_exec_script() {
    local text
    IFS= read -r -d '' text <<'EOF' || true
if [ $# -lt 2 ]; then
    echo "usage: $0 K PROGRAM [ARGS...]" >&2
    exit 2
fi
k=$1
shift
case $k in
'' | *[!0-9]*) n=0 ;;
*) n=$k ;;
esac
if [ "$n" -lt 1 ] || [ "$n" -gt "$nodes" ]; then
    echo "corosync-cluster.sh exec: no node '$k' (the cluster has $nodes)" >&2
    exit 2
fi
pid=
[ -s "$dir/node$k.pid" ] && read -r pid <"$dir/node$k.pid"
if [ -z "$pid" ] || ! [ "/proc/$pid/ns/net" -ef "/run/netns/$prefix$k" ]; then
    echo "corosync-cluster.sh exec: corosync of node $k is not running (see $dir/node$k.log)" >&2
    exit 1
fi
# setns() into a mount namespace moves to its root directory: --wd opens the caller's
# working directory first and returns there.
exec nsenter --target "$pid" --mount --net --wd="$PWD" -- "$@"
EOF
    {
        echo '#!/bin/sh'
        echo "# written by corosync-cluster.sh: K PROGRAM [ARGS...] runs PROGRAM in node K's namespaces"
        echo "dir=$(shq "$dir") prefix=$(shq "$prefix") nodes=$nodes"
        printf '%s\n' "$text"
    } >"$dir/exec"
    chmod +x "$dir/exec"
}

# ------------------------------------------------------------------ run

t0=0             # when set-up started (SECONDS)
ns_ours=0        # set once our namespaces may exist: teardown removes them then
node_pids=()     # node k's corosync at index k
cmd_pid=
lock=
lock_fd=
found_ns=()

# Sets found_ns to the namespace names this prefix can use (any node count, bridge
# first) that exist now.
find_ns() {
    local k n
    found_ns=()
    for ((k = 0; k <= MAX_NODES; k++)); do
        n=$prefix$k
        ((k > 0)) || n=${prefix}sw
        [[ -e /run/netns/$n ]] && found_ns+=("$n")
    done
    return 0
}

# Bridge br0 in <P>sw and, for every node, a veth pair from there into <P>k. Everything
# is created inside the new namespaces, nothing in the machine's own: its firewall
# (Docker's FORWARD policy with br_netfilter, for one) never sees this traffic, and
# deleting the namespaces deletes all of it. One `ip -batch` per namespace.
setup_network() {
    local k
    {
        echo "netns add ${prefix}sw"
        for ((k = 1; k <= nodes; k++)); do echo "netns add $prefix$k"; done
    } | ip -batch - || return 1
    # The guest's kernel has bridge as a module; no error if it is built in or loaded.
    [[ -d /sys/module/bridge ]] || modprobe bridge 2>/dev/null || true
    {
        echo "link set lo up"
        echo "link add br0 type bridge"
        echo "link set br0 up"
        for ((k = 1; k <= nodes; k++)); do
            echo "link add n$k type veth peer name eth0 netns $prefix$k"
            echo "link set n$k master br0 up"
        done
    } | ip -n "${prefix}sw" -batch - || return 1
    for ((k = 1; k <= nodes; k++)); do
        printf '%s\n' "link set lo up" "addr add $NET_PREFIX.$k/24 dev eth0" "link set eth0 up" |
            ip -n "$prefix$k" -batch - || return 1
    done
}

write_config() {
    local k
    {
        echo "# written by $PROG"
        echo "totem {"
        echo "    version: 2"
        echo "    cluster_name: corosync-cluster"
        echo "    transport: knet"
        echo "    ip_version: ipv4"
        echo "    crypto_cipher: none"
        echo "    crypto_hash: none"
        echo "    token: $token_ms"
        echo "}"
        echo "nodelist {"
        for ((k = 1; k <= nodes; k++)); do
            echo "    node {"
            echo "        ring0_addr: $NET_PREFIX.$k"
            echo "        nodeid: $k"
            echo "        name: node$k"
            echo "    }"
        done
        echo "}"
        echo "quorum {"
        echo "    provider: corosync_votequorum"
        echo "}"
        if ((!sched_rr)); then
            echo "system {"
            echo "    sched_rr: no"
            echo "}"
        fi
        echo "logging {"
        echo "    to_stderr: yes"
        echo "    to_syslog: no"
        echo "    to_logfile: no"
        echo "    timestamp: on"
        echo "}"
    } >"$dir/corosync.conf"
}

start_node() {
    local k=$1
    : >"$dir/node$k.log"
    # ip netns exec, unshare and node.sh all exec without forking: $! is corosync's pid.
    # The node's mounts must not leak into the machine's mount namespace, while unmounts
    # made there (ip netns del of another node's namespace) must still reach it, or it
    # would pin the other namespaces: propagation slave (unshare's default, private,
    # would break the latter). The lock's descriptor is not passed on: a corosync that
    # outlives a killed script must not hold the lock `cleanup` needs.
    ip netns exec "$prefix$k" unshare --mount --propagation slave -- \
        /bin/sh "$dir/node.sh" "$dir" "$k" </dev/null >>"$dir/node$k.log" 2>&1 {lock_fd}>&- &
    node_pids[k]=$!
    echo "${node_pids[k]}" >"$dir/node$k.pid"
}

# Whether node k's log says its latest membership has all N nodes (cheap: no process
# in node k's namespaces). Votequorum logs "Members[N]: ..." for every new membership.
log_says_formed() {
    local line last=
    while IFS= read -r line; do
        [[ $line == *'[QUORUM] Members['* ]] && last=$line
    done <"$dir/node$1.log"
    [[ $last == *"[QUORUM] Members[$nodes]:"* ]]
}

# Members with status "joined" as node k's corosync sees them (0 if it does not answer).
joined_members() {
    local k=$1 n
    n=$(timeout 10 nsenter --target "${node_pids[k]}" --mount --net -- \
        corosync-cmapctl runtime.members 2>/dev/null |
        grep -c '^runtime\.members\.[0-9]*\.status (str) = joined$') || true
    echo "${n:-0}"
}

alive() { kill -0 "$1" 2>/dev/null; }

show_logs() {
    local k
    for ((k = 1; k <= nodes; k++)); do
        echo "$PROG: ---- $dir/node$k.log (last 30 lines) ----" >&2
        tail -n 30 "$dir/node$k.log" >&2 || true
    done
}

# Until every node's corosync lists all N members, or the deadline passes. cmapctl is
# the authority; it is asked once the logs say so, and every 5 s regardless (should
# corosync's log lines differ from the ones expected here).
wait_formed() {
    local deadline=$1 k ready pid asks logs_ready last_ask=$SECONDS
    while :; do
        logs_ready=0
        for ((k = 1; k <= nodes; k++)); do
            if ! alive "${node_pids[k]}"; then
                show_logs
                echo "$PROG: corosync of node $k exited during set-up" >&2
                return 1
            fi
            log_says_formed "$k" && logs_ready=$((logs_ready + 1))
        done
        if ((logs_ready == nodes || SECONDS - last_ask >= 5)); then
            # All nodes at once: each question costs a few process starts.
            last_ask=$SECONDS
            asks=()
            for ((k = 1; k <= nodes; k++)); do
                { (($(joined_members "$k") == nodes)); } &
                asks+=($!)
            done
            ready=0
            for pid in "${asks[@]}"; do
                wait "$pid" && ready=$((ready + 1))
            done
            ((ready == nodes)) && return 0
        fi
        if ((SECONDS >= deadline)); then
            show_logs
            echo "$PROG: the cluster did not form in $((SECONDS - t0)) s" \
                "(logs: $logs_ready of $nodes nodes saw all members)" >&2
            return 1
        fi
        sleep 0.2
    done
}

# Stops everything this run started; idempotent, runs on every way out.
teardown() {
    local k pid ns pids waited
    # COMMAND (interrupted): timeout(1) passes SIGTERM on to it; a COMMAND that ignores
    # it gets SIGKILL after 5 s, with its whole process group (timeout made one).
    if [[ -n $cmd_pid ]] && alive "$cmd_pid"; then
        kill -TERM "$cmd_pid" 2>/dev/null || true
        for ((waited = 0; waited < 50; waited++)); do
            alive "$cmd_pid" || break
            sleep 0.1
        done
        kill -KILL -- "-$cmd_pid" 2>/dev/null || true
        wait "$cmd_pid" 2>/dev/null || true
    fi
    cmd_pid=
    # All corosyncs at once: SIGTERM makes each leave cleanly; one at a time would make
    # the survivors re-form the membership after every exit.
    for pid in "${node_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for ((waited = 0; waited < 100; waited++)); do
        pids=()
        for pid in "${node_pids[@]}"; do
            alive "$pid" && pids+=("$pid")
        done
        ((${#pids[@]} == 0)) && break
        sleep 0.1
    done
    for k in "${!node_pids[@]}"; do
        if alive "${node_pids[k]}"; then
            echo "$PROG: corosync of node $k did not exit within 10 s of SIGTERM; killed" >&2
            kill -KILL "${node_pids[k]}" 2>/dev/null || true
        fi
        wait "${node_pids[k]}" 2>/dev/null || true
        rm -f "$dir/node$k.pid"
    done
    node_pids=()
    ((ns_ours)) || return 0
    # Whatever COMMAND started in a node through COROSYNC_CLUSTER_EXEC and left running
    # would keep the namespace alive. Only processes inside our namespaces are touched.
    # (The names were checked to be free under the lock before set-up: the ones that
    # exist now are ours.)
    find_ns
    for ns in "${found_ns[@]}"; do
        mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null)
        if ((${#pids[@]} > 0)); then
            echo "$PROG: killing ${#pids[@]} process(es) left in namespace $ns: ${pids[*]}" >&2
            kill -KILL "${pids[@]}" 2>/dev/null || true
        fi
    done
    if ((${#found_ns[@]} > 0)); then
        printf 'netns del %s\n' "${found_ns[@]}" | ip -force -batch - >/dev/null 2>&1 || true
        find_ns
        ((${#found_ns[@]} == 0)) ||
            echo "$PROG: could not delete network namespace(s) ${found_ns[*]}" >&2
    fi
    ns_ours=0
}

on_exit() {
    local rc=$? t
    trap - EXIT INT TERM
    t=${EPOCHREALTIME/./}
    teardown
    echo "$PROG: cluster stopped and removed in $(since "$t") s" >&2
    exit "$rc"
}

require_root_and_tools() {
    local t missing=()
    [[ $EUID -eq 0 ]] || die "must run as root (network and mount namespaces)"
    for t in ip unshare nsenter mount corosync corosync-cmapctl timeout flock; do
        command -v "$t" >/dev/null || missing+=("$t")
    done
    ((${#missing[@]} == 0)) ||
        die "missing: ${missing[*]} (corosync: scripts/install-deps.sh; ip: iproute2; the rest: util-linux, coreutils)"
}

take_lock() {
    exec {lock_fd}>"$lock"
    flock -n "$lock_fd" || return 1
}

cmd_cleanup() {
    local ns pids waited
    require_root_and_tools
    take_lock || die "a run with prefix '$prefix' is in progress (it holds $lock); not touching it"
    find_ns
    if ((${#found_ns[@]} == 0)); then
        echo "$PROG: nothing to clean up for prefix '$prefix'"
        return 0
    fi
    for ns in "${found_ns[@]}"; do
        mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null)
        if ((${#pids[@]} > 0)); then
            echo "$PROG: $ns: stopping ${pids[*]}"
            kill -TERM "${pids[@]}" 2>/dev/null || true
            for ((waited = 0; waited < 50; waited++)); do
                mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null)
                ((${#pids[@]} == 0)) && break
                sleep 0.1
            done
            ((${#pids[@]} == 0)) || kill -KILL "${pids[@]}" 2>/dev/null || true
        fi
        ip netns del "$ns"
        echo "$PROG: $ns: deleted"
    done
}

cmd_run() {
    local status deadline remaining k t_start subdirs here
    (($# > 0)) || { echo "$PROG run: no COMMAND given (it goes after --)" >&2; exit 2; }
    if ! [[ $nodes =~ ^[0-9]+$ ]] || ((nodes < 1 || nodes > MAX_NODES)); then
        echo "$PROG: --nodes must be from 1 to $MAX_NODES" >&2
        exit 2
    fi
    if ! [[ $timeout_s =~ ^[0-9]+$ ]] || ((timeout_s < 1)); then
        echo "$PROG: --timeout-s must be a positive integer" >&2
        exit 2
    fi
    if ! [[ $token_ms =~ ^[0-9]+$ ]] || ((token_ms < 100)); then
        echo "$PROG: --token-ms must be an integer of at least 100" >&2
        exit 2
    fi
    require_root_and_tools
    take_lock || die "a run with prefix '$prefix' is in progress (it holds $lock); use another --prefix"
    find_ns
    ((${#found_ns[@]} == 0)) ||
        die "network namespace(s) ${found_ns[*]} exist already, left by an earlier run" \
            "that did not finish; \"$PROG cleanup --prefix $prefix\" removes them"
    if [[ -z $dir ]]; then
        dir=$(mktemp -d "${TMPDIR:-/tmp}/corosync-cluster.XXXXXX")
    fi
    subdirs=()
    for ((k = 1; k <= nodes; k++)); do subdirs+=("$dir/node$k/lib" "$dir/node$k/log"); done
    mkdir -p "$dir" "${subdirs[@]}"
    # The absolute, physical path (without forking a subshell: each process start costs).
    here=$PWD
    cd -P "$dir"
    dir=$PWD
    cd "$here"

    t0=$SECONDS
    t_start=${EPOCHREALTIME/./}
    deadline=$((SECONDS + timeout_s))
    trap on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    ns_ours=1
    if ! setup_network >"$dir/setup.log" 2>&1; then
        cat "$dir/setup.log" >&2
        echo "$PROG: cannot create network namespaces, a bridge or veths here" \
            "(a container may forbid it; run inside the guest: scripts/softroce.sh run -- bench/cluster/$PROG run ...)" >&2
        exit "$EX_SETUP"
    fi
    write_config
    write_node_script
    write_exec_script
    for ((k = 1; k <= nodes; k++)); do
        start_node "$k"
    done
    if ! wait_formed $((deadline < t0 + FORM_LIMIT_S ? deadline : t0 + FORM_LIMIT_S)); then
        ((SECONDS < deadline)) || exit "$EX_TIMEOUT"
        exit "$EX_SETUP"
    fi
    for ((k = 1; k <= nodes; k++)); do
        echo "node $k: $NET_PREFIX.$k, network namespace $prefix$k, corosync pid ${node_pids[k]}"
    done
    echo "$PROG: cluster of $nodes node(s) formed $(since "$t_start") s after the start; logs in $dir"

    export COROSYNC_CLUSTER_EXEC=$dir/exec COROSYNC_CLUSTER_NODES=$nodes COROSYNC_CLUSTER_DIR=$dir
    remaining=$((deadline - SECONDS))
    ((remaining > 0)) || remaining=1
    # In the background so that SIGINT/SIGTERM reach the trap while COMMAND runs;
    # timeout(1) gives COMMAND (its whole process group) the rest of the time limit.
    # Job control is off, so stdin is handed on explicitly (else it would be /dev/null).
    timeout -k 5 "$remaining" "$@" <&0 {lock_fd}>&- &
    cmd_pid=$!
    status=0
    wait "$cmd_pid" || status=$?
    cmd_pid=
    if ((status == EX_TIMEOUT)) && ((SECONDS >= deadline)); then
        echo "$PROG: COMMAND timed out (--timeout-s $timeout_s)" >&2
    fi
    exit "$status"
}

main() {
    local sub=${1:-}
    (($# > 0)) && shift
    case $sub in
        -h | --help | help) usage; exit 0 ;;
        run | cleanup) ;;
        "") usage >&2; exit 2 ;;
        *) echo "$PROG: unknown command '$sub'" >&2; usage >&2; exit 2 ;;
    esac
    while (($# > 0)); do
        case $1 in
            --nodes) nodes=${2:?--nodes needs a value}; shift 2 ;;
            --nodes=*) nodes=${1#*=}; shift ;;
            --dir) dir=${2:?--dir needs a value}; shift 2 ;;
            --dir=*) dir=${1#*=}; shift ;;
            --timeout-s) timeout_s=${2:?--timeout-s needs a value}; shift 2 ;;
            --timeout-s=*) timeout_s=${1#*=}; shift ;;
            --token-ms) token_ms=${2:?--token-ms needs a value}; shift 2 ;;
            --token-ms=*) token_ms=${1#*=}; shift ;;
            --prefix) parse_prefix "${2:?--prefix needs a value}"; shift 2 ;;
            --prefix=*) parse_prefix "${1#*=}"; shift ;;
            --no-rr) sched_rr=0; shift ;;
            -h | --help) usage; exit 0 ;;
            --) shift; break ;;
            *) echo "$PROG: unknown argument '$1' (COMMAND goes after --)" >&2; exit 2 ;;
        esac
    done
    lock=/run/corosync-cluster-$prefix.lock
    case $sub in
        run) cmd_run "$@" ;;
        cleanup)
            (($# == 0)) || { echo "$PROG cleanup: unexpected argument '$1'" >&2; exit 2; }
            cmd_cleanup
            ;;
    esac
}

main "$@"
