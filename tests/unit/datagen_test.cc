#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <numeric>

#include "data/csv.h"
#include "data/dataset_cache.h"
#include "data/dates.h"
#include "data/history.h"
#include "datagen/generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/test_util.h"

namespace hmrec::datagen {
namespace {

using hmrec::testing::ReadFile;
using hmrec::testing::TempDir;

config::DatagenConfig Tiny() { return *ScalePreset("tiny"); }

// A mid-sized config: large enough for marginals, small enough for a test.
config::DatagenConfig Medium() {
  config::DatagenConfig c = *ScalePreset("small");
  c.set_num_customers(6000);
  c.set_num_articles(1500);
  c.set_num_styles(16);
  c.set_num_postal_codes(1500);
  c.set_start_date("2019-09-20");
  return c;
}

std::unique_ptr<Dataset> GenerateAndLoad(const config::DatagenConfig& cfg, const std::string& dir) {
  GenerateStats stats;
  absl::Status s = Generate(cfg, dir, false, &stats);
  EXPECT_TRUE(s.ok()) << s;
  LoadOptions opts;
  opts.strict_references = true;  // every reference must resolve
  opts.use_cache = false;
  opts.show_progress = false;
  auto ds = LoadDataset(dir, opts);
  EXPECT_TRUE(ds.ok()) << ds.status();
  return ds.ok() ? std::move(*ds) : nullptr;
}

TEST(Datagen, SameSeedSameBytesOtherSeedOtherData) {
  TempDir a, b, c;
  GenerateStats stats;
  ASSERT_TRUE(Generate(Tiny(), a.path(), false, &stats).ok());
  ASSERT_TRUE(Generate(Tiny(), b.path(), false, &stats).ok());
  config::DatagenConfig other = Tiny();
  other.set_seed(other.seed() + 1);
  ASSERT_TRUE(Generate(other, c.path(), false, &stats).ok());
  for (const char* f : {kArticlesFile, kCustomersFile, kTransactionsFile, kSampleSubmissionFile}) {
    EXPECT_EQ(ReadFile(a.File(f)), ReadFile(b.File(f))) << f;
    EXPECT_NE(ReadFile(a.File(f)), ReadFile(c.File(f))) << f;
  }
}

TEST(Datagen, KaggleSchemaAndCounts) {
  TempDir dir;
  const config::DatagenConfig cfg = Tiny();
  auto ds = GenerateAndLoad(cfg, dir.path());
  ASSERT_NE(ds, nullptr);
  EXPECT_EQ(ds->articles.size(), static_cast<size_t>(cfg.num_articles()));
  EXPECT_EQ(ds->customers.size(), static_cast<size_t>(cfg.num_customers()));
  EXPECT_GT(ds->transactions.size(), 5000u);
  EXPECT_GE(ds->first_day, *ParseDate(cfg.start_date()));
  EXPECT_EQ(ds->last_day, *ParseDate(cfg.end_date()));
  for (const Article& a : ds->articles) {
    EXPECT_EQ(a.article_id / 1000, a.product_code);
    EXPECT_FALSE(a.prod_name.empty());
    EXPECT_FALSE(a.index_code.empty());
  }
  // Header rows are exactly Kaggle's.
  auto r = CsvReader::Open(dir.File(kTransactionsFile));
  ASSERT_TRUE((*r)->Next().value());
  EXPECT_EQ(std::vector<absl::string_view>((*r)->fields()), TransactionColumns());
  // Article ids keep the leading zero.
  ASSERT_TRUE((*r)->Next().value());
  EXPECT_EQ((*r)->fields()[2].size(), 10u);
  EXPECT_EQ((*r)->fields()[2][0], '0');
}

TEST(Datagen, FileOrderSaysNothing) {
  TempDir dir;
  auto ds = GenerateAndLoad(Tiny(), dir.path());
  ASSERT_NE(ds, nullptr);
  for (size_t i = 1; i < ds->articles.size(); ++i) {
    EXPECT_LT(ds->articles[i - 1].article_id, ds->articles[i].article_id);
  }
  for (uint32_t i = 1; i < ds->customers.size(); ++i) {
    EXPECT_LT(ds->customer_id(i - 1), ds->customer_id(i));
  }
  EXPECT_TRUE(std::is_sorted(ds->transactions.day.begin(), ds->transactions.day.end()));
}

TEST(Datagen, SampleSubmissionCoversEveryCustomerInOrder) {
  TempDir dir;
  auto ds = GenerateAndLoad(Tiny(), dir.path());
  auto r = CsvReader::Open(dir.File(kSampleSubmissionFile));
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE((*r)->Next().value());
  uint32_t i = 0;
  while ((*r)->Next().value()) {
    ASSERT_LT(i, ds->customers.size());
    EXPECT_EQ((*r)->fields()[0], ds->customer_id(i));
    EXPECT_EQ((*r)->fields()[1].size(), 12u * 11 - 1);
    ++i;
  }
  EXPECT_EQ(i, ds->customers.size());
}

TEST(Datagen, RealisticMarginals) {
  TempDir dir;
  auto ds = GenerateAndLoad(Medium(), dir.path());
  ASSERT_NE(ds, nullptr);
  const double n = static_cast<double>(ds->customers.size());
  double fn_empty = 0, active_club = 0, young = 0, middle = 0, age_missing = 0;
  const uint32_t active_id = *ds->club_member_status.Find("ACTIVE");
  for (const Customer& c : ds->customers) {
    fn_empty += c.fn < 0;
    active_club += c.club_member_status == active_id;
    young += c.age >= 16 && c.age <= 30;
    middle += c.age >= 40 && c.age <= 60;
    age_missing += c.age < 0;
  }
  EXPECT_NEAR(fn_empty / n, 0.65, 0.03);
  EXPECT_NEAR(active_club / n, 0.93, 0.02);
  EXPECT_GT(young / n, 0.35);   // bimodal: a young peak ...
  EXPECT_GT(middle / n, 0.25);  // ... and a middle-aged one
  EXPECT_GT(age_missing, 0);

  const Transactions& tx = ds->transactions;
  const double online =
      std::count(tx.sales_channel.begin(), tx.sales_channel.end(), 2) / static_cast<double>(tx.size());
  EXPECT_NEAR(online, 0.70, 0.06);

  // Most customers buy little, a few a lot; some never.
  CustomerHistory h = CustomerHistory::Build(tx, ds->customers.size());
  std::vector<size_t> counts;
  size_t never = 0;
  for (uint32_t c = 0; c < ds->customers.size(); ++c) {
    counts.push_back(h.count(c));
    never += h.count(c) == 0;
  }
  std::sort(counts.begin(), counts.end());
  const double mean = static_cast<double>(tx.size()) / n;
  EXPECT_LT(counts[counts.size() / 2], 0.7 * mean);
  EXPECT_GT(counts[counts.size() * 99 / 100], 5 * mean);
  EXPECT_GT(never, 0u);

  // Heavy-tailed article popularity: the top 5% of articles sell > 30%.
  std::vector<int64_t> sold(ds->articles.size(), 0);
  for (uint32_t a : tx.article) ++sold[a];
  std::sort(sold.rbegin(), sold.rend());
  const int64_t top = std::accumulate(sold.begin(), sold.begin() + sold.size() / 20, int64_t{0});
  EXPECT_GT(static_cast<double>(top) / tx.size(), 0.3);

  // Prices are small normalised floats like the real file's (mean ~0.028).
  const double mean_price = std::accumulate(tx.price.begin(), tx.price.end(), 0.0) / tx.size();
  EXPECT_GT(mean_price, 0.01);
  EXPECT_LT(mean_price, 0.08);

  // Weekly seasonality: Saturdays busier than Sundays.
  int64_t by_dow[7] = {0};
  for (int32_t d : tx.day) ++by_dow[DayOfWeek(d)];
  EXPECT_GT(by_dow[5], by_dow[6]);
}

// How far product types' shares of sales move between winter (Dec-Feb) and
// summer (Jun-Aug): the mean |log(summer share / winter share)| over types
// with at least 50 sales in both.
double SeasonalSwing(const Dataset& ds) {
  std::map<int32_t, double> winter, summer;
  double w_total = 0, s_total = 0;
  for (size_t i = 0; i < ds.transactions.size(); ++i) {
    const std::string date = FormatDate(ds.transactions.day[i]);
    const int month = std::stoi(date.substr(5, 2));
    const int32_t type = ds.articles[ds.transactions.article[i]].product_type_no;
    if (month == 12 || month <= 2) {
      winter[type] += 1;
      w_total += 1;
    } else if (month >= 6 && month <= 8) {
      summer[type] += 1;
      s_total += 1;
    }
  }
  double sum = 0;
  int n = 0;
  for (const auto& [type, w] : winter) {
    const double s = summer[type];
    if (w < 50 || s < 50) continue;
    sum += std::abs(std::log((s / s_total) / (w / w_total)));
    ++n;
  }
  return n > 0 ? sum / n : 0;
}

TEST(Datagen, SeasonalStrengthMovesProductTypesThroughTheYear) {
  TempDir flat_dir, seasonal_dir;
  config::DatagenConfig c = Medium();
  auto flat = GenerateAndLoad(c, flat_dir.path());
  c.set_seasonal_strength(1.5);
  auto seasonal = GenerateAndLoad(c, seasonal_dir.path());
  ASSERT_NE(flat, nullptr);
  ASSERT_NE(seasonal, nullptr);
  const double flat_swing = SeasonalSwing(*flat), seasonal_swing = SeasonalSwing(*seasonal);
  // Without seasons types' shares move too (products launch and fade); the
  // seasons move them further. (The factor shifts choices among a style's
  // types: a customer buys the season's type instead of another, not more.)
  EXPECT_GT(seasonal_swing, flat_swing + 0.25) << "flat " << flat_swing;
  // Same customers and catalogue: only which articles are chosen moves.
  EXPECT_EQ(ReadFile(flat_dir.File(kArticlesFile)), ReadFile(seasonal_dir.File(kArticlesFile)));
  EXPECT_EQ(ReadFile(flat_dir.File(kCustomersFile)), ReadFile(seasonal_dir.File(kCustomersFile)));
}

TEST(Datagen, BadConfigNamesTheField) {
  config::DatagenConfig c = Tiny();
  c.set_end_date("2020-02-30");
  absl::Status s = ValidateConfig(c);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("end_date"));
  EXPECT_FALSE(ScalePreset("huge").ok());
  c = Tiny();
  c.set_seasonal_strength(-1);
  EXPECT_THAT(std::string(ValidateConfig(c).message()), ::testing::HasSubstr("seasonal_strength"));
}

}  // namespace
}  // namespace hmrec::datagen
