#include "data/hm_data.h"

#include <filesystem>
#include <thread>

#include "data/dataset_cache.h"
#include "data/dates.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/test_util.h"

namespace hmrec {
namespace {

using hmrec::testing::CustomerId;
using hmrec::testing::TempDir;
using hmrec::testing::WriteFile;
using ::testing::HasSubstr;

const char kArticlesHeader[] =
    "article_id,product_code,prod_name,product_type_no,product_type_name,product_group_name,"
    "graphical_appearance_no,graphical_appearance_name,colour_group_code,colour_group_name,"
    "perceived_colour_value_id,perceived_colour_value_name,perceived_colour_master_id,"
    "perceived_colour_master_name,department_no,department_name,index_code,index_name,"
    "index_group_no,index_group_name,section_no,section_name,garment_group_no,garment_group_name,"
    "detail_desc\n";

std::string ArticleRow(const std::string& id, const std::string& desc) {
  return id +
         ",108775,Strap top,253,Vest top,Garment Upper body,1010016,Solid,9,Black,4,Dark,5,"
         "Black,1676,Jersey Basic,A,Ladieswear,1,Ladieswear,16,Womens Everyday Basics,1002,"
         "Jersey Basic," +
         desc + "\n";
}

class HmDataTest : public ::testing::Test {
 protected:
  void WriteDefault() {
    WriteFile(dir_.File("articles.csv"),
              std::string(kArticlesHeader) + ArticleRow("0108775015", "\"Jersey top, narrow straps\"") +
                  ArticleRow("108775044", "\"Top in \"\"soft\"\" jersey\nwith a second line\"") +
                  ArticleRow("0110065001", ""));
    WriteFile(dir_.File("customers.csv"),
              "customer_id,FN,Active,club_member_status,fashion_news_frequency,age,postal_code\n" + CustomerId(1) +
                  ",,,ACTIVE,NONE,49,p1\n" + CustomerId(2) + ",1.0,1.0,ACTIVE,Regularly,49.0,p2\n" + CustomerId(3) +
                  ",,,,,,p1\n");
    WriteFile(dir_.File("transactions_train.csv"),
              "t_dat,customer_id,article_id,price,sales_channel_id\n"
              "2018-09-20," +
                  CustomerId(1) +
                  ",0108775015,0.0508474576271186,2\n"
                  "2018-09-21," +
                  CustomerId(2) +
                  ",0108775044,0.03,1\n"
                  "2018-09-21," +
                  CustomerId(2) + ",0110065001,0.01,2\n");
  }
  Dataset ReadAllFiles(LoadOptions opts = {}) {
    Dataset ds;
    opts.show_progress = false;
    EXPECT_TRUE(ReadArticles(dir_.File("articles.csv"), &ds).ok());
    EXPECT_TRUE(ReadCustomers(dir_.File("customers.csv"), &ds).ok());
    absl::Status s = ReadTransactions(dir_.File("transactions_train.csv"), opts, &ds);
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_TRUE(FinishDataset(&ds).ok());
    return ds;
  }
  TempDir dir_;
};

TEST_F(HmDataTest, ReadsAllThreeFiles) {
  WriteDefault();
  Dataset ds = ReadAllFiles();
  ASSERT_EQ(ds.articles.size(), 3u);
  EXPECT_EQ(ds.articles[0].article_id, 108775015);
  EXPECT_EQ(ds.articles[1].article_id, 108775044);  // written without the leading zero
  EXPECT_EQ(ds.articles[0].detail_desc, "Jersey top, narrow straps");
  EXPECT_EQ(ds.articles[1].detail_desc, "Top in \"soft\" jersey\nwith a second line");
  EXPECT_EQ(ds.articles[2].detail_desc, "");
  EXPECT_EQ(ds.articles[0].index_code, "A");
  EXPECT_EQ(ds.articles[0].garment_group_no, 1002);

  ASSERT_EQ(ds.customers.size(), 3u);
  EXPECT_EQ(ds.customers[0].age, 49);
  EXPECT_EQ(ds.customers[1].age, 49);  // "49.0"
  EXPECT_EQ(ds.customers[2].age, -1);
  EXPECT_EQ(ds.customers[0].fn, -1);
  EXPECT_EQ(ds.customers[1].fn, 1);
  EXPECT_EQ(ds.customers[1].active, 1);
  EXPECT_EQ(ds.club_member_status.Get(ds.customers[2].club_member_status), "");
  EXPECT_EQ(ds.fashion_news_frequency.Get(ds.customers[1].fashion_news_frequency), "Regularly");
  EXPECT_EQ(ds.customers[0].postal_code, ds.customers[2].postal_code);
  EXPECT_EQ(ds.FindCustomer(CustomerId(2)), 1u);
  EXPECT_EQ(ds.customer_id(2), CustomerId(3));

  ASSERT_EQ(ds.transactions.size(), 3u);
  EXPECT_EQ(ds.transactions.day[0], *ParseDate("2018-09-20"));
  EXPECT_EQ(ds.transactions.customer[1], 1u);
  EXPECT_EQ(ds.transactions.article[1], 1u);
  EXPECT_FLOAT_EQ(ds.transactions.price[0], 0.0508474576271186f);
  EXPECT_EQ(ds.transactions.sales_channel[0], 2);
  EXPECT_EQ(ds.first_day, *ParseDate("2018-09-20"));
  EXPECT_EQ(ds.last_day, *ParseDate("2018-09-21"));
  EXPECT_EQ(ds.report.unknown_customer_rows + ds.report.unknown_article_rows, 0);
}

TEST_F(HmDataTest, WrongHeaderNamesTheColumn) {
  WriteFile(dir_.File("customers.csv"), "customer_id,FN,Active,club,fashion_news_frequency,age,postal_code\n");
  Dataset ds;
  absl::Status s = ReadCustomers(dir_.File("customers.csv"), &ds);
  EXPECT_THAT(std::string(s.message()), HasSubstr("customers.csv:1: header column 4 is 'club'"));
}

TEST_F(HmDataTest, ShortRowNamesFileLineAndCount) {
  WriteFile(dir_.File("articles.csv"),
            std::string(kArticlesHeader) + ArticleRow("0108775015", "") + "0108775016,108775,only three\n");
  Dataset ds;
  absl::Status s = ReadArticles(dir_.File("articles.csv"), &ds);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("articles.csv:3: expected 25 fields, got 3"));
}

TEST_F(HmDataTest, BadValuesNameTheColumn) {
  WriteDefault();
  WriteFile(dir_.File("customers.csv"),
            "customer_id,FN,Active,club_member_status,fashion_news_frequency,age,postal_code\n" + CustomerId(1) +
                ",,,ACTIVE,NONE,forty,p1\n");
  Dataset ds;
  EXPECT_THAT(std::string(ReadCustomers(dir_.File("customers.csv"), &ds).message()),
              HasSubstr("customers.csv:2: column age: bad age 'forty'"));

  WriteFile(dir_.File("customers.csv"),
            "customer_id,FN,Active,club_member_status,fashion_news_frequency,age,postal_code\n"
            "ABC,,,ACTIVE,NONE,20,p1\n");
  Dataset ds2;
  EXPECT_THAT(std::string(ReadCustomers(dir_.File("customers.csv"), &ds2).message()),
              HasSubstr("customers.csv:2: column customer_id: 'ABC' is not 64 lowercase hex"));
}

TEST_F(HmDataTest, BadDateNamesLine) {
  WriteDefault();
  WriteFile(dir_.File("transactions_train.csv"),
            "t_dat,customer_id,article_id,price,sales_channel_id\n"
            "2018-09-20," +
                CustomerId(1) +
                ",0108775015,0.05,2\n"
                "2018-02-30," +
                CustomerId(1) + ",0108775015,0.05,2\n");
  Dataset ds;
  ASSERT_TRUE(ReadArticles(dir_.File("articles.csv"), &ds).ok());
  ASSERT_TRUE(ReadCustomers(dir_.File("customers.csv"), &ds).ok());
  absl::Status s = ReadTransactions(dir_.File("transactions_train.csv"), LoadOptions{}, &ds);
  EXPECT_THAT(std::string(s.message()), HasSubstr("transactions_train.csv:3: column t_dat: bad date '2018-02-30'"));
}

TEST_F(HmDataTest, DuplicateIdsAreErrors) {
  WriteFile(dir_.File("articles.csv"),
            std::string(kArticlesHeader) + ArticleRow("0108775015", "") + ArticleRow("108775015", ""));
  Dataset ds;
  EXPECT_THAT(std::string(ReadArticles(dir_.File("articles.csv"), &ds).message()),
              HasSubstr("articles.csv:3: duplicate article_id"));
}

TEST_F(HmDataTest, UnknownReferencesAreCountedReportedAndExcluded) {
  WriteDefault();
  WriteFile(dir_.File("transactions_train.csv"),
            "t_dat,customer_id,article_id,price,sales_channel_id\n"
            "2018-09-20," +
                CustomerId(1) +
                ",0108775015,0.05,2\n"
                "2018-09-20," +
                CustomerId(99) +
                ",0108775015,0.05,2\n"
                "2018-09-20," +
                CustomerId(1) + ",0999999999,0.05,2\n");
  Dataset ds = ReadAllFiles();
  EXPECT_EQ(ds.transactions.size(), 1u);
  EXPECT_EQ(ds.report.transaction_rows_read, 3);
  EXPECT_EQ(ds.report.unknown_customer_rows, 1);
  EXPECT_EQ(ds.report.unknown_article_rows, 1);
  ASSERT_EQ(ds.report.examples.size(), 2u);
  EXPECT_THAT(ds.report.examples[0], HasSubstr("transactions_train.csv:3: customer_id"));
  EXPECT_THAT(ds.report.examples[1], HasSubstr("transactions_train.csv:4: article_id 0999999999"));
  EXPECT_THAT(ds.report.Summary(), HasSubstr("excluded 1 rows naming a customer"));

  Dataset strict;
  LoadOptions opts;
  opts.strict_references = true;
  ASSERT_TRUE(ReadArticles(dir_.File("articles.csv"), &strict).ok());
  ASSERT_TRUE(ReadCustomers(dir_.File("customers.csv"), &strict).ok());
  absl::Status s = ReadTransactions(dir_.File("transactions_train.csv"), opts, &strict);
  EXPECT_THAT(std::string(s.message()), HasSubstr("transactions_train.csv:3: customer_id"));
}

// Purchases recorded online, read after the base files: appended, the day
// range extended, a customer customers.csv lacks added with an unknown
// profile (excluded from the base files as before), an unknown article
// still excluded.
TEST_F(HmDataTest, ExtraTransactionsAddTheirCustomersAndExtendTheDays) {
  WriteDefault();
  Dataset ds = ReadAllFiles();
  WriteFile(dir_.File("extra.csv"), "t_dat,customer_id,article_id,price,sales_channel_id\n2018-09-23," +
                                        CustomerId(99) + ",0108775015,0.05,2\n2018-09-23," + CustomerId(1) +
                                        ",0110065001,0.02,1\n2018-09-24," + CustomerId(99) + ",0999999999,0.05,2\n");
  LoadOptions opts;
  opts.show_progress = false;
  auto added = ReadExtraTransactions(dir_.File("extra.csv"), opts, &ds);
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(*added, 1);
  ASSERT_EQ(ds.customers.size(), 4u);
  EXPECT_EQ(ds.FindCustomer(CustomerId(99)), 3u);
  EXPECT_EQ(ds.customers[3].age, -1);
  EXPECT_EQ(ds.club_member_status.Get(ds.customers[3].club_member_status), "");
  EXPECT_EQ(ds.postal_codes.Get(ds.customers[3].postal_code), "");
  ASSERT_EQ(ds.transactions.size(), 5u);
  EXPECT_EQ(ds.transactions.customer[3], 3u);
  EXPECT_EQ(ds.last_day, *ParseDate("2018-09-23"));
  EXPECT_EQ(ds.report.unknown_article_rows, 1);
  // A malformed row is named by file and line.
  WriteFile(dir_.File("bad.csv"), "t_dat,customer_id,article_id,price,sales_channel_id\n2018-09-25,nope,1,1,1\n");
  auto bad = ReadExtraTransactions(dir_.File("bad.csv"), opts, &ds);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("bad.csv:2: column customer_id"));
}

// An erasure list: the listed customers' rows and purchases are gone, the
// others renumbered in order with their purchases; ids the data lacks are
// counted as listed only; a malformed list is named by file and line.
TEST_F(HmDataTest, ErasuresRemoveTheCustomersAndTheirPurchases) {
  WriteDefault();
  Dataset ds = ReadAllFiles();
  const size_t customers = ds.customers.size(), rows = ds.transactions.size();
  ASSERT_GE(customers, 3u);
  const std::string gone(ds.customer_id(0)), kept(ds.customer_id(1));
  size_t gone_rows = 0, kept_rows = 0;
  for (uint32_t c : ds.transactions.customer) {
    gone_rows += c == 0;
    kept_rows += c == 1;
  }
  ASSERT_GT(gone_rows, 0u);
  WriteFile(dir_.File("erasures.csv"), "customer_id\n" + gone + "\n" + CustomerId(12345) + "\n");
  auto report = ApplyErasures(dir_.File("erasures.csv"), &ds);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->listed, 2);
  EXPECT_EQ(report->customers, 1);
  EXPECT_EQ(report->transactions, static_cast<int64_t>(gone_rows));
  EXPECT_EQ(ds.customers.size(), customers - 1);
  EXPECT_EQ(ds.transactions.size(), rows - gone_rows);
  EXPECT_FALSE(ds.FindCustomer(gone).has_value());
  ASSERT_EQ(ds.FindCustomer(kept), 0u);
  EXPECT_EQ(ds.customer_id(0), kept);
  size_t now_kept = 0;
  for (uint32_t c : ds.transactions.customer) {
    ASSERT_LT(c, ds.customers.size());
    now_kept += c == 0;
  }
  EXPECT_EQ(now_kept, kept_rows);
  // An empty list erases nothing; a malformed one is refused.
  WriteFile(dir_.File("none.csv"), "customer_id\n");
  auto none = ApplyErasures(dir_.File("none.csv"), &ds);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->customers, 0);
  WriteFile(dir_.File("bad.csv"), "customer_id\n" + kept + "\nnot-an-id\n");
  auto bad = ApplyErasures(dir_.File("bad.csv"), &ds);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("bad.csv:3:"));
  EXPECT_EQ(ds.customers.size(), customers - 1);
}

// ---- the binary cache

class DatasetCacheTest : public HmDataTest {
 protected:
  std::unique_ptr<Dataset> Load() {
    LoadOptions opts;
    opts.show_progress = false;
    auto ds = LoadDataset(dir_.path(), opts);
    EXPECT_TRUE(ds.ok()) << ds.status();
    return ds.ok() ? std::move(*ds) : nullptr;
  }
};

void ExpectSameContent(const Dataset& a, const Dataset& b) {
  ASSERT_EQ(a.articles.size(), b.articles.size());
  for (size_t i = 0; i < a.articles.size(); ++i) {
    EXPECT_EQ(a.articles[i].article_id, b.articles[i].article_id);
    EXPECT_EQ(a.articles[i].detail_desc, b.articles[i].detail_desc);
    EXPECT_EQ(a.articles[i].section_name, b.articles[i].section_name);
  }
  ASSERT_EQ(a.customers.size(), b.customers.size());
  for (uint32_t i = 0; i < a.customers.size(); ++i) {
    EXPECT_EQ(a.customer_id(i), b.customer_id(i));
    EXPECT_EQ(a.customers[i].age, b.customers[i].age);
    EXPECT_EQ(a.postal_codes.Get(a.customers[i].postal_code), b.postal_codes.Get(b.customers[i].postal_code));
  }
  EXPECT_EQ(a.transactions.day, b.transactions.day);
  EXPECT_EQ(a.transactions.customer, b.transactions.customer);
  EXPECT_EQ(a.transactions.article, b.transactions.article);
  EXPECT_EQ(a.transactions.price, b.transactions.price);
  EXPECT_EQ(a.transactions.sales_channel, b.transactions.sales_channel);
  EXPECT_EQ(a.first_day, b.first_day);
  EXPECT_EQ(a.last_day, b.last_day);
}

TEST_F(DatasetCacheTest, SecondLoadComesFromCacheWithSameContent) {
  WriteDefault();
  auto first = Load();
  ASSERT_NE(first, nullptr);
  EXPECT_FALSE(first->report.from_cache);
  EXPECT_TRUE(std::filesystem::exists(DatasetCachePath(dir_.path(), LoadOptions{})));
  auto second = Load();
  ASSERT_NE(second, nullptr);
  EXPECT_TRUE(second->report.from_cache);
  ExpectSameContent(*first, *second);
}

TEST_F(DatasetCacheTest, ChangedCsvRebuildsTheCache) {
  WriteDefault();
  ASSERT_NE(Load(), nullptr);
  // Same length, different content: only the content fingerprint can tell.
  std::string tx = hmrec::testing::ReadFile(dir_.File("transactions_train.csv"));
  const size_t pos = tx.rfind(",2\n");
  tx[pos + 1] = '1';
  WriteFile(dir_.File("transactions_train.csv"), tx);
  auto reloaded = Load();
  ASSERT_NE(reloaded, nullptr);
  EXPECT_FALSE(reloaded->report.from_cache);
  EXPECT_EQ(reloaded->transactions.sales_channel.back(), 1);
  // And the rebuilt cache serves the next load.
  auto again = Load();
  EXPECT_TRUE(again->report.from_cache);
  EXPECT_EQ(again->transactions.sales_channel.back(), 1);
}

TEST_F(DatasetCacheTest, AppendedRowRebuildsTheCache) {
  WriteDefault();
  ASSERT_EQ(Load()->transactions.size(), 3u);
  std::ofstream(dir_.File("transactions_train.csv"), std::ios::app)
      << "2018-09-22," << CustomerId(3) << ",0108775015,0.02,1\n";
  auto reloaded = Load();
  EXPECT_FALSE(reloaded->report.from_cache);
  EXPECT_EQ(reloaded->transactions.size(), 4u);
}

TEST_F(DatasetCacheTest, CorruptCacheIsIgnoredAndRebuilt) {
  WriteDefault();
  auto first = Load();
  const std::string cache = DatasetCachePath(dir_.path(), LoadOptions{});
  std::string bytes = hmrec::testing::ReadFile(cache);
  bytes[bytes.size() / 2] ^= 0x5A;
  WriteFile(cache, bytes);
  auto reloaded = Load();
  ASSERT_NE(reloaded, nullptr);
  EXPECT_FALSE(reloaded->report.from_cache);
  ExpectSameContent(*first, *reloaded);
  EXPECT_TRUE(Load()->report.from_cache);
}

TEST_F(DatasetCacheTest, TruncatedCacheIsIgnored) {
  WriteDefault();
  Load();
  const std::string cache = DatasetCachePath(dir_.path(), LoadOptions{});
  std::filesystem::resize_file(cache, std::filesystem::file_size(cache) / 3);
  auto reloaded = Load();
  ASSERT_NE(reloaded, nullptr);
  EXPECT_FALSE(reloaded->report.from_cache);
  EXPECT_EQ(reloaded->transactions.size(), 3u);
}

TEST_F(DatasetCacheTest, ParseErrorsStillReportedWithCacheOn) {
  WriteDefault();
  WriteFile(dir_.File("transactions_train.csv"),
            "t_dat,customer_id,article_id,price,sales_channel_id\n2018-09-20,x,1,0.1,1\n");
  LoadOptions opts;
  opts.show_progress = false;
  auto ds = LoadDataset(dir_.path(), opts);
  EXPECT_THAT(std::string(ds.status().message()), HasSubstr("transactions_train.csv:2: column customer_id"));
}

}  // namespace
}  // namespace hmrec
