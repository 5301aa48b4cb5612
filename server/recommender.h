#pragma once

// The serving core, apart from any transport: a sealed bundle loaded and
// verified completely, and the path customer ids -> feature store lookup ->
// customer tower -> article search -> article ids, with the popular fallback
// for customers the store does not know.
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
#include "features/feature_space.h"
#include "model/tower_runner.h"
#include "proto/config.pb.h"
#include "search/article_index.h"
#include "search/exact_search.h"
#include "server/recommendation.h"
#include "store/feature_store.h"

namespace hmrec {

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
};

// Seconds spent in each stage of one Recommend() call.
struct StageTimes {
  double feature_lookup = 0;
  double tower = 0;
  double search = 0;
};

// The buffers of one Recommend() call, reused by the next: fresh large
// allocations cost page faults. One per thread that calls Recommend().
struct RecommendScratch {
  std::vector<config::CustomerRecord> records;
  std::vector<bool> found;
  std::vector<int32_t> fields, history;
  std::vector<float> queries, scores;
  std::vector<int64_t> ids;
  ExactSearch::Scratch search;
};

class Recommender {
 public:
  // Loads bundle_dir: it must be sealed and pass every checksum.
  static absl::StatusOr<std::unique_ptr<Recommender>> Load(const std::string& bundle_dir,
                                                           const RecommenderOptions& options);

  // Recommends exactly `k` (1..max_k) articles to each of `customer_ids`
  // (valid 64-hex ids), results in the same order. Known customers get the
  // search's articles, completed from the popular list when the search
  // returns fewer than k (approximate indexes can); unknown customers, and
  // customers whose embedding is not finite, get the popular list, flagged
  // with the reason. The article search uses `search_threads` threads (0:
  // this thread's OpenMP setting); the calling thread's OpenMP setting is
  // the same afterwards. `scratch` is the calling thread's own.
  absl::Status Recommend(const std::vector<absl::string_view>& customer_ids, int k, std::vector<Recommendation>* out,
                         StageTimes* times, int search_threads, RecommendScratch* scratch) const;

  // The tower's input for each customer, as Recommend() builds it: n x
  // kCustomerFields field values and n x history_length article rows (row
  // + 1 of the article in the bundle; 0 = none); found[i] false (and zero
  // rows) for customers the store does not know. For tools that run the
  // tower elsewhere (bench/python_scorer.py); same threading rule.
  absl::Status EncodeCustomers(const std::vector<absl::string_view>& customer_ids, std::vector<int32_t>* fields,
                               std::vector<int32_t>* history, std::vector<bool>* found,
                               std::vector<config::CustomerRecord>* records) const;

  const std::string& version() const { return version_; }
  // How articles are searched: ExactSearch's kernel name, or "faiss".
  std::string search_kernel() const { return exact_ ? exact_->kernel() : "faiss"; }
  int history_length() const { return space_->history_length(); }
  const config::BundleManifest& manifest() const { return manifest_; }

 private:
  Recommender() = default;

  std::string version_;
  config::BundleManifest manifest_;
  std::unique_ptr<FeatureSpace> space_;
  std::unique_ptr<CustomerTowerRunner> tower_;
  std::unique_ptr<faiss::Index> index_;
  std::unique_ptr<ExactSearch> exact_;  // set when index_ is flat and flat_search is "blocked" or "blocked-fp32"
  std::unique_ptr<FeatureStore> store_;
  absl::flat_hash_map<int32_t, int32_t> article_row_;  // article id -> row + 1
  std::vector<int32_t> fallback_ids_;
  std::vector<float> fallback_scores_;
  int dim_ = 0;

  // Appends the popular list to `rec` until it holds k articles (skipping
  // ones it holds); returns how many were appended.
  int FillFromFallback(int k, Recommendation* rec) const;
};

}  // namespace hmrec
