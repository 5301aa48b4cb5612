#pragma once

// Exact top-k inner-product search over a fixed matrix of article vectors,
// laid out for the machine rather than for generality:
//
//  - the articles are split into one contiguous range per thread; each
//    thread scores blocks of its range against a chunk of queries with one
//    single-threaded sgemm (BLAS runs single-threaded inside the parallel
//    region) into a scratch block that stays in cache and is reused across
//    calls (fresh large buffers cost page faults on every call);
//  - each query row of the block is filtered against the query's current
//    k-th best score with SIMD compares; the few survivors go into a small
//    per-thread heap; the threads' heaps are merged at the end.
//
// It returns exactly what faiss's IndexFlatIP returns (the same top k; among
// equal scores the order may differ) in about a third of its time on 2 cores
// (docs/PERFORMANCE.md). One Search() at a time per object (the scratch is
// shared); the vectors are immutable.

#include <cstdint>
#include <memory>
#include <vector>

#include <faiss/Index.h>

#include "absl/status/statusor.h"

namespace hmrec {

class ExactSearch {
 public:
  // `vectors` is n x dim, row-major; labels[i] names row i.
  ExactSearch(const std::vector<float>& vectors, std::vector<int64_t> labels, int dim);

  // From an exact inner-product index: IndexFlatIP, optionally inside an
  // IndexIDMap (whose ids become the labels). Other index types: an error.
  static absl::StatusOr<std::unique_ptr<ExactSearch>> FromFaissIndex(const faiss::Index& index);

  // Top `k` of `m` queries (m x dim): m x k labels (-1 past the end when
  // fewer than k vectors exist) and scores, best first. Uses up to
  // `threads` threads (0: OpenMP's default).
  void Search(const float* queries, int64_t m, int k, int64_t* labels, float* scores, int threads = 0);

  int64_t size() const { return static_cast<int64_t>(labels_.size()); }
  int dim() const { return dim_; }

 private:
  std::vector<float> vectors_;   // rows in a fixed shuffled order (see the constructor)
  std::vector<int32_t> row_of_;  // stored position -> original row
  const std::vector<int64_t> labels_;
  const int dim_;
  std::vector<std::vector<float>> scratch_;  // one score block per thread
};

}  // namespace hmrec
