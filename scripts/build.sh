#!/usr/bin/env bash
# Configures and builds one flavour of rcpg.
#   scripts/build.sh [release|asan|tsan|fuzz]   (default: release, into build/)
set -euo pipefail
cd "$(dirname "$0")/.."

flavour=${1:-release}
jobs=$(nproc)
case "$flavour" in
  release) dir=build; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan) dir=build-asan; args=(-DCMAKE_BUILD_TYPE=Debug -DRCPG_SANITIZE=address) ;;
  tsan) dir=build-tsan; args=(-DCMAKE_BUILD_TYPE=Debug -DRCPG_SANITIZE=thread) ;;
  fuzz) dir=build-fuzz; args=(-DCMAKE_BUILD_TYPE=Debug -DRCPG_FUZZ=ON -DRCPG_BUILD_TESTS=OFF
                              -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++) ;;
  *) echo "build.sh: unknown flavour '$flavour' (release, asan, tsan or fuzz)" >&2; exit 2 ;;
esac

cmake -S . -B "$dir" "${args[@]}" >/dev/null
if [[ $flavour == fuzz ]]; then
  cmake --build "$dir" -j "$jobs" --target rcpg_fuzzers
else
  cmake --build "$dir" -j "$jobs"
fi
