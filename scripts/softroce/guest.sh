#!/bin/bash
# Stage 2 of the Soft-RoCE guest: PID 1 after switch_root, running on the
# host's own bash and tools (the root file system is the host's /, read-only,
# under a tmpfs overlay).
#
# Contract with scripts/softroce.sh (all files in the per-run share):
#   config   sourced here: addresses, device names, writable shares, the
#            command and its environment
#   booted   written when the rxe device is up, just before the command runs
#   stdout, stderr   the command's output (the host streams them live)
#   rc       the command's exit status; written last
#   error    a harness failure inside the guest (then there is no rc)
#
# No `set -e`: if PID 1 exits the kernel panics, and the host would only see
# a dead guest instead of the reason.
set -uo pipefail

S=/run/softroce
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { echo "softroce-guest: $*" >&2; }

power_off() {
    sync
    echo o > /proc/sysrq-trigger
    # sysrq works asynchronously; PID 1 must still never return.
    while :; do sleep 60; done
}

fail() {
    log "FATAL: $*"
    printf '%s\n' "$*" > "$S/error"
    power_off
}

# shellcheck source=/dev/null
. "$S/config" || fail "cannot read $S/config"

# The guest kernel's modules sit in the host's cache, visible through the
# root share; mounting them where kmod looks lets the host's modprobe load
# anything a test needs later (bridge, netfilter, ...).
if ! mkdir -p "/lib/modules/$SR_KREL" ||
    ! mount --bind "$SR_MODULES_DIR" "/lib/modules/$SR_KREL"; then
    fail "bind-mount guest kernel modules"
fi

# Parts of the host's tree are replaced by what a booted system would have:
# /dev/shm, which devtmpfs lacks but every shared-memory user (libqb IPC,
# memfd-named rings) needs. /tmp is not covered: the host's files there (a
# checkout or build under /tmp) must stay visible; the overlay root already
# keeps the guest's own writes private.
mkdir -p /dev/shm /dev/pts
chmod 1777 /tmp
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm || fail "mount /dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts || fail "mount /dev/pts"
# udev normally provides these; bash process substitution needs /dev/fd.
ln -sfn /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mkdir -p /dev/mqueue && mount -t mqueue mqueue /dev/mqueue 2>/dev/null
hostname "$SR_HOSTNAME" 2>/dev/null || true

# Writable shares: cache=mmap: writes go straight to the host (so logs and
# build outputs are there as soon as they are written) while shared
# writable mmap still works.
for i in "${!SR_RW_TAGS[@]}"; do
    if ! mkdir -p "${SR_RW_PATHS[$i]}" ||
        ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=mmap \
            "${SR_RW_TAGS[$i]}" "${SR_RW_PATHS[$i]}"; then
        fail "mount writable share ${SR_RW_PATHS[$i]}"
    fi
done

# rxe has to live in the initial network namespace (its UDP socket is
# created there), and rdma_cm cannot resolve addresses on lo, so the device
# sits on one end of a veth pair. The guest has no NIC: nothing it sends can
# leave the machine.
ip link set lo up || fail "lo up"
ip link add "$SR_NETDEV" mtu "$SR_MTU" type veth peer name "$SR_PEER" mtu "$SR_MTU" ||
    fail "create veth pair"
ip addr add "$SR_ADDR/$SR_PREFIX" dev "$SR_NETDEV" || fail "address on $SR_NETDEV"
ip link set "$SR_PEER" up || fail "$SR_PEER up"
ip link set "$SR_NETDEV" up || fail "$SR_NETDEV up"
rdma link add "$SR_DEV" type rxe netdev "$SR_NETDEV" || fail "rdma link add $SR_DEV"

# devtmpfs creates the character devices asynchronously after registration.
for _ in $(seq 100); do
    if [ -c /dev/infiniband/rdma_cm ] && [ -e "/sys/class/infiniband/$SR_DEV" ] &&
        compgen -G '/dev/infiniband/uverbs*' >/dev/null; then
        break
    fi
    sleep 0.1
done
[ -c /dev/infiniband/rdma_cm ] || fail "/dev/infiniband/rdma_cm did not appear"
compgen -G '/dev/infiniband/uverbs*' >/dev/null || fail "no /dev/infiniband/uverbs* device"

read -r up _ < /proc/uptime
echo "$up" > "$S/booted"

cd "$SR_CWD" || fail "cannot enter working directory $SR_CWD"
env -i "${SR_ENV[@]}" "${SR_CMD[@]}" < /dev/null > "$S/stdout" 2> "$S/stderr"
rc=$?
cd /

read -r up _ < /proc/uptime
echo "$up" > "$S/finished"

# Daemons the command left behind would otherwise hold the writable shares
# open while the guest is switched off. They get a moment to exit cleanly
# (and flush their logs); the wait ends as soon as they are gone.
user_processes_left() {
    local p cmdline
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        [[ $p == 1 || $p == "$BASHPID" ]] && continue
        cmdline=
        read -r -d '' cmdline 2>/dev/null <"/proc/$p/cmdline"
        # Kernel threads (and zombies) have an empty command line.
        [[ -n $cmdline ]] && return 0
    done
    return 1
}
for sig in TERM KILL; do
    kill -"$sig" -1 2>/dev/null
    for _ in $(seq 40); do
        user_processes_left || break
        sleep 0.05
    done
done
for ((i = ${#SR_RW_PATHS[@]} - 1; i >= 0; i--)); do
    umount "${SR_RW_PATHS[$i]}" 2>/dev/null || true
done

# rc is written last (and renamed into place) so the host never reads a
# half-written status.
echo "$rc" > "$S/rc.tmp" && mv "$S/rc.tmp" "$S/rc"
power_off
