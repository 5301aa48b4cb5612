#pragma once

// The customers to serve, in file order, from any CSV whose first column is
// customer_id: customers.csv, sample_submission.csv, a holdout truth.csv.
// Used by the batch client (a submission row for each, in this order) and
// the load benchmark.

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace hmrec {

// Errors name the file and line: a header without customer_id first, an id
// that is not 64 lowercase hex characters, an id listed twice (a submission
// must have each customer once), or an empty list.
absl::StatusOr<std::vector<std::string>> ReadCustomerIds(const std::string& path);

}  // namespace hmrec
