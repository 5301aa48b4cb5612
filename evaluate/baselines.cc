#include "evaluate/baselines.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>

#include "common/progress.h"
#include "common/status_macros.h"
#include "data/csv.h"
#include "data/history.h"
#include "data/submission.h"

namespace hmrec::evaluate {
namespace {
constexpr size_t kK = 12;
}  // namespace

std::vector<uint32_t> PopularArticles(const Dataset& ds, int window_days, size_t k) {
  const Transactions& tx = ds.transactions;
  std::vector<int64_t> recent(ds.articles.size(), 0), all(ds.articles.size(), 0);
  const int32_t from = ds.last_day - window_days + 1;
  for (size_t i = 0; i < tx.size(); ++i) {
    ++all[tx.article[i]];
    if (tx.day[i] >= from) ++recent[tx.article[i]];
  }
  std::vector<uint32_t> order(ds.articles.size());
  std::iota(order.begin(), order.end(), 0);
  // Recent count first, then all-time count, then index: a total order.
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    if (recent[a] != recent[b]) return recent[a] > recent[b];
    if (all[a] != all[b]) return all[a] > all[b];
    return a < b;
  });
  order.resize(std::min(k, order.size()));
  return order;
}

Recommender PopularityRecommender(const Dataset& ds, int window_days) {
  std::vector<int32_t> ids;
  for (uint32_t a : PopularArticles(ds, window_days, kK)) ids.push_back(ds.articles[a].article_id);
  return [ids](uint32_t, std::vector<int32_t>* out) { *out = ids; };
}

Recommender AgeBandPopularityRecommender(const Dataset& ds, int window_days, int band_years) {
  const int bands = 100 / band_years + 2;
  auto band_of = [band_years](int age) { return age < 0 ? -1 : std::min(age, 100) / band_years; };
  std::vector<std::vector<int64_t>> counts(bands, std::vector<int64_t>(ds.articles.size(), 0));
  const Transactions& tx = ds.transactions;
  const int32_t from = ds.last_day - window_days + 1;
  for (size_t i = 0; i < tx.size(); ++i) {
    if (tx.day[i] < from) continue;
    const int b = band_of(ds.customers[tx.customer[i]].age);
    if (b >= 0) ++counts[b][tx.article[i]];
  }
  std::vector<int32_t> global;
  for (uint32_t a : PopularArticles(ds, window_days, kK)) global.push_back(ds.articles[a].article_id);
  auto lists = std::make_shared<std::vector<std::vector<int32_t>>>(bands);
  for (int b = 0; b < bands; ++b) {
    std::vector<uint32_t> order;
    for (uint32_t a = 0; a < ds.articles.size(); ++a) {
      if (counts[b][a] > 0) order.push_back(a);
    }
    std::sort(order.begin(), order.end(), [&](uint32_t x, uint32_t y) {
      if (counts[b][x] != counts[b][y]) return counts[b][x] > counts[b][y];
      return x < y;
    });
    auto& list = (*lists)[b];
    for (size_t i = 0; i < order.size() && list.size() < kK; ++i) list.push_back(ds.articles[order[i]].article_id);
    for (int32_t id : global) {
      if (list.size() >= kK) break;
      if (std::find(list.begin(), list.end(), id) == list.end()) list.push_back(id);
    }
  }
  return [&ds, lists, global, band_of](uint32_t c, std::vector<int32_t>* out) {
    const int b = band_of(ds.customers[c].age);
    *out = b < 0 ? global : (*lists)[b];
  };
}

Recommender RecentPurchasesRecommender(const Dataset& ds, int window_days, double half_life_days) {
  auto history = std::make_shared<CustomerHistory>(CustomerHistory::Build(ds.transactions, ds.customers.size()));
  std::vector<uint32_t> popular = PopularArticles(ds, window_days, kK);
  const double rate = std::log(2.0) / half_life_days;
  return [&ds, history, popular, rate](uint32_t c, std::vector<int32_t>* out) {
    struct Scored {
      uint32_t article;
      double score;
      int32_t last_day;
    };
    std::vector<Scored> scored;
    const uint32_t* articles = history->articles(c);
    const int32_t* days = history->days(c);
    for (size_t i = 0; i < history->count(c); ++i) {
      const uint32_t a = articles[i];
      const double w = std::exp(-rate * (ds.last_day - days[i]));
      auto it = std::find_if(scored.begin(), scored.end(), [a](const Scored& s) { return s.article == a; });
      if (it == scored.end()) {
        scored.push_back({a, w, days[i]});
      } else {
        it->score += w;
        it->last_day = std::max(it->last_day, days[i]);
      }
    }
    std::sort(scored.begin(), scored.end(), [](const Scored& x, const Scored& y) {
      if (x.score != y.score) return x.score > y.score;
      if (x.last_day != y.last_day) return x.last_day > y.last_day;
      return x.article < y.article;
    });
    out->clear();
    for (size_t i = 0; i < scored.size() && out->size() < kK; ++i) {
      out->push_back(ds.articles[scored[i].article].article_id);
    }
    for (uint32_t a : popular) {
      if (out->size() >= kK) break;
      const int32_t id = ds.articles[a].article_id;
      if (std::find(out->begin(), out->end(), id) == out->end()) out->push_back(id);
    }
  };
}

absl::Status WriteSubmission(const Dataset& ds, const Recommender& rec, const std::string& path, bool show_progress) {
  ASSIGN_OR_RETURN(std::unique_ptr<CsvWriter> w, CsvWriter::Open(path));
  w->Row({"customer_id", "prediction"});
  ProgressReporter progress("writing " + path, static_cast<int64_t>(ds.customers.size()), "customers");
  progress.set_enabled(show_progress);
  std::vector<int32_t> ids;
  std::string line;
  for (uint32_t c = 0; c < ds.customers.size(); ++c) {
    rec(c, &ids);
    line.clear();
    AppendSubmissionRow(ds.customer_id(c), ids, &line);
    line.pop_back();
    w->RawField(line);
    w->EndRow();
    if ((c & 0x3FFF) == 0) progress.Update(c);
  }
  progress.Finish(static_cast<int64_t>(ds.customers.size()));
  return w->Close();
}

}  // namespace hmrec::evaluate
