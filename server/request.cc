#include "server/request.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "data/ids.h"

namespace hmrec {

std::string QuoteClientValue(const std::string& value) {
  std::string v = absl::CHexEscape(value.size() > 80 ? value.substr(0, 80) : value);
  return absl::StrCat("'", v, value.size() > 80 ? "...'" : "'");
}

absl::Status ValidateRequest(const v1::RecommendRequest& request, const RequestLimits& limits) {
  if (request.customer_ids_size() == 0) return absl::InvalidArgumentError("customer_ids is empty");
  if (request.customer_ids_size() > limits.max_ids) {
    return absl::InvalidArgumentError(
        absl::StrCat(request.customer_ids_size(), " customer_ids, at most ", limits.max_ids, " per request"));
  }
  if (request.k() < 0 || request.k() > limits.max_k) {
    return absl::InvalidArgumentError(absl::StrCat("k = ", request.k(), " out of range 1..", limits.max_k));
  }
  for (int i = 0; i < request.customer_ids_size(); ++i) {
    if (!IsValidCustomerId(request.customer_ids(i))) {
      return absl::InvalidArgumentError(absl::StrCat("customer_ids[", i,
                                                     "] = ", QuoteClientValue(request.customer_ids(i)),
                                                     " is not 64 lowercase hex characters"));
    }
  }
  return absl::OkStatus();
}

int RequestedK(const v1::RecommendRequest& request, const RequestLimits& limits) {
  return request.k() == 0 ? std::min(kDefaultK, limits.max_k) : request.k();
}

void FillResponse(const v1::RecommendRequest& request, const std::vector<Recommendation>& results,
                  const std::string& bundle_version, v1::RecommendResponse* response) {
  response->set_bundle_version(bundle_version);
  char buf[kArticleIdDigits];
  for (int i = 0; i < request.customer_ids_size(); ++i) {
    const Recommendation& rec = results[static_cast<size_t>(i)];
    v1::Recommendation* r = response->add_results();
    r->set_customer_id(request.customer_ids(i));
    r->set_fallback(rec.fallback);
    if (!rec.fallback_reason.empty()) r->set_fallback_reason(rec.fallback_reason);
    if (rec.filled_from_popular > 0) r->set_filled_from_popular(rec.filled_from_popular);
    for (size_t j = 0; j < rec.article_ids.size(); ++j) {
      FormatArticleIdTo(rec.article_ids[j], buf);
      r->add_article_ids(std::string(buf, kArticleIdDigits));
      r->add_scores(rec.scores[j]);
    }
  }
}

}  // namespace hmrec
