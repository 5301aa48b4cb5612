#include "data/history.h"

#include <algorithm>
#include <numeric>

namespace hmrec {

CustomerHistory CustomerHistory::Build(const Transactions& tx, size_t num_customers) {
  CustomerHistory h;
  h.offsets_.assign(num_customers + 1, 0);
  for (uint32_t c : tx.customer) ++h.offsets_[c + 1];
  std::partial_sum(h.offsets_.begin(), h.offsets_.end(), h.offsets_.begin());
  // Counting sort by customer, then order each customer's rows by day
  // (files are usually sorted by day already; this makes it a guarantee).
  std::vector<uint64_t> next(h.offsets_.begin(), h.offsets_.end() - 1);
  std::vector<uint32_t> rows(tx.size());
  for (uint32_t i = 0; i < tx.size(); ++i) rows[next[tx.customer[i]]++] = i;
  auto by_day = [&](uint32_t x, uint32_t y) { return tx.day[x] < tx.day[y]; };
  for (size_t c = 0; c < num_customers; ++c) {
    auto b = rows.begin() + h.offsets_[c];
    auto e = rows.begin() + h.offsets_[c + 1];
    if (!std::is_sorted(b, e, by_day)) std::stable_sort(b, e, by_day);
  }
  h.articles_.resize(rows.size());
  h.days_.resize(rows.size());
  h.prices_.resize(rows.size());
  h.channels_.resize(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    h.articles_[i] = tx.article[rows[i]];
    h.days_[i] = tx.day[rows[i]];
    h.prices_[i] = tx.price[rows[i]];
    h.channels_[i] = tx.sales_channel[rows[i]];
  }
  return h;
}

size_t CustomerHistory::CountBefore(uint32_t customer, int32_t day) const {
  const int32_t* d = days(customer);
  return static_cast<size_t>(std::lower_bound(d, d + count(customer), day) - d);
}

}  // namespace hmrec
