#include "candidates/clusters.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/rng.h"

namespace hmrec {
namespace {

float Dot(const float* a, const float* b, int dim) {
  float s = 0;
  for (int i = 0; i < dim; ++i) s += a[i] * b[i];
  return s;
}

// Scales `v` to unit length; false (and unchanged) for a zero or non-finite
// vector.
bool Normalise(float* v, int dim) {
  const float norm = std::sqrt(Dot(v, v, dim));
  if (!(norm > 0) || !std::isfinite(norm)) return false;
  for (int i = 0; i < dim; ++i) v[i] /= norm;
  return true;
}

}  // namespace

int NearestCentroid(const float* centroids, int k, int dim, const float* v) {
  int best = k > 0 ? 0 : -1;
  float best_dot = -INFINITY;
  for (int c = 0; c < k; ++c) {
    const float d = Dot(centroids + static_cast<size_t>(c) * dim, v, dim);
    if (d > best_dot) {
      best_dot = d;
      best = c;
    }
  }
  return best;
}

std::vector<float> SphericalKMeans(const float* rows, size_t n, int dim, int k, int iterations, uint64_t seed,
                                   std::vector<int32_t>* assignment) {
  const size_t d = static_cast<size_t>(dim);
  std::vector<float> unit(rows, rows + n * d);
  std::vector<size_t> usable;
  for (size_t i = 0; i < n; ++i) {
    if (Normalise(unit.data() + i * d, dim)) usable.push_back(i);
  }
  // First centroids: distinct usable rows in a seeded shuffled order.
  uint64_t state = seed;
  for (size_t i = usable.size(); i > 1; --i) {
    std::swap(usable[i - 1], usable[SplitMix64(&state) % i]);
  }
  std::vector<float> centroids;
  for (size_t i = 0; i < usable.size() && centroids.size() < static_cast<size_t>(std::max(0, k)) * d; ++i) {
    const float* r = unit.data() + usable[i] * d;
    bool seen = false;
    for (size_t c = 0; c < centroids.size() && !seen; c += d) seen = std::equal(r, r + d, centroids.data() + c);
    if (!seen) centroids.insert(centroids.end(), r, r + d);
  }
  const int clusters = static_cast<int>(centroids.size() / std::max<size_t>(d, 1));
  std::vector<int32_t> assign(n, 0);
  std::vector<double> sum(centroids.size());
  const std::vector<size_t> fit(usable.begin(),
                                usable.begin() + static_cast<std::ptrdiff_t>(std::min(usable.size(), kMaxFitRows)));
  for (int it = 0; it < iterations && clusters > 0; ++it) {
    for (size_t i : fit) assign[i] = NearestCentroid(centroids.data(), clusters, dim, unit.data() + i * d);
    std::fill(sum.begin(), sum.end(), 0.0);
    for (size_t i : fit) {
      double* s = sum.data() + static_cast<size_t>(assign[i]) * d;
      const float* r = unit.data() + i * d;
      for (size_t j = 0; j < d; ++j) s[j] += r[j];
    }
    // An emptied cluster keeps its centroid.
    for (int c = 0; c < clusters; ++c) {
      std::vector<float> next(sum.begin() + static_cast<std::ptrdiff_t>(c * d),
                              sum.begin() + static_cast<std::ptrdiff_t>((c + 1) * d));
      if (Normalise(next.data(), dim)) std::copy(next.begin(), next.end(), centroids.begin() + c * d);
    }
  }
  for (size_t i : usable) assign[i] = NearestCentroid(centroids.data(), clusters, dim, unit.data() + i * d);
  if (assignment != nullptr) *assignment = std::move(assign);
  return centroids;
}

}  // namespace hmrec
