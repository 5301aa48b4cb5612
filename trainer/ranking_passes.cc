#include "trainer/ranking_passes.h"

#include <omp.h>

#include <algorithm>
#include <limits>
#include <numeric>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "candidates/ranking_config.h"
#include "common/metrics.h"
#include "common/progress.h"
#include "common/rng.h"
#include "common/status_macros.h"
#include "data/dates.h"

namespace hmrec {

bool CandidateTrim::trims_candidates() const {
  for (int q : quota) {
    if (q >= 0) return true;
  }
  return false;
}

void CandidateTrim::Apply(std::vector<Candidate>* candidates) const {
  size_t kept = 0;
  for (Candidate& c : *candidates) {
    bool any = false;
    for (int s = 0; s < kNumSources; ++s) {
      if (quota[s] >= 0 && c.rank[s] >= quota[s]) {
        c.rank[s] = -1;
        c.score[s] = 0;
      }
      any = any || c.from(s);
    }
    if (!c.from(kCoPurchase)) c.copurchase_anchor = -1;
    if (!c.from(kSameProduct)) c.product_anchor = -1;
    if (any) (*candidates)[kept++] = c;
  }
  candidates->resize(kept);
}

CandidateBuilder::CandidateBuilder(const Dataset& ds, const CustomerHistory& history, const config::RankingConfig& rc,
                                   int threads, const CandidateTrim* trim)
    : ds_(ds), history_(history), rc_(rc), limits_(HistoryLimitsOf(rc)), threads_(std::max(1, threads)), trim_(trim) {
  candidate_scratch_.resize(static_cast<size_t>(threads_));
  feature_scratch_.resize(static_cast<size_t>(threads_));
}

absl::Status CandidateBuilder::Build(const std::vector<uint32_t>& customers, const RankingTables& tables,
                                     TwoTowerRetriever* retriever, Chunk* out) {
  const int k = rc_.two_tower_candidates();
  if (retriever->search_day() != tables.day()) retriever->SearchOnly(tables.day(), TwoTowerSearchRows(tables, rc_));
  RETURN_IF_ERROR(
      retriever->Retrieve(ds_, history_, customers, tables.day(), k, &out->embeddings, &out->hits, &out->hit_scores));
  const int64_t n = static_cast<int64_t>(customers.size());
  out->candidates.resize(customers.size());
  out->views.resize(customers.size());
  const int dim = retriever->dim();
  const bool trim = trim_ != nullptr && trim_->trims_candidates();
#pragma omp parallel for num_threads(threads_) schedule(dynamic, 16)
  for (int64_t i = 0; i < n; ++i) {
    const size_t t = static_cast<size_t>(omp_get_thread_num());
    CustomerView& view = out->views[static_cast<size_t>(i)];
    const uint32_t c = customers[static_cast<size_t>(i)];
    BuildCustomerView(history_, c, ds_.customers[c].age, tables.day(), limits_, &view);
    TwoTowerHits hits{out->hits.data() + i * k, out->hit_scores.data() + i * k, k, out->embeddings.data() + i * dim,
                      dim};
    std::vector<Candidate>& cands = out->candidates[static_cast<size_t>(i)];
    GenerateCandidates(view, tables, hits, rc_, &candidate_scratch_[t], &cands);
    if (trim) trim_->Apply(&cands);
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
  if (trim_ != nullptr && !trim_->masked_features.empty()) {
    const float missing = std::numeric_limits<float>::quiet_NaN();
    for (size_t r = 0; r < out->offsets.back(); ++r) {
      for (int f : trim_->masked_features) out->features[r * nf + static_cast<size_t>(f)] = missing;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<BuyerEmbeddings> EmbedRecentBuyers(const Dataset& ds, const CustomerHistory& history, int32_t day,
                                                  const config::RankingConfig& rc, TwoTowerRetriever* retriever) {
  BuyerEmbeddings b;
  b.dim = retriever->dim();
  const int32_t from = day - std::max(1, rc.neighbour_window_days());
  for (uint32_t c = 0; c < history.num_customers(); ++c) {
    const size_t end = history.CountBefore(c, day);
    if (end > 0 && history.days(c)[end - 1] >= from) b.customers.push_back(c);
  }
  b.values.resize(b.customers.size() * static_cast<size_t>(b.dim));
  std::vector<uint32_t> chunk;
  std::vector<float> embeddings;
  std::vector<int64_t> no_rows;
  std::vector<float> no_scores;
  for (size_t i = 0; i < b.customers.size(); i += kCustomerChunk) {
    const size_t end = std::min(b.customers.size(), i + kCustomerChunk);
    chunk.assign(b.customers.begin() + static_cast<std::ptrdiff_t>(i),
                 b.customers.begin() + static_cast<std::ptrdiff_t>(end));
    RETURN_IF_ERROR(retriever->Retrieve(ds, history, chunk, day, /*k=*/0, &embeddings, &no_rows, &no_scores));
    std::copy(embeddings.begin(), embeddings.end(), b.values.begin() + static_cast<std::ptrdiff_t>(i * b.dim));
  }
  return b;
}

absl::StatusOr<RankingTables> BuildRankingTables(const Dataset& ds, const CustomerHistory& history, int32_t day,
                                                 const config::RankingConfig& rc, TwoTowerRetriever* retriever) {
  if (rc.neighbour_candidates() <= 0) return RankingTables::Build(ds, history, day, rc);
  ASSIGN_OR_RETURN(const BuyerEmbeddings buyers, EmbedRecentBuyers(ds, history, day, rc, retriever));
  return RankingTables::Build(ds, history, day, rc, &buyers);
}

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

void FillTo(int k, const std::vector<ScoredArticle>& fill, const Dataset& ds, std::vector<int32_t>* pred) {
  for (const ScoredArticle& s : fill) {
    if (static_cast<int>(pred->size()) >= k) break;
    const int32_t id = ds.articles[s.article].article_id;
    if (std::find(pred->begin(), pred->end(), id) == pred->end()) pred->push_back(id);
  }
}

void OrderByScore(const float* scores, size_t n, std::vector<uint32_t>* order) {
  order->resize(n);
  std::iota(order->begin(), order->end(), 0u);
  std::stable_sort(order->begin(), order->end(), [&](uint32_t x, uint32_t y) { return scores[x] > scores[y]; });
}

void TopIds(const std::vector<Candidate>& cands, const std::vector<uint32_t>& order,
            const std::vector<ScoredArticle>& popular, const Dataset& ds, std::vector<int32_t>* pred) {
  pred->clear();
  for (uint32_t j : order) {
    if (static_cast<int>(pred->size()) >= kRankedK) break;
    pred->push_back(ds.articles[cands[j].article].article_id);
  }
  FillTo(kRankedK, popular, ds, pred);
}

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
  for (size_t b = 0; b < buyers.size() && stats->groups < want; b += kCustomerChunk) {
    const size_t e = std::min(buyers.size(), b + kCustomerChunk);
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
  for (size_t b = 0; b < holdout.customers.size(); b += kCustomerChunk) {
    const size_t e = std::min(holdout.customers.size(), b + kCustomerChunk);
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
      for (int j = 0; j < k && static_cast<int>(pred.size()) < kRankedK; ++j) {
        const int64_t row = chunk.hits[i * k + j];
        if (row >= 0) pred.push_back(ds.articles[row].article_id);
      }
      FillTo(kRankedK, popular, ds, &pred);
      ev.map_retrieval += AveragePrecisionAtK(pred, truth, kRankedK);
      // The fixed-rule merge.
      HeuristicOrder(cands, &order);
      TopIds(cands, order, popular, ds, &pred);
      ev.map_heuristic += AveragePrecisionAtK(pred, truth, kRankedK);
      // Ranked.
      OrderByScore(scores.data() + chunk.offsets[i], cands.size(), &order);
      TopIds(cands, order, popular, ds, &pred);
      ev.map_ranked += AveragePrecisionAtK(pred, truth, kRankedK);
      ev.recall12_ranked += RecallAtK(pred, truth, kRankedK);
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

}  // namespace hmrec
