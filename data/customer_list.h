#pragma once

// The customers to serve, in file order, from any CSV whose first column is
// customer_id: customers.csv, sample_submission.csv, a holdout truth.csv.
// Used by the batch client (a submission row for each, in this order) and
// the load benchmark.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace hmrec {

// Errors name the file and line: a header without customer_id first, an id
// that is not 64 lowercase hex characters, an id listed twice (a submission
// must have each customer once), or an empty list (unless `allow_empty`:
// an erasure list may be).
absl::StatusOr<std::vector<std::string>> ReadCustomerIds(const std::string& path, bool allow_empty = false);

// The customer list of a Kaggle data directory, in submission order:
// DIR/sample_submission.csv when present, else DIR/customers.csv.
std::string CustomerListIn(const std::string& data_dir);

// Part I of N of a customer list, for batch scoring on several machines:
// "I/N" with 0 <= I < N. Parts are contiguous runs of the list in its order,
// their lengths differ by at most one, and parts 0..N-1 joined in order are
// the whole list (so merged parts are byte-identical to one run).
struct Shard {
  int index = 0;
  int count = 1;
  int64_t begin = 0;  // [begin, end) of a list of `n`, by Range()
  int64_t end = 0;
  void Range(int64_t n);
};
// Errors name the text: not "I/N", N < 1, I outside [0, N).
absl::StatusOr<Shard> ParseShard(const std::string& text);

}  // namespace hmrec
