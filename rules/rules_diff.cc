#include "rules/rules_diff.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/metrics.h"
#include "common/status_macros.h"
#include "data/ids.h"
#include "evaluate/score.h"

namespace hmrec {
namespace {

constexpr size_t kBatch = 1000;

std::string ListText(const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(FormatArticleId(id));
  return absl::StrJoin(out, " ");
}

}  // namespace

std::shared_ptr<const CompiledRules> CompileFor(std::shared_ptr<const RuleSet> set, const Recommender& r) {
  return CompiledRules::Compile(std::move(set), r.articles(), r.ClubStatusNames(), r.fallback_ids());
}

absl::StatusOr<std::vector<std::string>> FirstCustomers(const Recommender& r, int64_t n) {
  std::vector<std::string> ids;
  std::string key;
  while (static_cast<int64_t>(ids.size()) < n) {
    absl::StatusOr<std::string> next = r.CustomerAtOrAfter(key);
    if (!next.ok()) {
      if (absl::IsNotFound(next.status())) break;  // an empty store
      return next.status();
    }
    if (!ids.empty() && *next <= ids.back()) break;  // wrapped around
    ids.push_back(*next);
    key = absl::StrCat(*next, std::string(1, '\0'));
  }
  return ids;
}

absl::Status ListsWithRules(const Recommender& r, const CompiledRules* rules, const std::vector<std::string>& ids,
                            int k, int32_t day, std::vector<Recommendation>* out, RuleCounts* counts) {
  out->clear();
  RequestOptions plain;
  plain.k = k;
  const RequestOptions pooled =
      rules != nullptr ? rules->Pooled(plain, static_cast<int>(r.fallback_ids().size())) : plain;
  RecommendScratch scratch;
  std::vector<Recommendation> recs;
  for (size_t b = 0; b < ids.size(); b += kBatch) {
    const size_t e = std::min(ids.size(), b + kBatch);
    std::vector<absl::string_view> batch(ids.begin() + static_cast<std::ptrdiff_t>(b),
                                         ids.begin() + static_cast<std::ptrdiff_t>(e));
    const std::vector<const RequestOptions*> options(batch.size(), &pooled);
    RETURN_IF_ERROR(r.Recommend(batch, options, &recs, nullptr, 0, &scratch));
    for (Recommendation& rec : recs) {
      if (rules != nullptr) rules->Shape(plain, day, &rec, counts);
      out->push_back(std::move(rec));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<RulesDiff> DiffRules(const Recommender& r, std::shared_ptr<const RuleSet> before,
                                    std::shared_ptr<const RuleSet> after, const RulesDiffOptions& o) {
  RulesDiff d;
  evaluate::Truth truth;
  std::vector<std::string> ids;
  if (!o.holdout.empty()) {
    ASSIGN_OR_RETURN(truth, evaluate::ReadTruth(o.holdout));
    for (const auto& [id, bought] : truth) ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    if (static_cast<int64_t>(ids.size()) > o.customers) ids.resize(static_cast<size_t>(o.customers));
  } else {
    ASSIGN_OR_RETURN(ids, FirstCustomers(r, o.customers));
  }
  d.customers = static_cast<int64_t>(ids.size());
  auto compile = [&r](const std::shared_ptr<const RuleSet>& set) -> std::shared_ptr<const CompiledRules> {
    return set == nullptr ? nullptr : CompileFor(set, r);
  };
  const std::shared_ptr<const CompiledRules> b = compile(before), a = compile(after);
  std::vector<Recommendation> lb, la;
  RETURN_IF_ERROR(ListsWithRules(r, b.get(), ids, o.k, o.day, &lb, &d.before_counts));
  RETURN_IF_ERROR(ListsWithRules(r, a.get(), ids, o.k, o.day, &la, &d.after_counts));
  double sum_b = 0, sum_a = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::vector<int32_t>& x = lb[i].article_ids;
    const std::vector<int32_t>& y = la[i].article_ids;
    if (!truth.empty()) {
      sum_b += AveragePrecisionAtK(x, truth.at(ids[i]), o.k);
      sum_a += AveragePrecisionAtK(y, truth.at(ids[i]), o.k);
    }
    if (x == y) continue;
    ++d.changed_lists;
    for (size_t p = 0; p < y.size(); ++p) {
      auto it = std::find(x.begin(), x.end(), y[p]);
      if (it == x.end()) {
        ++d.articles_added;
      } else if (static_cast<size_t>(it - x.begin()) != p) {
        ++d.articles_moved;
      }
    }
    for (int32_t id : x) d.articles_removed += std::find(y.begin(), y.end(), id) == y.end();
    if (d.examples.size() < 5) {
      d.examples.push_back(absl::StrCat(ids[i].substr(0, 12), "…: ", ListText(x), "\n    -> ", ListText(y), "  [",
                                        absl::StrJoin(la[i].rules, ", "), "]"));
    }
  }
  if (!truth.empty() && !ids.empty()) {
    d.map_before = sum_b / static_cast<double>(ids.size());
    d.map_after = sum_a / static_cast<double>(ids.size());
  }
  return d;
}

std::string RulesDiff::Text() const {
  std::string s = absl::StrFormat(
      "%d customers: %d lists change; %d articles move, %d come in, %d go out\n"
      "rules after: %d boosted, %d buried, %d capped, %d pinned, %d lists whose caps k could not meet\n",
      customers, changed_lists, articles_moved, articles_added, articles_removed, after_counts.boosted,
      after_counts.buried, after_counts.capped, after_counts.pinned, after_counts.unmet);
  if (map_before >= 0) {
    absl::StrAppendFormat(&s, "MAP@12 on the holdout: %.5f before, %.5f after (%+.5f)\n", map_before, map_after,
                          map_after - map_before);
  }
  for (const std::string& e : examples) absl::StrAppend(&s, "  ", e, "\n");
  return s;
}

std::string RulesDiff::Json() const {
  return absl::StrFormat(
      "{\"customers\": %d, \"changed_lists\": %d, \"articles_moved\": %d, \"articles_added\": %d, "
      "\"articles_removed\": %d, \"boosted\": %d, \"buried\": %d, \"capped\": %d, \"pinned\": %d, "
      "\"caps_unmet\": %d, \"map_before\": %s, \"map_after\": %s}",
      customers, changed_lists, articles_moved, articles_added, articles_removed, after_counts.boosted,
      after_counts.buried, after_counts.capped, after_counts.pinned, after_counts.unmet,
      map_before >= 0 ? absl::StrFormat("%.6f", map_before) : "null",
      map_after >= 0 ? absl::StrFormat("%.6f", map_after) : "null");
}

}  // namespace hmrec
