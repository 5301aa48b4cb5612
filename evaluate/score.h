#pragma once

// Scoring a submission against held-out transactions, as Kaggle does:
// only customers with at least one held-out purchase count; a customer they
// name who is missing from the submission scores 0.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "data/submission.h"

namespace hmrec::evaluate {

// customer id -> distinct article ids bought in the held-out period.
using Truth = absl::flat_hash_map<std::string, absl::flat_hash_set<int32_t>>;

// Reads held-out transactions (transactions_train.csv layout). With
// `first_day`, also their earliest t_dat (days since 1970-01-01; INT32_MAX
// without rows; a bad date is an error naming file:line).
absl::StatusOr<Truth> ReadTruth(const std::string& path, int32_t* first_day = nullptr);

struct ScoreResult {
  double map_at_12 = 0;
  double recall_at_12 = 0;
  int64_t truth_customers = 0;
  int64_t truth_customers_missing = 0;  // scored 0: not in the submission
  // Of the expected customers (all submission rows, or the list given to
  // CheckCoverage): how many got 12 valid ids, and how many are absent.
  int64_t expected_customers = 0;
  int64_t customers_with_12_valid = 0;
  int64_t expected_customers_missing = 0;
  std::vector<std::string> examples;

  double share_with_12_valid() const {
    return expected_customers ? static_cast<double>(customers_with_12_valid) / expected_customers : 0;
  }
};

// Returns MAP@12 and recall@12 of `sub` on `truth`.
ScoreResult Score(const Truth& truth, const Submission& sub);

// Fills the coverage fields of `result` for the customers `expected` (ids
// in the order of customers.csv or sample_submission.csv).
void CheckCoverage(const std::vector<std::string>& expected, const Submission& sub, ScoreResult* result);

}  // namespace hmrec::evaluate
