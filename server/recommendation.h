#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hmrec {

// Reasons the fallback answers a customer.
inline constexpr char kReasonUnknownCustomer[] = "unknown customer";
inline constexpr char kReasonEmbeddingNotFinite[] = "customer embedding not finite";

// One customer's answer from the serving core.
struct Recommendation {
  std::vector<int32_t> article_ids;  // best first
  std::vector<float> scores;
  bool fallback = false;
  // Why the fallback answered ("unknown customer", ...); empty otherwise.
  std::string fallback_reason;
  // How many of the last articles came from the popular list because the
  // search returned fewer than k.
  int filled_from_popular = 0;
};

}  // namespace hmrec
