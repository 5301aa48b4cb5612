#!/usr/bin/env bash
# The one list of Debian 12 packages hmrec needs to build, test and run.
# Idempotent: packages already present are skipped by apt; safe to run again.
#
#   deploy/install_deps.sh               # build, test and deployment checks
#   deploy/install_deps.sh --build-only  # only what building needs (the container image)
set -euo pipefail
BUILD_ONLY=0
if [[ "${1:-}" == "--build-only" ]]; then BUILD_ONLY=1; fi

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  # serving and storage
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  librocksdb-dev prometheus-cpp-dev
  # the shared event store's client (RecordPurchases with several replicas)
  libhiredis-dev
  # the HTTP/JSON and metrics ports: libmicrohttpd, TLS by GnuTLS (client
  # certificates read with GnuTLS directly); API keys hashed with OpenSSL 3
  libmicrohttpd-dev libgnutls28-dev libssl-dev
  # model and index: LibTorch and faiss (CPU builds in Debian)
  libtorch-dev libfaiss-dev
  # the learned ranker (gradient-boosted trees, C API)
  libxgboost-dev
  # the data-parallel trainer: c10d's ProcessGroupGloo headers (LibTorch ships the library)
  libgloo-dev
  # OpenMP build of OpenBLAS: one thread model with faiss/LibTorch OpenMP (docs/PERFORMANCE.md)
  libopenblas0-openmp libopenblas-dev
  # utilities that come with the above, named so the list is complete
  libabsl-dev libgoogle-glog-dev libgflags-dev
  # tests (built with the rest)
  libgtest-dev libgmock-dev googletest
)
TEST_PACKAGES=(
  # interoperability test: a client hmrec did not write (stubs generated from proto/ at test time)
  python3-grpcio python3-grpc-tools
  # plots (training curves, latency vs load) and report tooling; the Python
  # batch scorer of bench/side_by_side.sh
  python3 python3-matplotlib python3-numpy python3-torch python3-faiss
  # deployment checks (tests/e2e/deploy_test.sh): YAML lint, promtool and a real
  # Prometheus
  yamllint prometheus python3-yaml
  # the shared event store, started by the tests on 127.0.0.1
  redis-server
  # the HTTP library comparison (bench/http_compare.sh): the libraries the
  # server's HTTP port was measured against, and the load generator
  libboost-dev libcpp-httplib-dev wrk
  # the inspector page's browser test: headless chromium driven through chromedriver
  chromium chromium-driver python3-selenium fonts-dejavu-core
  # the container image test: podman builds deploy/docker/Dockerfile on base images made by debootstrap
  podman debootstrap
  # the libFuzzer build (scripts/sanitize.sh): clang and its fuzzer runtime;
  # the formatting check (scripts/check_format.sh)
  clang libclang-rt-14-dev clang-format
)
# Node.js and npm for the Kubernetes schema validation (deploy/validate),
# unless the machine has them already (e.g. from NodeSource, which conflicts
# with Debian's npm package).
if ! command -v npm > /dev/null; then TEST_PACKAGES+=(nodejs npm); fi
# kubectl (for `kubectl kustomize`): Debian's kubernetes-client, unless one is
# already installed (e.g. Google Cloud SDK's, which conflicts with it).
if ! command -v kubectl > /dev/null; then TEST_PACKAGES+=(kubernetes-client); fi
if ((BUILD_ONLY == 0)); then PACKAGES+=("${TEST_PACKAGES[@]}"); fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
if ((${#missing[@]} == 0)); then
  echo "install_deps: all ${#PACKAGES[@]} packages present" >&2
else
  echo "install_deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# One thread model: LibTorch and faiss run OpenMP, so BLAS must too. With
# Debian's default (pthreads) OpenBLAS both pools spin on the same 2 cores
# and a training step takes ~4x longer (docs/PERFORMANCE.md).
ARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for lib in libblas.so.3 liblapack.so.3 libopenblas.so.0; do
  target=/usr/lib/$ARCH/openblas-openmp/$lib
  current=$(readlink -f "/usr/lib/$ARCH/$lib" || true)
  if [[ -e $target && $current != "$target" ]]; then
    $SUDO update-alternatives --set "$lib-$ARCH" "$target" >&2
  fi
done

# Node packages for the Kubernetes schema validation, pinned by
# deploy/validate/package-lock.json, from the npm registry into
# deploy/validate/node_modules (not part of the build or the programs).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if ((BUILD_ONLY == 0)) && [[ ! -f "$ROOT/deploy/validate/node_modules/.package-lock.json" ||
      "$ROOT/deploy/validate/package-lock.json" -nt "$ROOT/deploy/validate/node_modules/.package-lock.json" ]]; then
  (cd "$ROOT/deploy/validate" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
