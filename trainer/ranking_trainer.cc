#include "trainer/ranking_trainer.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bundle/bundle.h"
#include "candidates/ranking_config.h"
#include "candidates/tables.h"
#include "common/runtime.h"
#include "common/status_macros.h"
#include "data/dates.h"
#include "data/history.h"
#include "trainer/ranking_passes.h"
#include "trainer/retriever.h"

namespace hmrec {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double PeakRssMib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  }
  return 0;
}

}  // namespace

std::string RankingReport::Json() const {
  std::string s = "{\"weeks\": [";
  for (size_t i = 0; i < weeks.size(); ++i) {
    const RankingWeekStats& w = weeks[i];
    absl::StrAppendFormat(&s,
                          "%s{\"first_day\": \"%s\", \"buyers\": %d, \"customers\": %d, \"groups\": %d, \"rows\": %d, "
                          "\"positives\": %d, \"candidates_per_customer\": %.2f, \"recall\": %.5f}",
                          i > 0 ? ", " : "", w.first_day, w.buyers, w.customers, w.groups, w.rows, w.positives,
                          w.candidates_per_customer, w.recall);
  }
  absl::StrAppendFormat(&s,
                        "], \"ranker\": {\"learning_rate\": %g, \"rounds\": %d, \"best_round\": %d, "
                        "\"best_valid_map_at_12\": %.6f, \"seconds\": %.1f, \"tried\": [",
                        ranker.Kept().learning_rate, ranker.Kept().rounds, ranker.Kept().best_round,
                        ranker.Kept().best_valid_map, ranker.seconds);
  for (size_t i = 0; i < ranker.tried.size(); ++i) {
    const RankerTrainReport::Tried& t = ranker.tried[i];
    absl::StrAppendFormat(
        &s,
        "%s{\"learning_rate\": %g, \"rounds\": %d, \"best_round\": %d, \"best_valid_map_at_12\": %.6f, "
        "\"ap_gain_over_kept\": %.6f, \"ap_gain_se\": %.6f, \"kept\": %s}",
        i > 0 ? ", " : "", t.learning_rate, t.rounds, t.best_round, t.best_valid_map, t.map_gain, t.map_gain_se,
        i == ranker.kept ? "true" : "false");
  }
  absl::StrAppendFormat(&s, "], \"refit_rounds\": %d, \"refit_seconds\": %.1f}", ranker.refit_rounds,
                        ranker.refit_seconds);
  absl::StrAppendFormat(&s, ", \"training_rows\": %d, \"training_matrix_mib\": %.1f", training_rows,
                        training_matrix_mib);
  if (evaluated) {
    absl::StrAppendFormat(&s,
                          ", \"holdout\": {\"customers\": %d, \"candidates_per_customer\": %.2f, \"recall_merged\": "
                          "%.5f, \"map_retrieval\": %.6f, \"map_heuristic\": %.6f, \"map_ranked\": %.6f, "
                          "\"recall12_ranked\": %.6f",
                          holdout.customers, holdout.candidates_per_customer, holdout.recall_merged,
                          holdout.map_retrieval, holdout.map_heuristic, holdout.map_ranked, holdout.recall12_ranked);
    for (int src = 0; src < kNumSources; ++src) {
      absl::StrAppendFormat(&s, ", \"recall_%s\": %.5f", SourceName(src), holdout.recall_source[src]);
    }
    s += "}";
  }
  absl::StrAppendFormat(&s,
                        ", \"seconds\": {\"retrieval_tower\": %.1f, \"candidates_features\": %.1f, \"ranker\": %.1f, "
                        "\"evaluation\": %.1f, \"total\": %.1f}, \"peak_rss_mib\": %.0f}",
                        seconds_retrieval_tower, seconds_candidates_features, seconds_ranker, seconds_evaluation,
                        seconds_total, peak_rss_mib);
  return s;
}

absl::StatusOr<RankingReport> TrainRanking(const config::TrainerConfig& cfg, const Dataset& ds, const Holdout* holdout,
                                           const std::string& bundle_dir, const RankingOptions& options) {
  const auto start = Clock::now();
  RankingReport report;
  config::RankingConfig rc = WithRankingDefaults(cfg.ranking());
  // The label weeks' tower is trained as long as the bundle's own, so that
  // the two-tower source's ranks and scores the ranker learns from look like
  // those it is served (a 1-epoch tower under a 4-epoch one taught the
  // ranker to trust the source less than it should: docs/QUALITY.md).
  if (rc.retrieval_epochs() == 0) rc.set_retrieval_epochs(cfg.epochs());
  const int threads = cfg.threads() > 0 ? cfg.threads() : omp_get_num_procs();
  const int weeks = rc.label_weeks();
  if (weeks < 2) return absl::InvalidArgumentError("ranking.label_weeks must be at least 2 (the last one validates)");
  const int32_t as_of = ds.last_day + 1;
  const int32_t first_label_day = as_of - 7 * weeks;
  if (first_label_day - ds.first_day < 28) {
    return absl::FailedPreconditionError(absl::StrCat("ranking needs at least 4 weeks of data before its ", weeks,
                                                      " label weeks; the data spans ", as_of - ds.first_day, " days"));
  }
  const fs::path work = fs::path(options.work_dir) / "ranking";
  std::error_code ec;
  fs::create_directories(work, ec);
  const CustomerHistory history = CustomerHistory::Build(ds.transactions, ds.customers.size());

  // The tower that proposes two-tower candidates in the label weeks: trained
  // only on the days before them.
  auto t0 = Clock::now();
  std::unique_ptr<TwoTowerRetriever> label_retriever;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<Dataset> before, DatasetBefore(ds, first_label_day));
    config::TrainerConfig tcfg = cfg;
    tcfg.clear_ranking();
    tcfg.set_epochs(rc.retrieval_epochs());
    tcfg.set_evaluate_every_epoch(false);
    TrainerOptions to;
    to.work_dir = (work / "retrieval_tower").string();
    to.show_progress = options.show_progress;
    fs::remove_all(to.work_dir, ec);
    if (options.show_progress) {
      std::fprintf(stderr, "ranking: the label weeks' two-tower source, trained on the days before %s\n",
                   FormatDate(first_label_day).c_str());
    }
    ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer, Trainer::Create(tcfg, *before, nullptr, to));
    RETURN_IF_ERROR(trainer->Train().status());
    const fs::path bundles = work / "retrieval_bundle";
    fs::remove_all(bundles, ec);
    ASSIGN_OR_RETURN(std::string dir, trainer->Export(bundles.string(), "label-weeks"));
    ASSIGN_OR_RETURN(label_retriever, TwoTowerRetriever::Load(dir, ds, threads));
  }
  ReleaseFreeHeap();  // the label weeks' tower's training state
  report.seconds_retrieval_tower = Since(t0);

  // Label weeks: candidates, features, labels.
  t0 = Clock::now();
  CandidateBuilder builder(ds, history, rc, threads);
  std::vector<RankingSet> train;
  RankingSet valid, refit;
  for (int w = 0; w < weeks; ++w) {
    const int32_t day = first_label_day + 7 * w;
    ASSIGN_OR_RETURN(const RankingTables tables, BuildRankingTables(ds, history, day, rc, label_retriever.get()));
    RankingWeekStats stats;
    const bool last = w + 1 == weeks;
    ASSIGN_OR_RETURN(RankingSet set, LabelWeek(ds, history, tables, label_retriever.get(), &builder, rc,
                                               rc.ranker().seed(), !last, options.show_progress, &stats));
    report.weeks.push_back(stats);
    report.training_rows += static_cast<int64_t>(set.rows());
    report.training_matrix_mib += static_cast<double>(set.features.size() * sizeof(float)) / (1 << 20);
    if (last && rc.refit() > 0) {
      // The same week as training groups, for the refit on every week.
      RankingWeekStats refit_stats;
      ASSIGN_OR_RETURN(refit, LabelWeek(ds, history, tables, label_retriever.get(), &builder, rc, rc.ranker().seed(),
                                        true, options.show_progress, &refit_stats));
      report.training_rows += static_cast<int64_t>(refit.rows());
      report.training_matrix_mib += static_cast<double>(refit.features.size() * sizeof(float)) / (1 << 20);
    }
    if (last) {
      valid = std::move(set);
    } else {
      train.push_back(std::move(set));
    }
  }
  label_retriever.reset();
  ReleaseFreeHeap();  // before the ranker's matrices, the largest allocations of the run
  report.seconds_candidates_features = Since(t0);

  // The ranker.
  t0 = Clock::now();
  const int ranker_threads = rc.ranker().threads() > 0 ? rc.ranker().threads() : threads;
  ASSIGN_OR_RETURN(std::unique_ptr<Ranker> ranker,
                   Ranker::Train(rc.ranker(), ranker_threads, std::move(train), std::move(valid), options.show_progress,
                                 &report.ranker, std::move(refit)));
  report.seconds_ranker = Since(t0);
  // The manifest records the rate the kept ranker was trained at.
  rc.mutable_ranker()->set_learning_rate(report.ranker.Kept().learning_rate);

  // Into the bundle: the ranker, the tables as of the day after the data,
  // the schema and the filled config.
  const fs::path dir(bundle_dir);
  RETURN_IF_ERROR(ranker->Save((dir / kRankerFile).string()));
  ASSIGN_OR_RETURN(std::unique_ptr<TwoTowerRetriever> retriever, TwoTowerRetriever::Load(bundle_dir, ds, threads));
  ASSIGN_OR_RETURN(const RankingTables tables, BuildRankingTables(ds, history, as_of, rc, retriever.get()));
  RETURN_IF_ERROR(tables.Save((dir / kRankingTablesFile).string()));

  if (holdout != nullptr && !holdout->customers.empty()) {
    t0 = Clock::now();
    ASSIGN_OR_RETURN(report.holdout, Evaluate(ds, history, tables, retriever.get(), &builder, *ranker, rc, *holdout,
                                              options.show_progress));
    report.evaluated = true;
    report.seconds_evaluation = Since(t0);
  }

  ASSIGN_OR_RETURN(config::BundleManifest manifest, ReadManifest(bundle_dir));
  *manifest.mutable_trainer()->mutable_ranking() = rc;
  manifest.set_ranking_schema(kRankingSchema);
  auto metric = [&](const std::string& name, double value) {
    config::OfflineMetric* m = manifest.add_metrics();
    m->set_name(name);
    m->set_value(value);
  };
  metric("ranker_rounds", report.ranker.Kept().best_round);
  metric("ranker_valid_map_at_12", report.ranker.Kept().best_valid_map);
  if (report.evaluated) {
    metric("ranked_holdout_map_at_12", report.holdout.map_ranked);
    metric("heuristic_holdout_map_at_12", report.holdout.map_heuristic);
    metric("candidates_holdout_recall", report.holdout.recall_merged);
  }
  RETURN_IF_ERROR(RecordBundleFile(bundle_dir, kRankerFile, &manifest));
  RETURN_IF_ERROR(RecordBundleFile(bundle_dir, kRankingTablesFile, &manifest));
  RETURN_IF_ERROR(WriteManifest(bundle_dir, manifest));

  report.seconds_total = Since(start);
  report.peak_rss_mib = PeakRssMib();
  {
    std::ofstream json(work / "ranking_report.json");
    json << report.Json() << "\n";
    // Every rate's curve; `kept` marks the served ranker's.
    std::ofstream curve(work / "ranker_curve.tsv");
    curve << "learning_rate\tkept\tround\tvalid_map_at_12\n";
    for (size_t i = 0; i < report.ranker.tried.size(); ++i) {
      const RankerTrainReport::Tried& t = report.ranker.tried[i];
      for (size_t r = 0; r < t.valid_map.size(); ++r) {
        curve << t.learning_rate << "\t" << (i == report.ranker.kept ? 1 : 0) << "\t" << r + 1 << "\t" << t.valid_map[r]
              << "\n";
      }
    }
  }
  if (!options.plot_script.empty()) {
    const std::string cmd =
        absl::StrCat(options.python, " '", options.plot_script, "' '", (work / "ranker_curve.tsv").string(), "' '",
                     (work / "ranker_curve.png").string(), "' > /dev/null 2>&1");
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "ranking: could not plot the ranker's curve\n");
  }
  return report;
}

}  // namespace hmrec