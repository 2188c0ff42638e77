#!/usr/bin/env bash
# Gives a command a Soft-RoCE (rxe) RDMA device and runs it.
#
# Where the running kernel has rdma_rxe, the device is created on the host
# itself. Where it has not (containers, minimal cloud kernels, CI machines),
# a small qemu guest is booted under TCG with Debian's distribution kernel;
# its root file system is the host's / (read-only, with a tmpfs overlay), so
# the command runs the host's own binaries and libraries unchanged.
# See usage() for the interface.
set -euo pipefail

SR_SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
SR_GUEST_DIR=$SR_SCRIPT_DIR/softroce
SR_PROG=${0##*/}

# Exit codes of the harness itself (the command's own code is passed through).
readonly EX_SKIP=77      # no way to get an rxe device on this machine
readonly EX_TIMEOUT=124  # same as timeout(1)
readonly EX_HARNESS=125  # set-up failed or the guest died before finishing

readonly SR_PACKAGES=(qemu-system-x86 busybox-static cpio kmod xz-utils
    rdma-core ibverbs-utils rdmacm-utils perftest iproute2)

# Modules the guest loads from its initramfs, dependencies resolved on the
# host. crc32_generic is needed by rxe's ICRC: without it `rdma link add`
# fails with a misleading "No such file or directory".
readonly SR_GUEST_MODULES=(virtio_pci 9pnet_virtio 9p overlay veth
    crc32_generic rdma_rxe ib_uverbs rdma_ucm)

# 198.18.0.0/15 is reserved for network benchmarking (RFC 2544): it cannot
# clash with a real private network the host may route.
SR_ADDR=${RCPG_SOFTROCE_ADDR:-198.18.0.1}
SR_PREFIX=${RCPG_SOFTROCE_PREFIX:-24}
# rxe derives its RDMA MTU from the netdev's: 9000 gives the 4096-byte RoCE
# MTU of jumbo-frame fabrics, and under TCG more than doubles throughput
# compared with 1500 (which limits rxe to 1024).
SR_MTU=${RCPG_SOFTROCE_MTU:-9000}
SR_CACHE=${RCPG_CACHE_DIR:-$HOME/.cache/rcpg}/softroce
SR_TIMEOUT=${RCPG_SOFTROCE_TIMEOUT_S:-600}
SR_MODE=${RCPG_SOFTROCE_MODE:-auto}
SR_MEM=${RCPG_SOFTROCE_MEM_MB:-2048}
SR_SMP=${RCPG_SOFTROCE_SMP:-2}
# KVM is off by default: on nested-virtualisation hosts /dev/kvm can exist
# and still hang the guest, while TCG always works.
SR_ACCEL=${RCPG_SOFTROCE_ACCEL:-tcg}
SR_VERBOSE=${RCPG_SOFTROCE_VERBOSE:-0}

usage() {
    cat <<EOF
Usage:
  $SR_PROG run [OPTIONS] -- COMMAND [ARGS...]
  $SR_PROG check
  $SR_PROG deps
  $SR_PROG prepare [--refresh]
  $SR_PROG --help

Runs COMMAND with a Soft-RoCE (rxe) RDMA device. If the kernel has rdma_rxe,
the device is created on the host (needs root); otherwise a small qemu guest
(TCG, Debian's kernel) boots with the host's / as its read-only root, creates
the device there and runs COMMAND in the same working directory.

Commands:
  run      create the device, run COMMAND, remove the device; exits with
           COMMAND's exit status
  check    print which way (host or vm) would be used and why; exits 0 if
           one is possible, 77 if neither is
  deps     install the Debian packages the harness and the RDMA tests need
           (apt-get; quiet, does nothing if they are installed)
  prepare  fetch and unpack the guest kernel and build the initramfs into the
           cache now (run does this on first use); --refresh re-resolves the
           kernel package even if one is cached

Options of run:
  --timeout-s N   hard limit for the whole guest run, boot included
                  (default $SR_TIMEOUT; env RCPG_SOFTROCE_TIMEOUT_S); on the
                  host path it limits COMMAND
  --mode M        auto (default), host or vm (env RCPG_SOFTROCE_MODE)
  --rw DIR        make DIR writable inside the guest, changes going straight
                  to the host; repeatable. Default: the working directory.
                  Everything else is read-only host files under a throw-away
                  tmpfs overlay; /run and /dev/shm are fresh tmpfs.
  --no-rw         share nothing writable (the guest's writes are discarded)
  --env NAME[=VALUE]
                  pass one more variable into the guest; repeatable
  --keep          keep the run directory (console log, output files)
  -v, --verbose   show progress, boot and run times, the guest's console

Inside, COMMAND sees:
  RCPG_RDMA_DEV   the rxe device name (rxe0 in the guest)
  RCPG_RDMA_ADDR  the IPv4 address the device is bound to; give every
                  endpoint its own rdma_cm port on this one address
  RCPG_SOFTROCE   vm or host
In the guest, COMMAND gets a clean environment with these host variables:
PATH HOME USER LOGNAME SHELL LANG LANGUAGE LC_* TZ TERM LD_LIBRARY_PATH
LD_PRELOAD CI MAKEFLAGS CTEST_* GTEST_* *SAN_OPTIONS RCPG_*, the names in
RCPG_SOFTROCE_PASSENV (space-separated) and those given with --env.

Exit status: COMMAND's, or 77 (no way to get an rxe device), 124 (timeout),
125 (harness failure, e.g. the guest panicked; its console is shown).

Environment: RCPG_CACHE_DIR (cache root, default ~/.cache/rcpg; kernel and
initramfs go to its softroce/ folder), RCPG_SOFTROCE_ADDR (default 198.18.0.1),
RCPG_SOFTROCE_MTU (9000), RCPG_SOFTROCE_MEM_MB (2048), RCPG_SOFTROCE_SMP (2),
RCPG_SOFTROCE_ACCEL (tcg),
RCPG_SOFTROCE_KERNEL_DEB (use this linux-image .deb instead of downloading),
RCPG_SOFTROCE_KERNEL_ARGS and RCPG_SOFTROCE_QEMU_ARGS (extra kernel command
line and qemu arguments, for debugging).
EOF
}

log() { echo "softroce: $*" >&2; }
vlog() { if [[ $SR_VERBOSE == 1 ]]; then echo "softroce: $*" >&2; fi; }
die() {
    echo "softroce: error: $*" >&2
    exit "$EX_HARNESS"
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- packages

as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}

can_be_root() {
    [[ $EUID -eq 0 ]] || { command -v sudo >/dev/null && sudo -n true 2>/dev/null; }
}

pkg_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

missing_packages() {
    local p
    command -v dpkg-query >/dev/null || return 0
    for p in "${SR_PACKAGES[@]}"; do
        pkg_installed "$p" || echo "$p"
    done
}

cmd_deps() {
    local missing apt_log
    mapfile -t missing < <(missing_packages)
    ((${#missing[@]} > 0)) || return 0
    command -v apt-get >/dev/null || die "apt-get not found; install: ${missing[*]}"
    can_be_root || die "root (or password-less sudo) needed to install: ${missing[*]}"
    log "installing ${missing[*]}"
    apt_log=$(mktemp)
    # A fresh machine may have no package lists yet: update only if the
    # first attempt fails, so the usual case costs no network round trip.
    # The lock timeout lets concurrent first runs queue instead of failing.
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=300)
    if ! as_root "${apt[@]}" install -y --no-install-recommends "${missing[@]}" \
        >"$apt_log" 2>&1; then
        if ! { as_root "${apt[@]}" update &&
            as_root "${apt[@]}" install -y --no-install-recommends "${missing[@]}"; } \
            >"$apt_log" 2>&1; then
            tail -n 20 "$apt_log" >&2
            rm -f "$apt_log"
            die "apt-get install failed: ${missing[*]}"
        fi
    fi
    rm -f "$apt_log"
}

# ---------------------------------------------------------------- checks

# Sets HOST_WHY; succeeds if an rxe device can be made on the host.
host_possible() {
    HOST_WHY=
    if [[ ! -d /sys/module/rdma_rxe ]]; then
        if ! command -v modprobe >/dev/null; then
            HOST_WHY="rdma_rxe not loaded and no modprobe to load it"
            return 1
        fi
        if ! modprobe -n -q rdma_rxe 2>/dev/null; then
            HOST_WHY="the running kernel ($(uname -r)) has no rdma_rxe module"
            return 1
        fi
    fi
    if [[ $EUID -ne 0 ]]; then
        HOST_WHY="rdma_rxe is available but creating a device needs root"
        return 1
    fi
    if ! command -v rdma >/dev/null || ! command -v ip >/dev/null; then
        HOST_WHY="rdma_rxe is available but iproute2 (ip, rdma) is missing"
        return 1
    fi
    HOST_WHY="the running kernel has rdma_rxe and we are root"
}

# Sets VM_WHY; succeeds if the guest can be booted (possibly after
# installing packages and downloading the kernel).
vm_possible() {
    local missing
    VM_WHY=
    if [[ $(uname -m) != x86_64 ]]; then
        VM_WHY="the guest set-up supports x86_64 hosts only (this is $(uname -m))"
        return 1
    fi
    mapfile -t missing < <(missing_packages)
    if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
        VM_WHY="not a Debian-based system (no dpkg/apt-get)"
        return 1
    fi
    if ((${#missing[@]} > 0)) && ! can_be_root; then
        VM_WHY="packages missing (${missing[*]}) and no root to install them"
        return 1
    fi
    if [[ -f $SR_CACHE/kernel/.release ]]; then
        VM_WHY="guest kernel $(<"$SR_CACHE/kernel/.release") cached in $SR_CACHE"
    else
        VM_WHY="guest kernel will be downloaded with apt-get into $SR_CACHE"
    fi
    if ((${#missing[@]} > 0)); then
        VM_WHY+="; will install ${missing[*]}"
    else
        VM_WHY+="; $(qemu-system-x86_64 --version | head -n 1), accel $SR_ACCEL"
    fi
}

cmd_check() {
    local host=0 vm=0
    host_possible && host=1
    vm_possible && vm=1
    echo "host: $([[ $host == 1 ]] && echo possible || echo impossible): $HOST_WHY"
    echo "vm:   $([[ $vm == 1 ]] && echo possible || echo impossible): $VM_WHY"
    case $SR_MODE in
        host) [[ $host == 1 ]] && { echo "would use: host (forced)"; return 0; } ;;
        vm) [[ $vm == 1 ]] && { echo "would use: vm (forced)"; return 0; } ;;
        *)
            if [[ $host == 1 ]]; then
                echo "would use: host (falling back to vm if creating the device fails)"
                return 0
            fi
            if [[ $vm == 1 ]]; then
                echo "would use: vm"
                return 0
            fi
            ;;
    esac
    echo "would use: nothing: no way to get a Soft-RoCE device here (mode $SR_MODE)"
    return "$EX_SKIP"
}

# ---------------------------------------------------------------- cache

# Serialises cache updates between concurrent runs (e.g. ctest -j).
lock_cache() {
    mkdir -p "$SR_CACHE"
    exec {SR_LOCK_FD}>"$SR_CACHE/lock"
    flock "$SR_LOCK_FD"
}

unlock_cache() {
    flock -u "$SR_LOCK_FD"
    exec {SR_LOCK_FD}>&-
}

kernel_package() {
    local pkg
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
    if [[ -z $pkg ]] && can_be_root; then
        as_root apt-get update -qq >/dev/null 2>&1 || true
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
            awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
    fi
    [[ -n $pkg ]] || die "cannot resolve linux-image-amd64 to a kernel package (apt-get update?)"
    echo "$pkg"
}

fetch_kernel() {
    local refresh=$1 tmp deb pkg krel
    if [[ $refresh == 0 && -f $SR_CACHE/kernel/.release ]]; then
        return 0
    fi
    tmp=$(mktemp -d "$SR_CACHE/kernel.tmp.XXXXXX")
    if [[ -n ${RCPG_SOFTROCE_KERNEL_DEB:-} ]]; then
        deb=$RCPG_SOFTROCE_KERNEL_DEB
    else
        pkg=$(kernel_package)
        if [[ $refresh == 1 && -f $SR_CACHE/kernel/.package ]] &&
            [[ $(<"$SR_CACHE/kernel/.package") == "$pkg" ]]; then
            rm -rf "$tmp"
            return 0
        fi
        log "downloading guest kernel $pkg (first run only)"
        # apt-get download drops privileges to _apt, which must be able to
        # write the directory; otherwise it warns and works anyway.
        chmod 0777 "$tmp"
        (cd "$tmp" && apt-get download -q "$pkg" >"$tmp/download.log" 2>&1) || {
            tail -n 20 "$tmp/download.log" >&2
            rm -rf "$tmp"
            die "apt-get download $pkg failed"
        }
        deb=$(echo "$tmp"/*.deb)
    fi
    [[ -f $deb ]] || die "kernel package not found: $deb"
    dpkg-deb -x "$deb" "$tmp/root" || die "cannot unpack $deb"
    if [[ -z ${RCPG_SOFTROCE_KERNEL_DEB:-} ]]; then
        rm -f "$deb"
    fi
    # Newer packages install under usr/lib (merged /usr); normalise so the
    # tree looks like what depmod -b and modprobe -d expect.
    if [[ ! -d $tmp/root/lib/modules && -d $tmp/root/usr/lib/modules ]]; then
        mv "$tmp/root/usr/lib/modules" "$tmp/root/modules.tmp"
        mkdir -p "$tmp/root/lib"
        mv "$tmp/root/modules.tmp" "$tmp/root/lib/modules"
    fi
    krel=$(find "$tmp/root/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | head -n 1)
    [[ -n $krel && -f $tmp/root/boot/vmlinuz-$krel ]] ||
        die "unexpected layout in kernel package $deb"
    depmod -b "$tmp/root" "$krel" || die "depmod failed for $krel"
    extract_vmlinux "$tmp/root" "$krel"
    rm -rf "$tmp/root/usr/share"
    dpkg-deb -f "$deb" Package >"$tmp/root/.package" 2>/dev/null || echo "${pkg:-local}" >"$tmp/root/.package"
    echo "$krel" >"$tmp/root/.release"
    rm -rf "$SR_CACHE/kernel.old"
    [[ -d $SR_CACHE/kernel ]] && mv "$SR_CACHE/kernel" "$SR_CACHE/kernel.old"
    mv "$tmp/root" "$SR_CACHE/kernel"
    rm -rf "$tmp" "$SR_CACHE/kernel.old"
}

# Under TCG, decompressing an xz bzImage takes about 3 s of every boot. A
# kernel built with PVH can be booted from its plain ELF image instead, which
# qemu enters directly; keep one next to the bzImage when that is possible.
extract_vmlinux() {
    local root=$1 krel=$2 img cfg out magic off dec=()
    img=$root/boot/vmlinuz-$krel
    cfg=$root/boot/config-$krel
    out=$root/boot/vmlinux-$krel
    grep -qx 'CONFIG_PVH=y' "$cfg" 2>/dev/null || return 0
    if grep -qx 'CONFIG_KERNEL_XZ=y' "$cfg"; then
        magic='\xFD7zXZ\x00' dec=(xz -dc --single-stream)
    elif grep -qx 'CONFIG_KERNEL_GZIP=y' "$cfg"; then
        magic='\x1F\x8B\x08\x00' dec=(gzip -dc)
    elif grep -qx 'CONFIG_KERNEL_ZSTD=y' "$cfg"; then
        magic='\x28\xB5\x2F\xFD' dec=(zstd -dcq)
    else
        return 0
    fi
    command -v "${dec[0]}" >/dev/null || return 0
    off=$(LC_ALL=C grep -obUaP -m 1 "$magic" "$img" | head -n 1 | cut -d: -f1)
    [[ -n $off ]] || return 0
    # Data after the compressed stream makes some decompressors complain
    # after having written everything; the ELF check below is what counts.
    tail -c +$((off + 1)) "$img" | "${dec[@]}" >"$out.tmp" 2>/dev/null || true
    if [[ $(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]] &&
        (($(stat -c %s "$out.tmp") > 4000000)); then
        mv "$out.tmp" "$out"
    else
        rm -f "$out.tmp"
    fi
}

# Prints the module files (relative to the kernel tree) to load, in order.
module_load_order() {
    local kdir=$1 krel=$2 m
    for m in "${SR_GUEST_MODULES[@]}"; do
        modprobe -d "$kdir" -S "$krel" --show-depends "$m" || true
    done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }'
}

build_initramfs() {
    local kdir=$SR_CACHE/kernel krel key out tmp f base busybox
    krel=$(<"$kdir/.release")
    busybox=$(command -v busybox || true)
    [[ -x $busybox ]] || die "busybox not found (package busybox-static)"
    # A dynamically linked busybox would find no libraries in the initramfs.
    if ldd "$busybox" >/dev/null 2>&1; then
        die "$busybox is dynamically linked; install busybox-static"
    fi
    key=$({
        echo "$krel"
        printf '%s\n' "${SR_GUEST_MODULES[@]}"
        sha256sum "$busybox" "$SR_GUEST_DIR/init" | awk '{ print $1 }'
    } | sha256sum | cut -c1-16)
    out=$SR_CACHE/initramfs-$key.cpio.gz
    SR_INITRD=$out
    [[ -f $out ]] && return 0

    vlog "building initramfs for $krel"
    tmp=$(mktemp -d "$SR_CACHE/initramfs.tmp.XXXXXX")
    mkdir -p "$tmp/bin" "$tmp/modules"
    cp "$busybox" "$tmp/bin/busybox"
    install -m 0755 "$SR_GUEST_DIR/init" "$tmp/init"
    : >"$tmp/modules/load-order"
    while read -r f; do
        base=${f##*/}
        # busybox insmod cannot read compressed modules.
        case $base in
            *.ko.xz) xz -dc "$f" >"$tmp/modules/${base%.xz}"; base=${base%.xz} ;;
            *.ko.zst) zstd -qdc "$f" >"$tmp/modules/${base%.zst}"; base=${base%.zst} ;;
            *.ko.gz) gzip -dc "$f" >"$tmp/modules/${base%.gz}"; base=${base%.gz} ;;
            *) cp "$f" "$tmp/modules/$base" ;;
        esac
        echo "$base" >>"$tmp/modules/load-order"
    done < <(module_load_order "$kdir" "$krel")
    # Errors inside the process substitution above do not stop this shell.
    for f in "${SR_GUEST_MODULES[@]}"; do
        grep -qx "$f.ko" "$tmp/modules/load-order" ||
            die "guest kernel $krel: module $f not found"
    done
    (cd "$tmp" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) |
        gzip -1 >"$out.tmp" || die "cannot build initramfs"
    rm -rf "$tmp"
    rm -f "$SR_CACHE"/initramfs-*.cpio.gz
    mv "$out.tmp" "$out"
}

# Sets SR_KREL, SR_KDIR, SR_KERNEL, SR_INITRD.
prepare_cache() {
    local refresh=${1:-0}
    lock_cache
    fetch_kernel "$refresh"
    build_initramfs
    unlock_cache
    SR_KDIR=$SR_CACHE/kernel
    SR_KREL=$(<"$SR_KDIR/.release")
    SR_KERNEL=$SR_KDIR/boot/vmlinuz-$SR_KREL
    if [[ -f $SR_KDIR/boot/vmlinux-$SR_KREL ]]; then
        SR_KERNEL=$SR_KDIR/boot/vmlinux-$SR_KREL
    fi
}

cmd_prepare() {
    local refresh=0
    case ${1:-} in
        --refresh) refresh=1 ;;
        "") ;;
        *) die "prepare: unknown option $1" ;;
    esac
    cmd_deps
    prepare_cache "$refresh"
    echo "kernel: $SR_KERNEL"
    echo "initramfs: $SR_INITRD"
}

# ---------------------------------------------------------------- run: host

HOST_NETDEV=rcpg_veth0
HOST_PEER=rcpg_veth1
HOST_DEV=rcpg_rxe0

host_teardown() {
    rdma link delete "$HOST_DEV" 2>/dev/null || true
    ip link delete "$HOST_NETDEV" 2>/dev/null || true
}

# Distinct names (not rxe0/veth0) so a host's own devices are never touched.
host_setup() {
    local srv ok=0
    # crc32 may be missing from a minimal kernel's loaded set; rxe needs it.
    modprobe crc32_generic 2>/dev/null || true
    modprobe -q rdma_rxe && modprobe -q ib_uverbs && modprobe -q rdma_ucm || return 1
    # Left-overs of a run that was killed hard; the lock makes them stale.
    host_teardown
    ip link add "$HOST_NETDEV" mtu "$SR_MTU" type veth peer name "$HOST_PEER" mtu "$SR_MTU" &&
        ip addr add "$SR_ADDR/$SR_PREFIX" dev "$HOST_NETDEV" &&
        ip link set "$HOST_PEER" up &&
        ip link set "$HOST_NETDEV" up &&
        rdma link add "$HOST_DEV" type rxe netdev "$HOST_NETDEV" || return 1
    # A device can be created and still not carry traffic, e.g. outside the
    # initial network namespace (a container): prove it with one rdma_cm
    # round trip, so such hosts fall back to the vm instead of failing tests.
    command -v rping >/dev/null || return 0
    timeout 30 rping -s -a "$SR_ADDR" -p 7174 -C 1 &
    srv=$!
    for _ in $(seq 20); do
        if timeout 10 rping -c -a "$SR_ADDR" -p 7174 -C 1; then
            ok=1
            break
        fi
        sleep 0.25
    done
    ((ok == 1)) || kill "$srv" 2>/dev/null
    wait "$srv" || ok=0
    if ((ok == 0)); then
        echo "the new device does not carry rdma_cm traffic (rping failed)"
        return 1
    fi
}

# Sets SR_RC to the command's status; fails if the device could not be made.
run_host() {
    local lock=/run/lock/rcpg-softroce-host.lock
    [[ -d /run/lock ]] || lock=/tmp/rcpg-softroce-host.lock
    # One host device at a time: concurrent runs would fight over the names.
    exec {SR_HOST_LOCK_FD}>"$lock"
    flock "$SR_HOST_LOCK_FD"
    SR_HOST_UP=1
    if ! host_setup >"$SR_RUN_DIR/host-setup.log" 2>&1; then
        HOST_WHY="creating the device failed: $(tail -n 3 "$SR_RUN_DIR/host-setup.log" | tr '\n' ' ')"
        host_teardown
        SR_HOST_UP=0
        flock -u "$SR_HOST_LOCK_FD"
        return 1
    fi
    vlog "host: $HOST_DEV on $HOST_NETDEV ($SR_ADDR)"
    SR_RC=0
    RCPG_RDMA_DEV=$HOST_DEV RCPG_RDMA_ADDR=$SR_ADDR RCPG_SOFTROCE=host \
        timeout -k 10 "$SR_TIMEOUT" "${SR_CMD[@]}" || SR_RC=$?
    host_teardown
    SR_HOST_UP=0
    flock -u "$SR_HOST_LOCK_FD"
    if [[ $SR_RC == "$EX_TIMEOUT" ]]; then
        log "error: command timed out after $SR_TIMEOUT s"
    fi
}

# ---------------------------------------------------------------- run: vm

# qemu's option parser treats ',' as a separator; ',,' is a literal comma.
qemu_escape() { printf '%s' "${1//,/,,}"; }

guest_env() {
    local name names=() extra
    names+=(PATH HOME USER LOGNAME SHELL LANG LANGUAGE TZ TERM LD_LIBRARY_PATH
        LD_PRELOAD CI MAKEFLAGS)
    while read -r name; do
        case $name in
            LC_* | CTEST_* | GTEST_* | *SAN_OPTIONS | RCPG_*) names+=("$name") ;;
        esac
    done < <(compgen -e)
    read -r -a extra <<<"${RCPG_SOFTROCE_PASSENV:-}"
    names+=("${extra[@]}")
    for name in "${names[@]}"; do
        case $name in
            RCPG_RDMA_DEV | RCPG_RDMA_ADDR | RCPG_SOFTROCE) continue ;;
        esac
        [[ -v $name ]] && printf '%s=%s\0' "$name" "${!name}"
    done
    for name in "${SR_EXTRA_ENV[@]}"; do
        if [[ $name == *=* ]]; then
            printf '%s\0' "$name"
        elif [[ -v $name ]]; then
            printf '%s=%s\0' "$name" "${!name}"
        fi
    done
    printf '%s\0' RCPG_RDMA_DEV=rxe0 "RCPG_RDMA_ADDR=$SR_ADDR" RCPG_SOFTROCE=vm
}

write_guest_config() {
    local envv=() i
    mapfile -d '' -t envv < <(guest_env)
    {
        printf 'SR_ADDR=%q\nSR_PREFIX=%q\nSR_MTU=%q\n' "$SR_ADDR" "$SR_PREFIX" "$SR_MTU"
        printf 'SR_DEV=rxe0\nSR_NETDEV=veth0\nSR_PEER=veth1\nSR_HOSTNAME=softroce\n'
        printf 'SR_KREL=%q\nSR_MODULES_DIR=%q\n' "$SR_KREL" "$SR_KDIR/lib/modules/$SR_KREL"
        printf 'SR_CWD=%q\n' "$PWD"
        printf 'SR_RW_TAGS=('
        for i in "${!SR_RW[@]}"; do printf ' rcpgrw%d' "$i"; done
        printf ' )\nSR_RW_PATHS=('
        for i in "${!SR_RW[@]}"; do printf ' %q' "${SR_RW[$i]}"; done
        printf ' )\nSR_ENV=('
        printf ' %q' "${envv[@]}"
        printf ' )\nSR_CMD=('
        printf ' %q' "${SR_CMD[@]}"
        printf ' )\n'
    } >"$SR_RUN_DIR/config"
    cp "$SR_GUEST_DIR/guest.sh" "$SR_RUN_DIR/guest.sh"
}

show_console() {
    local n=${1:-60}
    if [[ -s $SR_RUN_DIR/console.log ]]; then
        echo "softroce: ---- last $n lines of the guest console ----" >&2
        tail -n "$n" "$SR_RUN_DIR/console.log" | tr -d '\r' >&2
        echo "softroce: ----" >&2
    fi
    if [[ -s $SR_RUN_DIR/qemu.log ]]; then
        echo "softroce: ---- qemu ----" >&2
        tail -n 20 "$SR_RUN_DIR/qemu.log" >&2
    fi
}

# Sets SR_RC to the command's status, or to a harness exit code.
run_vm() {
    local d i qemu=() t0 t_boot t_end qemu_pid tails=() qrc=0 append extra_qemu=()
    cmd_deps
    command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found"
    prepare_cache 0

    write_guest_config
    : >"$SR_RUN_DIR/stdout"
    : >"$SR_RUN_DIR/stderr"

    # quiet + panic=1 with -no-reboot: a panicking guest exits qemu at once
    # instead of idling until the timeout.
    append="console=ttyS0 quiet panic=1 oops=panic mitigations=off"
    append+=" rdinit=/init ${RCPG_SOFTROCE_KERNEL_ARGS:-}"
    read -r -a extra_qemu <<<"${RCPG_SOFTROCE_QEMU_ARGS:-}"
    qemu=(qemu-system-x86_64
        -nodefaults -no-user-config
        -machine pc -accel "$SR_ACCEL" -cpu max "${extra_qemu[@]}"
        -m "$SR_MEM" -smp "$SR_SMP"
        -display none -monitor none
        -serial "file:$SR_RUN_DIR/console.log"
        # No network device at all: nothing the guest sends can leave it.
        -nic none
        -no-reboot
        -kernel "$SR_KERNEL" -initrd "$SR_INITRD" -append "$append"
        -virtfs "local,path=/,mount_tag=rcpgroot,security_model=none,readonly=on,multidevs=remap"
        -virtfs "local,path=$(qemu_escape "$SR_RUN_DIR"),mount_tag=rcpgrun,security_model=none,multidevs=remap")
    for i in "${!SR_RW[@]}"; do
        d=${SR_RW[$i]}
        qemu+=(-virtfs "local,path=$(qemu_escape "$d"),mount_tag=rcpgrw$i,security_model=none,multidevs=remap")
    done

    vlog "vm: booting $SR_KREL ($SR_ACCEL, -m $SR_MEM -smp $SR_SMP, timeout $SR_TIMEOUT s)"
    t0=$(now)
    timeout -k 5 "$SR_TIMEOUT" "${qemu[@]}" </dev/null >"$SR_RUN_DIR/qemu.log" 2>&1 &
    qemu_pid=$!
    SR_QEMU_PID=$qemu_pid
    # Output is streamed while the command runs so long tests show progress;
    # --pid makes tail read to the end once the guest is gone.
    tail -n +1 -s 0.2 --pid="$qemu_pid" -f "$SR_RUN_DIR/stdout" &
    tails+=($!)
    tail -n +1 -s 0.2 --pid="$qemu_pid" -f "$SR_RUN_DIR/stderr" >&2 &
    tails+=($!)
    if [[ $SR_VERBOSE == 1 ]]; then
        tail -n +1 -s 0.2 --pid="$qemu_pid" -F "$SR_RUN_DIR/console.log" 2>/dev/null |
            sed -u 's/^/softroce: guest: /; s/\r$//' >&2 &
        tails+=($!)
    fi
    wait "$qemu_pid" || qrc=$?
    SR_QEMU_PID=
    wait "${tails[@]}" 2>/dev/null || true
    t_end=$(now)

    if [[ -f $SR_RUN_DIR/booted ]]; then
        t_boot=$(stat -c %.3Y "$SR_RUN_DIR/booted")
        vlog "vm: boot $(elapsed "$t0" "$t_boot") s (guest kernel uptime $(<"$SR_RUN_DIR/booted") s)," \
            "command+shutdown $(elapsed "$t_boot" "$t_end") s, total $(elapsed "$t0" "$t_end") s"
    fi
    if [[ -f $SR_RUN_DIR/rc ]]; then
        SR_RC=$(<"$SR_RUN_DIR/rc")
        return 0
    fi
    if [[ $qrc == "$EX_TIMEOUT" ]]; then
        show_console 40
        log "error: guest timed out after $SR_TIMEOUT s" \
            "($([[ -f $SR_RUN_DIR/booted ]] && echo "command still running" || echo "did not finish booting"))"
        SR_RC=$EX_TIMEOUT
        return 0
    fi
    show_console 60
    if [[ -f $SR_RUN_DIR/error ]]; then
        log "error: guest set-up failed: $(<"$SR_RUN_DIR/error")"
    elif grep -q 'Kernel panic' "$SR_RUN_DIR/console.log" 2>/dev/null; then
        log "error: guest kernel panicked (qemu exit $qrc)"
    else
        log "error: guest stopped without reporting the command's status (qemu exit $qrc)"
    fi
    SR_RC=$EX_HARNESS
}

# ---------------------------------------------------------------- run

cleanup_run() {
    if [[ ${SR_HOST_UP:-0} == 1 ]]; then
        host_teardown
    fi
    if [[ -n ${SR_QEMU_PID:-} ]]; then
        kill "$SR_QEMU_PID" 2>/dev/null || true
    fi
    if [[ -n ${SR_RUN_DIR:-} && -d $SR_RUN_DIR ]]; then
        if [[ ${SR_KEEP:-0} == 1 ]]; then
            log "run directory kept: $SR_RUN_DIR"
        else
            rm -rf "$SR_RUN_DIR"
        fi
    fi
}

cmd_run() {
    local rw_default=1 d host_ok=0
    SR_RW=()
    SR_EXTRA_ENV=()
    SR_KEEP=0
    while (($# > 0)); do
        case $1 in
            --timeout-s) SR_TIMEOUT=${2:?--timeout-s needs a value}; shift 2 ;;
            --timeout-s=*) SR_TIMEOUT=${1#*=}; shift ;;
            --mode) SR_MODE=${2:?--mode needs a value}; shift 2 ;;
            --mode=*) SR_MODE=${1#*=}; shift ;;
            --rw) SR_RW+=("${2:?--rw needs a directory}"); rw_default=0; shift 2 ;;
            --rw=*) SR_RW+=("${1#*=}"); rw_default=0; shift ;;
            --no-rw) rw_default=0; SR_RW=(); shift ;;
            --env) SR_EXTRA_ENV+=("${2:?--env needs NAME or NAME=VALUE}"); shift 2 ;;
            --env=*) SR_EXTRA_ENV+=("${1#*=}"); shift ;;
            --keep) SR_KEEP=1; shift ;;
            -v | --verbose) SR_VERBOSE=1; shift ;;
            -h | --help) usage; exit 0 ;;
            --) shift; break ;;
            *) echo "softroce: run: unknown option '$1' (COMMAND goes after --)" >&2; exit 2 ;;
        esac
    done
    (($# > 0)) || { echo "softroce: run: no COMMAND given" >&2; exit 2; }
    SR_CMD=("$@")
    [[ $SR_TIMEOUT =~ ^[0-9]+$ && $SR_TIMEOUT -gt 0 ]] || die "--timeout-s must be a positive integer"
    case $SR_MODE in auto | host | vm) ;; *) die "--mode must be auto, host or vm" ;; esac
    ((rw_default)) && SR_RW=("$PWD")
    for d in "${!SR_RW[@]}"; do
        [[ -d ${SR_RW[$d]} ]] || die "--rw: not a directory: ${SR_RW[$d]}"
        SR_RW[d]=$(cd "${SR_RW[$d]}" && pwd -P)
        # Mounted over the guest's root it would hide /proc, /run, ...
        [[ ${SR_RW[$d]} != / ]] || die "--rw: refusing to share / writable (run from a project directory, or use --rw DIR / --no-rw)"
    done
    # Parents before children, so a nested share is mounted over its parent.
    if ((${#SR_RW[@]} > 1)); then
        mapfile -t SR_RW < <(printf '%s\n' "${SR_RW[@]}" | awk '{ print length($0) "\t" $0 }' |
            sort -n -k1,1 -s | cut -f2- | awk '!seen[$0]++')
    fi

    SR_RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/rcpg-softroce.XXXXXX")
    trap cleanup_run EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    if [[ $SR_MODE != vm ]] && host_possible; then
        host_ok=1
    fi
    if ((host_ok)); then
        if run_host; then
            exit "$SR_RC"
        fi
        [[ $SR_MODE == host ]] && die "host: $HOST_WHY"
        log "host: $HOST_WHY; using the vm instead"
    elif [[ $SR_MODE == host ]]; then
        echo "softroce: host path impossible: $HOST_WHY" >&2
        exit "$EX_SKIP"
    fi
    if ! vm_possible; then
        echo "softroce: no Soft-RoCE possible: host: $HOST_WHY; vm: $VM_WHY" >&2
        exit "$EX_SKIP"
    fi
    run_vm
    exit "$SR_RC"
}

main() {
    local sub=${1:-}
    (($# > 0)) && shift
    case $sub in
        run) cmd_run "$@" ;;
        check) cmd_check ;;
        deps) cmd_deps ;;
        prepare) cmd_prepare "$@" ;;
        -h | --help | help) usage ;;
        "") usage >&2; exit 2 ;;
        *) echo "softroce: unknown command '$sub'" >&2; usage >&2; exit 2 ;;
    esac
}

main "$@"
