#!/usr/bin/env bash
# The sanitizer and fuzzing stages (issue: reliability), each in its own
# build directory next to the main one, run by scripts/test.sh after the
# main suite (HMREC_SANITIZERS=0 skips them):
#
#   fuzz  clang, -fsanitize=fuzzer,address,undefined: the CSV readers and
#         request handling fuzzed for HMREC_FUZZ_SECONDS (default 60) each
#         from the seed corpus in tests/fuzz/corpus, then every saved
#         regression input (tests/fuzz/regressions) once;
#   asan  gcc, -fsanitize=address,undefined: the whole test suite (unit and
#         end-to-end: the e2e scripts start the instrumented programs);
#   tsan  gcc, -fsanitize=thread: the concurrency tests (batch queue, the
#         served bundle's hot swap under concurrent readers, keys, HTTP, the
#         event writer, the restricted-sources cache).
#
#   scripts/sanitize.sh [fuzz] [asan] [tsan]     (default: all three)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE=${HMREC_SANITIZE_DIR:-$ROOT/build-sanitize}
JOBS=${HMREC_BUILD_JOBS:-2}
STAGES=("$@")
[[ ${#STAGES[@]} -gt 0 ]] || STAGES=(fuzz asan tsan)
# Only this project's code is instrumented. Leaks: reported for our code;
# the Debian libraries' process-lifetime singletons are suppressed by name.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_odr_violation=0}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/sanitizers/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/tests/sanitizers/tsan.supp}

for stage in "${STAGES[@]}"; do
  dir="$BASE/$stage"
  echo "sanitize: $stage in $dir" >&2
  case "$stage" in
    fuzz)
      [[ -f "$dir/build.ninja" ]] || CC=clang CXX=clang++ cmake -S "$ROOT" -B "$dir" -G Ninja \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHMREC_FUZZ=ON -DHMREC_FUZZ_SECONDS="${HMREC_FUZZ_SECONDS:-60}" >&2
      cmake --build "$dir" -j "$JOBS" >&2
      (cd "$dir" && ctest --output-on-failure -V -L fuzz --timeout 900 | grep -E "^[0-9]+: (#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::new_units_added)|Test +#|tests passed|FAILED" )
      ;;
    asan)
      [[ -f "$dir/build.ninja" ]] || cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DHMREC_SANITIZE=address,undefined >&2
      cmake --build "$dir" -j "$JOBS" >&2
      # e2e_image builds the container from source, which no sanitizer build
      # changes: it runs once, in the main test pass.
      (cd "$dir" && ctest --output-on-failure -j "${HMREC_TEST_JOBS:-2}" --timeout 1200 -E '^e2e_image$')
      ;;
    tsan)
      [[ -f "$dir/build.ninja" ]] || cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DHMREC_SANITIZE=thread >&2
      cmake --build "$dir" -j "$JOBS" --target batch_queue_test bundle_holder_test auth_test http_server_test \
        event_writer_test restricted_sources_test >&2
      (cd "$dir" && OMP_NUM_THREADS=1 ctest --output-on-failure -j 1 --timeout 900 \
        -R '^(BatchQueue|BundleHolder|Authenticator|HttpServer|EventWriter|RestrictedSourcesCache)\.')
      ;;
    *) echo "sanitize.sh: unknown stage $stage (fuzz, asan, tsan)" >&2; exit 2 ;;
  esac
done
