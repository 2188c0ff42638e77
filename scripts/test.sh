#!/usr/bin/env bash
# The whole test suite: installs what it needs, then builds and runs every flavour —
# release (all labels, RDMA tests on Soft-RoCE included), ASan+UBSan, TSan, and the
# libFuzzer targets for a bounded time. Ends with one line "rcpg: N passed, N failed".
#
#   scripts/test.sh [--flavours "release asan tsan fuzz"] [-L LABEL] [--fuzz-seconds N]
# Labels: unit, conformance, sim, rdma, e2e, fuzz.
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
run_ctest() {  # flavour, build dir, ctest args...
  local flavour=$1 dir=$2
  shift 2
  echo "=== $flavour: ctest $*"
  local output status=0
  output=$(cd "$dir" && ctest --output-on-failure --no-tests=ignore "$@" 2>&1) || status=$?
  echo "$output"
  local summary
  summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' <<<"$output" | tail -1 || true)
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
}

label_args=()
[[ -n $label ]] && label_args=(-L "$label")

for flavour in $flavours; do
  case $flavour in
    release)
      scripts/build.sh release
      run_ctest release build -j2 -LE fuzz "${label_args[@]}" ;;
    asan)
      scripts/build.sh asan
      ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_ctest asan build-asan -j2 -LE "fuzz|rdma" "${label_args[@]}" ;;
    tsan)
      scripts/build.sh tsan
      TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
        run_ctest tsan build-tsan -j2 -LE "fuzz|rdma" "${label_args[@]}" ;;
    fuzz)
      if [[ -z $label || $label == fuzz ]]; then
        scripts/build.sh fuzz
        cmake -S . -B build-fuzz -DRCPG_FUZZ_SECONDS="$fuzz_seconds" >/dev/null
        run_ctest fuzz build-fuzz -L fuzz
      fi ;;
    *) echo "test.sh: unknown flavour '$flavour'" >&2; exit 2 ;;
  esac
done

echo
if ((failed > 0)); then
  echo "failed in: ${failures[*]}"
fi
echo "rcpg: $passed passed, $failed failed"
((failed == 0))
