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
#include "trainer/ranking_passes.h"
#include "trainer/trainer.h"

namespace hmrec {

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

// Trains the ranking stage for the bundle `bundle_dir`, which the caller
// exported from towers trained on `ds` with `cfg` (cfg.ranking present),
// and adds ranker.ubj, ranking_tables.bin, the feature schema and the
// metrics to its manifest.
absl::StatusOr<RankingReport> TrainRanking(const config::TrainerConfig& cfg, const Dataset& ds, const Holdout* holdout,
                                           const std::string& bundle_dir, const RankingOptions& options);

}  // namespace hmrec
