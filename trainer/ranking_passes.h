#pragma once

// The passes over customers that the ranking trainer and the studies of its
// stage (cost curves, ablations, candidate budgets) share: a chunk's
// candidates and features as of one day, one label week's training groups,
// and the holdout's evaluation. One code path, so a study measures exactly
// what the trainer builds.
//
// No LibTorch in this header. A CandidateBuilder is not thread-safe (it
// parallelises inside Build with OpenMP).

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "candidates/sources.h"
#include "candidates/tables.h"
#include "data/customer_view.h"
#include "data/history.h"
#include "data/hm_data.h"
#include "features/ranking_features.h"
#include "proto/config.pb.h"
#include "ranker/ranker.h"
#include "trainer/retriever.h"
#include "trainer/trainer.h"

namespace hmrec {

inline constexpr int kRankedK = 12;             // MAP@12, as Kaggle scores it
inline constexpr size_t kCustomerChunk = 2048;  // customers built at once

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

// What a study changes in the generated candidates and their features
// (the trainer itself uses none): each source keeps only the candidates it
// ranked below `quota[s]` (-1: all it proposed; 0: the source is off), a
// candidate no source keeps is dropped, and the features are computed on
// what is left; then the `masked_features` columns are set to missing.
// Generate with quotas at least as large (a source's rank is its position
// in its own list, so keeping ranks below q is generating with quota q).
struct CandidateTrim {
  int quota[kNumSources] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
  std::vector<int> masked_features;

  bool trims_candidates() const;
  // Applies the quotas to one customer's candidates, in place, keeping order.
  void Apply(std::vector<Candidate>* candidates) const;
};

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
  // `rc` is a filled RankingConfig; `trim` (may be null) outlives the builder.
  CandidateBuilder(const Dataset& ds, const CustomerHistory& history, const config::RankingConfig& rc, int threads,
                   const CandidateTrim* trim = nullptr);

  // Fills `out` for `customers` as of `tables.day()`, with `retriever`'s
  // two-tower source.
  absl::Status Build(const std::vector<uint32_t>& customers, const RankingTables& tables, TwoTowerRetriever* retriever,
                     Chunk* out);

 private:
  const Dataset& ds_;
  const CustomerHistory& history_;
  const config::RankingConfig& rc_;
  const HistoryLimits limits_;
  const int threads_;
  const CandidateTrim* trim_;
  std::vector<CandidateScratch> candidate_scratch_;
  std::vector<FeatureScratch> feature_scratch_;
};

// The customers who bought in the neighbour window before `day` and their
// embeddings as of `day` by `retriever`'s customer tower.
absl::StatusOr<BuyerEmbeddings> EmbedRecentBuyers(const Dataset& ds, const CustomerHistory& history, int32_t day,
                                                  const config::RankingConfig& rc, TwoTowerRetriever* retriever);

// The ranking tables as of `day`, with the neighbour clusters of
// `retriever`'s tower (the one whose embeddings the candidates will use).
absl::StatusOr<RankingTables> BuildRankingTables(const Dataset& ds, const CustomerHistory& history, int32_t day,
                                                 const config::RankingConfig& rc, TwoTowerRetriever* retriever);

// Each customer's distinct article rows bought in [from, to), by customer.
std::vector<std::pair<uint32_t, absl::flat_hash_set<uint32_t>>> Buyers(const Dataset& ds, int32_t from, int32_t to);

// Appends articles of `fill` not yet in `pred` until it holds k.
void FillTo(int k, const std::vector<ScoredArticle>& fill, const Dataset& ds, std::vector<int32_t>* pred);

// Positions of `n` candidates by descending score, ties in candidate order.
void OrderByScore(const float* scores, size_t n, std::vector<uint32_t>* order);

// The article ids of the first kRankedK candidates in `order`, filled from
// `popular` to kRankedK.
void TopIds(const std::vector<Candidate>& cands, const std::vector<uint32_t>& order,
            const std::vector<ScoredArticle>& popular, const Dataset& ds, std::vector<int32_t>* pred);

// Builds one label week's training groups: customers who bought in
// [day, day + 7) in a seeded random order, kept while they have a bought
// candidate, until max_groups_per_week (or max_validation_groups when not
// `subsample`, which also keeps every negative).
absl::StatusOr<RankingSet> LabelWeek(const Dataset& ds, const CustomerHistory& history, const RankingTables& tables,
                                     TwoTowerRetriever* retriever, CandidateBuilder* builder,
                                     const config::RankingConfig& rc, uint64_t seed, bool subsample, bool show_progress,
                                     RankingWeekStats* stats);

// Scores the holdout: retrieval only, the fixed-rule merge and the ranker.
absl::StatusOr<RankingEvaluation> Evaluate(const Dataset& ds, const CustomerHistory& history,
                                           const RankingTables& tables, TwoTowerRetriever* retriever,
                                           CandidateBuilder* builder, const Ranker& ranker,
                                           const config::RankingConfig& rc, const Holdout& holdout, bool show_progress);

}  // namespace hmrec
