#include "server/request.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "candidates/sources.h"
#include "common/status_macros.h"
#include "data/dates.h"
#include "data/ids.h"
#include "similar/similar_sources.h"

namespace hmrec {

std::string QuoteClientValue(const std::string& value) {
  std::string v = absl::CHexEscape(value.size() > 80 ? value.substr(0, 80) : value);
  return absl::StrCat("'", v, value.size() > 80 ? "...'" : "'");
}

namespace {

// The filters of a Recommend or SimilarArticles request.
absl::Status ValidateFilters(const v1::Filters& f, const RequestLimits& limits) {
  // Counted before anything is parsed: a huge list is refused at once.
  if (f.exclude_article_ids_size() > limits.max_excluded_articles) {
    return absl::InvalidArgumentError(absl::StrCat("filters.exclude_article_ids: ", f.exclude_article_ids_size(),
                                                   " ids, at most ", limits.max_excluded_articles,
                                                   " (max_excluded_articles)"));
  }
  for (const auto& [name, size] : {std::pair<const char*, int>{"index_group_names", f.index_group_names_size()},
                                   std::pair<const char*, int>{"product_group_names", f.product_group_names_size()},
                                   std::pair<const char*, int>{"garment_group_names", f.garment_group_names_size()}}) {
    if (size > limits.max_filter_names) {
      return absl::InvalidArgumentError(absl::StrCat("filters.", name, ": ", size, " names, at most ",
                                                     limits.max_filter_names, " (max_filter_names)"));
    }
  }
  for (int i = 0; i < f.exclude_article_ids_size(); ++i) {
    if (!ParseArticleId(f.exclude_article_ids(i)).ok()) {
      return absl::InvalidArgumentError(absl::StrCat("filters.exclude_article_ids[", i,
                                                     "] = ", QuoteClientValue(f.exclude_article_ids(i)),
                                                     " is not a 10-digit article id"));
    }
  }
  if (f.exclude_purchased_within_days() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("filters.exclude_purchased_within_days = ", f.exclude_purchased_within_days(), " is negative"));
  }
  return absl::OkStatus();
}

// The filters' parsed form, for a valid request.
RequestFilters FiltersOf(const v1::Filters& f) {
  RequestFilters out;
  for (const std::string& id : f.exclude_article_ids()) {
    absl::StatusOr<int32_t> parsed = ParseArticleId(id);
    if (parsed.ok()) out.exclude_article_ids.insert(*parsed);
  }
  out.exclude_purchased_within_days = f.exclude_purchased_within_days();
  out.index_group_names.assign(f.index_group_names().begin(), f.index_group_names().end());
  out.product_group_names.assign(f.product_group_names().begin(), f.product_group_names().end());
  out.garment_group_names.assign(f.garment_group_names().begin(), f.garment_group_names().end());
  return out;
}

}  // namespace

absl::Status ValidateCustomerIds(const google::protobuf::RepeatedPtrField<std::string>& ids,
                                 const RequestLimits& limits) {
  if (ids.empty()) return absl::InvalidArgumentError("customer_ids is empty");
  if (ids.size() > limits.max_ids) {
    return absl::InvalidArgumentError(
        absl::StrCat(ids.size(), " customer_ids, at most ", limits.max_ids, " per request"));
  }
  for (int i = 0; i < ids.size(); ++i) {
    if (!IsValidCustomerId(ids[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("customer_ids[", i, "] = ", QuoteClientValue(ids[i]), " is not 64 lowercase hex characters"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateRequest(const v1::RecommendRequest& request, const RequestLimits& limits) {
  RETURN_IF_ERROR(ValidateCustomerIds(request.customer_ids(), limits));
  if (request.k() < 0 || request.k() > limits.max_k) {
    return absl::InvalidArgumentError(absl::StrCat("k = ", request.k(), " out of range 1..", limits.max_k));
  }
  RETURN_IF_ERROR(ValidateFilters(request.filters(), limits));
  if (request.explain()) {
    const int64_t k = RequestedK(request, limits);
    const int64_t bytes = static_cast<int64_t>(request.customer_ids_size()) * k * kMaxExplanationBytes;
    if (bytes > limits.max_response_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "explain for ", request.customer_ids_size(), " customers x k = ", k, " could exceed the ",
          limits.max_response_bytes, "-byte response limit; ask for at most ",
          std::max<int64_t>(1, limits.max_response_bytes / (k * kMaxExplanationBytes)), " customers per call"));
    }
  }
  return absl::OkStatus();
}

absl::Status ParsePurchases(const v1::RecordPurchasesRequest& request, int max_events,
                            std::vector<RecordedPurchase>* out) {
  out->clear();
  if (request.events_size() == 0) return absl::InvalidArgumentError("events is empty");
  if (request.events_size() > max_events) {
    return absl::InvalidArgumentError(
        absl::StrCat(request.events_size(), " events, at most ", max_events, " per request"));
  }
  out->reserve(static_cast<size_t>(request.events_size()));
  for (int i = 0; i < request.events_size(); ++i) {
    const v1::PurchaseEvent& e = request.events(i);
    auto bad = [i](const char* field, const std::string& value, const char* why) {
      return absl::InvalidArgumentError(
          absl::StrCat("events[", i, "].", field, " = ", QuoteClientValue(value), " ", why));
    };
    if (!IsValidCustomerId(e.customer_id())) {
      return bad("customer_id", e.customer_id(), "is not 64 lowercase hex characters");
    }
    absl::StatusOr<int32_t> article = ParseArticleId(e.article_id());
    if (!article.ok()) return bad("article_id", e.article_id(), "is not a 10-digit article id");
    absl::StatusOr<int32_t> day = ParseDate(e.t_dat());
    if (!day.ok()) return bad("t_dat", e.t_dat(), "is not a date YYYY-MM-DD");
    if (!std::isfinite(e.price()) || e.price() < 0) {
      return bad("price", absl::StrCat(e.price()), "is not a finite price >= 0");
    }
    if (e.sales_channel_id() != 1 && e.sales_channel_id() != 2) {
      return bad("sales_channel_id", absl::StrCat(e.sales_channel_id()), "is not 1 or 2");
    }
    if (e.event_id().empty() || e.event_id().size() > 128) {
      return bad("event_id", e.event_id(), "must be 1 to 128 bytes");
    }
    RecordedPurchase& p = out->emplace_back();
    p.customer_id = e.customer_id();
    p.event.set_event_id(e.event_id());
    p.event.set_article_id(*article);
    p.event.set_day(*day);
    p.event.set_price(e.price());
    p.event.set_channel(e.sales_channel_id());
  }
  return absl::OkStatus();
}

RequestOptions OptionsOf(const v1::RecommendRequest& request, const RequestLimits& limits) {
  RequestOptions o;
  o.k = RequestedK(request, limits);
  o.explain = request.explain();
  o.filters = FiltersOf(request.filters());
  return o;
}

absl::Status ValidateSimilarRequest(const v1::SimilarArticlesRequest& request, const RequestLimits& limits) {
  if (request.article_ids_size() == 0) return absl::InvalidArgumentError("article_ids is empty");
  if (request.article_ids_size() > limits.max_similar_articles) {
    return absl::InvalidArgumentError(absl::StrCat(request.article_ids_size(), " article_ids, at most ",
                                                   limits.max_similar_articles, " (max_similar_articles)"));
  }
  if (request.k() < 0 || request.k() > limits.max_k) {
    return absl::InvalidArgumentError(absl::StrCat("k = ", request.k(), " out of range 1..", limits.max_k));
  }
  for (int i = 0; i < request.article_ids_size(); ++i) {
    if (!ParseArticleId(request.article_ids(i)).ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "article_ids[", i, "] = ", QuoteClientValue(request.article_ids(i)), " is not a 10-digit article id"));
    }
  }
  if (!request.customer_id().empty() && !IsValidCustomerId(request.customer_id())) {
    return absl::InvalidArgumentError(
        absl::StrCat("customer_id = ", QuoteClientValue(request.customer_id()), " is not 64 lowercase hex characters"));
  }
  RETURN_IF_ERROR(ValidateFilters(request.filters(), limits));
  if (request.filters().exclude_purchased_within_days() != 0) {
    return absl::InvalidArgumentError(
        "filters.exclude_purchased_within_days: SimilarArticles does not exclude purchases (customer_id orders the "
        "list, it filters nothing)");
  }
  return absl::OkStatus();
}

RequestOptions SimilarOptionsOf(const v1::SimilarArticlesRequest& request, const RequestLimits& limits) {
  RequestOptions o;
  o.k = RequestedK(request.k(), limits);
  o.explain = request.explain();
  o.filters = FiltersOf(request.filters());
  auto q = std::make_shared<SimilarQuery>();
  for (const std::string& id : request.article_ids()) {
    absl::StatusOr<int32_t> parsed = ParseArticleId(id);
    if (parsed.ok() && std::find(q->article_ids.begin(), q->article_ids.end(), *parsed) == q->article_ids.end()) {
      q->article_ids.push_back(*parsed);
    }
  }
  q->exclude_same_product_code = request.exclude_same_product_code();
  o.similar = std::move(q);
  return o;
}

namespace {

const char* SourceLabel(int source) {
  if (source >= kSimilarSourceBase) return SimilarSourceName(source - kSimilarSourceBase);
  switch (source) {
    case kRepurchase:
      return "repurchase";
    case kTwoTower:
      return "two_tower";
    case kCoPurchase:
      return "copurchase";
    case kSameProduct:
      return "same_product";
    case kSegmentPopular:
      return "segment_popular";
    case kTrending:
      return "trending";
    case kTaste:
      return "taste";
    case kNewArrival:
      return "new_arrival";
    case kNeighbours:
      return "neighbours";
    case kStyleBuyers:
      return "style_buyers";
    default:
      return "popular";
  }
}

// -0.0 as 0.0: proto3 sends a float field of -0.0 (its bits are not zero)
// but JSON drops it as the default, so the two APIs would answer differently.
float Unsigned0(float v) { return v == 0.0f ? 0.0f : v; }

std::string ArticleIdText(int32_t id) {
  char buf[kArticleIdDigits];
  FormatArticleIdTo(id, buf);
  return std::string(buf, kArticleIdDigits);
}

void FillExplanation(const Explanation& e, v1::Explanation* x) {
  x->set_ranker_score(Unsigned0(e.ranker_score));
  for (const Reason& reason : e.reasons) {
    v1::Reason* y = x->add_reasons();
    y->set_source(SourceLabel(reason.source));
    y->set_rank(reason.rank + 1);
    y->set_score(Unsigned0(reason.score));
    if (reason.anchor_article_id != 0) y->set_anchor_article_id(ArticleIdText(reason.anchor_article_id));
    y->set_text(ReasonText(reason));
  }
  for (const std::string& rule : e.rules) x->add_rules(rule);
  x->set_new_in_catalogue(e.new_in_catalogue);
}

}  // namespace

std::string ReasonText(const Reason& r) {
  switch (r.source) {
    case kSimilarSourceBase + kSimilarEmbedding:
      return "looks alike (article embedding)";
    case kSimilarSourceBase + kSimilarBoughtTogether:
      return r.anchor_article_id != 0 ? absl::StrCat("bought together with ", ArticleIdText(r.anchor_article_id))
                                      : "bought together";
    case kSimilarSourceBase + kSimilarSameProduct:
      return r.anchor_article_id != 0 ? absl::StrCat("another variant of ", ArticleIdText(r.anchor_article_id))
                                      : "another variant";
    case kSimilarSourceBase + kSimilarPopularInType:
      return "popular now in the same product type";
    case kSimilarSourceBase + kSimilarForCustomer:
      return "fits your taste (customer tower)";
    case kRepurchase:
      return "you bought it before";
    case kTwoTower:
      return "matches your taste (two-tower model)";
    case kCoPurchase:
      return r.anchor_article_id != 0 ? absl::StrCat("bought together with ", ArticleIdText(r.anchor_article_id))
                                      : "bought together with your recent articles";
    case kSameProduct:
      return r.anchor_article_id != 0 ? absl::StrCat("another variant of ", ArticleIdText(r.anchor_article_id))
                                      : "another variant of a recent article";
    case kSegmentPopular:
      return "popular in your age group";
    case kTrending:
      return "trending this week";
    case kTaste:
      return "selling now in the styles you buy";
    case kNewArrival:
      return "new in the styles you buy";
    case kNeighbours:
      return "bought lately by customers like you";
    case kStyleBuyers:
      return "popular now with shoppers of your styles";
    default:
      return "popular right now";
  }
}

int RequestedK(int k, const RequestLimits& limits) { return k == 0 ? std::min(kDefaultK, limits.max_k) : k; }

int RequestedK(const v1::RecommendRequest& request, const RequestLimits& limits) {
  return RequestedK(request.k(), limits);
}

void FillResponse(const v1::RecommendRequest& request, const std::vector<Recommendation>& results,
                  const std::string& bundle_version, v1::RecommendResponse* response) {
  // The response's version when every result shares it (a result without
  // one: `bundle_version`, the batch's main bundle).
  auto version_of = [&bundle_version](const Recommendation& rec) -> const std::string& {
    return rec.bundle_version.empty() ? bundle_version : rec.bundle_version;
  };
  bool shared = true;
  for (const Recommendation& rec : results) shared = shared && version_of(rec) == version_of(results[0]);
  response->set_bundle_version(results.empty() ? bundle_version : shared ? version_of(results[0]) : "");
  char buf[kArticleIdDigits];
  for (int i = 0; i < request.customer_ids_size(); ++i) {
    const Recommendation& rec = results[static_cast<size_t>(i)];
    v1::Recommendation* r = response->add_results();
    r->set_customer_id(request.customer_ids(i));
    r->set_bundle_version(version_of(rec));
    if (rec.canary) r->set_canary(true);
    r->set_fallback(rec.fallback);
    if (!rec.fallback_reason.empty()) r->set_fallback_reason(rec.fallback_reason);
    if (rec.filled_from_popular > 0) r->set_filled_from_popular(rec.filled_from_popular);
    if (rec.fewer_than_k) r->set_fewer_than_k(true);
    if (rec.ranked) r->set_ranked(true);
    if (rec.events_applied > 0) r->set_events_applied(rec.events_applied);
    for (size_t j = 0; j < rec.article_ids.size(); ++j) {
      FormatArticleIdTo(rec.article_ids[j], buf);
      r->add_article_ids(std::string(buf, kArticleIdDigits));
      r->add_scores(Unsigned0(rec.scores[j]));
    }
    for (const Explanation& e : rec.explanations) FillExplanation(e, r->add_explanations());
    for (const std::string& rule : rec.rules) r->add_rules(rule);
  }
}

void FillSimilarResponse(const Recommendation& rec, const std::string& bundle_version,
                         v1::SimilarArticlesResponse* response) {
  response->set_bundle_version(rec.bundle_version.empty() ? bundle_version : rec.bundle_version);
  if (rec.canary) response->set_canary(true);
  for (size_t j = 0; j < rec.article_ids.size(); ++j) {
    response->add_article_ids(ArticleIdText(rec.article_ids[j]));
    response->add_scores(Unsigned0(rec.scores[j]));
  }
  for (const Explanation& e : rec.explanations) FillExplanation(e, response->add_explanations());
  for (int32_t id : rec.unknown_article_ids) response->add_unknown_article_ids(ArticleIdText(id));
  response->set_fallback(rec.fallback);
  if (rec.filled_from_popular > 0) response->set_filled_from_popular(rec.filled_from_popular);
  if (rec.fewer_than_k) response->set_fewer_than_k(true);
  if (rec.personalised) response->set_personalised(true);
  for (const std::string& rule : rec.rules) response->add_rules(rule);
}

}  // namespace hmrec
