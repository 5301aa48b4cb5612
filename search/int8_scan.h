#pragma once

// The first pass of ExactSearch's int8 kernel: scores every article with
// 8-bit integers (AVX-512 VNNI: 64 multiply-adds an instruction, four times
// fp32 FMA's rate) and keeps, per query, every article that could still be in
// the exact top k. ExactSearch then scores only those in fp32, so the result
// is the fp32 top k — the int8 scores decide nothing, they only rule articles
// out, and only when a bound says they cannot make it.
//
// The bound. Articles are quantized with one scale (a' = sa * ai, ai in
// [-127, 127]), each query with its own (q' = sq * qi). For the approximate
// score s' = q'.a' and the exact s = q.a:
//     s - s' = q.(a - a') + (q - q').a'
//     |s - s'| <= |q| * max|a - a'| + |q - q'| * max|a'|  =: E(q)
// (the maxima over all articles, computed once in double), plus a slop for
// fp32 rounding of the final scores. If s'_k is the k-th best approximate
// score, there are k articles with s >= s'_k - E, so the exact k-th best is
// at least s'_k - E, and every article of the exact top k has
// s' >= s - E >= s'_k - 2E. The scan keeps exactly those (against a running
// s'_k, which only rises, so it keeps a superset). On the full-scale H&M
// bundle that is ~70 of 105,542 articles a query.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hmrec {

// An article that passed the int8 filter for one query.
struct Int8Candidate {
  int32_t approx;  // qi.ai, the integer score
  int32_t pos;     // stored position of the article
};

class Int8Articles {
 public:
  // True when this CPU has AVX-512 VNNI (and BW) for the scan.
  static bool Supported();

  // `vectors` is n x dim in stored order. Non-finite values make the int8
  // bound meaningless: then ok() is false and the caller keeps fp32.
  Int8Articles(const float* vectors, int64_t n, int dim);
  bool ok() const { return ok_; }

  // Per-thread state of one Search(): for each query, a min-heap of the k
  // best approximate scores of this thread's articles and its candidates.
  struct State {
    std::vector<int32_t> heap;                           // m x k
    std::vector<int> count;                              // m
    std::vector<std::vector<Int8Candidate>> candidates;  // m (capacity kept between searches)
    std::vector<int32_t> warm;                           // the warm tiles' scores of one query block
    void Reset(int64_t m, int k);
  };

  // The queries of one Search(), quantized.
  struct Queries {
    std::vector<int32_t> words;   // m x groups: 4 signed bytes each
    std::vector<int32_t> bias;    // 128 * sum(qi): articles are stored as ai + 128 (unsigned)
    std::vector<int32_t> margin;  // ceil(2E / (sq * sa)) in integer units; < 0: query skipped
  };
  void Quantize(const float* queries, int64_t m, Queries* out) const;

  // Scans this thread's share (t of nt) of the article tiles for all m
  // queries into `state`.
  void Scan(const Queries& q, int64_t m, int k, int t, int nt, State* state) const;

  // The integer threshold a candidate of query q must reach given the k-th
  // best approximate score over all threads: kth - margin.
  static int32_t Keep(int32_t kth, const Queries& q, int64_t qi) { return kth - q.margin[static_cast<size_t>(qi)]; }

 private:
  int64_t n_ = 0;
  int dim_ = 0;
  int groups_ = 0;  // dim rounded up to 4, over 4
  float scale_ = 1.0f;
  double max_residual_ = 0;  // max |a - a'|
  double max_dequant_ = 0;   // max |a'|
  double max_norm_ = 0;      // max |a|
  bool ok_ = false;
  std::vector<uint8_t> packed_;  // [tile][group][64 articles][4 bytes], ai + 128
};

}  // namespace hmrec
