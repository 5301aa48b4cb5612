// ranking_study: what each candidate source and feature group is worth, and
// how much of the next purchases each source reaches at each budget, on a
// trained bundle and its holdout (docs/QUALITY.md "Ablations" and
// "Candidate budget").
//
//   build/bench/hmrec_ranking_study ablations --data SPLIT/train --holdout SPLIT/truth.csv \
//       --bundle B/<version> --label_bundle WORK/ranking/retrieval_bundle/label-weeks \
//       [--variants all,-taste,...] [--quotas "name=q0,q1,...,q9;..."] [--mask "name=f1,f2;..."] [--jsonl OUT]
//       [--ranking_overrides "neighbour_clusters: 256"]
//   build/bench/hmrec_ranking_study budget --data SPLIT/train --holdout SPLIT/truth.csv \
//       --bundle B/<version> [--ns 1,2,4,...] [--scales 0.25,...] [--step 2] [--jsonl OUT]
//
// ablations: the ranker retrained on the label weeks without each source /
// with each feature group missing, the holdout scored (the "all" row
// reproduces the trainer's); --quotas adds variants with other per-source
// quotas (source order: repurchase, two_tower, copurchase, same_product,
// segment_popular, trending, taste, new_arrival, neighbours, style_buyers) and --mask variants with the
// named feature columns missing. budget: recall@N per
// source, merged recall by candidates per customer, and a greedy mix.
// Prints Markdown tables.

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/runtime.h"
#include "common/text_proto.h"
#include "data/dataset_cache.h"
#include "features/ranking_features.h"
#include "glog/logging.h"
#include "model/tower_runner.h"
#include "trainer/ranking_study.h"

ABSL_FLAG(std::string, data, "", "Training data (the bundle's)");
ABSL_FLAG(std::string, holdout, "", "Held-out transactions (truth.csv)");
ABSL_FLAG(std::string, bundle, "", "A bundle with a ranker");
ABSL_FLAG(std::string, label_bundle, "",
          "ablations: the trainer's label-weeks tower (WORK/ranking/retrieval_bundle/label-weeks)");
ABSL_FLAG(std::string, variants, "", "ablations: the variants to run (default: all of them)");
ABSL_FLAG(std::string, quotas, "", "ablations: extra variants NAME=q0,...,q9 separated by ';'");
ABSL_FLAG(std::string, mask, "", "ablations: extra variants NAME=feature,feature,... (set missing) separated by ';'");
ABSL_FLAG(std::string, ranking_overrides, "",
          "ablations: RankingConfig fields (text proto) that replace the bundle's for every variant");
ABSL_FLAG(int, ranker_seeds, 1,
          "ablations: rankers trained per variant (seeds from the bundle's on), figures averaged");
ABSL_FLAG(std::string, ns, "1,2,4,6,8,12,16,24,32,48,64", "budget: candidates a source proposes");
ABSL_FLAG(std::string, scales, "0.25,0.5,0.75,1,1.5,2,3", "budget: every source's quota times these");
ABSL_FLAG(int, step, 2, "budget: candidates a greedy step adds to one source");
ABSL_FLAG(int64_t, max_customers, 0, "budget: held-out customers (0 = all)");
ABSL_FLAG(int, threads, 2, "Threads");
ABSL_FLAG(std::string, jsonl, "", "Also write the rows as JSON lines here");
ABSL_FLAG(bool, quiet, false, "No progress lines");

namespace {
int Fail(const absl::Status& s) {
  std::fprintf(stderr, "ranking_study: %s\n", std::string(s.message()).c_str());
  return 1;
}

template <typename T>
absl::Status ParseList(const std::string& flag, const std::string& text, std::vector<T>* out) {
  for (absl::string_view v : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    T x{};
    bool ok = false;
    if constexpr (std::is_same_v<T, double>) {
      ok = absl::SimpleAtod(v, &x);
    } else {
      ok = absl::SimpleAtoi(v, &x);
    }
    if (!ok) return absl::InvalidArgumentError(absl::StrCat("--", flag, ": '", v, "' is not a number"));
    out->push_back(x);
  }
  if (out->empty()) return absl::InvalidArgumentError(absl::StrCat("--", flag, " is empty"));
  return absl::OkStatus();
}

int Ablations(const hmrec::Dataset& ds, const hmrec::Holdout& holdout) {
  std::vector<hmrec::RankingVariant> all = hmrec::StandardAblations();
  for (absl::string_view spec : absl::StrSplit(absl::GetFlag(FLAGS_quotas), ';', absl::SkipEmpty())) {
    std::vector<absl::string_view> nq = absl::StrSplit(spec, '=');
    std::vector<int> q;
    if (nq.size() != 2 || !ParseList("quotas", std::string(nq[1]), &q).ok() || q.size() != hmrec::kNumSources) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("--quotas: '", spec, "' is not NAME=q0,...,q", hmrec::kNumSources - 1)));
    }
    hmrec::RankingVariant v{std::string(nq[0]), {}};
    for (int s = 0; s < hmrec::kNumSources; ++s) v.trim.quota[s] = q[static_cast<size_t>(s)];
    all.push_back(v);
  }
  const std::vector<std::string>& names = hmrec::RankingFeatureNames();
  for (absl::string_view spec : absl::StrSplit(absl::GetFlag(FLAGS_mask), ';', absl::SkipEmpty())) {
    std::vector<absl::string_view> nf = absl::StrSplit(spec, '=');
    if (nf.size() != 2) return Fail(absl::InvalidArgumentError(absl::StrCat("--mask: '", spec, "' is not NAME=f,...")));
    hmrec::RankingVariant v{std::string(nf[0]), {}};
    for (absl::string_view f : absl::StrSplit(nf[1], ',', absl::SkipEmpty())) {
      auto it = std::find(names.begin(), names.end(), f);
      if (it == names.end()) return Fail(absl::InvalidArgumentError(absl::StrCat("--mask: no feature '", f, "'")));
      v.trim.masked_features.push_back(static_cast<int>(it - names.begin()));
    }
    all.push_back(v);
  }
  std::vector<hmrec::RankingVariant> run;
  if (absl::GetFlag(FLAGS_variants).empty()) {
    run = all;
  } else {
    for (absl::string_view name : absl::StrSplit(absl::GetFlag(FLAGS_variants), ',', absl::SkipEmpty())) {
      auto it = std::find_if(all.begin(), all.end(), [&](const hmrec::RankingVariant& v) { return v.name == name; });
      if (it == all.end()) {
        std::vector<std::string> names;
        for (const auto& v : all) names.push_back(v.name);
        return Fail(absl::InvalidArgumentError(
            absl::StrCat("--variants: no variant '", name, "'; there are: ", absl::StrJoin(names, ", "))));
      }
      run.push_back(*it);
    }
  }
  if (absl::GetFlag(FLAGS_label_bundle).empty()) return Fail(absl::InvalidArgumentError("--label_bundle is required"));
  hmrec::config::RankingConfig overrides;
  if (absl::Status s = hmrec::ParseTextProto(absl::GetFlag(FLAGS_ranking_overrides), "--ranking_overrides", &overrides);
      !s.ok()) {
    return Fail(s);
  }
  auto results = hmrec::RankingVariants(ds, holdout, absl::GetFlag(FLAGS_bundle), absl::GetFlag(FLAGS_label_bundle),
                                        run, absl::GetFlag(FLAGS_ranker_seeds), absl::GetFlag(FLAGS_threads),
                                        !absl::GetFlag(FLAGS_quiet), overrides);
  if (!results.ok()) return Fail(results.status());
  std::printf(
      "| variant | candidates a customer | merged recall | ranked MAP@12 | Δ vs all | ranker rounds @ rate | seconds "
      "|\n"
      "| --- | --- | --- | --- | --- | --- | --- |\n");
  double base = 0;
  for (const auto& r : *results) {
    if (r.name == "all") base = r.holdout.map_ranked;
  }
  std::ofstream jsonl;
  if (!absl::GetFlag(FLAGS_jsonl).empty()) jsonl.open(absl::GetFlag(FLAGS_jsonl));
  for (const auto& r : *results) {
    const hmrec::RankerTrainReport::Tried& kept = r.ranker.Kept();
    std::printf("| %s | %.1f | %.4f | %.5f | %s | %d @ %g | %.0f |\n", r.name.c_str(),
                r.holdout.candidates_per_customer, r.holdout.recall_merged, r.holdout.map_ranked,
                base > 0 ? absl::StrFormat("%+.5f", r.holdout.map_ranked - base).c_str() : "-", kept.best_round,
                kept.learning_rate, r.seconds);
    if (!r.early_stopped_map_by_seed.empty()) {
      double before = 0;
      for (double m : r.early_stopped_map_by_seed) before += m;
      before /= static_cast<double>(r.early_stopped_map_by_seed.size());
      std::printf("| %s, without the refit | - | - | %.5f | %s | - | - |\n", r.name.c_str(), before,
                  absl::StrFormat("%+.5f", before - r.holdout.map_ranked).c_str());
    }
    if (jsonl.is_open()) {
      jsonl << "{\"variant\": \"" << r.name << "\", \"candidates\": " << r.holdout.candidates_per_customer
            << ", \"recall_merged\": " << r.holdout.recall_merged << ", \"map_ranked\": " << r.holdout.map_ranked
            << ", \"recall12_ranked\": " << r.holdout.recall12_ranked << ", \"rounds\": " << kept.best_round
            << ", \"learning_rate\": " << kept.learning_rate << ", \"map_by_seed\": ["
            << absl::StrJoin(r.map_by_seed, ", ") << "], \"early_stopped_map_by_seed\": ["
            << absl::StrJoin(r.early_stopped_map_by_seed, ", ") << "], \"refit_rounds\": " << r.ranker.refit_rounds
            << "}\n";
    }
  }
  return 0;
}

int Budget(const hmrec::Dataset& ds, const hmrec::Holdout& holdout) {
  std::vector<int> ns;
  std::vector<double> scales;
  if (absl::Status s = ParseList("ns", absl::GetFlag(FLAGS_ns), &ns); !s.ok()) return Fail(s);
  if (absl::Status s = ParseList("scales", absl::GetFlag(FLAGS_scales), &scales); !s.ok()) return Fail(s);
  auto rep = hmrec::CandidateBudget(ds, holdout, absl::GetFlag(FLAGS_bundle), ns, scales, absl::GetFlag(FLAGS_step),
                                    absl::GetFlag(FLAGS_max_customers), absl::GetFlag(FLAGS_threads),
                                    !absl::GetFlag(FLAGS_quiet));
  if (!rep.ok()) return Fail(rep.status());
  std::ofstream jsonl;
  if (!absl::GetFlag(FLAGS_jsonl).empty()) jsonl.open(absl::GetFlag(FLAGS_jsonl));
  std::printf(
      "Recall of a source's first N (in brackets: of what no other source reaches at the bundle's quotas), "
      "%lld customers\n\n| N |",
      static_cast<long long>(rep->customers));
  for (int s = 0; s < hmrec::kNumSources; ++s) std::printf(" %s |", hmrec::SourceName(s));
  std::printf("\n| --- |");
  for (int s = 0; s < hmrec::kNumSources; ++s) std::printf(" --- |");
  std::printf("\n");
  for (size_t k = 0; k < rep->ns.size(); ++k) {
    std::printf("| %d |", rep->ns[k]);
    for (int s = 0; s < hmrec::kNumSources; ++s) {
      std::printf(" %.4f (%.4f) |", rep->recall_at[k][s], rep->unique_at[k][s]);
      if (jsonl.is_open()) {
        jsonl << "{\"kind\": \"source\", \"source\": \"" << hmrec::SourceName(s) << "\", \"n\": " << rep->ns[k]
              << ", \"recall\": " << rep->recall_at[k][s] << ", \"unique\": " << rep->unique_at[k][s] << "}\n";
      }
    }
    std::printf("\n");
  }
  std::printf("\nMerged, every quota scaled\n\n| scale | candidates a customer | recall |\n| --- | --- | --- |\n");
  for (const auto& m : rep->merged) {
    std::printf("| %.2f | %.1f | %.4f |\n", m.scale, m.candidates, m.recall);
    if (jsonl.is_open()) {
      jsonl << "{\"kind\": \"merged\", \"scale\": " << m.scale << ", \"candidates\": " << m.candidates
            << ", \"recall\": " << m.recall << "}\n";
    }
  }
  auto quotas = [](const std::array<int, hmrec::kNumSources>& q) { return absl::StrJoin(q, ","); };
  std::printf("\nThe bundle's quotas (%s): %.1f candidates, recall %.4f\n", quotas(rep->bundle_quota).c_str(),
              rep->bundle_candidates, rep->bundle_recall);
  if (!rep->greedy.empty()) {
    const auto& g = rep->greedy.back();
    std::printf("Greedy mix at that budget (%s): %.1f candidates, recall %.4f\n", quotas(g.quota).c_str(), g.candidates,
                g.recall);
  }
  if (jsonl.is_open()) {
    for (const auto& g : rep->greedy) {
      jsonl << "{\"kind\": \"greedy\", \"quota\": [" << quotas(g.quota) << "], \"candidates\": " << g.candidates
            << ", \"recall\": " << g.recall << "}\n";
    }
    jsonl << "{\"kind\": \"bundle\", \"quota\": [" << quotas(rep->bundle_quota)
          << "], \"candidates\": " << rep->bundle_candidates << ", \"recall\": " << rep->bundle_recall << "}\n";
  }
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  hmrec::PrepareProcess(argv);
  hmrec::ConfigureAllocator();
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  google::InitGoogleLogging(argv[0]);
  hmrec::ConfigureThreads(absl::GetFlag(FLAGS_threads));
  if (args.size() != 2 || (std::string(args[1]) != "ablations" && std::string(args[1]) != "budget")) {
    std::fprintf(stderr, "usage: hmrec_ranking_study ablations|budget --data D --holdout T --bundle B ...\n");
    return 2;
  }
  hmrec::LoadOptions lo;
  lo.show_progress = false;
  auto ds = hmrec::LoadDataset(absl::GetFlag(FLAGS_data), lo);
  if (!ds.ok()) return Fail(ds.status());
  int64_t unknown = 0;
  auto holdout = hmrec::ReadHoldout(absl::GetFlag(FLAGS_holdout), **ds, &unknown);
  if (!holdout.ok()) return Fail(holdout.status());
  return std::string(args[1]) == "ablations" ? Ablations(**ds, *holdout) : Budget(**ds, *holdout);
}
