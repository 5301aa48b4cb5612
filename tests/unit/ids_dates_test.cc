#include "data/dates.h"
#include "data/ids.h"
#include "gtest/gtest.h"

namespace hmrec {
namespace {

TEST(Dates, RoundTripAndKnownDays) {
  EXPECT_EQ(*ParseDate("1970-01-01"), 0);
  EXPECT_EQ(*ParseDate("2020-09-22") - *ParseDate("2018-09-20"), 733);
  for (int32_t d = 17000; d < 19000; d += 37) EXPECT_EQ(*ParseDate(FormatDate(d)), d);
  EXPECT_EQ(FormatDate(*ParseDate("2020-02-29")), "2020-02-29");
  EXPECT_EQ(DayOfWeek(*ParseDate("2020-09-22")), 1);  // a Tuesday
}

TEST(Dates, RejectsBadDates) {
  EXPECT_FALSE(ParseDate("2019-02-29").ok());
  EXPECT_FALSE(ParseDate("2020-13-01").ok());
  EXPECT_FALSE(ParseDate("2020-9-22").ok());
  EXPECT_FALSE(ParseDate("2020/09/22").ok());
  EXPECT_FALSE(ParseDate("").ok());
}

TEST(Ids, CustomerIds) {
  EXPECT_TRUE(IsValidCustomerId(std::string(64, 'a')));
  EXPECT_FALSE(IsValidCustomerId(std::string(64, 'A')));
  EXPECT_FALSE(IsValidCustomerId(std::string(63, 'a')));
  EXPECT_FALSE(IsValidCustomerId(std::string(63, 'a') + "g"));
}

TEST(Ids, ArticleIdsKeepTheirLeadingZero) {
  EXPECT_EQ(*ParseArticleId("0108775015"), 108775015);
  EXPECT_EQ(*ParseArticleId("108775015"), 108775015);
  EXPECT_EQ(FormatArticleId(108775015), "0108775015");
  EXPECT_FALSE(ParseArticleId("01087750150").ok());
  EXPECT_FALSE(ParseArticleId("01087a5015").ok());
  EXPECT_FALSE(ParseArticleId("").ok());
  EXPECT_FALSE(ParseArticleId("9999999999").ok());  // beyond int32
}

TEST(Ids, IntegerFieldsAcceptPandasFloats) {
  EXPECT_EQ(*ParseIntegerField("49"), 49);
  EXPECT_EQ(*ParseIntegerField("49.0"), 49);
  EXPECT_EQ(*ParseIntegerField("-1"), -1);
  EXPECT_FALSE(ParseIntegerField("49.5").ok());
  EXPECT_FALSE(ParseIntegerField("").ok());
  EXPECT_FALSE(ParseIntegerField("4x").ok());
  EXPECT_DOUBLE_EQ(*ParseDoubleField("0.0508474576271186"), 0.0508474576271186);
  EXPECT_FALSE(ParseDoubleField("0.05x").ok());
}

}  // namespace
}  // namespace hmrec
