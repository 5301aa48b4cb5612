#pragma once

// The two-tower candidate source offline: an exported bundle's customer
// tower and article embeddings, searched exactly. Encodes customers as of
// any day from the dataset's history (only purchases before that day), the
// same encoding the index builder stores for the server.
//
// Not thread-safe (one caller at a time); LibTorch stays behind this header.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/history.h"
#include "data/hm_data.h"

namespace hmrec {

class TwoTowerRetriever {
 public:
  // Loads `bundle_dir` (exported by the trainer; need not be sealed). Its
  // articles must be `ds`'s, in the same order.
  static absl::StatusOr<std::unique_ptr<TwoTowerRetriever>> Load(const std::string& bundle_dir, const Dataset& ds,
                                                                 int threads);
  ~TwoTowerRetriever();

  // For each of `customers`, as of `as_of`: its embedding (n x dim) and its
  // `k` nearest articles (n x k article rows, -1 past the end, and scores;
  // k = 0: the embeddings only).
  absl::Status Retrieve(const Dataset& ds, const CustomerHistory& history, const std::vector<uint32_t>& customers,
                        int32_t as_of, int k, std::vector<float>* embeddings, std::vector<int64_t>* rows,
                        std::vector<float>* scores);

  // From now on the search looks only at these article rows (ascending): the
  // two-tower source's articles as of `day`. Load() searches all, day unset.
  void SearchOnly(int32_t day, const std::vector<int64_t>& rows);
  // The day of the last SearchOnly; INT32_MIN before any.
  int32_t search_day() const;

  // Every article's embedding, row-major in article-row order.
  const float* article_embeddings() const;
  int dim() const;

 private:
  struct Impl;
  explicit TwoTowerRetriever(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hmrec
