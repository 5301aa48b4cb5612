// Merchandising rules: validation (what is refused, with file:line), the
// unavailable file, and what Apply does to a list: campaigns inside their
// dates and segment only, diversity caps with refills, pins, exactly k.

#include "rules/merch_rules.h"

#include <chrono>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "data/dates.h"
#include "data/ids.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/test_util.h"

namespace hmrec {
namespace {

using ::testing::HasSubstr;

// 40 articles: product codes 100..119 with two colours each; product types
// alternate Trousers / Sweater; the first ten are Divided.
ArticleTable Catalogue() {
  std::vector<Article> articles;
  for (int i = 0; i < 40; ++i) {
    Article a;
    a.product_code = 100 + i / 2;
    a.article_id = a.product_code * 1000 + i % 2;
    a.product_type_name = (i / 2) % 2 == 0 ? "Trousers" : "Sweater";
    a.product_group_name = "Garment";
    a.colour_group_name = i % 2 == 0 ? "Black" : "Red";
    a.department_name = "Dept";
    a.index_name = "Index";
    a.index_group_name = i < 10 ? "Divided" : "Ladieswear";
    a.section_name = "Section";
    a.garment_group_name = "Jersey";
    articles.push_back(a);
  }
  return ArticleTable::Build(articles);
}

int32_t Id(int i) { return (100 + i / 2) * 1000 + i % 2; }

std::shared_ptr<const RuleSet> Rules(const std::string& text, int max_k = 100) {
  absl::StatusOr<std::shared_ptr<const RuleSet>> r = RuleSet::Parse(text, "rules.pbtxt", "", max_k);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : nullptr;
}

absl::Status Refused(const std::string& text, int max_k = 100) {
  return RuleSet::Parse(text, "rules.pbtxt", "", max_k).status();
}

// The core's answer: articles 0..n-1 of the catalogue in order, scores
// falling from 0.9.
Recommendation Pool(int n) {
  Recommendation rec;
  for (int i = 0; i < n; ++i) {
    rec.article_ids.push_back(Id(i));
    rec.scores.push_back(0.9f - 0.01f * static_cast<float>(i));
  }
  rec.ranked = true;
  return rec;
}

const std::vector<std::string> kClubs = {"", "ACTIVE", "PRE-CREATE"};

TEST(RulesTest, RefusesWhatCannotBeMeantWithFileAndLine) {
  EXPECT_THAT(Refused("diversity { max_per_product_code: -1 }").message(), HasSubstr("rules.pbtxt:1"));
  EXPECT_THAT(Refused("campaigns {\n  name: \"x\"\n  articles { product_type_name: \"Sweater\" }\n"
                      "  score_factor: 2\n  start_date: \"2026-12-10\"\n  end_date: \"2026-12-01\"\n}")
                  .message(),
              HasSubstr("rules.pbtxt:6: campaign \"x\": end_date 2026-12-01 is before start_date 2026-12-10"));
  EXPECT_THAT(Refused("pins { name: \"p\" article_id: \"0100000\" position: 13 }", 12).message(),
              HasSubstr("position 13 is outside 1..max_k (12)"));
  EXPECT_THAT(Refused("pins { name: \"a\" article_id: \"0100000\" position: 2 }\n"
                      "pins { name: \"b\" article_id: \"0101000\" position: 2 }")
                  .message(),
              HasSubstr("rules.pbtxt:2: pin \"b\": position 2 is pin \"a\"'s on overlapping dates"));
  // Two pins on one position on dates that do not meet are fine.
  EXPECT_NE(Rules("pins { name: \"a\" article_id: \"0100000\" position: 2 end_date: \"2026-12-01\" }\n"
                  "pins { name: \"b\" article_id: \"0101000\" position: 2 start_date: \"2026-12-02\" }"),
            nullptr);
  EXPECT_THAT(Refused("unavailable_article_ids: \"12x\"").message(), HasSubstr("is not an article id"));
  EXPECT_THAT(Refused("campaigns { name: \"x\" articles { article_ids: \"1\" } }").message(),
              HasSubstr("set one of score_factor"));
  EXPECT_THAT(Refused("campaigns { name: \"x\" score_factor: 2 }").message(), HasSubstr("matches nothing"));
  EXPECT_THAT(Refused("campaigns { name: \"x\" segments: \"nobody\" score_factor: 2 articles { article_ids: \"1\" } }")
                  .message(),
              HasSubstr("no segment named \"nobody\""));
  EXPECT_THAT(Refused("diversity { max_per_product_cod: 1 }").message(), HasSubstr("rules.pbtxt:1:"));
}

TEST(RulesTest, UnknownArticleIdsAreCountedNotRefused) {
  auto set = Rules(
      "unavailable_article_ids: \"0100000\"\nunavailable_article_ids: \"0999999\"\n"
      "pins { name: \"p\" article_id: \"0888888\" position: 1 }");
  const ArticleTable articles = Catalogue();
  auto c = CompiledRules::Compile(set, articles, kClubs, {});
  EXPECT_EQ(c->unavailable_count(), 1);
  EXPECT_EQ(c->unknown_article_ids(), 2);
  EXPECT_EQ(c->unavailable_rows()[static_cast<size_t>(articles.Row(Id(0)))], 1);
}

TEST(RulesTest, UnavailableFileIsReadRelativeToTheRulesAndNamesItsBadLine) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("stock/out.txt"), "# out of stock\n0100000\n\n0101001\n");
  testing::WriteFile(dir.File("rules.pbtxt"), "unavailable_file: \"stock/out.txt\"\n");
  auto set = RuleSet::Load(dir.File("rules.pbtxt"), 100);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_THAT((*set)->unavailable, ::testing::ElementsAre(100000, 101001));
  testing::WriteFile(dir.File("stock/out.txt"), "0100000\nabc\n");
  EXPECT_THAT(RuleSet::Load(dir.File("rules.pbtxt"), 100).status().message(), HasSubstr("out.txt:2: \"abc\""));
}

TEST(RulesTest, AMillionUnavailableIdsLoadAndCompileFast) {
  testing::TempDir dir;
  std::string ids;
  for (int i = 0; i < 1000000; ++i) absl::StrAppend(&ids, FormatArticleId(100000000 + i), "\n");
  testing::WriteFile(dir.File("out.txt"), ids);
  testing::WriteFile(dir.File("rules.pbtxt"), "unavailable_file: \"out.txt\"\n");
  auto set = RuleSet::Load(dir.File("rules.pbtxt"), 100);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ((*set)->unavailable.size(), 1000000u);
  const ArticleTable articles = Catalogue();
  auto c = CompiledRules::Compile(*set, articles, kClubs, {});
  EXPECT_EQ(c->unknown_article_ids(), 1000000);
  EXPECT_EQ(c->unavailable_count(), 0);
}

TEST(RulesTest, DiversityCapsKeepKAndRefillFromFurtherDownThenPopular) {
  const ArticleTable articles = Catalogue();
  std::vector<int32_t> popular;
  for (int i = 39; i >= 0; --i) popular.push_back(Id(i));
  auto c = CompiledRules::Compile(Rules("diversity { max_per_product_code: 1 }"), articles, kClubs, popular);
  RequestOptions o;
  o.k = 12;
  o.explain = true;
  Recommendation rec = Pool(30);
  rec.explanations.resize(30);
  RuleCounts counts;
  c->Apply(o, CustomerTraits(), 0, &rec, &counts);
  ASSERT_EQ(rec.article_ids.size(), 12u);
  absl::flat_hash_set<int32_t> codes;
  for (int32_t id : rec.article_ids) EXPECT_TRUE(codes.insert(id / 1000).second) << id;
  EXPECT_EQ(rec.article_ids[0], Id(0));
  EXPECT_EQ(rec.article_ids[1], Id(2));  // Id(1) is Id(0)'s other colour
  EXPECT_EQ(counts.capped, 6);           // the second colours among the first 12
  EXPECT_THAT(rec.rules, ::testing::ElementsAre("diversity"));
  EXPECT_THAT(rec.explanations[6].rules, ::testing::ElementsAre("diversity"));
  for (size_t i = 1; i < rec.scores.size(); ++i) EXPECT_LE(rec.scores[i], rec.scores[i - 1]);

  // A pool too short for the caps: the popular list refills, within the
  // request's filters.
  rec = Pool(4);
  o.filters.exclude_article_ids.insert(Id(38));
  c->Apply(o, CustomerTraits(), 0, &rec, &counts);
  ASSERT_EQ(rec.article_ids.size(), 12u);
  codes.clear();
  for (int32_t id : rec.article_ids) EXPECT_TRUE(codes.insert(id / 1000).second) << id;
  EXPECT_EQ(rec.article_ids[2], Id(39));  // the most popular, Id(38) excluded by the request
  EXPECT_EQ(rec.filled_from_popular, 10);

  // Type caps: at most 2 of a product type among 12 cannot hold (two types):
  // k is met anyway, and counted.
  c = CompiledRules::Compile(Rules("diversity { max_per_product_type: 2 }"), articles, kClubs, {});
  rec = Pool(30);
  RuleCounts unmet;
  c->Apply(o, CustomerTraits(), 0, &rec, &unmet);
  EXPECT_EQ(rec.article_ids.size(), 12u);
  EXPECT_EQ(unmet.unmet, 1);
}

TEST(RulesTest, CampaignsMoveArticlesOnlyInsideTheirDatesAndSegment) {
  const ArticleTable articles = Catalogue();
  auto c = CompiledRules::Compile(Rules(R"(
    segments { name: "young" min_age: 16 max_age: 25 club_member_status: "ACTIVE" }
    campaigns {
      name: "sweaters" segments: "young" score_factor: 3
      articles { product_type_name: "Sweater" index_group_name: "Ladieswear" }
      start_date: "2026-12-01" end_date: "2026-12-14"
    }
    campaigns {
      name: "bury-divided" move_positions: 5 articles { index_group_name: "Divided" }
      start_date: "2026-12-01" end_date: "2026-12-14"
    })"),
                                  articles, kClubs, {});
  RequestOptions o;
  o.k = 12;
  CustomerTraits young{true, 20, 1};
  const int32_t inside = *ParseDate("2026-12-05"), after = *ParseDate("2026-12-15");

  Recommendation rec = Pool(30);
  RuleCounts counts;
  c->Apply(o, young, after, &rec, &counts);
  EXPECT_EQ(rec.article_ids, Pool(12).article_ids);  // after the dates: untouched
  EXPECT_TRUE(rec.rules.empty());

  rec = Pool(30);
  c->Apply(o, young, inside, &rec, &counts);
  ASSERT_EQ(rec.article_ids.size(), 12u);
  // Sweaters of Ladieswear (articles 10, 11, 14, 15, ...; 0-9 are Divided)
  // come first.
  EXPECT_EQ(rec.article_ids[0], Id(10));
  EXPECT_EQ(rec.article_ids[1], Id(11));
  EXPECT_EQ(rec.article_ids[2], Id(14));
  EXPECT_GT(counts.boosted, 0);
  EXPECT_GT(counts.buried, 0);
  EXPECT_THAT(rec.rules, ::testing::UnorderedElementsAre("campaign:sweaters", "campaign:bury-divided"));

  // Outside the segment (too old, or not ACTIVE, or age unknown): the
  // sweaters stay where the ranking put them; the bury (everyone) applies.
  for (const CustomerTraits& t : {CustomerTraits{true, 40, 1}, CustomerTraits{true, 20, 2}, CustomerTraits{}}) {
    rec = Pool(30);
    c->Apply(o, t, inside, &rec, &counts);
    EXPECT_THAT(rec.rules, ::testing::ElementsAre("campaign:bury-divided"));
    // Divided articles rank five places lower: 0 as if 5th, after 4 (as if
    // 9th) comes 10, then 5 (as if 10th, buried: after it).
    EXPECT_EQ(rec.article_ids[0], Id(0));
    EXPECT_EQ(rec.article_ids[5], Id(10));
    EXPECT_EQ(rec.article_ids[6], Id(5));
  }
}

TEST(RulesTest, PinsTakeTheirPositionForTheirSegmentAndDates) {
  const ArticleTable articles = Catalogue();
  auto c = CompiledRules::Compile(Rules(R"(
    segments { name: "new" customers: "unknown" }
    pins { name: "hero" article_id: "0119001" position: 1 segments: "new" end_date: "2026-12-31" }
    pins { name: "third" article_id: "0100000" position: 3 })"),
                                  articles, kClubs, {});
  RequestOptions o;
  o.k = 12;
  o.explain = true;
  Recommendation rec = Pool(30);
  rec.explanations.resize(30);
  RuleCounts counts;
  c->Apply(o, CustomerTraits{false, -1, 0}, *ParseDate("2026-12-05"), &rec, &counts);
  ASSERT_EQ(rec.article_ids.size(), 12u);
  EXPECT_EQ(rec.article_ids[0], Id(39));
  EXPECT_EQ(rec.article_ids[2], Id(0));  // moved from the top to 3rd
  EXPECT_EQ(counts.pinned, 2);
  EXPECT_THAT(rec.explanations[0].rules, ::testing::ElementsAre("pin:hero"));
  for (size_t i = 1; i < rec.scores.size(); ++i) EXPECT_LE(rec.scores[i], rec.scores[i - 1]);

  // A known customer: only the pin for everyone; a request that excludes
  // the pinned article does not get it (the core's pool honours the
  // request already).
  rec = Pool(30);
  rec.article_ids.erase(rec.article_ids.begin());
  rec.scores.erase(rec.scores.begin());
  o.filters.exclude_article_ids.insert(Id(0));
  c->Apply(o, CustomerTraits{true, 30, 1}, *ParseDate("2026-12-05"), &rec, &counts);
  EXPECT_EQ(std::count(rec.article_ids.begin(), rec.article_ids.end(), Id(39)), 0);
  EXPECT_EQ(std::count(rec.article_ids.begin(), rec.article_ids.end(), Id(0)), 0);
  EXPECT_EQ(rec.article_ids.size(), 12u);
}

TEST(RulesTest, PoolSizeLeavesRoomOnlyWhenListsAreShaped) {
  EXPECT_EQ(Rules("unavailable_article_ids: \"1\"")->PoolSize(12, 100), 12);
  EXPECT_EQ(Rules("diversity { max_per_product_code: 2 }")->PoolSize(12, 100), 48);
  EXPECT_EQ(Rules("diversity { max_per_product_code: 2 }")->PoolSize(90, 100), 100);
}

}  // namespace
}  // namespace hmrec
