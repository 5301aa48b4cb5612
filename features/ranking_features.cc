#include "features/ranking_features.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <immintrin.h>

#include "absl/strings/str_cat.h"
#include "common/simd.h"
#include "glog/logging.h"

namespace hmrec {
namespace {

// x . y in four SSE lanes (every x86-64 has them) with two accumulators, the
// tail added in order: one summation order, offline and served alike.
float Dot(const float* x, const float* y, int n) {
  __m128 a = _mm_setzero_ps(), b = _mm_setzero_ps();
  int d = 0;
  for (; d + 8 <= n; d += 8) {
    a = _mm_add_ps(a, _mm_mul_ps(_mm_loadu_ps(x + d), _mm_loadu_ps(y + d)));
    b = _mm_add_ps(b, _mm_mul_ps(_mm_loadu_ps(x + d + 4), _mm_loadu_ps(y + d + 4)));
  }
  float lanes[4];
  _mm_storeu_ps(lanes, _mm_add_ps(a, b));
  float dot = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (; d < n; ++d) dot += x[d] * y[d];
  return dot;
}

// The dot products of G candidates' embeddings (v[0..G)) with each of the
// customer's last kR distinct articles, from their transposed embeddings
// `recent_t` (dim x kR), into out[g * kR + j]. One lane per recent article:
// two SSE registers a candidate, or one AVX register where the CPU has AVX
// (common/simd.h: the same bits). Each lane adds the dimensions in order,
// so a value is the same whatever G is; G candidates at once give
// independent sums, which overlap in the pipeline where one candidate's
// would wait on each addition.
constexpr int kR = FeatureScratch::kRecentArticles;
static_assert(kR == 8);

template <int G>
void RecentDotsSse(const float* recent_t, int dim, const float* const* v, float* out) {
  __m128 lo[G], hi[G];
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) lo[g] = hi[g] = _mm_setzero_ps();
  const float* r = recent_t;
  for (int d = 0; d < dim; ++d, r += kR) {
    const __m128 r_lo = _mm_loadu_ps(r), r_hi = _mm_loadu_ps(r + 4);
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) {
      const __m128 x = _mm_set1_ps(v[g][d]);
      lo[g] = _mm_add_ps(lo[g], _mm_mul_ps(x, r_lo));
      hi[g] = _mm_add_ps(hi[g], _mm_mul_ps(x, r_hi));
    }
  }
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) {
    _mm_storeu_ps(out + g * kR, lo[g]);
    _mm_storeu_ps(out + g * kR + 4, hi[g]);
  }
}

template <int G>
__attribute__((target("avx"))) void RecentDotsAvx(const float* recent_t, int dim, const float* const* v, float* out) {
  __m256 acc[G];
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) acc[g] = _mm256_setzero_ps();
  const float* r = recent_t;
  for (int d = 0; d < dim; ++d, r += kR) {
    const __m256 row = _mm256_loadu_ps(r);
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) acc[g] = _mm256_add_ps(acc[g], _mm256_mul_ps(_mm256_set1_ps(v[g][d]), row));
  }
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) _mm256_storeu_ps(out + g * kR, acc[g]);
  _mm256_zeroupper();  // before SSE code (common/simd.h)
}

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kLiftPrior = 50;  // sales

// The kListFeatures columns from l_two_tower_gap on compare a candidate with the rest of its
// list (see MakeNames).
constexpr int kListFeatures = 5;

int ColumnOf(const std::vector<std::string>& names, const char* name) {
  const auto it = std::find(names.begin(), names.end(), name);
  CHECK(it != names.end()) << name;
  return static_cast<int>(it - names.begin());
}

std::vector<std::string> MakeNames() {
  std::vector<std::string> n;
  for (int s = 0; s < kNumSources; ++s) n.push_back(absl::StrCat("src_", SourceName(s), "_rank"));
  for (int s = 0; s < kNumSources; ++s) n.push_back(absl::StrCat("src_", SourceName(s), "_score"));
  for (const char* x :
       {"src_count",
        // customer x article, from the bounded history
        "ca_count_1w", "ca_count_4w", "ca_count", "ca_days_since_last", "cp_count", "cp_days_since_last",
        // article, from the tables
        "a_sales_1w", "a_sales_prev_1w", "a_sales_4w", "a_sales_all", "a_trend", "a_age_days", "a_days_since_last_sale",
        "a_mean_price", "a_buyer_age_mean", "a_online_share",
        // customer
        "c_age", "c_purchases", "c_purchases_4w", "c_days_since_last", "c_mean_price", "c_online_share",
        "c_distinct_articles", "c_visit_days",
        // customer x article attributes
        "price_ratio", "age_diff", "aff_index_group", "aff_product_type", "aff_colour_group", "aff_section",
        "aff_department", "aff_garment_group", "two_tower_cosine", "a_index_group", "a_garment_group",
        // the candidate's article-tower similarity to the customer's last
        // distinct articles (itself left out), and how due a next purchase is
        "sim_recent_max", "sim_recent_mean", "sim_last", "c_mean_gap_days", "c_overdue",
        // the article's sales among customers of the customer's age band: per
        // mille of the band's sales last week and over 4 weeks, and how much
        // more the band buys it than everyone (4 weeks, shrunk towards 1)
        "ab_share_1w", "ab_share_4w", "ab_lift_4w",
        // the candidate against the rest of the customer's list: how far its
        // two-tower score and its best similarity to the last purchases are
        // below the list's best, the share of the list that sold more last
        // week, and the shares of the list of its product type and product
        "l_two_tower_gap", "l_sim_recent_gap", "l_sales_1w_rank", "l_type_share", "l_product_share"}) {
    n.push_back(x);
  }
  return n;
}

// For each row i of a list of n: how many rows sold more last week, and how
// many share its product type and its product (itself included). n^2
// compares of contiguous 32-bit values, cheaper at a list's size than
// sorting or a map: a compare's all-ones lane is -1, so subtracting it
// counts. Four lanes in SSE2 (every x86-64 has it), eight in AVX2 where the
// CPU has it (common/simd.h); the counts are exact either way.
void CountListTail(size_t i, size_t from, size_t n, const float* sales, const int32_t* types, const int32_t* products,
                   FeatureScratch::ListCounts* c) {
  for (size_t j = from; j < n; ++j) {
    c->above += sales[j] > sales[i];
    c->same_type += types[j] == types[i];
    c->same_product += products[j] == products[i];
  }
}

void CountListSse(size_t n, const float* sales, const int32_t* types, const int32_t* products,
                  FeatureScratch::ListCounts* counts) {
  const size_t n4 = n & ~size_t{3};
  auto load = [](const int32_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); };
  auto sum = [](__m128i v) {
    int32_t lanes[4];
    _mm_storeu_si128(reinterpret_cast<__m128i*>(lanes), v);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3];
  };
  for (size_t i = 0; i < n; ++i) {
    const __m128 x = _mm_set1_ps(sales[i]);
    const __m128i type = _mm_set1_epi32(types[i]), product = _mm_set1_epi32(products[i]);
    __m128i above4 = _mm_setzero_si128(), type4 = above4, product4 = above4;
    for (size_t j = 0; j < n4; j += 4) {
      above4 = _mm_sub_epi32(above4, _mm_castps_si128(_mm_cmpgt_ps(_mm_loadu_ps(sales + j), x)));
      type4 = _mm_sub_epi32(type4, _mm_cmpeq_epi32(load(types + j), type));
      product4 = _mm_sub_epi32(product4, _mm_cmpeq_epi32(load(products + j), product));
    }
    counts[i] = {sum(above4), sum(type4), sum(product4)};
    CountListTail(i, n4, n, sales, types, products, &counts[i]);
  }
}

__attribute__((target("avx2"))) int32_t SumLanes(__m256i v) {
  const __m128i four = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i two = _mm_add_epi32(four, _mm_unpackhi_epi64(four, four));
  return _mm_cvtsi128_si32(_mm_add_epi32(two, _mm_shuffle_epi32(two, 1)));
}

__attribute__((target("avx2"))) void CountListAvx2(size_t n, const float* sales, const int32_t* types,
                                                   const int32_t* products, FeatureScratch::ListCounts* counts) {
  const size_t n8 = n & ~size_t{7};
  for (size_t i = 0; i < n; ++i) {
    const __m256 x = _mm256_set1_ps(sales[i]);
    const __m256i type = _mm256_set1_epi32(types[i]), product = _mm256_set1_epi32(products[i]);
    __m256i above8 = _mm256_setzero_si256(), type8 = above8, product8 = above8;
    for (size_t j = 0; j < n8; j += 8) {
      const __m256i t = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(types + j));
      const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(products + j));
      above8 = _mm256_sub_epi32(above8, _mm256_castps_si256(_mm256_cmp_ps(_mm256_loadu_ps(sales + j), x, _CMP_GT_OQ)));
      type8 = _mm256_sub_epi32(type8, _mm256_cmpeq_epi32(t, type));
      product8 = _mm256_sub_epi32(product8, _mm256_cmpeq_epi32(p, product));
    }
    counts[i] = {SumLanes(above8), SumLanes(type8), SumLanes(product8)};
  }
  _mm256_zeroupper();  // before SSE code (common/simd.h): GCC left it out here
  for (size_t i = 0; i < n; ++i) CountListTail(i, n8, n, sales, types, products, &counts[i]);
}

// Fills the list columns of rows that hold every other column.
void FillListFeatures(const RankingTables& tables, const std::vector<Candidate>& candidates, FeatureScratch* s,
                      float* out) {
  static const int kTwoTower = ColumnOf(RankingFeatureNames(), "two_tower_cosine");
  static const int kSimMax = ColumnOf(RankingFeatureNames(), "sim_recent_max");
  static const int kSales1w = ColumnOf(RankingFeatureNames(), "a_sales_1w");
  static const int kFirst = ColumnOf(RankingFeatureNames(), "l_two_tower_gap");
  const int nf = NumRankingFeatures();
  const size_t n = candidates.size();
  if (n == 0) return;
  // The list's best of each compared column (NaN ones left out: a missing
  // value is no best).
  float best_tt = -std::numeric_limits<float>::infinity(), best_sim = best_tt;
  for (size_t i = 0; i < n; ++i) {
    const float* f = out + i * nf;
    if (!std::isnan(f[kTwoTower])) best_tt = std::max(best_tt, f[kTwoTower]);
    if (!std::isnan(f[kSimMax])) best_sim = std::max(best_sim, f[kSimMax]);
  }
  const float inv_n = 1.0f / static_cast<float>(n);
  for (size_t i = 0; i < n; ++i) {
    float* f = out + i * nf;
    f[kFirst] = f[kTwoTower] - best_tt;  // NaN stays NaN
    f[kFirst + 1] = f[kSimMax] - best_sim;
  }
  // The shares by counting over the whole list for each row (CountList*).
  s->list_sales.resize(n);
  s->list_types.resize(n);
  s->list_products.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const ArticleAttributes& attr = tables.attributes(candidates[i].article);
    s->list_sales[i] = out[i * nf + kSales1w];
    s->list_types[i] = attr.product_type;
    s->list_products[i] = attr.product_code;
  }
  s->list_counts.resize(n);
  (UseAvx2() ? CountListAvx2 : CountListSse)(n, s->list_sales.data(), s->list_types.data(), s->list_products.data(),
                                             s->list_counts.data());
  for (size_t i = 0; i < n; ++i) {
    const FeatureScratch::ListCounts& c = s->list_counts[i];
    float* f = out + i * nf;
    f[kFirst + 2] = static_cast<float>(c.above) * inv_n;
    f[kFirst + 3] = static_cast<float>(c.same_type) * inv_n;
    f[kFirst + 4] = static_cast<float>(c.same_product) * inv_n;
  }
}

}  // namespace

const std::vector<std::string>& RankingFeatureNames() {
  static const std::vector<std::string>* names = new std::vector<std::string>(MakeNames());
  return *names;
}

int NumRankingFeatures() { return static_cast<int>(RankingFeatureNames().size()); }

void ComputeRankingFeatures(const CustomerView& view, const RankingTables& tables,
                            const std::vector<Candidate>& candidates, const TwoTowerEmbeddings& emb, FeatureScratch* s,
                            float* out) {
  const int nf = NumRankingFeatures();
  const int32_t today = view.as_of - 1;

  // The customer's history, aggregated once.
  s->articles.clear();
  s->products.clear();
  s->attributes.Reset(tables);
  double price_sum = 0, online = 0;
  float purchases_4w = 0;
  int32_t last_day = 0;
  int visit_days = 0;
  for (size_t i = 0; i < view.purchases.size(); ++i) {
    const Purchase& p = view.purchases[i];
    const int32_t age = today - p.day;
    FeatureScratch::ArticleHistory& a = s->articles[p.article];
    a.count_all += 1;
    a.count_4w += age < 28;
    a.count_1w += age < 7;
    a.last_day = p.day;
    const ArticleAttributes& attr = tables.attributes(p.article);
    FeatureScratch::ArticleHistory& pc = s->products[attr.product_code];
    pc.count_all += 1;
    pc.last_day = p.day;
    const uint32_t* codes = tables.codes(p.article);
    for (int k = 0; k < kAffinityAttributes; ++k) s->attributes.Add(k, codes[k], 1.0f);
    price_sum += p.price;
    online += p.channel == 2;
    purchases_4w += age < 28;
    visit_days += i == 0 || view.purchases[i - 1].day != p.day;
    last_day = p.day;
  }
  const float n = static_cast<float>(view.purchases.size());
  const bool has_history = n > 0;
  const float mean_gap = visit_days >= 2 && has_history
                             ? static_cast<float>(last_day - view.purchases.front().day) / (visit_days - 1)
                             : kNaN;
  const float days_since_last = has_history ? static_cast<float>(today - last_day) : kNaN;

  // The last distinct articles, newest first, their embeddings transposed.
  s->num_recent = 0;
  if (emb.articles != nullptr) {
    for (size_t i = view.purchases.size(); i-- > 0 && s->num_recent < kR;) {
      const uint32_t a = view.purchases[i].article;
      if (std::find(s->recent, s->recent + s->num_recent, a) == s->recent + s->num_recent)
        s->recent[s->num_recent++] = a;
    }
    s->recent_t.assign(static_cast<size_t>(emb.dim) * kR, 0.0f);
    for (int j = 0; j < s->num_recent; ++j) {
      const float* v = emb.articles + static_cast<size_t>(s->recent[j]) * emb.dim;
      for (int d = 0; d < emb.dim; ++d) s->recent_t[static_cast<size_t>(d) * kR + j] = v[d];
    }
  }
  const float c_age = view.age >= 0 ? static_cast<float>(view.age) : kNaN;
  const int band = AgeBand(view.age);
  const float band_1w = tables.band_total_1w(band), band_4w = tables.band_total_4w(band);
  const float all_4w = tables.band_total_4w(kUnknownAgeBand);
  const RankingTables::BandSales* band_sales = tables.band_sales_row(band);
  const float c_mean_price = has_history ? static_cast<float>(price_sum / n) : kNaN;

  constexpr size_t kAhead = 4;
  const size_t n_cand = candidates.size();
  auto row = [&](size_t i) { return emb.articles + static_cast<size_t>(candidates[i].article) * emb.dim; };
  auto prefetch_row = [&](size_t i) {
    const char* v = reinterpret_cast<const char*>(row(i));
    for (size_t b = 0; b < static_cast<size_t>(emb.dim) * sizeof(float); b += 64) __builtin_prefetch(v + b);
  };
  // The candidates' table rows are scattered over tens of MB: ask for them
  // ahead of their use, so their cache misses overlap.
  auto prefetch_tables = [&](size_t i) {
    const uint32_t a = candidates[i].article;
    __builtin_prefetch(&tables.stats(a));
    __builtin_prefetch(&tables.attributes(a));
    __builtin_prefetch(tables.codes(a));
    __builtin_prefetch(band_sales + a);
  };
  // Every candidate's similarity to the recent articles, kGroup candidates
  // at a time (RecentDots), before the loop that reads them. This pass asks
  // for each candidate's embedding and table rows two groups ahead, so the
  // loop below finds both in cache (a list's rows take a few tens of KB).
  const bool rows_read = s->num_recent > 0;
  if (rows_read) {
    constexpr size_t kGroup = 4;
    const bool avx = UseAvx();
    auto group = avx ? RecentDotsAvx<kGroup> : RecentDotsSse<kGroup>;
    auto single = avx ? RecentDotsAvx<1> : RecentDotsSse<1>;
    auto prefetch_all = [&](size_t i) {
      prefetch_row(i);
      prefetch_tables(i);
    };
    s->recent_dots.resize(n_cand * kR);
    for (size_t i = 0; i < std::min(2 * kGroup, n_cand); ++i) prefetch_all(i);
    size_t i = 0;
    for (; i + kGroup <= n_cand; i += kGroup) {
      for (size_t j = i + 2 * kGroup; j < std::min(i + 3 * kGroup, n_cand); ++j) prefetch_all(j);
      const float* v[kGroup] = {row(i), row(i + 1), row(i + 2), row(i + 3)};
      group(s->recent_t.data(), emb.dim, v, s->recent_dots.data() + i * kR);
    }
    for (; i < n_cand; ++i) {
      const float* v[1] = {row(i)};
      single(s->recent_t.data(), emb.dim, v, s->recent_dots.data() + i * kR);
    }
  }
  // Without that pass, the loop asks for them kAhead candidates ahead.
  auto prefetch = [&](size_t i) {
    if (rows_read) return;
    prefetch_tables(i);
    if (emb.customer != nullptr) prefetch_row(i);
  };
  for (size_t i = 0; i < std::min(kAhead, n_cand); ++i) prefetch(i);
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (i + kAhead < candidates.size()) prefetch(i + kAhead);
    const Candidate& c = candidates[i];
    float* f = out + i * nf;
    int k = 0;
    int sources = 0;
    for (int src = 0; src < kNumSources; ++src) f[k++] = c.from(src) ? static_cast<float>(c.rank[src]) : kNaN;
    for (int src = 0; src < kNumSources; ++src) {
      f[k++] = c.from(src) ? c.score[src] : kNaN;
      sources += c.from(src);
    }
    f[k++] = static_cast<float>(sources);

    const ArticleAttributes& attr = tables.attributes(c.article);
    auto ah = s->articles.find(c.article);
    const bool bought = ah != s->articles.end();
    f[k++] = bought ? ah->second.count_1w : 0;
    f[k++] = bought ? ah->second.count_4w : 0;
    f[k++] = bought ? ah->second.count_all : 0;
    f[k++] = bought ? static_cast<float>(today - ah->second.last_day) : kNaN;
    auto ph = s->products.find(attr.product_code);
    const bool product_bought = ph != s->products.end();
    f[k++] = product_bought ? ph->second.count_all : 0;
    f[k++] = product_bought ? static_cast<float>(today - ph->second.last_day) : kNaN;

    const ArticleStats& st = tables.stats(c.article);
    const int32_t tday = tables.day() - 1;
    f[k++] = st.sales_1w;
    f[k++] = st.sales_prev_1w;
    f[k++] = st.sales_4w;
    f[k++] = st.sales_all;
    f[k++] = (st.sales_1w + 1) / (st.sales_prev_1w + 1);
    f[k++] = st.first_sale_day == ArticleStats::kNoDay ? kNaN : static_cast<float>(tday - st.first_sale_day);
    f[k++] = st.last_sale_day == ArticleStats::kNoDay ? kNaN : static_cast<float>(tday - st.last_sale_day);
    f[k++] = st.mean_price;
    f[k++] = st.buyer_age_mean;
    f[k++] = st.online_share;

    f[k++] = c_age;
    f[k++] = n;
    f[k++] = purchases_4w;
    f[k++] = days_since_last;
    f[k++] = c_mean_price;
    f[k++] = has_history ? static_cast<float>(online / n) : kNaN;
    f[k++] = static_cast<float>(s->articles.size());
    f[k++] = static_cast<float>(visit_days);

    f[k++] = c_mean_price > 0 ? st.mean_price / c_mean_price : kNaN;  // (NaN without history or prices)
    f[k++] = c_age - st.buyer_age_mean;
    const uint32_t* codes = tables.codes(c.article);
    for (int a = 0; a < kAffinityAttributes; ++a) {
      f[k++] = has_history ? s->attributes.of(a, codes[a]) / n : kNaN;  // 0 for a value never bought
    }
    if (emb.customer != nullptr) {
      f[k++] = Dot(emb.customer, emb.articles + static_cast<size_t>(c.article) * emb.dim, emb.dim);
    } else {
      f[k++] = kNaN;
    }
    f[k++] = static_cast<float>(attr.index_group);
    f[k++] = static_cast<float>(attr.garment_group);
    if (s->num_recent > 0) {
      const float* dots = s->recent_dots.data() + i * kR;
      float best = -std::numeric_limits<float>::infinity(), sum = 0;
      int m = 0;
      for (int j = 0; j < s->num_recent; ++j) {
        if (s->recent[j] == c.article) continue;
        best = std::max(best, dots[j]);
        sum += dots[j];
        ++m;
      }
      f[k++] = m > 0 ? best : kNaN;
      f[k++] = m > 0 ? sum / m : kNaN;
      f[k++] = s->recent[0] != c.article ? dots[0] : (m > 0 ? dots[1] : kNaN);
    } else {
      f[k++] = kNaN;
      f[k++] = kNaN;
      f[k++] = kNaN;
    }
    f[k++] = mean_gap;
    f[k++] = mean_gap > 0 ? days_since_last / mean_gap : kNaN;
    const RankingTables::BandSales& bs = band_sales[c.article];
    f[k++] = band_1w > 0 ? 1000 * bs.w1 / band_1w : kNaN;
    f[k++] = band_4w > 0 ? 1000 * bs.w4 / band_4w : kNaN;
    // (sales in the band + a prior of kLiftPrior sales at everyone's share)
    // over (the band's sales + kLiftPrior), per everyone's share.
    const float p_all = all_4w > 0 ? st.sales_4w / all_4w : 0;
    f[k++] = p_all > 0 ? (bs.w4 + kLiftPrior * p_all) / (band_4w + kLiftPrior) / p_all : kNaN;
    k += kListFeatures;  // filled below, once every row is
    DCHECK_EQ(k, nf) << "RankingFeatureNames() and the code that fills the columns disagree";
  }
  FillListFeatures(tables, candidates, s, out);
}

}  // namespace hmrec
