#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs every unit and
# end-to-end test with ctest. Extra arguments go to ctest (e.g. -R csv).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HMREC_BUILD_DIR:-$ROOT/build}

bash "$ROOT/scripts/build.sh"
cd "$BUILD"
ctest --output-on-failure -j "${HMREC_TEST_JOBS:-2}" --timeout 600 "$@"
