#include "trainer/ranking_trainer.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bundle/bundle.h"
#include "candidates/ranking_config.h"
#include "candidates/tables.h"
#include "common/metrics.h"
#include "common/progress.h"
#include "common/rng.h"
#include "common/status_macros.h"
#include "data/customer_view.h"
#include "data/dates.h"
#include "data/history.h"
#include "features/ranking_features.h"
#include "trainer/retriever.h"

namespace hmrec {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kK = 12;
constexpr size_t kChunk = 2048;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double PeakRssMib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  }
  return 0;
}

// Candidates and features of a chunk of customers as of one day.
struct Chunk {
  std::vector<std::vector<Candidate>> candidates;  // per customer
  std::vector<size_t> offsets;                     // customer i's feature rows start at offsets[i]
  std::vector<float> features;                     // all rows x NumRankingFeatures()
  std::vector<float> embeddings;                   // per customer, dim floats
  std::vector<int64_t> hits;                       // two-tower article rows, k per customer
  std::vector<float> hit_scores;
  std::vector<CustomerView> views;  // per customer
};

// What every pass over customers needs.
class CandidateBuilder {
 public:
  CandidateBuilder(const Dataset& ds, const CustomerHistory& history, const config::RankingConfig& rc, int threads)
      : ds_(ds), history_(history), rc_(rc), limits_(HistoryLimitsOf(rc)), threads_(std::max(1, threads)) {
    candidate_scratch_.resize(static_cast<size_t>(threads_));
    feature_scratch_.resize(static_cast<size_t>(threads_));
  }

  // Fills `out` for `customers` as of `tables.day()`, with `retriever`'s
  // two-tower source.
  absl::Status Build(const std::vector<uint32_t>& customers, const RankingTables& tables, TwoTowerRetriever* retriever,
                     Chunk* out) {
    const int k = rc_.two_tower_candidates();
    if (retriever->search_day() != tables.day()) retriever->SearchOnly(tables.day(), TwoTowerSearchRows(tables, rc_));
    RETURN_IF_ERROR(
        retriever->Retrieve(ds_, history_, customers, tables.day(), k, &out->embeddings, &out->hits, &out->hit_scores));
    const int64_t n = static_cast<int64_t>(customers.size());
    out->candidates.resize(customers.size());
    out->views.resize(customers.size());
    const int dim = retriever->dim();
#pragma omp parallel for num_threads(threads_) schedule(dynamic, 16)
    for (int64_t i = 0; i < n; ++i) {
      const size_t t = static_cast<size_t>(omp_get_thread_num());
      CustomerView& view = out->views[static_cast<size_t>(i)];
      const uint32_t c = customers[static_cast<size_t>(i)];
      BuildCustomerView(history_, c, ds_.customers[c].age, tables.day(), limits_, &view);
      TwoTowerHits hits{out->hits.data() + i * k, out->hit_scores.data() + i * k, k};
      GenerateCandidates(view, tables, hits, rc_, &candidate_scratch_[t], &out->candidates[static_cast<size_t>(i)]);
    }
    const int nf = NumRankingFeatures();
    out->offsets.assign(customers.size() + 1, 0);
    for (size_t i = 0; i < customers.size(); ++i) out->offsets[i + 1] = out->offsets[i] + out->candidates[i].size();
    out->features.resize(out->offsets.back() * static_cast<size_t>(nf));
#pragma omp parallel for num_threads(threads_) schedule(dynamic, 16)
    for (int64_t i = 0; i < n; ++i) {
      const size_t t = static_cast<size_t>(omp_get_thread_num());
      const CustomerView& view = out->views[static_cast<size_t>(i)];
      TwoTowerEmbeddings emb{out->embeddings.data() + i * dim, retriever->article_embeddings(), dim};
      ComputeRankingFeatures(view, tables, out->candidates[static_cast<size_t>(i)], emb, &feature_scratch_[t],
                             out->features.data() + out->offsets[static_cast<size_t>(i)] * nf);
    }
    return absl::OkStatus();
  }

 private:
  const Dataset& ds_;
  const CustomerHistory& history_;
  const config::RankingConfig& rc_;
  const HistoryLimits limits_;
  const int threads_;
  std::vector<CandidateScratch> candidate_scratch_;
  std::vector<FeatureScratch> feature_scratch_;
};

// Each customer's distinct article rows bought in [from, to).
std::vector<std::pair<uint32_t, absl::flat_hash_set<uint32_t>>> Buyers(const Dataset& ds, int32_t from, int32_t to) {
  absl::flat_hash_map<uint32_t, absl::flat_hash_set<uint32_t>> by_customer;
  const Transactions& tx = ds.transactions;
  for (size_t i = 0; i < tx.size(); ++i) {
    if (tx.day[i] >= from && tx.day[i] < to) by_customer[tx.customer[i]].insert(tx.article[i]);
  }
  std::vector<std::pair<uint32_t, absl::flat_hash_set<uint32_t>>> out(by_customer.begin(), by_customer.end());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

// Appends articles of `fill` not yet in `pred` until it holds k.
void FillTo(int k, const std::vector<ScoredArticle>& fill, const Dataset& ds, std::vector<int32_t>* pred) {
  for (const ScoredArticle& s : fill) {
    if (static_cast<int>(pred->size()) >= k) break;
    const int32_t id = ds.articles[s.article].article_id;
    if (std::find(pred->begin(), pred->end(), id) == pred->end()) pred->push_back(id);
  }
}

// Positions of `n` candidates by descending score, ties in candidate order.
void OrderByScore(const float* scores, size_t n, std::vector<uint32_t>* order) {
  order->resize(n);
  std::iota(order->begin(), order->end(), 0u);
  std::stable_sort(order->begin(), order->end(), [&](uint32_t x, uint32_t y) { return scores[x] > scores[y]; });
}

// The article ids of the first kK candidates in `order`, filled from
// `popular` to kK.
void TopIds(const std::vector<Candidate>& cands, const std::vector<uint32_t>& order,
            const std::vector<ScoredArticle>& popular, const Dataset& ds, std::vector<int32_t>* pred) {
  pred->clear();
  for (uint32_t j : order) {
    if (static_cast<int>(pred->size()) >= kK) break;
    pred->push_back(ds.articles[cands[j].article].article_id);
  }
  FillTo(kK, popular, ds, pred);
}

// Builds one label week's training groups: customers who bought in
// [day, day + 7) in a seeded random order, kept while they have a bought
// candidate, until max_groups_per_week.
absl::StatusOr<RankingSet> LabelWeek(const Dataset& ds, const CustomerHistory& history, const RankingTables& tables,
                                     TwoTowerRetriever* retriever, CandidateBuilder* builder,
                                     const config::RankingConfig& rc, uint64_t seed, bool subsample, bool show_progress,
                                     RankingWeekStats* stats) {
  const int32_t day = tables.day();
  auto buyers = Buyers(ds, day, day + 7);
  Rng rng(seed, 0x7ab1e, static_cast<uint64_t>(day));
  for (size_t i = buyers.size(); i > 1; --i) std::swap(buyers[i - 1], buyers[rng.Below(i)]);
  stats->first_day = FormatDate(day);
  stats->buyers = static_cast<int64_t>(buyers.size());
  const int nf = NumRankingFeatures();
  RankingSet set;
  set.num_features = nf;
  const int64_t want = subsample ? rc.max_groups_per_week() : rc.max_validation_groups();
  ProgressReporter progress(absl::StrCat("label week ", stats->first_day), want, "groups");
  progress.set_enabled(show_progress);
  Chunk chunk;
  double recall = 0, candidates = 0;
  for (size_t b = 0; b < buyers.size() && stats->groups < want; b += kChunk) {
    const size_t e = std::min(buyers.size(), b + kChunk);
    std::vector<uint32_t> customers;
    for (size_t i = b; i < e; ++i) customers.push_back(buyers[i].first);
    RETURN_IF_ERROR(builder->Build(customers, tables, retriever, &chunk));
    for (size_t i = 0; i < customers.size() && stats->groups < want; ++i) {
      const auto& truth = buyers[b + i].second;
      const std::vector<Candidate>& cands = chunk.candidates[i];
      int positives = 0;
      for (const Candidate& c : cands) positives += truth.contains(c.article);
      ++stats->customers;
      candidates += static_cast<double>(cands.size());
      recall += static_cast<double>(positives) / static_cast<double>(truth.size());
      if (positives == 0) continue;  // a group without a positive carries no gradient
      ++stats->groups;
      stats->positives += positives;
      // Every bought candidate; of the others all, or a seeded sample.
      const int negatives = static_cast<int>(cands.size()) - positives;
      const int keep =
          subsample && rc.negatives_per_group() >= 0 ? std::min(negatives, rc.negatives_per_group()) : negatives;
      int seen = 0, kept = 0;
      uint32_t rows = 0;
      for (size_t j = 0; j < cands.size(); ++j) {
        const bool bought = truth.contains(cands[j].article);
        if (!bought) {
          // Selection sampling: each of the remaining negatives with the
          // probability that leaves exactly `keep` in the end.
          const bool take = rng.Below(static_cast<uint64_t>(negatives - seen)) < static_cast<uint64_t>(keep - kept);
          ++seen;
          if (!take) continue;
          ++kept;
        }
        set.labels.push_back(bought ? 1.0f : 0.0f);
        const float* row = chunk.features.data() + (chunk.offsets[i] + j) * nf;
        set.features.insert(set.features.end(), row, row + nf);
        ++rows;
      }
      set.group_sizes.push_back(rows);
      stats->rows += rows;
    }
    progress.Update(stats->groups);
  }
  progress.Finish(stats->groups);
  if (stats->customers > 0) {
    stats->recall = recall / static_cast<double>(stats->customers);
    stats->candidates_per_customer = candidates / static_cast<double>(stats->customers);
  }
  if (set.group_sizes.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("label week ", stats->first_day, ": no customer bought any of their candidates"));
  }
  return set;
}

// Scores the holdout: retrieval only, the fixed-rule merge and the ranker.
absl::StatusOr<RankingEvaluation> Evaluate(const Dataset& ds, const CustomerHistory& history,
                                           const RankingTables& tables, TwoTowerRetriever* retriever,
                                           CandidateBuilder* builder, const Ranker& ranker,
                                           const config::RankingConfig& rc, const Holdout& holdout,
                                           bool show_progress) {
  RankingEvaluation ev;
  const int nf = NumRankingFeatures();
  const int k = rc.two_tower_candidates();
  const std::vector<ScoredArticle>& popular = tables.segment(kUnknownAgeBand);
  ProgressReporter progress("ranked holdout", static_cast<int64_t>(holdout.customers.size()), "customers");
  progress.set_enabled(show_progress);
  Chunk chunk;
  std::vector<float> scores;
  CascadeScratch cascade;
  std::vector<uint32_t> order;
  std::vector<int32_t> pred;
  double candidates = 0;
  for (size_t b = 0; b < holdout.customers.size(); b += kChunk) {
    const size_t e = std::min(holdout.customers.size(), b + kChunk);
    std::vector<uint32_t> customers(holdout.customers.begin() + b, holdout.customers.begin() + e);
    RETURN_IF_ERROR(builder->Build(customers, tables, retriever, &chunk));
    RETURN_IF_ERROR(ScoreGroups(ranker, chunk.features.data(), chunk.offsets, nf, rc.cascade_first_trees(),
                                rc.cascade_keep(), &scores, &cascade));
    for (size_t i = 0; i < customers.size(); ++i) {
      const absl::flat_hash_set<int32_t>& truth = holdout.articles[b + i];
      const std::vector<Candidate>& cands = chunk.candidates[i];
      candidates += static_cast<double>(cands.size());
      int found = 0, by_source[kNumSources] = {};
      for (const Candidate& c : cands) {
        if (!truth.contains(ds.articles[c.article].article_id)) continue;
        ++found;
        for (int s = 0; s < kNumSources; ++s) by_source[s] += c.from(s);
      }
      ev.recall_merged += static_cast<double>(found) / static_cast<double>(truth.size());
      for (int s = 0; s < kNumSources; ++s) {
        ev.recall_source[s] += static_cast<double>(by_source[s]) / static_cast<double>(truth.size());
      }
      // Retrieval only: the two-tower search's first 12.
      pred.clear();
      for (int j = 0; j < k && static_cast<int>(pred.size()) < kK; ++j) {
        const int64_t row = chunk.hits[i * k + j];
        if (row >= 0) pred.push_back(ds.articles[row].article_id);
      }
      FillTo(kK, popular, ds, &pred);
      ev.map_retrieval += AveragePrecisionAtK(pred, truth, kK);
      // The fixed-rule merge.
      HeuristicOrder(cands, &order);
      TopIds(cands, order, popular, ds, &pred);
      ev.map_heuristic += AveragePrecisionAtK(pred, truth, kK);
      // Ranked.
      OrderByScore(scores.data() + chunk.offsets[i], cands.size(), &order);
      TopIds(cands, order, popular, ds, &pred);
      ev.map_ranked += AveragePrecisionAtK(pred, truth, kK);
      ev.recall12_ranked += RecallAtK(pred, truth, kK);
    }
    progress.Update(static_cast<int64_t>(e));
  }
  progress.Finish(static_cast<int64_t>(holdout.customers.size()));
  const double n = static_cast<double>(std::max<size_t>(1, holdout.customers.size()));
  ev.customers = static_cast<int64_t>(holdout.customers.size());
  ev.candidates_per_customer = candidates / n;
  ev.recall_merged /= n;
  for (double& r : ev.recall_source) r /= n;
  ev.map_retrieval /= n;
  ev.map_heuristic /= n;
  ev.map_ranked /= n;
  ev.recall12_ranked /= n;
  return ev;
}

config::RankingConfig Scaled(const config::RankingConfig& rc, double f) {
  config::RankingConfig c = rc;
  auto scale = [f](int v) { return std::max(1, static_cast<int>(std::lround(v * f))); };
  c.set_repurchase_candidates(scale(rc.repurchase_candidates()));
  c.set_two_tower_candidates(scale(rc.two_tower_candidates()));
  c.set_copurchase_candidates(scale(rc.copurchase_candidates()));
  c.set_same_product_candidates(scale(rc.same_product_candidates()));
  c.set_segment_candidates(scale(rc.segment_candidates()));
  c.set_trending_candidates(scale(rc.trending_candidates()));
  return c;
}

}  // namespace

absl::StatusOr<std::vector<RankingCurvePoint>> RankingCurve(
    const Dataset& ds, const Holdout& holdout, const std::string& bundle_dir,
    const std::vector<double>& candidate_scales, const std::vector<int>& tree_counts,
    const std::vector<std::pair<int, int>>& cascades, const std::vector<int>& active_weeks, int64_t max_customers) {
  ASSIGN_OR_RETURN(config::BundleManifest manifest, ReadManifest(bundle_dir));
  if (manifest.ranking_schema() != kRankingSchema) {
    return absl::FailedPreconditionError(absl::StrCat(bundle_dir, " has no ranker of this feature schema"));
  }
  const config::RankingConfig base = WithRankingDefaults(manifest.trainer().ranking());
  const fs::path dir(bundle_dir);
  ASSIGN_OR_RETURN(std::unique_ptr<Ranker> ranker, Ranker::Load((dir / kRankerFile).string(), 1));
  ASSIGN_OR_RETURN(RankingTables tables, RankingTables::Load((dir / kRankingTablesFile).string()));
  ASSIGN_OR_RETURN(std::unique_ptr<TwoTowerRetriever> retriever, TwoTowerRetriever::Load(bundle_dir, ds, 1));
  const CustomerHistory history = CustomerHistory::Build(ds.transactions, ds.customers.size());
  const size_t n =
      max_customers > 0 ? std::min<size_t>(max_customers, holdout.customers.size()) : holdout.customers.size();
  const int nf = NumRankingFeatures();
  const std::vector<ScoredArticle>& popular = tables.segment(kUnknownAgeBand);
  std::vector<RankingCurvePoint> out;
  std::vector<std::pair<int, double>> settings;  // active weeks, candidate scale
  for (int w : active_weeks.empty() ? std::vector<int>{base.two_tower_active_weeks()} : active_weeks) {
    for (double scale : candidate_scales) settings.emplace_back(w, scale);
  }
  for (const auto& [weeks, scale] : settings) {
    config::RankingConfig rc = Scaled(base, scale);
    rc.set_two_tower_active_weeks(weeks);
    const std::vector<int64_t> rows = TwoTowerSearchRows(tables, rc);
    const int64_t searched = static_cast<int64_t>(rows.size());
    retriever->SearchOnly(tables.day(), rows);
    CandidateBuilder builder(ds, history, rc, 1);
    // One point per tree count (every tree on every candidate), then one
    // per cascade (all trees, the rest only over the kept).
    std::vector<RankingCurvePoint> points;
    for (int t : tree_counts) {
      points.emplace_back();
      points.back().trees = t;
    }
    for (auto [first, keep] : cascades) {
      points.emplace_back();
      points.back().cascade_first_trees = first;
      points.back().cascade_keep = keep;
    }
    for (RankingCurvePoint& p : points) {
      p.candidate_scale = scale;
      p.active_weeks = weeks;
      p.searched_articles = searched;
    }
    double candidates = 0, build_seconds = 0;
    Chunk chunk;
    std::vector<float> scores;
    CascadeScratch cascade;
    std::vector<uint32_t> order;
    std::vector<int32_t> pred;
    for (size_t b = 0; b < n; b += kChunk) {
      const size_t e = std::min(n, b + kChunk);
      std::vector<uint32_t> customers(holdout.customers.begin() + b, holdout.customers.begin() + e);
      auto t0 = Clock::now();
      RETURN_IF_ERROR(builder.Build(customers, tables, retriever.get(), &chunk));
      build_seconds += Since(t0);
      for (size_t t = 0; t < customers.size(); ++t) candidates += static_cast<double>(chunk.candidates[t].size());
      for (RankingCurvePoint& p : points) {
        t0 = Clock::now();
        if (p.cascade_keep > 0) {
          RETURN_IF_ERROR(ScoreGroups(*ranker, chunk.features.data(), chunk.offsets, nf, p.cascade_first_trees,
                                      p.cascade_keep, &scores, &cascade));
        } else {
          scores.resize(chunk.offsets.back());
          RETURN_IF_ERROR(ranker->Predict(chunk.features.data(), static_cast<int64_t>(chunk.offsets.back()), nf,
                                          scores.data(), p.trees));
        }
        p.predict_us += Since(t0);
        for (size_t i = 0; i < customers.size(); ++i) {
          OrderByScore(scores.data() + chunk.offsets[i], chunk.candidates[i].size(), &order);
          TopIds(chunk.candidates[i], order, popular, ds, &pred);
          p.map_at_12 += AveragePrecisionAtK(pred, holdout.articles[b + i], kK);
        }
      }
    }
    for (RankingCurvePoint& p : points) {
      p.candidates_per_customer = candidates / static_cast<double>(n);
      p.map_at_12 /= static_cast<double>(n);
      // Retrieval (tower + search) is timed with the candidates; it is the
      // same for every point and small beside the rest.
      p.candidates_us = 1e6 * build_seconds / static_cast<double>(n);
      p.predict_us = 1e6 * p.predict_us / static_cast<double>(n);
      out.push_back(p);
    }
  }
  return out;
}

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
                        "], \"ranker\": {\"rounds\": %d, \"best_round\": %d, \"best_valid_map_at_12\": %.6f, "
                        "\"seconds\": %.1f}, \"training_rows\": %d, \"training_matrix_mib\": %.1f",
                        ranker.rounds, ranker.best_round, ranker.best_valid_map, ranker.seconds, training_rows,
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
  const config::RankingConfig rc = WithRankingDefaults(cfg.ranking());
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
  report.seconds_retrieval_tower = Since(t0);

  // Label weeks: candidates, features, labels.
  t0 = Clock::now();
  CandidateBuilder builder(ds, history, rc, threads);
  std::vector<RankingSet> train;
  RankingSet valid;
  for (int w = 0; w < weeks; ++w) {
    const int32_t day = first_label_day + 7 * w;
    const RankingTables tables = RankingTables::Build(ds, history, day, rc);
    RankingWeekStats stats;
    const bool last = w + 1 == weeks;
    ASSIGN_OR_RETURN(RankingSet set, LabelWeek(ds, history, tables, label_retriever.get(), &builder, rc,
                                               rc.ranker().seed(), !last, options.show_progress, &stats));
    report.weeks.push_back(stats);
    report.training_rows += static_cast<int64_t>(set.rows());
    report.training_matrix_mib += static_cast<double>(set.features.size() * sizeof(float)) / (1 << 20);
    if (last) {
      valid = std::move(set);
    } else {
      train.push_back(std::move(set));
    }
  }
  label_retriever.reset();
  report.seconds_candidates_features = Since(t0);

  // The ranker.
  t0 = Clock::now();
  const int ranker_threads = rc.ranker().threads() > 0 ? rc.ranker().threads() : threads;
  ASSIGN_OR_RETURN(std::unique_ptr<Ranker> ranker,
                   Ranker::Train(rc.ranker(), ranker_threads, std::move(train), std::move(valid), options.show_progress,
                                 &report.ranker));
  report.seconds_ranker = Since(t0);

  // Into the bundle: the ranker, the tables as of the day after the data,
  // the schema and the filled config.
  const fs::path dir(bundle_dir);
  RETURN_IF_ERROR(ranker->Save((dir / kRankerFile).string()));
  const RankingTables tables = RankingTables::Build(ds, history, as_of, rc);
  RETURN_IF_ERROR(tables.Save((dir / kRankingTablesFile).string()));

  if (holdout != nullptr && !holdout->customers.empty()) {
    t0 = Clock::now();
    ASSIGN_OR_RETURN(std::unique_ptr<TwoTowerRetriever> retriever, TwoTowerRetriever::Load(bundle_dir, ds, threads));
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
  metric("ranker_rounds", report.ranker.best_round);
  metric("ranker_valid_map_at_12", report.ranker.best_valid_map);
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
    std::ofstream curve(work / "ranker_curve.tsv");
    curve << "round\tvalid_map_at_12\n";
    for (size_t r = 0; r < report.ranker.valid_map.size(); ++r)
      curve << r + 1 << "\t" << report.ranker.valid_map[r] << "\n";
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
