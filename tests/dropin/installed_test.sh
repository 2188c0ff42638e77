#!/usr/bin/env bash
# What `cmake --install` puts on a host works there: an unchanged corosync CPG program
# runs with LD_LIBRARY_PATH at the installed libcpg.so.4 against the installed rcpgd, a
# program built with the installed headers links and loads the installed library, an
# EVS program built against the installed evs.h and libevs.so.4 runs against the
# installed rcpgd, and systemd accepts the installed unit.
#   installed_test.sh BUILD_DIR COROSYNC_PROGRAM RUN_WITH_DAEMON EVS_PROGRAM_SOURCE
# Exit 0 pass, 1 fail.
set -euo pipefail
build=$1 program=$2 run_with_daemon=$3 evs_source=$4

prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
fail() {
    echo "installed_test: FAIL: $*" >&2
    exit 1
}

cmake --install "$build" --prefix "$prefix" >"$prefix.log" 2>&1 || { cat "$prefix.log" >&2; fail "cmake --install"; }
rm -f "$prefix.log"
libdir=$prefix/lib/rcpg
for file in sbin/rcpgd bin/rcpg-cpgtool lib/rcpg/libcpg.so.4 lib/rcpg/libevs.so.4 lib/rcpg/libcorosync_common.so.4 \
    include/rcpg/corosync/cpg.h include/rcpg/corosync/evs.h include/rcpg/corosync/corotypes.h \
    lib/systemd/system/rcpgd.service; do
    [ -e "$prefix/$file" ] || fail "$file was not installed"
done
if ! version=$("$prefix/sbin/rcpgd" --version) || [[ $version != "rcpgd "* ]]; then
    fail "the installed rcpgd does not run: $version"
fi

# The unchanged program: corosync's build, rcpg's installed library, found by
# LD_LIBRARY_PATH alone (dropin_client checks that the one it loaded is in $libdir).
LD_LIBRARY_PATH=$libdir EXPECT_LIBCPG_DIR=$libdir "$run_with_daemon" "$prefix/sbin/rcpgd" "$program" ||
    fail "the corosync program against the installed library and daemon"

# A program built against the installed tree: its headers, and its library found by the
# program's runpath (libcpg finds libcorosync_common beside it by its own).
cat >"$prefix/probe.c" <<'PROBE'
#include <corosync/cpg.h>
#include <stdio.h>
int main(void)
{
    cpg_handle_t handle;
    /* No daemon on this IPC name: the call must fail cleanly, with corosync's code. */
    cs_error_t error = cpg_initialize(&handle, NULL);
    printf("%d\n", (int)error);
    return error == CS_OK;
}
PROBE
cc -Wall -Werror -I "$prefix/include/rcpg" -o "$prefix/probe" "$prefix/probe.c" -L "$libdir" -lcpg \
    -Wl,-rpath,"$libdir" || fail "a program does not build against the installed headers and library"
# Read whole before matching: `ldd | grep -q` fails under pipefail whenever grep's early
# exit cuts ldd off.
loaded=$(ldd "$prefix/probe") || fail "ldd $prefix/probe: $loaded"
[[ $loaded == *"libcpg.so.4 => $libdir/libcpg.so.4 "* ]] ||
    fail "the probe does not load $libdir/libcpg.so.4: $loaded"
[[ $loaded == *"libcorosync_common.so.4 => $libdir/libcorosync_common.so.4 "* ]] ||
    fail "the installed libcpg does not find the libcorosync_common.so.4 beside it: $loaded"
probe_error=$(RCPG_IPC="rcpg-installed-test-none-$$" "$prefix/probe") || true
[ "$probe_error" = 2 ] || fail "cpg_initialize without a daemon returned $probe_error, expected CS_ERR_LIBRARY (2)"

# An EVS program (written as for corosync 1.4) built against the installed tree: evs.h,
# libevs.so.4 by its runpath; it checks that the libevs it loaded is the installed one.
cc -Wall -Werror -I "$prefix/include/rcpg" -o "$prefix/evs_program" "$evs_source" -L "$libdir" -levs -ldl \
    -Wl,-rpath,"$libdir" || fail "an EVS program does not build against the installed headers and library"
EXPECT_LIBEVS_DIR=$libdir "$run_with_daemon" "$prefix/sbin/rcpgd" "$prefix/evs_program" ||
    fail "the EVS program against the installed library and daemon"

unit=$prefix/lib/systemd/system/rcpgd.service
grep -qx "ExecStart=$prefix/sbin/rcpgd" "$unit" || fail "the unit does not start the installed rcpgd: $(grep ExecStart "$unit")"
# systemd-analyze only warns about some mistakes: any output is one.
if ! verdict=$(systemd-analyze verify "$unit" 2>&1) || [ -n "$verdict" ]; then
    fail "systemd-analyze verify: $verdict"
fi
echo "installed_test: PASS: $prefix: the corosync program ran on the installed library and daemon; a probe built" \
    "against the installed headers; an EVS program built and ran against the installed tree; systemd accepts the unit"
