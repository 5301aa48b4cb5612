#pragma once

// What the server does with a request's bytes before and after the serving
// core, apart from gRPC: validation (INVALID_ARGUMENT naming the first bad
// value, escaped) and the response. Kept free of the model and the index so
// the libFuzzer target (tests/fuzz/request_fuzz.cc) runs exactly this code.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "proto/recommender.pb.h"
#include "server/recommendation.h"

namespace hmrec {

struct RequestLimits {
  int max_k = 100;
  int max_ids = 10000;
};

// k when the request leaves it 0.
inline constexpr int kDefaultK = 12;

// Returns INVALID_ARGUMENT naming the first bad value, or OK.
absl::Status ValidateRequest(const v1::RecommendRequest& request, const RequestLimits& limits);

// The k a valid request asks for.
int RequestedK(const v1::RecommendRequest& request, const RequestLimits& limits);

// A client-supplied value as it may appear in an error message or a log
// line: C-escaped (no control characters, quotes or newlines survive),
// truncated to 80 bytes, in single quotes.
std::string QuoteClientValue(const std::string& value);

// Fills `response` with one result per requested id, in request order.
// `results` holds one Recommendation per id.
void FillResponse(const v1::RecommendRequest& request, const std::vector<Recommendation>& results,
                  const std::string& bundle_version, v1::RecommendResponse* response);

}  // namespace hmrec
