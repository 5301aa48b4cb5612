#pragma once

// The baseline recommenders every model is compared with, and writing a
// submission for every customer of a dataset.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "data/hm_data.h"

namespace hmrec::evaluate {

// Returns the k most bought article indices in the last `window_days` days
// of the data (ties: lower article index first), topped up from the whole
// history when the window has fewer than k distinct articles.
std::vector<uint32_t> PopularArticles(const Dataset& ds, int window_days, size_t k);

// Fills `out` (article ids, best first) for one customer (dense index).
using Recommender = std::function<void(uint32_t customer, std::vector<int32_t>* out)>;

// Returns a recommender giving everyone the same popular list.
Recommender PopularityRecommender(const Dataset& ds, int window_days);

// Returns a recommender giving each customer the last window's best sellers
// among customers of their age band (`band_years` wide); customers without an
// age, or bands with fewer than 12 articles bought, get the global list.
// It uses customers.csv only, and shows whether demographics carry signal.
Recommender AgeBandPopularityRecommender(const Dataset& ds, int window_days, int band_years);

// Returns a recommender ranking the customer's own purchases by
// time-decayed count (half-life in days, up to the data's last day), filled
// up to 12 with the popular list.
Recommender RecentPurchasesRecommender(const Dataset& ds, int window_days, double half_life_days);

// Writes "customer_id,prediction" for every customer in customers.csv order.
absl::Status WriteSubmission(const Dataset& ds, const Recommender& rec, const std::string& path, bool show_progress);

}  // namespace hmrec::evaluate
