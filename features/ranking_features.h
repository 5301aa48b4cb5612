#pragma once

// The ranker's features: one definition of every feature, used by the
// trainer (training rows for each label week, offline evaluation) and by the
// server (every candidate of every request). All are point in time: they
// read only the customer's bounded history before the view's day and the
// tables built from the transactions before the tables' day. No LibTorch,
// no XGBoost: the caller brings the two-tower embeddings and runs the model.
//
// A missing value (an article never sold, a customer without history, a
// source that did not propose the candidate) is NaN, which XGBoost treats
// as missing. Stateless; thread-safe with one FeatureScratch per thread.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "candidates/sources.h"
#include "candidates/tables.h"
#include "data/customer_view.h"

namespace hmrec {

// Changes whenever a feature is added, removed, reordered or redefined: a
// bundle's ranker is served only by a server computing the same schema.
inline constexpr char kRankingSchema[] = "hmrec-ranking-features-v8";

// The features in column order.
const std::vector<std::string>& RankingFeatureNames();
int NumRankingFeatures();

// The customer tower's embedding of this customer and every article's
// embedding (row-major, articles x dim, in article-row order), for the
// two-tower cosine of every candidate and its similarity to the customer's
// last purchases; customer null when the customer has no embedding,
// articles null when there is no model (those features are then missing).
struct TwoTowerEmbeddings {
  const float* customer = nullptr;
  const float* articles = nullptr;
  int dim = 0;
};

struct FeatureScratch {
  struct ArticleHistory {
    float count_1w = 0, count_4w = 0, count_all = 0;
    int32_t last_day = 0;
  };
  absl::flat_hash_map<uint32_t, ArticleHistory> articles;
  absl::flat_hash_map<int32_t, ArticleHistory> products;
  CodeSums<float> attributes;  // purchases by attribute value
  // The embeddings of the customer's most recent distinct articles,
  // transposed (dim x kRecentArticles, zero-padded) so that one pass over a
  // candidate's embedding yields its dot with each of them.
  static constexpr int kRecentArticles = 8;
  uint32_t recent[kRecentArticles] = {};
  int num_recent = 0;
  std::vector<float> recent_t;
  // Each candidate's dot with each recent article (candidates x kRecentArticles).
  std::vector<float> recent_dots;
  // The list columns' working space.
  std::vector<float> list_sales;
  std::vector<int32_t> list_types, list_products;
  struct ListCounts {
    int32_t above = 0, same_type = 0, same_product = 0;
  };
  std::vector<ListCounts> list_counts;
};

// Writes candidates.size() rows of NumRankingFeatures() floats to `out`.
void ComputeRankingFeatures(const CustomerView& view, const RankingTables& tables,
                            const std::vector<Candidate>& candidates, const TwoTowerEmbeddings& embeddings,
                            FeatureScratch* scratch, float* out);

}  // namespace hmrec
