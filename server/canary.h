#pragma once

// Stable shares of the customers: the canary's (ServerConfig.canary) and the
// impression log's sample. A customer's share depends on their id alone
// (FNV-1a, salted per use), so every call and every replica puts them in the
// same arm, without shared state; the ids are SHA-256 hex in the real data,
// so any hash of them spreads evenly.

#include <cstdint>

#include "absl/strings/string_view.h"

namespace hmrec {

inline constexpr uint64_t kCanarySalt = 0x63616e617279ull;        // "canary"
inline constexpr uint64_t kImpressionSalt = 0x696d7072657373ull;  // "impress"

// True when `customer_id` falls in the first `percent` (0..100, in steps of
// 0.01) of 10,000 buckets of the salted hash.
inline bool InShare(absl::string_view customer_id, double percent, uint64_t salt) {
  if (percent <= 0) return false;
  if (percent >= 100) return true;
  uint64_t h = 0xcbf29ce484222325ull ^ salt;
  for (unsigned char c : customer_id) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  h ^= h >> 33;  // FNV's low bits mix poorly: fold the high ones in
  return static_cast<double>(h % 10000) < percent * 100.0;
}

// The canary's arm: a customer (not an empty id: a SimilarArticles request
// without one) in the canary's share. What Recommend, SimilarArticles and
// the inspector all route by.
inline bool InCanaryArm(absl::string_view customer_id, double canary_percent) {
  return !customer_id.empty() && InShare(customer_id, canary_percent, kCanarySalt);
}

}  // namespace hmrec
