#!/usr/bin/env bash
# Builds another index for an already trained bundle, as a new bundle beside
# it: copies the trainer's files (tower, article embeddings, vocabularies,
# training metrics) and its manifest without the index builder's entries,
# then runs hmrec_index_builder with CONFIG. The source bundle is not
# touched and bundles/current is not moved.
#
#   scripts/reindex.sh SRC_BUNDLE NEW_NAME INDEX_BUILDER_CONFIG DATA_DIR
#
# Example (the IVF bundle of docs/PERFORMANCE.md):
#   scripts/reindex.sh out/full/bundles/full-e1 full-e1-ivf2048 my_ivf.pbtxt out/full/holdout7/train
set -euo pipefail
[[ $# -eq 4 ]] || { sed -n 2,12p "$0" >&2; exit 2; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HMREC_BUILD_DIR:-$ROOT/build}
SRC=$(cd "$1" && pwd -P)
NAME=$2
CONFIG=$3
DATA=$4
DEST="$(dirname "$SRC")/$NAME"
[[ -e "$SRC/manifest.pbtxt" ]] || { echo "reindex.sh: $SRC has no manifest.pbtxt" >&2; exit 1; }
[[ ! -e "$DEST" ]] || { echo "reindex.sh: $DEST exists; remove it first" >&2; exit 1; }
TRAINER_FILES=(customer_tower.pt article_embeddings.bin vocabularies.pbtxt training_metrics.jsonl training_curve.png)
mkdir "$DEST.partial"
trap 'rm -rf "$DEST.partial"' EXIT
for f in "${TRAINER_FILES[@]}"; do
  [[ -e "$SRC/$f" ]] && cp "$SRC/$f" "$DEST.partial/"
done
# The manifest as the trainer wrote it: new version, not sealed, no index type,
# only the trainer's files listed.
/usr/bin/python3 - "$SRC/manifest.pbtxt" "$DEST.partial/manifest.pbtxt" "$NAME" "${TRAINER_FILES[@]}" <<'PY'
import re, sys
src, dst, name, keep = sys.argv[1], sys.argv[2], sys.argv[3], set(sys.argv[4:])
text = open(src).read()
text = re.sub(r'^version: ".*"$', f'version: "{name}"', text, count=1, flags=re.M)
text = re.sub(r'^(sealed|index_type): .*\n', "", text, flags=re.M)
def file_block(m):
    n = re.search(r'name: "([^"]*)"', m.group(0)).group(1)
    return m.group(0) if n in keep else ""
text = re.sub(r'^files \{\n(?:  .*\n)*?\}\n', file_block, text, flags=re.M)
open(dst, "w").write(text)
PY
mv "$DEST.partial" "$DEST"
trap - EXIT
"$BUILD/index_builder/hmrec_index_builder" --bundle "$DEST" --data "$DATA" --config "$CONFIG" --make_current=false
