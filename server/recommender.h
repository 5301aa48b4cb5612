#pragma once

// The serving core, apart from any transport: a sealed bundle loaded and
// verified completely, and the path from customer ids to articles:
//
//   feature store lookup -> customer tower -> article search (two-tower)
//   -> with a ranker: the other candidate sources from the bundle's tables
//      and the customer's stored history -> ranking features -> XGBoost for
//      every candidate of the batch at once -> best first
//   -> request filters -> exactly k, filled from the popular list
//
// Unknown customers, and customers whose embedding is not finite, get the
// popular list, flagged with the reason. Without a ranker in the bundle (or
// with ranking off) the search's order is served, as before.
//
// A Recommender is immutable after Load and shared by every batch worker:
// Recommend() is const and may run on many threads at once, each with its
// own RecommendScratch (the buffers one call reuses).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "candidates/sources.h"
#include "candidates/tables.h"
#include "data/article_table.h"
#include "data/customer_view.h"
#include "features/feature_space.h"
#include "features/ranking_features.h"
#include "model/tower_runner.h"
#include "proto/config.pb.h"
#include "ranker/ranker.h"
#include "search/article_index.h"
#include "search/exact_search.h"
#include "server/recommendation.h"
#include "server/restricted_sources.h"
#include "similar/similar_articles.h"
#include "store/feature_store.h"

namespace hmrec {

// Purchases recorded online, one list per requested customer id (in
// recording order); see Recommender::Recommend.
using CustomerEvents = std::vector<std::vector<config::StoredEvent>>;

struct RecommenderOptions {
  std::string device = "cpu";  // LibTorch device of the customer tower
  int ivf_nprobe = 0;          // 0: as built
  int hnsw_ef_search = 0;      // 0: as built
  // How an exact (flat) index is searched: "blocked" (ExactSearch, its
  // fastest kernel for this CPU), "blocked-fp32" (ExactSearch without the
  // int8 first pass) or "faiss" (IndexFlatIP::search). Same results.
  std::string flat_search = "blocked";
  // The largest k a request may ask for: the bundle's fallback must hold at
  // least this many articles (every customer gets exactly k).
  int max_k = 100;
  // Rank with the bundle's ranker when it has one; false serves the
  // two-tower search's order (for comparison).
  bool ranking = true;
  // XGBoost threads of one prediction call.
  int ranker_threads = 1;
  // "native" or "xgboost"; "" = the bundle's RankerParams.evaluator.
  std::string ranker_evaluator;
  // Ranked lists of a refreshed bundle: the best-ranked candidate the
  // refresh added (never sold) is placed here (1-based) when none is this
  // high already (config::ServerConfig::new_article_position); <= 0: off.
  int new_article_position = 12;
};

// Seconds spent in each stage of one Recommend() call.
struct StageTimes {
  double feature_lookup = 0;
  double tower = 0;
  double search = 0;
  double candidates = 0;  // candidate sources
  double features = 0;    // ranking features
  double ranker = 0;      // XGBoost
};

// The buffers of one Recommend() call, reused by the next: fresh large
// allocations cost page faults. One per thread that calls Recommend().
struct RecommendScratch {
  std::vector<config::CustomerRecord> records;
  std::vector<bool> found;
  std::vector<int> events_applied;
  std::vector<int32_t> fields, history;
  std::vector<float> queries, scores;
  std::vector<int64_t> ids;
  ExactSearch::Scratch search;
  // Customers searched apart (their filter's articles): their queries and
  // results, gathered.
  std::vector<float> group_queries, group_scores;
  std::vector<int64_t> group_ids;
  // Ranking.
  std::vector<CustomerView> views;
  std::vector<std::vector<Candidate>> candidates;
  // One per thread of the candidate and feature loops.
  struct PerThread {
    CandidateScratch candidates;
    FeatureScratch features;
  };
  std::vector<PerThread> per_thread;
  std::vector<size_t> offsets;
  std::vector<float> features, ranker_scores;
  CascadeScratch cascade;
  std::vector<uint32_t> order;
};

class Recommender {
 public:
  // Loads bundle_dir: it must be sealed and pass every checksum.
  static absl::StatusOr<std::unique_ptr<Recommender>> Load(const std::string& bundle_dir,
                                                           const RecommenderOptions& options);

  // Recommends to each of `customer_ids` (valid 64-hex ids) exactly
  // options[i]->k (1..max_k) articles honouring options[i]->filters, with
  // explanations when options[i]->explain; results in the same order. The
  // article search uses `search_threads` threads (0: this thread's OpenMP
  // setting); the calling thread's OpenMP setting is the same afterwards.
  // `scratch` is the calling thread's own.
  //
  // `events` (may be null): purchases recorded since the bundle was built.
  // Those after the bundle's last data day whose article the bundle knows
  // are added to the customer's stored history (the tower's pooled history,
  // the candidate sources, the ranking features), as bought on the bundle's
  // last day: its article tables and its clock stay at its day. A customer
  // the store does not know but who has such events is recommended from
  // them (unknown profile fields) instead of the fallback.
  absl::Status Recommend(const std::vector<absl::string_view>& customer_ids,
                         const std::vector<const RequestOptions*>& options, std::vector<Recommendation>* out,
                         StageTimes* times, int search_threads, RecommendScratch* scratch,
                         const CustomerEvents* events = nullptr) const;
  // The same k and no filters for everyone.
  absl::Status Recommend(const std::vector<absl::string_view>& customer_ids, int k, std::vector<Recommendation>* out,
                         StageTimes* times, int search_threads, RecommendScratch* scratch) const;

  // SimilarArticles: for each request (options[i]->similar set), exactly
  // options[i]->k articles like its query articles (similar/similar_articles.h),
  // never one of them (nor, with exclude_same_product_code, another variant
  // of one), honouring the filters (not exclude_purchased_within_days),
  // filled from the popular list; a request none of whose articles the
  // bundle has gets the popular list (fallback). Unknown ids are reported in
  // unknown_article_ids. A request whose `customer_ids[i]` (empty: none)
  // the store knows, or who has recorded purchases in `events` (aligned
  // with customer_ids; may be null), is ordered for them too
  // (SimilarArticles::Personalise with the customer tower's embedding;
  // personalised set). One embedding search for the batch on `threads`
  // threads (0: this thread's OpenMP setting).
  struct SimilarScratch {
    SimilarArticles::Scratch similar;
    std::vector<std::vector<uint32_t>> anchors;
    std::vector<std::vector<SimilarCandidate>> candidates;
    std::vector<int32_t> fields, history;
    std::vector<bool> found;
    std::vector<config::CustomerRecord> records;
    std::vector<float> embeddings;
  };
  absl::Status Similar(const std::vector<absl::string_view>& customer_ids,
                       const std::vector<const RequestOptions*>& options, std::vector<Recommendation>* out,
                       double* seconds, int threads, SimilarScratch* scratch,
                       const CustomerEvents* events = nullptr) const;
  // The blend SimilarArticles serves.
  const SimilarMix& similar_mix() const { return similar_mix_; }
  const SimilarArticles& similar() const { return *similar_; }

  // What the ranker sees for one customer, built by the serving path from
  // the feature store (for the parity test with the trainer's offline
  // features, and for inspection): the history view, the candidates and
  // their feature rows (candidates x NumRankingFeatures()). NOT_FOUND for a
  // customer the store does not know; FAILED_PRECONDITION without a ranker.
  struct RankingInputs {
    CustomerView view;
    std::vector<Candidate> candidates;
    std::vector<float> features;
  };
  absl::StatusOr<RankingInputs> RankingInputsOf(absl::string_view customer_id) const;

  // INVALID_ARGUMENT naming the first filter value no article of this
  // bundle has.
  absl::Status CheckFilters(const RequestFilters& filters) const;

  // The tower's input for each customer, as Recommend() builds it: n x
  // kCustomerFields field values and n x history_length article rows (row
  // + 1 of the article in the bundle; 0 = none); found[i] false (and zero
  // rows) for customers the store does not know. For tools that run the
  // tower elsewhere (bench/python_scorer.py); same threading rule.
  // With `events`, their purchases are merged in as Recommend() does;
  // `applied` (may be null) gets how many per customer.
  // Similar's personal order: the embeddings of the requests' customers
  // (those with a known query), each query's candidates re-ordered.
  absl::Status PersonaliseSimilar(const std::vector<absl::string_view>& customer_ids,
                                  const std::vector<int64_t>& query_of, const CustomerEvents* events, SimilarScratch* s,
                                  std::vector<Recommendation>* out) const;
  absl::Status EncodeCustomers(const std::vector<absl::string_view>& customer_ids, std::vector<int32_t>* fields,
                               std::vector<int32_t>* history, std::vector<bool>* found,
                               std::vector<config::CustomerRecord>* records, const CustomerEvents* events = nullptr,
                               std::vector<int>* applied = nullptr) const;

  // The popular list every list is filled from, best first.
  const std::vector<int32_t>& fallback_ids() const { return fallback_ids_; }
  // The club_member_status text of each encoded value (0: unknown, "").
  std::vector<std::string> ClubStatusNames() const;

  // The article with this id is in the bundle.
  bool HasArticle(int32_t article_id) const { return article_row_.contains(article_id); }
  // The bundle's features_as_of: its data ends the day before.
  int32_t as_of() const { return as_of_; }

  const std::string& version() const { return version_; }
  // How articles are searched: ExactSearch's kernel name, or "faiss".
  std::string search_kernel() const { return exact_ ? exact_->kernel() : "faiss"; }
  // True when the served lists are ranked by the bundle's ranker.
  bool ranking() const { return ranker_ != nullptr; }
  // What scores the candidates: "native" or "xgboost" ("" without ranking).
  std::string ranker_evaluator() const { return ranker_ ? ranker_->evaluator() : ""; }
  int history_length() const { return space_->history_length(); }
  const config::BundleManifest& manifest() const { return manifest_; }
  const ArticleTable& articles() const { return *articles_; }
  const FeatureSpace& space() const { return *space_; }
  // The stored record of one customer (NOT_FOUND when the store does not
  // know them), as the bundle has it, without recorded events.
  absl::StatusOr<config::CustomerRecord> StoredRecord(absl::string_view customer_id) const;
  // Recommend applies a recorded purchase only when it is after the
  // bundle's data and of an article the bundle has.
  bool AppliesEvent(const config::StoredEvent& e) const {
    return e.day() >= as_of_ && article_row_.contains(e.article_id());
  }
  // The sources restricted to each distinct attribute filter seen lately.
  const RestrictedSourcesCache& restricted_sources() const { return *restricted_; }
  // A known customer at or after `key` in the store's order (wrapping).
  absl::StatusOr<std::string> CustomerAtOrAfter(absl::string_view key) const { return store_->KeyAtOrAfter(key); }

 private:
  Recommender() = default;
  struct Filter;
  // Each request's filters, built once per Recommend call (its customers
  // share them, and the fill order they let through).
  using FilterCache = absl::flat_hash_map<const RequestOptions*, std::unique_ptr<Filter>>;
  const Filter& FilterOf(const RequestOptions& o, FilterCache* cache) const;
  // The sources within `filter`'s attribute lists (built on first use and
  // cached); null when it has none.
  std::shared_ptr<const RestrictedSources> RestrictedOf(const Filter& filter) const;
  // Searches the m known customers' queries (s->queries) for their top
  // `search_k` into s->ids / s->scores (labels: article rows with a ranker,
  // article ids without): each through its filter's restricted search
  // (restricted[j], may be null), the rest through the bundle's.
  absl::Status SearchKnown(int64_t m, int search_k, const std::vector<const RestrictedSources*>& restricted,
                           int threads, RecommendScratch* s) const;

  // The ranked lists of the known customers at positions `known` (their
  // rows of s.queries / s.ids in order).
  // Candidates and features run on `threads` threads (0: one).
  absl::Status Rank(const std::vector<size_t>& known, int search_k, const std::vector<const RequestOptions*>& options,
                    std::vector<Recommendation>* out, StageTimes* t, int threads, RecommendScratch* s,
                    FilterCache* filters, const std::vector<const RestrictedSources*>& restricted) const;
  // The view and candidates of the known customer at position j of the
  // tower's rows (record `r`, search results s->ids/s->scores).
  void BuildCandidates(const config::CustomerRecord& r, int64_t j, int search_k, const RecommendScratch& s,
                       RecommendScratch::PerThread* t, CustomerView* view, std::vector<Candidate>* candidates,
                       const ArticleFilter* filter = nullptr) const;
  // A ranked candidate's explanation: its sources, ranks and anchors.
  Explanation ExplainCandidate(const Candidate& cand, float margin) const;
  // A refreshed bundle's ranked list (rec, ordered by `score` over
  // `cands` in `order`): when none of its first new_article_position_
  // articles is one the refresh added, the best-ranked added candidate that
  // `filter` allows is placed there (moved up if it is further down), the
  // rest moved down one and the list kept to o.k.
  void PlaceAddedArticle(const std::vector<Candidate>& cands, const float* score, const std::vector<uint32_t>& order,
                         const Filter& filter, const CustomerView* view, const RequestOptions& o,
                         Recommendation* rec) const;
  // INVALID_ARGUMENT unless 1 <= k <= the fallback's length (every list
  // can be filled to k).
  absl::Status CheckK(int k) const;
  // INTERNAL unless the options' unavailable rows (if any) are this
  // bundle's (one per article row).
  absl::Status CheckUnavailableRows(const RequestOptions& o) const;
  // Appends popular articles that pass `filter` and are not in `rec` until
  // it holds k (the fallback list first, then the whole catalogue); returns
  // how many were appended.
  int FillFromPopular(int k, const Filter& filter, const CustomerView* view, Recommendation* rec, bool explain) const;
  // Adds the events after the bundle's data to `r` (a stored record, or an
  // empty one for a customer the store does not know); returns how many.
  int ApplyEvents(const std::vector<config::StoredEvent>& events, bool known, config::CustomerRecord* r) const;

  std::string version_;
  config::BundleManifest manifest_;
  std::unique_ptr<FeatureSpace> space_;
  std::unique_ptr<CustomerTowerRunner> tower_;
  std::unique_ptr<faiss::Index> index_;
  std::unique_ptr<ExactSearch> exact_;  // set when index_ is flat and flat_search is "blocked" or "blocked-fp32"
  std::unique_ptr<FeatureStore> store_;
  std::unique_ptr<ArticleTable> articles_;
  absl::flat_hash_map<int32_t, int32_t> article_row_;  // article id -> row + 1
  std::vector<int32_t> fallback_ids_;
  std::vector<float> fallback_scores_;
  int dim_ = 0;
  int32_t as_of_ = 0;             // the bundle's features_as_of: the stored histories end the day before
  int new_article_position_ = 0;  // RecommenderOptions::new_article_position
  // Ranking (null/empty without a ranker).
  std::unique_ptr<Ranker> ranker_;
  std::unique_ptr<RankingTables> tables_;
  config::RankingConfig ranking_config_;
  HistoryLimits limits_;
  std::unique_ptr<ExactSearch> two_tower_search_;  // with a ranker: the two-tower source's articles, labels = rows
  std::vector<uint8_t> two_tower_rows_;            // with a ranker: 1 for the rows two_tower_search_ holds
  std::vector<float> article_vectors_;             // every article's embedding, row order
  std::unique_ptr<RestrictedSourcesCache> restricted_;
  std::unique_ptr<SimilarArticles> similar_;
  SimilarMix similar_mix_;
};

}  // namespace hmrec
