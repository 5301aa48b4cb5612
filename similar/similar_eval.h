#pragma once

// SimilarArticles measured offline, as a product page would use it: a
// customer bought article X; do the articles shown beside X hold what they
// bought next? For each customer whose last purchase before the held-out
// days is X, bought within `within_days` before them, the relevant articles
// are their held-out purchases within `within_days` after X's day (X itself
// left out: buying it again is not what a similar list is for). Scored like
// Kaggle's MAP@12 (AP over min(relevant, k)) and by hit rate (any relevant
// article in the top k).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/hm_data.h"
#include "similar/similar_articles.h"

namespace hmrec {

struct SimilarExample {
  uint32_t query = 0;              // article row of X
  uint32_t customer = 0;           // the customer (row) who bought X
  std::vector<uint32_t> relevant;  // article rows bought after X, X excluded
};

// The examples of `ds` (the training days) and `truth_path` (the held-out
// transactions, transactions_train.csv layout; a malformed row is an error
// naming file:line). Held-out articles that `ds` does not have are skipped.
absl::StatusOr<std::vector<SimilarExample>> SimilarExamples(const Dataset& ds, const std::string& truth_path,
                                                            int within_days);

struct SimilarScore {
  double map_at_k = 0;
  double hit_rate = 0;
  double recall = 0;  // share of the relevant articles in the top k, averaged
  int64_t queries = 0;
};

// `similar`'s top k under `mix` for every example (batches of 1,000 queries,
// `threads` threads each).
SimilarScore ScoreSimilar(const SimilarArticles& similar, const std::vector<SimilarExample>& examples,
                          const SimilarMix& mix, int k, int threads);

}  // namespace hmrec
