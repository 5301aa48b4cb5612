#include "data/customer_view.h"

#include <algorithm>

namespace hmrec {

void ApplyLimits(const HistoryLimits& limits, CustomerView* view) {
  std::vector<Purchase>& p = view->purchases;
  const int32_t oldest = view->as_of - limits.max_age_days;
  size_t first = 0;
  while (first < p.size() && p[first].day < oldest) ++first;
  if (p.size() - first > static_cast<size_t>(std::max(0, limits.max_purchases))) {
    first = p.size() - static_cast<size_t>(std::max(0, limits.max_purchases));
  }
  if (first > 0) p.erase(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(first));
}

void BuildCustomerView(const CustomerHistory& history, uint32_t customer, int16_t age, int32_t as_of,
                       const HistoryLimits& limits, CustomerView* view) {
  view->age = age;
  view->as_of = as_of;
  view->purchases.clear();
  const size_t n = history.CountBefore(customer, as_of);
  const int32_t oldest = as_of - limits.max_age_days;
  const int32_t* days = history.days(customer);
  size_t first = static_cast<size_t>(std::lower_bound(days, days + n, oldest) - days);
  if (n - first > static_cast<size_t>(std::max(0, limits.max_purchases))) {
    first = n - static_cast<size_t>(std::max(0, limits.max_purchases));
  }
  const uint32_t* articles = history.articles(customer);
  const float* prices = history.prices(customer);
  const uint8_t* channels = history.channels(customer);
  for (size_t i = first; i < n; ++i) view->purchases.push_back({articles[i], days[i], prices[i], channels[i]});
}

}  // namespace hmrec
