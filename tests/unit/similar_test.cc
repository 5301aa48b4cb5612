#include "similar/similar_articles.h"

#include <cmath>
#include <fstream>
#include <set>

#include "data/dates.h"
#include "data/hm_data.h"
#include "data/ids.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "similar/similar_eval.h"
#include "tests/unit/test_util.h"

namespace hmrec {
namespace {

using hmrec::testing::TempDir;

// Eight articles on a circle (unit vectors at 0, 10, 25, 45 degrees, then
// 180, 190, 205, 225: no two at the same distance from a third), two per
// product code.
std::vector<float> Circle() {
  static constexpr double kDeg[4] = {0, 10, 25, 45};
  std::vector<float> v;
  for (int a = 0; a < 8; ++a) {
    const double deg = (a < 4 ? 0 : 180) + kDeg[a % 4];
    v.push_back(static_cast<float>(std::cos(deg * M_PI / 180)));
    v.push_back(static_cast<float>(std::sin(deg * M_PI / 180)));
  }
  return v;
}

std::vector<uint32_t> Rows(const std::vector<SimilarCandidate>& c) {
  std::vector<uint32_t> r;
  for (const SimilarCandidate& x : c) r.push_back(x.row);
  return r;
}

TEST(SimilarArticles, EmbeddingAloneIsTheNearestByCosineWithoutTheQuery) {
  const std::vector<float> v = Circle();
  const SimilarArticles s(v.data(), 2, {1, 1, 2, 2, 3, 3, 4, 4}, {9, 9, 9, 9, 8, 8, 8, 8}, nullptr);
  SimilarArticles::Scratch scratch;
  std::vector<std::vector<SimilarCandidate>> out;
  s.Find({{0}, {5}}, SimilarMix::Only(kSimilarEmbedding, 3), nullptr, 1, &scratch, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(Rows(out[0]), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(Rows(out[1]), (std::vector<uint32_t>{4, 6, 7}));  // from 190 degrees: 180, 205, 225
  EXPECT_EQ(out[0][0].rank[kSimilarEmbedding], 0);
  EXPECT_NEAR(out[0][0].source_score[kSimilarEmbedding], std::cos(10 * M_PI / 180), 1e-5);
  EXPECT_FLOAT_EQ(out[0][0].score, 1.0f / kSimilarRankConstant);
  EXPECT_FALSE(out[0][0].from(kSimilarSameProduct));
}

// A customer's order is one more ranked list: the candidate nearest the
// customer's embedding gains the most, and the blend's best grows by it.
TEST(SimilarArticles, PersonaliseMovesWhatTheCustomerLikesUp) {
  const std::vector<float> v = Circle();
  const SimilarArticles s(v.data(), 2, {1, 1, 2, 2, 3, 3, 4, 4}, {9, 9, 9, 9, 8, 8, 8, 8}, nullptr);
  SimilarArticles::Scratch scratch;
  std::vector<std::vector<SimilarCandidate>> out;
  SimilarMix mix = SimilarMix::Only(kSimilarEmbedding, 3);
  s.Find({{0}}, mix, nullptr, 1, &scratch, &out);
  ASSERT_EQ(Rows(out[0]), (std::vector<uint32_t>{1, 2, 3}));
  // A customer pointing at 45 degrees (article 3): 3, then 2, then 1.
  const float customer[2] = {static_cast<float>(std::cos(M_PI / 4)), static_cast<float>(std::sin(M_PI / 4))};
  mix.customer_weight = 2.0f;
  std::vector<SimilarCandidate> mine = out[0];
  s.Personalise(customer, mix, &mine);
  EXPECT_EQ(Rows(mine), (std::vector<uint32_t>{3, 2, 1}));
  EXPECT_EQ(mine[0].customer_rank, 0);
  EXPECT_NEAR(mine[0].customer_score, 1.0, 1e-5);
  EXPECT_FLOAT_EQ(mine[0].score, 1.0f / (kSimilarRankConstant + 2) + 2.0f / kSimilarRankConstant);
  EXPECT_EQ(mine[0].rank[kSimilarEmbedding], 2) << "the source's own rank is kept";
  EXPECT_FLOAT_EQ(SimilarArticles::MaxScore(mix, true), 3.0f / kSimilarRankConstant);
  // Weight 0: the order stays the sources'.
  mix.customer_weight = 0;
  mine = out[0];
  s.Personalise(customer, mix, &mine);
  EXPECT_EQ(Rows(mine), (std::vector<uint32_t>{1, 2, 3}));
}

// A basket is one query (its embeddings summed); same_product proposes the
// basket's variants with the article that led there; `allowed` holds.
TEST(SimilarArticles, ABasketFusesTheSourcesAndHonoursAllowed) {
  const std::vector<float> v = Circle();
  const SimilarArticles s(v.data(), 2, {1, 1, 2, 2, 3, 3, 4, 4}, {9, 9, 9, 9, 8, 8, 8, 8}, nullptr);
  SimilarArticles::Scratch scratch;
  std::vector<std::vector<SimilarCandidate>> out;
  SimilarMix mix;
  mix.depth = 8;
  s.Find({{0, 2}}, mix, nullptr, 1, &scratch, &out);
  const std::vector<SimilarCandidate>& c = out[0];
  std::set<uint32_t> rows;
  for (const SimilarCandidate& x : c) rows.insert(x.row);
  EXPECT_FALSE(rows.count(0) || rows.count(2)) << "a query article came back";
  // Rows 1 (variant of 0, nearest the basket's 12.5 degrees) and 3 (variant
  // of 2, next nearest) lead: two sources agree on them.
  ASSERT_GE(c.size(), 2u);
  EXPECT_EQ(std::set<uint32_t>({c[0].row, c[1].row}), std::set<uint32_t>({1, 3}));
  for (int i : {0, 1}) {
    EXPECT_TRUE(c[static_cast<size_t>(i)].from(kSimilarEmbedding));
    EXPECT_TRUE(c[static_cast<size_t>(i)].from(kSimilarSameProduct));
    EXPECT_EQ(c[static_cast<size_t>(i)].anchor, c[static_cast<size_t>(i)].row == 1 ? 0 : 2);
  }
  for (size_t i = 1; i < c.size(); ++i) EXPECT_GE(c[i - 1].score, c[i].score);
  // Refused rows never come back.
  s.Find(
      {{0, 2}}, mix, [](size_t, uint32_t row) { return row != 1 && row != 4; }, 1, &scratch, &out);
  for (const SimilarCandidate& x : out[0]) EXPECT_TRUE(x.row != 1 && x.row != 4) << x.row;
  EXPECT_FLOAT_EQ(SimilarArticles::MaxScore(mix), 3.0f / kSimilarRankConstant);
}

// The offline measurement: a customer's last article X within the days
// before the held-out ones; what they bought within the days after X,
// other than X, is relevant. MAP and hit rate as Kaggle counts them.
TEST(SimilarEval, ExamplesFollowTheLastArticleAndScoreLikeKaggle) {
  Dataset ds;
  for (int a = 0; a < 8; ++a) {
    Article x;
    x.article_id = 100000000 + a;
    x.product_code = 1000 + a / 2;
    ds.articles.push_back(x);
  }
  for (int c = 0; c < 3; ++c) {
    uint32_t id = 0;
    ds.customer_ids.Add(hmrec::testing::CustomerId(c), &id);
    ds.customers.emplace_back();
  }
  const int32_t day0 = *ParseDate("2020-09-15");  // the held-out days start the day after
  auto buy = [&](uint32_t c, uint32_t a, int32_t day) {
    ds.transactions.day.push_back(day);
    ds.transactions.customer.push_back(c);
    ds.transactions.article.push_back(a);
    ds.transactions.price.push_back(0.02f);
    ds.transactions.sales_channel.push_back(2);
  };
  buy(0, 5, day0 - 20);
  buy(0, 0, day0 - 2);   // customer 0: last article 0, two days before the held-out days
  buy(1, 4, day0 - 30);  // customer 1: last article 4, a month before: no query
  buy(2, 2, day0);       // customer 2: last article 2, the day before
  ASSERT_TRUE(FinishDataset(&ds).ok());
  TempDir dir;
  {
    std::ofstream t(dir.File("truth.csv"));
    t << "t_dat,customer_id,article_id,price,sales_channel_id\n";
    auto row = [&](int32_t day, int c, int a) {
      t << FormatDate(day) << "," << hmrec::testing::CustomerId(c) << "," << FormatArticleId(100000000 + a)
        << ",0.02,2\n";
    };
    row(day0 + 1, 0, 1);
    row(day0 + 3, 0, 0);  // X again: not relevant
    row(day0 + 6, 0, 3);  // 8 days after X: too late
    row(day0 + 1, 1, 1);
    row(day0 + 2, 2, 3);
    row(day0 + 2, 2, 6);
  }
  auto examples = SimilarExamples(ds, dir.File("truth.csv"), 7);
  ASSERT_TRUE(examples.ok()) << examples.status();
  ASSERT_EQ(examples->size(), 2u);
  EXPECT_EQ((*examples)[0].query, 0u);
  EXPECT_EQ((*examples)[0].relevant, (std::vector<uint32_t>{1}));
  EXPECT_EQ((*examples)[1].query, 2u);
  EXPECT_EQ((*examples)[1].relevant, (std::vector<uint32_t>{3, 6}));

  // Embedding alone on the circle: 0 -> 1, 2, 3; 2 -> 1 (15 degrees), 3 (20), 0 (25).
  const std::vector<float> v = Circle();
  std::vector<int32_t> codes, types(8, 1);
  for (const Article& a : ds.articles) codes.push_back(a.product_code);
  const SimilarArticles s(v.data(), 2, codes, types, nullptr);
  const SimilarScore score = ScoreSimilar(s, *examples, SimilarMix::Only(kSimilarEmbedding), 2, 1);
  EXPECT_EQ(score.queries, 2);
  // Query 0: [1, 2] holds 1 at rank 1: AP 1. Query 2: [1, 3] holds 3 at
  // rank 2: AP (1/2) / min(2, 2).
  EXPECT_NEAR(score.map_at_k, (1.0 + 0.25) / 2, 1e-9);
  EXPECT_NEAR(score.hit_rate, 1.0, 1e-9);
  EXPECT_NEAR(score.recall, (1.0 + 0.5) / 2, 1e-9);

  // A malformed held-out row is named with its line.
  {
    std::ofstream t(dir.File("bad.csv"));
    t << "t_dat,customer_id,article_id,price,sales_channel_id\n2020-09-16,nope,0100000001,0.02,2\n";
  }
  auto bad = SimilarExamples(ds, dir.File("bad.csv"), 7);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr("bad.csv:2"));
}

}  // namespace
}  // namespace hmrec
