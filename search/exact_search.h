#pragma once

// Exact top-k inner-product search over a fixed matrix of article vectors,
// laid out for the machine rather than for generality. The articles are
// stored in a fixed shuffled order (so the k-th best score settles early) and
// split into one contiguous range per thread; the threads' top-k heaps are
// merged at the end. Three kernels:
//
//  - int8 + fp32 rescoring (the default where the CPU has AVX-512 VNNI):
//    search/int8_scan.h scores every article in 8-bit integers and keeps
//    only those a bound says could be in the top k (~70 of 105,542 a query
//    at full scale); those are scored in fp32 exactly as the fused kernel
//    scores them (same operations, same order), so the result is the same;
//  - fused AVX-512 fp32 (where the CPU has AVX-512F): tiles of 6
//    queries x 64 articles scored in 24 registers and compared there with
//    each query's current k-th best; no score matrix is ever written;
//  - sgemm (elsewhere): blocks of one single-threaded sgemm each (BLAS runs
//    single-threaded inside the parallel region) into a reused scratch
//    block, then a SIMD filter of each row against the k-th best.
//
// All return exactly what faiss's IndexFlatIP returns (the same top k; ties
// by row as faiss breaks them); for 1,000 queries on 2 cores the fp32 fused
// kernel takes 63% and sgemm 70% of faiss's time (docs/PERFORMANCE.md). One Search() at a time per
// object (the scratch is shared); the vectors are immutable.

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include <faiss/Index.h>

#include "absl/status/statusor.h"
#include "search/int8_scan.h"

namespace hmrec {

class ExactSearch {
 public:
  enum class Kernel {
    kAuto,   // int8 + rescoring where the CPU has AVX-512 VNNI, else kFp32
    kFp32,   // the fused AVX-512 fp32 kernel where the CPU has AVX-512F, else sgemm
    kSgemm,  // blocks of single-threaded sgemm + AVX2 filter
  };

  // `vectors` is n x dim, row-major; labels[i] names row i.
  ExactSearch(const std::vector<float>& vectors, std::vector<int64_t> labels, int dim, Kernel kernel = Kernel::kAuto);

  // A search over the rows `rows` (ascending or not) of `vectors` (row-major,
  // `dim` wide) only; the labels are those row numbers.
  static std::unique_ptr<ExactSearch> OverRows(const float* vectors, int dim, const std::vector<int64_t>& rows);

  // True for the indexes FromFaissIndex takes: IndexFlatIP, optionally
  // inside an IndexIDMap.
  static bool Supports(const faiss::Index& index);
  // From an exact inner-product index: IndexFlatIP, optionally inside an
  // IndexIDMap (whose ids become the labels). Other index types: an error.
  static absl::StatusOr<std::unique_ptr<ExactSearch>> FromFaissIndex(const faiss::Index& index,
                                                                     Kernel kernel = Kernel::kAuto);

  // What one Search() call writes besides its results, kept between calls
  // so that repeated searches reuse their buffers. One per calling thread.
  struct Scratch {
    std::vector<std::vector<float>> blocks;  // one score block per thread (sgemm kernel)
    std::vector<Int8Articles::State> int8;   // one per thread (int8 kernel)
    Int8Articles::Queries int8_queries;      // the int8 kernel's quantised queries
  };

  // Top `k` of `m` queries (m x dim): m x k labels (-1 past the end when
  // fewer than k vectors exist) and scores, best first. Uses up to
  // `threads` threads (0: OpenMP's default). Const: many threads may search
  // one ExactSearch at once, each with its own `scratch`.
  void Search(const float* queries, int64_t m, int k, int64_t* labels, float* scores, int threads,
              Scratch* scratch) const;
  // The same with a scratch of the object's own: one caller at a time.
  void Search(const float* queries, int64_t m, int k, int64_t* labels, float* scores, int threads = 0) {
    Search(queries, m, k, labels, scores, threads, &own_scratch_);
  }

  int64_t size() const { return static_cast<int64_t>(labels_.size()); }
  // "int8-vnni+rescore", "avx512-fused" or "sgemm": which kernel Search()
  // runs on this CPU.
  const char* kernel() const;
  int dim() const { return dim_; }

 private:
  // One thread's share of Search(): the fused kernel over its tiles, or the
  // sgemm blocks over stored rows [lo, hi). heap_of(q) is the thread's heap
  // for query q.
  template <typename HeapOf>
  void ScanFused(const float* queries, int64_t m, int t, int nt, const HeapOf& heap_of) const;
  // The int8 kernel's Search(): scan, then (after a barrier, per query)
  // rescore the surviving candidates in fp32 and write the top k.
  void SearchInt8(const float* queries, int64_t m, int k, int64_t* labels, float* scores, int threads,
                  Scratch* scratch) const;
  // One query's answer from its (score, original row) candidates: the best
  // k of them into labels[0..k) and scores[0..k). Reorders *cand.
  void WriteBest(std::vector<std::pair<float, int32_t>>* cand, int k, int64_t* labels, float* scores) const;
  template <typename HeapOf>
  void ScanSgemm(const float* queries, int64_t m, int64_t lo, int64_t hi, std::vector<float>* block,
                 const HeapOf& heap_of) const;

  std::vector<float> vectors_;   // rows in a fixed shuffled order (see the constructor)
  std::vector<int32_t> row_of_;  // stored position -> original row
  const std::vector<int64_t> labels_;
  const int dim_;
  std::vector<float> packed_;           // 16-article groups for the fused AVX-512 kernel; empty when not used
  std::unique_ptr<Int8Articles> int8_;  // the int8 kernel's articles; null when not used
  Scratch own_scratch_;                 // for the Search() without a scratch
};

}  // namespace hmrec
