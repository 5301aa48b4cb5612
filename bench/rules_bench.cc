// What merchandising rules cost (docs/PERFORMANCE.md "Merchandising rules"):
//
//   hmrec_rules_bench [--bundle B] [--unavailable 1000000] [--campaigns 100] [--runs 5]
//                     [--only_unavailable]
//
// 1. A rules file of --unavailable ids (one a line, in an unavailable_file;
//    a tenth of the catalogue among them),
//    --campaigns campaigns on attribute values and id lists, diversity caps
//    and pins: load (read + validate) and compile against an H&M-sized
//    catalogue (105,542 articles), median of --runs.
// 2. With --bundle: 1000-id Recommend batches through the serving core,
//    without rules and with them (the core's longer lists that skip the
//    unavailable articles, then Apply), alternated, median of --runs per
//    batch; the difference is the rules' cost per batch.
// --only_unavailable: the rules file holds the unavailable list alone (no
// caps, campaigns or pins), so lists are only filtered, not reshaped.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "data/dates.h"
#include "data/ids.h"
#include "model/tower_runner.h"
#include "rules/merch_rules.h"
#include "rules/rules_diff.h"
#include "server/recommender.h"

ABSL_FLAG(std::string, bundle, "", "A sealed bundle for the per-batch cost (optional)");
ABSL_FLAG(int, unavailable, 1000000, "Unavailable article ids in the rules");
ABSL_FLAG(int, campaigns, 100, "Campaigns in the rules");
ABSL_FLAG(bool, only_unavailable, false, "The unavailable list alone: no caps, campaigns or pins");
ABSL_FLAG(int, runs, 5, "Runs of each measurement (the median is printed)");
ABSL_FLAG(int, batch_ids, 1000, "Customers a batch");

namespace hmrec {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// An H&M-sized catalogue: 105,542 articles, two colours a product code, and
// the real file's cardinalities: 131 product types, 50 colour groups.
ArticleTable Catalogue() {
  std::vector<Article> articles;
  std::mt19937 rng(7);
  for (int i = 0; i < 105542; ++i) {
    Article a;
    a.product_code = 108775 + i / 2;
    a.article_id = a.product_code * 1000 + i % 2 + 1;
    a.product_type_name = absl::StrCat("Type ", rng() % 131);
    a.product_group_name = "Garment Upper body";
    a.colour_group_name = absl::StrCat("Colour ", rng() % 50);
    a.department_name = absl::StrCat("Dept ", rng() % 250);
    a.index_name = "Ladieswear";
    a.index_group_name = rng() % 3 == 0 ? "Divided" : "Ladieswear";
    a.section_name = absl::StrCat("Section ", rng() % 50);
    a.garment_group_name = "Jersey Basic";
    articles.push_back(std::move(a));
  }
  return ArticleTable::Build(articles);
}

// The rules text: an unavailable_file of n ids (a tenth of the catalogue's
// articles, the rest ids it does not have), campaigns, caps and pins.
std::string WriteRules(const std::string& dir, const ArticleTable& articles, int unavailable, int campaigns) {
  std::vector<int32_t> catalogue;
  for (uint32_t row = 0; row < articles.size(); ++row) catalogue.push_back(articles.article_id(row));
  std::mt19937 rng(11);
  {
    std::ofstream out(dir + "/unavailable.txt");
    for (int i = 0; i < unavailable; ++i) {
      // A tenth of the catalogue out of stock; the rest of the list ids of
      // other catalogues.
      const size_t own = static_cast<size_t>(i / 10);
      const int32_t id = i % 10 == 0 && own < catalogue.size() / 10 ? catalogue[own] : 900000000 + i;
      out << FormatArticleId(id) << "\n";
    }
  }
  std::string text = "unavailable_file: \"unavailable.txt\"\n";
  if (absl::GetFlag(FLAGS_only_unavailable)) {
    std::ofstream(dir + "/rules.pbtxt") << text;
    return dir + "/rules.pbtxt";
  }
  text +=
      "diversity { max_per_product_code: 1 max_per_product_type: 4 }\n"
      "segments { name: \"young\" min_age: 16 max_age: 29 }\n"
      "segments { name: \"members\" club_member_status: \"ACTIVE\" }\n";
  for (int c = 0; c < campaigns; ++c) {
    absl::StrAppend(&text, "campaigns { name: \"c", c, "\" ");
    if (c % 2 == 0) {
      // A product type in a colour that the catalogue has.
      const uint32_t row = static_cast<uint32_t>(rng() % articles.size());
      absl::StrAppend(&text, "articles { product_type_name: \"", articles.Get(row, ArticleTable::kProductType),
                      "\" colour_group_name: \"", articles.Get(row, ArticleTable::kColourGroup),
                      "\" } score_factor: ", c % 4 == 0 ? "1.5" : "0.7", " ");
    } else {
      absl::StrAppend(&text, "articles {");
      for (int k = 0; k < 20; ++k) {
        absl::StrAppend(&text, " article_ids: \"", FormatArticleId(catalogue[rng() % catalogue.size()]), "\"");
      }
      absl::StrAppend(&text, " } move_positions: -3 ");
    }
    if (c % 3 == 0) absl::StrAppend(&text, "segments: \"young\" ");
    if (c % 3 == 1) absl::StrAppend(&text, "segments: \"members\" ");
    absl::StrAppend(&text, "start_date: \"2026-01-01\" end_date: \"2027-12-31\" }\n");
  }
  for (int p = 0; p < 3; ++p) {
    absl::StrAppend(&text, "pins { name: \"p", p, "\" article_id: \"",
                    FormatArticleId(catalogue[catalogue.size() / 2 + static_cast<size_t>(p)]),
                    "\" position: ", 3 * p + 1, " }\n");
  }
  std::ofstream(dir + "/rules.pbtxt") << text;
  return dir + "/rules.pbtxt";
}

int Run() {
  const int runs = std::max(1, absl::GetFlag(FLAGS_runs));
  const std::string dir = (std::filesystem::temp_directory_path() / "hmrec_rules_bench").string();
  std::filesystem::create_directories(dir);
  const ArticleTable catalogue = Catalogue();
  const std::string path = WriteRules(dir, catalogue, absl::GetFlag(FLAGS_unavailable), absl::GetFlag(FLAGS_campaigns));
  std::vector<double> load, compile;
  std::shared_ptr<const RuleSet> set;
  for (int r = 0; r < runs; ++r) {
    auto t0 = Clock::now();
    absl::StatusOr<std::shared_ptr<const RuleSet>> s = RuleSet::Load(path, 100);
    if (!s.ok()) {
      std::fprintf(stderr, "rules_bench: %s\n", std::string(s.status().message()).c_str());
      return 1;
    }
    load.push_back(Since(t0));
    set = *s;
    t0 = Clock::now();
    auto c = CompiledRules::Compile(set, catalogue, {"", "ACTIVE"}, {});
    compile.push_back(Since(t0));
  }
  std::printf(
      "rules: %zu unavailable ids, %d campaigns, %s: load %.3f s, compile against %zu articles "
      "%.3f s (median of %d)\n",
      set->unavailable.size(), set->rules.campaigns_size(),
      absl::GetFlag(FLAGS_only_unavailable) ? "no caps or pins" : "caps, 3 pins", Median(load), catalogue.size(),
      Median(compile), runs);

  // Apply alone on lists over the H&M-sized catalogue: 1000 customers'
  // pools of 48 articles (what the core builds for k = 12), a fifth of them
  // among the 2,000 best sellers, scores falling, random ages and clubs.
  // Rules that only filter are never applied to a list (Shape returns).
  if (!set->Shapes()) {
    std::printf("Apply: not called (the rules only filter; the core skips the unavailable rows)\n");
  } else {
    auto compiled = CompiledRules::Compile(set, catalogue, {"", "ACTIVE"}, {});
    std::mt19937 rng(3);
    std::vector<Recommendation> pools(1000);
    std::vector<CustomerTraits> traits(pools.size());
    for (size_t c = 0; c < pools.size(); ++c) {
      for (int i = 0; i < 48; ++i) {
        const size_t row = rng() % 5 == 0 ? rng() % 2000 : rng() % catalogue.size();
        if (compiled->unavailable_rows()[row] != 0) continue;  // the core never proposes them
        pools[c].article_ids.push_back(catalogue.article_id(static_cast<uint32_t>(row)));
        pools[c].article_rows.push_back(static_cast<uint32_t>(row));
        pools[c].scores.push_back(0.9f - 0.01f * static_cast<float>(i));
      }
      traits[c] = {true, static_cast<int>(16 + rng() % 60), static_cast<int32_t>(rng() % 2)};
    }
    RequestOptions o;
    o.k = 12;
    const int32_t day = TodayUtc();
    std::vector<double> apply;
    RuleCounts counts;
    for (int r = 0; r < runs + 1; ++r) {
      std::vector<Recommendation> lists = pools;
      counts = RuleCounts();
      const auto t0 = Clock::now();
      for (size_t c = 0; c < lists.size(); ++c) compiled->Apply(o, traits[c], day, &lists[c], &counts);
      if (r > 0) apply.push_back(Since(t0));
    }
    std::printf(
        "Apply on 1000 lists of 48 over %zu articles: %.3f ms (median of %d); a batch: %lld boosted, %lld "
        "buried, %lld capped, %lld pinned\n",
        catalogue.size(), 1e3 * Median(apply), runs, static_cast<long long>(counts.boosted),
        static_cast<long long>(counts.buried), static_cast<long long>(counts.capped),
        static_cast<long long>(counts.pinned));
  }

  const std::string bundle = absl::GetFlag(FLAGS_bundle);
  if (bundle.empty()) return 0;
  RecommenderOptions ro;
  absl::StatusOr<std::unique_ptr<Recommender>> rec = Recommender::Load(bundle, ro);
  if (!rec.ok()) {
    std::fprintf(stderr, "rules_bench: %s\n", std::string(rec.status().message()).c_str());
    return 1;
  }
  const Recommender& r = **rec;
  // The same rules against the bundle: its own articles among the
  // unavailable ones (a tenth of the list's ids drawn from it).
  const std::string bundle_rules =
      WriteRules(dir, r.articles(), absl::GetFlag(FLAGS_unavailable), absl::GetFlag(FLAGS_campaigns));
  auto bset = RuleSet::Load(bundle_rules, 100);
  if (!bset.ok()) return 1;
  auto compiled = CompileFor(*bset, r);
  absl::StatusOr<std::vector<std::string>> first = FirstCustomers(r, absl::GetFlag(FLAGS_batch_ids));
  if (!first.ok()) return 1;
  const std::vector<std::string>& ids = *first;
  const int32_t day = TodayUtc();
  std::vector<double> plain, ruled, pooled, apply, paired;
  std::vector<Recommendation> out;
  RuleCounts counts;
  RequestOptions o;
  o.k = 12;
  const RequestOptions p = compiled->Pooled(o, static_cast<int>(r.fallback_ids().size()));
  std::vector<absl::string_view> views(ids.begin(), ids.end());
  RecommendScratch scratch;
  for (int i = 0; i < runs + 1; ++i) {  // the first round warms up
    auto t0 = Clock::now();
    if (!ListsWithRules(r, nullptr, ids, 12, day, &out, &counts).ok()) return 1;
    const double a = Since(t0);
    t0 = Clock::now();
    if (!ListsWithRules(r, compiled.get(), ids, 12, day, &out, &counts).ok()) return 1;
    const double b = Since(t0);
    // The two parts apart: the core's longer lists, then Apply alone.
    t0 = Clock::now();
    if (!r.Recommend(views, std::vector<const RequestOptions*>(views.size(), &p), &out, nullptr, 0, &scratch).ok()) {
      return 1;
    }
    const double c = Since(t0);
    t0 = Clock::now();
    for (Recommendation& rec : out) compiled->Shape(o, day, &rec, &counts);
    const double d = Since(t0);
    if (i == runs) {
      std::printf(
          "one batch of %zu lists: %lld boosted, %lld buried, %lld capped, %lld pinned, %lld lists whose caps "
          "could not be met\n",
          out.size(), static_cast<long long>(counts.boosted), static_cast<long long>(counts.buried),
          static_cast<long long>(counts.capped), static_cast<long long>(counts.pinned),
          static_cast<long long>(counts.unmet));
    }
    counts = RuleCounts();
    if (i > 0) {
      plain.push_back(a);
      ruled.push_back(b);
      paired.push_back(b - a);
      pooled.push_back(c);
      apply.push_back(d);
    }
  }
  std::printf(
      "bundle %s (%zu articles, %lld of them unavailable): a %zu-id batch %.2f ms without rules, %.2f ms "
      "with them (+%.2f ms; median of %d alternated rounds; median of the rounds' differences %+.2f ms): the core's "
      "lists of %d %.2f ms, Apply %.2f ms\n",
      r.version().c_str(), r.articles().size(), static_cast<long long>(compiled->unavailable_count()), ids.size(),
      1e3 * Median(plain), 1e3 * Median(ruled), 1e3 * (Median(ruled) - Median(plain)), runs, 1e3 * Median(paired), p.k,
      1e3 * Median(pooled), 1e3 * Median(apply));
  return 0;
}

}  // namespace
}  // namespace hmrec

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  hmrec::ConfigureThreads(1);
  return hmrec::Run();
}
