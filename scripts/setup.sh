#!/usr/bin/env bash
# From a fresh Debian 12 machine to the first figures: installs the dependencies, builds
# rcpg (build/), and runs the main job, the benchmark suite, at its default size
# (bench/run.sh: rcpg beside corosync and the device, about 15 minutes under TCG).
# Arguments go to bench/run.sh: `scripts/setup.sh --smoke` for a two-minute run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
exec bench/run.sh "$@"
