#include "search/exact_search.h"

#include <cblas.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <utility>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIDMap.h>

#include "absl/strings/str_cat.h"
#include "common/rng.h"

namespace hmrec {
namespace {

// A query chunk x article block of scores is 1 MiB: it stays in L2. Among
// 64..1024 x 256..8192 this was fastest on the 2-core VM (82.9 vs 88.6 ms
// for 256 x 1024; docs/PERFORMANCE.md).
constexpr int64_t kQueryChunk = 512;
constexpr int64_t kArticleBlock = 512;

// The best `k` (score, original row) pairs seen so far for one query, as a
// min-heap on score (ties: the later row is worse, as in faiss).
struct Heap {
  float* score;
  int32_t* row;
  int* count;
  int k;

  static bool Worse(float sa, int32_t ra, float sb, int32_t rb) { return sa < sb || (sa == sb && ra > rb); }

  float Threshold() const { return *count < k ? -std::numeric_limits<float>::infinity() : score[0]; }

  void SiftDown(int i) {
    while (true) {
      int w = i;
      const int l = 2 * i + 1, r = l + 1;
      if (l < k && Worse(score[l], row[l], score[w], row[w])) w = l;
      if (r < k && Worse(score[r], row[r], score[w], row[w])) w = r;
      if (w == i) return;
      std::swap(score[i], score[w]);
      std::swap(row[i], row[w]);
      i = w;
    }
  }

  void Push(float s, int32_t r) {
    if (*count < k) {
      // Sift up.
      int i = (*count)++;
      score[i] = s;
      row[i] = r;
      while (i > 0) {
        const int p = (i - 1) / 2;
        if (!Worse(score[i], row[i], score[p], row[p])) break;
        std::swap(score[i], score[p]);
        std::swap(row[i], row[p]);
        i = p;
      }
      return;
    }
    if (!Worse(score[0], row[0], s, r)) return;
    score[0] = s;
    row[0] = r;
    SiftDown(0);
  }
};

// Offers scores s[0..n) of the stored rows whose original rows are
// row[0..n) to the heap.
void FilterScalar(const float* s, int64_t n, const int32_t* row, Heap* h) {
  float th = h->Threshold();
  for (int64_t j = 0; j < n; ++j) {
    if (s[j] > th) {
      h->Push(s[j], row[j]);
      th = h->Threshold();
    }
  }
}

// The same, 16 scores per step: nearly every step finds none above the
// threshold and costs two compares and a branch.
__attribute__((target("avx2"))) void FilterAvx2(const float* s, int64_t n, const int32_t* row, Heap* h) {
  __m256 th = _mm256_set1_ps(h->Threshold());
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m256 a = _mm256_loadu_ps(s + j);
    const __m256 b = _mm256_loadu_ps(s + j + 8);
    const unsigned mask = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(a, th, _CMP_GT_OQ))) |
                          (static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(b, th, _CMP_GT_OQ))) << 8);
    if (mask == 0) continue;
    for (unsigned m = mask; m != 0; m &= m - 1) {
      const int bit = __builtin_ctz(m);
      h->Push(s[j + bit], row[j + bit]);
    }
    th = _mm256_set1_ps(h->Threshold());
  }
  if (j < n) FilterScalar(s + j, n - j, row + j, h);
}

using FilterFn = void (*)(const float*, int64_t, const int32_t*, Heap*);

FilterFn ChooseFilter() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") ? FilterAvx2 : FilterScalar;
}

bool HaveAvx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
}

// The fused AVX-512 kernel: a tile of 6 queries x 64 articles is scored in
// 24 registers — per dimension, 4 loads of 16 articles' values and 6
// broadcasts of query values feed 24 FMAs, so the FMA units, not the loads,
// set the pace — then compared in registers with each query's current k-th
// best score; only the rare article above it leaves the registers. No score
// matrix is written and nothing is packed per call.
constexpr int kQueryBlock = 6;
constexpr int kTile = 64;  // articles per tile: 4 registers of 16

struct FusedArgs {
  const float* articles;  // tiles of 64: [tile][dim][64], zero padding
  const int32_t* row_of;  // stored position -> original row
  int64_t n;
  int dim;
  const float* queries;  // m x dim
};

__attribute__((target("avx512f"))) void FusedRange(const FusedArgs& a, int64_t q0, int nq, int64_t t_lo, int64_t t_hi,
                                                   Heap* heaps) {
  float thr[kQueryBlock];
  const float* x[kQueryBlock];
  for (int q = 0; q < kQueryBlock; ++q) {
    // Missing queries of a short last block repeat the first one; never read.
    x[q] = a.queries + (q0 + (q < nq ? q : 0)) * a.dim;
    thr[q] = q < nq ? heaps[q].Threshold() : std::numeric_limits<float>::infinity();
  }
  for (int64_t t = t_lo; t < t_hi; ++t) {
    const float* at = a.articles + t * a.dim * kTile;
    __m512 acc[kQueryBlock][4];
#pragma GCC unroll 6
    for (int q = 0; q < kQueryBlock; ++q) {
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) acc[q][j] = _mm512_setzero_ps();
    }
    for (int i = 0; i < a.dim; ++i) {
      const __m512 v0 = _mm512_loadu_ps(at + i * kTile), v1 = _mm512_loadu_ps(at + i * kTile + 16),
                   v2 = _mm512_loadu_ps(at + i * kTile + 32), v3 = _mm512_loadu_ps(at + i * kTile + 48);
#pragma GCC unroll 6
      for (int q = 0; q < kQueryBlock; ++q) {
        const __m512 b = _mm512_set1_ps(x[q][i]);
        acc[q][0] = _mm512_fmadd_ps(v0, b, acc[q][0]);
        acc[q][1] = _mm512_fmadd_ps(v1, b, acc[q][1]);
        acc[q][2] = _mm512_fmadd_ps(v2, b, acc[q][2]);
        acc[q][3] = _mm512_fmadd_ps(v3, b, acc[q][3]);
      }
    }
#pragma GCC unroll 6
    for (int q = 0; q < kQueryBlock; ++q) {
      if (q >= nq) break;
      const __m512 th = _mm512_set1_ps(thr[q]);
      const uint64_t mask = static_cast<uint64_t>(_mm512_cmp_ps_mask(acc[q][0], th, _CMP_GT_OQ)) |
                            static_cast<uint64_t>(_mm512_cmp_ps_mask(acc[q][1], th, _CMP_GT_OQ)) << 16 |
                            static_cast<uint64_t>(_mm512_cmp_ps_mask(acc[q][2], th, _CMP_GT_OQ)) << 32 |
                            static_cast<uint64_t>(_mm512_cmp_ps_mask(acc[q][3], th, _CMP_GT_OQ)) << 48;
      if (mask == 0) continue;
      alignas(64) float score[kTile];
      for (int j = 0; j < 4; ++j) _mm512_store_ps(score + 16 * j, acc[q][j]);
      for (uint64_t m = mask; m != 0; m &= m - 1) {
        const int lane = __builtin_ctzll(m);
        const int64_t p = t * kTile + lane;
        if (p >= a.n) break;  // padding lanes are last
        heaps[q].Push(score[lane], a.row_of[p]);
      }
      thr[q] = heaps[q].Threshold();
    }
  }
}

// fp32 scores of the stored rows pos[0..count) for query x, 16 rows at a
// time (one per lane, gathered), each summed over the dimensions in order
// with one FMA per step: the same operations, in the same order, as
// FusedRange performs for a row, so the same float comes out.
__attribute__((target("avx512f"))) void Rescore(const float* vectors, int dim, const float* x, const int32_t* pos,
                                                int64_t count, float* out) {
  for (int64_t c = 0; c < count; c += 16) {
    const int lanes = static_cast<int>(std::min<int64_t>(16, count - c));
    const __mmask16 live = static_cast<__mmask16>((1u << lanes) - 1);
    const __m512i idx = _mm512_mullo_epi32(_mm512_maskz_loadu_epi32(live, pos + c), _mm512_set1_epi32(dim));
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < dim; ++i) {
      const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live, idx, vectors + i, 4);
      acc = _mm512_fmadd_ps(v, _mm512_set1_ps(x[i]), acc);
    }
    _mm512_mask_storeu_ps(out + c, live, acc);
  }
}

}  // namespace

ExactSearch::ExactSearch(const std::vector<float>& vectors, std::vector<int64_t> labels, int dim, Kernel kernel)
    : labels_(std::move(labels)), dim_(dim) {
  // Stored in a fixed pseudo-random order: a scan in the given order meets
  // rising scores when the vectors trend (article ids follow launch dates,
  // and the article tower knows an article's age), and every rise costs a
  // heap insert. In random order the k-th best settles after a few blocks.
  const int64_t n = static_cast<int64_t>(labels_.size());
  row_of_.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) row_of_[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  Rng rng(0x9e3779b97f4a7c15ULL);
  for (int64_t i = n - 1; i > 0; --i) {  // Fisher-Yates
    std::swap(row_of_[static_cast<size_t>(i)], row_of_[static_cast<size_t>(rng.Below(static_cast<uint64_t>(i + 1)))]);
  }
  vectors_.resize(vectors.size());
  for (int64_t p = 0; p < n; ++p) {
    std::copy_n(vectors.data() + static_cast<int64_t>(row_of_[static_cast<size_t>(p)]) * dim, dim,
                vectors_.data() + p * dim);
  }
  if (kernel == Kernel::kAuto && Int8Articles::Supported()) {
    int8_ = std::make_unique<Int8Articles>(vectors_.data(), n, dim);
    if (int8_->ok()) return;
    int8_.reset();  // non-finite values: no int8 bound; fp32 below
  }
  if (kernel != Kernel::kSgemm && HaveAvx512()) {
    // Tiles of 64 articles, dimension-major inside: the layout the fused
    // kernel loads 4 registers at a time. Padding articles are zero.
    const int64_t tiles = (n + kTile - 1) / kTile;
    packed_.assign(static_cast<size_t>(tiles * dim * kTile), 0.0f);
    for (int64_t p = 0; p < n; ++p) {
      for (int i = 0; i < dim; ++i) {
        packed_[static_cast<size_t>(((p / kTile) * dim + i) * kTile + p % kTile)] = vectors_[p * dim + i];
      }
    }
  }
}

std::unique_ptr<ExactSearch> ExactSearch::OverRows(const float* vectors, int dim, const std::vector<int64_t>& rows) {
  std::vector<float> values(rows.size() * static_cast<size_t>(dim));
  for (size_t i = 0; i < rows.size(); ++i) std::copy_n(vectors + rows[i] * dim, dim, values.data() + i * dim);
  return std::make_unique<ExactSearch>(values, rows, dim);
}

const char* ExactSearch::kernel() const {
  if (int8_) return "int8-vnni+rescore";
  return packed_.empty() ? "sgemm" : "avx512-fused";
}

bool ExactSearch::Supports(const faiss::Index& index) {
  const faiss::Index* inner = &index;
  if (const auto* map = dynamic_cast<const faiss::IndexIDMap*>(&index)) inner = map->index;
  const auto* flat = dynamic_cast<const faiss::IndexFlat*>(inner);
  return flat != nullptr && flat->metric_type == faiss::METRIC_INNER_PRODUCT;
}

absl::StatusOr<std::unique_ptr<ExactSearch>> ExactSearch::FromFaissIndex(const faiss::Index& index, Kernel kernel) {
  const faiss::Index* inner = &index;
  std::vector<int64_t> labels;
  if (const auto* map = dynamic_cast<const faiss::IndexIDMap*>(&index)) {
    inner = map->index;
    labels = map->id_map;
  }
  const auto* flat = dynamic_cast<const faiss::IndexFlat*>(inner);
  if (flat == nullptr || flat->metric_type != faiss::METRIC_INNER_PRODUCT) {
    return absl::InvalidArgumentError("exact search needs a flat inner-product index");
  }
  if (labels.empty()) {
    labels.resize(static_cast<size_t>(flat->ntotal));
    for (int64_t i = 0; i < flat->ntotal; ++i) labels[static_cast<size_t>(i)] = i;
  }
  if (static_cast<int64_t>(labels.size()) != flat->ntotal) {
    return absl::DataLossError(absl::StrCat("index has ", flat->ntotal, " vectors but ", labels.size(), " ids"));
  }
  const float* data = flat->get_xb();
  const std::vector<float> vectors(data, data + flat->ntotal * flat->d);
  return std::make_unique<ExactSearch>(vectors, std::move(labels), static_cast<int>(flat->d), kernel);
}

template <typename HeapOf>
void ExactSearch::ScanFused(const float* queries, int64_t m, int t, int nt, const HeapOf& heap_of) const {
  const FusedArgs args{packed_.data(), row_of_.data(), size(), dim_, queries};
  const int64_t tiles = (size() + kTile - 1) / kTile;
  const int64_t tile_chunk = std::max<int64_t>(1, (256 << 10) / (dim_ * kTile * 4));  // 256 KiB: stays in L2
  const int64_t t_lo = tiles * t / nt, t_hi = tiles * (t + 1) / nt;
  Heap heaps[kQueryBlock];
  for (int64_t c0 = t_lo; c0 < t_hi; c0 += tile_chunk) {
    const int64_t c1 = std::min(t_hi, c0 + tile_chunk);
    for (int64_t q0 = 0; q0 < m; q0 += kQueryBlock) {
      const int nq = static_cast<int>(std::min<int64_t>(kQueryBlock, m - q0));
      for (int q = 0; q < nq; ++q) heaps[q] = heap_of(q0 + q);
      FusedRange(args, q0, nq, c0, c1, heaps);
    }
  }
}

template <typename HeapOf>
void ExactSearch::ScanSgemm(const float* queries, int64_t m, int64_t lo, int64_t hi, std::vector<float>* block,
                            const HeapOf& heap_of) const {
  static const FilterFn filter = ChooseFilter();
  const int d = dim_;
  if (block->size() < static_cast<size_t>(kQueryChunk * kArticleBlock)) block->resize(kQueryChunk * kArticleBlock);
  for (int64_t q0 = 0; q0 < m; q0 += kQueryChunk) {
    const int64_t mq = std::min(kQueryChunk, m - q0);
    for (int64_t a0 = lo; a0 < hi; a0 += kArticleBlock) {
      const int64_t nb = std::min(kArticleBlock, hi - a0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(mq), static_cast<int>(nb), d, 1.0f,
                  queries + q0 * d, d, vectors_.data() + a0 * d, d, 0.0f, block->data(), static_cast<int>(nb));
      for (int64_t i = 0; i < mq; ++i) {
        Heap h = heap_of(q0 + i);
        filter(block->data() + i * nb, nb, row_of_.data() + a0, &h);
      }
    }
  }
}

void ExactSearch::WriteBest(std::vector<std::pair<float, int32_t>>* cand, int k, int64_t* labels, float* scores) const {
  // Best first, ties by row as faiss orders them; -1 past the last.
  const size_t have = std::min(cand->size(), static_cast<size_t>(k));
  std::partial_sort(cand->begin(), cand->begin() + have, cand->end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  for (int j = 0; j < k; ++j) {
    const bool ok = static_cast<size_t>(j) < have;
    labels[j] = ok ? labels_[static_cast<size_t>((*cand)[j].second)] : -1;
    scores[j] = ok ? (*cand)[j].first : -std::numeric_limits<float>::infinity();
  }
}

void ExactSearch::SearchInt8(const float* queries, int64_t m, int k, int64_t* labels, float* scores, int threads,
                             Scratch* scratch) const {
  const int nt_max = std::max(1, threads > 0 ? threads : omp_get_max_threads());
  std::vector<Int8Articles::State>& states = scratch->int8;
  const Int8Articles::Queries& quantised = scratch->int8_queries;
  if (static_cast<int>(states.size()) < nt_max) states.resize(static_cast<size_t>(nt_max));
  int8_->Quantize(queries, m, &scratch->int8_queries);
  int used_threads = 1;
#pragma omp parallel num_threads(nt_max)
  {
    const int t = omp_get_thread_num();
    const int nt = omp_get_num_threads();
#pragma omp single
    used_threads = nt;
    Int8Articles::State& st = states[static_cast<size_t>(t)];
    st.Reset(m, k);
    int8_->Scan(quantised, m, k, t, nt, &st);
#pragma omp barrier
    std::vector<int32_t> kth;
    std::vector<int32_t> pos;
    std::vector<float> exact;
    std::vector<std::pair<float, int32_t>> best;
#pragma omp for schedule(dynamic, 8)
    for (int64_t q = 0; q < m; ++q) {
      // The k-th best approximate score over all threads sets the bar.
      kth.clear();
      for (int u = 0; u < used_threads; ++u) {
        const Int8Articles::State& s = states[static_cast<size_t>(u)];
        kth.insert(kth.end(), s.heap.begin() + q * k, s.heap.begin() + q * k + s.count[static_cast<size_t>(q)]);
      }
      int32_t keep = std::numeric_limits<int32_t>::min();
      if (static_cast<int>(kth.size()) >= k) {
        std::nth_element(kth.begin(), kth.begin() + (k - 1), kth.end(), std::greater<int32_t>());
        keep = Int8Articles::Keep(kth[static_cast<size_t>(k - 1)], quantised, q);
      }
      pos.clear();
      for (int u = 0; u < used_threads; ++u) {
        for (const Int8Candidate& c : states[static_cast<size_t>(u)].candidates[static_cast<size_t>(q)]) {
          if (c.approx >= keep) pos.push_back(c.pos);
        }
      }
      exact.resize(pos.size());
      Rescore(vectors_.data(), dim_, queries + q * dim_, pos.data(), static_cast<int64_t>(pos.size()), exact.data());
      best.clear();
      for (size_t j = 0; j < pos.size(); ++j) best.emplace_back(exact[j], row_of_[static_cast<size_t>(pos[j])]);
      WriteBest(&best, k, labels + q * k, scores + q * k);
    }
  }
}

void ExactSearch::Search(const float* queries, int64_t m, int k, int64_t* labels, float* scores, int threads,
                         Scratch* scratch) const {
  if (int8_) {
    SearchInt8(queries, m, k, labels, scores, threads, scratch);
    return;
  }
  const int64_t n = size();
  const int nt_max = std::max(1, threads > 0 ? threads : omp_get_max_threads());
  // Per thread and query: a heap of k (score, row).
  std::vector<float> heap_score(static_cast<size_t>(nt_max) * m * k);
  std::vector<int32_t> heap_row(heap_score.size());
  std::vector<int> heap_count(static_cast<size_t>(nt_max) * m, 0);
  auto heap = [&](int t, int64_t q) {
    const size_t slot = static_cast<size_t>(t) * m + q;
    return Heap{heap_score.data() + slot * k, heap_row.data() + slot * k, heap_count.data() + slot, k};
  };
  std::vector<std::vector<float>>& blocks = scratch->blocks;
  if (static_cast<int>(blocks.size()) < nt_max) blocks.resize(nt_max);
  int used_threads = 1;

  // Each thread scans its own contiguous range of the stored articles.
#pragma omp parallel num_threads(nt_max)
  {
    const int t = omp_get_thread_num();
    const int nt = omp_get_num_threads();
#pragma omp single
    used_threads = nt;
    if (!packed_.empty()) {
      ScanFused(queries, m, t, nt, [&](int64_t q) { return heap(t, q); });
    } else {
      ScanSgemm(queries, m, n * t / nt, n * (t + 1) / nt, &blocks[t], [&](int64_t q) { return heap(t, q); });
    }
  }

  // Merge the threads' heaps: best first, ties by row as faiss orders them.
  std::vector<std::pair<float, int32_t>> cand;
  for (int64_t q = 0; q < m; ++q) {
    cand.clear();
    for (int t = 0; t < used_threads; ++t) {
      const size_t slot = static_cast<size_t>(t) * m + q;
      for (int j = 0; j < heap_count[slot]; ++j) cand.emplace_back(heap_score[slot * k + j], heap_row[slot * k + j]);
    }
    WriteBest(&cand, k, labels + q * k, scores + q * k);
  }
}

}  // namespace hmrec
