#pragma once

// Splitting a dataset into training files and a held-out final period.

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace hmrec::evaluate {

struct SplitResult {
  int32_t first_holdout_day = 0;
  int32_t last_day = 0;
  int64_t train_rows = 0;
  int64_t holdout_rows = 0;
};

inline constexpr char kTruthFile[] = "truth.csv";
inline constexpr char kTrainDir[] = "train";

// Writes `out_dir`/train/ (articles.csv, customers.csv, sample_submission.csv
// when present, and the transactions before the last `holdout_days` days)
// and `out_dir`/truth.csv (the held-out transactions, same layout).
// Rows are copied unchanged.
absl::Status SplitHoldout(const std::string& data_dir, int holdout_days, const std::string& out_dir, bool show_progress,
                          SplitResult* result);

}  // namespace hmrec::evaluate
