#include "candidates/clusters.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "common/rng.h"
#include "common/simd.h"

namespace hmrec {
namespace {

// Scales `v` to unit length; false (and unchanged) for a zero or non-finite
// vector.
bool Normalise(float* v, size_t dim) {
  float sq = 0;
  for (size_t i = 0; i < dim; ++i) sq += v[i] * v[i];
  const float norm = std::sqrt(sq);
  if (!(norm > 0) || !std::isfinite(norm)) return false;
  for (size_t i = 0; i < dim; ++i) v[i] /= norm;
  return true;
}

// Clusters [first, k)'s dot products with `v` into dot[first..k). SSE (every
// x86-64 has it): one pass over the dimensions updates four clusters a step.
// Every cluster's sum adds the dimensions in order, so the result is the
// scalar one, and the same as CentroidDotsAvx's.
void CentroidDotsSse(const float* centroids, int k, int dim, const float* v, int first, float* dot) {
  std::fill(dot + first, dot + k, 0.0f);
  for (int i = 0; i < dim; ++i) {
    const float x = v[i];
    const __m128 xs = _mm_set1_ps(x);
    const float* row = centroids + static_cast<size_t>(i) * k;
    int c = first;
    for (; c + 4 <= k; c += 4) {
      _mm_storeu_ps(dot + c, _mm_add_ps(_mm_loadu_ps(dot + c), _mm_mul_ps(_mm_loadu_ps(row + c), xs)));
    }
    for (; c < k; ++c) dot[c] += row[c] * x;
  }
}

// The same where the CPU has AVX: 32 clusters a pass, their sums held in
// four AVX registers over every dimension (no fused multiply-add:
// common/simd.h), the clusters left over by CentroidDotsSse.
__attribute__((target("avx"))) void CentroidDotsAvx(const float* centroids, int k, int dim, const float* v, int first,
                                                    float* dot) {
  constexpr int kBlock = 32;
  int c = first;
  for (; c + kBlock <= k; c += kBlock) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    const float* row = centroids + c;
    for (int i = 0; i < dim; ++i, row += k) {
      const __m256 x = _mm256_set1_ps(v[i]);
      a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_loadu_ps(row), x));
      a1 = _mm256_add_ps(a1, _mm256_mul_ps(_mm256_loadu_ps(row + 8), x));
      a2 = _mm256_add_ps(a2, _mm256_mul_ps(_mm256_loadu_ps(row + 16), x));
      a3 = _mm256_add_ps(a3, _mm256_mul_ps(_mm256_loadu_ps(row + 24), x));
    }
    _mm256_storeu_ps(dot + c, a0);
    _mm256_storeu_ps(dot + c + 8, a1);
    _mm256_storeu_ps(dot + c + 16, a2);
    _mm256_storeu_ps(dot + c + 24, a3);
  }
  _mm256_zeroupper();  // clean upper halves before SSE code (common/simd.h)
  CentroidDotsSse(centroids, k, dim, v, c, dot);
}

}  // namespace

int NearestCentroid(const float* centroids, int k, int dim, const float* v) {
  if (k <= 0) return -1;
  float dot[kMaxClusters];
  if (UseAvx()) {
    CentroidDotsAvx(centroids, k, dim, v, 0, dot);
  } else {
    CentroidDotsSse(centroids, k, dim, v, 0, dot);
  }
  return static_cast<int>(std::max_element(dot, dot + k) - dot);
}

std::vector<float> SphericalKMeans(const float* rows, size_t n, int dim, int k, int iterations, uint64_t seed,
                                   std::vector<int32_t>* assignment) {
  const size_t d = static_cast<size_t>(dim);
  std::vector<float> unit(rows, rows + n * d);
  std::vector<size_t> usable;
  for (size_t i = 0; i < n; ++i) {
    if (Normalise(unit.data() + i * d, d)) usable.push_back(i);
  }
  // First centroids: distinct usable rows in a seeded shuffled order.
  uint64_t state = seed;
  for (size_t i = usable.size(); i > 1; --i) {
    std::swap(usable[i - 1], usable[SplitMix64(&state) % i]);
  }
  const size_t want = static_cast<size_t>(std::clamp(k, 0, kMaxClusters));
  std::vector<size_t> first;
  for (size_t i = 0; i < usable.size() && first.size() < want; ++i) {
    const float* r = unit.data() + usable[i] * d;
    bool seen = false;
    for (size_t f = 0; f < first.size() && !seen; ++f) seen = std::equal(r, r + d, unit.data() + first[f] * d);
    if (!seen) first.push_back(usable[i]);
  }
  const size_t clusters = first.size();
  std::vector<float> centroids(d * clusters);
  for (size_t c = 0; c < clusters; ++c) {
    for (size_t j = 0; j < d; ++j) centroids[j * clusters + c] = unit[first[c] * d + j];
  }
  const int kc = static_cast<int>(clusters);
  std::vector<int32_t> assign(n, 0);
  std::vector<double> sum(clusters * d);  // cluster-major, one row a cluster
  std::vector<float> next(d);
  const std::vector<size_t> fit(usable.begin(),
                                usable.begin() + static_cast<std::ptrdiff_t>(std::min(usable.size(), kMaxFitRows)));
  for (int it = 0; it < iterations && clusters > 0; ++it) {
    for (size_t i : fit) assign[i] = NearestCentroid(centroids.data(), kc, dim, unit.data() + i * d);
    std::fill(sum.begin(), sum.end(), 0.0);
    for (size_t i : fit) {
      double* s = sum.data() + static_cast<size_t>(assign[i]) * d;
      const float* r = unit.data() + i * d;
      for (size_t j = 0; j < d; ++j) s[j] += r[j];
    }
    // An emptied cluster keeps its centroid.
    for (size_t c = 0; c < clusters; ++c) {
      for (size_t j = 0; j < d; ++j) next[j] = static_cast<float>(sum[c * d + j]);
      if (!Normalise(next.data(), d)) continue;
      for (size_t j = 0; j < d; ++j) centroids[j * clusters + c] = next[j];
    }
  }
  for (size_t i : usable) assign[i] = NearestCentroid(centroids.data(), kc, dim, unit.data() + i * d);
  if (assignment != nullptr) *assignment = std::move(assign);
  return centroids;
}

}  // namespace hmrec
