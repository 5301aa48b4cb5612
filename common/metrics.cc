#include "common/metrics.h"

#include <algorithm>

namespace hmrec {
namespace {

// Counts predictions in the top k that are relevant and first of their kind,
// calling `on_hit(rank, hits_so_far)` for each.
template <typename F>
int ScanHits(const std::vector<int32_t>& predicted, const absl::flat_hash_set<int32_t>& actual, int k, F on_hit) {
  const int n = std::min<int>(k, static_cast<int>(predicted.size()));
  int hits = 0;
  for (int i = 0; i < n; ++i) {
    const int32_t p = predicted[i];
    if (!actual.contains(p)) continue;
    if (std::find(predicted.begin(), predicted.begin() + i, p) != predicted.begin() + i) continue;
    ++hits;
    on_hit(i + 1, hits);
  }
  return hits;
}

}  // namespace

double AveragePrecisionAtK(const std::vector<int32_t>& predicted, const absl::flat_hash_set<int32_t>& actual, int k) {
  if (actual.empty()) return 0.0;
  double sum = 0.0;
  ScanHits(predicted, actual, k, [&](int rank, int hits) { sum += static_cast<double>(hits) / rank; });
  return sum / std::min<size_t>(actual.size(), static_cast<size_t>(k));
}

double RecallAtK(const std::vector<int32_t>& predicted, const absl::flat_hash_set<int32_t>& actual, int k) {
  if (actual.empty()) return 0.0;
  const int hits = ScanHits(predicted, actual, k, [](int, int) {});
  return static_cast<double>(hits) / static_cast<double>(actual.size());
}

double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(q * static_cast<double>(sorted.size())))];
}

}  // namespace hmrec
