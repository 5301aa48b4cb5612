#pragma once

#include <cstdint>
#include <vector>

namespace hmrec {

// One customer's answer from the serving core.
struct Recommendation {
  std::vector<int32_t> article_ids;  // best first
  std::vector<float> scores;
  bool fallback = false;
};

}  // namespace hmrec
