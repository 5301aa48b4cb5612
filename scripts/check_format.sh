#!/usr/bin/env bash
# Fails (exit 1) when a C++ file of the repository differs from the style in
# .clang-format, listing the files and the first lines that differ.
#   scripts/check_format.sh          # check
#   scripts/check_format.sh --fix    # reformat in place
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
command -v clang-format > /dev/null || { echo "check_format: clang-format is not installed (deploy/install_deps.sh)" >&2; exit 2; }
mapfile -t files < <(git ls-files '*.h' '*.cc')
if [[ "${1:-}" == "--fix" ]]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=0
for f in "${files[@]}"; do
  if ! diff -q <(clang-format "$f") "$f" > /dev/null; then
    echo "check_format: $f is not formatted (scripts/check_format.sh --fix):" >&2
    diff <(clang-format "$f") "$f" | head -6 >&2 || true
    bad=$((bad + 1))
  fi
done
if ((bad > 0)); then echo "check_format: $bad of ${#files[@]} files need formatting" >&2; exit 1; fi
echo "check_format: ${#files[@]} files formatted as .clang-format says" >&2
