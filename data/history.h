#pragma once

// Each customer's purchases in time order: for every customer, the article
// rows, days, prices and sales channels of their transactions, oldest first
// (stable for same-day rows), stored contiguously so one customer's history
// is one read.
// Immutable after Build(); safe to read from many threads.

#include <cstdint>
#include <vector>

#include "data/hm_data.h"

namespace hmrec {

class CustomerHistory {
 public:
  // Groups the rows of `tx` by customer; `num_customers` bounds the indices.
  static CustomerHistory Build(const Transactions& tx, size_t num_customers);

  // Returns the article rows and days of `customer`'s purchases, oldest first.
  const uint32_t* articles(uint32_t customer) const { return articles_.data() + offsets_[customer]; }
  const int32_t* days(uint32_t customer) const { return days_.data() + offsets_[customer]; }
  const float* prices(uint32_t customer) const { return prices_.data() + offsets_[customer]; }
  const uint8_t* channels(uint32_t customer) const { return channels_.data() + offsets_[customer]; }
  // Returns how many of `customer`'s purchases were before `day`.
  size_t CountBefore(uint32_t customer, int32_t day) const;
  size_t count(uint32_t customer) const { return offsets_[customer + 1] - offsets_[customer]; }
  // Returns the day of the last purchase, or 0 for a customer without any.
  int32_t last_day(uint32_t customer) const { return count(customer) == 0 ? 0 : days_[offsets_[customer + 1] - 1]; }
  size_t num_customers() const { return offsets_.size() - 1; }

 private:
  std::vector<uint64_t> offsets_;  // num_customers + 1
  std::vector<uint32_t> articles_;
  std::vector<int32_t> days_;
  std::vector<float> prices_;
  std::vector<uint8_t> channels_;
};

}  // namespace hmrec
