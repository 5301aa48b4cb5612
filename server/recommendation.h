#pragma once

// What the serving core is asked (RequestOptions: k, filters, explain, the
// same for every customer of a request) and what it answers per customer
// (Recommendation), apart from the wire format.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"

namespace hmrec {

// Reasons the fallback answers a customer.
inline constexpr char kReasonUnknownCustomer[] = "unknown customer";
inline constexpr char kReasonEmbeddingNotFinite[] = "customer embedding not finite";

// The source index of a reason that is the popular list (the fallback or
// the fill), beside the candidate sources of candidates/sources.h.
inline constexpr int kPopularSource = -1;
// A SimilarArticles reason's source is this plus its similar/similar_articles.h
// SimilarSource, beside the candidate sources.
inline constexpr int kSimilarSourceBase = 100;

struct RequestFilters {
  absl::flat_hash_set<int32_t> exclude_article_ids;
  int exclude_purchased_within_days = 0;
  // Include lists by name (empty = any); the bundle's article table maps
  // names to articles.
  std::vector<std::string> index_group_names;
  std::vector<std::string> product_group_names;
  std::vector<std::string> garment_group_names;

  bool empty() const {
    return exclude_article_ids.empty() && exclude_purchased_within_days <= 0 && index_group_names.empty() &&
           product_group_names.empty() && garment_group_names.empty();
  }
};

// What a SimilarArticles request asks besides k, filters and explain.
struct SimilarQuery {
  std::vector<int32_t> article_ids;  // well-formed, distinct, as requested
  bool exclude_same_product_code = false;
};

struct RequestOptions {
  int k = 12;
  bool explain = false;
  RequestFilters filters;
  // Set for a SimilarArticles request (its one id in the batch queue is a
  // placeholder); null for Recommend.
  std::shared_ptr<const SimilarQuery> similar;
  // The server's merchandising rules (rules/merch_rules.h): 1 for each row of
  // the answering bundle never to serve, part of the request's filter
  // everywhere (search, candidates, fills). Null: none. Set by the batch
  // processor on its copy of the options, never by a caller.
  const std::vector<uint8_t>* unavailable_rows = nullptr;
};

// One source that proposed an article.
struct Reason {
  int source = kPopularSource;  // a candidates/sources.h Source, or kPopularSource
  int rank = 0;                 // 0-based in the source's list
  float score = 0;
  int32_t anchor_article_id = 0;  // 0 = none
};

struct Explanation {
  std::vector<Reason> reasons;
  float ranker_score = 0;
  // The merchandising rules that moved or added the article ("pin:NAME",
  // "campaign:NAME", "diversity").
  std::vector<std::string> rules;
  // A catalogue refresh added the article since training; it was placed at
  // RecommenderOptions::new_article_position.
  bool new_in_catalogue = false;
};

// One customer's answer from the serving core.
struct Recommendation {
  std::vector<int32_t> article_ids;  // best first
  // Their rows in the answering bundle's article table (set by the serving
  // core; what the merchandising rules read instead of looking ids up).
  std::vector<uint32_t> article_rows;
  // One scale, [0, 1], non-increasing down the list: ranked lists the
  // ranker's margin through a logistic (higher is likelier, not a calibrated
  // probability), retrieval-only lists (1 + cosine) / 2, popular articles
  // their time-decayed sales as a share of the best seller's; an article
  // never scores above the one before it (one placed as new_in_catalogue
  // takes the score of the place it took).
  std::vector<float> scores;
  bool fallback = false;
  // Why the fallback answered ("unknown customer", ...); empty otherwise.
  std::string fallback_reason;
  // How many of the last articles came from the popular list because the
  // search or the filters left fewer than k.
  int filled_from_popular = 0;
  // True when fewer than k articles of the whole catalogue pass the
  // request's filters: the list holds those that do, never others.
  bool fewer_than_k = false;
  // True when the ranker ordered the list.
  bool ranked = false;
  // Purchases recorded online (after the bundle's data) that this list saw.
  int events_applied = 0;
  // One per article when the request asked to explain.
  std::vector<Explanation> explanations;
  // SimilarArticles: the requested article ids the bundle does not have.
  std::vector<int32_t> unknown_article_ids;
  // SimilarArticles: the request's customer is known and ordered the list.
  bool personalised = false;
  // The bundle that answered, and whether it is the canary (set by the
  // batch processor, server/service.h).
  std::string bundle_version;
  bool canary = false;
  // What the merchandising rules' segments read (set by the core when it
  // knows the customer): age (-1 unknown) and the bundle's encoded
  // club_member_status (0 unknown).
  int customer_age = -1;
  int32_t club_status = 0;
  // Candidates the merchandising rules' unavailable articles kept out of
  // the list (the ranked or searched ones the list would have reached).
  int unavailable_removed = 0;
  // The merchandising rules that changed the list, each once.
  std::vector<std::string> rules;
};

}  // namespace hmrec
