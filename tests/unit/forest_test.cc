// The native forest evaluator against XGBoost, the reference: every model the
// trainer can write (each objective, shallow to deep trees, missing values)
// gives the same margins, the same probabilities and the same order, over
// the whole forest and over a cascade's tree ranges; what it cannot read is
// named and scored by XGBoost.
#include "ranker/forest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "candidates/ranking_config.h"
#include "ranker/ranker.h"
#include "tests/unit/test_util.h"

namespace hmrec {
namespace {

using hmrec::testing::TempDir;
using ::testing::HasSubstr;

constexpr int kFeatures = 9;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Groups of 30 candidates; the label depends on features 0-2 (one of them
// often missing, so the trees learn default directions) and on a feature
// with few distinct values (rows land exactly on thresholds).
RankingSet MakeSet(uint64_t seed, int groups) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  RankingSet s;
  s.num_features = kFeatures;
  for (int g = 0; g < groups; ++g) {
    const int n = 30;
    s.group_sizes.push_back(n);
    for (int i = 0; i < n; ++i) {
      float x[kFeatures];
      for (float& v : x) v = u(rng);
      x[2] = u(rng) < 0.3f ? kNaN : x[2];
      x[3] = static_cast<float>(static_cast<int>(x[3] * 4));  // 0..3
      x[4] = u(rng) < 0.5f ? kNaN : x[4] * 100;
      x[5] = -x[5] * 1e3f;
      const float signal = x[0] + 0.5f * (std::isnan(x[2]) ? 0.2f : x[2]) + 0.2f * x[3] - 0.3f * x[1];
      s.features.insert(s.features.end(), x, x + kFeatures);
      s.labels.push_back(signal + 0.4f * u(rng) > 1.4f ? 1.0f : 0.0f);
    }
  }
  return s;
}

std::unique_ptr<Ranker> Train(const std::string& objective, int depth, int rounds) {
  config::RankingConfig rc = WithRankingDefaults(config::RankingConfig());
  config::RankerParams p = rc.ranker();
  p.set_objective(objective);
  p.set_max_depth(depth);
  p.set_max_rounds(rounds);
  p.set_early_stopping_rounds(rounds);
  p.set_min_child_weight(0.05);
  p.set_evaluator("xgboost");
  RankerTrainReport report;
  auto r = Ranker::Train(p, 2, {MakeSet(1, 300), MakeSet(2, 300)}, MakeSet(3, 100), false, &report);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(*r) : nullptr;
}

// Each group's best `k` rows by score (ties: the earlier row).
std::vector<std::vector<int>> TopK(const std::vector<float>& scores, int group, int k) {
  std::vector<std::vector<int>> out;
  for (size_t b = 0; b < scores.size(); b += group) {
    std::vector<int> order(group);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return scores[b + x] > scores[b + y]; });
    order.resize(k);
    out.push_back(order);
  }
  return out;
}

struct ModelCase {
  std::string objective;
  int depth;
};

class ForestAgreesWithXGBoost : public ::testing::TestWithParam<ModelCase> {};

TEST_P(ForestAgreesWithXGBoost, SameMarginsProbabilitiesAndOrder) {
  const ModelCase& c = GetParam();
  constexpr int kRounds = 14;
  std::unique_ptr<Ranker> trained = Train(c.objective, c.depth, kRounds);
  ASSERT_NE(trained, nullptr);
  TempDir dir;
  ASSERT_TRUE(trained->Save(dir.File("m.ubj")).ok());
  auto reference = Ranker::Load(dir.File("m.ubj"), 1, "xgboost");
  auto native = Ranker::Load(dir.File("m.ubj"), 2, "native");
  ASSERT_TRUE(reference.ok() && native.ok());
  ASSERT_EQ((*reference)->evaluator(), "xgboost");
  ASSERT_EQ((*native)->evaluator(), "native") << (*native)->fallback_reason();
  // Early stopping keeps the best round's trees.
  const int trees = (*native)->rounds();
  ASSERT_GE(trees, 4);
  ASSERT_LE(trees, kRounds);

  // The forest itself: what the JSON says.
  auto json = (*reference)->ToJson();
  ASSERT_TRUE(json.ok());
  auto forest = Forest::FromXGBoostJson(*json);
  ASSERT_TRUE(forest.ok()) << forest.status();
  EXPECT_EQ(forest->num_trees(), trees);
  EXPECT_EQ(forest->num_features(), kFeatures);
  EXPECT_EQ(forest->objective(), c.objective);
  EXPECT_GE(forest->max_depth(), std::min(c.depth, 2));
  EXPECT_LE(forest->max_depth(), c.depth);

  // Fresh rows (with their NaNs and repeated values), and rows on the
  // model's own thresholds; 1,000+ rows so that blocks, lanes and the
  // remainder all run, on two threads.
  const RankingSet test = MakeSet(9, 40);
  std::vector<float> rows = test.features;
  const std::vector<float> probe = forest->ProbeRows(203, 5);
  rows.insert(rows.end(), probe.begin(), probe.end());
  const int64_t n = static_cast<int64_t>(rows.size() / kFeatures);
  std::vector<float> want(n), got(n);
  const int third = trees / 3;
  for (auto [b, e] : {std::make_pair(0, 0), std::make_pair(0, third), std::make_pair(third, 0),
                      std::make_pair(1, trees - 1), std::make_pair(0, 1)}) {
    ASSERT_TRUE((*reference)->PredictMargins(rows.data(), n, kFeatures, b, e, want.data()).ok());
    ASSERT_TRUE((*native)->PredictMargins(rows.data(), n, kFeatures, b, e, got.data()).ok());
    int differ = 0;
    for (int64_t i = 0; i < n; ++i) differ += std::fabs(got[i] - want[i]) > 1e-5f;
    EXPECT_EQ(differ, 0) << "trees " << b << ".." << e << ", row 0: " << got[0] << " vs " << want[0];
  }
  // Through the link (a probability for binary:logistic), with a tree limit.
  for (int limit : {0, trees / 2}) {
    ASSERT_TRUE((*reference)->Predict(rows.data(), n, kFeatures, want.data(), limit).ok());
    ASSERT_TRUE((*native)->Predict(rows.data(), n, kFeatures, got.data(), limit).ok());
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(got[i], want[i], 1e-5f) << "row " << i << ", trees " << limit;
  }
  // The same top 12 of every group, as the ranked list uses it, and the same
  // cascade (a third of the trees on all rows, the rest on each group's best
  // 16).
  std::vector<float> a(test.rows()), b(test.rows());
  ASSERT_TRUE((*reference)->PredictMargins(test.features.data(), test.rows(), kFeatures, 0, 0, a.data()).ok());
  ASSERT_TRUE((*native)->PredictMargins(test.features.data(), test.rows(), kFeatures, 0, 0, b.data()).ok());
  EXPECT_EQ(TopK(a, 30, 12), TopK(b, 30, 12));
  std::vector<size_t> offsets;
  for (size_t i = 0; i <= test.rows(); i += 30) offsets.push_back(i);
  CascadeScratch s1, s2;
  std::vector<float> ca, cb;
  ASSERT_TRUE(ScoreGroups(**reference, test.features.data(), offsets, kFeatures, third, 16, &ca, &s1).ok());
  ASSERT_TRUE(ScoreGroups(**native, test.features.data(), offsets, kFeatures, third, 16, &cb, &s2).ok());
  EXPECT_EQ(TopK(ca, 30, 12), TopK(cb, 30, 12));
}

INSTANTIATE_TEST_SUITE_P(EveryObjectiveAndDepth, ForestAgreesWithXGBoost,
                         ::testing::Values(ModelCase{"binary:logistic", 1}, ModelCase{"binary:logistic", 3},
                                           ModelCase{"binary:logistic", 7}, ModelCase{"binary:logistic", 12},
                                           ModelCase{"rank:map", 7}, ModelCase{"rank:ndcg", 4},
                                           ModelCase{"rank:pairwise", 6}),
                         [](const ::testing::TestParamInfo<ModelCase>& info) {
                           std::string name = info.param.objective + "_depth" + std::to_string(info.param.depth);
                           std::replace(name.begin(), name.end(), ':', '_');
                           return name;
                         });

// Trees deeper than the evaluator lays out: scored by XGBoost, saying why.
TEST(Forest, DeeperTreesAreScoredByXGBoostSayingWhy) {
  std::unique_ptr<Ranker> trained = Train("binary:logistic", 16, 3);
  ASSERT_NE(trained, nullptr);
  auto json = trained->ToJson();
  ASSERT_TRUE(json.ok());
  auto forest = Forest::FromXGBoostJson(*json);
  ASSERT_EQ(forest.status().code(), absl::StatusCode::kUnimplemented) << "the trees did not grow deeper than 12";
  EXPECT_THAT(std::string(forest.status().message()), HasSubstr("deeper than 12"));
  ASSERT_TRUE(trained->SetEvaluator("native").ok());
  EXPECT_EQ(trained->evaluator(), "xgboost");
  EXPECT_THAT(trained->fallback_reason(), HasSubstr("deeper than 12"));
  // Still scores.
  const RankingSet test = MakeSet(9, 2);
  std::vector<float> out(test.rows());
  EXPECT_TRUE(trained->Predict(test.features.data(), test.rows(), kFeatures, out.data()).ok());
}

// What the evaluator does not support is named, not misread.
TEST(Forest, RefusesWhatItCannotEvaluateNamingIt) {
  std::unique_ptr<Ranker> trained = Train("binary:logistic", 3, 4);
  ASSERT_NE(trained, nullptr);
  auto json = trained->ToJson();
  ASSERT_TRUE(json.ok());
  ASSERT_TRUE(Forest::FromXGBoostJson(*json).ok());
  const auto edited = [&](const std::string& from, const std::string& to) {
    std::string j = *json;
    const size_t at = j.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) j.replace(at, from.size(), to);
    return Forest::FromXGBoostJson(j).status();
  };
  absl::Status s = edited("\"split_type\":[0", "\"split_type\":[1");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(s.message()), HasSubstr("categorical split"));
  s = edited("\"name\":\"gbtree\"", "\"name\":\"dart\"");
  EXPECT_THAT(std::string(s.message()), HasSubstr("booster 'dart'"));
  s = edited("\"name\":\"binary:logistic\"", "\"name\":\"survival:cox\"");
  EXPECT_THAT(std::string(s.message()), HasSubstr("objective 'survival:cox'"));
  s = edited("\"num_class\":\"0\"", "\"num_class\":\"3\"");
  EXPECT_THAT(std::string(s.message()), HasSubstr("3 outputs"));
  s = edited("\"split_indices\":[", "\"split_indices\":[99,");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("tree 0"));
  EXPECT_EQ(Forest::FromXGBoostJson("{\"learner\": 3}").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(trained->SetEvaluator("treelite").code(), absl::StatusCode::kInvalidArgument);
  // A row of the wrong width is refused by both evaluators.
  ASSERT_TRUE(trained->SetEvaluator("native").ok());
  ASSERT_EQ(trained->evaluator(), "native");
  float row[3] = {0, 0, 0}, out[1];
  EXPECT_EQ(trained->Predict(row, 1, 3, out).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hmrec
