#pragma once

// The candidate sources within a request's attribute filters
// (index_group_names, product_group_names, garment_group_names): the
// articles they allow, the popularity lists restricted to them
// (candidates/sources.h ArticleFilter) and an exact search over the allowed
// articles' embeddings, so that a filtered list is still the customer's
// best allowed articles rather than the popular fill.
//
// Building one costs a pass over the catalogue and a copy of the allowed
// embeddings, so the Recommender keeps them per distinct filter in a
// RestrictedSourcesCache: least recently used first out, bounded by the
// embedding rows it holds. Entries are immutable and shared; a bundle swap
// starts a new cache with the new Recommender.

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "candidates/sources.h"
#include "search/exact_search.h"

namespace hmrec {

struct RestrictedSources {
  explicit RestrictedSources(ArticleFilter f) : filter(std::move(f)) {}
  ArticleFilter filter;
  // Over the allowed rows the two-tower source may propose (labels: article
  // rows); null when the filter allows none.
  std::unique_ptr<ExactSearch> search;
  // What the entry costs the cache: the rows its search holds (at least 1).
  size_t rows() const { return search == nullptr ? 1 : static_cast<size_t>(search->size()); }
};

class RestrictedSourcesCache {
 public:
  // Holds entries of at most `max_rows` searched rows in all (an entry is
  // always kept while it is the only one).
  explicit RestrictedSourcesCache(size_t max_rows) : max_rows_(max_rows) {}

  // The entry for `key`; `build` makes it when absent (outside the lock:
  // two callers may build one key at once, the first stored wins).
  std::shared_ptr<const RestrictedSources> Get(const std::string& key,
                                               absl::FunctionRef<std::shared_ptr<const RestrictedSources>()> build);

  size_t entries() const;
  size_t rows() const;
  int64_t builds() const;  // entries built since construction

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const RestrictedSources>>;
  const size_t max_rows_;
  mutable std::mutex mu_;  // guards the members below
  std::list<Entry> lru_;   // most recently used first
  absl::flat_hash_map<std::string, std::list<Entry>::iterator> by_key_;
  size_t rows_ = 0;
  int64_t builds_ = 0;
};

}  // namespace hmrec
