#pragma once

// The ranking stage of the trainer, after the towers: candidate sources and
// point-in-time features for the last label weeks of the data, an XGBoost
// ranker trained on them, and the bundle's ranking tables, all written into
// the exported bundle. Evaluates retrieval only, the fixed-rule merge and
// the ranker on the holdout when one is given.
//
// Label weeks: the last `label_weeks` weeks before the day after the data;
// for week w starting on day D, candidates and features use only purchases
// before D, labels are the purchases in [D, D + 7). The two-tower source in
// those weeks comes from a tower trained only on the days before the first
// label week (it has not seen the purchases it is asked to predict); the
// served bundle's own tower, trained on everything, proposes at serving time
// and on the holdout. The last label week is the early-stopping set.
//
// No LibTorch in this header. Not thread-safe.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "candidates/sources.h"
#include "data/hm_data.h"
#include "proto/config.pb.h"
#include "ranker/ranker.h"
#include "trainer/trainer.h"

namespace hmrec {

struct RankingWeekStats {
  std::string first_day;
  int64_t buyers = 0;     // customers who bought in the week
  int64_t customers = 0;  // of them, those whose candidates were built
  int64_t groups = 0;     // of those, the ones with a bought candidate (training groups)
  int64_t rows = 0;
  int64_t positives = 0;
  double candidates_per_customer = 0;
  double recall = 0;  // of the week's distinct purchases, the share among the candidates (mean over customers)
};

// Offline quality on held-out purchases: MAP@12 as Kaggle scores it.
struct RankingEvaluation {
  int64_t customers = 0;
  double candidates_per_customer = 0;
  double recall_merged = 0;                // share of held-out articles among all candidates
  double recall_source[kNumSources] = {};  // ... among one source's
  double map_retrieval = 0;                // two-tower top 12
  double map_heuristic = 0;                // candidates merged by the fixed rule
  double map_ranked = 0;                   // ranked by the ranker
  double recall12_ranked = 0;
};

struct RankingReport {
  std::vector<RankingWeekStats> weeks;
  RankerTrainReport ranker;
  bool evaluated = false;
  RankingEvaluation holdout;
  double seconds_retrieval_tower = 0;
  double seconds_candidates_features = 0;
  double seconds_ranker = 0;
  double seconds_evaluation = 0;
  double seconds_total = 0;
  double peak_rss_mib = 0;
  int64_t training_rows = 0;
  double training_matrix_mib = 0;

  std::string Json() const;
};

struct RankingOptions {
  std::string work_dir;  // the retrieval tower, the report, the ranker's curve
  bool show_progress = true;
  std::string plot_script;  // renders the ranker's curve; empty = no plot
  std::string python = "python3";
};

// One point of the cost/quality curve of a trained ranker.
struct RankingCurvePoint {
  int active_weeks = 0;           // two_tower_active_weeks (negative: every article)
  int64_t searched_articles = 0;  // articles the two-tower source searched
  double candidate_scale = 1;     // per-source candidate limits times this
  int trees = 0;                  // boosting rounds used (0 = all)
  // With all trees: the cascade's first trees and kept candidates (0: none).
  int cascade_first_trees = 0;
  int cascade_keep = 0;
  double candidates_per_customer = 0;
  double map_at_12 = 0;
  double candidates_us = 0;  // per customer, one thread: sources + features
  double predict_us = 0;     // per customer, one thread: XGBoost
};

// Scores the holdout (its first `max_customers`, 0 = all) with the bundle's
// ranker for every combination of the two-tower source's active weeks (empty:
// the bundle's), candidate scale and tree count, timing
// candidates + features and the prediction on one thread: the curve from
// which the defaults are picked (docs/PERFORMANCE.md).
absl::StatusOr<std::vector<RankingCurvePoint>> RankingCurve(
    const Dataset& ds, const Holdout& holdout, const std::string& bundle_dir,
    const std::vector<double>& candidate_scales, const std::vector<int>& tree_counts,
    const std::vector<std::pair<int, int>>& cascades, const std::vector<int>& active_weeks, int64_t max_customers);

// Trains the ranking stage for the bundle `bundle_dir`, which the caller
// exported from towers trained on `ds` with `cfg` (cfg.ranking present),
// and adds ranker.ubj, ranking_tables.bin, the feature schema and the
// metrics to its manifest.
absl::StatusOr<RankingReport> TrainRanking(const config::TrainerConfig& cfg, const Dataset& ds, const Holdout* holdout,
                                           const std::string& bundle_dir, const RankingOptions& options);

}  // namespace hmrec
