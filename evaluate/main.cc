// evaluate: held-out splits, Kaggle MAP@12 scoring, and baseline submissions.
//
//   hmrec_evaluate split    --data DIR --holdout_days 7 --out SPLIT [--extra_transactions F,...] [--erasures F]
//   hmrec_evaluate baseline --data SPLIT/train --kind popular|recent --out sub.csv
//   hmrec_evaluate score    --truth SPLIT/truth.csv --submission sub.csv
//   hmrec_evaluate similar  --data SPLIT/train --truth SPLIT/truth.csv --bundle B [--k 12] [--within_days 7]
//       SimilarArticles offline: what customers bought within days of their
//       last article, among the articles similar to it (similar/similar_eval.h)
//   hmrec_evaluate merge    (--customers FILE | --data DIR) --out submission.csv PART...
//       joins the parts of hmrec_client --all-customers --shard I/N runs
//                           [--customers SPLIT/train/customers.csv] [--json m.json]

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "bundle/bundle.h"
#include "candidates/tables.h"
#include "data/customer_list.h"
#include "data/dataset_cache.h"
#include "data/dates.h"
#include "data/ids.h"
#include "evaluate/arms.h"
#include "evaluate/baselines.h"
#include "evaluate/merge.h"
#include "evaluate/score.h"
#include "evaluate/split.h"
#include "glog/logging.h"
#include "similar/similar_eval.h"

ABSL_FLAG(std::string, data, "", "Directory with the Kaggle CSVs (split, baseline)");
ABSL_FLAG(int, holdout_days, 7, "Days held out at the end (split)");
ABSL_FLAG(std::vector<std::string>, extra_transactions, {},
          "split: more transaction files (hmrec_events export): their held-out days join truth.csv, the rest go to "
          "SPLIT/train/extra_transactions.csv");
ABSL_FLAG(std::string, erasures, "", "split: a customer_id list whose rows are left out of every output");
ABSL_FLAG(std::string, out, "", "Output directory (split) or submission file (baseline)");
ABSL_FLAG(std::string, kind, "popular",
          "Baseline: popular (last-week best sellers), age (best sellers of the customer's age "
          "band), or recent (own time-decayed purchases, filled with popular)");
ABSL_FLAG(int, age_band_years, 5, "Width of the age bands of the age baseline");
ABSL_FLAG(int, popular_window_days, 7, "Window of the popularity list (baseline)");
ABSL_FLAG(double, half_life_days, 14, "Decay half-life of the recent baseline");
ABSL_FLAG(std::string, truth, "", "Held-out transactions, e.g. SPLIT/truth.csv (score)");
ABSL_FLAG(std::string, submission, "", "Submission to score (score)");
ABSL_FLAG(std::string, customers, "",
          "customers.csv or sample_submission.csv: check every customer has a row (score), the customers and "
          "their order (merge)");
ABSL_FLAG(std::string, json, "", "Also write the scores as JSON here (score, similar, arms)");
ABSL_FLAG(std::string, impressions, "", "arms: the server's impression log (ServerConfig.impressions)");
ABSL_FLAG(std::string, purchases, "",
          "arms: purchases after the impressions, transactions layout (e.g. hmrec_events export)");
ABSL_FLAG(int, window_days, 7, "arms: a purchase on an impression's day or this many days after counts");
ABSL_FLAG(std::string, label, "", "Name of the submission in the printed table (score)");
ABSL_FLAG(std::string, bundle, "", "A bundle trained on --data (similar)");
ABSL_FLAG(std::string, examples_out, "",
          "similar: also write the queries as CSV (customer_id, article_id, the relevant article ids space-separated), "
          "to score the served path with them (bench/similar_personal.py)");
ABSL_FLAG(int, k, 12, "Articles a similar list holds (similar)");
ABSL_FLAG(std::string, weights, "",
          "similar: more blends to score, 'E,B,S,P;...' (the weights of embedding, bought_together, same_product, "
          "popular_in_type)");
ABSL_FLAG(int, within_days, 7,
          "similar: a customer's last article counts when bought this many days before the held-out days at most, "
          "and their held-out purchases within this many days after it");
ABSL_FLAG(bool, no_cache, false, "Do not use or write the dataset cache (baseline)");
ABSL_FLAG(bool, quiet, false, "No progress lines");

namespace {

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "evaluate: %s\n", std::string(s.message()).c_str());
  return 1;
}

int RunSplit() {
  const std::string data = absl::GetFlag(FLAGS_data), out = absl::GetFlag(FLAGS_out);
  if (data.empty() || out.empty()) return Fail(absl::InvalidArgumentError("split needs --data and --out"));
  hmrec::evaluate::SplitResult r;
  hmrec::evaluate::SplitExtras extras;
  extras.transactions = absl::GetFlag(FLAGS_extra_transactions);
  extras.erasures = absl::GetFlag(FLAGS_erasures);
  absl::Status s = hmrec::evaluate::SplitHoldout(data, absl::GetFlag(FLAGS_holdout_days), out,
                                                 !absl::GetFlag(FLAGS_quiet), &r, extras);
  if (!s.ok()) return Fail(s);
  std::fprintf(stderr, "evaluate: held out %s..%s: %lld rows in %s/truth.csv, %lld training rows in %s/train\n",
               hmrec::FormatDate(r.first_holdout_day).c_str(), hmrec::FormatDate(r.last_day).c_str(),
               static_cast<long long>(r.holdout_rows), out.c_str(), static_cast<long long>(r.train_rows), out.c_str());
  if (!extras.transactions.empty() || !extras.erasures.empty()) {
    std::fprintf(stderr,
                 "evaluate: %lld extra rows before the held-out days in %s/train/%s; %lld rows of erased "
                 "customers left out\n",
                 static_cast<long long>(r.extra_rows), out.c_str(), hmrec::evaluate::kExtraTransactionsFile,
                 static_cast<long long>(r.erased_rows));
  }
  return 0;
}

int RunBaseline() {
  const std::string data = absl::GetFlag(FLAGS_data), out = absl::GetFlag(FLAGS_out);
  if (data.empty() || out.empty()) return Fail(absl::InvalidArgumentError("baseline needs --data and --out"));
  hmrec::LoadOptions opts;
  opts.use_cache = !absl::GetFlag(FLAGS_no_cache);
  opts.show_progress = !absl::GetFlag(FLAGS_quiet);
  absl::StatusOr<std::unique_ptr<hmrec::Dataset>> ds = hmrec::LoadDataset(data, opts);
  if (!ds.ok()) return Fail(ds.status());
  std::fprintf(stderr, "evaluate: %s\n", (*ds)->report.Summary().c_str());
  const std::string kind = absl::GetFlag(FLAGS_kind);
  hmrec::evaluate::Recommender rec;
  if (kind == "popular") {
    rec = hmrec::evaluate::PopularityRecommender(**ds, absl::GetFlag(FLAGS_popular_window_days));
  } else if (kind == "age") {
    rec = hmrec::evaluate::AgeBandPopularityRecommender(**ds, absl::GetFlag(FLAGS_popular_window_days),
                                                        absl::GetFlag(FLAGS_age_band_years));
  } else if (kind == "recent") {
    rec = hmrec::evaluate::RecentPurchasesRecommender(**ds, absl::GetFlag(FLAGS_popular_window_days),
                                                      absl::GetFlag(FLAGS_half_life_days));
  } else {
    return Fail(absl::InvalidArgumentError("--kind must be popular, age or recent, not '" + kind + "'"));
  }
  absl::Status s = hmrec::evaluate::WriteSubmission(**ds, rec, out, !absl::GetFlag(FLAGS_quiet));
  if (!s.ok()) return Fail(s);
  std::fprintf(stderr, "evaluate: wrote %s baseline for %zu customers to %s\n", kind.c_str(), (*ds)->customers.size(),
               out.c_str());
  return 0;
}

int RunScore() {
  const std::string truth_path = absl::GetFlag(FLAGS_truth), sub_path = absl::GetFlag(FLAGS_submission);
  if (truth_path.empty() || sub_path.empty()) {
    return Fail(absl::InvalidArgumentError("score needs --truth and --submission"));
  }
  absl::StatusOr<hmrec::evaluate::Truth> truth = hmrec::evaluate::ReadTruth(truth_path);
  if (!truth.ok()) return Fail(truth.status());
  hmrec::SubmissionCheck check;
  absl::StatusOr<hmrec::Submission> sub = hmrec::ReadSubmission(sub_path, &check);
  if (!sub.ok()) return Fail(sub.status());
  hmrec::evaluate::ScoreResult r = hmrec::evaluate::Score(*truth, *sub);
  if (!absl::GetFlag(FLAGS_customers).empty()) {
    absl::StatusOr<std::vector<std::string>> ids = hmrec::ReadCustomerIds(absl::GetFlag(FLAGS_customers));
    if (!ids.ok()) return Fail(ids.status());
    hmrec::evaluate::CheckCoverage(*ids, *sub, &r);
  }
  const std::string label = absl::GetFlag(FLAGS_label).empty() ? sub_path : absl::GetFlag(FLAGS_label);
  std::printf(
      "%-28s MAP@12 %.5f  recall@12 %.4f  scored %lld customers (%lld missing)  "
      "12 valid ids: %.2f%%\n",
      label.c_str(), r.map_at_12, r.recall_at_12, static_cast<long long>(r.truth_customers),
      static_cast<long long>(r.truth_customers_missing), 100.0 * r.share_with_12_valid());
  std::fprintf(stderr, "evaluate: submission %s: %s\n", sub_path.c_str(), check.Summary().c_str());
  if (r.expected_customers_missing > 0) {
    std::fprintf(stderr, "evaluate: %lld expected customers have no row\n",
                 static_cast<long long>(r.expected_customers_missing));
  }
  for (const std::string& e : r.examples) std::fprintf(stderr, "  e.g. %s\n", e.c_str());
  if (!absl::GetFlag(FLAGS_json).empty()) {
    std::ofstream js(absl::GetFlag(FLAGS_json));
    js << absl::StrFormat(
        "{\"label\": \"%s\", \"map_at_12\": %.6f, \"recall_at_12\": %.6f, \"truth_customers\": %d, "
        "\"truth_customers_missing\": %d, \"expected_customers\": %d, "
        "\"customers_with_12_valid\": %d, \"expected_customers_missing\": %d, "
        "\"submission_rows\": %d, \"malformed_rows\": %d, \"invalid_article_ids\": %d, "
        "\"short_rows\": %d, \"duplicate_customers\": %d}\n",
        label, r.map_at_12, r.recall_at_12, r.truth_customers, r.truth_customers_missing, r.expected_customers,
        r.customers_with_12_valid, r.expected_customers_missing, check.rows, check.malformed_rows,
        check.invalid_article_ids, check.short_rows, check.duplicate_customers);
    if (!js) return Fail(absl::InternalError("cannot write " + absl::GetFlag(FLAGS_json)));
  }
  return 0;
}

int RunMerge(const std::vector<std::string>& parts) {
  std::string customers = absl::GetFlag(FLAGS_customers);
  if (customers.empty() && !absl::GetFlag(FLAGS_data).empty())
    customers = hmrec::CustomerListIn(absl::GetFlag(FLAGS_data));
  if (customers.empty() || absl::GetFlag(FLAGS_out).empty() || parts.empty()) {
    return Fail(absl::InvalidArgumentError(
        "merge needs --customers FILE (or --data DIR), --out FILE and the parts, e.g. hmrec_evaluate merge --data "
        "DIR --out submission.csv part-0.csv part-1.csv"));
  }
  absl::StatusOr<std::vector<std::string>> ids = hmrec::ReadCustomerIds(customers);
  if (!ids.ok()) return Fail(ids.status());
  hmrec::evaluate::MergeReport report;
  absl::Status s = hmrec::evaluate::MergeSubmissions(parts, *ids, absl::GetFlag(FLAGS_out), &report);
  if (!s.ok()) return Fail(absl::Status(s.code(), absl::StrCat(s.message(), "; nothing written")));
  std::fprintf(stderr, "evaluate: merged %lld parts into %s: %lld customers of %s, each once, all from bundle %s\n",
               static_cast<long long>(report.parts), absl::GetFlag(FLAGS_out).c_str(),
               static_cast<long long>(report.rows), customers.c_str(), report.bundle_version.c_str());
  return 0;
}

int RunSimilar() {
  const std::string data = absl::GetFlag(FLAGS_data), truth = absl::GetFlag(FLAGS_truth);
  const std::string bundle = absl::GetFlag(FLAGS_bundle);
  if (data.empty() || truth.empty() || bundle.empty()) {
    return Fail(absl::InvalidArgumentError("similar needs --data, --truth and --bundle"));
  }
  hmrec::LoadOptions opts;
  opts.use_cache = !absl::GetFlag(FLAGS_no_cache);
  opts.show_progress = !absl::GetFlag(FLAGS_quiet);
  absl::StatusOr<std::unique_ptr<hmrec::Dataset>> ds = hmrec::LoadDataset(data, opts);
  if (!ds.ok()) return Fail(ds.status());
  absl::StatusOr<hmrec::ArticleEmbeddings> emb =
      hmrec::ReadArticleEmbeddings(bundle + "/" + hmrec::kArticleEmbeddingsFile);
  if (!emb.ok()) return Fail(emb.status());
  if (emb->article_ids.size() != (*ds)->articles.size()) {
    return Fail(absl::FailedPreconditionError(
        absl::StrCat("the bundle has ", emb->article_ids.size(), " articles, ", data, " ", (*ds)->articles.size())));
  }
  for (size_t a = 0; a < emb->article_ids.size(); ++a) {
    if (emb->article_ids[a] != (*ds)->articles[a].article_id) {
      return Fail(absl::FailedPreconditionError(absl::StrCat("the bundle's article ", a, " is ", emb->article_ids[a],
                                                             ", ", data, "'s ", (*ds)->articles[a].article_id)));
    }
  }
  std::unique_ptr<hmrec::RankingTables> tables;
  if (std::filesystem::exists(bundle + "/" + hmrec::kRankingTablesFile)) {
    absl::StatusOr<hmrec::RankingTables> t = hmrec::RankingTables::Load(bundle + "/" + hmrec::kRankingTablesFile);
    if (!t.ok()) return Fail(t.status());
    tables = std::make_unique<hmrec::RankingTables>(std::move(*t));
  }
  std::vector<int32_t> codes, types;
  for (const hmrec::Article& a : (*ds)->articles) {
    codes.push_back(a.product_code);
    types.push_back(a.product_type_no);
  }
  const hmrec::SimilarArticles similar(emb->values.data(), emb->dim, codes, types, tables.get());
  absl::StatusOr<std::vector<hmrec::SimilarExample>> examples =
      hmrec::SimilarExamples(**ds, truth, absl::GetFlag(FLAGS_within_days));
  if (!examples.ok()) return Fail(examples.status());
  if (!absl::GetFlag(FLAGS_examples_out).empty()) {
    std::ofstream out(absl::GetFlag(FLAGS_examples_out));
    out << "customer_id,article_id,relevant\n";
    for (const hmrec::SimilarExample& e : *examples) {
      out << (*ds)->customer_id(e.customer) << ',' << hmrec::FormatArticleId((*ds)->articles[e.query].article_id)
          << ',';
      for (size_t j = 0; j < e.relevant.size(); ++j) {
        out << (j > 0 ? " " : "") << hmrec::FormatArticleId((*ds)->articles[e.relevant[j]].article_id);
      }
      out << '\n';
    }
    if (!out) return Fail(absl::InternalError("cannot write " + absl::GetFlag(FLAGS_examples_out)));
  }
  const int k = absl::GetFlag(FLAGS_k);
  struct Row {
    std::string name;
    hmrec::SimilarMix mix;
  };
  std::vector<Row> rows = {{"blend (served)", hmrec::SimilarMix()}};
  for (int s = 0; s < hmrec::kNumSimilarSources; ++s) {
    rows.push_back({absl::StrCat(hmrec::SimilarSourceName(s), " alone"), hmrec::SimilarMix::Only(s)});
  }
  for (absl::string_view blend : absl::StrSplit(absl::GetFlag(FLAGS_weights), ';', absl::SkipEmpty())) {
    const std::vector<std::string> w = absl::StrSplit(blend, ',');
    hmrec::SimilarMix mix;
    bool ok = w.size() == static_cast<size_t>(hmrec::kNumSimilarSources);
    for (size_t i = 0; ok && i < w.size(); ++i) ok = absl::SimpleAtof(w[i], &mix.weight[i]) && mix.weight[i] >= 0;
    if (!ok) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("--weights: '", blend, "' is not ", hmrec::kNumSimilarSources, " weights >= 0")));
    }
    rows.push_back({absl::StrCat("blend ", blend), mix});
  }
  std::printf(
      "| SimilarArticles (k = %d, %zu queries: last article within %d days) | MAP@%d | hit rate@%d | recall@%d |\n", k,
      examples->size(), absl::GetFlag(FLAGS_within_days), k, k, k);
  std::printf("| --- | --- | --- | --- |\n");
  std::string json = "[";
  for (const Row& row : rows) {
    const hmrec::SimilarScore s = hmrec::ScoreSimilar(similar, *examples, row.mix, k, 0);
    std::printf("| %s | %.5f | %.4f | %.4f |\n", row.name.c_str(), s.map_at_k, s.hit_rate, s.recall);
    absl::StrAppend(&json, json.size() > 1 ? ", " : "",
                    absl::StrFormat("{\"variant\": \"%s\", \"map\": %.6f, \"hit_rate\": %.6f, \"recall\": %.6f, "
                                    "\"queries\": %d}",
                                    row.name, s.map_at_k, s.hit_rate, s.recall, s.queries));
  }
  if (!absl::GetFlag(FLAGS_json).empty()) {
    std::ofstream js(absl::GetFlag(FLAGS_json));
    js << json << "]\n";
    if (!js) return Fail(absl::InternalError("cannot write " + absl::GetFlag(FLAGS_json)));
  }
  return 0;
}

}  // namespace

int RunArms() {
  const std::string impressions = absl::GetFlag(FLAGS_impressions), purchases = absl::GetFlag(FLAGS_purchases);
  if (impressions.empty() || purchases.empty()) {
    return Fail(absl::InvalidArgumentError("arms needs --impressions and --purchases"));
  }
  const int window = absl::GetFlag(FLAGS_window_days);
  absl::StatusOr<std::vector<hmrec::evaluate::ArmResult>> arms =
      hmrec::evaluate::CompareArms(impressions, purchases, window);
  if (!arms.ok()) return Fail(arms.status());
  std::printf("%-8s %-24s %11s %9s %9s %9s %9s\n", "arm", "bundle", "impressions", "customers", "hit rate", "precision",
              "bought");
  for (const hmrec::evaluate::ArmResult& a : *arms) {
    std::printf("%-8s %-24s %11lld %9lld %9.4f %9.4f %9.4f\n", a.arm.c_str(), a.bundle_version.c_str(),
                static_cast<long long>(a.impressions), static_cast<long long>(a.customers), a.hit_rate(), a.precision(),
                a.purchase_recall());
  }
  std::printf(
      "(hit rate: impressions followed within %d days by a purchase of a shown article; precision: shown "
      "articles bought; bought: the customers' purchases that had been shown)\n",
      window);
  if (!absl::GetFlag(FLAGS_json).empty()) {
    std::ofstream js(absl::GetFlag(FLAGS_json));
    js << hmrec::evaluate::ArmsJson(*arms, window);
    if (!js) return Fail(absl::InternalError("cannot write " + absl::GetFlag(FLAGS_json)));
  }
  return 0;
}

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "hmrec_evaluate split|baseline|score|similar|merge|arms [flags]: held-out splits, baselines, MAP@12, similar "
      "articles offline, merging sharded submissions and comparing a canary's arms");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  if (args.size() < 2 || (args.size() > 2 && std::string(args[1]) != "merge")) {
    std::fprintf(
        stderr, "usage: hmrec_evaluate split|baseline|score|similar|merge|arms [flags] [PART...] (--help for flags)\n");
    return 2;
  }
  const std::string cmd = args[1];
  if (cmd == "merge") return RunMerge(std::vector<std::string>(args.begin() + 2, args.end()));
  if (cmd == "split") return RunSplit();
  if (cmd == "baseline") return RunBaseline();
  if (cmd == "score") return RunScore();
  if (cmd == "similar") return RunSimilar();
  if (cmd == "arms") return RunArms();
  std::fprintf(stderr, "evaluate: unknown command '%s': use split, baseline, score, similar, merge or arms\n",
               cmd.c_str());
  return 2;
}
