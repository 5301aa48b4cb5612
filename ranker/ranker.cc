#include "ranker/ranker.h"

#include <xgboost/c_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/metrics.h"
#include "common/progress.h"
#include "common/status_macros.h"
#include "common/text_proto.h"

namespace hmrec {
namespace {

// Every XGBoost call goes through here: its error text becomes the Status.
absl::Status Check(int rc, const char* what) {
  if (rc == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("xgboost ", what, ": ", XGBGetLastError()));
}

// A DMatrix freed with its scope.
class Matrix {
 public:
  ~Matrix() {
    if (h_ != nullptr) XGDMatrixFree(h_);
  }
  DMatrixHandle* out() { return &h_; }
  DMatrixHandle get() const { return h_; }

 private:
  DMatrixHandle h_ = nullptr;
};

// Feeds RankingSets to XGBoost's iterator API one set per batch: data on
// the proxy matrix, labels and groups on the proxy's info.
struct BatchIter {
  std::vector<const RankingSet*> sets;
  size_t next = 0;
  DMatrixHandle proxy = nullptr;
  std::string array;  // the current batch's array interface, alive while XGBoost reads it
  std::string error;
};

std::string ArrayInterface(const float* data, int64_t rows, int cols) {
  return absl::StrFormat("{\"data\": [%d, true], \"shape\": [%d, %d], \"typestr\": \"<f4\", \"version\": 3}",
                         reinterpret_cast<uintptr_t>(data), rows, cols);
}

void ResetBatches(DataIterHandle h) { static_cast<BatchIter*>(h)->next = 0; }

int NextBatch(DataIterHandle h) {
  BatchIter* it = static_cast<BatchIter*>(h);
  if (it->next >= it->sets.size()) return 0;
  const RankingSet& s = *it->sets[it->next++];
  it->array = ArrayInterface(s.features.data(), static_cast<int64_t>(s.rows()), s.num_features);
  if (XGProxyDMatrixSetDataDense(it->proxy, it->array.c_str()) != 0 ||
      XGDMatrixSetFloatInfo(it->proxy, "label", s.labels.data(), s.rows()) != 0 ||
      XGDMatrixSetUIntInfo(it->proxy, "group", s.group_sizes.data(), s.group_sizes.size()) != 0) {
    it->error = XGBGetLastError();
    return 0;
  }
  return 1;
}

absl::Status CheckSet(const RankingSet& set, int num_features) {
  if (set.rows() == 0 || set.group_sizes.empty()) return absl::InvalidArgumentError("ranking set without rows");
  if (set.num_features != num_features || set.features.size() != set.rows() * static_cast<size_t>(num_features)) {
    return absl::InvalidArgumentError("ranking sets disagree on their features or row counts");
  }
  uint64_t grouped = 0;
  for (uint32_t g : set.group_sizes) grouped += g;
  if (grouped != set.rows()) return absl::InvalidArgumentError("ranking set: groups do not cover its rows");
  return absl::OkStatus();
}

// A histogram-quantised matrix of `sets`, binned like `ref` when given.
absl::Status MakeQuantileMatrix(const std::vector<const RankingSet*>& sets, int threads, DMatrixHandle ref, Matrix* m) {
  Matrix proxy;
  RETURN_IF_ERROR(Check(XGProxyDMatrixCreate(proxy.out()), "proxy"));
  BatchIter it;
  it.sets = sets;
  it.proxy = proxy.get();
  const std::string config = absl::StrFormat("{\"missing\": NaN, \"nthread\": %d, \"max_bin\": 256}", threads);
  const int rc =
      XGQuantileDMatrixCreateFromCallback(&it, proxy.get(), ref, ResetBatches, NextBatch, config.c_str(), m->out());
  if (!it.error.empty()) return absl::InternalError(absl::StrCat("xgboost batch: ", it.error));
  return Check(rc, "quantile DMatrix");
}

// "[12]\tvalid-map@12:0.123" -> 0.123
absl::StatusOr<double> ParseEval(const char* text) {
  const std::string s(text);
  const size_t colon = s.rfind(':');
  double v = 0;
  if (colon == std::string::npos || !absl::SimpleAtod(s.substr(colon + 1), &v)) {
    return absl::InternalError(absl::StrCat("xgboost evaluation: cannot read '", s, "'"));
  }
  return v;
}

// AP@12 of each validation group (common/metrics.h, as the competition
// scores it) when the booster's first `rounds` rounds order its rows.
absl::StatusOr<std::vector<double>> GroupAveragePrecision(BoosterHandle booster, int rounds, DMatrixHandle valid) {
  bst_ulong labels_len = 0, groups_len = 0, dim = 0;
  const float* labels = nullptr;
  const unsigned* group_ptr = nullptr;
  RETURN_IF_ERROR(Check(XGDMatrixGetFloatInfo(valid, "label", &labels_len, &labels), "labels"));
  RETURN_IF_ERROR(Check(XGDMatrixGetUIntInfo(valid, "group_ptr", &groups_len, &group_ptr), "group_ptr"));
  const bst_ulong* shape = nullptr;
  const float* scores = nullptr;
  const std::string config = absl::StrFormat(
      R"({"type": 0, "training": false, "iteration_begin": 0, "iteration_end": %d, "strict_shape": false})", rounds);
  RETURN_IF_ERROR(
      Check(XGBoosterPredictFromDMatrix(booster, valid, config.c_str(), &shape, &dim, &scores), "validation scores"));
  if (dim < 1 || shape[0] != labels_len || groups_len < 1 || group_ptr[groups_len - 1] != labels_len) {
    return absl::InternalError("validation scores, labels and groups disagree");
  }
  std::vector<double> ap;
  ap.reserve(groups_len - 1);
  std::vector<int32_t> order;
  absl::flat_hash_set<int32_t> bought;
  for (bst_ulong g = 0; g + 1 < groups_len; ++g) {
    const int32_t begin = static_cast<int32_t>(group_ptr[g]), end = static_cast<int32_t>(group_ptr[g + 1]);
    order.resize(end - begin);
    std::iota(order.begin(), order.end(), begin);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return scores[a] > scores[b]; });
    bought.clear();
    for (int32_t r = begin; r < end; ++r) {
      if (labels[r] > 0) bought.insert(r);
    }
    ap.push_back(AveragePrecisionAtK(order, bought));
  }
  return ap;
}

// The booster's settings from `params`, at `rate`, on `threads` threads.
absl::Status SetBoosterParams(BoosterHandle booster, const config::RankerParams& params, double rate, int threads) {
  const std::vector<std::pair<std::string, std::string>> settings = {
      {"objective", params.objective()},
      {"eval_metric", "map@12"},
      {"eta", absl::StrCat(rate)},
      {"max_depth", absl::StrCat(params.max_depth())},
      {"min_child_weight", absl::StrCat(params.min_child_weight())},
      {"subsample", absl::StrCat(params.subsample())},
      {"colsample_bytree", absl::StrCat(params.colsample_bytree())},
      {"tree_method", "hist"},
      {"nthread", absl::StrCat(threads)},
      {"seed", absl::StrCat(params.seed())},
      {"verbosity", "0"},
  };
  for (const auto& [k, v] : settings) {
    RETURN_IF_ERROR(Check(XGBoosterSetParam(booster, k.c_str(), v.c_str()), k.c_str()));
  }
  return absl::OkStatus();
}

// Boosts `booster` at `rate` on dtrain, up to params.max_rounds() rounds,
// until MAP@12 on dvalid has not improved for early_stopping_rounds; fills
// `tried` (its curve and best round).
absl::Status Boost(BoosterHandle booster, const config::RankerParams& params, double rate, int threads,
                   DMatrixHandle dtrain, DMatrixHandle dvalid, const std::string& label, bool show_progress,
                   RankerTrainReport::Tried* tried) {
  RETURN_IF_ERROR(SetBoosterParams(booster, params, rate, threads));
  ProgressReporter progress(label, params.max_rounds(), "rounds");
  progress.set_enabled(show_progress);
  const char* names[1] = {"valid"};
  DMatrixHandle eval[1] = {dvalid};
  *tried = RankerTrainReport::Tried();
  tried->learning_rate = rate;
  tried->best_valid_map = -1;
  for (int round = 0; round < params.max_rounds(); ++round) {
    RETURN_IF_ERROR(Check(XGBoosterUpdateOneIter(booster, round, dtrain), "training round"));
    const char* text = nullptr;
    RETURN_IF_ERROR(Check(XGBoosterEvalOneIter(booster, round, eval, names, 1, &text), "evaluation"));
    ASSIGN_OR_RETURN(double map, ParseEval(text));
    tried->valid_map.push_back(map);
    tried->rounds = round + 1;
    if (map > tried->best_valid_map) {
      tried->best_valid_map = map;
      tried->best_round = round + 1;
    }
    progress.set_suffix(
        absl::StrFormat("valid MAP@12 %.5f, best %.5f at %d", map, tried->best_valid_map, tried->best_round));
    progress.Update(round + 1);
    if (round + 1 - tried->best_round >= params.early_stopping_rounds()) break;
  }
  progress.Finish(tried->rounds);
  return absl::OkStatus();
}

// The mean of a[g] - b[g] over the groups and its standard error.
void MeanChange(const std::vector<double>& a, const std::vector<double>& b, double* mean, double* se) {
  double sum = 0, sum2 = 0;
  for (size_t g = 0; g < a.size(); ++g) {
    const double d = a[g] - b[g];
    sum += d;
    sum2 += d * d;
  }
  const double n = static_cast<double>(a.size());
  *mean = n > 0 ? sum / n : 0.0;
  *se = n > 1 ? std::sqrt(std::max(0.0, (sum2 - sum * sum / n) / (n - 1)) / n) : 0.0;
}

}  // namespace

void RankingSet::Append(const RankingSet& other) {
  if (num_features == 0) num_features = other.num_features;
  features.insert(features.end(), other.features.begin(), other.features.end());
  labels.insert(labels.end(), other.labels.begin(), other.labels.end());
  group_sizes.insert(group_sizes.end(), other.group_sizes.begin(), other.group_sizes.end());
}

Ranker::~Ranker() {
  if (booster_ != nullptr) XGBoosterFree(booster_);
}

absl::StatusOr<std::unique_ptr<Ranker>> Ranker::Train(const config::RankerParams& params, int threads,
                                                      std::vector<RankingSet> train, RankingSet valid,
                                                      bool show_progress, RankerTrainReport* report,
                                                      RankingSet refit_set, std::unique_ptr<Ranker>* early_stopped) {
  if (train.empty()) return absl::InvalidArgumentError("no training sets");
  std::vector<double> rates(params.learning_rate_choices().begin(), params.learning_rate_choices().end());
  if (rates.empty()) rates.push_back(params.learning_rate());
  for (double rate : rates) {
    if (!(rate > 0)) return absl::InvalidArgumentError(absl::StrCat("ranker learning rate ", rate, " must be > 0"));
  }
  const int num_features = valid.num_features;
  for (const RankingSet& s : train) RETURN_IF_ERROR(CheckSet(s, num_features));
  RETURN_IF_ERROR(CheckSet(valid, num_features));
  const bool refit = refit_set.rows() > 0;
  if (refit) RETURN_IF_ERROR(CheckSet(refit_set, num_features));
  const auto start = std::chrono::steady_clock::now();
  *report = RankerTrainReport();
  Matrix dtrain, dvalid, dall;
  {
    std::vector<const RankingSet*> sets;
    for (const RankingSet& s : train) sets.push_back(&s);
    RETURN_IF_ERROR(MakeQuantileMatrix(sets, threads, nullptr, &dtrain));
    if (refit) {
      sets.push_back(&refit_set);
      RETURN_IF_ERROR(MakeQuantileMatrix(sets, threads, nullptr, &dall));
    }
    // The validation matrix is evaluated after every round: a plain DMatrix,
    // since XGBoost predicts on a quantised one by rebuilding its values.
    RETURN_IF_ERROR(Check(XGDMatrixCreateFromMat_omp(valid.features.data(), valid.rows(), valid.num_features,
                                                     std::numeric_limits<float>::quiet_NaN(), dvalid.out(), threads),
                          "DMatrix"));
    RETURN_IF_ERROR(Check(XGDMatrixSetFloatInfo(dvalid.get(), "label", valid.labels.data(), valid.rows()), "labels"));
    RETURN_IF_ERROR(Check(
        XGDMatrixSetUIntInfo(dvalid.get(), "group", valid.group_sizes.data(), valid.group_sizes.size()), "groups"));
  }
  // XGBoost must see every group of every batch (its iterator API joins
  // the batches' groups); a set seen as one long group would train slowly
  // and badly.
  {
    size_t groups = 0;
    for (const RankingSet& s : train) groups += s.group_sizes.size();
    for (auto [m, want] :
         {std::make_pair(dtrain.get(), groups), std::make_pair(dvalid.get(), valid.group_sizes.size())}) {
      bst_ulong len = 0;
      const unsigned* ptr = nullptr;
      RETURN_IF_ERROR(Check(XGDMatrixGetUIntInfo(m, "group_ptr", &len, &ptr), "group_ptr"));
      if (len != want + 1) {
        return absl::InternalError(absl::StrCat("xgboost sees ", len == 0 ? 0 : len - 1, " groups, expected ", want));
      }
    }
  }
  // XGBoost holds its own quantised copies now.
  std::vector<RankingSet>().swap(train);
  valid = RankingSet();
  refit_set = RankingSet();
  DMatrixHandle cache[2] = {dtrain.get(), dvalid.get()};
  // One booster per rate; the best so far is held in `kept` (its Ranker
  // frees it), a worse one is freed as soon as it loses.
  std::unique_ptr<Ranker> kept;
  std::vector<double> kept_ap;  // its AP@12 on each validation group
  for (double rate : rates) {
    BoosterHandle booster = nullptr;
    RETURN_IF_ERROR(Check(XGBoosterCreate(cache, 2, &booster), "booster"));
    std::unique_ptr<Ranker> training(new Ranker(booster, num_features, threads));
    RankerTrainReport::Tried tried;
    RETURN_IF_ERROR(Boost(booster, params, rate, threads, dtrain.get(), dvalid.get(),
                          rates.size() > 1 ? absl::StrCat("ranker at rate ", rate) : "ranker", show_progress, &tried));
    // A later rate replaces the kept ranker only if it orders the validation
    // groups better beyond their noise (ClearlyBetter on the per-group AP@12
    // differences); with one rate there is nothing to compare.
    bool better = kept == nullptr;
    std::vector<double> ap;
    if (rates.size() > 1) {
      ASSIGN_OR_RETURN(ap, GroupAveragePrecision(booster, tried.best_round, dvalid.get()));
      if (!better) {
        MeanChange(ap, kept_ap, &tried.map_gain, &tried.map_gain_se);
        better = ClearlyBetter(tried.map_gain, tried.map_gain_se);
      }
    }
    if (better) {
      kept = std::move(training);
      kept_ap = std::move(ap);
      report->kept = report->tried.size();
    }
    report->tried.push_back(std::move(tried));
  }
  BoosterHandle sliced = nullptr;
  RETURN_IF_ERROR(Check(XGBoosterSlice(kept->booster_, 0, report->Kept().best_round, 1, &sliced), "slice"));
  std::unique_ptr<Ranker> out(new Ranker(sliced, num_features, threads));
  RETURN_IF_ERROR(Check(XGBoosterSetParam(sliced, "nthread", absl::StrCat(threads).c_str()), "nthread"));
  RETURN_IF_ERROR(out->SetEvaluator(params.evaluator()));
  if (refit) {
    // The kept rate and round count, boosted again on every week: the
    // early-stopping week's groups, the nearest to the days served, teach
    // the served ranker too.
    kept.reset();
    const auto refit_start = std::chrono::steady_clock::now();
    const int rounds = report->Kept().best_round;
    DMatrixHandle all[1] = {dall.get()};
    BoosterHandle booster = nullptr;
    RETURN_IF_ERROR(Check(XGBoosterCreate(all, 1, &booster), "booster"));
    std::unique_ptr<Ranker> refitted(new Ranker(booster, num_features, threads));
    RETURN_IF_ERROR(SetBoosterParams(booster, params, report->Kept().learning_rate, threads));
    ProgressReporter progress("ranker refit on every week", rounds, "rounds");
    progress.set_enabled(show_progress);
    for (int round = 0; round < rounds; ++round) {
      RETURN_IF_ERROR(Check(XGBoosterUpdateOneIter(booster, round, dall.get()), "refit round"));
      progress.Update(round + 1);
    }
    progress.Finish(rounds);
    RETURN_IF_ERROR(refitted->SetEvaluator(params.evaluator()));
    report->refit_rounds = rounds;
    report->refit_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - refit_start).count();
    if (early_stopped != nullptr) *early_stopped = std::move(out);
    out = std::move(refitted);
  } else if (early_stopped != nullptr) {
    early_stopped->reset();
  }
  report->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

absl::StatusOr<std::unique_ptr<Ranker>> Ranker::Load(const std::string& path, int threads,
                                                     const std::string& evaluator) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  BoosterHandle booster = nullptr;
  RETURN_IF_ERROR(Check(XGBoosterCreate(nullptr, 0, &booster), "booster"));
  threads = std::max(1, threads);
  std::unique_ptr<Ranker> r(new Ranker(booster, 0, threads));
  absl::Status loaded = Check(XGBoosterLoadModelFromBuffer(booster, bytes.data(), bytes.size()), "load");
  if (!loaded.ok()) return absl::DataLossError(absl::StrCat("ranker model ", path, ": ", loaded.message()));
  bst_ulong features = 0;
  RETURN_IF_ERROR(Check(XGBoosterGetNumFeature(booster, &features), "feature count"));
  r->num_features_ = static_cast<int>(features);
  RETURN_IF_ERROR(Check(XGBoosterSetParam(booster, "nthread", absl::StrCat(threads).c_str()), "nthread"));
  RETURN_IF_ERROR(r->SetEvaluator(evaluator));
  return r;
}

absl::StatusOr<std::string> Ranker::ToJson() const {
  bst_ulong len = 0;
  const char* data = nullptr;
  RETURN_IF_ERROR(Check(XGBoosterSaveModelToBuffer(booster_, "{\"format\": \"json\"}", &len, &data), "save"));
  return std::string(data, len);
}

absl::Status Ranker::SetEvaluator(const std::string& evaluator) {
  if (evaluator != "" && evaluator != "native" && evaluator != "xgboost") {
    return absl::InvalidArgumentError(
        absl::StrCat("ranker evaluator '", evaluator, "': expected \"native\" or \"xgboost\""));
  }
  forest_.reset();
  evaluator_ = "xgboost";
  fallback_reason_.clear();
  if (evaluator == "xgboost") return absl::OkStatus();
  // The native forest, used only once it gives XGBoost's margins on rows
  // that exercise its splits (every tree, then a cascade's two ranges).
  auto built = [&]() -> absl::StatusOr<std::unique_ptr<Forest>> {
    ASSIGN_OR_RETURN(std::string json, ToJson());
    ASSIGN_OR_RETURN(Forest forest, Forest::FromXGBoostJson(json));
    auto f = std::make_unique<Forest>(std::move(forest));
    if (f->num_features() != num_features_) {
      return absl::InvalidArgumentError(
          absl::StrCat("it reads ", f->num_features(), " features, XGBoost ", num_features_));
    }
    if (f->num_trees() != rounds()) {
      return absl::UnimplementedError(absl::StrCat(f->num_trees(), " trees for ", rounds(), " rounds"));
    }
    constexpr int kProbe = 512;
    const std::vector<float> rows = f->ProbeRows(kProbe, 17);
    std::vector<float> want(kProbe), got(kProbe);
    const int split = f->num_trees() / 2;
    for (auto [b, e] : {std::make_pair(0, 0), std::make_pair(0, split), std::make_pair(split, 0)}) {
      RETURN_IF_ERROR(RunXGBoost(rows.data(), kProbe, num_features_, true, b, e, want.data()));
      RETURN_IF_ERROR(f->Margins(rows.data(), kProbe, num_features_, b, e, got.data(), 1));
      for (int i = 0; i < kProbe; ++i) {
        if (!(std::fabs(got[i] - want[i]) <= 1e-5f * std::max(1.0f, std::fabs(want[i])))) {
          return absl::InternalError(
              absl::StrFormat("on probe row %d (trees %d..%d) it gives %.9g, XGBoost %.9g", i, b, e, got[i], want[i]));
        }
      }
    }
    return f;
  }();
  if (!built.ok()) {
    fallback_reason_ = std::string(built.status().message());
    std::fprintf(stderr, "ranker: scoring with XGBoost, not the native evaluator: %s\n", fallback_reason_.c_str());
    return absl::OkStatus();
  }
  forest_ = std::move(*built);
  evaluator_ = "native";
  return absl::OkStatus();
}

absl::Status Ranker::Save(const std::string& path) const {
  bst_ulong len = 0;
  const char* data = nullptr;
  RETURN_IF_ERROR(Check(XGBoosterSaveModelToBuffer(booster_, "{\"format\": \"ubj\"}", &len, &data), "save"));
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  const bool ok = std::fwrite(data, 1, len, f) == len;
  if (std::fclose(f) != 0 || !ok) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot rename ", tmp, ": ", ec.message()));
  return absl::OkStatus();
}

int Ranker::rounds() const {
  int r = 0;
  return XGBoosterBoostedRounds(booster_, &r) == 0 ? r : 0;
}

absl::Status Ranker::Predict(const float* rows, int64_t n, int num_features, float* out, int trees) const {
  return Run(rows, n, num_features, /*margin=*/false, 0, trees, out);
}

absl::Status Ranker::PredictMargins(const float* rows, int64_t n, int num_features, int begin, int end,
                                    float* out) const {
  return Run(rows, n, num_features, /*margin=*/true, begin, end, out);
}

absl::Status Ranker::Run(const float* rows, int64_t n, int num_features, bool margin, int begin, int end,
                         float* out) const {
  if (forest_ == nullptr) return RunXGBoost(rows, n, num_features, margin, begin, end, out);
  // The forest checks the row width itself (it reads num_features_, as
  // SetEvaluator verified) and does nothing for no rows.
  RETURN_IF_ERROR(forest_->Margins(rows, n, num_features, begin, end, out, threads_));
  if (!margin) forest_->Transform(out, n);
  return absl::OkStatus();
}

absl::Status Ranker::RunXGBoost(const float* rows, int64_t n, int num_features, bool margin, int begin, int end,
                                float* out) const {
  if (n == 0) return absl::OkStatus();
  if (num_features != num_features_) {
    return absl::InvalidArgumentError(
        absl::StrCat("ranker expects ", num_features_, " features per row, got ", num_features));
  }
  const std::string array = ArrayInterface(rows, n, num_features);
  const std::string config = absl::StrFormat(
      "{\"type\": %d, \"training\": false, \"iteration_begin\": %d, \"iteration_end\": %d, "
      "\"strict_shape\": false, \"missing\": NaN, \"cache_id\": 0}",
      margin ? 1 : 0, std::max(0, begin), std::max(0, end));
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* result = nullptr;
  RETURN_IF_ERROR(Check(
      XGBoosterPredictFromDense(booster_, array.c_str(), config.c_str(), nullptr, &shape, &dim, &result), "predict"));
  std::memcpy(out, result, sizeof(float) * static_cast<size_t>(n));
  return absl::OkStatus();
}

absl::Status ScoreGroups(const Ranker& ranker, const float* rows, const std::vector<size_t>& offsets, int nf,
                         int first_trees, int keep, std::vector<float>* scores, CascadeScratch* s, int trees) {
  const size_t n = offsets.empty() ? 0 : offsets.back();
  scores->resize(n);
  if (n == 0) return absl::OkStatus();
  const int rounds = trees > 0 ? std::min(trees, ranker.rounds()) : ranker.rounds();
  if (first_trees <= 0 || keep <= 0 || first_trees >= rounds) {
    return ranker.PredictMargins(rows, static_cast<int64_t>(n), nf, 0, rounds, scores->data());
  }
  s->partial.resize(n);
  RETURN_IF_ERROR(ranker.PredictMargins(rows, static_cast<int64_t>(n), nf, 0, first_trees, s->partial.data()));
  // Each group's best `keep` rows by the partial margin (ties: the earlier row).
  s->kept.clear();
  for (size_t g = 0; g + 1 < offsets.size(); ++g) {
    const size_t b = offsets[g], e = offsets[g + 1];
    s->order.resize(e - b);
    std::iota(s->order.begin(), s->order.end(), static_cast<uint32_t>(b));
    const size_t m = std::min(e - b, static_cast<size_t>(keep));
    std::partial_sort(
        s->order.begin(), s->order.begin() + static_cast<std::ptrdiff_t>(m), s->order.end(),
        [&](uint32_t x, uint32_t y) { return s->partial[x] != s->partial[y] ? s->partial[x] > s->partial[y] : x < y; });
    s->kept.insert(s->kept.end(), s->order.begin(), s->order.begin() + static_cast<std::ptrdiff_t>(m));
  }
  s->gathered.resize(s->kept.size() * static_cast<size_t>(nf));
  for (size_t i = 0; i < s->kept.size(); ++i) {
    std::memcpy(s->gathered.data() + i * nf, rows + static_cast<size_t>(s->kept[i]) * nf, sizeof(float) * nf);
  }
  s->rest.resize(s->kept.size());
  RETURN_IF_ERROR(ranker.PredictMargins(s->gathered.data(), static_cast<int64_t>(s->kept.size()), nf, first_trees,
                                        rounds, s->rest.data()));
  for (size_t i = 0; i < n; ++i) (*scores)[i] = s->partial[i] - kDropped;
  for (size_t i = 0; i < s->kept.size(); ++i) (*scores)[s->kept[i]] = s->partial[s->kept[i]] + s->rest[i];
  return absl::OkStatus();
}

}  // namespace hmrec
