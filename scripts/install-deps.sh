#!/usr/bin/env bash
# Installs the Debian 12 packages rcpg builds, tests and benchmarks with. Idempotent:
# does nothing (and needs no network) when everything is already installed.
set -euo pipefail

packages=(
  cmake make g++ pkg-config
  libqb-dev libfmt-dev libgtest-dev googletest
  libibverbs-dev librdmacm-dev
  libssl-dev                        # libcrypto: HMAC, HKDF of the fabric handshake
  clang libclang-rt-14-dev          # libFuzzer and the clang sanitizer runtimes
  libcpg-dev corosync               # drop-in tests and the side-by-side benchmark
  gnuplot-nox                       # the benchmark report's plots
  systemd                           # systemd-analyze checks the installed unit
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing packages: ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# Soft-RoCE (the RDMA tests and benchmarks) brings its own packages.
if [[ -x "$(dirname "$0")/softroce.sh" ]]; then
  "$(dirname "$0")/softroce.sh" deps
fi
