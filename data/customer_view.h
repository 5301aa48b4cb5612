#pragma once

// A customer as the ranking sees them on a day: their age and their most
// recent purchases before that day, bounded in number and age. The same
// bounded view is built offline (from the transactions) and online (from the
// feature store record), so every feature computed from it is the same in
// both places. Plain values; thread-compatible.

#include <cstdint>
#include <vector>

#include "data/history.h"

namespace hmrec {

struct Purchase {
  uint32_t article = 0;  // article row (index in articles.csv order)
  int32_t day = 0;       // days since 1970-01-01
  float price = 0;
  uint8_t channel = 0;  // sales_channel_id
};

// How much history a view keeps: at most `max_purchases` purchases, none
// older than `max_age_days` before the view's day.
struct HistoryLimits {
  int32_t max_purchases = 128;
  int32_t max_age_days = 730;
};

struct CustomerView {
  int16_t age = -1;                 // -1 when unknown
  int32_t as_of = 0;                // purchases are all before this day
  std::vector<Purchase> purchases;  // oldest first
};

// Fills `view` with `customer`'s purchases before `as_of` within `limits`
// (the most recent ones), and `age`.
void BuildCustomerView(const CustomerHistory& history, uint32_t customer, int16_t age, int32_t as_of,
                       const HistoryLimits& limits, CustomerView* view);

// Keeps only the purchases of `view` that `limits` allow as of view->as_of
// (the most recent ones); the same rule as BuildCustomerView.
void ApplyLimits(const HistoryLimits& limits, CustomerView* view);

}  // namespace hmrec
