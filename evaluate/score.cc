#include "evaluate/score.h"

#include <algorithm>
#include <climits>

#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "common/status_macros.h"
#include "data/csv.h"
#include "data/dates.h"
#include "data/ids.h"

namespace hmrec::evaluate {
namespace {
constexpr size_t kMaxExamples = 5;
constexpr size_t kK = 12;
}  // namespace

absl::StatusOr<Truth> ReadTruth(const std::string& path, int32_t* first_day) {
  ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> r, CsvReader::Open(path));
  ASSIGN_OR_RETURN(bool has_header, r->Next());
  if (!has_header || r->fields().size() != 5 || r->fields()[1] != "customer_id" || r->fields()[2] != "article_id") {
    return absl::InvalidArgumentError(absl::StrCat(path, ":1: expected the transactions_train.csv header"));
  }
  Truth truth;
  if (first_day != nullptr) *first_day = INT32_MAX;  // no rows: stays so
  while (true) {
    ASSIGN_OR_RETURN(bool has_row, r->Next());
    if (!has_row) break;
    const auto& f = r->fields();
    if (f.size() != 5) return r->RecordError(absl::StrCat("expected 5 fields, got ", f.size()));
    if (!IsValidCustomerId(f[1])) return r->RecordError(absl::StrCat("bad customer_id '", f[1], "'"));
    absl::StatusOr<int32_t> a = ParseArticleId(f[2]);
    if (!a.ok()) return r->RecordError(std::string(a.status().message()));
    truth[f[1]].insert(*a);
    if (first_day != nullptr) {
      absl::StatusOr<int32_t> d = ParseDate(f[0]);
      if (!d.ok()) return r->RecordError(absl::StrCat("column t_dat: ", d.status().message()));
      *first_day = std::min(*first_day, *d);
    }
  }
  return truth;
}

ScoreResult Score(const Truth& truth, const Submission& sub) {
  ScoreResult res;
  double ap_sum = 0, recall_sum = 0;
  static const std::vector<int32_t> kNone;
  for (const auto& [customer, actual] : truth) {
    auto it = sub.find(customer);
    const std::vector<int32_t>& pred = it == sub.end() ? kNone : it->second;
    if (it == sub.end()) {
      ++res.truth_customers_missing;
      if (res.examples.size() < kMaxExamples) {
        res.examples.push_back(absl::StrCat("customer ", customer, " bought in the held-out period but has no row"));
      }
    }
    ap_sum += AveragePrecisionAtK(pred, actual, static_cast<int>(kK));
    recall_sum += RecallAtK(pred, actual, static_cast<int>(kK));
  }
  res.truth_customers = static_cast<int64_t>(truth.size());
  if (!truth.empty()) {
    res.map_at_12 = ap_sum / truth.size();
    res.recall_at_12 = recall_sum / truth.size();
  }
  res.expected_customers = static_cast<int64_t>(sub.size());
  for (const auto& [customer, pred] : sub) res.customers_with_12_valid += pred.size() >= kK;
  return res;
}

void CheckCoverage(const std::vector<std::string>& expected, const Submission& sub, ScoreResult* result) {
  result->expected_customers = static_cast<int64_t>(expected.size());
  result->customers_with_12_valid = 0;
  result->expected_customers_missing = 0;
  for (const std::string& c : expected) {
    auto it = sub.find(c);
    if (it == sub.end()) {
      ++result->expected_customers_missing;
      if (result->examples.size() < 2 * kMaxExamples) {
        result->examples.push_back(absl::StrCat("customer ", c, " has no row"));
      }
    } else if (it->second.size() >= kK) {
      ++result->customers_with_12_valid;
    }
  }
}

}  // namespace hmrec::evaluate
