#pragma once

// Articles like a given one, or like a basket of them: the "you may also
// like" of an article's page. Four sources, each a list best first:
//
//   embedding        nearest articles by the article tower's embedding (the
//                    anchors' embeddings summed and normalised: one query)
//   bought_together  bought by the same customers within days of an anchor
//                    (the ranking tables' co-purchase cosines, summed over
//                    the anchors)
//   same_product     the anchors' other colours and variants (product_code),
//                    by recent sales
//   popular_in_type  best sellers now of the anchors' product types
//
// fused by weighted reciprocal rank, sum over sources of w / (60 + rank):
// an article several sources agree on comes first, and no source's score
// scale has to match another's. Never an anchor, never an article the
// caller's `allowed` refuses. Every candidate keeps its rank and score in
// each source (the explanations).
//
// Immutable after construction; Find() may run on many threads at once,
// each with its own Scratch. No LibTorch, no XGBoost, no transport.

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "candidates/tables.h"
#include "search/exact_search.h"
#include "similar/similar_sources.h"

namespace hmrec {

// How the sources are blended: each source's weight (0 = off) and how
// many of its best articles it proposes. The default was chosen offline
// (`hmrec_evaluate similar --weights`, four generated worlds x three seeds):
// the highest MAP@12 averaged over the worlds of the blends tried, and ahead
// of the first blend (1, 1, 1, 0.5) on every seed.
struct SimilarMix {
  std::array<float, kNumSimilarSources> weight = {0.5f, 1.0f, 0.5f, 1.0f};
  int depth = 50;
  // The weight of a customer's own order of the candidates (Personalise).
  float customer_weight = 1.0f;

  // Only `source`, weight 1 (for comparing the sources alone).
  static SimilarMix Only(int source, int depth = 50);
};

// The reciprocal-rank constant: a source's first article counts 1/60 of
// its weight, its 60th half of that.
inline constexpr float kSimilarRankConstant = 60.0f;

struct SimilarCandidate {
  uint32_t row = 0;
  float score = 0;  // the blend: sum of weight / (kSimilarRankConstant + rank)
  // 0-based rank and score in each source; rank -1 where it did not propose it.
  std::array<int16_t, kNumSimilarSources> rank = {-1, -1, -1, -1};
  std::array<float, kNumSimilarSources> source_score = {0, 0, 0, 0};
  // After Personalise: the rank among the candidates by the customer's
  // score, and that score (embedding dot product); -1 otherwise.
  int32_t customer_rank = -1;
  float customer_score = 0;
  // bought_together / same_product: the anchor row that led there; -1 when none.
  int32_t anchor = -1;

  bool from(int source) const { return rank[static_cast<size_t>(source)] >= 0; }
};

class SimilarArticles {
 public:
  // `vectors`: num_articles x dim article embeddings, row-major (rows are
  // article rows in articles.csv order; they must outlive this object: the
  // search keeps its own copy, the anchors are read from them). `product_codes` and
  // `product_types` per row. `tables` (may be null: then bought_together
  // proposes nothing, same_product goes by row order and popular_in_type
  // proposes nothing) must outlive this object and cover the same rows.
  SimilarArticles(const float* vectors, int dim, std::vector<int32_t> product_codes, std::vector<int32_t> product_types,
                  const RankingTables* tables);

  // Every row of `row`'s product_code (itself included), ascending.
  const std::vector<uint32_t>& product_rows(uint32_t row) const { return rows_of_product_.at(product_codes_[row]); }

  // Reused by one thread's calls.
  struct Scratch {
    ExactSearch::Scratch search;
    std::vector<float> queries, scores;
    std::vector<int64_t> labels;
    absl::flat_hash_map<uint32_t, uint32_t> index;  // row -> position in the output
    std::vector<ScoredArticle> list;
    // A list gathered over the anchors: per row, its scores summed, the
    // largest one and the anchor that gave it.
    struct Gathered {
      double sum = 0;
      float best = 0;
      int32_t anchor = -1;
    };
    absl::flat_hash_map<uint32_t, Gathered> acc;
  };

  // For each query (its anchor rows, valid and distinct, at least one), the
  // fused candidates best first (ties: lower row first), anchors and rows
  // `allowed(query, row)` refuses (null: none) left out. One embedding
  // search for all queries, on up to `threads` threads (0: OpenMP's default).
  using Allowed = std::function<bool(size_t query, uint32_t row)>;
  void Find(const std::vector<std::vector<uint32_t>>& anchors, const SimilarMix& mix, const Allowed& allowed,
            int threads, Scratch* scratch, std::vector<std::vector<SimilarCandidate>>* out) const;

  // Orders one query's fused candidates for a customer too: ranks them by
  // the dot product of `customer` (dim() floats: the customer tower's
  // embedding) with each one's article embedding, adds
  // mix.customer_weight / (kSimilarRankConstant + rank) to its blend, and
  // sorts again (ties: lower row first). The query's own sources still
  // decide which articles are candidates; the customer moves them.
  void Personalise(const float* customer, const SimilarMix& mix, std::vector<SimilarCandidate>* candidates) const;
  int dim() const { return dim_; }

  // The blend's best possible score under `mix` (every source ranks the
  // article first; with `personalised`, the customer's order too): the
  // served scores are a share of it.
  static float MaxScore(const SimilarMix& mix, bool personalised = false);

 private:
  int dim_ = 0;
  const float* vectors_ = nullptr;
  std::vector<int32_t> product_codes_, product_types_;
  const RankingTables* tables_ = nullptr;
  std::unique_ptr<ExactSearch> search_;                                  // every row; labels = rows
  absl::flat_hash_map<int32_t, std::vector<uint32_t>> rows_of_product_;  // product_code -> rows, ascending
};

}  // namespace hmrec
