// Quality of filtered lists: for each attribute filter (every index group and
// garment group of the bundle's catalogue by default), the customers who
// bought an article of it in the held-out days are recommended 12 articles
// under the filter, and MAP@12 is taken against their held-out purchases
// within the filter. Two ways of answering are compared on the same
// customers:
//
//   narrowed     what the server does: the sources run within the filter
//                (Recommend with the filter);
//   post-filter  the unfiltered ranked list restricted to the filter, then
//                the popular articles the filter allows (what the server did
//                before its sources honoured filters).
//
//   hmrec_filter_quality --bundle B --truth truth.csv [--max_customers N]
//       [--filters "garment_group_names=Socks & Tights;index_group_names=Baby/Children"]
//
// One line per filter on stdout (customers, MAP@12 of each, the share of the
// list from the popular fill), then the customer-weighted mean; a progress
// line on stderr.

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"
#include "common/metrics.h"
#include "evaluate/score.h"
#include "glog/logging.h"
#include "server/recommender.h"

ABSL_FLAG(std::string, bundle, "", "A sealed bundle with a ranker");
ABSL_FLAG(std::string, truth, "", "Held-out transactions (transactions_train.csv layout)");
ABSL_FLAG(std::string, filters, "",
          "';'-separated COLUMN=VALUE filters (COLUMN: index_group_names, product_group_names, "
          "garment_group_names); empty: every index group and garment group");
ABSL_FLAG(int64_t, max_customers, 5000, "At most this many customers per filter (the first in truth order)");
ABSL_FLAG(int, unfiltered_k, 100, "Length of the unfiltered list the post-filter answer is cut from");
ABSL_FLAG(int, threads, 2, "Threads of the search, candidates and ranker");

namespace {

using hmrec::RequestOptions;

int Fail(const std::string& m) {
  std::fprintf(stderr, "filter_quality: %s\n", m.c_str());
  return 1;
}

struct Filter {
  std::string column;  // the RequestFilters field
  std::string value;
  int table_column;
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  const int threads = absl::GetFlag(FLAGS_threads);
  omp_set_num_threads(threads);
  auto r = hmrec::Recommender::Load(absl::GetFlag(FLAGS_bundle), hmrec::RecommenderOptions());
  if (!r.ok()) return Fail(std::string(r.status().message()));
  if (!(*r)->ranking()) return Fail("the bundle has no ranker");
  auto truth = hmrec::evaluate::ReadTruth(absl::GetFlag(FLAGS_truth));
  if (!truth.ok()) return Fail(std::string(truth.status().message()));
  const hmrec::ArticleTable& articles = (*r)->articles();

  const std::map<std::string, int> columns = {{"index_group_names", hmrec::ArticleTable::kIndexGroup},
                                              {"product_group_names", hmrec::ArticleTable::kProductGroup},
                                              {"garment_group_names", hmrec::ArticleTable::kGarmentGroup}};
  std::vector<Filter> filters;
  if (absl::GetFlag(FLAGS_filters).empty()) {
    for (const char* c : {"index_group_names", "garment_group_names"}) {
      for (const std::string& v : articles.values(columns.at(c))) filters.push_back({c, v, columns.at(c)});
    }
  } else {
    for (absl::string_view f : absl::StrSplit(absl::GetFlag(FLAGS_filters), ';', absl::SkipEmpty())) {
      const std::vector<std::string> kv = absl::StrSplit(f, absl::MaxSplits('=', 1));
      if (kv.size() != 2 || columns.count(kv[0]) == 0) {
        return Fail("--filters: '" + std::string(f) + "' is not COLUMN=VALUE with a known COLUMN");
      }
      filters.push_back({kv[0], kv[1], columns.at(kv[0])});
    }
  }
  // Customers in a stable order.
  std::vector<std::string> customers;
  for (const auto& [id, bought] : *truth) customers.push_back(id);
  std::sort(customers.begin(), customers.end());

  std::printf("%-52s %9s %9s %12s %12s %10s\n", "filter", "articles", "customers", "narrowed", "post-filter",
              "fill n/p");
  double total_n = 0, total_narrowed = 0, total_post = 0;
  hmrec::RecommendScratch scratch;
  const auto start = std::chrono::steady_clock::now();
  for (size_t fi = 0; fi < filters.size(); ++fi) {
    const Filter& f = filters[fi];
    RequestOptions narrowed, unfiltered, unknown;
    narrowed.k = unknown.k = hmrec::kDefaultK;
    unfiltered.k = absl::GetFlag(FLAGS_unfiltered_k);
    auto& names = f.column == "index_group_names"     ? narrowed.filters.index_group_names
                  : f.column == "product_group_names" ? narrowed.filters.product_group_names
                                                      : narrowed.filters.garment_group_names;
    names = {f.value};
    unknown.filters = narrowed.filters;
    const int64_t value = articles.FindValue(f.table_column, f.value);
    if (value < 0) return Fail("no article has " + f.column + " '" + f.value + "'");
    auto allowed = [&](int32_t id) {
      const int64_t row = articles.Row(id);
      return row >= 0 && articles.ValueId(static_cast<uint32_t>(row), f.table_column) == value;
    };
    int64_t in_filter = 0;
    for (uint32_t row = 0; row < articles.size(); ++row) in_filter += articles.ValueId(row, f.table_column) == value;
    // The popular articles the filter allows: an unknown customer's list.
    std::vector<hmrec::Recommendation> popular;
    const std::string nobody(64, 'f');
    absl::Status s = (*r)->Recommend({nobody}, {&unknown}, &popular, nullptr, threads, &scratch);
    if (!s.ok()) return Fail(std::string(s.message()));
    // Who bought within the filter, and what.
    std::vector<std::string> who;
    std::vector<absl::flat_hash_set<int32_t>> within;
    for (const std::string& c : customers) {
      absl::flat_hash_set<int32_t> w;
      for (int32_t id : truth->at(c)) {
        if (allowed(id)) w.insert(id);
      }
      if (w.empty()) continue;
      who.push_back(c);
      within.push_back(std::move(w));
      if (static_cast<int64_t>(who.size()) >= absl::GetFlag(FLAGS_max_customers)) break;
    }
    double map_narrowed = 0, map_post = 0, fill_narrowed = 0, fill_post = 0;
    constexpr size_t kBatch = 1000;
    for (size_t b = 0; b < who.size(); b += kBatch) {
      const size_t e = std::min(who.size(), b + kBatch);
      std::vector<absl::string_view> ids(who.begin() + b, who.begin() + e);
      std::vector<hmrec::Recommendation> a, u;
      s = (*r)->Recommend(ids, std::vector<const RequestOptions*>(ids.size(), &narrowed), &a, nullptr, threads,
                          &scratch);
      if (s.ok()) {
        s = (*r)->Recommend(ids, std::vector<const RequestOptions*>(ids.size(), &unfiltered), &u, nullptr, threads,
                            &scratch);
      }
      if (!s.ok()) return Fail(std::string(s.message()));
      for (size_t i = 0; i < ids.size(); ++i) {
        const absl::flat_hash_set<int32_t>& t = within[b + i];
        map_narrowed += hmrec::AveragePrecisionAtK(a[i].article_ids, t);
        fill_narrowed += a[i].filled_from_popular;
        // The unfiltered ranked part within the filter, then the popular fill.
        std::vector<int32_t> post;
        const size_t ranked = u[i].article_ids.size() - static_cast<size_t>(u[i].filled_from_popular);
        for (size_t x = 0; x < ranked && post.size() < hmrec::kDefaultK; ++x) {
          if (allowed(u[i].article_ids[x])) post.push_back(u[i].article_ids[x]);
        }
        for (int32_t id : popular[0].article_ids) {
          if (post.size() >= hmrec::kDefaultK) break;
          if (std::find(post.begin(), post.end(), id) == post.end()) {
            post.push_back(id);
            fill_post += 1;
          }
        }
        map_post += hmrec::AveragePrecisionAtK(post, t);
      }
    }
    const double n = static_cast<double>(who.size());
    if (n > 0) {
      std::printf("%-52s %9lld %9lld %12.5f %12.5f %4.1f/%4.1f\n", (f.column + "=" + f.value).c_str(),
                  static_cast<long long>(in_filter), static_cast<long long>(who.size()), map_narrowed / n, map_post / n,
                  fill_narrowed / n, fill_post / n);
      std::fflush(stdout);
    }
    total_n += n;
    total_narrowed += map_narrowed;
    total_post += map_post;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "\rfilter_quality: %zu/%zu filters, %.1f filters/s, ETA %.0f s   ", fi + 1, filters.size(),
                 (fi + 1) / elapsed, elapsed / (fi + 1) * (filters.size() - fi - 1));
  }
  std::fprintf(stderr, "\n");
  if (total_n > 0) {
    std::printf("%-52s %9s %9.0f %12.5f %12.5f\n", "customer-weighted mean", "", total_n, total_narrowed / total_n,
                total_post / total_n);
  }
  return 0;
}
