#include "candidates/sources.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

namespace hmrec {
namespace {

// Adds `article` as proposed by `source` at `rank` with `score`; returns its
// candidate.
Candidate& Propose(int source, uint32_t article, int rank, float score, CandidateScratch* s,
                   std::vector<Candidate>* out) {
  const bool fresh = !s->index.contains(article);
  uint32_t& position = s->index[article];
  if (fresh) {
    position = static_cast<uint32_t>(out->size());
    out->emplace_back();
    out->back().article = article;
  }
  Candidate& c = (*out)[position];
  if (c.rank[source] < 0) {
    c.rank[source] = static_cast<int16_t>(std::min(rank, 32767));
    c.score[source] = score;
  }
  return c;
}

// Best first: higher score, then lower article row (a total order, so any
// sort gives one result). A function object, so the sorts inline it.
struct Better {
  bool operator()(const ScoredArticle& a, const ScoredArticle& b) const {
    return a.score != b.score ? a.score > b.score : a.article < b.article;
  }
};

// A list read best first, sorted only as far as it is read: a source takes
// its quota from lists of up to hundreds, so sorting the whole list was
// most of the candidates' sorting time. The prefix read is exactly the
// fully sorted list's (Better is a total order).
class BestFirst {
 public:
  explicit BestFirst(std::vector<ScoredArticle>* v) : v_(v) {}
  size_t size() const { return v_->size(); }
  const ScoredArticle& operator[](size_t r) {
    if (r >= sorted_) {
      // The rest are all worse than the sorted prefix: sort their best next.
      // (Selecting them and sorting only those is linear in the list, where
      // a partial sort's heap costs a log factor on every element.)
      const size_t upto = std::min(v_->size(), std::max({r + 1, 2 * sorted_, size_t{16}}));
      const auto first = v_->begin() + static_cast<std::ptrdiff_t>(sorted_);
      const auto last = v_->begin() + static_cast<std::ptrdiff_t>(upto);
      if (last != v_->end()) std::nth_element(first, last - 1, v_->end(), Better{});
      std::sort(first, last, Better{});
      sorted_ = upto;
    }
    return (*v_)[r];
  }

 private:
  std::vector<ScoredArticle>* v_;
  size_t sorted_ = 0;
};

}  // namespace

const char* SourceName(int source) {
  static const char* const kNames[kNumSources] = {"repurchase",      "two_tower",   "copurchase", "same_product",
                                                  "segment_popular", "trending",    "taste",      "new_arrival",
                                                  "neighbours",      "style_buyers"};
  return source >= 0 && source < kNumSources ? kNames[source] : "unknown";
}

std::vector<int64_t> TwoTowerSearchRows(const RankingTables& tables, const config::RankingConfig& cfg,
                                        int64_t trained_articles) {
  std::vector<int64_t> rows;
  const int64_t n = static_cast<int64_t>(tables.num_articles());
  const int64_t trained = trained_articles < 0 ? n : std::min(n, trained_articles);
  if (cfg.two_tower_active_weeks() >= 0) {
    const int32_t since = tables.day() - 7 * cfg.two_tower_active_weeks();
    for (int64_t a = 0; a < n; ++a) {
      const int32_t last = tables.stats(static_cast<uint32_t>(a)).last_sale_day;
      if ((last != ArticleStats::kNoDay && last >= since) || a >= trained) rows.push_back(a);
    }
    if (static_cast<int64_t>(rows.size()) >= cfg.two_tower_candidates()) return rows;
  }
  rows.resize(static_cast<size_t>(n));
  std::iota(rows.begin(), rows.end(), 0);
  return rows;
}

ArticleFilter::ArticleFilter(std::vector<uint8_t> allowed, const RankingTables* tables)
    : allowed_(std::move(allowed)), segments_(kAgeBands + 1) {
  for (size_t row = 0; row < allowed_.size(); ++row) {
    if (allowed_[row] != 0) rows_.push_back(static_cast<int64_t>(row));
  }
  if (tables == nullptr) return;
  auto keep = [&](const std::vector<ScoredArticle>& from, std::vector<Entry>* to) {
    for (size_t r = 0; r < from.size(); ++r) {
      if (allows(from[r].article)) to->push_back({from[r], static_cast<int32_t>(r)});
    }
  };
  for (int b = 0; b <= kAgeBands; ++b) keep(tables->segment(b), &segments_[static_cast<size_t>(b)]);
  keep(tables->trending(), &trending_);
}

void GenerateCandidates(const CustomerView& view, const RankingTables& tables, const TwoTowerHits& two_tower,
                        const config::RankingConfig& cfg, CandidateScratch* s, std::vector<Candidate>* out,
                        const ArticleFilter* filter) {
  auto allowed = [filter](uint32_t row) { return filter == nullptr || filter->allows(row); };
  const size_t num_articles = tables.num_articles();
  out->clear();
  s->index.Reset(num_articles);
  const int32_t today = view.as_of - 1;  // ages count from the last day before as_of
  const double half_life = cfg.repurchase_half_life_days();

  // The first `quota` allowed articles of a best-first list, each at its
  // rank in the whole list (under a filter, the ones after a disallowed
  // article keep the rank the ranker was trained on).
  auto propose_allowed = [&](int source, auto& list, int quota) {
    for (int r = 0, taken = 0; static_cast<size_t>(r) < list.size() && taken < quota; ++r) {
      const ScoredArticle& a = list[r];
      if (!allowed(a.article)) continue;
      Propose(source, a.article, r, a.score, s, out);
      ++taken;
    }
  };

  // Repurchase: time-decayed count of each article the customer bought.
  s->acc.Reset(num_articles);
  PurchaseWeights(view, half_life, &s->weights);
  for (size_t i = 0; i < view.purchases.size(); ++i) s->acc[view.purchases[i].article] += s->weights[i];
  s->list.clear();
  for (uint32_t a : s->acc.touched()) s->list.push_back({a, static_cast<float>(s->acc.get(a))});
  BestFirst repurchase(&s->list);
  propose_allowed(kRepurchase, repurchase, cfg.repurchase_candidates());

  // Two-tower: as the search returned them.
  for (int r = 0, taken = 0; r < two_tower.count && taken < cfg.two_tower_candidates(); ++r) {
    if (two_tower.articles[r] < 0 || static_cast<size_t>(two_tower.articles[r]) >= tables.num_articles() ||
        !allowed(static_cast<uint32_t>(two_tower.articles[r]))) {
      continue;
    }
    Propose(kTwoTower, static_cast<uint32_t>(two_tower.articles[r]), taken++, two_tower.scores[r], s, out);
  }

  // Anchors: the customer's most recent distinct articles, newest first.
  s->anchors.clear();
  for (auto p = view.purchases.rbegin(); p != view.purchases.rend(); ++p) {
    if (static_cast<int>(s->anchors.size()) >= cfg.copurchase_anchors()) break;
    bool seen = false;
    for (const auto& [a, d] : s->anchors) seen = seen || a == p->article;
    if (!seen) s->anchors.emplace_back(p->article, p->day);
  }

  // Co-purchase: neighbours of the anchors, weighted by the anchor's recency.
  s->copurchase.Reset(num_articles);
  for (const auto& [a, d] : s->anchors) {
    const double w = Decay(today - d, half_life);
    for (const ScoredArticle* n = tables.neighbours_begin(a); n != tables.neighbours_end(a); ++n) {
      const double contribution = w * n->score;
      const bool fresh = !s->copurchase.contains(n->article);
      CandidateScratch::CoPurchase& x = s->copurchase[n->article];
      x.sum += contribution;
      if (fresh || contribution > x.best) {
        x.best = contribution;
        x.anchor = a;
      }
    }
  }
  s->list.clear();
  for (uint32_t b : s->copurchase.touched()) s->list.push_back({b, static_cast<float>(s->copurchase.get(b).sum)});
  BestFirst copurchase(&s->list);
  for (int r = 0, taken = 0; static_cast<size_t>(r) < copurchase.size() && taken < cfg.copurchase_candidates(); ++r) {
    const ScoredArticle& b = copurchase[r];
    if (!allowed(b.article)) continue;
    Candidate& c = Propose(kCoPurchase, b.article, r, b.score, s, out);
    c.copurchase_anchor = static_cast<int32_t>(s->copurchase.get(b.article).anchor);
    ++taken;
  }

  // Same product: the anchors' siblings (newest anchor first, best-selling
  // sibling first), scored by the anchor's recency.
  int taken = 0;
  for (const auto& [a, d] : s->anchors) {
    const float w = static_cast<float>(Decay(today - d, half_life));
    for (const ScoredArticle* sib = tables.siblings_begin(a);
         sib != tables.siblings_end(a) && taken < cfg.same_product_candidates(); ++sib) {
      if (sib->article == a || !allowed(sib->article)) continue;
      if (s->index.contains(sib->article) && (*out)[s->index.get(sib->article)].from(kSameProduct)) continue;
      Candidate& c = Propose(kSameProduct, sib->article, taken++, w, s, out);
      c.product_anchor = static_cast<int32_t>(a);
    }
  }

  // Taste and new arrivals: what sells now, and what was first sold in the
  // last days, within the customer's most bought product types
  // (time-decayed), each article scored by its type's share times how its
  // other attributes match the customer's shares, times log sales (per day
  // since the first sale, for new arrivals).
  // The style buyers source (below) reads the same taste.
  const bool taste_read =
      cfg.taste_candidates() > 0 || cfg.new_arrival_candidates() > 0 || cfg.style_buyers_candidates() > 0;
  if (taste_read) BuildTaste(view, tables, s->weights, &s->taste);
  if ((cfg.taste_candidates() > 0 || cfg.new_arrival_candidates() > 0) && !view.purchases.empty()) {
    const double total = s->taste.total;
    s->types.clear();
    for (uint32_t code : s->taste.weight.added(1)) {
      s->types.emplace_back(s->taste.weight.of(1, code), tables.value_of(1, code));
    }
    const size_t keep = std::min(s->types.size(), static_cast<size_t>(std::max(0, cfg.taste_types())));
    std::partial_sort(
        s->types.begin(), s->types.begin() + static_cast<std::ptrdiff_t>(keep), s->types.end(),
        [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
    // Each list of the customer's types, scored by the type's share x how
    // the article's other attributes match x log(1 + its table score).
    auto propose_matched = [&](auto lists_of, auto log1p_of, int source, int quota) {
      s->list.clear();
      for (size_t t = 0; t < keep && total > 0 && quota > 0; ++t) {
        const double type_share = s->types[t].first / total;
        const auto [first, last] = lists_of(s->types[t].second);
        for (const ScoredArticle* a = first; a != last; ++a) {
          if (!allowed(a->article)) continue;
          const uint32_t* codes = tables.codes(a->article);
          double match = 0;
          for (int i = 0; i < kAffinityAttributes; ++i) {
            if (i == 1) continue;                              // the type itself
            match += s->taste.weight.of(i, codes[i]) / total;  // 0 for a value never bought
          }
          const double score = type_share * (0.25 + match / (kAffinityAttributes - 1)) * log1p_of(a);
          s->list.push_back({a->article, static_cast<float>(score)});
        }
      }
      BestFirst matched(&s->list);
      for (int r = 0; static_cast<size_t>(r) < matched.size() && r < quota; ++r) {
        Propose(source, matched[r].article, r, matched[r].score, s, out);
      }
    };
    propose_matched([&](int32_t type) { return tables.selling(type); },
                    [&](const ScoredArticle* a) { return tables.selling_log1p(a); }, kTaste, cfg.taste_candidates());
    propose_matched([&](int32_t type) { return tables.new_arrivals(type); },
                    [&](const ScoredArticle* a) { return tables.new_arrival_log1p(a); }, kNewArrival,
                    cfg.new_arrival_candidates());
  }

  // Neighbours: the articles of the customer's cluster.
  if (cfg.neighbour_candidates() > 0 && two_tower.embedding != nullptr) {
    const int cluster = tables.ClusterOf(two_tower.embedding, two_tower.dim);
    if (cluster >= 0) {
      const auto [first, last] = tables.cluster_articles(cluster);
      struct Sorted {  // the table's list, already best first
        const ScoredArticle* first;
        size_t n;
        size_t size() const { return n; }
        const ScoredArticle& operator[](size_t r) const { return first[r]; }
      } sorted{first, static_cast<size_t>(last - first)};
      propose_allowed(kNeighbours, sorted, cfg.neighbour_candidates());
    }
  }

  // Style buyers: each value of the customer's style profile brings what
  // its buyers bought lately, weighted by the customer's share of it.
  if (cfg.style_buyers_candidates() > 0 && !view.purchases.empty()) {
    StyleProfile(s->taste, tables, &s->style);
    s->acc.Reset(num_articles);
    for (const StyleValue& v : s->style) {
      const auto [first, last] = tables.style_buyers(v.key);
      for (const ScoredArticle* a = first; a != last; ++a) {
        if (allowed(a->article)) s->acc[a->article] += static_cast<double>(v.share) * a->score;
      }
    }
    s->list.clear();
    for (uint32_t a : s->acc.touched()) {
      s->list.push_back({a, static_cast<float>(s->acc.get(a) / kAffinityAttributes)});
    }
    BestFirst best(&s->list);
    for (int r = 0; static_cast<size_t>(r) < best.size() && r < cfg.style_buyers_candidates(); ++r) {
      Propose(kStyleBuyers, best[r].article, r, best[r].score, s, out);
    }
  }

  // Popular in the customer's age band, and trending.
  if (filter != nullptr) {
    const std::vector<ArticleFilter::Entry>& segment = filter->segment(AgeBand(view.age));
    for (int x = 0; x < static_cast<int>(segment.size()) && x < cfg.segment_candidates(); ++x) {
      Propose(kSegmentPopular, segment[x].article.article, segment[x].rank, segment[x].article.score, s, out);
    }
    const std::vector<ArticleFilter::Entry>& trending = filter->trending();
    for (int x = 0; x < static_cast<int>(trending.size()) && x < cfg.trending_candidates(); ++x) {
      Propose(kTrending, trending[x].article.article, trending[x].rank, trending[x].article.score, s, out);
    }
    return;
  }
  const std::vector<ScoredArticle>& segment = tables.segment(AgeBand(view.age));
  for (int r = 0; r < static_cast<int>(segment.size()) && r < cfg.segment_candidates(); ++r) {
    Propose(kSegmentPopular, segment[r].article, r, segment[r].score, s, out);
  }
  const std::vector<ScoredArticle>& trending = tables.trending();
  for (int r = 0; r < static_cast<int>(trending.size()) && r < cfg.trending_candidates(); ++r) {
    Propose(kTrending, trending[r].article, r, trending[r].score, s, out);
  }
}

void HeuristicOrder(const std::vector<Candidate>& candidates, std::vector<uint32_t>* order) {
  static constexpr int kPriority[] = {kRepurchase, kCoPurchase,  kSameProduct,    kTwoTower, kTaste,
                                      kNeighbours, kStyleBuyers, kSegmentPopular, kTrending, kNewArrival};
  auto key = [&](const Candidate& c) {
    for (int p = 0; p < kNumSources; ++p) {
      if (c.from(kPriority[p])) return std::make_pair(p, static_cast<int>(c.rank[kPriority[p]]));
    }
    return std::make_pair(kNumSources, 0);
  };
  order->resize(candidates.size());
  std::iota(order->begin(), order->end(), 0u);
  std::stable_sort(order->begin(), order->end(),
                   [&](uint32_t a, uint32_t b) { return key(candidates[a]) < key(candidates[b]); });
}

}  // namespace hmrec
