#include <filesystem>

#include "common/text_proto.h"
#include "data/csv.h"
#include "data/customer_list.h"
#include "data/dataset_cache.h"
#include "data/dates.h"
#include "data/submission.h"
#include "datagen/generator.h"
#include "evaluate/baselines.h"
#include "evaluate/merge.h"
#include "evaluate/score.h"
#include "evaluate/split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/test_util.h"

namespace hmrec::evaluate {
namespace {

using hmrec::testing::TempDir;
using ::testing::HasSubstr;

// Generates data, holds out 7 days, loads the training part.
class EvaluateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config::DatagenConfig c = *datagen::ScalePreset("small");
    c.set_num_customers(8000);
    c.set_num_articles(1500);
    c.set_num_styles(16);
    c.set_num_postal_codes(2000);
    c.set_start_date("2019-09-20");
    datagen::GenerateStats stats;
    ASSERT_TRUE(datagen::Generate(c, data_.path(), false, &stats).ok());
    ASSERT_TRUE(SplitHoldout(data_.path(), 7, split_.path(), false, &split_result_).ok());
    LoadOptions opts;
    opts.show_progress = false;
    opts.strict_references = true;
    auto ds = LoadDataset(split_.File("train"), opts);
    ASSERT_TRUE(ds.ok()) << ds.status();
    train_ = std::move(*ds);
    auto truth = ReadTruth(split_.File("truth.csv"));
    ASSERT_TRUE(truth.ok()) << truth.status();
    truth_ = std::move(*truth);
  }

  double Map(const Recommender& rec) {
    Submission sub;
    std::vector<int32_t> ids;
    for (uint32_t c = 0; c < train_->customers.size(); ++c) {
      rec(c, &ids);
      sub[std::string(train_->customer_id(c))] = ids;
    }
    return Score(truth_, sub).map_at_12;
  }

  TempDir data_, split_;
  SplitResult split_result_;
  std::unique_ptr<Dataset> train_;
  Truth truth_;
};

TEST_F(EvaluateTest, SplitKeepsEveryRowOnTheRightSide) {
  EXPECT_EQ(split_result_.last_day, *ParseDate("2020-09-22"));
  EXPECT_EQ(split_result_.first_holdout_day, *ParseDate("2020-09-16"));
  EXPECT_EQ(train_->last_day, split_result_.first_holdout_day - 1);
  EXPECT_EQ(static_cast<int64_t>(train_->transactions.size()), split_result_.train_rows);
  int64_t truth_rows = 0;
  auto r = CsvReader::Open(split_.File("truth.csv"));
  ASSERT_TRUE((*r)->Next().value());
  while ((*r)->Next().value()) {
    ++truth_rows;
    EXPECT_GE(*ParseDate((*r)->fields()[0]), split_result_.first_holdout_day);
  }
  int32_t first_day = 0;
  ASSERT_TRUE(ReadTruth(split_.File("truth.csv"), &first_day).ok());
  EXPECT_EQ(first_day, split_result_.first_holdout_day);
  EXPECT_EQ(truth_rows, split_result_.holdout_rows);
  EXPECT_GT(truth_rows, 0);
  for (const char* f : {"articles.csv", "customers.csv", "sample_submission.csv"}) {
    EXPECT_EQ(hmrec::testing::ReadFile(data_.File(f)),
              hmrec::testing::ReadFile(split_.File(std::string("train/") + f)));
  }
}

// The retrain job's split: the held-out days are the last of the base and
// the extra files together; the extra files' earlier rows go to
// train/extra_transactions.csv, their later ones to truth.csv; no row of an
// erased customer anywhere.
TEST_F(EvaluateTest, SplitWithRecordedPurchasesAndErasures) {
  const std::string gone(train_->customer_id(0)), stranger(64, 'e');
  const std::string later = FormatDate(split_result_.last_day + 2), earlier = FormatDate(split_result_.last_day - 20);
  hmrec::testing::WriteFile(data_.File("extra.csv"), "t_dat,customer_id,article_id,price,sales_channel_id\n" + earlier +
                                                         "," + stranger + ",0108775015,0.05,2\n" + later + "," +
                                                         stranger + ",0108775015,0.05,2\n" + later + "," + gone +
                                                         ",0108775015,0.05,2\n");
  hmrec::testing::WriteFile(data_.File("erasures.csv"), "customer_id\n" + gone + "\n");
  TempDir out;
  SplitResult r;
  SplitExtras extras;
  extras.transactions = {data_.File("extra.csv")};
  extras.erasures = data_.File("erasures.csv");
  ASSERT_TRUE(SplitHoldout(data_.path(), 7, out.path(), false, &r, extras).ok());
  EXPECT_EQ(r.last_day, split_result_.last_day + 2);
  EXPECT_EQ(r.first_holdout_day, split_result_.first_holdout_day + 2);
  EXPECT_EQ(r.extra_rows, 1);
  EXPECT_GT(r.erased_rows, 1);  // the erased customer's base rows and the extra one
  EXPECT_EQ(
      hmrec::testing::ReadFile(out.File("train/extra_transactions.csv")),
      "t_dat,customer_id,article_id,price,sales_channel_id\n" + earlier + "," + stranger + ",0108775015,0.05,2\n");
  const std::string truth = hmrec::testing::ReadFile(out.File("truth.csv"));
  EXPECT_THAT(truth, HasSubstr(later + "," + stranger));
  EXPECT_EQ(truth.find(gone), std::string::npos);
  EXPECT_EQ(hmrec::testing::ReadFile(out.File("train/transactions_train.csv")).find(gone), std::string::npos);
  // A header-only export (an empty store) is no error.
  hmrec::testing::WriteFile(data_.File("empty.csv"), "t_dat,customer_id,article_id,price,sales_channel_id\n");
  extras.transactions = {data_.File("empty.csv")};
  TempDir out2;
  ASSERT_TRUE(SplitHoldout(data_.path(), 7, out2.path(), false, &r, extras).ok());
  EXPECT_EQ(r.last_day, split_result_.last_day);
}

TEST_F(EvaluateTest, OracleScoresOneAndEmptyScoresZero) {
  Submission oracle;
  for (const auto& [customer, actual] : truth_) {
    oracle[customer] = std::vector<int32_t>(actual.begin(), actual.end());
    if (oracle[customer].size() > 12) oracle[customer].resize(12);
  }
  EXPECT_DOUBLE_EQ(Score(truth_, oracle).map_at_12, 1.0);
  ScoreResult empty = Score(truth_, Submission{});
  EXPECT_DOUBLE_EQ(empty.map_at_12, 0.0);
  EXPECT_EQ(empty.truth_customers_missing, static_cast<int64_t>(truth_.size()));
}

// The generated data must be learnable from its features, and a model that
// ignores them must be able to fail.
TEST_F(EvaluateTest, FeaturesBeatPopularityAndRandomFails) {
  const double popular = Map(PopularityRecommender(*train_, 7));
  const double age = Map(AgeBandPopularityRecommender(*train_, 7, 5));
  const double recent = Map(RecentPurchasesRecommender(*train_, 7, 14));
  const auto& arts = train_->articles;
  const double random = Map([&arts](uint32_t c, std::vector<int32_t>* out) {
    out->clear();
    for (int i = 0; i < 12; ++i) out->push_back(arts[(c * 7919u + i * 104729u) % arts.size()].article_id);
  });
  EXPECT_GT(popular, 0.005);
  EXPECT_GT(age, popular * 1.1);
  EXPECT_GT(recent, popular * 1.1);
  EXPECT_LT(random, popular / 3);
}

TEST_F(EvaluateTest, PopularListIsDeterministicAndFromTheLastWeek) {
  std::vector<uint32_t> a = PopularArticles(*train_, 7, 12);
  std::vector<uint32_t> b = PopularArticles(*train_, 7, 12);
  ASSERT_EQ(a.size(), 12u);
  EXPECT_EQ(a, b);
  std::vector<int64_t> recent(train_->articles.size(), 0);
  const Transactions& tx = train_->transactions;
  for (size_t i = 0; i < tx.size(); ++i) {
    if (tx.day[i] > train_->last_day - 7) ++recent[tx.article[i]];
  }
  for (size_t i = 1; i < a.size(); ++i) EXPECT_GE(recent[a[i - 1]], recent[a[i]]);
  EXPECT_EQ(recent[a[0]], *std::max_element(recent.begin(), recent.end()));
}

TEST_F(EvaluateTest, RecentBaselinePutsOwnPurchasesFirstAndFillsTo12) {
  Recommender rec = RecentPurchasesRecommender(*train_, 7, 14);
  const Transactions& tx = train_->transactions;
  const uint32_t c = tx.customer[tx.size() - 1];  // bought on the last day
  std::vector<int32_t> out;
  rec(c, &out);
  ASSERT_EQ(out.size(), 12u);
  EXPECT_EQ(out[0] == train_->articles[tx.article[tx.size() - 1]].article_id ||
                std::find(out.begin(), out.end(), train_->articles[tx.article[tx.size() - 1]].article_id) != out.end(),
            true);
  std::sort(out.begin(), out.end());
  EXPECT_EQ(std::unique(out.begin(), out.end()), out.end());  // no repeats
}

TEST_F(EvaluateTest, WrittenSubmissionHasEveryCustomerOnce) {
  const std::string path = split_.File("sub.csv");
  ASSERT_TRUE(WriteSubmission(*train_, PopularityRecommender(*train_, 7), path, false).ok());
  SubmissionCheck check;
  auto sub = ReadSubmission(path, &check);
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(check.rows, static_cast<int64_t>(train_->customers.size()));
  EXPECT_EQ(check.rows_with_12_valid, check.rows);
  EXPECT_EQ(check.duplicate_customers + check.malformed_rows + check.short_rows, 0);
  auto ids = ReadCustomerIds(split_.File("train/customers.csv"));
  ScoreResult r = Score(truth_, *sub);
  CheckCoverage(*ids, *sub, &r);
  EXPECT_EQ(r.expected_customers_missing, 0);
  EXPECT_DOUBLE_EQ(r.share_with_12_valid(), 1.0);
}

}  // namespace
TEST(MergeSubmissions, JoinsPartsInListOrderAndRefusesGapsAndRepeats) {
  TempDir dir;
  auto id = [](char c) { return std::string(64, c); };
  const std::vector<std::string> customers = {id('a'), id('b'), id('c'), id('d')};
  const std::string row_a = id('a') + ",0108775015 0108775044", row_b = id('b') + ",0108775015", row_c = id('c') + ",",
                    row_d = id('d') + ",0110065001";
  const std::string header = std::string(kSubmissionHeader) + "\n";
  // Parts in any order, rows in any order: the output follows the list.
  hmrec::testing::WriteFile(dir.File("p0.csv"), header + row_c + "\n" + row_a + "\n");
  hmrec::testing::WriteFile(dir.File("p1.csv"), header + row_d + "\n" + row_b);  // no final newline
  for (const char* part : {"p0.csv", "p1.csv"}) hmrec::testing::WriteFile(dir.File(part) + ".bundle", "v7\n");
  MergeReport report;
  absl::Status s = MergeSubmissions({dir.File("p1.csv"), dir.File("p0.csv")}, customers, dir.File("out.csv"), &report);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(*ReadFileToString(dir.File("out.csv")), header + row_a + "\n" + row_b + "\n" + row_c + "\n" + row_d + "\n");
  EXPECT_EQ(report.parts, 2);
  EXPECT_EQ(report.rows, 4);
  EXPECT_EQ(report.bundle_version, "v7");
  EXPECT_EQ(*ReadFileToString(dir.File("out.csv.bundle")), "v7\n");

  auto error = [&](const std::vector<std::string>& parts) {
    std::filesystem::remove(dir.File("bad.csv"));
    absl::Status st = MergeSubmissions(parts, customers, dir.File("bad.csv"), &report);
    EXPECT_FALSE(st.ok());
    EXPECT_FALSE(std::filesystem::exists(dir.File("bad.csv"))) << "a refused merge wrote its output";
    return std::string(st.message());
  };
  EXPECT_THAT(error({dir.File("p0.csv")}),
              HasSubstr("customer " + id('b') + " is in none of the 1 parts (and 1 more)"));
  EXPECT_THAT(error({dir.File("p0.csv"), dir.File("p1.csv"), dir.File("p0.csv")}),
              HasSubstr("customer " + id('c') + " is in " + dir.File("p0.csv") + ":2 and again in " +
                        dir.File("p0.csv") + ":2"));
  hmrec::testing::WriteFile(dir.File("extra.csv"), header + id('e') + ",0108775015\n");
  hmrec::testing::WriteFile(dir.File("extra.csv.bundle"), "v7\n");
  EXPECT_THAT(error({dir.File("p0.csv"), dir.File("p1.csv"), dir.File("extra.csv")}),
              HasSubstr(dir.File("extra.csv") + ":2: customer " + id('e') + " is not in the customer list"));
  hmrec::testing::WriteFile(dir.File("noheader.csv"), row_a + "\n");
  hmrec::testing::WriteFile(dir.File("noheader.csv.bundle"), "v7\n");
  EXPECT_THAT(error({dir.File("noheader.csv")}), HasSubstr("noheader.csv:1: not a submission part"));
  hmrec::testing::WriteFile(dir.File("broken.csv"), header + "xyz\n");
  hmrec::testing::WriteFile(dir.File("broken.csv.bundle"), "v7\n");
  EXPECT_THAT(error({dir.File("broken.csv")}), HasSubstr("broken.csv:2: not a submission row"));
  // Two bundles (a rollout during the run), or a part without its version.
  hmrec::testing::WriteFile(dir.File("p1.csv.bundle"), "v8\n");
  EXPECT_THAT(error({dir.File("p0.csv"), dir.File("p1.csv")}),
              HasSubstr(dir.File("p0.csv") + " was answered by bundle v7 and " + dir.File("p1.csv") + " by bundle v8"));
  std::filesystem::remove(dir.File("p1.csv.bundle"));
  EXPECT_THAT(error({dir.File("p0.csv"), dir.File("p1.csv")}), HasSubstr("p1.csv.bundle: no bundle version"));
}

}  // namespace hmrec::evaluate
