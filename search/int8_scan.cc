#include "search/int8_scan.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <type_traits>

namespace hmrec {
namespace {

// Same tiling as the fp32 fused kernel: 6 queries x 64 articles in 24
// registers. Per group of 4 dimensions: 4 loads of 16 articles x 4 bytes,
// 6 broadcasts of 4 query bytes, 24 VPDPBUSD.
constexpr int kQueryBlock = 6;
constexpr int kRegs = 4;  // registers of 16 articles; 12 x 2 and 8 x 3 ran at the same speed
constexpr int kTile = 16 * kRegs;
static_assert(kTile <= 64, "a tile's lanes form one 64-bit mask");
constexpr int kLaneBytes = 4;
// Tiles a thread scans first only to raise its heaps' bar (see Scan).
constexpr int64_t kWarmTiles = 64;

int32_t Clamp127(double v) { return static_cast<int32_t>(std::clamp(std::nearbyint(v), -127.0, 127.0)); }

// A min-heap of the k best scores: a better score replaces the root and
// sifts down (one pass of log k levels, not a pop and a push).
void HeapOffer(int32_t* heap, int* count, int k, int32_t v) {
  if (*count < k) {
    heap[(*count)++] = v;
    std::push_heap(heap, heap + *count, std::greater<int32_t>());
    return;
  }
  if (v <= heap[0]) return;
  int i = 0;
  while (true) {
    const int l = 2 * i + 1;
    if (l >= k) break;
    const int c = l + 1 < k && heap[l + 1] < heap[l] ? l + 1 : l;
    if (heap[c] >= v) break;
    heap[i] = heap[c];
    i = c;
  }
  heap[i] = v;
}

struct Block {
  const int32_t* words[kQueryBlock];
  int32_t bias[kQueryBlock];
  int32_t margin[kQueryBlock];
  int32_t* heap[kQueryBlock];
  int* count[kQueryBlock];
  std::vector<Int8Candidate>* cand[kQueryBlock];
  int32_t* warm = nullptr;  // kWarm: the biased scores, [query][tile - t_lo][64 lanes]
};

// What a pass over tiles does with an article that reaches the mark.
enum class Pass {
  kWarm,    // offer it to the heap only (raises the bar before candidates are kept); every score is stored
  kNormal,  // offer it to the heap and keep it as a candidate
};

// The biased integer score an article must reach: to enter the heap (kWarm),
// or to stay a candidate (within the margin of the heap's k-th best).
template <Pass P>
int32_t PassMark(const Block& b, int q, int k) {
  if (b.margin[q] < 0) return std::numeric_limits<int32_t>::max();  // skipped query
  if (*b.count[q] < k) return std::numeric_limits<int32_t>::min();
  return b.heap[q][0] - (P == Pass::kWarm ? 0 : b.margin[q]) + b.bias[q];
}

template <Pass P>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void ScanTiles(const uint8_t* packed, int groups, int64_t n,
                                                                      int k, int nq, int64_t t_lo, int64_t t_hi,
                                                                      const Block& b) {
  int32_t mark[kQueryBlock];
  for (int q = 0; q < kQueryBlock; ++q) mark[q] = q < nq ? PassMark<P>(b, q, k) : std::numeric_limits<int32_t>::max();
  const int64_t tile_bytes = static_cast<int64_t>(groups) * kTile * kLaneBytes;
  for (int64_t t = t_lo; t < t_hi; ++t) {
    const uint8_t* at = packed + t * tile_bytes;
    __m512i acc[kQueryBlock][kRegs];
#pragma GCC unroll 12
    for (int q = 0; q < kQueryBlock; ++q) {
#pragma GCC unroll 4
      for (int j = 0; j < kRegs; ++j) acc[q][j] = _mm512_setzero_si512();
    }
    for (int g = 0; g < groups; ++g) {
      const uint8_t* ag = at + g * kTile * kLaneBytes;
      __m512i v[kRegs];
#pragma GCC unroll 4
      for (int j = 0; j < kRegs; ++j) v[j] = _mm512_loadu_si512(ag + 64 * j);
#pragma GCC unroll 12
      for (int q = 0; q < kQueryBlock; ++q) {
        const __m512i w = _mm512_set1_epi32(b.words[q][g]);
#pragma GCC unroll 4
        for (int j = 0; j < kRegs; ++j) acc[q][j] = _mm512_dpbusd_epi32(acc[q][j], v[j], w);
      }
    }
    if (P == Pass::kWarm) {
      const int64_t row = (t - t_lo) * kTile;
      const int64_t per_query = (t_hi - t_lo) * kTile;
#pragma GCC unroll 12
      for (int q = 0; q < kQueryBlock; ++q) {
#pragma GCC unroll 4
        for (int j = 0; j < kRegs; ++j) _mm512_storeu_si512(b.warm + q * per_query + row + 16 * j, acc[q][j]);
      }
    }
#pragma GCC unroll 12
    for (int q = 0; q < kQueryBlock; ++q) {
      if (q >= nq) break;
      const __m512i th = _mm512_set1_epi32(mark[q]);
      __mmask16 m[kRegs];
      __mmask16 any = 0;
#pragma GCC unroll 4
      for (int j = 0; j < kRegs; ++j) {
        m[j] = _mm512_cmpge_epi32_mask(acc[q][j], th);
        any = _kor_mask16(any, m[j]);
      }
      if (_kortestz_mask16_u8(any, any)) continue;  // the usual case: stays in mask registers
      uint64_t mask = 0;
      for (int j = 0; j < kRegs; ++j) mask |= static_cast<uint64_t>(m[j]) << (16 * j);
      alignas(64) int32_t score[kTile];
      for (int j = 0; j < kRegs; ++j) _mm512_store_si512(score + 16 * j, acc[q][j]);
      for (uint64_t bits = mask; bits != 0; bits &= bits - 1) {
        const int lane = __builtin_ctzll(bits);
        const int64_t p = t * kTile + lane;
        if (p >= n) break;  // padding lanes are last
        const int32_t approx = score[lane] - b.bias[q];
        if (P == Pass::kNormal) b.cand[q]->push_back({approx, static_cast<int32_t>(p)});
        HeapOffer(b.heap[q], b.count[q], k, approx);
      }
      mark[q] = PassMark<P>(b, q, k);
    }
  }
}

// The warm tiles' candidates, from the scores kWarm stored: each article
// within the margin of the bar the warm tiles set (what a second scan of
// them would keep, without scanning them again).
__attribute__((target("avx512f"))) void Revisit(int64_t n, int k, int nq, int64_t t_lo, int64_t t_hi, const Block& b) {
  const int64_t per_query = (t_hi - t_lo) * kTile;
  for (int q = 0; q < nq; ++q) {
    if (b.margin[q] < 0) continue;  // skipped query
    const __m512i th = _mm512_set1_epi32(PassMark<Pass::kNormal>(b, q, k));
    const int32_t* score = b.warm + q * per_query;
    for (int64_t i = 0; i < per_query; i += 16) {
      __mmask16 m = _mm512_cmpge_epi32_mask(_mm512_loadu_si512(score + i), th);
      for (; m != 0; m = static_cast<__mmask16>(m & (m - 1))) {
        const int64_t lane = i + __builtin_ctz(m);
        const int64_t p = t_lo * kTile + lane;
        if (p >= n) break;  // padding lanes are last
        b.cand[q]->push_back({score[lane] - b.bias[q], static_cast<int32_t>(p)});
      }
    }
  }
}

}  // namespace

bool Int8Articles::Supported() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vnni");
}

Int8Articles::Int8Articles(const float* vectors, int64_t n, int dim)
    : n_(n), dim_(dim), groups_((dim + kLaneBytes - 1) / kLaneBytes) {
  double max_abs = 0;
  for (int64_t i = 0; i < n * dim; ++i) {
    if (!std::isfinite(vectors[i])) return;  // ok_ stays false
    max_abs = std::max(max_abs, std::fabs(static_cast<double>(vectors[i])));
  }
  scale_ = max_abs > 0 ? static_cast<float>(max_abs / 127.0) : 1.0f;
  const int64_t tiles = (n + kTile - 1) / kTile;
  // Padding (dimensions past dim, articles past n) is ai = 0: byte 128.
  packed_.assign(static_cast<size_t>(tiles * groups_ * kTile * kLaneBytes), 128);
  for (int64_t p = 0; p < n; ++p) {
    double residual = 0, dequant = 0, norm = 0;
    for (int i = 0; i < dim; ++i) {
      const double a = vectors[p * dim + i];
      const int32_t ai = Clamp127(a / scale_);
      const double back = static_cast<double>(scale_) * ai;
      residual += (a - back) * (a - back);
      dequant += back * back;
      norm += a * a;
      const size_t at = static_cast<size_t>(
          (((p / kTile) * groups_ + i / kLaneBytes) * kTile + p % kTile) * kLaneBytes + i % kLaneBytes);
      packed_[at] = static_cast<uint8_t>(ai + 128);
    }
    max_residual_ = std::max(max_residual_, std::sqrt(residual));
    max_dequant_ = std::max(max_dequant_, std::sqrt(dequant));
    max_norm_ = std::max(max_norm_, std::sqrt(norm));
  }
  ok_ = true;
}

void Int8Articles::State::Reset(int64_t m, int k) {
  heap.assign(static_cast<size_t>(m * k), 0);
  count.assign(static_cast<size_t>(m), 0);
  if (static_cast<int64_t>(candidates.size()) < m) candidates.resize(static_cast<size_t>(m));
  for (int64_t q = 0; q < m; ++q) candidates[static_cast<size_t>(q)].clear();
}

void Int8Articles::Quantize(const float* queries, int64_t m, Queries* out) const {
  out->words.assign(static_cast<size_t>(m * groups_), 0);
  out->bias.assign(static_cast<size_t>(m), 0);
  out->margin.assign(static_cast<size_t>(m), -1);
  for (int64_t q = 0; q < m; ++q) {
    const float* x = queries + q * dim_;
    double max_abs = 0, norm = 0;
    bool finite = true;
    for (int i = 0; i < dim_; ++i) {
      finite = finite && std::isfinite(x[i]);
      max_abs = std::max(max_abs, std::fabs(static_cast<double>(x[i])));
      norm += static_cast<double>(x[i]) * x[i];
    }
    if (!finite) continue;  // margin -1: nothing is kept, as fp32 compares keep nothing for NaN
    const double sq = max_abs > 0 ? max_abs / 127.0 : 1.0;
    double residual = 0;
    int32_t sum = 0;
    auto* bytes = reinterpret_cast<int8_t*>(out->words.data() + q * groups_);
    for (int i = 0; i < dim_; ++i) {
      const int32_t qi = Clamp127(x[i] / sq);
      bytes[i] = static_cast<int8_t>(qi);
      sum += qi;
      residual += (x[i] - sq * qi) * (x[i] - sq * qi);
    }
    norm = std::sqrt(norm);
    // E(q), plus fp32 rounding of the rescored sums (dim roundings of at most
    // 2^-24 relative each, counted twice over), plus 1 for the ceiling.
    const double e =
        norm * max_residual_ + std::sqrt(residual) * max_dequant_ + 2.0 * dim_ * 0x1p-23 * norm * max_norm_;
    const double units = 2.0 * e / (sq * scale_);
    out->bias[static_cast<size_t>(q)] = 128 * sum;
    out->margin[static_cast<size_t>(q)] =
        static_cast<int32_t>(std::min<double>(std::ceil(units) + 1, std::numeric_limits<int32_t>::max() / 4));
  }
}

void Int8Articles::Scan(const Queries& qs, int64_t m, int k, int t, int nt, State* st) const {
  const int64_t tiles = (n_ + kTile - 1) / kTile;
  // 256 KiB of articles per chunk (64 tiles at d = 64): they stay in L2 while
  // every query block passes over them.
  const int64_t tile_chunk = std::max<int64_t>(1, (256 << 10) / (groups_ * kTile * kLaneBytes));
  const int64_t t_lo = tiles * t / nt, t_hi = tiles * (t + 1) / nt;
  // Early in a scan the heap's k-th best is low and nearly everything is
  // within the margin of it: keeping all that costs more than the scan. So
  // the first tiles (stored rows are shuffled: a random sample) only fill
  // the heap, their scores are then revisited for candidates against the bar
  // they set, and the rest is scanned as usual.
  const int64_t warm = std::min(t_hi - t_lo, kWarmTiles);
  const auto pass = [&](auto p, int64_t c0, int64_t c1, int64_t q0) {
    constexpr Pass kP = decltype(p)::value;
    const int nq = static_cast<int>(std::min<int64_t>(kQueryBlock, m - q0));
    Block b;
    for (int q = 0; q < kQueryBlock; ++q) {
      const int64_t qq = q0 + (q < nq ? q : 0);  // a short block repeats its first query; never read
      b.words[q] = qs.words.data() + qq * groups_;
      b.bias[q] = qs.bias[static_cast<size_t>(qq)];
      b.margin[q] = qs.margin[static_cast<size_t>(qq)];
      b.heap[q] = st->heap.data() + qq * k;
      b.count[q] = st->count.data() + qq;
      b.cand[q] = &st->candidates[static_cast<size_t>(qq)];
    }
    b.warm = st->warm.data();
    ScanTiles<kP>(packed_.data(), groups_, n_, k, nq, c0, c1, b);
    if (kP == Pass::kWarm) Revisit(n_, k, nq, c0, c1, b);
  };
  st->warm.resize(static_cast<size_t>(kQueryBlock * warm * kTile));
  for (int64_t q0 = 0; q0 < m; q0 += kQueryBlock)
    pass(std::integral_constant<Pass, Pass::kWarm>(), t_lo, t_lo + warm, q0);
  for (int64_t c0 = t_lo + warm; c0 < t_hi; c0 += tile_chunk) {
    const int64_t c1 = std::min(t_hi, c0 + tile_chunk);
    for (int64_t q0 = 0; q0 < m; q0 += kQueryBlock) {
      pass(std::integral_constant<Pass, Pass::kNormal>(), c0, c1, q0);
    }
  }
}

}  // namespace hmrec
