#include "data/submission.h"

#include "data/customer_list.h"
#include "data/ids.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/test_util.h"

namespace hmrec {
namespace {

using hmrec::testing::CustomerId;
using hmrec::testing::TempDir;
using hmrec::testing::WriteFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Twelve() {
  std::string s;
  for (int i = 1; i <= 12; ++i) s += (i > 1 ? " " : "") + FormatArticleId(100000000 + i);
  return s;
}

TEST(Submission, RowsAreFormattedWithTenDigitIds) {
  std::string out;
  AppendSubmissionRow(CustomerId(5), {108775015, 1}, &out);
  EXPECT_EQ(out, CustomerId(5) + ",0108775015 0000000001\n");
}

TEST(Submission, ProblemsAreCountedNotFatal) {
  TempDir dir;
  const std::string p = dir.File("sub.csv");
  WriteFile(p, "customer_id,prediction\n" + CustomerId(1) + "," + Twelve() + "\n" +  // fine
                   CustomerId(2) + ",0108775015 108775016\n" +                       // short + bad id
                   "not-a-customer," + Twelve() + "\n" +                             // malformed
                   CustomerId(1) + "," + Twelve() + "\n" +                           // repeated
                   CustomerId(3) + "\n");                                            // 1 field
  SubmissionCheck check;
  auto sub = ReadSubmission(p, &check);
  ASSERT_TRUE(sub.ok()) << sub.status();
  EXPECT_EQ(check.rows, 5);
  EXPECT_EQ(check.rows_with_12_valid, 2);
  EXPECT_EQ(check.short_rows, 1);
  EXPECT_EQ(check.invalid_article_ids, 1);
  EXPECT_EQ(check.malformed_rows, 2);
  EXPECT_EQ(check.duplicate_customers, 1);
  EXPECT_EQ(sub->size(), 2u);
  EXPECT_THAT(sub->at(CustomerId(2)), ElementsAre(108775015));
  EXPECT_THAT(check.Summary(), HasSubstr("sub.csv:3: bad article id '108775016'"));
}

TEST(Submission, BadHeaderIsAnError) {
  TempDir dir;
  WriteFile(dir.File("sub.csv"), "id,pred\n");
  SubmissionCheck check;
  auto sub = ReadSubmission(dir.File("sub.csv"), &check);
  EXPECT_THAT(std::string(sub.status().message()), HasSubstr("header must be"));
}

TEST(CustomerList, ReadsTheFirstColumnInFileOrder) {
  TempDir dir;
  WriteFile(dir.File("s.csv"), "customer_id,prediction\n" + CustomerId(9) + ",x\n" + CustomerId(2) + ",y\n");
  auto ids = ReadCustomerIds(dir.File("s.csv"));
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ElementsAre(CustomerId(9), CustomerId(2)));
}

TEST(CustomerList, BadListsAreErrorsNamingFileAndLine) {
  TempDir dir;
  WriteFile(dir.File("h.csv"), "article_id\n" + CustomerId(1) + "\n");
  EXPECT_THAT(std::string(ReadCustomerIds(dir.File("h.csv")).status().message()), HasSubstr("h.csv:1: expected"));
  WriteFile(dir.File("b.csv"), "customer_id\n" + CustomerId(1) + "\nABC\n");
  EXPECT_THAT(std::string(ReadCustomerIds(dir.File("b.csv")).status().message()),
              HasSubstr("b.csv:3: customer_id 'ABC' is not 64"));
  WriteFile(dir.File("d.csv"), "customer_id\n" + CustomerId(1) + "\n" + CustomerId(2) + "\n" + CustomerId(1) + "\n");
  EXPECT_THAT(std::string(ReadCustomerIds(dir.File("d.csv")).status().message()),
              HasSubstr("d.csv:4: customer " + CustomerId(1) + " is listed twice (first on line 2)"));
  WriteFile(dir.File("e.csv"), "customer_id\n");
  EXPECT_FALSE(ReadCustomerIds(dir.File("e.csv")).ok());
}

}  // namespace
TEST(Shard, ParsesAndSplitsIntoContiguousDisjointCoveringParts) {
  for (int64_t n : {1, 7, 10, 1371980}) {
    for (int count : {1, 2, 3, 8}) {
      int64_t next = 0;
      for (int i = 0; i < count; ++i) {
        absl::StatusOr<Shard> s = ParseShard(absl::StrCat(i, "/", count));
        ASSERT_TRUE(s.ok()) << s.status();
        s->Range(n);
        EXPECT_EQ(s->begin, next) << n << " " << i << "/" << count;
        EXPECT_GE(s->end - s->begin, n / count);
        EXPECT_LE(s->end - s->begin, n / count + 1);
        next = s->end;
      }
      EXPECT_EQ(next, n);
    }
  }
  absl::StatusOr<Shard> s = ParseShard("2/3");
  ASSERT_TRUE(s.ok());
  s->Range(10);  // the first 10 % 3 parts are one longer: 0-3, 4-6, 7-9
  EXPECT_EQ(s->begin, 7);
  EXPECT_EQ(s->end, 10);
  for (const char* bad : {"3/3", "-1/2", "1", "1/0", "a/b", "1/2/3", ""}) {
    absl::StatusOr<Shard> b = ParseShard(bad);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_THAT(std::string(b.status().message()), HasSubstr(absl::StrCat("shard '", bad, "'")));
  }
}

}  // namespace hmrec
