#pragma once

// Spherical k-means for the neighbours source: customers whose customer-tower
// embeddings point the same way, grouped so that a table can say what each
// group bought lately. Plain loops over floats; deterministic for a seed.
//
// Centroids are stored dimension-major (dim x clusters: value i of cluster c
// at [i * clusters + c]): one pass over an embedding then updates every
// cluster's dot product, the inner loop running across clusters (vectorised
// without reordering any sum).

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hmrec {

inline constexpr size_t kMaxFitRows = 50000;
// Clusters at most (NearestCentroid's scratch is on the stack).
inline constexpr int kMaxClusters = 1024;

// Clusters `n` rows of `dim` floats (any length; they are compared by
// cosine) into at most min(`k`, kMaxClusters) clusters (fewer when there are
// fewer distinct rows), `iterations` rounds of assignment and update from
// `seed`'s choice of first centroids; the rounds see at most kMaxFitRows rows
// (a seeded sample), the final assignment every row. Returns the unit-length
// centroids, dimension-major (dim x clusters); `assignment` (may be null)
// gets each row's cluster. A row of zeros goes to cluster 0.
std::vector<float> SphericalKMeans(const float* rows, size_t n, int dim, int k, int iterations, uint64_t seed,
                                   std::vector<int32_t>* assignment);

// The centroid (of `k` <= kMaxClusters, dimension-major as above) with the
// largest dot product with `v`; ties to the lower index; -1 when k == 0.
int NearestCentroid(const float* centroids, int k, int dim, const float* v);

}  // namespace hmrec
