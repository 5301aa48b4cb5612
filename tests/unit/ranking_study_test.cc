// The studies of the ranking stage: trimming candidates to per-source
// quotas, the feature groups, and on a trained tiny bundle that the "all"
// variant reproduces the trainer's holdout figures, that turning a source
// off removes what only it proposed, and the candidate budget's curves.

#include "trainer/ranking_study.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/str_format.h"
#include "bundle/bundle.h"
#include "common/text_proto.h"
#include "data/dataset_cache.h"
#include "datagen/generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/tower_runner.h"
#include "tests/unit/test_util.h"
#include "trainer/ranking_trainer.h"

namespace hmrec {
namespace {

Candidate Cand(uint32_t article, std::initializer_list<std::pair<int, int>> ranks) {
  Candidate c;
  c.article = article;
  for (auto [s, r] : ranks) {
    c.rank[s] = static_cast<int16_t>(r);
    c.score[s] = 1.0f + static_cast<float>(r);
  }
  return c;
}

TEST(CandidateTrim, KeepsEachSourcesFirstQuotaAndDropsWhatNoSourceKeeps) {
  std::vector<Candidate> cands = {
      Cand(10, {{kRepurchase, 0}, {kTwoTower, 5}}),   // repurchase keeps it; its two-tower rank goes
      Cand(11, {{kTwoTower, 1}}),                     // kept by two-tower
      Cand(12, {{kCoPurchase, 0}}),                   // co-purchase is off: dropped
      Cand(13, {{kSameProduct, 3}, {kTwoTower, 2}}),  // same product unchanged (-1), kept
      Cand(14, {{kTwoTower, 4}}),                     // beyond two-tower's quota: dropped
  };
  cands[2].copurchase_anchor = 7;
  cands[3].product_anchor = 8;
  CandidateTrim trim;
  trim.quota[kTwoTower] = 3;
  trim.quota[kCoPurchase] = 0;
  ASSERT_TRUE(trim.trims_candidates());
  trim.Apply(&cands);
  ASSERT_EQ(cands.size(), 3u);
  EXPECT_EQ(cands[0].article, 10u);
  EXPECT_TRUE(cands[0].from(kRepurchase));
  EXPECT_FALSE(cands[0].from(kTwoTower));
  EXPECT_EQ(cands[0].score[kTwoTower], 0.0f);
  EXPECT_EQ(cands[1].article, 11u);
  EXPECT_EQ(cands[2].article, 13u);
  EXPECT_TRUE(cands[2].from(kSameProduct));
  EXPECT_EQ(cands[2].rank[kSameProduct], 3);
  EXPECT_EQ(cands[2].product_anchor, 8);
  EXPECT_FALSE(CandidateTrim().trims_candidates());
}

// The curve's cascades: FIRST:KEEP with an optional @TREES cap; anything
// else is refused with the text named.
TEST(CurveCascade, ParsesFirstKeepAndACapAndRefusesTheRest) {
  auto c = ParseCurveCascade("10:20@80");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->first_trees, 10);
  EXPECT_EQ(c->keep, 20);
  EXPECT_EQ(c->trees, 80);
  EXPECT_EQ(CurveCascadeText(c->first_trees, c->keep, c->trees), "10:20@80");
  c = ParseCurveCascade("5:16");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->trees, 0);
  EXPECT_EQ(CurveCascadeText(c->first_trees, c->keep, c->trees), "5:16");
  EXPECT_EQ(CurveCascadeText(0, 0, 0), "all");
  for (const char* bad : {"10", "10:0", "0:16", "10:20@", "10:20@x", "10:20@0", "a:b", "10:20:80"}) {
    auto r = ParseCurveCascade(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(std::string(r.status().message()).find(bad), std::string::npos) << r.status();
  }
}

TEST(RankingFeatureGroups, EveryColumnIsInExactlyOneNamedGroup) {
  std::set<int> seen;
  for (const FeatureGroup& g : RankingFeatureGroups()) {
    EXPECT_NE(g.name, "unassigned") << "a feature without a group: add it to GroupOf in trainer/ranking_study.cc";
    EXPECT_FALSE(g.columns.empty()) << g.name;
    for (int c : g.columns) EXPECT_TRUE(seen.insert(c).second) << "column " << c << " in two groups";
  }
  EXPECT_EQ(static_cast<int>(seen.size()), NumRankingFeatures());
  // One ablation per source and per group, after "all".
  const std::vector<RankingVariant> v = StandardAblations();
  ASSERT_EQ(v.size(), 1 + kNumSources + RankingFeatureGroups().size());
  EXPECT_EQ(v[0].name, "all");
  EXPECT_EQ(v[1 + kTaste].name, "-taste");
  EXPECT_EQ(v[1 + kTaste].trim.quota[kTaste], 0);
}

class RankingStudyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    ConfigureThreads(1);
    datagen::GenerateStats stats;
    ASSERT_TRUE(datagen::Generate(*datagen::ScalePreset("tiny"), dir_->File("data"), false, &stats).ok());
    LoadOptions lo;
    lo.show_progress = false;
    ds_ = LoadDataset(dir_->File("data"), lo)->release();
    cfg_ = new config::TrainerConfig;
    ASSERT_TRUE(ReadTextProto(std::string(HMREC_SOURCE_DIR) + "/tests/data/trainer_tiny.pbtxt", cfg_).ok());
    cfg_->set_epochs(2);  // not 1: the label weeks' tower must follow it
    cfg_->set_threads(1);
    TrainerOptions to;
    to.work_dir = dir_->File("work");
    to.show_progress = false;
    auto t = Trainer::Create(*cfg_, *ds_, nullptr, to);
    ASSERT_TRUE(t.ok()) << t.status();
    ASSERT_TRUE((*t)->Train().ok());
    auto exported = (*t)->Export(dir_->File("bundles"), "v1");
    ASSERT_TRUE(exported.ok());
    bundle_ = new std::string(*exported);
    // The data's last week stands in for a holdout: the studies only need
    // customers and the articles they bought.
    holdout_ = new Holdout;
    for (const auto& [c, rows] : Buyers(*ds_, ds_->last_day - 6, ds_->last_day + 1)) {
      holdout_->customers.push_back(c);
      absl::flat_hash_set<int32_t> ids;
      for (uint32_t a : rows) ids.insert(ds_->articles[a].article_id);
      holdout_->articles.push_back(std::move(ids));
    }
    RankingOptions ro;
    ro.work_dir = dir_->File("work");
    ro.show_progress = false;
    auto report = TrainRanking(*cfg_, *ds_, holdout_, *bundle_, ro);
    ASSERT_TRUE(report.ok()) << report.status();
    trained_ = new RankingEvaluation(report->holdout);
    ranker_ = new RankerTrainReport(report->ranker);
  }
  static void TearDownTestSuite() {
    delete ranker_;
    delete trained_;
    delete holdout_;
    delete bundle_;
    delete cfg_;
    delete ds_;
    delete dir_;
  }

  static testing::TempDir* dir_;
  static Dataset* ds_;
  static config::TrainerConfig* cfg_;
  static std::string* bundle_;
  static Holdout* holdout_;
  static RankingEvaluation* trained_;
  static RankerTrainReport* ranker_;
};
testing::TempDir* RankingStudyTest::dir_ = nullptr;
Dataset* RankingStudyTest::ds_ = nullptr;
config::TrainerConfig* RankingStudyTest::cfg_ = nullptr;
std::string* RankingStudyTest::bundle_ = nullptr;
Holdout* RankingStudyTest::holdout_ = nullptr;
RankingEvaluation* RankingStudyTest::trained_ = nullptr;
RankerTrainReport* RankingStudyTest::ranker_ = nullptr;

TEST_F(RankingStudyTest, TheRankerIsChosenAmongTheLearningRatesAndTheBundleRecordsWhich) {
  // The config names no rate: both default rates are trained, and the
  // second is kept only if it is clearly better on the early-stopping week.
  ASSERT_EQ(cfg_->ranking().ranker().learning_rate(), 0);
  ASSERT_EQ(ranker_->tried.size(), 2u);
  const RankerTrainReport::Tried* kept = &ranker_->Kept();
  const RankerTrainReport::Tried& second = ranker_->tried[1];
  const bool second_kept = ranker_->kept == 1;
  EXPECT_EQ(second_kept, Ranker::ClearlyBetter(second.map_gain, second.map_gain_se));
  auto bundle = ReadManifest(*bundle_);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  const config::RankerParams& p = bundle->trainer().ranking().ranker();
  EXPECT_EQ(p.learning_rate(), kept->learning_rate);
  ASSERT_EQ(p.learning_rate_choices_size(), 2);
  EXPECT_EQ(p.learning_rate_choices(0), ranker_->tried[0].learning_rate);
  EXPECT_EQ(p.learning_rate_choices(1), ranker_->tried[1].learning_rate);
  // The report and the curve file name both rates; the curve has each
  // rate's rounds, the kept one marked.
  const std::string json = testing::ReadFile(dir_->File("work/ranking/ranking_report.json"));
  EXPECT_THAT(json, ::testing::HasSubstr(absl::StrFormat("\"learning_rate\": %g, \"rounds\"", kept->learning_rate)));
  EXPECT_THAT(
      json, ::testing::HasSubstr(absl::StrFormat("\"ap_gain_over_kept\": %.6f, \"ap_gain_se\": %.6f, "
                                                 "\"kept\": %s}",
                                                 second.map_gain, second.map_gain_se, second_kept ? "true" : "false")));
  std::istringstream curve(testing::ReadFile(dir_->File("work/ranking/ranker_curve.tsv")));
  std::string line;
  std::getline(curve, line);
  EXPECT_EQ(line, "learning_rate\tkept\tround\tvalid_map_at_12");
  std::map<std::pair<double, int>, int> rows;
  while (std::getline(curve, line)) {
    std::istringstream f(line);
    double rate = 0;
    int k = 0;
    f >> rate >> k;
    ++rows[{rate, k}];
  }
  std::map<std::pair<double, int>, int> want;
  for (size_t i = 0; i < ranker_->tried.size(); ++i) {
    want[{ranker_->tried[i].learning_rate, i == ranker_->kept ? 1 : 0}] = ranker_->tried[i].rounds;
  }
  EXPECT_EQ(rows, want);
}

TEST_F(RankingStudyTest, TheLabelWeeksTowerIsTrainedAsLongAsTheBundlesOwn) {
  // retrieval_epochs is left out of the config: the label weeks' tower takes
  // the bundle tower's epochs, and the bundle records the filled value.
  ASSERT_EQ(cfg_->ranking().retrieval_epochs(), 0);
  ASSERT_NE(cfg_->epochs(), 1);
  auto bundle = ReadManifest(*bundle_);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_EQ(bundle->trainer().ranking().retrieval_epochs(), cfg_->epochs());
  auto label = ReadManifest(dir_->File("work/ranking/retrieval_bundle/label-weeks"));
  ASSERT_TRUE(label.ok()) << label.status();
  EXPECT_EQ(label->trainer().epochs(), cfg_->epochs());
}

TEST_F(RankingStudyTest, AllReproducesTheTrainerAndASourceOffLosesWhatOnlyItProposed) {
  ASSERT_GT(trained_->recall_source[kTwoTower], 0.0);
  std::vector<RankingVariant> variants = {StandardAblations()[0], StandardAblations()[1 + kTwoTower]};
  RankingVariant masked{"-attribute match", {}};
  for (const FeatureGroup& g : RankingFeatureGroups()) {
    if (g.name == "attribute match") masked.trim.masked_features = g.columns;
  }
  ASSERT_FALSE(masked.trim.masked_features.empty());
  variants.push_back(masked);
  auto r = RankingVariants(*ds_, *holdout_, *bundle_, dir_->File("work/ranking/retrieval_bundle/label-weeks"), variants,
                           1, 1, false);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 3u);
  const RankingEvaluation& all = (*r)[0].holdout;
  EXPECT_DOUBLE_EQ(all.map_ranked, trained_->map_ranked);
  EXPECT_DOUBLE_EQ(all.recall_merged, trained_->recall_merged);
  EXPECT_DOUBLE_EQ(all.candidates_per_customer, trained_->candidates_per_customer);

  const RankingEvaluation& off = (*r)[1].holdout;
  EXPECT_EQ(off.recall_source[kTwoTower], 0.0);
  EXPECT_LT(off.candidates_per_customer, all.candidates_per_customer);
  EXPECT_LE(off.recall_merged, all.recall_merged);
  for (int s = 0; s < kNumSources; ++s) {
    if (s != kTwoTower) EXPECT_DOUBLE_EQ(off.recall_source[s], all.recall_source[s]) << SourceName(s);
  }
  for (const RankingWeekStats& w : (*r)[1].weeks) EXPECT_GT(w.groups, 0);

  // Masked features change the ranker, not the candidates.
  const RankingEvaluation& m = (*r)[2].holdout;
  EXPECT_DOUBLE_EQ(m.candidates_per_customer, all.candidates_per_customer);
  EXPECT_DOUBLE_EQ(m.recall_merged, all.recall_merged);
  EXPECT_NE(m.map_ranked, all.map_ranked);

  // Two ranker seeds: the first is the bundle's, the figure their mean.
  auto two = RankingVariants(*ds_, *holdout_, *bundle_, dir_->File("work/ranking/retrieval_bundle/label-weeks"),
                             {StandardAblations()[0]}, 2, 1, false);
  ASSERT_TRUE(two.ok()) << two.status();
  ASSERT_EQ((*two)[0].map_by_seed.size(), 2u);
  EXPECT_DOUBLE_EQ((*two)[0].map_by_seed[0], trained_->map_ranked);
  EXPECT_NEAR((*two)[0].holdout.map_ranked, ((*two)[0].map_by_seed[0] + (*two)[0].map_by_seed[1]) / 2, 1e-12);

  // Overrides replace the bundle's config for every variant: no neighbour
  // candidates, so none are proposed and fewer candidates are merged.
  config::RankingConfig overrides;
  overrides.set_neighbour_candidates(-1);
  auto without = RankingVariants(*ds_, *holdout_, *bundle_, dir_->File("work/ranking/retrieval_bundle/label-weeks"),
                                 {StandardAblations()[0]}, 1, 1, false, overrides);
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_EQ((*without)[0].holdout.recall_source[kNeighbours], 0.0);
  EXPECT_LT((*without)[0].holdout.candidates_per_customer, all.candidates_per_customer);

  RankingVariant bad{"bad", {}};
  bad.trim.masked_features = {NumRankingFeatures()};
  EXPECT_FALSE(RankingVariants(*ds_, *holdout_, *bundle_, dir_->File("work/ranking/retrieval_bundle/label-weeks"),
                               {bad}, 1, 1, false)
                   .ok());
}

// With `refit: 1` the served ranker is boosted again on every label week,
// the early-stopping one included, for the rounds chosen on it; the bundle
// records the setting, the report the rounds. The study scores the ranker
// before the refit too, and with the refit off its ranker is that one. Off
// by default: the fixture's trainer refits nothing.
TEST_F(RankingStudyTest, WithRefitTheServedRankerIsBoostedOnEveryWeekForTheChosenRounds) {
  EXPECT_EQ(ranker_->refit_rounds, 0);
  auto plain_bundle = ReadManifest(*bundle_);
  ASSERT_TRUE(plain_bundle.ok()) << plain_bundle.status();
  EXPECT_EQ(plain_bundle->trainer().ranking().refit(), -1);

  // The same towers, a ranking stage with the refit into a copy of the bundle.
  const std::string bundle = dir_->File("bundles/refit");
  std::filesystem::copy(*bundle_, bundle, std::filesystem::copy_options::recursive);
  config::TrainerConfig cfg = *cfg_;
  cfg.mutable_ranking()->set_refit(1);
  RankingOptions ro;
  ro.work_dir = dir_->File("work-refit");
  ro.show_progress = false;
  auto report = TrainRanking(cfg, *ds_, holdout_, bundle, ro);
  ASSERT_TRUE(report.ok()) << report.status();
  const RankerTrainReport& r = report->ranker;
  ASSERT_GT(r.Kept().best_round, 0);
  EXPECT_EQ(r.Kept().best_round, ranker_->Kept().best_round) << "the same choice as without the refit";
  EXPECT_EQ(r.refit_rounds, r.Kept().best_round);
  auto manifest = ReadManifest(bundle);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->trainer().ranking().refit(), 1);
  auto served = Ranker::Load(bundle + "/" + kRankerFile, 1);
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_EQ((*served)->rounds(), r.Kept().best_round);
  EXPECT_THAT(testing::ReadFile(dir_->File("work-refit/ranking/ranking_report.json")),
              ::testing::HasSubstr(absl::StrFormat("\"refit_rounds\": %d,", r.refit_rounds)));

  const std::string label = dir_->File("work/ranking/retrieval_bundle/label-weeks");
  auto refitted = RankingVariants(*ds_, *holdout_, bundle, label, {StandardAblations()[0]}, 1, 1, false);
  ASSERT_TRUE(refitted.ok()) << refitted.status();
  EXPECT_DOUBLE_EQ((*refitted)[0].holdout.map_ranked, report->holdout.map_ranked);
  ASSERT_EQ((*refitted)[0].early_stopped_map_by_seed.size(), 1u);
  // Before the refit it is the fixture's ranker: the same weeks, the same booster.
  EXPECT_DOUBLE_EQ((*refitted)[0].early_stopped_map_by_seed[0], trained_->map_ranked);
  config::RankingConfig off;
  off.set_refit(-1);
  auto plain = RankingVariants(*ds_, *holdout_, bundle, label, {StandardAblations()[0]}, 1, 1, false, off);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_TRUE((*plain)[0].early_stopped_map_by_seed.empty());
  EXPECT_EQ((*plain)[0].ranker.refit_rounds, 0);
  EXPECT_DOUBLE_EQ((*plain)[0].holdout.map_ranked, (*refitted)[0].early_stopped_map_by_seed[0]);
}

TEST_F(RankingStudyTest, ALabelTowerThatSawTheLabelWeeksIsRefused) {
  // The trainer's label tower ends the day before its first label week; one
  // label week more would start a week before that, inside its data.
  const std::string label = dir_->File("work/ranking/retrieval_bundle/label-weeks");
  auto manifest = ReadManifest(label);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  auto bundle = ReadManifest(*bundle_);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  ASSERT_GE(bundle->trainer().ranking().label_weeks(), 2);
  config::RankingConfig more;
  more.set_label_weeks(bundle->trainer().ranking().label_weeks() + 1);
  auto r = RankingVariants(*ds_, *holdout_, *bundle_, label, {StandardAblations()[0]}, 1, 1, false, more);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_THAT(std::string(r.status().message()),
              ::testing::HasSubstr(absl::StrCat("trained on data up to ", manifest->data_last_day())));
  EXPECT_THAT(std::string(r.status().message()),
              ::testing::HasSubstr(absl::StrCat(more.label_weeks(), " label weeks begins")));
}

// The cost curve scores the bundle's ranker; overrides change the candidates
// it scores (a source off: fewer candidates), not the ranker.
TEST_F(RankingStudyTest, TheCostCurveTakesOverridesForTheCandidates) {
  auto all = RankingCurve(*ds_, *holdout_, *bundle_, {1.0}, {0}, {}, {}, 0);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_NEAR((*all)[0].candidates_per_customer, trained_->candidates_per_customer, 1e-9);
  config::RankingConfig overrides;
  overrides.set_neighbour_candidates(-1);
  auto without = RankingCurve(*ds_, *holdout_, *bundle_, {1.0}, {0}, {}, {}, 0, overrides);
  ASSERT_TRUE(without.ok()) << without.status();
  ASSERT_EQ(without->size(), 1u);
  EXPECT_LT((*without)[0].candidates_per_customer, (*all)[0].candidates_per_customer);
}

TEST_F(RankingStudyTest, BudgetCurvesGrowWithNAndTheBundlesPointIsTheTrainers) {
  const std::vector<int> ns = {1, 4, 16, 64};
  auto rep = CandidateBudget(*ds_, *holdout_, *bundle_, ns, {0.5, 1.0, 2.0}, 2, 0, 1, false);
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_EQ(rep->customers, static_cast<int64_t>(holdout_->customers.size()));
  for (int s = 0; s < kNumSources; ++s) {
    for (size_t k = 1; k < ns.size(); ++k) {
      EXPECT_GE(rep->recall_at[k][s], rep->recall_at[k - 1][s]) << SourceName(s);
      EXPECT_LE(rep->unique_at[k][s], rep->recall_at[k][s] + 1e-12) << SourceName(s);
    }
  }
  EXPECT_GT(rep->recall_at[3][kTwoTower], rep->recall_at[0][kTwoTower]);
  // Scale 1 is the bundle's own mix: the trainer's candidates and recall.
  ASSERT_EQ(rep->merged.size(), 3u);
  EXPECT_NEAR(rep->merged[1].candidates, trained_->candidates_per_customer, 1e-9);
  EXPECT_NEAR(rep->merged[1].recall, trained_->recall_merged, 1e-6);
  EXPECT_NEAR(rep->bundle_recall, trained_->recall_merged, 1e-6);
  EXPECT_LT(rep->merged[0].candidates, rep->merged[1].candidates);
  EXPECT_LT(rep->merged[1].candidates, rep->merged[2].candidates);
  // The greedy mix climbs in both, and stops at the bundle's budget.
  ASSERT_FALSE(rep->greedy.empty());
  for (size_t i = 1; i < rep->greedy.size(); ++i) {
    EXPECT_GT(rep->greedy[i].candidates, rep->greedy[i - 1].candidates);
    EXPECT_GE(rep->greedy[i].recall, rep->greedy[i - 1].recall);
  }
  EXPECT_GE(rep->greedy.back().candidates, rep->bundle_candidates);
  // A scaled quota above every N still counts all the candidates it asks for.
  auto small_ns = CandidateBudget(*ds_, *holdout_, *bundle_, {1, 2}, {2.0}, 2, 0, 1, false);
  ASSERT_TRUE(small_ns.ok()) << small_ns.status();
  EXPECT_DOUBLE_EQ(small_ns->merged[0].candidates, rep->merged[2].candidates);
  EXPECT_DOUBLE_EQ(small_ns->merged[0].recall, rep->merged[2].recall);
  EXPECT_FALSE(CandidateBudget(*ds_, *holdout_, *bundle_, {}, {1.0}, 2, 0, 1, false).ok());
}

}  // namespace
}  // namespace hmrec
