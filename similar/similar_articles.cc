#include "similar/similar_articles.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "glog/logging.h"

namespace hmrec {
namespace {

// Best first: higher score, then lower row (one total order, so equal
// inputs give equal lists offline and online).
bool Better(const ScoredArticle& a, const ScoredArticle& b) {
  return a.score != b.score ? a.score > b.score : a.article < b.article;
}

}  // namespace

SimilarMix SimilarMix::Only(int source, int depth) {
  SimilarMix m;
  m.weight.fill(0.0f);
  m.weight[static_cast<size_t>(source)] = 1.0f;
  m.depth = depth;
  return m;
}

float SimilarArticles::MaxScore(const SimilarMix& mix, bool personalised) {
  float best = 0;
  for (float w : mix.weight) best += std::max(0.0f, w) / kSimilarRankConstant;
  if (personalised) best += std::max(0.0f, mix.customer_weight) / kSimilarRankConstant;
  return best;
}

void SimilarArticles::Personalise(const float* customer, const SimilarMix& mix,
                                  std::vector<SimilarCandidate>* candidates) const {
  std::vector<SimilarCandidate>& cands = *candidates;
  std::vector<std::pair<float, size_t>> order(cands.size());
  for (size_t i = 0; i < cands.size(); ++i) {
    const float* v = vectors_ + static_cast<size_t>(cands[i].row) * static_cast<size_t>(dim_);
    float dot = 0;
    for (int d = 0; d < dim_; ++d) dot += customer[d] * v[d];
    cands[i].customer_score = dot;
    order[i] = {dot, i};
  }
  std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : cands[a.second].row < cands[b.second].row;
  });
  const float w = std::max(0.0f, mix.customer_weight);
  for (size_t r = 0; r < order.size(); ++r) {
    SimilarCandidate& c = cands[order[r].second];
    c.customer_rank = static_cast<int32_t>(r);
    c.score += w / (kSimilarRankConstant + static_cast<float>(r));
  }
  std::sort(cands.begin(), cands.end(), [](const SimilarCandidate& a, const SimilarCandidate& b) {
    return a.score != b.score ? a.score > b.score : a.row < b.row;
  });
}

SimilarArticles::SimilarArticles(const float* vectors, int dim, std::vector<int32_t> product_codes,
                                 std::vector<int32_t> product_types, const RankingTables* tables)
    : dim_(dim),
      vectors_(vectors),
      product_codes_(std::move(product_codes)),
      product_types_(std::move(product_types)),
      tables_(tables) {
  CHECK_EQ(product_codes_.size(), product_types_.size());
  CHECK(tables_ == nullptr || tables_->num_articles() == product_codes_.size());
  std::vector<int64_t> rows(product_codes_.size());
  std::iota(rows.begin(), rows.end(), 0);
  search_ = ExactSearch::OverRows(vectors_, dim_, rows);
  for (uint32_t r = 0; r < product_codes_.size(); ++r) rows_of_product_[product_codes_[r]].push_back(r);
}

void SimilarArticles::Find(const std::vector<std::vector<uint32_t>>& anchors, const SimilarMix& mix,
                           const Allowed& allowed, int threads, Scratch* s,
                           std::vector<std::vector<SimilarCandidate>>* out) const {
  const size_t m = anchors.size();
  out->assign(m, {});
  if (m == 0) return;
  const size_t depth = static_cast<size_t>(std::max(1, mix.depth));
  auto on = [&](int source) { return mix.weight[static_cast<size_t>(source)] > 0; };

  // One embedding search for every query: the anchors' embeddings summed
  // and normalised, their best depth + anchors (the anchors find themselves).
  size_t most_anchors = 0;
  for (const auto& a : anchors) most_anchors = std::max(most_anchors, a.size());
  const int search_k = static_cast<int>(std::min(product_codes_.size(), depth + most_anchors));
  if (on(kSimilarEmbedding)) {
    s->queries.assign(m * static_cast<size_t>(dim_), 0.0f);
    for (size_t q = 0; q < m; ++q) {
      float* v = s->queries.data() + q * dim_;
      for (uint32_t row : anchors[q]) {
        const float* x = vectors_ + static_cast<size_t>(row) * dim_;
        for (int d = 0; d < dim_; ++d) v[d] += x[d];
      }
      double norm = 0;
      for (int d = 0; d < dim_; ++d) norm += static_cast<double>(v[d]) * v[d];
      const float inv = norm > 0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 0.0f;
      for (int d = 0; d < dim_; ++d) v[d] *= inv;
    }
    s->labels.resize(m * static_cast<size_t>(search_k));
    s->scores.resize(m * static_cast<size_t>(search_k));
    search_->Search(s->queries.data(), static_cast<int64_t>(m), search_k, s->labels.data(), s->scores.data(), threads,
                    &s->search);
  }

  for (size_t q = 0; q < m; ++q) {
    const std::vector<uint32_t>& anchor = anchors[q];
    std::vector<SimilarCandidate>& cands = (*out)[q];
    s->index.clear();
    auto is_anchor = [&](uint32_t row) { return std::find(anchor.begin(), anchor.end(), row) != anchor.end(); };
    // Adds `list` (best first) as `source`: its first `depth` usable rows.
    auto add = [&](int source, const ScoredArticle* begin, const ScoredArticle* end,
                   const absl::flat_hash_map<uint32_t, Scratch::Gathered>* anchors_of) {
      int rank = 0;
      for (const ScoredArticle* it = begin; it != end && static_cast<size_t>(rank) < depth; ++it) {
        const uint32_t row = it->article;
        if (is_anchor(row) || (allowed && !allowed(q, row))) continue;
        auto [pos, inserted] = s->index.emplace(row, static_cast<uint32_t>(cands.size()));
        if (inserted) {
          cands.emplace_back();
          cands.back().row = row;
        }
        SimilarCandidate& c = cands[pos->second];
        c.rank[static_cast<size_t>(source)] = static_cast<int16_t>(rank);
        c.source_score[static_cast<size_t>(source)] = it->score;
        c.score += mix.weight[static_cast<size_t>(source)] / (kSimilarRankConstant + static_cast<float>(rank));
        if (anchors_of != nullptr && c.anchor < 0) {
          auto a = anchors_of->find(row);
          if (a != anchors_of->end()) c.anchor = a->second.anchor;
        }
        ++rank;
      }
    };

    if (on(kSimilarEmbedding)) {
      s->list.clear();
      const int64_t* labels = s->labels.data() + q * static_cast<size_t>(search_k);
      const float* scores = s->scores.data() + q * static_cast<size_t>(search_k);
      for (int i = 0; i < search_k; ++i) {
        if (labels[i] >= 0) s->list.push_back({static_cast<uint32_t>(labels[i]), scores[i]});
      }
      add(kSimilarEmbedding, s->list.data(), s->list.data() + s->list.size(), nullptr);
    }
    if (on(kSimilarBoughtTogether) && tables_ != nullptr) {
      // Summed over the anchors; a row's anchor is its largest contributor.
      s->acc.clear();
      for (uint32_t a : anchor) {
        for (const ScoredArticle* it = tables_->neighbours_begin(a); it != tables_->neighbours_end(a); ++it) {
          Scratch::Gathered& e = s->acc[it->article];
          e.sum += it->score;
          if (e.anchor < 0 || it->score > e.best) {
            e.best = it->score;
            e.anchor = static_cast<int32_t>(a);
          }
        }
      }
      s->list.clear();
      for (const auto& [row, e] : s->acc) s->list.push_back({row, static_cast<float>(e.sum)});
      std::sort(s->list.begin(), s->list.end(), Better);
      add(kSimilarBoughtTogether, s->list.data(), s->list.data() + s->list.size(), &s->acc);
    }
    if (on(kSimilarSameProduct)) {
      s->acc.clear();
      s->list.clear();
      for (uint32_t a : anchor) {
        if (tables_ != nullptr) {
          for (const ScoredArticle* it = tables_->siblings_begin(a); it != tables_->siblings_end(a); ++it) {
            if (s->acc.emplace(it->article, Scratch::Gathered{0, 0, static_cast<int32_t>(a)}).second) {
              s->list.push_back(*it);
            }
          }
        } else {
          for (uint32_t row : product_rows(a)) {
            if (s->acc.emplace(row, Scratch::Gathered{0, 0, static_cast<int32_t>(a)}).second)
              s->list.push_back({row, 0});
          }
        }
      }
      std::stable_sort(s->list.begin(), s->list.end(), Better);
      add(kSimilarSameProduct, s->list.data(), s->list.data() + s->list.size(), &s->acc);
    }
    if (on(kSimilarPopularInType) && tables_ != nullptr) {
      // The anchors' types' best sellers now, merged by their sales.
      s->list.clear();
      std::vector<int32_t> types;
      for (uint32_t a : anchor) {
        const int32_t t = product_types_[a];
        if (std::find(types.begin(), types.end(), t) != types.end()) continue;
        types.push_back(t);
        auto [begin, end] = tables_->selling(t);
        s->list.insert(s->list.end(), begin, end);
      }
      std::sort(s->list.begin(), s->list.end(), Better);
      add(kSimilarPopularInType, s->list.data(), s->list.data() + s->list.size(), nullptr);
    }
    std::sort(cands.begin(), cands.end(), [](const SimilarCandidate& a, const SimilarCandidate& b) {
      return a.score != b.score ? a.score > b.score : a.row < b.row;
    });
  }
}

}  // namespace hmrec
