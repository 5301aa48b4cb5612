#!/usr/bin/env bash
# Installs the Debian packages (deploy/install_deps.sh), then configures and
# builds hmrec with Ninja into build/ (or $HMREC_BUILD_DIR). Safe to re-run:
# only what changed is rebuilt.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HMREC_BUILD_DIR:-$ROOT/build}

bash "$ROOT/deploy/install_deps.sh"
if [[ ! -f "$BUILD/build.ninja" ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
fi
# 2 cores: LibTorch translation units need ~1.5 GB each, so at most 2 jobs.
cmake --build "$BUILD" -j "${HMREC_BUILD_JOBS:-2}" >&2
