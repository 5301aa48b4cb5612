#pragma once

// Studies of a trained ranking stage, through the trainer's own passes
// (trainer/ranking_passes.h): how quality and cost grow with candidates and
// trees (RankingCurve), what each source and feature group is worth
// (RankingVariants: the ranker retrained without it, the holdout scored),
// and how much of the next purchases each source reaches at each budget
// (CandidateBudget: recall@N curves and a greedy mix at equal candidates).
//
// No LibTorch in this header. Not thread-safe.

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "candidates/sources.h"
#include "data/hm_data.h"
#include "ranker/ranker.h"
#include "trainer/ranking_passes.h"
#include "trainer/trainer.h"

namespace hmrec {

// One point of the cost/quality curve of a trained ranker.
struct RankingCurvePoint {
  int active_weeks = 0;           // two_tower_active_weeks (negative: every article)
  int64_t searched_articles = 0;  // articles the two-tower source searched
  double candidate_scale = 1;     // per-source candidate limits times this
  int trees = 0;                  // boosting rounds used (0 = all)
  // The cascade's first trees and kept candidates (0: none); the kept rows
  // get the rest of the `trees` rounds.
  int cascade_first_trees = 0;
  int cascade_keep = 0;
  double candidates_per_customer = 0;
  double map_at_12 = 0;
  double candidates_us = 0;  // per customer, one thread: sources + features
  double predict_us = 0;     // per customer, one thread: XGBoost
};

// A cascade to score with: ScoreGroups(first_trees, keep, trees).
struct CurveCascade {
  int first_trees = 0;
  int keep = 0;
  int trees = 0;  // 0: all
};
// "10:20" or "10:20@80" (FIRST:KEEP, then optionally '@' and the rounds to
// stop at); InvalidArgumentError names what is wrong.
absl::StatusOr<CurveCascade> ParseCurveCascade(absl::string_view text);
// The same text back ("all" for no cascade and no cap).
std::string CurveCascadeText(int first_trees, int keep, int trees);

// Scores the holdout (its first `max_customers`, 0 = all) with the bundle's
// ranker for every combination of the two-tower source's active weeks (empty:
// the bundle's), candidate scale and tree count or cascade, timing
// candidates + features and the prediction on one thread: the curve from
// which the defaults are picked (docs/PERFORMANCE.md). The fields set in
// `overrides` replace the bundle's ranking config for the candidates (a
// source's quota at -1: what serving without it would cost and save; the
// ranker is the bundle's, trained with it).
absl::StatusOr<std::vector<RankingCurvePoint>> RankingCurve(const Dataset& ds, const Holdout& holdout,
                                                            const std::string& bundle_dir,
                                                            const std::vector<double>& candidate_scales,
                                                            const std::vector<int>& tree_counts,
                                                            const std::vector<CurveCascade>& cascades,
                                                            const std::vector<int>& active_weeks, int64_t max_customers,
                                                            const config::RankingConfig& overrides = {});

// The ranking features by what they describe; every column is in exactly
// one group (a test holds the names to it).
struct FeatureGroup {
  std::string name;
  std::vector<int> columns;
};
const std::vector<FeatureGroup>& RankingFeatureGroups();

// A change to the candidates or features, under a name.
struct RankingVariant {
  std::string name;
  CandidateTrim trim;  // quotas above the bundle's make the sources propose that many
};

// "all" (the bundle's stage as trained), then "-SOURCE" for each source and
// "-GROUP" for each feature group.
std::vector<RankingVariant> StandardAblations();

struct RankingVariantResult {
  std::string name;
  std::vector<RankingWeekStats> weeks;
  RankerTrainReport ranker;         // the first seed's
  RankingEvaluation holdout;        // ranked figures: the mean over the ranker seeds
  std::vector<double> map_by_seed;  // ranked MAP@12 of each ranker seed
  // With RankingConfig.refit on: each seed's ranker before the refit (the
  // one chosen on the last label week), on the same candidates.
  std::vector<double> early_stopped_map_by_seed;
  double seconds = 0;
};

// For each variant: the label weeks' candidates and features as the bundle's
// trainer built them (its config, its label-weeks tower in
// `label_bundle_dir`, the work dir's ranking/retrieval_bundle/label-weeks),
// changed by the variant, a ranker trained on them with the bundle's
// parameters, and the holdout scored with the bundle's tower. The "all"
// variant reproduces the trainer's own holdout figures. With
// `ranker_seeds` > 1 the ranker is trained that many times (seeds from the
// bundle's on) and the ranked figures are their mean: the boosting's row and
// column sampling alone moves MAP@12 by about as much as a small change does.
// The fields set in `overrides` replace the bundle's ranking config for every
// variant (a table setting such as neighbour_clusters: what the trainer would
// have built with it, "all" included). A label bundle whose data reaches
// into the label weeks (e.g. with label_weeks raised in `overrides`) is
// FailedPrecondition, naming both days.
absl::StatusOr<std::vector<RankingVariantResult>> RankingVariants(const Dataset& ds, const Holdout& holdout,
                                                                  const std::string& bundle_dir,
                                                                  const std::string& label_bundle_dir,
                                                                  const std::vector<RankingVariant>& variants,
                                                                  int ranker_seeds, int threads, bool show_progress,
                                                                  const config::RankingConfig& overrides = {});

// Recall of the holdout's purchases by candidate budget.
struct CandidateBudgetReport {
  int64_t customers = 0;
  std::vector<int> ns;                                     // candidates a source proposes
  std::vector<std::array<double, kNumSources>> recall_at;  // [n][source]: recall of a source's first n
  std::vector<std::array<double, kNumSources>> unique_at;  // ... of what no other source at the bundle's quota has
  struct MergedPoint {
    double scale = 0;  // every source's quota times this
    double candidates = 0;
    double recall = 0;
  };
  std::vector<MergedPoint> merged;
  // Greedy mix: from nothing, repeatedly the `step` more candidates of the
  // source that adds the most recall per added candidate, until the merged
  // list is as long as the bundle's; each point is the quotas after a step.
  struct MixPoint {
    std::array<int, kNumSources> quota{};
    double candidates = 0;
    double recall = 0;
  };
  std::vector<MixPoint> greedy;
  std::array<int, kNumSources> bundle_quota{};
  double bundle_candidates = 0;
  double bundle_recall = 0;
};

// Generates every holdout customer's candidates (the first `max_customers`,
// 0 = all) with each source's quota at max(ns), and reads the curves off
// their ranks (a source's first n are those it ranked below n).
absl::StatusOr<CandidateBudgetReport> CandidateBudget(const Dataset& ds, const Holdout& holdout,
                                                      const std::string& bundle_dir, const std::vector<int>& ns,
                                                      const std::vector<double>& scales, int step,
                                                      int64_t max_customers, int threads, bool show_progress);

// The bundle config's per-source candidate quotas, in source order.
std::array<int, kNumSources> SourceQuotas(const config::RankingConfig& rc);

}  // namespace hmrec
