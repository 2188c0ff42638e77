#!/usr/bin/env bash
# The whole test suite: installs what it needs, then builds and runs every flavour —
# release (all labels, RDMA tests on Soft-RoCE included), ASan+UBSan, TSan, and the
# libFuzzer targets for a bounded time. ctest's lines show as they come; each flavour
# ends with its ten slowest tests, the run with the time each step took and one line
# "rcpg: N passed, N failed". Each build tree keeps its ctest-output.log.
#
#   scripts/test.sh [--flavours "release asan tsan fuzz"] [-L LABEL] [--fuzz-seconds N]
# Labels: unit, conformance, sim, rdma, e2e, fuzz, security.
set -euo pipefail
cd "$(dirname "$0")/.."

flavours="release asan tsan fuzz"
label=
fuzz_seconds=${RCPG_FUZZ_SECONDS:-60}
while (($#)); do
  case $1 in
    --flavours) flavours=$2; shift 2 ;;
    -L) label=$2; shift 2 ;;
    --fuzz-seconds) fuzz_seconds=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

scripts/install-deps.sh

passed=0
failed=0
failures=()
timings=()
# Runs ctest in a build tree with its lines shown as they come (which test starts, which
# ended how and in how long), keeps them in DIR/ctest-output.log, adds its counts to the
# totals and prints the ten slowest tests of the run.
run_ctest() {  # flavour, build dir, ctest args...
  local flavour=$1 dir=$2
  shift 2
  echo "=== $flavour: ctest $*"
  local log=$dir/ctest-output.log status=0 started=$SECONDS
  (cd "$dir" && ctest --output-on-failure --no-tests=ignore "$@") 2>&1 | tee "$log" || status=$?
  timings+=("$flavour tests $((SECONDS - started)) s")
  local summary
  summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1 || true)
  if [[ -n $summary ]]; then
    local total bad
    bad=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$summary")
    total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$summary")
    passed=$((passed + total - bad))
    failed=$((failed + bad))
    ((bad == 0)) || failures+=("$flavour")
  elif ((status != 0)); then
    failed=$((failed + 1))
    failures+=("$flavour (ctest did not run)")
  fi
  echo "--- $flavour: the ten slowest tests (s)"
  sed -nE 's/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: ([^ ]+) \.+.* ([0-9]+\.[0-9]+) sec$/\2 \1/p' "$log" |
    sort -rn | head -10 | awk '{ printf "  %8.1f  %s\n", $1, $2 }'
}

build() {  # flavour
  local started=$SECONDS
  echo "=== $1: build"
  scripts/build.sh "$1"
  timings+=("$1 build $((SECONDS - started)) s")
}

label_args=()
[[ -n $label ]] && label_args=(-L "$label")

for flavour in $flavours; do
  case $flavour in
    release)
      build release
      run_ctest release build -j2 -LE fuzz "${label_args[@]}" ;;
    asan)
      build asan
      ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_ctest asan build-asan -j2 -LE "fuzz|rdma" "${label_args[@]}" ;;
    tsan)
      build tsan
      TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
        run_ctest tsan build-tsan -j2 -LE "fuzz|rdma" "${label_args[@]}" ;;
    fuzz)
      if [[ -z $label || $label == fuzz ]]; then
        build fuzz
        cmake -S . -B build-fuzz -DRCPG_FUZZ_SECONDS="$fuzz_seconds" >/dev/null
        run_ctest fuzz build-fuzz -j2 -L fuzz
      fi ;;
    *) echo "test.sh: unknown flavour '$flavour'" >&2; exit 2 ;;
  esac
done

echo
echo "time spent:"
printf '  %s\n' "${timings[@]}" "whole run $SECONDS s"
if ((failed > 0)); then
  echo "failed in: ${failures[*]}"
fi
echo "rcpg: $passed passed, $failed failed"
((failed == 0))
