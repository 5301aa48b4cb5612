#!/usr/bin/env bash
# What each candidate source and feature group is worth, and the candidate
# budget, over the datasets a `scripts/baselines_report.sh --dir DIR` run
# left behind (one per seed, each with its bundle and holdout): per seed,
# `hmrec_ranking_study ablations` (the ranker retrained without each source
# and feature group, plus --quotas variants) and `hmrec_ranking_study
# budget`; then Markdown tables of the means over the seeds and a plot of
# the recall curves (DIR/budget.png). The figures of docs/QUALITY.md
# "Ablations" and "Candidate budget".
#
#   scripts/ranking_study.sh --dir DIR [--scale small] [--quotas "NAME=q0,...,q9;..."] [--mask "NAME=f,...;..."]
#                            [--variants all,-taste,...] [--ranker-seeds N] [--no-ablations]
#                            [--overrides "ranker { learning_rate: 0.05 }"] [--tag NAME] [--no-budget]
#
# --ranker-seeds N trains N rankers per variant and seed (their mean is the
# variant's figure): the boosting's sampling alone moves MAP@12 by ~0.002.
# --overrides is a RankingConfig text merged over the bundle's for every
# variant (a ranker or table setting); --tag names the per-seed result files
# (ablations-TAG.jsonl) so that several settings can be compared on one run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HMREC_BUILD_DIR:-$ROOT/build}
SCALE=small
DIR=""
QUOTAS=""
MASK=""
VARIANTS=""
RANKER_SEEDS=1
ABLATIONS=1
BUDGET=1
OVERRIDES=""
TAG=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) DIR=$2; shift 2 ;;
    --scale) SCALE=$2; shift 2 ;;
    --quotas) QUOTAS=$2; shift 2 ;;
    --mask) MASK=$2; shift 2 ;;
    --variants) VARIANTS=$2; shift 2 ;;
    --ranker-seeds) RANKER_SEEDS=$2; shift 2 ;;
    --no-ablations) ABLATIONS=0; shift ;;
    --no-budget) BUDGET=0; shift ;;
    --overrides) OVERRIDES=$2; shift 2 ;;
    --tag) TAG=-$2; shift 2 ;;
    *) echo "ranking_study.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n $DIR ]] || { echo "ranking_study.sh: --dir (a baselines_report.sh --dir) is required" >&2; exit 2; }
shopt -s nullglob
seeds=("$DIR/$SCALE"-*)
[[ ${#seeds[@]} -gt 0 ]] || { echo "ranking_study.sh: no $DIR/$SCALE-SEED directories" >&2; exit 2; }
for d in "${seeds[@]}"; do
  bundle=$(find "$d/bundles" -mindepth 1 -maxdepth 1 -type d | sort | tail -1)
  [[ -n $bundle ]] || { echo "ranking_study.sh: no bundle under $d/bundles" >&2; exit 1; }
  echo "ranking_study: $d" >&2
  if [[ $BUDGET == 1 ]]; then
    "$BUILD/bench/hmrec_ranking_study" budget --data "$d/split/train" --holdout "$d/split/truth.csv" \
      --bundle "$bundle" --jsonl "$d/budget.jsonl" --quiet > "$d/budget.md"
  fi
  if [[ $ABLATIONS == 1 ]]; then
    "$BUILD/bench/hmrec_ranking_study" ablations --data "$d/split/train" --holdout "$d/split/truth.csv" \
      --bundle "$bundle" --label_bundle "$d/train/ranking/retrieval_bundle/label-weeks" --quotas "$QUOTAS" \
      --mask "$MASK" --variants "$VARIANTS" --ranker_seeds "$RANKER_SEEDS" --ranking_overrides "$OVERRIDES" \
      --jsonl "$d/ablations$TAG.jsonl" --quiet > "$d/ablations$TAG.md"
  fi
done
/usr/bin/python3 - "$DIR" "$SCALE" "$TAG" <<'PY'
import glob, json, statistics, sys
d, scale, tag = sys.argv[1], sys.argv[2], sys.argv[3]
dirs = sorted(glob.glob(f"{d}/{scale}-*"))
def rows(path):
    return [json.loads(l) for l in open(path)]
if all(glob.glob(f"{x}/ablations{tag}.jsonl") for x in dirs):
    per = [rows(f"{x}/ablations{tag}.jsonl") for x in dirs]
    names = [r["variant"] for r in per[0]]
    base = [next(r for r in p if r["variant"] == "all")["map_ranked"] for p in per]
    print(f"| variant ({scale}, {len(dirs)} seeds) | candidates a customer | merged recall | ranked MAP@12, mean | Δ vs all, mean | seeds that lose |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n in names:
        rs = [next(r for r in p if r["variant"] == n) for p in per]
        maps = [r["map_ranked"] for r in rs]
        deltas = [m - b for m, b in zip(maps, base)]
        print(f"| {n} | {statistics.mean(r['candidates'] for r in rs):.1f} | {statistics.mean(r['recall_merged'] for r in rs):.4f} | "
              f"{statistics.mean(maps):.5f} | {statistics.mean(deltas):+.5f} | {sum(x < 0 for x in deltas)} of {len(dirs)} |")
        if all(r.get("early_stopped_map_by_seed") for r in rs):
            # With the refit on: each seed's rankers before it, on the same candidates.
            before = [statistics.mean(r["early_stopped_map_by_seed"]) for r in rs]
            gains = [m - b for m, b in zip(maps, before)]
            print(f"| {n}, without the refit | - | - | {statistics.mean(before):.5f} | "
                  f"{-statistics.mean(gains):+.5f} vs refitted | {sum(g < 0 for g in gains)} of {len(dirs)} better without it |")
    print()
if not all(glob.glob(f"{x}/budget.jsonl") for x in dirs):
    sys.exit(0)
budget = [rows(f"{x}/budget.jsonl") for x in dirs]
sources = []
for r in budget[0]:
    if r["kind"] == "source" and r["source"] not in sources:
        sources.append(r["source"])
ns = sorted({r["n"] for r in budget[0] if r["kind"] == "source"})
print(f"| N ({scale}, mean of {len(dirs)} seeds): recall of a source's first N (of it, reached by no other source) | " + " | ".join(sources) + " |")
print("| --- |" + " --- |" * len(sources))
for n in ns:
    cells = []
    for s in sources:
        xs = [next(r for r in b if r["kind"] == "source" and r["source"] == s and r["n"] == n) for b in budget]
        cells.append(f"{statistics.mean(x['recall'] for x in xs):.4f} ({statistics.mean(x['unique'] for x in xs):.4f})")
    print(f"| {n} | " + " | ".join(cells) + " |")
print()
print("| merged: every quota times | candidates a customer | recall |")
print("| --- | --- | --- |")
for i, m in enumerate([r for r in budget[0] if r["kind"] == "merged"]):
    ms = [[r for r in b if r["kind"] == "merged"][i] for b in budget]
    print(f"| {m['scale']:.2f} | {statistics.mean(x['candidates'] for x in ms):.1f} | {statistics.mean(x['recall'] for x in ms):.4f} |")
for b, x in zip(budget, dirs):
    bundle = next(r for r in b if r["kind"] == "bundle")
    greedy = [r for r in b if r["kind"] == "greedy"]
    g = greedy[-1] if greedy else None
    print(f"\n{x}: the bundle's quotas {bundle['quota']} {bundle['candidates']:.1f} candidates, recall {bundle['recall']:.4f}"
          + (f"; greedy mix {g['quota']} {g['candidates']:.1f}, recall {g['recall']:.4f}" if g else ""))
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    for s in sources:
        a.plot(ns, [statistics.mean(next(r for r in bb if r["kind"] == "source" and r["source"] == s and r["n"] == n)["recall"]
                                    for bb in budget) for n in ns], marker="o", label=s)
    a.set_xlabel("candidates the source proposes (N)"); a.set_ylabel("recall of next-week purchases"); a.set_xscale("log", base=2)
    a.set_title(f"per source ({scale}, mean of {len(dirs)} seeds)"); a.legend(fontsize=8); a.grid(alpha=.3)
    merged = [[r for r in bb if r["kind"] == "merged"] for bb in budget]
    b.plot([statistics.mean(m[i]["candidates"] for m in merged) for i in range(len(merged[0]))],
           [statistics.mean(m[i]["recall"] for m in merged) for i in range(len(merged[0]))], marker="o", label="bundle's mix, scaled")
    gs = [[r for r in bb if r["kind"] == "greedy"] for bb in budget]
    for i, g in enumerate(gs):
        if g:
            b.plot([p["candidates"] for p in g], [p["recall"] for p in g], alpha=.6, label="greedy mix" if i == 0 else None, color="C1")
    b.set_xlabel("candidates a customer"); b.set_ylabel("merged recall"); b.set_title("merged"); b.legend(); b.grid(alpha=.3)
    fig.tight_layout(); fig.savefig(f"{d}/budget.png", dpi=110)
    print(f"\nplot: {d}/budget.png")
except ImportError:
    print("\n(no matplotlib: no plot)")
PY
