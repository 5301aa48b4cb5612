// The ranking stage's building blocks: tables, candidate sources, features,
// and the XGBoost ranker.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <numeric>
#include <set>

#include "absl/strings/str_cat.h"
#include "candidates/clusters.h"
#include "candidates/ranking_config.h"
#include "candidates/sources.h"
#include "candidates/tables.h"
#include "common/rng.h"
#include "common/simd.h"
#include "common/stamped_array.h"
#include "data/customer_view.h"
#include "data/dataset_cache.h"
#include "data/history.h"
#include "datagen/generator.h"
#include "features/feature_space.h"
#include "features/ranking_features.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ranker/ranker.h"
#include "tests/unit/test_util.h"

namespace hmrec {
namespace {

using hmrec::testing::TempDir;
using ::testing::HasSubstr;

constexpr int32_t kDay0 = 18500;  // 2020-08-26

// A hand-made dataset: articles in product groups, customers of known ages,
// and transactions added by the tests.
struct Mini {
  Dataset ds;
  Mini(int articles, const std::vector<int>& ages) {
    for (int a = 0; a < articles; ++a) {
      Article x;
      x.article_id = 100000000 + a;
      x.product_code = 1000 + a / 3;  // three colours per product
      x.index_group_no = 1 + a % 2;
      x.product_type_no = 10 + a % 4;
      x.colour_group_code = a % 5;
      x.section_no = a % 3;
      x.department_no = a % 6;
      x.garment_group_no = 1000 + a % 2;
      ds.articles.push_back(x);
    }
    for (size_t c = 0; c < ages.size(); ++c) {
      uint32_t id = 0;
      ds.customer_ids.Add(hmrec::testing::CustomerId(static_cast<int>(c)), &id);
      Customer cu;
      cu.age = static_cast<int16_t>(ages[c]);
      ds.customers.push_back(cu);
    }
  }
  void Buy(uint32_t customer, uint32_t article, int32_t day, float price = 0.02f, uint8_t channel = 2) {
    Transactions& t = ds.transactions;
    t.day.push_back(day);
    t.customer.push_back(customer);
    t.article.push_back(article);
    t.price.push_back(price);
    t.sales_channel.push_back(channel);
  }
  void Finish() { ASSERT_TRUE(FinishDataset(&ds).ok()); }
};

config::RankingConfig Defaults() { return WithRankingDefaults(config::RankingConfig()); }

// Article-tower embeddings of dimension 4 for `n` articles: zero but for
// the (article, vector) pairs given.
std::vector<float> Embeddings4(int n, std::initializer_list<std::pair<int, std::array<float, 4>>> set) {
  std::vector<float> e(static_cast<size_t>(n) * 4, 0.0f);
  for (const auto& [a, v] : set) std::copy(v.begin(), v.end(), e.begin() + a * 4);
  return e;
}

// (rank, article) of every candidate one source proposed, by rank.
std::vector<std::pair<int, uint32_t>> ProposedBy(const std::vector<Candidate>& cands, int source) {
  std::vector<std::pair<int, uint32_t>> v;
  for (const Candidate& c : cands) {
    if (c.from(source)) v.emplace_back(c.rank[source], c.article);
  }
  std::sort(v.begin(), v.end());
  return v;
}

const Candidate* Find(const std::vector<Candidate>& cands, uint32_t article) {
  for (const Candidate& c : cands) {
    if (c.article == article) return &c;
  }
  return nullptr;
}

// The column of the ranking feature `name`; a name the feature list lacks
// fails the test and gives NumRankingFeatures().
int FeatureColumn(const std::string& name) {
  const auto& names = RankingFeatureNames();
  const auto it = std::find(names.begin(), names.end(), name);
  if (it == names.end()) ADD_FAILURE() << "no ranking feature named " << name;
  return static_cast<int>(it - names.begin());
}

// Feature `name` of candidate `row` in the row-major matrix `f`; NaN (and a
// failed test) for a name the feature list lacks.
float FeatureAt(const std::vector<float>& f, int row, const std::string& name) {
  const int nf = NumRankingFeatures();
  const int i = FeatureColumn(name);
  if (i >= nf) return std::numeric_limits<float>::quiet_NaN();
  return f[static_cast<size_t>(row) * nf + i];
}

// Recorded purchases move a customer's purchase-count band; bundles from
// before purchase_count start from the least count of the stored band.
TEST(FeatureSpaceBands, EachBandFloorIsTheLeastCountOfItsBand) {
  std::vector<int64_t> floors;
  for (int32_t b = 0; b < 9; ++b) {
    const int64_t f = FeatureSpace::HistoryCountBandFloor(b);
    floors.push_back(f);
    EXPECT_EQ(FeatureSpace::HistoryCountBand(f), b);
    if (b > 0) EXPECT_EQ(FeatureSpace::HistoryCountBand(f - 1), b - 1);
  }
  EXPECT_EQ(floors, (std::vector<int64_t>{0, 1, 2, 3, 5, 9, 17, 33, 65}));
}

TEST(RankingSources, EachSourceProposesWhatItShouldWithProvenance) {
  Mini m(30, {25, 25, 25, 70, 22});
  // Customer 0 bought article 4 twice and article 9 once, recently.
  m.Buy(0, 4, kDay0 - 10);
  m.Buy(0, 4, kDay0 - 3);
  m.Buy(0, 9, kDay0 - 20);
  // Customers 1 and 2 bought 4 and then 20 within days: 20 is 4's co-purchase.
  m.Buy(1, 4, kDay0 - 8);
  m.Buy(1, 20, kDay0 - 6);
  m.Buy(2, 4, kDay0 - 9);
  m.Buy(2, 20, kDay0 - 9);
  // Article 5 (same product as 4: codes 1000 + a / 3) sells; article 27 trends.
  m.Buy(3, 5, kDay0 - 2);
  for (int i = 0; i < 5; ++i) m.Buy(4, 27, kDay0 - 1 - i);
  m.Finish();
  const CustomerHistory h = CustomerHistory::Build(m.ds.transactions, m.ds.customers.size());
  const config::RankingConfig cfg = Defaults();
  const RankingTables tables = RankingTables::Build(m.ds, h, kDay0, cfg);

  CustomerView view;
  BuildCustomerView(h, 0, 25, kDay0, HistoryLimitsOf(cfg), &view);
  const int64_t tt_rows[] = {12, 4, -1};
  const float tt_scores[] = {0.9f, 0.8f, 0.0f};
  CandidateScratch scratch;
  std::vector<Candidate> cands;
  GenerateCandidates(view, tables, TwoTowerHits{tt_rows, tt_scores, 3}, cfg, &scratch, &cands);

  const Candidate* a4 = Find(cands, 4);
  ASSERT_NE(a4, nullptr);
  EXPECT_EQ(a4->rank[kRepurchase], 0) << "bought twice, most recently: first";
  EXPECT_EQ(a4->rank[kTwoTower], 1);
  const Candidate* a9 = Find(cands, 9);
  ASSERT_NE(a9, nullptr);
  EXPECT_EQ(a9->rank[kRepurchase], 1);
  EXPECT_GT(a4->score[kRepurchase], a9->score[kRepurchase]);
  const Candidate* a20 = Find(cands, 20);
  ASSERT_NE(a20, nullptr);
  EXPECT_TRUE(a20->from(kCoPurchase));
  EXPECT_EQ(a20->copurchase_anchor, 4);
  const Candidate* a5 = Find(cands, 5);
  ASSERT_NE(a5, nullptr);
  EXPECT_TRUE(a5->from(kSameProduct));
  EXPECT_EQ(a5->product_anchor, 4);
  EXPECT_EQ(a5->rank[kSameProduct], 0) << "the sibling that sells comes first";
  const Candidate* a12 = Find(cands, 12);
  ASSERT_NE(a12, nullptr);
  EXPECT_EQ(a12->rank[kTwoTower], 0);
  EXPECT_TRUE(Find(cands, 27)->from(kTrending));
  // Age band 25-29 bought nothing but 4, 9 (customer 0) and 4, 20 (1, 2).
  EXPECT_TRUE(a20->from(kSegmentPopular));
  // Every candidate appears once.
  std::set<uint32_t> distinct;
  for (const Candidate& c : cands) distinct.insert(c.article);
  EXPECT_EQ(distinct.size(), cands.size());

  // The fixed rule: repurchase first, then co-purchase, same product, two-tower.
  std::vector<uint32_t> order;
  HeuristicOrder(cands, &order);
  EXPECT_EQ(cands[order[0]].article, 4u);
  EXPECT_EQ(cands[order[1]].article, 9u);
  EXPECT_EQ(cands[order[2]].article, 20u);
}

// Taste: best sellers now of the product types the customer buys most,
// those matching the customer's other attributes first; nothing of a type
// they never bought; nothing for a customer without purchases.
TEST(RankingSources, TasteProposesWhatSellsNowInTheCustomersTypesMatchedToTheirAttributes) {
  // Mini's product_type_no is 10 + a % 4, index group 1 + a % 2, colour
  // a % 5, section a % 3, department a % 6, garment group 1000 + a % 2.
  Mini m(40, {30, 30, 30, 30, 30});
  // Customer 0 bought type 10 (articles 0 and 4) twice as often as type 11
  // (article 1), long enough ago that none of them sells now.
  m.Buy(0, 0, kDay0 - 20);
  m.Buy(0, 4, kDay0 - 20);
  m.Buy(0, 1, kDay0 - 20);
  // Last week: type 10 articles 12 (sold 6 times) and 24 (5 times, but its
  // colour, section and department are all ones the customer bought); type
  // 13 article 3 sells most of all.
  for (int i = 0; i < 6; ++i) m.Buy(1 + i % 3, 12, kDay0 - 2);
  for (int i = 0; i < 5; ++i) m.Buy(1 + i % 3, 24, kDay0 - 2);
  for (int i = 0; i < 9; ++i) m.Buy(1 + i % 3, 3, kDay0 - 2);
  m.Finish();
  const CustomerHistory h = CustomerHistory::Build(m.ds.transactions, m.ds.customers.size());
  config::RankingConfig cfg = Defaults();
  cfg.set_taste_types(1);
  const RankingTables tables = RankingTables::Build(m.ds, h, kDay0, cfg);
  CustomerView view;
  BuildCustomerView(h, 0, 30, kDay0, HistoryLimitsOf(cfg), &view);
  CandidateScratch scratch;
  std::vector<Candidate> cands;
  GenerateCandidates(view, tables, TwoTowerHits(), cfg, &scratch, &cands);
  const std::vector<std::pair<int, uint32_t>> taste = ProposedBy(cands, kTaste);
  // Type 10 only (taste_types 1; article 3 is type 13): 24 before 12.
  ASSERT_EQ(taste.size(), 2u) << "the type-10 articles selling now: 12 and 24";
  EXPECT_EQ(taste[0].second, 24u) << "matches the customer more, sells a little less";
  EXPECT_EQ(taste[1].second, 12u);
  EXPECT_EQ(SourceName(kTaste), std::string("taste"));
  // Nothing for a customer who bought nothing.
  BuildCustomerView(h, 4, 30, kDay0, HistoryLimitsOf(cfg), &view);
  GenerateCandidates(view, tables, TwoTowerHits(), cfg, &scratch, &cands);
  for (const Candidate& c : cands) EXPECT_FALSE(c.from(kTaste));
  // Off when taste_candidates is negative.
  cfg.set_taste_candidates(-1);
  BuildCustomerView(h, 0, 30, kDay0, HistoryLimitsOf(cfg), &view);
  GenerateCandidates(view, tables, TwoTowerHits(), cfg, &scratch, &cands);
  for (const Candidate& c : cands) EXPECT_FALSE(c.from(kTaste));
}

// New arrivals: articles first sold within new_arrival_days of the customer's
// product types, by sales per day since their first sale; not an article
// that has sold for longer, not a type the customer never bought.
TEST(RankingSources, NewArrivalsAreRecentLaunchesOfTheCustomersTypesBySalesPerDay) {
  Mini m(40, {30, 30, 30, 30});
  m.Buy(0, 0, kDay0 - 60);  // type 10
  m.Buy(0, 4, kDay0 - 60);  // type 10
  // Type 10: article 8 has sold for a month (not new); 16 first sold 3 days
  // ago (3 sales: 1 a day by the table's day); 28 ten days ago (4 sales:
  // 0.4 a day). Type 11 (article 13, new) is not the customer's.
  for (int d = 30; d >= 2; d -= 4) m.Buy(1 + d % 3, 8, kDay0 - d);
  for (int i = 0; i < 3; ++i) m.Buy(1 + i, 16, kDay0 - 3 + i);
  for (int i = 0; i < 4; ++i) m.Buy(1 + i % 3, 28, kDay0 - 10 + i);
  for (int i = 0; i < 9; ++i) m.Buy(1 + i % 3, 13, kDay0 - 2);
  m.Finish();
  const CustomerHistory h = CustomerHistory::Build(m.ds.transactions, m.ds.customers.size());
  config::RankingConfig cfg = Defaults();
  CustomerView view;
  BuildCustomerView(h, 0, 30, kDay0, HistoryLimitsOf(cfg), &view);
  CandidateScratch scratch;
  std::vector<Candidate> cands;
  GenerateCandidates(view, RankingTables::Build(m.ds, h, kDay0, cfg), TwoTowerHits(), cfg, &scratch, &cands);
  const std::vector<std::pair<int, uint32_t>> arrivals = ProposedBy(cands, kNewArrival);
  ASSERT_EQ(arrivals.size(), 2u);
  EXPECT_EQ(arrivals[0].second, 16u) << "more sales per day since its launch";
  EXPECT_EQ(arrivals[1].second, 28u);
  EXPECT_EQ(SourceName(kNewArrival), std::string("new_arrival"));
  // A shorter window leaves only the 3-day-old launch.
  cfg.set_new_arrival_days(5);
  const RankingTables short_window = RankingTables::Build(m.ds, h, kDay0, cfg);
  GenerateCandidates(view, short_window, TwoTowerHits(), cfg, &scratch, &cands);
  int found = 0;
  for (const Candidate& c : cands) found += c.from(kNewArrival);
  EXPECT_EQ(found, 1);
  EXPECT_NE(Find(cands, 16), nullptr);
  // Off when new_arrival_candidates is negative.
  cfg.set_new_arrival_candidates(-1);
  GenerateCandidates(view, short_window, TwoTowerHits(), cfg, &scratch, &cands);
  for (const Candidate& c : cands) EXPECT_FALSE(c.from(kNewArrival));
}

// The taste weighs each purchase by its age (one weight a day bought on,
// the same as Decay of that purchase), and the style profile is the taste's
// values of at least kStyleMinShare, by key, with their exact shares.
TEST(RankingSources, TasteWeighsPurchasesByAgeAndTheStyleProfileKeepsTheLargeShares) {
  Mini m(40, {30});
  m.Finish();
  const CustomerHistory h = CustomerHistory::Build(m.ds.transactions, m.ds.customers.size());
  const RankingTables t = RankingTables::Build(m.ds, h, kDay0, Defaults());
  CustomerView view;
  view.as_of = kDay0;
  // Articles 0 and 4 are type 10, 1 type 11, 2 type 12 (Mini: 10 + a % 4);
  // three purchases share a day, one is on the day before as_of.
  constexpr int32_t kToday = kDay0 - 1;  // ages count from the day before as_of
  view.purchases = {{2, kToday - 70}, {0, kToday - 14}, {4, kToday - 14}, {1, kToday - 14}, {0, kToday}};
  constexpr double kHalfLife = 14;
  std::vector<double> w;
  PurchaseWeights(view, kHalfLife, &w);
  ASSERT_EQ(w.size(), view.purchases.size());
  for (size_t i = 0; i < w.size(); ++i) EXPECT_EQ(w[i], Decay(kToday - view.purchases[i].day, kHalfLife)) << i;
  EXPECT_DOUBLE_EQ(w[4], 1.0) << "bought the day before as_of";
  EXPECT_DOUBLE_EQ(w[1], 0.5) << "one half-life before";
  EXPECT_DOUBLE_EQ(w[0], 1.0 / 32) << "five half-lives before";

  Taste taste;
  BuildTaste(view, t, w, &taste);
  const double total = 1.0 + 3 * 0.5 + 1.0 / 32;
  EXPECT_DOUBLE_EQ(taste.total, total);
  // (Articles 0, 1 and 2 hold types 10, 11 and 12.)
  EXPECT_DOUBLE_EQ(taste.weight.of(1, t.code(0, 1)), 1.0 + 0.5 + 0.5) << "articles 0 (twice) and 4";
  EXPECT_DOUBLE_EQ(taste.weight.of(1, t.code(1, 1)), 0.5);
  EXPECT_DOUBLE_EQ(taste.weight.of(1, t.code(2, 1)), 1.0 / 32);
  EXPECT_EQ(taste.weight.of(1, t.code(3, 1)), 0.0) << "type 13: never bought";
  EXPECT_EQ(taste.weight.added(1).size(), 3u);

  std::vector<StyleValue> style;
  StyleProfile(taste, t, &style);
  ASSERT_FALSE(style.empty());
  for (size_t i = 1; i < style.size(); ++i) EXPECT_LT(style[i - 1].key, style[i].key) << "by key";
  auto share_of = [&](int attribute, int32_t value) {
    for (const StyleValue& v : style) {
      if (v.key == StyleKey(attribute, value)) return static_cast<double>(v.share);
    }
    return -1.0;
  };
  EXPECT_NEAR(share_of(1, 10), 2.0 / total, 1e-6);
  EXPECT_NEAR(share_of(1, 11), 0.5 / total, 1e-6);
  EXPECT_EQ(share_of(1, 12), -1.0) << "a share of " << (1.0 / 32) / total << " is below kStyleMinShare";
  for (const StyleValue& v : style) EXPECT_GE(v.share, kStyleMinShare);
  // No purchases: no taste, no profile.
  view.purchases.clear();
  PurchaseWeights(view, kHalfLife, &w);
  BuildTaste(view, t, w, &taste);
  EXPECT_EQ(taste.total, 0.0);
  EXPECT_TRUE(taste.weight.added(1).empty());
  EXPECT_EQ(taste.weight.of(1, t.code(0, 1)), 0.0) << "the last customer's sums are gone";
  StyleProfile(taste, t, &style);
  EXPECT_TRUE(style.empty());
}

// Spherical k-means finds two groups pointing different ways whatever their
// lengths; a zero row is kept out of the centroids.
TEST(CustomerClusters, SeparatesDirectionsNotLengths) {
  std::vector<float> rows;
  for (int i = 0; i < 20; ++i) {
    const float len = 1.0f + static_cast<float>(i);
    if (i % 2 == 0) {
      rows.insert(rows.end(), {len, 0.1f * len, 0.0f});
    } else {
      rows.insert(rows.end(), {0.0f, 0.1f * len, -len});
    }
  }
  rows.insert(rows.end(), {0.0f, 0.0f, 0.0f});
  std::vector<int32_t> assignment;
  const std::vector<float> c = SphericalKMeans(rows.data(), 21, 3, 2, 10, 7, &assignment);
  ASSERT_EQ(c.size(), 6u);
  for (int k = 0; k < 2; ++k) {  // dimension-major: value i of cluster k at c[i * 2 + k]
    EXPECT_NEAR(c[k] * c[k] + c[2 + k] * c[2 + k] + c[4 + k] * c[4 + k], 1.0f, 1e-5);
  }
  for (int i = 2; i < 20; ++i) EXPECT_EQ(assignment[i], assignment[i % 2]) << "row " << i;
  EXPECT_NE(assignment[0], assignment[1]);
  const float probe[3] = {5.0f, 0.0f, 0.1f};
  EXPECT_EQ(NearestCentroid(c.data(), 2, 3, probe), assignment[0]);
  EXPECT_EQ(NearestCentroid(c.data(), 0, 3, probe), -1);
  // Fewer distinct rows than clusters asked: as many clusters as rows.
  EXPECT_EQ(SphericalKMeans(rows.data(), 2, 3, 5, 10, 7, nullptr).size(), 6u);
}

// The nearest centroid is the one whose dot product, summed over the
// dimensions in order, is largest (the lower index on a tie), for any
// number of clusters (whole register blocks, a tail, both), with AVX or SSE.
TEST(CustomerClusters, NearestCentroidIsTheScalarArgmaxWithAvxOrSse) {
  constexpr int kDim = 64;
  uint64_t state = 11;
  auto uniform = [&] { return static_cast<float>(SplitMix64(&state) % 20001) / 10000.0f - 1.0f; };
  for (int k : {1, 5, 16, 17, 31, 32, 33, 100, 256}) {
    std::vector<float> centroids(static_cast<size_t>(k) * kDim);
    for (float& x : centroids) x = uniform();
    for (int probe = 0; probe < 20; ++probe) {
      float v[kDim];
      for (float& x : v) x = uniform();
      int best = 0;
      float best_dot = -std::numeric_limits<float>::infinity();
      for (int c = 0; c < k; ++c) {
        float dot = 0;
        for (int i = 0; i < kDim; ++i) dot += centroids[static_cast<size_t>(i) * k + c] * v[i];
        if (dot > best_dot) best_dot = dot, best = c;
      }
      SCOPED_TRACE(::testing::Message() << "k " << k << " probe " << probe);
      EXPECT_EQ(NearestCentroid(centroids.data(), k, kDim, v), best);
      AllowAvx(false);
      EXPECT_EQ(NearestCentroid(centroids.data(), k, kDim, v), best);
      AllowAvx(true);
    }
  }
}

// Neighbours: the recent buyers are clustered by their embeddings; a
// customer reads the cluster nearest their own embedding, its articles by
// time-decayed share, point in time (a purchase on the tables' day or
// outside the window is not counted); the clusters survive Save/Load; no
// embedding (or another dim) proposes nothing; a filter keeps the rest of
// the list at its ranks.
TEST(RankingSources, NeighboursProposeWhatTheNearestBuyersBoughtLately) {
  Mini m(40, std::vector<int>(120, 30));
  // Buyers 0..59 point one way and bought 1 (often), 2 and 3; buyers
  // 60..119 the other way and bought 20 and 21.
  BuyerEmbeddings buyers;
  buyers.dim = 2;
  for (uint32_t c = 0; c < 120; ++c) {
    const bool first = c < 60;
    buyers.customers.push_back(c);
    buyers.values.insert(buyers.values.end(), {first ? 1.0f : 0.05f * (c % 3), first ? 0.05f * (c % 3) : 1.0f});
    if (first) {
      m.Buy(c, 1, kDay0 - 1 - static_cast<int32_t>(c % 5));
      if (c % 2 == 0) m.Buy(c, 2, kDay0 - 3);
      if (c % 6 == 0) m.Buy(c, 3, kDay0 - 2);
      m.Buy(c, 30, kDay0);       // on the day: not yet
      m.Buy(c, 31, kDay0 - 40);  // before the window
    } else {
      m.Buy(c, 20, kDay0 - 2);
      if (c % 3 == 0) m.Buy(c, 21, kDay0 - 4);
    }
  }
  m.Finish();
  const CustomerHistory h = CustomerHistory::Build(m.ds.transactions, m.ds.customers.size());
  config::RankingConfig cfg = Defaults();
  cfg.set_neighbour_clusters(2);
  const RankingTables built = RankingTables::Build(m.ds, h, kDay0, cfg, &buyers);
  ASSERT_EQ(built.num_clusters(), 2);
  TempDir dir;
  ASSERT_TRUE(built.Save(dir.File("t.bin")).ok());
  auto loaded = RankingTables::Load(dir.File("t.bin"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->num_clusters(), 2);
  EXPECT_EQ(SourceName(kNeighbours), std::string("neighbours"));

  CustomerView view;
  BuildCustomerView(h, 5, 30, kDay0, HistoryLimitsOf(cfg), &view);
  const float near_first[2] = {0.9f, 0.2f};
  CandidateScratch scratch;
  std::vector<Candidate> cands;
  GenerateCandidates(view, *loaded, TwoTowerHits{nullptr, nullptr, 0, near_first, 2}, cfg, &scratch, &cands);
  std::vector<std::pair<int, uint32_t>> got = ProposedBy(cands, kNeighbours);
  ASSERT_EQ(got, (std::vector<std::pair<int, uint32_t>>{{0, 1}, {1, 2}, {2, 3}}));
  EXPECT_GT(Find(cands, 1)->score[kNeighbours], Find(cands, 2)->score[kNeighbours]);
  EXPECT_LE(Find(cands, 1)->score[kNeighbours], 1.0f) << "a share of the cluster's purchases";
  // The quota: neighbour_candidates of the list, best first.
  config::RankingConfig two = cfg;
  two.set_neighbour_candidates(2);
  GenerateCandidates(view, *loaded, TwoTowerHits{nullptr, nullptr, 0, near_first, 2}, two, &scratch, &cands);
  EXPECT_EQ(ProposedBy(cands, kNeighbours), (std::vector<std::pair<int, uint32_t>>{{0, 1}, {1, 2}}));

  const float near_second[2] = {-0.1f, 3.0f};
  GenerateCandidates(view, *loaded, TwoTowerHits{nullptr, nullptr, 0, near_second, 2}, cfg, &scratch, &cands);
  EXPECT_EQ(ProposedBy(cands, kNeighbours), (std::vector<std::pair<int, uint32_t>>{{0, 20}, {1, 21}}));

  // A filter without article 1: 2 and 3 at their ranks in the whole list.
  std::vector<uint8_t> allowed(40, 1);
  allowed[1] = 0;
  const ArticleFilter filter(allowed, &*loaded);
  GenerateCandidates(view, *loaded, TwoTowerHits{nullptr, nullptr, 0, near_first, 2}, cfg, &scratch, &cands, &filter);
  EXPECT_EQ(ProposedBy(cands, kNeighbours), (std::vector<std::pair<int, uint32_t>>{{1, 2}, {2, 3}}));

  // Nothing without an embedding, with another dim, or without clusters.
  for (const TwoTowerHits& hits : {TwoTowerHits(), TwoTowerHits{nullptr, nullptr, 0, near_first, 3}}) {
    GenerateCandidates(view, *loaded, hits, cfg, &scratch, &cands);
    EXPECT_TRUE(ProposedBy(cands, kNeighbours).empty());
  }
  const RankingTables plain = RankingTables::Build(m.ds, h, kDay0, cfg);
  EXPECT_EQ(plain.num_clusters(), 0);
  GenerateCandidates(view, plain, TwoTowerHits{nullptr, nullptr, 0, near_first, 2}, cfg, &scratch, &cands);
  EXPECT_TRUE(ProposedBy(cands, kNeighbours).empty());
  // Clusters of at least ~50 buyers: 120 buyers make at most 2 of 64 asked.
  cfg.set_neighbour_clusters(64);
  EXPECT_EQ(RankingTables::Build(m.ds, h, kDay0, cfg, &buyers).num_clusters(), 2);
}

// Style buyers: each value of a customer's style profile brings what the
// customers whose profile holds it bought in the window (on the tables' day
// and before the window: not counted), weighted by the buyer's share of the
// value and the customer's; a customer without purchases gets nothing.
TEST(RankingSources, StyleBuyersProposeWhatBuyersOfTheSameKindsOfArticlesBoughtLately) {
  Mini m(40, std::vector<int>(24, 30));
  // Articles: product type 10 + a % 4, index group 1 + a % 2, garment group
  // 1000 + a % 2 (Mini). Buyers 0..9 buy type 10 (index 1) and then, in the
  // window, article 1; buyers 10..19 buy type 13 (index 2) and then article 5.
  for (uint32_t c = 0; c < 20; ++c) {
    const bool a = c < 10;
    for (uint32_t k = 0; k < 5; ++k) m.Buy(c, a ? 4 * k : 4 * k + 3, kDay0 - 9 - static_cast<int32_t>(k));
    m.Buy(c, a ? 1 : 5, kDay0 - 1 - static_cast<int32_t>(c % 3));
    if (a) m.Buy(c, 30, kDay0);  // on the day: not yet
  }
  // Customer 20 buys like the first buyers, 21 like the second, both before
  // the window; 22 never bought.
  m.Buy(20, 0, kDay0 - 9);
  m.Buy(20, 8, kDay0 - 10);
  m.Buy(21, 7, kDay0 - 9);
  m.Buy(21, 15, kDay0 - 10);
  m.Finish();
  const CustomerHistory h = CustomerHistory::Build(m.ds.transactions, m.ds.customers.size());
  config::RankingConfig cfg = Defaults();
  EXPECT_EQ(cfg.style_buyers_candidates(), 12) << "on by default";
  cfg.set_style_buyers_window_days(7);
  const RankingTables t = RankingTables::Build(m.ds, h, kDay0, cfg);
  // The tables: type 10's buyers bought article 1 and nothing else in the window.
  const auto [first, last] = t.style_buyers(StyleKey(1, 10));
  ASSERT_EQ(last - first, 1);
  EXPECT_EQ(first->article, 1u);
  EXPECT_FLOAT_EQ(first->score, 1.0f) << "a share of the value's buyers' purchases";
  EXPECT_EQ(t.style_buyers(StyleKey(1, 12)).first, t.style_buyers(StyleKey(1, 12)).second) << "nobody buys type 12";
  // The profile: type 10 only, every share at least kStyleMinShare.
  CustomerView view;
  std::vector<double> weights;
  Taste taste;
  std::vector<StyleValue> profile;
  BuildCustomerView(h, 20, 30, kDay0, HistoryLimitsOf(cfg), &view);
  PurchaseWeights(view, cfg.repurchase_half_life_days(), &weights);
  BuildTaste(view, t, weights, &taste);
  StyleProfile(taste, t, &profile);
  size_t longest = 0;
  for (const StyleValue& v : profile) {
    EXPECT_GE(v.share, kStyleMinShare);
    if (v.key >> 24 == 1) EXPECT_EQ(v.key, StyleKey(1, 10));
    longest = std::max(longest, static_cast<size_t>(t.style_buyers(v.key).second - t.style_buyers(v.key).first));
  }
  // Each value's list holds at most style_buyers_depth articles.
  EXPECT_EQ(cfg.style_buyers_depth(), 50);
  ASSERT_GE(longest, 2u);
  config::RankingConfig shallow = cfg;
  shallow.set_style_buyers_depth(1);
  const RankingTables t1 = RankingTables::Build(m.ds, h, kDay0, shallow);
  for (const StyleValue& v : profile) {
    const auto [b, e] = t1.style_buyers(v.key);
    const auto [full_b, full_e] = t.style_buyers(v.key);
    ASSERT_EQ(e - b, std::min<std::ptrdiff_t>(1, full_e - full_b));
    if (e > b) EXPECT_EQ(b->article, full_b->article) << "the best one kept";
  }

  CandidateScratch scratch;
  std::vector<Candidate> cands;
  auto proposed = [&](uint32_t customer, const config::RankingConfig& c) {
    BuildCustomerView(h, customer, 30, kDay0, HistoryLimitsOf(c), &view);
    GenerateCandidates(view, t, TwoTowerHits(), c, &scratch, &cands);
    return ProposedBy(cands, kStyleBuyers);
  };
  std::vector<std::pair<int, uint32_t>> got = proposed(20, cfg);
  ASSERT_EQ(got.size(), 2u) << "articles 1 and 5: the only ones bought in the window";
  EXPECT_EQ(got[0].second, 1u) << "bought by the customers who buy what 20 buys";
  EXPECT_GT(Find(cands, 1)->score[kStyleBuyers], 2 * Find(cands, 5)->score[kStyleBuyers]);
  got = proposed(21, cfg);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].second, 5u);
  EXPECT_TRUE(proposed(22, cfg).empty()) << "no purchases, no profile";
  config::RankingConfig one = cfg;
  one.set_style_buyers_candidates(1);
  EXPECT_EQ(proposed(20, one), (std::vector<std::pair<int, uint32_t>>{{0, 1}}));
  EXPECT_EQ(SourceName(kStyleBuyers), std::string("style_buyers"));
  // Off when style_buyers_candidates is negative.
  one.set_style_buyers_candidates(-1);
  EXPECT_TRUE(proposed(20, one).empty());
}

// Under an ArticleFilter every source stays within it and still proposes as
// many as it would unfiltered (the popularity lists read past the articles
// the filter takes out), each at its rank in the source's whole list (what
// the ranker was trained on), the two-tower hits at theirs among the allowed.
TEST(RankingSources, AFilterKeepsEverySourceWithinItAndFillsItsQuota) {
  Mini m(30, {25, 25, 25, 25, 25});
  // Best sellers by the day: articles 0..11, article a bought 12 - a times.
  for (uint32_t a = 0; a < 12; ++a) {
    for (uint32_t i = 0; i < 12 - a; ++i) m.Buy(1 + i % 4, a, kDay0 - 1);
  }
  m.Buy(0, 2, kDay0 - 5);  // customer 0: 2, 3 and 5 (3 and 5 are odd)
  m.Buy(0, 3, kDay0 - 4);
  m.Buy(0, 5, kDay0 - 3);
  m.Finish();
  const CustomerHistory h = CustomerHistory::Build(m.ds.transactions, m.ds.customers.size());
  config::RankingConfig cfg = Defaults();
  cfg.set_segment_candidates(3);
  const RankingTables tables = RankingTables::Build(m.ds, h, kDay0, cfg);
  std::vector<uint8_t> odd(30, 0);
  for (size_t a = 1; a < 30; a += 2) odd[a] = 1;
  const ArticleFilter filter(odd, &tables);
  EXPECT_EQ(filter.rows().size(), 15u);
  CustomerView view;
  BuildCustomerView(h, 0, 25, kDay0, HistoryLimitsOf(cfg), &view);
  const int64_t tt_rows[] = {12, 13, 14, 15};
  const float tt_scores[] = {0.9f, 0.8f, 0.7f, 0.6f};
  CandidateScratch scratch;
  std::vector<Candidate> plain, within;
  GenerateCandidates(view, tables, TwoTowerHits{tt_rows, tt_scores, 4}, cfg, &scratch, &plain);
  GenerateCandidates(view, tables, TwoTowerHits{tt_rows, tt_scores, 4}, cfg, &scratch, &within, &filter);
  std::vector<uint32_t> segment;
  for (const Candidate& c : within) {
    EXPECT_EQ(c.article % 2, 1u) << "article " << c.article << " is outside the filter";
    if (c.from(kSegmentPopular)) segment.push_back(c.article);
  }
  // The three best-selling odd articles, at their places in the band's list.
  std::sort(segment.begin(), segment.end());
  EXPECT_EQ(segment, (std::vector<uint32_t>{1, 3, 5}));
  const std::vector<ScoredArticle>& band = tables.segment(AgeBand(25));
  for (uint32_t a : segment) {
    const auto at = std::find_if(band.begin(), band.end(), [a](const ScoredArticle& x) { return x.article == a; });
    EXPECT_EQ(Find(within, a)->rank[kSegmentPopular], at - band.begin()) << "article " << a;
  }
  EXPECT_GT(Find(within, 5)->rank[kSegmentPopular], 2) << "past even articles that sell more";
  // Unfiltered the segment source proposes 0, 1, 2.
  EXPECT_TRUE(Find(plain, 0)->from(kSegmentPopular));
  EXPECT_EQ(Find(plain, 3)->rank[kRepurchase], 1);
  // Repurchase: the odd articles bought (5 and 3 come first in the whole list).
  EXPECT_EQ(Find(within, 5)->rank[kRepurchase], 0);
  EXPECT_EQ(Find(within, 3)->rank[kRepurchase], 1);
  // Two-tower: the allowed hits, ranked among themselves.
  EXPECT_EQ(Find(within, 13)->rank[kTwoTower], 0);
  EXPECT_EQ(Find(within, 15)->rank[kTwoTower], 1);
  EXPECT_EQ(Find(within, 12), nullptr);
}

// The customer of age 70 gets the 65+ band's best sellers; a customer of
// unknown age the whole population's.
TEST(RankingSources, SegmentListsFollowTheAgeBand) {
  Mini m(10, {70, 71, 30, -1});
  m.Buy(0, 7, kDay0 - 1);
  m.Buy(1, 7, kDay0 - 2);
  for (int i = 0; i < 3; ++i) m.Buy(2, 2, kDay0 - 1);
  m.Finish();
  const CustomerHistory h = CustomerHistory::Build(m.ds.transactions, m.ds.customers.size());
  const RankingTables t = RankingTables::Build(m.ds, h, kDay0, Defaults());
  ASSERT_FALSE(t.segment(AgeBand(70)).empty());
  EXPECT_EQ(t.segment(AgeBand(70))[0].article, 7u);
  EXPECT_EQ(t.segment(AgeBand(30))[0].article, 2u);
  EXPECT_EQ(t.segment(kUnknownAgeBand)[0].article, 2u);
  EXPECT_EQ(AgeBand(-1), kUnknownAgeBand);
  EXPECT_EQ(AgeBand(19), 0);
  EXPECT_EQ(AgeBand(20), 1);
  EXPECT_EQ(AgeBand(64), 9);
  EXPECT_EQ(AgeBand(65), 10);
}

// Point in time: tables, candidates and features as of day D are the same
// whether or not the data holds the purchases of D and later. A leak of the
// label week into its own features fails here.
TEST(RankingSources, NothingOnOrAfterTheDayIsSeen) {
  TempDir dir;
  datagen::GenerateStats stats;
  ASSERT_TRUE(datagen::Generate(*datagen::ScalePreset("tiny"), dir.File("data"), false, &stats).ok());
  LoadOptions lo;
  lo.show_progress = false;
  auto full = LoadDataset(dir.File("data"), lo);
  ASSERT_TRUE(full.ok());
  const Dataset& ds = **full;
  const int32_t day = ds.last_day - 13;
  auto cut = DatasetBefore(ds, day);
  ASSERT_TRUE(cut.ok());
  ASSERT_LT((*cut)->transactions.size(), ds.transactions.size());
  const config::RankingConfig cfg = Defaults();
  const CustomerHistory h_full = CustomerHistory::Build(ds.transactions, ds.customers.size());
  const CustomerHistory h_cut = CustomerHistory::Build((*cut)->transactions, ds.customers.size());
  const RankingTables t_full = RankingTables::Build(ds, h_full, day, cfg);
  const RankingTables t_cut = RankingTables::Build(**cut, h_cut, day, cfg);
  TempDir out;
  ASSERT_TRUE(t_full.Save(out.File("a.bin")).ok());
  ASSERT_TRUE(t_cut.Save(out.File("b.bin")).ok());
  EXPECT_EQ(hmrec::testing::ReadFile(out.File("a.bin")), hmrec::testing::ReadFile(out.File("b.bin")));

  const int nf = NumRankingFeatures();
  std::vector<float> emb_articles(ds.articles.size() * 4, 0.25f);
  const float emb_customer[4] = {0.5f, 0.5f, 0.5f, 0.5f};
  int compared = 0;
  for (uint32_t c = 0; c < ds.customers.size(); c += 7) {
    CustomerView v_full, v_cut;
    BuildCustomerView(h_full, c, ds.customers[c].age, day, HistoryLimitsOf(cfg), &v_full);
    BuildCustomerView(h_cut, c, ds.customers[c].age, day, HistoryLimitsOf(cfg), &v_cut);
    CandidateScratch s1, s2;
    std::vector<Candidate> c1, c2;
    GenerateCandidates(v_full, t_full, TwoTowerHits(), cfg, &s1, &c1);
    GenerateCandidates(v_cut, t_cut, TwoTowerHits(), cfg, &s2, &c2);
    ASSERT_EQ(c1.size(), c2.size());
    std::vector<float> f1(c1.size() * nf), f2(c2.size() * nf);
    FeatureScratch fs1, fs2;
    ComputeRankingFeatures(v_full, t_full, c1, TwoTowerEmbeddings{emb_customer, emb_articles.data(), 4}, &fs1,
                           f1.data());
    ComputeRankingFeatures(v_cut, t_cut, c2, TwoTowerEmbeddings{emb_customer, emb_articles.data(), 4}, &fs2, f2.data());
    for (size_t i = 0; i < f1.size(); ++i) {
      ASSERT_TRUE(f1[i] == f2[i] || (std::isnan(f1[i]) && std::isnan(f2[i])))
          << "customer " << c << " feature " << RankingFeatureNames()[i % nf];
    }
    compared += static_cast<int>(c1.size());
  }
  EXPECT_GT(compared, 1000);
}

// The history the ranking reads: by default the last two years (730 days
// before the view's day) and at most history_max_purchases purchases; offline
// (BuildCustomerView) and online (ApplyLimits on a view with recorded
// purchases) cut alike.
TEST(CustomerView, KeepsTheLastTwoYearsAndAtMostMaxPurchases) {
  Mini m(12, {30});
  m.Buy(0, 1, kDay0 - 731);  // older than two years: dropped
  m.Buy(0, 2, kDay0 - 730);  // exactly two years before: kept
  m.Buy(0, 3, kDay0 - 400);  // past the old 365-day bound: kept
  m.Buy(0, 4, kDay0 - 10);
  m.Finish();
  const CustomerHistory h = CustomerHistory::Build(m.ds.transactions, m.ds.customers.size());
  config::RankingConfig cfg = Defaults();
  ASSERT_EQ(cfg.history_max_age_days(), 730);
  EXPECT_EQ(HistoryLimits().max_age_days, cfg.history_max_age_days());
  EXPECT_EQ(HistoryLimits().max_purchases, cfg.history_max_purchases());
  auto articles = [](const CustomerView& v) {
    std::vector<uint32_t> a;
    for (const Purchase& p : v.purchases) a.push_back(p.article);
    return a;
  };
  CustomerView view;
  BuildCustomerView(h, 0, 30, kDay0, HistoryLimitsOf(cfg), &view);
  EXPECT_EQ(articles(view), (std::vector<uint32_t>{2, 3, 4}));
  CustomerView online;
  BuildCustomerView(h, 0, 30, kDay0, HistoryLimits{1000, 100000}, &online);
  ApplyLimits(HistoryLimitsOf(cfg), &online);
  EXPECT_EQ(articles(online), articles(view));
  cfg.set_history_max_purchases(2);
  BuildCustomerView(h, 0, 30, kDay0, HistoryLimitsOf(cfg), &view);
  EXPECT_EQ(articles(view), (std::vector<uint32_t>{3, 4}));
}

TEST(RankingFeatures, ValuesForAKnownHistory) {
  Mini m(12, {30, 40});
  m.Buy(0, 3, kDay0 - 2, 0.03f, 2);
  m.Buy(0, 3, kDay0 - 20, 0.01f, 1);
  m.Buy(1, 3, kDay0 - 5);
  m.Finish();
  const CustomerHistory h = CustomerHistory::Build(m.ds.transactions, m.ds.customers.size());
  const config::RankingConfig cfg = Defaults();
  const RankingTables t = RankingTables::Build(m.ds, h, kDay0, cfg);
  CustomerView view;
  BuildCustomerView(h, 0, 30, kDay0, HistoryLimitsOf(cfg), &view);
  std::vector<Candidate> cands(2);
  cands[0].article = 3;
  cands[0].rank[kRepurchase] = 0;
  cands[0].score[kRepurchase] = 1.5f;
  cands[1].article = 11;  // never sold
  const int nf = NumRankingFeatures();
  std::vector<float> f(2 * nf);
  FeatureScratch scratch;
  ComputeRankingFeatures(view, t, cands, TwoTowerEmbeddings(), &scratch, f.data());
  auto col = [&](int row, const std::string& name) { return FeatureAt(f, row, name); };
  EXPECT_EQ(col(0, "src_repurchase_rank"), 0);
  EXPECT_EQ(col(0, "src_repurchase_score"), 1.5f);
  EXPECT_TRUE(std::isnan(col(0, "src_two_tower_rank")));
  EXPECT_EQ(col(0, "src_count"), 1);
  EXPECT_EQ(col(0, "ca_count"), 2);
  EXPECT_EQ(col(0, "ca_count_1w"), 1);
  EXPECT_EQ(col(0, "ca_count_4w"), 2);
  EXPECT_EQ(col(0, "ca_days_since_last"), 1);  // bought on kDay0 - 2, as of kDay0 - 1
  EXPECT_EQ(col(0, "a_sales_all"), 3);
  EXPECT_EQ(col(0, "a_sales_1w"), 2);
  EXPECT_EQ(col(0, "c_purchases"), 2);
  EXPECT_FLOAT_EQ(col(0, "c_mean_price"), 0.02f);
  EXPECT_FLOAT_EQ(col(0, "c_online_share"), 0.5f);
  EXPECT_EQ(col(0, "c_age"), 30);
  EXPECT_FLOAT_EQ(col(0, "a_buyer_age_mean"), (30 + 30 + 40) / 3.0f);
  EXPECT_FLOAT_EQ(col(0, "aff_product_type"), 1.0f);
  EXPECT_TRUE(std::isnan(col(0, "two_tower_cosine")));
  // An article never sold and never bought: no age, no price, count 0.
  EXPECT_EQ(col(1, "ca_count"), 0);
  EXPECT_TRUE(std::isnan(col(1, "ca_days_since_last")));
  EXPECT_TRUE(std::isnan(col(1, "a_age_days")));
  EXPECT_TRUE(std::isnan(col(1, "a_mean_price")));
  EXPECT_EQ(col(1, "src_count"), 0);
}

// The history columns of a heavy buyer, every article of the catalogue a
// candidate: each article's and each product's count is its count in the
// view, and 0 for the thousands never bought.
TEST(RankingFeatures, HistoryCountsOfAHeavyBuyerForEveryArticle) {
  constexpr int kArticles = 3000;
  Mini m(kArticles, {30});
  for (int i = 0; i < 400; ++i) m.Buy(0, static_cast<uint32_t>((i * 7919) % kArticles), kDay0 - 1 - i % 300);
  m.Finish();
  const CustomerHistory h = CustomerHistory::Build(m.ds.transactions, m.ds.customers.size());
  const config::RankingConfig cfg = Defaults();
  const RankingTables t = RankingTables::Build(m.ds, h, kDay0, cfg);
  CustomerView view;
  BuildCustomerView(h, 0, 30, kDay0, HistoryLimits{1000, 100000}, &view);
  ASSERT_EQ(view.purchases.size(), 400u);
  std::map<uint32_t, int> article_count;
  std::map<int32_t, int> product_count;
  for (const Purchase& p : view.purchases) {
    ++article_count[p.article];
    ++product_count[t.attributes(p.article).product_code];
  }
  std::vector<Candidate> cands(kArticles);
  for (int a = 0; a < kArticles; ++a) cands[a].article = static_cast<uint32_t>(a);
  const int nf = NumRankingFeatures();
  const int ca = FeatureColumn("ca_count"), cp = FeatureColumn("cp_count");
  ASSERT_LT(ca, nf);
  ASSERT_LT(cp, nf);
  std::vector<float> f(static_cast<size_t>(kArticles) * nf);
  FeatureScratch scratch;
  ComputeRankingFeatures(view, t, cands, TwoTowerEmbeddings(), &scratch, f.data());
  int bought = 0;
  for (int a = 0; a < kArticles; ++a) {
    const auto ai = article_count.find(a);
    const auto pi = product_count.find(t.attributes(a).product_code);
    ASSERT_EQ(f[a * nf + ca], ai == article_count.end() ? 0 : ai->second) << "article " << a;
    ASSERT_EQ(f[a * nf + cp], pi == product_count.end() ? 0 : pi->second) << "article " << a;
    bought += ai != article_count.end();
  }
  EXPECT_EQ(bought, static_cast<int>(article_count.size()));
}

// The similarity of a candidate to the customer's last distinct articles
// (article-tower embeddings; the candidate itself left out) and the
// customer's purchase rhythm.
TEST(RankingFeatures, SimilarityToTheLastArticlesAndThePurchaseRhythm) {
  Mini m(12, {30, 40});
  m.Buy(0, 3, kDay0 - 20);
  m.Buy(0, 5, kDay0 - 10);
  m.Buy(0, 7, kDay0 - 2);
  m.Buy(1, 7, kDay0 - 4);
  m.Finish();
  const CustomerHistory h = CustomerHistory::Build(m.ds.transactions, m.ds.customers.size());
  const config::RankingConfig cfg = Defaults();
  const RankingTables t = RankingTables::Build(m.ds, h, kDay0, cfg);
  const std::vector<float> articles =
      Embeddings4(12, {{3, {1, 0, 0, 0}}, {5, {0, 1, 0, 0}}, {7, {0, 0.6f, 0.8f, 0}}, {9, {0.5f, 0.2f, 0.1f, 0}}});
  const float customer[4] = {0, 0, 1, 0};
  std::vector<Candidate> cands(3);
  cands[0].article = 9;
  cands[1].article = 7;  // the last article bought
  cands[2].article = 5;
  const int nf = NumRankingFeatures();
  CustomerView view;
  BuildCustomerView(h, 0, 30, kDay0, HistoryLimitsOf(cfg), &view);
  std::vector<float> f(3 * nf);
  FeatureScratch scratch;
  ComputeRankingFeatures(view, t, cands, TwoTowerEmbeddings{customer, articles.data(), 4}, &scratch, f.data());
  // 9 against 7, 5, 3 (newest first): 0.2, 0.2, 0.5.
  EXPECT_FLOAT_EQ(FeatureAt(f, 0, "sim_recent_max"), 0.5f);
  EXPECT_FLOAT_EQ(FeatureAt(f, 0, "sim_recent_mean"), 0.3f);
  EXPECT_FLOAT_EQ(FeatureAt(f, 0, "sim_last"), 0.2f);
  EXPECT_FLOAT_EQ(FeatureAt(f, 0, "two_tower_cosine"), 0.1f);
  // 7 against 5 and 3 only: its own embedding does not count.
  EXPECT_FLOAT_EQ(FeatureAt(f, 1, "sim_recent_max"), 0.6f);
  EXPECT_FLOAT_EQ(FeatureAt(f, 1, "sim_recent_mean"), 0.3f);
  EXPECT_FLOAT_EQ(FeatureAt(f, 1, "sim_last"), 0.6f);  // the last one other than itself: 5
  EXPECT_FLOAT_EQ(FeatureAt(f, 2, "sim_recent_mean"), 0.3f);
  EXPECT_FLOAT_EQ(FeatureAt(f, 2, "sim_last"), 0.6f);
  // Visits 18 days apart over three visits: every 9 days; last 1 day ago.
  EXPECT_FLOAT_EQ(FeatureAt(f, 0, "c_mean_gap_days"), 9.0f);
  EXPECT_FLOAT_EQ(FeatureAt(f, 0, "c_overdue"), 1.0f / 9.0f);

  // One purchase, of the candidate itself: nothing to compare with, no rhythm.
  BuildCustomerView(h, 1, 40, kDay0, HistoryLimitsOf(cfg), &view);
  std::vector<Candidate> seven(1);
  seven[0].article = 7;
  std::vector<float> g(nf);
  ComputeRankingFeatures(view, t, seven, TwoTowerEmbeddings{customer, articles.data(), 4}, &scratch, g.data());
  EXPECT_TRUE(std::isnan(FeatureAt(g, 0, "sim_recent_max")));
  EXPECT_TRUE(std::isnan(FeatureAt(g, 0, "sim_recent_mean")));
  EXPECT_TRUE(std::isnan(FeatureAt(g, 0, "sim_last")));
  EXPECT_TRUE(std::isnan(FeatureAt(g, 0, "c_mean_gap_days")));
  EXPECT_TRUE(std::isnan(FeatureAt(g, 0, "c_overdue")));
  // Without article embeddings (no model) the similarities are missing.
  ComputeRankingFeatures(view, t, cands, TwoTowerEmbeddings(), &scratch, f.data());
  EXPECT_TRUE(std::isnan(FeatureAt(f, 0, "sim_recent_max")));
}

// The similarities are computed four candidates at a time, in AVX where the
// CPU has it: each candidate's values are those of the scalar sums, in
// dimension order, and the same bits whether it falls in a group of four or
// in the list's tail, or is scored alone, with AVX or SSE only.
TEST(RankingFeatures, SimilarityIsTheSameInAGroupOfFourAsAlone) {
  constexpr int kArticles = 40, kDim = 64;
  Mini m(kArticles, {30});
  for (int j = 0; j < 10; ++j) m.Buy(0, static_cast<uint32_t>(3 * j), kDay0 - 40 + 3 * j);
  m.Finish();
  const CustomerHistory h = CustomerHistory::Build(m.ds.transactions, m.ds.customers.size());
  const config::RankingConfig cfg = Defaults();
  const RankingTables t = RankingTables::Build(m.ds, h, kDay0, cfg);
  std::vector<float> articles(static_cast<size_t>(kArticles) * kDim);
  uint64_t state = 7;
  for (float& x : articles) x = static_cast<float>(SplitMix64(&state) % 2001) / 1000.0f - 1.0f;
  std::vector<float> customer(articles.begin(), articles.begin() + kDim);
  const TwoTowerEmbeddings emb{customer.data(), articles.data(), kDim};
  // 11 candidates: two groups of four and a tail of three, one of them an
  // article the customer bought (left out of its own comparison).
  std::vector<Candidate> cands(11);
  for (size_t i = 0; i < cands.size(); ++i) cands[i].article = static_cast<uint32_t>(2 * i + 1);
  cands[5].article = 27;
  const int nf = NumRankingFeatures();
  const auto& names = RankingFeatureNames();
  const int max_col = FeatureColumn("sim_recent_max");
  ASSERT_LT(max_col + 2, nf);
  CustomerView view;
  BuildCustomerView(h, 0, 30, kDay0, HistoryLimitsOf(cfg), &view);
  std::vector<float> f(cands.size() * nf);
  FeatureScratch scratch;
  ComputeRankingFeatures(view, t, cands, emb, &scratch, f.data());
  // SSE only: every column the same bits.
  AllowAvx(false);
  EXPECT_FALSE(UseAvx());
  std::vector<float> sse(cands.size() * nf);
  ComputeRankingFeatures(view, t, cands, emb, &scratch, sse.data());
  AllowAvx(true);
  EXPECT_EQ(std::memcmp(f.data(), sse.data(), f.size() * sizeof(float)), 0);
  // The last 8 distinct articles bought, newest first: 27, 24, ..., 6.
  std::vector<uint32_t> recent;
  for (int j = 9; j >= 2; --j) recent.push_back(static_cast<uint32_t>(3 * j));
  for (size_t i = 0; i < cands.size(); ++i) {
    SCOPED_TRACE(i);
    const float* v = articles.data() + static_cast<size_t>(cands[i].article) * kDim;
    float best = -std::numeric_limits<float>::infinity(), sum = 0;
    int m_count = 0;
    for (uint32_t r : recent) {
      if (r == cands[i].article) continue;
      const float* w = articles.data() + static_cast<size_t>(r) * kDim;
      float dot = 0;
      for (int d = 0; d < kDim; ++d) dot += v[d] * w[d];
      best = std::max(best, dot);
      sum += dot;
      ++m_count;
    }
    EXPECT_EQ(f[i * nf + max_col], best);
    EXPECT_EQ(f[i * nf + max_col + 1], sum / m_count);
    std::vector<Candidate> alone(1, cands[i]);
    std::vector<float> g(nf);
    ComputeRankingFeatures(view, t, alone, emb, &scratch, g.data());
    for (int c = max_col; c < max_col + 3; ++c) EXPECT_EQ(g[c], f[i * nf + c]) << names[c];
  }
}

// The candidate against the rest of its list: the gaps to the list's best
// two-tower score and best similarity to the last purchases, the share of
// the list that sold more last week, and the shares of its product type and
// product in the list.
TEST(RankingFeatures, TheCandidateAgainstTheRestOfItsList) {
  Mini m(12, {30, 40});
  // Customer 0 bought article 2 once; customer 1 makes last week's sales.
  const std::vector<std::array<int32_t, 3>> rows = {{0, 2, kDay0 - 10}, {1, 0, kDay0 - 1}, {1, 0, kDay0 - 2},
                                                    {1, 0, kDay0 - 3},  {1, 1, kDay0 - 2}, {1, 4, kDay0 - 3}};
  for (const auto& [c, a, day] : rows) m.Buy(static_cast<uint32_t>(c), static_cast<uint32_t>(a), day);
  m.Finish();
  const CustomerHistory h = CustomerHistory::Build(m.ds.transactions, m.ds.customers.size());
  const config::RankingConfig cfg = Defaults();
  const RankingTables t = RankingTables::Build(m.ds, h, kDay0, cfg);
  const std::vector<float> articles = Embeddings4(12, {{2, {1, 0, 0, 0}},
                                                       {0, {0.3f, 0, 0.5f, 0}},
                                                       {1, {0.1f, 0, 0.2f, 0}},
                                                       {4, {0, 0, 0.9f, 0}},
                                                       {8, {0.6f, 0, 0.1f, 0}}});
  const float customer[4] = {0, 0, 1, 0};
  // Products 1000, 1000, 1001, 1002; types 10, 11, 10, 10; last week's
  // sales 3, 1, 1, 0.
  std::vector<Candidate> cands(4);
  cands[0].article = 0;
  cands[1].article = 1;
  cands[2].article = 4;
  cands[3].article = 8;
  const int nf = NumRankingFeatures();
  CustomerView view;
  BuildCustomerView(h, 0, 30, kDay0, HistoryLimitsOf(cfg), &view);
  std::vector<float> f(4 * nf);
  FeatureScratch scratch;
  ComputeRankingFeatures(view, t, cands, TwoTowerEmbeddings{customer, articles.data(), 4}, &scratch, f.data());
  const float tt_gap[] = {-0.4f, -0.7f, 0, -0.8f}, sim_gap[] = {-0.3f, -0.5f, -0.6f, 0};
  const float sold_more[] = {0, 0.25f, 0.25f, 0.75f}, type[] = {0.75f, 0.25f, 0.75f, 0.75f};
  const float product[] = {0.5f, 0.5f, 0.25f, 0.25f};
  for (int r = 0; r < 4; ++r) {
    SCOPED_TRACE(r);
    EXPECT_NEAR(FeatureAt(f, r, "l_two_tower_gap"), tt_gap[r], 1e-6);
    EXPECT_NEAR(FeatureAt(f, r, "l_sim_recent_gap"), sim_gap[r], 1e-6);
    EXPECT_FLOAT_EQ(FeatureAt(f, r, "l_sales_1w_rank"), sold_more[r]);
    EXPECT_FLOAT_EQ(FeatureAt(f, r, "l_type_share"), type[r]);
    EXPECT_FLOAT_EQ(FeatureAt(f, r, "l_product_share"), product[r]);
  }
  // The same list in another order: each candidate keeps its values.
  std::vector<Candidate> reversed(cands.rbegin(), cands.rend());
  std::vector<float> g(4 * nf);
  ComputeRankingFeatures(view, t, reversed, TwoTowerEmbeddings{customer, articles.data(), 4}, &scratch, g.data());
  for (int r = 0; r < 4; ++r) {
    EXPECT_FLOAT_EQ(FeatureAt(g, 3 - r, "l_two_tower_gap"), FeatureAt(f, r, "l_two_tower_gap"));
    EXPECT_FLOAT_EQ(FeatureAt(g, 3 - r, "l_sales_1w_rank"), FeatureAt(f, r, "l_sales_1w_rank"));
    EXPECT_FLOAT_EQ(FeatureAt(g, 3 - r, "l_product_share"), FeatureAt(f, r, "l_product_share"));
  }
  // A shorter list: the shares are of it.
  cands.resize(2);
  ComputeRankingFeatures(view, t, cands, TwoTowerEmbeddings{customer, articles.data(), 4}, &scratch, f.data());
  EXPECT_FLOAT_EQ(FeatureAt(f, 0, "l_product_share"), 1.0f);
  EXPECT_FLOAT_EQ(FeatureAt(f, 1, "l_type_share"), 0.5f);
  EXPECT_FLOAT_EQ(FeatureAt(f, 1, "l_sales_1w_rank"), 0.5f);
  EXPECT_NEAR(FeatureAt(f, 1, "l_two_tower_gap"), -0.3f, 1e-6);
  // A longer list (the counts go eight rows at a time in AVX2, four in SSE,
  // the rest one by one): each share what counting over the list gives, on
  // either path.
  std::vector<Candidate> longer(11);
  for (uint32_t a = 0; a < 11; ++a) longer[a].article = a;
  std::vector<float> l(11 * nf);
  for (bool avx : {true, false}) {
    SCOPED_TRACE(avx ? "AVX2 where the CPU has it" : "SSE");
    AllowAvx(avx);
    ComputeRankingFeatures(view, t, longer, TwoTowerEmbeddings{customer, articles.data(), 4}, &scratch, l.data());
    AllowAvx(true);
    for (int r = 0; r < 11; ++r) {
      int above = 0, same_type = 0, same_product = 0;
      for (int o = 0; o < 11; ++o) {
        above += FeatureAt(l, o, "a_sales_1w") > FeatureAt(l, r, "a_sales_1w");
        same_type += t.attributes(longer[o].article).product_type == t.attributes(longer[r].article).product_type;
        same_product += t.attributes(longer[o].article).product_code == t.attributes(longer[r].article).product_code;
      }
      EXPECT_FLOAT_EQ(FeatureAt(l, r, "l_sales_1w_rank"), above / 11.0f) << r;
      EXPECT_FLOAT_EQ(FeatureAt(l, r, "l_type_share"), same_type / 11.0f) << r;
      EXPECT_FLOAT_EQ(FeatureAt(l, r, "l_product_share"), same_product / 11.0f) << r;
    }
    EXPECT_FLOAT_EQ(FeatureAt(l, 0, "l_type_share"), 3 / 11.0f);     // types 10, 10, 10 at rows 0, 4, 8
    EXPECT_FLOAT_EQ(FeatureAt(l, 9, "l_product_share"), 2 / 11.0f);  // product 1003: rows 9, 10
  }
  // Without embeddings the gaps are missing, the shares are not.
  ComputeRankingFeatures(view, t, cands, TwoTowerEmbeddings(), &scratch, f.data());
  EXPECT_TRUE(std::isnan(FeatureAt(f, 0, "l_two_tower_gap")));
  EXPECT_TRUE(std::isnan(FeatureAt(f, 0, "l_sim_recent_gap")));
  EXPECT_FLOAT_EQ(FeatureAt(f, 0, "l_product_share"), 1.0f);
}

// The candidate's sales among the customer's age band: shares of the
// band's sales and the lift over everyone's share, shrunk towards 1.
TEST(RankingFeatures, SalesInTheCustomersAgeBand) {
  Mini m(8, {30, 31, 70, -1});
  m.Buy(0, 2, kDay0 - 1);
  m.Buy(1, 2, kDay0 - 10);
  m.Buy(2, 5, kDay0 - 1);
  m.Buy(2, 2, kDay0 - 20);
  m.Buy(2, 6, kDay0 - 40);  // before the 4 weeks: counted nowhere
  m.Finish();
  const CustomerHistory h = CustomerHistory::Build(m.ds.transactions, m.ds.customers.size());
  const config::RankingConfig cfg = Defaults();
  const RankingTables t = RankingTables::Build(m.ds, h, kDay0, cfg);
  EXPECT_EQ(t.band_total_1w(AgeBand(30)), 1);
  EXPECT_EQ(t.band_total_4w(AgeBand(30)), 2);
  EXPECT_EQ(t.band_total_4w(AgeBand(70)), 2);
  EXPECT_EQ(t.band_total_4w(kUnknownAgeBand), 4);
  EXPECT_EQ(t.band_sales_row(AgeBand(70))[2].w4, 1);
  EXPECT_EQ(t.band_sales_row(AgeBand(70))[2].w1, 0);
  EXPECT_EQ(t.band_sales_row(kUnknownAgeBand)[6].w4, 0);
  const int nf = NumRankingFeatures();
  auto features = [&](uint32_t customer, int age) {
    CustomerView view;
    BuildCustomerView(h, customer, age, kDay0, HistoryLimitsOf(cfg), &view);
    std::vector<Candidate> cands(3);
    cands[0].article = 2;
    cands[1].article = 5;
    cands[2].article = 6;
    std::vector<float> f(3 * nf);
    FeatureScratch scratch;
    ComputeRankingFeatures(view, t, cands, TwoTowerEmbeddings(), &scratch, f.data());
    return f;
  };
  const std::vector<float> young = features(0, 30);
  EXPECT_FLOAT_EQ(FeatureAt(young, 0, "ab_share_1w"), 1000);
  EXPECT_FLOAT_EQ(FeatureAt(young, 0, "ab_share_4w"), 1000);
  EXPECT_FLOAT_EQ(FeatureAt(young, 1, "ab_share_4w"), 0);
  EXPECT_FLOAT_EQ(FeatureAt(young, 0, "ab_lift_4w"), (2 + 50 * 0.75f) / (2 + 50) / 0.75f);
  EXPECT_FLOAT_EQ(FeatureAt(young, 1, "ab_lift_4w"), (0 + 50 * 0.25f) / (2 + 50) / 0.25f);
  EXPECT_TRUE(std::isnan(FeatureAt(young, 2, "ab_lift_4w")));  // not sold in the 4 weeks
  const std::vector<float> old = features(2, 70);
  EXPECT_FLOAT_EQ(FeatureAt(old, 1, "ab_share_1w"), 1000);
  EXPECT_FLOAT_EQ(FeatureAt(old, 0, "ab_share_4w"), 500);
  EXPECT_GT(FeatureAt(old, 1, "ab_lift_4w"), 1);
  // Unknown age: everyone's shares, lift exactly 1.
  const std::vector<float> unknown = features(3, -1);
  EXPECT_FLOAT_EQ(FeatureAt(unknown, 0, "ab_share_4w"), 750);
  EXPECT_FLOAT_EQ(FeatureAt(unknown, 0, "ab_lift_4w"), 1);
  EXPECT_FLOAT_EQ(FeatureAt(unknown, 1, "ab_lift_4w"), 1);
}

// The edges: a customer without history, one with 10,000 purchases, an
// article without attributes, prices of 0. Each gets at least k candidates,
// and no feature is ever infinite (XGBoost refuses a matrix holding one, so
// one such row would fail the whole batch); missing is NaN.
TEST(RankingFeatures, EdgeCustomersAndArticlesGetKCandidatesAndFiniteFeatures) {
  Mini m(40, {30, -1, 45, 28, 33});
  Article& bare = m.ds.articles[39];  // every attribute missing
  bare.index_group_no = bare.product_type_no = bare.colour_group_code = bare.section_no = -1;
  bare.department_no = bare.garment_group_no = -1;
  for (uint32_t a = 0; a < 40; ++a) m.Buy(4, a, kDay0 - 1 - static_cast<int32_t>(a % 5));  // everything sells
  for (int i = 0; i < 10000; ++i) {
    m.Buy(1, static_cast<uint32_t>(i % 37), kDay0 - 1 - i / 50, i % 3 == 0 ? 0.0f : 0.03f, 1 + i % 2);
  }
  m.Buy(2, 3, kDay0 - 4, 0.0f);  // only free purchases: a mean price of 0
  m.Buy(2, 6, kDay0 - 9, 0.0f);
  m.Buy(3, 39, kDay0 - 2, 0.0f);  // the bare article, free
  m.Finish();
  const CustomerHistory h = CustomerHistory::Build(m.ds.transactions, m.ds.customers.size());
  const config::RankingConfig cfg = Defaults();
  const RankingTables t = RankingTables::Build(m.ds, h, kDay0, cfg);
  const int nf = NumRankingFeatures();
  std::vector<float> emb(40 * 4);
  for (size_t i = 0; i < emb.size(); ++i) emb[i] = static_cast<float>((i * 7) % 11) / 11.0f - 0.5f;
  const float customer_emb[4] = {0.5f, -0.5f, 0.5f, 0.5f};
  const int64_t hits[] = {39, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  const float hit_scores[12] = {};
  for (uint32_t c : {0u, 1u, 2u, 3u}) {
    CustomerView view;
    BuildCustomerView(h, c, m.ds.customers[c].age, kDay0, HistoryLimitsOf(cfg), &view);
    EXPECT_LE(view.purchases.size(), static_cast<size_t>(cfg.history_max_purchases())) << c;
    CandidateScratch scratch;
    std::vector<Candidate> cands;
    GenerateCandidates(view, t, TwoTowerHits{hits, hit_scores, 12}, cfg, &scratch, &cands);
    EXPECT_GE(cands.size(), 12u) << "customer " << c;
    std::vector<float> f(cands.size() * nf);
    FeatureScratch fs;
    ComputeRankingFeatures(view, t, cands, TwoTowerEmbeddings{customer_emb, emb.data(), 4}, &fs, f.data());
    for (size_t i = 0; i < f.size(); ++i) {
      EXPECT_FALSE(std::isinf(f[i])) << "customer " << c << " article " << cands[i / nf].article << " "
                                     << RankingFeatureNames()[i % nf];
    }
  }
}

// The per-customer sums and indexes the ranking stage keeps by article row
// or attribute code are emptied by a stamp, not by clearing them.
TEST(StampedArrayTest, EmptiesInConstantTimeAndListsKeysInFirstTouchedOrder) {
  StampedArray<double> a;
  a.Reset(6);
  EXPECT_EQ(a.size(), 6u);
  a[4] += 1.5;
  a[1] += 2.0;
  a[4] += 0.25;
  EXPECT_DOUBLE_EQ(a.get(4), 1.75);
  EXPECT_DOUBLE_EQ(a.get(1), 2.0);
  EXPECT_DOUBLE_EQ(a.get(0), 0.0);
  EXPECT_FALSE(a.contains(0));  // get does not touch
  EXPECT_TRUE(a.contains(4));
  EXPECT_EQ(a.touched(), (std::vector<uint32_t>{4, 1}));
  a.Reset(6);  // the next customer: nothing of the last one shows
  EXPECT_TRUE(a.touched().empty());
  for (uint32_t k = 0; k < 6; ++k) {
    EXPECT_FALSE(a.contains(k)) << k;
    EXPECT_DOUBLE_EQ(a.get(k), 0.0) << k;
  }
  a[4] += 3.0;  // starts again from 0, not from 1.75
  EXPECT_DOUBLE_EQ(a.get(4), 3.0);
  a.Reset(9);  // a new catalogue: resized, still empty
  EXPECT_EQ(a.size(), 9u);
  EXPECT_FALSE(a.contains(4));
  a[8] += 1.0;
  EXPECT_EQ(a.touched(), (std::vector<uint32_t>{8}));

  StampedArray<std::pair<double, uint32_t>> best;
  best.Reset(3);
  best[2] = {0.5, 7};
  best.Reset(3);
  EXPECT_EQ(best[2], (std::pair<double, uint32_t>{0.0, 0}));  // value-initialised when first touched
}

// One scratch serves a thread's customers one after another: what each
// customer gets must not depend on who came before.
TEST(RankingSources, AReusedScratchGivesEachCustomerWhatAFreshOneGives) {
  Mini m(60, {25, 31, 47, 22, 63, 35});
  Rng rng(7);
  for (int i = 0; i < 400; ++i) {
    const uint32_t c = static_cast<uint32_t>(rng.Next() % 5);  // customer 5 buys nothing
    m.Buy(c, static_cast<uint32_t>(rng.Next() % 60), kDay0 - 1 - static_cast<int32_t>(rng.Next() % 60));
  }
  m.Finish();
  const CustomerHistory h = CustomerHistory::Build(m.ds.transactions, m.ds.customers.size());
  const config::RankingConfig cfg = Defaults();
  const RankingTables t = RankingTables::Build(m.ds, h, kDay0, cfg);
  const int64_t hits[] = {3, 17, 29, 41, 55};
  const float hit_scores[] = {0.9f, 0.8f, 0.7f, 0.6f, 0.5f};
  CandidateScratch shared;
  for (int round = 0; round < 2; ++round) {
    for (uint32_t c : {0u, 5u, 1u, 2u, 5u, 3u, 4u, 0u}) {
      CustomerView view;
      BuildCustomerView(h, c, m.ds.customers[c].age, kDay0, HistoryLimitsOf(cfg), &view);
      const TwoTowerHits tt{hits, hit_scores, 5};
      std::vector<Candidate> reused, fresh;
      GenerateCandidates(view, t, tt, cfg, &shared, &reused);
      CandidateScratch own;
      GenerateCandidates(view, t, tt, cfg, &own, &fresh);
      ASSERT_EQ(reused.size(), fresh.size()) << "customer " << c;
      EXPECT_FALSE(fresh.empty()) << "customer " << c;
      for (size_t i = 0; i < fresh.size(); ++i) {
        EXPECT_EQ(reused[i].article, fresh[i].article) << c << " " << i;
        EXPECT_EQ(reused[i].copurchase_anchor, fresh[i].copurchase_anchor) << c << " " << i;
        EXPECT_EQ(reused[i].product_anchor, fresh[i].product_anchor) << c << " " << i;
        for (int src = 0; src < kNumSources; ++src) {
          EXPECT_EQ(reused[i].rank[src], fresh[i].rank[src]) << c << " " << i << " " << SourceName(src);
          EXPECT_EQ(reused[i].score[src], fresh[i].score[src]) << c << " " << i << " " << SourceName(src);
        }
      }
      if (c == 5) EXPECT_TRUE(ProposedBy(fresh, kRepurchase).empty());
      if (c == 0) EXPECT_FALSE(ProposedBy(fresh, kCoPurchase).empty());
    }
  }
}

TEST(RankingTables, SaveAndLoadRoundTripAndDamageIsRefused) {
  Mini m(20, {30, 40, 50});
  for (int i = 0; i < 30; ++i) m.Buy(i % 3, (i * 7) % 20, kDay0 - 1 - i % 9);
  m.Finish();
  const CustomerHistory h = CustomerHistory::Build(m.ds.transactions, m.ds.customers.size());
  const RankingTables t = RankingTables::Build(m.ds, h, kDay0, Defaults());
  TempDir dir;
  ASSERT_TRUE(t.Save(dir.File("t.bin")).ok());
  auto back = RankingTables::Load(dir.File("t.bin"));
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_TRUE(back->Save(dir.File("t2.bin")).ok());
  EXPECT_EQ(hmrec::testing::ReadFile(dir.File("t.bin")), hmrec::testing::ReadFile(dir.File("t2.bin")));
  EXPECT_EQ(back->day(), kDay0);
  // The attribute codes (derived, not stored): one per distinct value, the
  // value back from the code, the same after loading.
  for (int i = 0; i < kAffinityAttributes; ++i) {
    std::set<int32_t> values;
    for (uint32_t a = 0; a < t.num_articles(); ++a) {
      const int32_t v = AffinityAttribute(t.attributes(a), i);
      values.insert(v);
      ASSERT_LT(t.code(a, i), t.num_codes(i));
      EXPECT_EQ(t.value_of(i, t.code(a, i)), v) << a << " " << i;
      EXPECT_EQ(back->code(a, i), t.code(a, i)) << a << " " << i;
      EXPECT_EQ(t.codes(a)[i], t.code(a, i));
    }
    EXPECT_EQ(t.num_codes(i), values.size()) << i;
    EXPECT_EQ(back->num_codes(i), values.size()) << i;
  }
  std::string bytes = hmrec::testing::ReadFile(dir.File("t.bin"));
  bytes[bytes.size() / 2] ^= 0x40;
  hmrec::testing::WriteFile(dir.File("bad.bin"), bytes);
  auto bad = RankingTables::Load(dir.File("bad.bin"));
  EXPECT_FALSE(bad.ok());
}

// A catalogue refresh appends articles that never sold: the trained rows
// keep every value, the new ones join their product and their type's new
// arrivals (at the type's median), and the two-tower search always holds them.
TEST(RankingTables, ACatalogueRefreshAppendsNeverSoldArticlesWithoutMovingTheOthers) {
  Mini m(40, {30, 30, 30, 30});
  m.Buy(0, 0, kDay0 - 60);  // type 10
  m.Buy(0, 4, kDay0 - 60);  // type 10
  for (int d = 30; d >= 2; d -= 4) m.Buy(1 + d % 3, 8, kDay0 - d);
  for (int i = 0; i < 3; ++i) m.Buy(1 + i, 16, kDay0 - 3 + i);         // type 10, new: 1 a day
  for (int i = 0; i < 4; ++i) m.Buy(1 + i % 3, 28, kDay0 - 10 + i);    // type 10, new: 0.4 a day
  for (int i = 0; i < 9; ++i) m.Buy(1 + i % 3, 13, kDay0 - 2);         // type 11, new
  for (int i = 0; i < 4; ++i) m.Buy(1 + i % 3, 9, kDay0 - 3 + i % 2);  // co-purchased with 8, 13
  m.Finish();
  const CustomerHistory h = CustomerHistory::Build(m.ds.transactions, m.ds.customers.size());
  config::RankingConfig cfg = Defaults();
  const RankingTables t = RankingTables::Build(m.ds, h, kDay0, cfg);
  // 40: a new colour of article 16's product (type 10); 41: a new product of
  // a type nobody sold.
  ArticleAttributes colour = t.attributes(16);
  ArticleAttributes fresh{7777, 1, 99, 3, 2, 1, 1001};
  const RankingTables u = t.WithArticles({colour, fresh});
  ASSERT_EQ(u.num_articles(), 42u);
  for (uint32_t a = 0; a < 40; ++a) {
    EXPECT_EQ(u.stats(a).sales_all, t.stats(a).sales_all) << a;
    EXPECT_EQ(u.stats(a).first_sale_day, t.stats(a).first_sale_day) << a;
    EXPECT_EQ(u.neighbours_end(a) - u.neighbours_begin(a), t.neighbours_end(a) - t.neighbours_begin(a)) << a;
    for (int b = 0; b <= kAgeBands; ++b) EXPECT_EQ(u.band_sales_row(b)[a].w4, t.band_sales_row(b)[a].w4);
  }
  // Attribute codes: the trained rows keep theirs, 40 shares 16's, 41's
  // new type gets a new code.
  for (int i = 0; i < kAffinityAttributes; ++i) {
    for (uint32_t a = 0; a < 40; ++a) EXPECT_EQ(u.code(a, i), t.code(a, i)) << a << " " << i;
    EXPECT_EQ(u.code(40, i), t.code(16, i)) << i;
  }
  EXPECT_EQ(u.num_codes(1), t.num_codes(1) + 1);
  EXPECT_EQ(u.value_of(1, u.code(41, 1)), 99);
  EXPECT_EQ(u.stats(40).sales_all, 0);
  EXPECT_EQ(u.stats(40).first_sale_day, ArticleStats::kNoDay);
  EXPECT_TRUE(std::isnan(u.stats(41).mean_price));
  EXPECT_EQ(u.neighbours_begin(41), u.neighbours_end(41));
  // Siblings: 16's product now lists 40, after the ones that sold.
  std::vector<uint32_t> siblings;
  for (const ScoredArticle* s = u.siblings_begin(16); s != u.siblings_end(16); ++s) siblings.push_back(s->article);
  EXPECT_THAT(siblings, ::testing::ElementsAre(16, 15, 17, 40));
  ASSERT_EQ(u.siblings_end(41) - u.siblings_begin(41), 1);
  EXPECT_EQ(u.siblings_begin(41)->article, 41u);
  // New arrivals: 40 at the median of type 10's (16 and 28), 41 at that of all.
  auto arrivals = [&](int32_t type) {
    std::vector<std::pair<uint32_t, float>> v;
    for (auto [a, e] = u.new_arrivals(type); a != e; ++a) v.emplace_back(a->article, a->score);
    return v;
  };
  const auto type10 = arrivals(10);
  ASSERT_EQ(type10.size(), 3u);
  EXPECT_EQ(type10[0].first, 16u);
  EXPECT_EQ(type10[1].first, 40u);  // ties with 16 (upper median of two), after it by row
  EXPECT_FLOAT_EQ(type10[1].second, type10[0].second);
  EXPECT_EQ(type10[2].first, 28u);
  const auto type99 = arrivals(99);
  ASSERT_EQ(type99.size(), 1u);
  EXPECT_EQ(type99[0].first, 41u);
  EXPECT_GT(type99[0].second, 0.0f);
  // The customer of type 10 is offered the new colour among the new arrivals.
  CustomerView view;
  BuildCustomerView(h, 0, 30, kDay0, HistoryLimitsOf(cfg), &view);
  CandidateScratch scratch;
  std::vector<Candidate> cands;
  GenerateCandidates(view, u, TwoTowerHits(), cfg, &scratch, &cands);
  const Candidate* c = Find(cands, 40);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->from(kNewArrival));
  // The two-tower search: only what sold lately, plus every appended row.
  cfg.set_two_tower_candidates(1);
  const std::vector<int64_t> trained_only = TwoTowerSearchRows(u, cfg);
  EXPECT_EQ(std::count(trained_only.begin(), trained_only.end(), 40), 0);
  const std::vector<int64_t> searched = TwoTowerSearchRows(u, cfg, 40);
  EXPECT_EQ(std::count(searched.begin(), searched.end(), 40), 1);
  EXPECT_EQ(std::count(searched.begin(), searched.end(), 41), 1);
  EXPECT_EQ(searched.size(), trained_only.size() + 2);
  // The appended tables pass the loader's checks.
  TempDir dir;
  ASSERT_TRUE(u.Save(dir.File("u.bin")).ok());
  auto back = RankingTables::Load(dir.File("u.bin"));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->num_articles(), 42u);
  // The taste lists' log1p scores are derived for the built, the refreshed
  // and the loaded tables alike, and the taste sources score the same on
  // the refreshed tables and on them saved and loaded.
  for (const RankingTables* x : std::initializer_list<const RankingTables*>{&t, &u, &*back}) {
    int entries = 0;
    for (int32_t type : {10, 11, 12, 13, 99}) {
      for (auto [a, e] = x->selling(type); a != e; ++a, ++entries) {
        EXPECT_EQ(x->selling_log1p(a), std::log1p(a->score)) << type;
      }
      for (auto [a, e] = x->new_arrivals(type); a != e; ++a, ++entries) {
        EXPECT_EQ(x->new_arrival_log1p(a), std::log1p(a->score)) << type;
      }
    }
    EXPECT_GE(entries, 5);
  }
  std::vector<Candidate> loaded_cands;
  GenerateCandidates(view, *back, TwoTowerHits(), cfg, &scratch, &loaded_cands);
  GenerateCandidates(view, u, TwoTowerHits(), cfg, &scratch, &cands);
  ASSERT_EQ(loaded_cands.size(), cands.size());
  for (size_t i = 0; i < cands.size(); ++i) {
    EXPECT_EQ(loaded_cands[i].article, cands[i].article);
    for (int src : {kTaste, kNewArrival}) EXPECT_EQ(loaded_cands[i].score[src], cands[i].score[src]);
  }
}

// `groups` groups of 20 rows of `num_features` features; row(rng, i, s)
// appends row i's features and label to s.
template <typename Row>
RankingSet MakeGroups(uint64_t seed, int groups, int num_features, Row row) {
  Rng rng(seed);
  RankingSet s;
  s.num_features = num_features;
  for (int g = 0; g < groups; ++g) {
    const int n = 20;
    s.group_sizes.push_back(n);
    for (int i = 0; i < n; ++i) row(rng, i, &s);
  }
  return s;
}

// Synthetic groups whose label depends on feature 0 (and not on the noise
// in feature 1): the ranker must learn to put positives first.
RankingSet MakeSet(uint64_t seed, int groups) {
  return MakeGroups(seed, groups, 3, [](Rng& rng, int i, RankingSet* s) {
    const float signal = static_cast<float>(rng.Uniform());
    s->features.push_back(signal);
    s->features.push_back(static_cast<float>(rng.Uniform()));
    s->features.push_back(i % 3 == 0 ? std::numeric_limits<float>::quiet_NaN() : 1.0f);
    s->labels.push_back(signal > 0.9f && rng.Uniform() < 0.9 ? 1.0f : 0.0f);
  });
}

TEST(Ranker, LearnsAndRoundTripsDeterministically) {
  // Two training sets (label weeks), as the trainer passes them.
  const RankingSet train = MakeSet(1, 150), train2 = MakeSet(3, 150), valid = MakeSet(2, 100);
  config::RankingConfig rc = Defaults();
  rc.mutable_ranker()->set_max_rounds(30);
  RankerTrainReport report;
  auto r = Ranker::Train(rc.ranker(), 2, {train, train2}, valid, false, &report);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_LT(report.kept, report.tried.size());
  EXPECT_GE(report.Kept().best_round, 1);
  EXPECT_LE(report.Kept().best_round, report.Kept().rounds);
  EXPECT_GT(report.Kept().best_valid_map, 0.6);
  // Higher signal, higher score.
  const float rows[6] = {0.95f, 0.5f, 1.0f, 0.1f, 0.5f, 1.0f};
  float scores[2];
  ASSERT_TRUE((*r)->Predict(rows, 2, 3, scores).ok());
  EXPECT_GT(scores[0], scores[1]);
  // Saved and loaded: the same scores; trained again: the same model.
  TempDir dir;
  ASSERT_TRUE((*r)->Save(dir.File("m.ubj")).ok());
  auto loaded = Ranker::Load(dir.File("m.ubj"), 1);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->num_features(), 3);
  float again[2];
  ASSERT_TRUE((*loaded)->Predict(rows, 2, 3, again).ok());
  EXPECT_EQ(again[0], scores[0]);
  EXPECT_EQ(again[1], scores[1]);
  RankerTrainReport report2;
  auto r2 = Ranker::Train(rc.ranker(), 2, {train, train2}, valid, false, &report2);
  ASSERT_TRUE(r2.ok());
  ASSERT_TRUE((*r2)->Save(dir.File("m2.ubj")).ok());
  EXPECT_EQ(hmrec::testing::ReadFile(dir.File("m.ubj")), hmrec::testing::ReadFile(dir.File("m2.ubj")));
  // The wrong width is refused, naming both.
  absl::Status wrong = (*loaded)->Predict(rows, 1, 2, again);
  EXPECT_EQ(wrong.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(wrong.message()), HasSubstr("expects 3 features"));
  // A damaged model file is refused.
  hmrec::testing::WriteFile(dir.File("bad.ubj"), "not a model");
  EXPECT_FALSE(Ranker::Load(dir.File("bad.ubj"), 1).ok());
}

// Several learning rates: each is trained on the same matrices; a later one
// replaces the kept ranker only when it beats it on the validation groups
// by more than two standard errors, and the kept one is the very ranker
// that rate alone would give.
// Groups whose positives are the rows where four features sum high: a
// depth-2 tree sees two of them, so the ranker needs many different trees,
// which a tiny learning rate does not grow (its trees stay alike).
RankingSet MakeAdditiveSet(uint64_t seed, int groups) {
  return MakeGroups(seed, groups, 4, [](Rng& rng, int, RankingSet* s) {
    float sum = 0;
    for (int j = 0; j < 4; ++j) {
      const float x = static_cast<float>(rng.Uniform());
      s->features.push_back(x);
      sum += x;
    }
    s->labels.push_back(sum > 2.7f ? 1.0f : 0.0f);
  });
}

TEST(Ranker, KeepsALaterLearningRateOnlyWhenItIsClearlyBetter) {
  const RankingSet train = MakeAdditiveSet(1, 300), valid = MakeAdditiveSet(2, 300);
  config::RankerParams p = Defaults().ranker();
  p.set_max_rounds(20);
  p.set_max_depth(2);
  p.clear_learning_rate_choices();
  const std::vector<double> rates = {0.001, 0.5, 0.6};
  std::vector<double> best_alone;
  TempDir dir;
  for (double rate : rates) {
    p.set_learning_rate(rate);
    RankerTrainReport alone;
    auto r = Ranker::Train(p, 1, {train}, valid, false, &alone);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(alone.tried.size(), 1u);
    EXPECT_EQ(alone.kept, 0u);
    EXPECT_EQ(alone.Kept().learning_rate, rate);
    best_alone.push_back(alone.Kept().best_valid_map);
    ASSERT_TRUE((*r)->Save(dir.File(absl::StrCat("alone-", rate, ".ubj"))).ok());
  }
  for (double rate : rates) p.add_learning_rate_choices(rate);
  p.set_learning_rate(0.7);  // ignored when there are choices
  RankerTrainReport report;
  auto r = Ranker::Train(p, 1, {train}, valid, false, &report);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(report.tried.size(), rates.size());
  size_t want = 0;
  for (size_t i = 0; i < rates.size(); ++i) {
    const RankerTrainReport::Tried& t = report.tried[i];
    EXPECT_EQ(t.learning_rate, rates[i]);
    EXPECT_EQ(t.best_valid_map, best_alone[i]);
    EXPECT_EQ(t.valid_map.size(), static_cast<size_t>(t.rounds));
    if (i > 0 && Ranker::ClearlyBetter(t.map_gain, t.map_gain_se)) want = i;
  }
  // The second rate is clearly better than the first here; the third has a
  // higher MAP@12 than the second, but not clearly: keeping the first, the
  // last or the best MAP@12 would each fail below.
  ASSERT_EQ(want, 1u);
  ASSERT_GT(best_alone[2], best_alone[1]);
  EXPECT_EQ(report.kept, want);
  EXPECT_EQ(report.Kept().learning_rate, rates[want]);
  EXPECT_EQ(report.Kept().best_valid_map, best_alone[want]);
  ASSERT_TRUE((*r)->Save(dir.File("chosen.ubj")).ok());
  EXPECT_EQ(hmrec::testing::ReadFile(dir.File("chosen.ubj")),
            hmrec::testing::ReadFile(dir.File(absl::StrCat("alone-", rates[want], ".ubj"))));
  // The rule itself: strictly beyond two standard errors, and never a loss.
  EXPECT_TRUE(Ranker::ClearlyBetter(0.0021, 0.001));
  EXPECT_FALSE(Ranker::ClearlyBetter(0.002, 0.001));
  EXPECT_FALSE(Ranker::ClearlyBetter(0, 0));
  EXPECT_FALSE(Ranker::ClearlyBetter(-0.001, 0));
  // A rate that cannot train is refused, naming it.
  p.add_learning_rate_choices(0);
  absl::Status bad = Ranker::Train(p, 1, {train}, valid, false, &report).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), HasSubstr("learning rate 0"));
}

// A ranker of up to 30 rounds (none stopped early) for the cascade tests,
// and the group offsets of a test set.
absl::StatusOr<std::unique_ptr<Ranker>> TrainCascadeRanker() {
  const RankingSet train = MakeSet(1, 150), valid = MakeSet(2, 100);
  config::RankingConfig rc = Defaults();
  rc.mutable_ranker()->set_max_rounds(30);
  rc.mutable_ranker()->set_early_stopping_rounds(30);
  RankerTrainReport report;
  return Ranker::Train(rc.ranker(), 1, {train}, valid, false, &report);
}
std::vector<size_t> GroupOffsets(const RankingSet& set) {
  std::vector<size_t> offsets = {0};
  for (uint32_t g : set.group_sizes) offsets.push_back(offsets.back() + g);
  return offsets;
}

// The refit: the rate and round count are chosen on the validation groups,
// then the served ranker is boosted again from scratch on the training sets
// and the refit set together for that many rounds. Groups whose label in
// the training weeks follows feature 0 and, in the refit week alone,
// feature 1: only the refitted ranker orders by feature 1.
RankingSet MakeShiftedSet(uint64_t seed, int groups, int signal_feature) {
  return MakeGroups(seed, groups, 3, [signal_feature](Rng& rng, int, RankingSet* s) {
    float x[3];
    for (float& v : x) v = static_cast<float>(rng.Uniform());
    s->features.insert(s->features.end(), x, x + 3);
    s->labels.push_back(x[signal_feature] > 0.85f ? 1.0f : 0.0f);
  });
}

TEST(Ranker, ARefitLearnsTheLastWeekForTheChosenRounds) {
  const RankingSet train = MakeShiftedSet(1, 150, 0), valid = MakeShiftedSet(2, 100, 0);
  const RankingSet last_week = MakeShiftedSet(3, 600, 1);
  config::RankingConfig rc = Defaults();
  rc.mutable_ranker()->set_max_rounds(30);
  rc.mutable_ranker()->clear_learning_rate_choices();
  rc.mutable_ranker()->set_learning_rate(0.3);
  RankerTrainReport plain_report, report;
  auto plain = Ranker::Train(rc.ranker(), 2, {train}, valid, false, &plain_report);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain_report.refit_rounds, 0);
  std::unique_ptr<Ranker> early_stopped;
  auto refitted = Ranker::Train(rc.ranker(), 2, {train}, valid, false, &report, last_week, &early_stopped);
  ASSERT_TRUE(refitted.ok()) << refitted.status();
  ASSERT_NE(early_stopped, nullptr);
  // The choice is the same as without the refit set, and the refit boosts
  // exactly the chosen rounds.
  EXPECT_EQ(report.Kept().best_round, plain_report.Kept().best_round);
  EXPECT_EQ(report.refit_rounds, report.Kept().best_round);
  EXPECT_EQ((*refitted)->rounds(), report.Kept().best_round);
  EXPECT_EQ(early_stopped->rounds(), report.Kept().best_round);
  // Feature 0 high in both rows, feature 1 high only in the first.
  const float rows[6] = {0.95f, 0.95f, 0.5f, 0.95f, 0.05f, 0.5f};
  float before[2], after[2], without[2];
  ASSERT_TRUE(early_stopped->Predict(rows, 2, 3, before).ok());
  ASSERT_TRUE((*refitted)->Predict(rows, 2, 3, after).ok());
  ASSERT_TRUE((*plain)->Predict(rows, 2, 3, without).ok());
  EXPECT_EQ(before[0], without[0]);
  EXPECT_EQ(before[1], without[1]);
  EXPECT_NEAR(before[0], before[1], 0.05f) << "feature 1 is noise in the training weeks";
  EXPECT_GT(after[0], after[1] + 0.1f) << "the refit week's signal";
  // No refit set: nothing refitted, no early-stopped ranker handed back.
  RankerTrainReport none;
  std::unique_ptr<Ranker> kept_none = std::move(early_stopped);
  auto again = Ranker::Train(rc.ranker(), 2, {train}, valid, false, &none, RankingSet(), &kept_none);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(kept_none, nullptr);
  EXPECT_EQ(none.refit_rounds, 0);
}

// The cascade: the first trees on every row, the rest on each group's best.
// Keeping every row gives the full model's order; keeping fewer puts the
// dropped rows after every kept one, and the kept are ordered by the full
// model.
TEST(Ranker, CascadeScoresTheKeptRowsWithTheWholeModel) {
  auto r = TrainCascadeRanker();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_GT((*r)->rounds(), 5);
  const RankingSet test = MakeSet(9, 20);
  const std::vector<size_t> offsets = GroupOffsets(test);
  std::vector<float> full(test.rows()), all_kept, cascade;
  ASSERT_TRUE((*r)->PredictMargins(test.features.data(), test.rows(), 3, 0, 0, full.data()).ok());
  CascadeScratch scratch;
  ASSERT_TRUE(ScoreGroups(**r, test.features.data(), offsets, 3, 0, 0, &all_kept, &scratch).ok());
  EXPECT_EQ(all_kept, full) << "cascade off: the whole model on every row";
  ASSERT_TRUE(ScoreGroups(**r, test.features.data(), offsets, 3, 3, 1000, &all_kept, &scratch).ok());
  auto order_of = [](const float* s, size_t n) {
    std::vector<int> o(n);
    std::iota(o.begin(), o.end(), 0);
    std::stable_sort(o.begin(), o.end(), [&](int a, int b) { return s[a] > s[b]; });
    return o;
  };
  for (size_t g = 0; g + 1 < offsets.size(); ++g) {
    const size_t n = offsets[g + 1] - offsets[g];
    EXPECT_EQ(order_of(all_kept.data() + offsets[g], n), order_of(full.data() + offsets[g], n)) << "group " << g;
  }
  const int keep = 5;
  ASSERT_TRUE(ScoreGroups(**r, test.features.data(), offsets, 3, 3, keep, &cascade, &scratch).ok());
  for (size_t g = 0; g + 1 < offsets.size(); ++g) {
    std::vector<std::pair<float, float>> kept;  // (cascade score, full score)
    float lowest_kept = 1e30f, highest_dropped = -1e30f;
    for (size_t i = offsets[g]; i < offsets[g + 1]; ++i) {
      if (cascade[i] > -kDropped / 2) {
        kept.emplace_back(cascade[i], full[i]);
        lowest_kept = std::min(lowest_kept, cascade[i]);
      } else {
        highest_dropped = std::max(highest_dropped, cascade[i]);
      }
    }
    ASSERT_EQ(kept.size(), static_cast<size_t>(keep)) << "group " << g;
    EXPECT_GT(lowest_kept, highest_dropped);
    std::sort(kept.begin(), kept.end());
    for (size_t i = 1; i < kept.size(); ++i) EXPECT_LE(kept[i - 1].second, kept[i].second) << "kept rows out of order";
  }
}

// A cascade capped at `trees` rounds scores like the first `trees` rounds
// of the model (what a ranker trained with max_rounds = trees would serve):
// with every row kept, the same order as those trees alone.
TEST(Ranker, ACappedCascadeUsesOnlyTheFirstTrees) {
  auto r = TrainCascadeRanker();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_GT((*r)->rounds(), 8);
  const RankingSet test = MakeSet(9, 20);
  const std::vector<size_t> offsets = GroupOffsets(test);
  const int cap = 6;
  std::vector<float> first(test.rows()), all(test.rows()), capped, kept_all;
  ASSERT_TRUE((*r)->PredictMargins(test.features.data(), test.rows(), 3, 0, cap, first.data()).ok());
  ASSERT_TRUE((*r)->PredictMargins(test.features.data(), test.rows(), 3, 0, 0, all.data()).ok());
  ASSERT_NE(first, all) << "the later trees change the margins";
  CascadeScratch scratch;
  // No cascade, capped: exactly the first trees' margins.
  ASSERT_TRUE(ScoreGroups(**r, test.features.data(), offsets, 3, 0, 0, &capped, &scratch, cap).ok());
  EXPECT_EQ(capped, first);
  // A cascade that keeps every row: the capped model's order in each group.
  ASSERT_TRUE(ScoreGroups(**r, test.features.data(), offsets, 3, 2, 1000, &kept_all, &scratch, cap).ok());
  for (size_t g = 0; g + 1 < offsets.size(); ++g) {
    for (size_t i = offsets[g]; i < offsets[g + 1]; ++i) {
      for (size_t j = offsets[g]; j < offsets[g + 1]; ++j) {
        if (first[i] > first[j] + 1e-5f) EXPECT_GT(kept_all[i], kept_all[j]) << "group " << g;
      }
    }
  }
  // A cap at or above the model's rounds is the whole model.
  ASSERT_TRUE(ScoreGroups(**r, test.features.data(), offsets, 3, 0, 0, &capped, &scratch, 1000).ok());
  EXPECT_EQ(capped, all);
}

}  // namespace
}  // namespace hmrec
