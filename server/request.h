#pragma once

// What the server does with a request's bytes before and after the serving
// core, apart from gRPC: validation (INVALID_ARGUMENT naming the first bad
// value, escaped) and the response. Kept free of the model and the index so
// the libFuzzer target (tests/fuzz/request_fuzz.cc) runs exactly this code.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "events/purchase.h"
#include "proto/recommender.pb.h"
#include "server/recommendation.h"

namespace hmrec {

struct RequestLimits {
  int max_k = 100;
  int max_ids = 10000;
  // Explanations multiply a response's size: a request asking to explain
  // ids x k articles beyond this budget is refused.
  int64_t max_response_bytes = 4 << 20;
  // Filter lists: excluded article ids, and names in each include list.
  int max_excluded_articles = 1000;
  int max_filter_names = 64;
  // SimilarArticles: query articles in one request (a basket).
  int max_similar_articles = 100;
};

// An upper bound on the serialised size of one article's explanation (six
// reasons with their texts, and the score).
inline constexpr int64_t kMaxExplanationBytes = 6 * 96 + 16;

// k when the request leaves it 0.
inline constexpr int kDefaultK = 12;

// customer_ids of Recommend and EraseCustomer: 1..max_ids, each 64
// lowercase hex characters; INVALID_ARGUMENT naming the first bad one.
absl::Status ValidateCustomerIds(const google::protobuf::RepeatedPtrField<std::string>& ids,
                                 const RequestLimits& limits);

// Returns INVALID_ARGUMENT naming the first bad value, or OK.
absl::Status ValidateRequest(const v1::RecommendRequest& request, const RequestLimits& limits);

// RecordPurchases: INVALID_ARGUMENT naming the first bad field of the first
// bad event (events[i].field), or OK with every event parsed into `out`.
// Whether the articles exist is the bundle's to say (not checked here).
absl::Status ParsePurchases(const v1::RecordPurchasesRequest& request, int max_events,
                            std::vector<RecordedPurchase>* out);

// The k a valid request asks for (a request's k of 0: the default).
int RequestedK(int k, const RequestLimits& limits);
int RequestedK(const v1::RecommendRequest& request, const RequestLimits& limits);

// The options of a valid request (k, explain, filters with parsed ids).
RequestOptions OptionsOf(const v1::RecommendRequest& request, const RequestLimits& limits);

// SimilarArticles: INVALID_ARGUMENT naming the first bad value (article_ids[i],
// k, filters; exclude_purchased_within_days has no customer here), or OK.
// Whether the articles exist is the bundle's to say (not checked here).
absl::Status ValidateSimilarRequest(const v1::SimilarArticlesRequest& request, const RequestLimits& limits);

// The options of a valid SimilarArticles request: k, explain, filters, and
// its query (the distinct article ids, in request order).
RequestOptions SimilarOptionsOf(const v1::SimilarArticlesRequest& request, const RequestLimits& limits);

// For people: "bought together with 0706016001", "trending this week", ...
std::string ReasonText(const Reason& reason);

// A client-supplied value as it may appear in an error message or a log
// line: C-escaped (no control characters, quotes or newlines survive),
// truncated to 80 bytes, in single quotes.
std::string QuoteClientValue(const std::string& value);

// Fills `response` with one result per requested id, in request order.
// `results` holds one Recommendation per id (explanations included when
// the recommendations carry them).
void FillResponse(const v1::RecommendRequest& request, const std::vector<Recommendation>& results,
                  const std::string& bundle_version, v1::RecommendResponse* response);

// Fills a SimilarArticles response from the core's answer.
void FillSimilarResponse(const Recommendation& result, const std::string& bundle_version,
                         v1::SimilarArticlesResponse* response);

}  // namespace hmrec
