#!/usr/bin/env bash
# The test command: installs dependencies, builds, checks the C++ formatting
# (scripts/check_format.sh), and runs every unit and
# end-to-end test with ctest; then (unless arguments were given, or
# HMREC_SANITIZERS=0) the sanitizer stages of scripts/sanitize.sh: the fuzz
# targets, the whole suite under ASan+UBSan, the concurrency tests under TSan.
# Extra arguments go to ctest (e.g. -R csv).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HMREC_BUILD_DIR:-$ROOT/build}

bash "$ROOT/scripts/build.sh"
bash "$ROOT/scripts/check_format.sh"
cd "$BUILD"
ctest --output-on-failure -j "${HMREC_TEST_JOBS:-2}" --timeout 600 "$@"
if [[ $# -eq 0 && ${HMREC_SANITIZERS:-1} != 0 ]]; then
  bash "$ROOT/scripts/sanitize.sh" fuzz asan tsan
fi
