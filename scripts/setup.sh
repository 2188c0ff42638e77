#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running demonstration: installs the dependencies,
# builds rcpg (build/), and runs the main job on the embedded default (scripts/demo.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
scripts/demo.sh "$@"
