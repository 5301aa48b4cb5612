#pragma once

// Ranking metrics exactly as the H&M Kaggle competition scores them, and
// the latency quantile the client and the benchmarks report.
//
// AP@k = (1 / min(|actual|, k)) * sum over ranks i <= k of P(i) * rel(i),
// where rel(i) is 1 when prediction i is in `actual` and did not already
// occur at a rank before i (a repeated article counts once). An empty
// `actual` has no AP: callers only score customers who bought something.

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_set.h"

namespace hmrec {

inline constexpr int kDefaultK = 12;

// Returns AP@k of `predicted` against `actual` (which must not be empty).
double AveragePrecisionAtK(const std::vector<int32_t>& predicted, const absl::flat_hash_set<int32_t>& actual,
                           int k = kDefaultK);

// Returns |distinct top-k predictions in actual| / |actual|.
double RecallAtK(const std::vector<int32_t>& predicted, const absl::flat_hash_set<int32_t>& actual, int k = kDefaultK);

// The q-quantile (0..1) of ascending `sorted` by nearest rank; 0 when empty.
double Quantile(const std::vector<double>& sorted, double q);

}  // namespace hmrec
