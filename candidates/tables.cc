#include "candidates/tables.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <numeric>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "candidates/clusters.h"
#include "candidates/ranking_config.h"
#include "common/binary_io.h"
#include "common/status_macros.h"

namespace hmrec {
namespace {

constexpr uint32_t kMagic = 0x4b4e5248;  // "HRNK"
constexpr uint32_t kFormat = 7;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
// A customer's purchases in the co-purchase window beyond this many (the
// most recent kept) add pairs quadratically and say little more.
constexpr size_t kMaxPairsPerCustomer = 64;
// Neighbour clusters: at least this many buyers each on average, and the
// k-means rounds.
constexpr size_t kMinBuyersPerCluster = 50;
constexpr int kClusterIterations = 10;

// Sorts best first (higher score, then lower article) and keeps `n`.
void KeepBest(std::vector<ScoredArticle>* v, size_t n) {
  auto better = [](const ScoredArticle& a, const ScoredArticle& b) {
    return a.score != b.score ? a.score > b.score : a.article < b.article;
  };
  if (v->size() > n) {
    std::partial_sort(v->begin(), v->begin() + static_cast<std::ptrdiff_t>(n), v->end(), better);
    v->resize(n);
  } else {
    std::sort(v->begin(), v->end(), better);
  }
}

// Each type's list best first, cut to `depth`, packed in type order.
RankingTables::ByType MakeByType(std::map<int32_t, std::vector<ScoredArticle>>* lists, size_t depth) {
  RankingTables::ByType b;
  b.offsets.push_back(0);
  for (auto& [type, v] : *lists) {
    KeepBest(&v, depth);
    b.types.push_back(type);
    b.articles.insert(b.articles.end(), v.begin(), v.end());
    b.offsets.push_back(b.articles.size());
  }
  return b;
}

// Adds each article of `unsold` (never sold; with its product type) to its
// type's list of `arrivals` at the median score of the type's articles that
// sold (of every type's when the type has none; one sale a day when none
// sold at all): what an article of the type sells in its first days, its
// best guess until it sells.
void AddUnsoldArrivals(const std::vector<std::pair<uint32_t, int32_t>>& unsold,
                       std::map<int32_t, std::vector<ScoredArticle>>* arrivals) {
  if (unsold.empty()) return;
  auto median = [](std::vector<float> v, float otherwise) {
    if (v.empty()) return otherwise;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  std::vector<float> all;
  std::map<int32_t, float> prior;
  for (const auto& [type, v] : *arrivals) {
    std::vector<float> scores;
    for (const ScoredArticle& s : v) scores.push_back(s.score);
    all.insert(all.end(), scores.begin(), scores.end());
    prior[type] = median(std::move(scores), 0.0f);
  }
  const float overall = median(std::move(all), 1.0f);
  for (const auto& [article, type] : unsold) {
    const auto p = prior.find(type);
    (*arrivals)[type].push_back({article, p != prior.end() && p->second > 0 ? p->second : overall});
  }
}

}  // namespace

int AgeBand(int age) {
  if (age < 0) return kUnknownAgeBand;
  if (age < 20) return 0;
  if (age >= 65) return kAgeBands - 1;
  return 1 + (age - 20) / 5;  // 20-24 -> 1 ... 60-64 -> 9
}

const ScoredArticle* RankingTables::siblings_begin(uint32_t article) const {
  return products_.data() + product_offsets_[product_of_[article]];
}
const ScoredArticle* RankingTables::siblings_end(uint32_t article) const {
  return products_.data() + product_offsets_[product_of_[article] + 1];
}

int RankingTables::ClusterOf(const float* embedding, int dim) const {
  if (dim != cluster_dim_ || num_clusters() == 0) return -1;
  return NearestCentroid(centroids_.data(), num_clusters(), dim, embedding);
}

double Decay(int32_t days, double half_life) { return std::exp2(-std::max(0, days) / half_life); }

void PurchaseWeights(const CustomerView& view, double half_life, std::vector<double>* out) {
  out->resize(view.purchases.size());
  const int32_t today = view.as_of - 1;
  // A view is in time order: one exp2 a day bought on, not a purchase.
  for (size_t i = 0; i < view.purchases.size(); ++i) {
    (*out)[i] = i > 0 && view.purchases[i].day == view.purchases[i - 1].day
                    ? (*out)[i - 1]
                    : Decay(today - view.purchases[i].day, half_life);
  }
}

void BuildTaste(const CustomerView& view, const RankingTables& tables, const std::vector<double>& weights, Taste* out) {
  out->weight.Reset(tables);
  out->total = 0;
  for (size_t p = 0; p < view.purchases.size(); ++p) {
    const double w = weights[p];
    const uint32_t* codes = tables.codes(view.purchases[p].article);
    for (int i = 0; i < kAffinityAttributes; ++i) out->weight.Add(i, codes[i], w);
    out->total += w;
  }
}

void StyleProfile(const Taste& taste, const RankingTables& tables, std::vector<StyleValue>* out) {
  out->clear();
  if (taste.total <= 0) return;
  for (int i = 0; i < kAffinityAttributes; ++i) {
    for (uint32_t code : taste.weight.added(i)) {
      const double share = taste.weight.of(i, code) / taste.total;
      if (share >= kStyleMinShare) out->push_back({StyleKey(i, tables.value_of(i, code)), static_cast<float>(share)});
    }
  }
  std::sort(out->begin(), out->end(), [](const StyleValue& a, const StyleValue& b) { return a.key < b.key; });
}

void RankingTables::IndexAttributes() {
  const size_t n = attributes_.size();
  codes_.resize(n * kAffinityAttributes);
  for (int i = 0; i < kAffinityAttributes; ++i) {
    code_values_[i].clear();
    absl::flat_hash_map<int32_t, uint32_t> code_of;
    for (size_t a = 0; a < n; ++a) {
      const int32_t v = AffinityAttribute(attributes_[a], i);
      const auto [it, inserted] = code_of.emplace(v, static_cast<uint32_t>(code_values_[i].size()));
      if (inserted) code_values_[i].push_back(v);
      codes_[a * kAffinityAttributes + static_cast<size_t>(i)] = it->second;
    }
  }
}

RankingTables RankingTables::Build(const Dataset& ds, const CustomerHistory& history, int32_t day,
                                   const config::RankingConfig& cfg, const BuyerEmbeddings* recent) {
  RankingTables t;
  t.day_ = day;
  const size_t n = ds.articles.size();
  t.stats_.assign(n, ArticleStats());
  t.attributes_.resize(n);
  for (size_t a = 0; a < n; ++a) {
    const Article& x = ds.articles[a];
    t.attributes_[a] = {x.product_code, x.index_group_no, x.product_type_no, x.colour_group_code,
                        x.section_no,   x.department_no,  x.garment_group_no};
  }
  t.IndexAttributes();

  // Article sales, prices, buyers' ages and channels before `day`.
  const Transactions& tx = ds.transactions;
  std::vector<double> price_sum(n, 0), age_sum(n, 0), age_n(n, 0), online(n, 0);
  std::vector<float> last_price(n, kNaN);
  std::vector<int32_t> last_price_day(n, ArticleStats::kNoDay);
  const int seg_window = cfg.segment_window_days();
  std::vector<std::vector<float>> segment_score(kAgeBands + 1, std::vector<float>(n, 0.0f));
  t.band_sales_.assign((kAgeBands + 1) * n, BandSales());
  t.band_totals_.assign((kAgeBands + 1) * 2, 0.0f);
  for (size_t i = 0; i < tx.size(); ++i) {
    const int32_t d = tx.day[i];
    if (d >= day) continue;
    const uint32_t a = tx.article[i];
    ArticleStats& s = t.stats_[a];
    s.sales_all += 1;
    if (s.first_sale_day == ArticleStats::kNoDay || d < s.first_sale_day) s.first_sale_day = d;
    if (s.last_sale_day == ArticleStats::kNoDay || d > s.last_sale_day) s.last_sale_day = d;
    if (d >= last_price_day[a]) {
      last_price_day[a] = d;
      last_price[a] = tx.price[i];
    }
    const int32_t age_days = day - 1 - d;  // 0 for the last day before `day`
    const size_t band = static_cast<size_t>(AgeBand(ds.customers[tx.customer[i]].age));
    if (age_days < 28) {
      for (size_t b : {band, static_cast<size_t>(kUnknownAgeBand)}) {
        if (age_days < 7) {
          t.band_sales_[b * n + a].w1 += 1;
          t.band_totals_[b * 2] += 1;
        }
        t.band_sales_[b * n + a].w4 += 1;
        t.band_totals_[b * 2 + 1] += 1;
        if (band == kUnknownAgeBand) break;
      }
      s.sales_4w += 1;
      price_sum[a] += tx.price[i];
      online[a] += tx.sales_channel[i] == 2;
      const int age = ds.customers[tx.customer[i]].age;
      if (age >= 0) {
        age_sum[a] += age;
        age_n[a] += 1;
      }
    }
    if (age_days < 7) s.sales_1w += 1;
    if (age_days >= 7 && age_days < 14) s.sales_prev_1w += 1;
    if (age_days < seg_window) {
      // Weighted towards the last days of the window (half-life of half the
      // window): what sells now, not what sold a week ago.
      const float w = std::exp2(-static_cast<float>(age_days) / std::max(1.0f, seg_window / 2.0f));
      segment_score[static_cast<size_t>(AgeBand(ds.customers[tx.customer[i]].age))][a] += w;
      segment_score[kUnknownAgeBand][a] += w;
    }
  }
  for (size_t a = 0; a < n; ++a) {
    ArticleStats& s = t.stats_[a];
    s.mean_price = s.sales_4w > 0 ? static_cast<float>(price_sum[a] / s.sales_4w) : last_price[a];
    s.buyer_age_mean = age_n[a] > 0 ? static_cast<float>(age_sum[a] / age_n[a]) : kNaN;
    s.online_share = s.sales_4w > 0 ? static_cast<float>(online[a] / s.sales_4w) : kNaN;
  }

  // Segment lists and trending: every article that qualifies, best first
  // (the sources take their first segment_candidates / trending_candidates,
  // or, under a request's filter, the first that pass it).
  t.segments_.resize(kAgeBands + 1);
  for (size_t b = 0; b <= kAgeBands; ++b) {
    std::vector<ScoredArticle> v;
    for (size_t a = 0; a < n; ++a) {
      if (segment_score[b][a] > 0) v.push_back({static_cast<uint32_t>(a), segment_score[b][a]});
    }
    KeepBest(&v, v.size());
    t.segments_[b] = std::move(v);
  }
  {
    std::vector<ScoredArticle> v;
    for (size_t a = 0; a < n; ++a) {
      const ArticleStats& s = t.stats_[a];
      if (s.sales_1w < 2 || s.sales_1w <= s.sales_prev_1w) continue;
      // Growth, damped for articles that sell little.
      v.push_back({static_cast<uint32_t>(a), (s.sales_1w + 1) / (s.sales_prev_1w + 1) * std::log1p(s.sales_1w)});
    }
    KeepBest(&v, v.size());
    t.trending_ = std::move(v);
  }

  // Best sellers now by product type, and new arrivals (first sold in the
  // last new_arrival_days) by their sales per day since. (Articles never
  // sold yet are left out here: listed as arrivals at their type's median
  // they cost MAP@12 on every seed, docs/QUALITY.md "Unsold articles as new
  // arrivals"; a catalogue refresh lists the articles it adds.)
  {
    std::map<int32_t, std::vector<ScoredArticle>> selling, arrivals;
    const int32_t tday = day - 1;
    for (size_t a = 0; a < n; ++a) {
      const ArticleStats& s = t.stats_[a];
      const float now = s.sales_1w + 0.5f * s.sales_prev_1w;
      const int32_t type = t.attributes_[a].product_type;
      if (now > 0) selling[type].push_back({static_cast<uint32_t>(a), now});
      if (s.first_sale_day != ArticleStats::kNoDay && tday - s.first_sale_day < cfg.new_arrival_days()) {
        const float rate = (s.sales_1w + s.sales_prev_1w) / static_cast<float>(tday - s.first_sale_day + 1);
        arrivals[type].push_back({static_cast<uint32_t>(a), rate});
      }
    }
    const size_t depth = static_cast<size_t>(std::max(1, cfg.taste_depth()));
    t.selling_ = MakeByType(&selling, depth);
    t.new_arrivals_ = MakeByType(&arrivals, depth);
    t.selling_.DeriveLog1p();
    t.new_arrivals_.DeriveLog1p();
  }

  // Style buyers: for each attribute value, what the customers whose
  // profile (as of the day) holds it bought in the window. Runs with the
  // source off too (no buyers read): an empty table still needs its
  // offsets {0} to load.
  {
    const int32_t window = std::max(1, cfg.style_buyers_window_days());
    absl::flat_hash_map<int32_t, absl::flat_hash_map<uint32_t, double>> bought;
    absl::flat_hash_map<int32_t, double> total;
    const HistoryLimits limits = HistoryLimitsOf(cfg);
    CustomerView view;
    std::vector<double> weights;
    Taste taste;
    std::vector<StyleValue> profile;
    for (uint32_t c = 0; c < history.num_customers() && cfg.style_buyers_candidates() > 0; ++c) {
      const size_t end = history.CountBefore(c, day);
      const int32_t* days = history.days(c);
      if (end == 0 || days[end - 1] < day - window) continue;
      BuildCustomerView(history, c, ds.customers[c].age, day, limits, &view);
      PurchaseWeights(view, cfg.repurchase_half_life_days(), &weights);
      BuildTaste(view, t, weights, &taste);
      StyleProfile(taste, t, &profile);
      const uint32_t* arts = history.articles(c);
      for (size_t j = static_cast<size_t>(std::lower_bound(days, days + end, day - window) - days); j < end; ++j) {
        const double w = Decay(day - 1 - days[j], window / 2.0);
        for (const StyleValue& v : profile) {
          bought[v.key][arts[j]] += w * v.share;
          total[v.key] += w * v.share;
        }
      }
    }
    std::map<int32_t, std::vector<ScoredArticle>> lists;
    for (const auto& [key, articles] : bought) {
      std::vector<ScoredArticle>& v = lists[key];
      const double sum = total[key];
      for (const auto& [a, w] : articles) v.push_back({a, static_cast<float>(w / sum)});
    }
    t.style_buyers_ = MakeByType(&lists, static_cast<size_t>(std::max(1, cfg.style_buyers_depth())));
  }

  // Product groups: every article of a product_code, by recent sales.
  absl::flat_hash_map<int32_t, uint32_t> group_of_code;
  t.product_of_.resize(n);
  for (size_t a = 0; a < n; ++a) {
    auto [it, inserted] =
        group_of_code.emplace(t.attributes_[a].product_code, static_cast<uint32_t>(group_of_code.size()));
    t.product_of_[a] = it->second;
  }
  t.product_offsets_.assign(group_of_code.size() + 1, 0);
  for (size_t a = 0; a < n; ++a) ++t.product_offsets_[t.product_of_[a] + 1];
  std::partial_sum(t.product_offsets_.begin(), t.product_offsets_.end(), t.product_offsets_.begin());
  t.products_.resize(n);
  {
    std::vector<uint64_t> next(t.product_offsets_.begin(), t.product_offsets_.end() - 1);
    for (size_t a = 0; a < n; ++a) {
      t.products_[next[t.product_of_[a]]++] = {static_cast<uint32_t>(a), t.stats_[a].sales_1w};
    }
    for (size_t g = 0; g + 1 < t.product_offsets_.size(); ++g) {
      auto b = t.products_.begin() + static_cast<std::ptrdiff_t>(t.product_offsets_[g]);
      auto e = t.products_.begin() + static_cast<std::ptrdiff_t>(t.product_offsets_[g + 1]);
      std::sort(b, e, [&](const ScoredArticle& x, const ScoredArticle& y) {
        if (x.score != y.score) return x.score > y.score;
        const float x4 = t.stats_[x.article].sales_4w, y4 = t.stats_[y.article].sales_4w;
        return x4 != y4 ? x4 > y4 : x.article < y.article;
      });
    }
  }

  // Co-purchase: pairs of articles one customer bought within max_gap days
  // of each other during the window, counted once per pair of rows.
  const int32_t window_start = day - cfg.copurchase_window_days();
  const int32_t gap = cfg.copurchase_max_gap_days();
  std::vector<uint64_t> pairs;
  std::vector<float> buyers(n, 0);
  for (uint32_t c = 0; c < history.num_customers(); ++c) {
    const size_t end = history.CountBefore(c, day);
    const int32_t* days = history.days(c);
    size_t begin = static_cast<size_t>(std::lower_bound(days, days + end, window_start) - days);
    if (end - begin > kMaxPairsPerCustomer) begin = end - kMaxPairsPerCustomer;
    const uint32_t* arts = history.articles(c);
    for (size_t i = begin; i < end; ++i) {
      buyers[arts[i]] += 1;
      for (size_t j = i + 1; j < end && days[j] - days[i] <= gap; ++j) {
        if (arts[i] == arts[j]) continue;
        pairs.push_back(static_cast<uint64_t>(arts[i]) << 32 | arts[j]);
        pairs.push_back(static_cast<uint64_t>(arts[j]) << 32 | arts[i]);
      }
    }
  }
  std::sort(pairs.begin(), pairs.end());
  const size_t keep = static_cast<size_t>(std::max(1, cfg.copurchase_neighbours()));
  t.neighbour_offsets_.assign(n + 1, 0);
  std::vector<ScoredArticle> row;
  for (size_t i = 0; i < pairs.size();) {
    const uint32_t a = static_cast<uint32_t>(pairs[i] >> 32);
    row.clear();
    while (i < pairs.size() && static_cast<uint32_t>(pairs[i] >> 32) == a) {
      size_t j = i;
      while (j < pairs.size() && pairs[j] == pairs[i]) ++j;
      const uint32_t b = static_cast<uint32_t>(pairs[i]);
      row.push_back({b, static_cast<float>((j - i) / std::sqrt(static_cast<double>(buyers[a]) * buyers[b]))});
      i = j;
    }
    KeepBest(&row, keep);
    t.neighbour_offsets_[a + 1] = row.size();
    t.neighbours_.insert(t.neighbours_.end(), row.begin(), row.end());
  }
  std::partial_sum(t.neighbour_offsets_.begin(), t.neighbour_offsets_.end(), t.neighbour_offsets_.begin());

  // Neighbours: the recent buyers' clusters, each with its buyers'
  // articles in the window (half-life of half the window), by share.
  if (recent != nullptr && recent->dim > 0 && !recent->customers.empty()) {
    const size_t m = recent->customers.size();
    const int k = static_cast<int>(std::min<size_t>(static_cast<size_t>(std::max(1, cfg.neighbour_clusters())),
                                                    std::max<size_t>(1, m / kMinBuyersPerCluster)));
    std::vector<int32_t> assignment;
    t.centroids_ = SphericalKMeans(recent->values.data(), m, recent->dim, k, kClusterIterations,
                                   static_cast<uint64_t>(day), &assignment);
    t.cluster_dim_ = recent->dim;
    const int clusters = t.num_clusters();
    std::vector<absl::flat_hash_map<uint32_t, double>> bought(static_cast<size_t>(clusters));
    std::vector<double> total(static_cast<size_t>(clusters), 0.0);
    const int32_t window = std::max(1, cfg.neighbour_window_days());
    for (size_t i = 0; i < m && clusters > 0; ++i) {
      const uint32_t c = recent->customers[i];
      const size_t end = history.CountBefore(c, day);
      const int32_t* days = history.days(c);
      const uint32_t* arts = history.articles(c);
      const size_t cl = static_cast<size_t>(assignment[i]);
      for (size_t j = static_cast<size_t>(std::lower_bound(days, days + end, day - window) - days); j < end; ++j) {
        const double w = Decay(day - 1 - days[j], window / 2.0);
        bought[cl][arts[j]] += w;
        total[cl] += w;
      }
    }
    const size_t depth = static_cast<size_t>(std::max(1, cfg.taste_depth()));
    t.cluster_offsets_.assign(1, 0);
    std::vector<ScoredArticle> v;
    for (size_t cl = 0; cl < bought.size(); ++cl) {
      v.clear();
      for (const auto& [a, w] : bought[cl]) v.push_back({a, static_cast<float>(w / total[cl])});
      KeepBest(&v, depth);
      t.cluster_articles_.insert(t.cluster_articles_.end(), v.begin(), v.end());
      t.cluster_offsets_.push_back(t.cluster_articles_.size());
    }
  }
  return t;
}

RankingTables RankingTables::WithArticles(const std::vector<ArticleAttributes>& added) const {
  RankingTables t = *this;
  const size_t n = stats_.size(), total = n + added.size();
  if (added.empty()) return t;
  ArticleStats fresh;
  fresh.mean_price = fresh.buyer_age_mean = fresh.online_share = kNaN;
  t.stats_.resize(total, fresh);
  t.attributes_.insert(t.attributes_.end(), added.begin(), added.end());
  t.IndexAttributes();
  t.neighbour_offsets_.resize(total + 1, t.neighbour_offsets_.back());
  t.band_sales_.assign((kAgeBands + 1) * total, BandSales());
  for (size_t b = 0; b <= kAgeBands; ++b) {
    std::copy(band_sales_.begin() + static_cast<std::ptrdiff_t>(b * n),
              band_sales_.begin() + static_cast<std::ptrdiff_t>((b + 1) * n),
              t.band_sales_.begin() + static_cast<std::ptrdiff_t>(b * total));
  }

  // Product groups: an added article joins its code's group (a new colour of
  // a product) or opens one; each group's list keeps its order, the added
  // (no sales, later rows) last, as Build would sort them.
  absl::flat_hash_map<int32_t, uint32_t> group_of_code;
  for (size_t a = 0; a < n; ++a) group_of_code.emplace(attributes_[a].product_code, product_of_[a]);
  t.product_of_.resize(total);
  for (size_t a = n; a < total; ++a) {
    auto [it, inserted] =
        group_of_code.emplace(t.attributes_[a].product_code, static_cast<uint32_t>(group_of_code.size()));
    t.product_of_[a] = it->second;
  }
  const size_t groups = group_of_code.size();
  std::vector<std::vector<ScoredArticle>> extra(groups);
  for (size_t a = n; a < total; ++a) extra[t.product_of_[a]].push_back({static_cast<uint32_t>(a), 0.0f});
  t.product_offsets_.assign(1, 0);
  t.products_.clear();
  for (size_t g = 0; g < groups; ++g) {
    if (g + 1 < product_offsets_.size()) {
      t.products_.insert(t.products_.end(), products_.begin() + static_cast<std::ptrdiff_t>(product_offsets_[g]),
                         products_.begin() + static_cast<std::ptrdiff_t>(product_offsets_[g + 1]));
    }
    t.products_.insert(t.products_.end(), extra[g].begin(), extra[g].end());
    t.product_offsets_.push_back(t.products_.size());
  }

  // New arrivals: the added at the median of their type's articles that
  // sold (those a previous refresh listed are set aside for the medians).
  std::map<int32_t, std::vector<ScoredArticle>> arrivals, listed_unsold;
  for (size_t slot = 0; slot < new_arrivals_.types.size(); ++slot) {
    const int32_t type = new_arrivals_.types[slot];
    for (uint64_t i = new_arrivals_.offsets[slot]; i < new_arrivals_.offsets[slot + 1]; ++i) {
      const ScoredArticle& x = new_arrivals_.articles[i];
      (stats_[x.article].first_sale_day == ArticleStats::kNoDay ? listed_unsold : arrivals)[type].push_back(x);
    }
  }
  std::vector<std::pair<uint32_t, int32_t>> unsold;
  for (size_t a = n; a < total; ++a) unsold.emplace_back(static_cast<uint32_t>(a), t.attributes_[a].product_type);
  AddUnsoldArrivals(unsold, &arrivals);
  for (auto& [type, v] : listed_unsold) arrivals[type].insert(arrivals[type].end(), v.begin(), v.end());
  t.new_arrivals_ = MakeByType(&arrivals, total);
  t.new_arrivals_.DeriveLog1p();
  return t;
}

void RankingTables::ByType::DeriveLog1p() {
  log1p_scores.resize(articles.size());
  for (size_t i = 0; i < articles.size(); ++i) log1p_scores[i] = std::log1p(articles[i].score);
}

std::pair<const ScoredArticle*, const ScoredArticle*> RankingTables::ByType::of(int32_t type) const {
  const auto it = std::lower_bound(types.begin(), types.end(), type);
  if (it == types.end() || *it != type) return {articles.data(), articles.data()};
  const size_t slot = static_cast<size_t>(it - types.begin());
  return {articles.data() + offsets[slot], articles.data() + offsets[slot + 1]};
}

absl::Status RankingTables::Save(const std::string& path) const {
  ASSIGN_OR_RETURN(std::unique_ptr<BinaryWriter> w, BinaryWriter::Open(path));
  w->Pod(kMagic);
  w->Pod(kFormat);
  w->Pod(day_);
  w->Vector(stats_);
  w->Vector(attributes_);
  w->Vector(neighbour_offsets_);
  w->Vector(neighbours_);
  w->Vector(product_of_);
  w->Vector(product_offsets_);
  w->Vector(products_);
  w->Pod<uint64_t>(segments_.size());
  for (const auto& s : segments_) w->Vector(s);
  w->Vector(trending_);
  for (const ByType* b : {&selling_, &new_arrivals_, &style_buyers_}) {
    w->Vector(b->types);
    w->Vector(b->offsets);
    w->Vector(b->articles);
  }
  // The file keeps the two windows as two tables (format 4).
  std::vector<float> w1(band_sales_.size()), w4(band_sales_.size());
  for (size_t i = 0; i < band_sales_.size(); ++i) {
    w1[i] = band_sales_[i].w1;
    w4[i] = band_sales_[i].w4;
  }
  w->Vector(w1);
  w->Vector(w4);
  w->Vector(band_totals_);
  w->Pod(cluster_dim_);
  w->Vector(centroids_);
  w->Vector(cluster_offsets_);
  w->Vector(cluster_articles_);
  return w->Close();
}

absl::StatusOr<RankingTables> RankingTables::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<BinaryReader> r, BinaryReader::Open(path));
  uint32_t magic = 0, format = 0;
  RETURN_IF_ERROR(r->Pod(&magic));
  RETURN_IF_ERROR(r->Pod(&format));
  if (magic != kMagic || format != kFormat) return r->Corrupt("not ranking tables of this hmrec version");
  RankingTables t;
  RETURN_IF_ERROR(r->Pod(&t.day_));
  RETURN_IF_ERROR(r->Vector(&t.stats_));
  RETURN_IF_ERROR(r->Vector(&t.attributes_));
  RETURN_IF_ERROR(r->Vector(&t.neighbour_offsets_));
  RETURN_IF_ERROR(r->Vector(&t.neighbours_));
  RETURN_IF_ERROR(r->Vector(&t.product_of_));
  RETURN_IF_ERROR(r->Vector(&t.product_offsets_));
  RETURN_IF_ERROR(r->Vector(&t.products_));
  uint64_t bands = 0;
  RETURN_IF_ERROR(r->Pod(&bands));
  if (bands != kAgeBands + 1) return r->Corrupt("wrong number of segment lists");
  t.segments_.resize(bands);
  for (auto& s : t.segments_) RETURN_IF_ERROR(r->Vector(&s));
  RETURN_IF_ERROR(r->Vector(&t.trending_));
  for (ByType* b : {&t.selling_, &t.new_arrivals_, &t.style_buyers_}) {
    RETURN_IF_ERROR(r->Vector(&b->types));
    RETURN_IF_ERROR(r->Vector(&b->offsets));
    RETURN_IF_ERROR(r->Vector(&b->articles));
  }
  std::vector<float> band_1w, band_4w;
  RETURN_IF_ERROR(r->Vector(&band_1w));
  RETURN_IF_ERROR(r->Vector(&band_4w));
  RETURN_IF_ERROR(r->Vector(&t.band_totals_));
  RETURN_IF_ERROR(r->Pod(&t.cluster_dim_));
  RETURN_IF_ERROR(r->Vector(&t.centroids_));
  RETURN_IF_ERROR(r->Vector(&t.cluster_offsets_));
  RETURN_IF_ERROR(r->Vector(&t.cluster_articles_));
  RETURN_IF_ERROR(r->VerifyChecksum());
  // Every index must stay inside its table: a damaged file is refused here,
  // not read out of bounds later.
  const size_t n = t.stats_.size();
  bool ok = t.attributes_.size() == n && t.neighbour_offsets_.size() == n + 1 && t.product_of_.size() == n &&
            t.products_.size() == n && !t.product_offsets_.empty() && t.product_offsets_.back() == n &&
            t.neighbour_offsets_.back() == t.neighbours_.size() &&
            std::is_sorted(t.neighbour_offsets_.begin(), t.neighbour_offsets_.end()) &&
            std::is_sorted(t.product_offsets_.begin(), t.product_offsets_.end()) &&
            band_1w.size() == (kAgeBands + 1) * n && band_4w.size() == (kAgeBands + 1) * n &&
            t.band_totals_.size() == (kAgeBands + 1) * 2;
  if (ok) {
    t.band_sales_.resize(band_1w.size());
    for (size_t i = 0; i < band_1w.size(); ++i) t.band_sales_[i] = {band_1w[i], band_4w[i]};
  }
  for (uint32_t g : t.product_of_) ok = ok && g + 1 < t.product_offsets_.size();
  auto in_range = [n](const std::vector<ScoredArticle>& v) {
    return std::all_of(v.begin(), v.end(), [n](const ScoredArticle& s) { return s.article < n; });
  };
  ok = ok && in_range(t.neighbours_) && in_range(t.products_) && in_range(t.trending_);
  for (const ByType* b : {&t.selling_, &t.new_arrivals_, &t.style_buyers_}) {
    ok = ok && in_range(b->articles) && b->offsets.size() == b->types.size() + 1 && b->offsets.front() == 0 &&
         b->offsets.back() == b->articles.size() && std::is_sorted(b->offsets.begin(), b->offsets.end()) &&
         std::adjacent_find(b->types.begin(), b->types.end(), std::greater_equal<int32_t>()) == b->types.end();
  }
  for (const auto& s : t.segments_) ok = ok && in_range(s);
  ok = ok && t.cluster_dim_ >= 0 && in_range(t.cluster_articles_) && !t.cluster_offsets_.empty() &&
       t.cluster_offsets_.front() == 0 && t.cluster_offsets_.back() == t.cluster_articles_.size() &&
       std::is_sorted(t.cluster_offsets_.begin(), t.cluster_offsets_.end()) &&
       (t.cluster_dim_ == 0
            ? t.centroids_.empty()
            : t.centroids_.size() % static_cast<size_t>(t.cluster_dim_) == 0 &&
                  t.centroids_.size() / static_cast<size_t>(t.cluster_dim_) + 1 == t.cluster_offsets_.size());
  ok = ok && t.num_clusters() <= kMaxClusters;
  if (!ok) return r->Corrupt("inconsistent ranking tables");
  t.IndexAttributes();
  t.selling_.DeriveLog1p();
  t.new_arrivals_.DeriveLog1p();
  return t;
}

}  // namespace hmrec
