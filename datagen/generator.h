#pragma once

// Synthetic H&M data in the exact Kaggle layout, from the generative model
// of docs/DATA.md: latent styles show in article attributes and drive
// customers' tastes together with age and postal region; articles launch,
// peak and fade; customers re-buy recent items. The same config (seed
// included) writes byte-identical files.

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/config.pb.h"

namespace hmrec::datagen {

// Returns the preset of a named scale: "tiny", "small" or "full".
absl::StatusOr<config::DatagenConfig> ScalePreset(absl::string_view scale);

// Checks ranges and dates; errors name the bad field.
absl::Status ValidateConfig(const config::DatagenConfig& cfg);

struct GenerateStats {
  int64_t articles = 0;
  int64_t customers = 0;
  int64_t customers_without_purchase = 0;
  int64_t articles_never_bought = 0;
  int64_t transactions = 0;
  double seconds = 0;
};

// Writes articles.csv, customers.csv, transactions_train.csv and
// sample_submission.csv into `out_dir` (created if missing). Each file is
// written under a temporary name and renamed when complete.
absl::Status Generate(const config::DatagenConfig& cfg, const std::string& out_dir, bool show_progress,
                      GenerateStats* stats);

}  // namespace hmrec::datagen
