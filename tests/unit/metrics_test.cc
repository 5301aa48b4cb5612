#include "common/metrics.h"

#include "gtest/gtest.h"

namespace hmrec {
namespace {

absl::flat_hash_set<int32_t> Set(std::initializer_list<int32_t> v) { return {v}; }

TEST(AveragePrecision, PerfectAndEmpty) {
  EXPECT_DOUBLE_EQ(AveragePrecisionAtK({1, 2, 3}, Set({1, 2, 3})), 1.0);
  EXPECT_DOUBLE_EQ(AveragePrecisionAtK({}, Set({1})), 0.0);
  EXPECT_DOUBLE_EQ(AveragePrecisionAtK({7, 8, 9}, Set({1})), 0.0);
}

TEST(AveragePrecision, HandComputed) {
  // Hits at ranks 1 and 3 of 2 relevant: (1/1 + 2/3) / 2.
  EXPECT_DOUBLE_EQ(AveragePrecisionAtK({1, 9, 2}, Set({1, 2})), (1.0 + 2.0 / 3.0) / 2.0);
  // One hit at rank 2 of 3 relevant: (1/2) / 3.
  EXPECT_DOUBLE_EQ(AveragePrecisionAtK({9, 1, 8}, Set({1, 2, 3})), 0.5 / 3.0);
}

TEST(AveragePrecision, DividesByMinOfActualAnd12) {
  // 20 relevant, the first 12 predictions all hit: AP = 12/12 = 1.
  absl::flat_hash_set<int32_t> actual;
  for (int i = 0; i < 20; ++i) actual.insert(i);
  std::vector<int32_t> pred;
  for (int i = 0; i < 12; ++i) pred.push_back(i);
  EXPECT_DOUBLE_EQ(AveragePrecisionAtK(pred, actual), 1.0);
}

TEST(AveragePrecision, OnlyTheFirst12Count) {
  std::vector<int32_t> pred(12, 100);
  pred.push_back(1);  // rank 13
  EXPECT_DOUBLE_EQ(AveragePrecisionAtK(pred, Set({1})), 0.0);
}

TEST(AveragePrecision, RepeatedPredictionCountsOnce) {
  // Kaggle's apk: a repeat is not a second hit, though it takes a rank.
  EXPECT_DOUBLE_EQ(AveragePrecisionAtK({1, 1, 2}, Set({1, 2})), (1.0 + 2.0 / 3.0) / 2.0);
  EXPECT_DOUBLE_EQ(AveragePrecisionAtK({1, 1, 1}, Set({1, 2})), 0.5);
}

TEST(Recall, DistinctHitsOverActual) {
  EXPECT_DOUBLE_EQ(RecallAtK({1, 1, 5}, Set({1, 2, 3, 4})), 0.25);
  EXPECT_DOUBLE_EQ(RecallAtK({1, 2, 3, 4}, Set({1, 2, 3, 4})), 1.0);
}

TEST(Quantile, NearestRankOfASortedVector) {
  const std::vector<double> v = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_EQ(Quantile(v, 0.5), 6);
  EXPECT_EQ(Quantile(v, 0.99), 10);
  EXPECT_EQ(Quantile(v, 0.0), 1);
  EXPECT_EQ(Quantile({}, 0.5), 0);
}

}  // namespace
}  // namespace hmrec
