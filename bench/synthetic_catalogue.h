#pragma once

// A larger catalogue for cost curves (docs/SCALING.md): every real article
// plus scale-1 synthetic neighbours (its embedding plus Gaussian noise,
// renormalised) with new ids above the real ones, appended in order.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>

#include "bundle/bundle.h"

namespace hmrec {

inline void ReplicateCatalogue(int scale, ArticleEmbeddings* e) {
  if (scale <= 1) return;
  const size_t n = e->article_ids.size(), d = static_cast<size_t>(e->dim);
  int32_t next_id = *std::max_element(e->article_ids.begin(), e->article_ids.end()) + 1;
  std::mt19937 rng(12345);
  std::normal_distribution<float> noise(0.0f, 0.15f / std::sqrt(static_cast<float>(d)));
  e->values.reserve(n * d * scale);
  for (int s = 1; s < scale; ++s) {
    for (size_t i = 0; i < n; ++i) {
      float norm = 0;
      const size_t base = e->values.size();
      for (size_t k = 0; k < d; ++k) {
        const float v = e->values[i * d + k] + noise(rng);
        e->values.push_back(v);
        norm += v * v;
      }
      norm = std::sqrt(norm);
      for (size_t k = 0; k < d; ++k) e->values[base + k] /= norm;
      e->article_ids.push_back(next_id++);
    }
  }
}

}  // namespace hmrec
