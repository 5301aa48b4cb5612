#pragma once

// The learned ranker: gradient-boosted trees from Debian's XGBoost (C API),
// trained on groups of candidates (one group per customer and label week)
// and used to order a customer's candidates. Knows nothing of what the
// features mean (features/ranking_features.h does).
//
// Scoring goes through one of two evaluators (RankerParams.evaluator):
// "native" (ranker/forest.h, the default) or "xgboost" (XGBoost's own
// predictor, the reference). A model the native evaluator does not support,
// or one on which it disagrees with XGBoost on probe rows at load, is scored
// by XGBoost, with a line on stderr saying why.
//
// Thread safety: a loaded Ranker is immutable; Predict() may run on many
// threads at once (XGBoost's in-place prediction is thread-safe; its result
// buffer is per thread and copied out before returning).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/config.pb.h"
#include "ranker/forest.h"

namespace hmrec {

// Rows grouped by query (customer), as XGBoost's ranking objectives need
// them: the rows of group g follow those of group g - 1.
struct RankingSet {
  int num_features = 0;
  std::vector<float> features;  // rows x num_features, NaN = missing
  std::vector<float> labels;    // rows: 1 bought, 0 not
  std::vector<uint32_t> group_sizes;

  size_t rows() const { return labels.size(); }
  // Appends `other`'s rows and groups.
  void Append(const RankingSet& other);
};

struct RankerTrainReport {
  // One learning rate's booster.
  struct Tried {
    double learning_rate = 0;
    int rounds = 0;      // boosted
    int best_round = 0;  // 1-based; a kept model keeps rounds 1..best_round
    double best_valid_map = 0;
    std::vector<double> valid_map;  // MAP@12 on the validation groups after each round
    // Against the ranker kept before it (0 for the first): the mean change
    // of the validation groups' AP@12 and its standard error.
    double map_gain = 0;
    double map_gain_se = 0;
  };
  std::vector<Tried> tried;  // every learning rate trained, in order
  size_t kept = 0;           // tried[kept] is the returned ranker, or the one refitted
  // With a refit set: the rounds boosted on every set (the kept one's
  // best_round) and their time; 0 without.
  int refit_rounds = 0;
  double refit_seconds = 0;
  double seconds = 0;  // all of them

  const Tried& Kept() const { return tried.at(kept); }
};

class Ranker {
 public:
  // How far (in standard errors of the mean per-group AP@12 change on the
  // validation groups) a later learning rate must beat the kept ranker.
  static constexpr double kSwitchStandardErrors = 2.0;
  // Whether a mean AP@12 change `gain` with standard error `se` is beyond
  // that noise (the switch rule of Train).
  static bool ClearlyBetter(double gain, double se) { return gain > kSwitchStandardErrors * se; }

  // Trains on the groups of every set of `train` (e.g. one per label week),
  // stopping when MAP@12 on `valid` has not improved for
  // params.early_stopping_rounds rounds, and keeps the best round's trees.
  // With params.learning_rate_choices, one booster is trained at each rate
  // (the same matrices, one after the other); the first is kept unless a
  // later one orders `valid`'s groups better beyond their noise (the mean
  // per-group change of AP@12 above kSwitchStandardErrors standard errors),
  // which is then kept in its place. Otherwise params.learning_rate alone.
  // A rate <= 0 is InvalidArgument.
  // The sets are quantised into XGBoost's histogram matrices (a byte per
  // value) batch by batch and then freed, so peak memory is the float sets
  // plus a quarter of them, not the float sets plus a sparse copy at twice
  // their size. Deterministic for a seed and thread count.
  //
  // With a non-empty `refit_set` (the validation week's groups sampled like
  // a training week's), the returned ranker is boosted again from scratch on
  // `train` and `refit_set` together, at the kept rate for the kept
  // ranker's best_round rounds (no early stopping: the validation week is
  // now in its training), so the week nearest the days served trains it
  // too; `early_stopped` (if not null) then receives the ranker chosen on
  // `valid` (null without a refit set).
  static absl::StatusOr<std::unique_ptr<Ranker>> Train(const config::RankerParams& params, int threads,
                                                       std::vector<RankingSet> train, RankingSet valid,
                                                       bool show_progress, RankerTrainReport* report,
                                                       RankingSet refit_set = RankingSet(),
                                                       std::unique_ptr<Ranker>* early_stopped = nullptr);
  // Loads a model written by Save(); predictions use `threads` threads and
  // `evaluator` ("native", "" = native, or "xgboost").
  static absl::StatusOr<std::unique_ptr<Ranker>> Load(const std::string& path, int threads,
                                                      const std::string& evaluator = "native");
  ~Ranker();

  // Writes the model (XGBoost's UBJSON) atomically.
  absl::Status Save(const std::string& path) const;

  // Scores `n` rows of `num_features` features (row-major) into out[0..n),
  // with the first `trees` boosting rounds (0: all).
  absl::Status Predict(const float* rows, int64_t n, int num_features, float* out, int trees = 0) const;
  // The raw margins (before any link function) of trees [begin, end) (end
  // 0: the last), for `n` rows.
  absl::Status PredictMargins(const float* rows, int64_t n, int num_features, int begin, int end, float* out) const;
  // Boosting rounds in the model.
  int rounds() const;

  int num_features() const { return num_features_; }
  // "native" or "xgboost": the evaluator that scores; when "native" was
  // asked for and XGBoost scores, fallback_reason() says why.
  const std::string& evaluator() const { return evaluator_; }
  const std::string& fallback_reason() const { return fallback_reason_; }
  // Switches the evaluator (as Load's argument); InvalidArgumentError for an
  // unknown name.
  absl::Status SetEvaluator(const std::string& evaluator);
  // The model as XGBoost's JSON (what the native evaluator reads).
  absl::StatusOr<std::string> ToJson() const;

 private:
  Ranker(void* booster, int num_features, int threads)
      : booster_(booster), num_features_(num_features), threads_(threads) {}
  absl::Status Run(const float* rows, int64_t n, int num_features, bool margin, int begin, int end, float* out) const;
  absl::Status RunXGBoost(const float* rows, int64_t n, int num_features, bool margin, int begin, int end,
                          float* out) const;
  void* booster_;  // BoosterHandle
  int num_features_;
  int threads_;
  std::string evaluator_ = "xgboost";
  std::string fallback_reason_;
  std::unique_ptr<Forest> forest_;  // set when evaluator_ is "native"
};

// Scores groups of candidates (group g is rows [offsets[g], offsets[g+1]))
// in two steps, for the price of fewer trees: the first `first_trees` trees
// over every row, then the remaining trees only over each group's `keep`
// best rows by that partial score. Kept rows get their full margin; the
// others their partial margin minus kDropped, so they order after every kept
// row. With first_trees 0 (or keep 0) every row gets the full margin. The
// top `keep` of a group are exact whenever the full model's top rows are
// among the partial model's top `keep` (docs/PERFORMANCE.md measures how
// often that costs anything). `trees` (0: all) scores as if the model had
// only its first `trees` rounds (what a ranker trained with max_rounds =
// trees would serve). Deterministic; thread-safe with one scratch per
// thread.
struct CascadeScratch {
  std::vector<float> partial, rest, gathered;
  std::vector<uint32_t> order, kept;
};
inline constexpr float kDropped = 1e6f;
absl::Status ScoreGroups(const Ranker& ranker, const float* rows, const std::vector<size_t>& offsets, int num_features,
                         int first_trees, int keep, std::vector<float>* scores, CascadeScratch* scratch, int trees = 0);

}  // namespace hmrec
