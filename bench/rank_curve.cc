// rank_curve: how the ranker's quality and cost grow with candidates per
// customer and trees, on a trained bundle and its holdout. For each
// candidate scale (every source's limit times it) and tree count: holdout
// MAP@12, candidates per customer, and the microseconds per customer of
// candidates + features and of XGBoost's prediction, on one thread.
//
//   build/bench/hmrec_rank_curve --data SPLIT/train --holdout SPLIT/truth.csv --bundle B/<version> \
//       [--scales 1,0.7,0.5,0.35] [--trees 25,50,100,200,0] [--cascades 5:16,10:20@80]
//       [--max_customers 20000] [--jsonl OUT] [--ranking_overrides "style_buyers_candidates: -1"]
//
// A cascade FIRST:KEEP scores every candidate with the first trees and each
// customer's KEEP best with the rest (ranker/ranker.h ScoreGroups);
// '@TREES' stops after that many rounds: a model trained with max_rounds
// TREES has exactly those first trees (the boosting is sequential), so it
// shows what fewer rounds would serve.
// --ranking_overrides replaces fields of the bundle's ranking config for the
// candidates (e.g. one source off: its share of the cost; the ranker stays
// the bundle's). Prints a Markdown table (docs/PERFORMANCE.md "Ranking cost").

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/runtime.h"
#include "common/text_proto.h"
#include "data/dataset_cache.h"
#include "glog/logging.h"
#include "model/tower_runner.h"
#include "trainer/ranking_study.h"

ABSL_FLAG(std::string, data, "", "Training data (the bundle's)");
ABSL_FLAG(std::string, holdout, "", "Held-out transactions (truth.csv)");
ABSL_FLAG(std::string, bundle, "", "A bundle with a ranker");
ABSL_FLAG(std::string, scales, "1,0.7,0.5,0.35", "Candidate scales");
ABSL_FLAG(std::string, trees, "25,50,100,200,0", "Tree counts (0 = all)");
ABSL_FLAG(std::string, cascades, "",
          "Cascades FIRST:KEEP[@TREES] (the first trees on every candidate, the rest on the KEEP best; "
          "@TREES: stop after that many rounds)");
ABSL_FLAG(std::string, active_weeks, "",
          "two_tower_active_weeks values to compare (empty: the bundle's; negative: every article)");
ABSL_FLAG(int64_t, max_customers, 20000, "Held-out customers scored (0 = all)");
ABSL_FLAG(std::string, ranking_overrides, "",
          "RankingConfig fields (text proto) that replace the bundle's for the candidates");
ABSL_FLAG(std::string, jsonl, "", "Also write the points as JSON lines here");

namespace {
int Fail(const absl::Status& s) {
  std::fprintf(stderr, "rank_curve: %s\n", std::string(s.message()).c_str());
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  hmrec::PrepareProcess(argv);
  hmrec::ConfigureAllocator();
  absl::ParseCommandLine(argc, argv);
  google::InitGoogleLogging(argv[0]);
  hmrec::ConfigureThreads(1);
  std::vector<double> scales;
  for (absl::string_view v : absl::StrSplit(absl::GetFlag(FLAGS_scales), ',')) {
    double d = 0;
    if (!absl::SimpleAtod(v, &d)) return Fail(absl::InvalidArgumentError("--scales"));
    scales.push_back(d);
  }
  std::vector<int> trees;
  for (absl::string_view v : absl::StrSplit(absl::GetFlag(FLAGS_trees), ',')) {
    int t = 0;
    if (!absl::SimpleAtoi(v, &t)) return Fail(absl::InvalidArgumentError("--trees"));
    trees.push_back(t);
  }
  std::vector<hmrec::CurveCascade> cascades;
  for (absl::string_view v : absl::StrSplit(absl::GetFlag(FLAGS_cascades), ',', absl::SkipEmpty())) {
    auto c = hmrec::ParseCurveCascade(v);
    if (!c.ok()) return Fail(c.status());
    cascades.push_back(*c);
  }
  std::vector<int> active_weeks;
  for (absl::string_view v : absl::StrSplit(absl::GetFlag(FLAGS_active_weeks), ',', absl::SkipEmpty())) {
    int w = 0;
    if (!absl::SimpleAtoi(v, &w)) return Fail(absl::InvalidArgumentError("--active_weeks"));
    active_weeks.push_back(w);
  }
  hmrec::config::RankingConfig overrides;
  if (absl::Status s = hmrec::ParseTextProto(absl::GetFlag(FLAGS_ranking_overrides), "--ranking_overrides", &overrides);
      !s.ok()) {
    return Fail(s);
  }
  hmrec::LoadOptions lo;
  lo.show_progress = false;
  auto ds = hmrec::LoadDataset(absl::GetFlag(FLAGS_data), lo);
  if (!ds.ok()) return Fail(ds.status());
  int64_t unknown = 0;
  auto holdout = hmrec::ReadHoldout(absl::GetFlag(FLAGS_holdout), **ds, &unknown);
  if (!holdout.ok()) return Fail(holdout.status());
  auto points = hmrec::RankingCurve(**ds, *holdout, absl::GetFlag(FLAGS_bundle), scales, trees, cascades, active_weeks,
                                    absl::GetFlag(FLAGS_max_customers), overrides);
  if (!points.ok()) return Fail(points.status());
  std::printf(
      "| two-tower active weeks (articles) | candidate scale | candidates a customer | trees | holdout MAP@12 | "
      "retrieval + candidates + features µs | XGBoost µs | total µs a customer (1 thread) |\n"
      "| --- | --- | --- | --- | --- | --- | --- | --- |\n");
  auto trees_text = [](const hmrec::RankingCurvePoint& p) {
    if (p.cascade_keep > 0) {
      return absl::StrCat("cascade ", hmrec::CurveCascadeText(p.cascade_first_trees, p.cascade_keep, p.trees));
    }
    return p.trees == 0 ? std::string("all") : std::to_string(p.trees);
  };
  std::ofstream jsonl;
  if (!absl::GetFlag(FLAGS_jsonl).empty()) jsonl.open(absl::GetFlag(FLAGS_jsonl));
  for (const hmrec::RankingCurvePoint& p : *points) {
    std::printf("| %s (%lld) | %.2f | %.1f | %s | %.5f | %.1f | %.1f | %.1f |\n",
                p.active_weeks < 0 ? "all" : std::to_string(p.active_weeks).c_str(),
                static_cast<long long>(p.searched_articles), p.candidate_scale, p.candidates_per_customer,
                trees_text(p).c_str(), p.map_at_12, p.candidates_us, p.predict_us, p.candidates_us + p.predict_us);
    if (jsonl.is_open()) {
      jsonl << "{\"active_weeks\": " << p.active_weeks << ", \"searched_articles\": " << p.searched_articles
            << ", \"scale\": " << p.candidate_scale << ", \"candidates\": " << p.candidates_per_customer
            << ", \"trees\": " << p.trees << ", \"cascade\": \""
            << hmrec::CurveCascadeText(p.cascade_first_trees, p.cascade_keep, p.trees) << "\", \"map\": " << p.map_at_12
            << ", \"candidates_us\": " << p.candidates_us << ", \"predict_us\": " << p.predict_us << "}\n";
    }
  }
  return 0;
}
