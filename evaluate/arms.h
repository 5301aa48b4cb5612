#pragma once

// Comparing a canary with the main bundle on what customers did next: the
// server's impression log (ServerConfig.impressions, one
// config::ImpressionRecord per line) joined with the purchases recorded
// afterwards (transactions layout, e.g. `hmrec_events export`). An
// impression is a hit when its customer bought one of the articles it showed
// on its day or within `window_days` after (purchases carry a day, not a
// time). Per arm and bundle version: impressions, customers, hit rate,
// precision (shown articles bought / shown), and the share of the customers'
// purchases in the window that had been shown to them.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace hmrec::evaluate {

struct ArmResult {
  std::string arm;  // main, canary
  std::string bundle_version;
  int64_t impressions = 0;
  int64_t customers = 0;
  int64_t hits = 0;             // impressions followed by a purchase of a shown article
  int64_t shown = 0;            // articles shown
  int64_t shown_bought = 0;     // of them, bought within the window
  int64_t purchases = 0;        // the arm's customers' purchases within their impressions' windows
  int64_t purchases_shown = 0;  // of them, of an article they had been shown
  double hit_rate() const { return impressions ? static_cast<double>(hits) / impressions : 0; }
  double precision() const { return shown ? static_cast<double>(shown_bought) / shown : 0; }
  double purchase_recall() const { return purchases ? static_cast<double>(purchases_shown) / purchases : 0; }
};

// Malformed input is an error naming the file and line.
absl::StatusOr<std::vector<ArmResult>> CompareArms(const std::string& impressions_path,
                                                   const std::string& purchases_path, int window_days);

// The results as one JSON object {"window_days": N, "arms": [...]}.
std::string ArmsJson(const std::vector<ArmResult>& arms, int window_days);

}  // namespace hmrec::evaluate
