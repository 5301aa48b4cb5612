# Shared by the e2e scripts (sourced): fail, and a tiny servable bundle.

fail() { echo "FAIL: $*" >&2; exit 1; }

# make_tiny_bundle BUILD SRC WORK: tiny generated data in WORK/data and a
# sealed, current bundle WORK/bundles/v1 trained on all of it for one epoch.
make_tiny_bundle() {
  local build=$1 src=$2 work=$3
  "$build/datagen/hmrec_datagen" --scale tiny --out "$work/data" --quiet
  "$build/trainer/hmrec_trainer" --config "$src/tests/data/trainer_tiny.pbtxt" --data "$work/data" \
    --work_dir "$work/train" --bundles "$work/bundles" --version v1 --epochs 1 > /dev/null 2> "$work/train.log" \
    || { cat "$work/train.log" >&2; fail "trainer"; }
  "$build/index_builder/hmrec_index_builder" --config "$src/configs/index_builder.pbtxt" --bundle "$work/bundles/v1" \
    --data "$work/data" --quiet 2> "$work/ib.log" || { cat "$work/ib.log" >&2; fail "index builder"; }
}
