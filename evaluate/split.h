#pragma once

// Splitting a dataset into training files and a held-out final period.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace hmrec::evaluate {

struct SplitResult {
  int32_t first_holdout_day = 0;
  int32_t last_day = 0;
  int64_t train_rows = 0;
  int64_t holdout_rows = 0;
  int64_t extra_rows = 0;   // of the extra files, before the held-out days
  int64_t erased_rows = 0;  // of erased customers: in neither output
};

// What the retrain job adds to the base files: purchases recorded online
// (`hmrec_events export`) and the customers to forget (`hmrec_events
// erasures`).
struct SplitExtras {
  std::vector<std::string> transactions;  // transactions_train.csv layout
  std::string erasures;                   // a customer_id list; empty: none
};
inline constexpr char kExtraTransactionsFile[] = "extra_transactions.csv";

inline constexpr char kTruthFile[] = "truth.csv";
inline constexpr char kTrainDir[] = "train";

// Writes `out_dir`/train/ (articles.csv, customers.csv, sample_submission.csv
// when present, and the transactions before the last `holdout_days` days)
// and `out_dir`/truth.csv (the held-out transactions, same layout).
// Rows are copied unchanged. With `extras`, the held-out days are the last
// ones of the base and extra files together; the extra files' earlier rows
// go to `out_dir`/train/extra_transactions.csv (for --extra_transactions)
// and their later ones to truth.csv, and no row of an erased customer is
// written anywhere.
absl::Status SplitHoldout(const std::string& data_dir, int holdout_days, const std::string& out_dir, bool show_progress,
                          SplitResult* result, const SplitExtras& extras = {});

}  // namespace hmrec::evaluate
