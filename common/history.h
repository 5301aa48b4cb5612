#pragma once

// Each customer's purchases in time order: a compressed-sparse-row view of
// Transactions grouped by customer (stable in day order).
// Immutable after Build(); safe to read from many threads.

#include <cstdint>
#include <vector>

#include "common/hm_data.h"

namespace hmrec {

class CustomerHistory {
 public:
  // Groups the rows of `tx` by customer; `num_customers` bounds the indices.
  static CustomerHistory Build(const Transactions& tx, size_t num_customers);

  // Returns the transaction row numbers of `customer`, oldest first.
  const uint32_t* begin(uint32_t customer) const { return rows_.data() + offsets_[customer]; }
  const uint32_t* end(uint32_t customer) const { return rows_.data() + offsets_[customer + 1]; }
  size_t count(uint32_t customer) const { return offsets_[customer + 1] - offsets_[customer]; }
  size_t num_customers() const { return offsets_.size() - 1; }

 private:
  std::vector<uint64_t> offsets_;  // num_customers + 1
  std::vector<uint32_t> rows_;
};

}  // namespace hmrec
