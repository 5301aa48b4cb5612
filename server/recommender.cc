#include "server/recommender.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "bundle/bundle.h"
#include "common/status_macros.h"
#include "common/text_proto.h"
#include "search/exact_search.h"

namespace hmrec {
namespace fs = std::filesystem;

absl::StatusOr<std::unique_ptr<Recommender>> Recommender::Load(const std::string& bundle_dir,
                                                               const RecommenderOptions& options) {
  std::unique_ptr<Recommender> r(new Recommender());
  ASSIGN_OR_RETURN(r->manifest_, ReadManifest(bundle_dir));
  if (!r->manifest_.sealed()) {
    return absl::FailedPreconditionError(
        absl::StrCat("bundle ", bundle_dir, " is not sealed (run hmrec_index_builder on it)"));
  }
  RETURN_IF_ERROR(VerifyBundleFiles(bundle_dir, r->manifest_));
  // Every file the server reads must be one the manifest vouches for.
  for (const std::string required :
       {std::string(kCustomerTowerFile), std::string(kVocabulariesFile), std::string(kArticleEmbeddingsFile),
        std::string(kIndexFile), std::string(kFallbackFile), std::string(kFeatureStoreDir) + "/CURRENT"}) {
    bool listed = false;
    for (const config::BundleFile& f : r->manifest_.files()) listed = listed || f.name() == required;
    if (!listed) {
      return absl::DataLossError(absl::StrCat("bundle ", bundle_dir, ": the manifest does not list ", required,
                                              " (a sealed bundle checksums every file it serves)"));
    }
  }
  r->version_ = r->manifest_.version();
  const fs::path dir(bundle_dir);

  config::FeatureVocabularies vocab;
  RETURN_IF_ERROR(ReadTextProto((dir / kVocabulariesFile).string(), &vocab));
  ASSIGN_OR_RETURN(FeatureSpace space, FeatureSpace::FromProto(vocab));
  r->space_ = std::make_unique<FeatureSpace>(std::move(space));
  ASSIGN_OR_RETURN(r->tower_, CustomerTowerRunner::Load((dir / kCustomerTowerFile).string(),
                                                        r->manifest_.trainer().model(), *r->space_, options.device));
  r->dim_ = r->tower_->dim();
  ASSIGN_OR_RETURN(ArticleEmbeddings emb, ReadArticleEmbeddings((dir / kArticleEmbeddingsFile).string()));
  if (emb.dim != r->dim_) {
    return absl::DataLossError(
        absl::StrCat("bundle ", bundle_dir, ": embeddings have dimension ", emb.dim, ", the customer tower ", r->dim_));
  }
  for (size_t i = 0; i < emb.article_ids.size(); ++i) r->article_row_[emb.article_ids[i]] = static_cast<int32_t>(i) + 1;
  ASSIGN_OR_RETURN(r->index_, ReadArticleIndex((dir / kIndexFile).string()));
  if (r->index_->d != r->dim_ || r->index_->ntotal != static_cast<int64_t>(emb.article_ids.size())) {
    return absl::DataLossError(absl::StrCat("bundle ", bundle_dir, ": index holds ", r->index_->ntotal,
                                            " vectors of dimension ", r->index_->d, ", expected ",
                                            emb.article_ids.size(), " of ", r->dim_));
  }
  config::IndexBuilderConfig search;
  search.set_ivf_nprobe(options.ivf_nprobe);
  search.set_hnsw_ef_search(options.hnsw_ef_search);
  RETURN_IF_ERROR(ConfigureSearch(r->index_.get(), search));
  if (options.flat_search != "blocked" && options.flat_search != "blocked-fp32" && options.flat_search != "faiss") {
    return absl::InvalidArgumentError(
        absl::StrCat("flat_search is '", options.flat_search, "', expected 'blocked', 'blocked-fp32' or 'faiss'"));
  }
  if (options.flat_search != "faiss" && ExactSearch::Supports(*r->index_)) {
    // An exact index is searched by ExactSearch (same results, faster); the
    // others by faiss. A failure here is a damaged bundle, not a reason to
    // fall back quietly.
    ASSIGN_OR_RETURN(r->exact_, ExactSearch::FromFaissIndex(*r->index_, options.flat_search == "blocked"
                                                                            ? ExactSearch::Kernel::kAuto
                                                                            : ExactSearch::Kernel::kFp32));
  }
  ASSIGN_OR_RETURN(r->store_, FeatureStore::Open((dir / kFeatureStoreDir).string()));
  config::FallbackList fallback;
  RETURN_IF_ERROR(ReadTextProto((dir / kFallbackFile).string(), &fallback));
  if (fallback.article_ids_size() == 0) {
    return absl::DataLossError(absl::StrCat("bundle ", bundle_dir, ": empty fallback list"));
  }
  r->fallback_ids_.assign(fallback.article_ids().begin(), fallback.article_ids().end());
  for (double s : fallback.scores()) r->fallback_scores_.push_back(static_cast<float>(s));
  r->fallback_scores_.resize(r->fallback_ids_.size(), 0.0f);
  absl::flat_hash_set<int32_t> distinct(r->fallback_ids_.begin(), r->fallback_ids_.end());
  for (int32_t id : distinct) {
    if (!r->article_row_.contains(id)) {
      return absl::DataLossError(
          absl::StrCat("bundle ", bundle_dir, ": fallback names article ", id, ", which has no embedding"));
    }
  }
  if (static_cast<int>(distinct.size()) < options.max_k) {
    return absl::FailedPreconditionError(absl::StrCat(
        "bundle ", bundle_dir, ": its popular fallback holds ", distinct.size(),
        " distinct articles, fewer than max_k = ", options.max_k,
        " (every customer gets exactly k articles): rebuild the index with fallback_size >= ", options.max_k,
        " or lower the server's max_k"));
  }
  return r;
}

int Recommender::FillFromFallback(int k, Recommendation* rec) const {
  int added = 0;
  for (size_t i = 0; i < fallback_ids_.size() && static_cast<int>(rec->article_ids.size()) < k; ++i) {
    const int32_t id = fallback_ids_[i];
    if (std::find(rec->article_ids.begin(), rec->article_ids.end(), id) != rec->article_ids.end()) continue;
    rec->article_ids.push_back(id);
    rec->scores.push_back(fallback_scores_[i]);
    ++added;
  }
  return added;
}

absl::Status Recommender::EncodeCustomers(const std::vector<absl::string_view>& customer_ids,
                                          std::vector<int32_t>* fields, std::vector<int32_t>* history,
                                          std::vector<bool>* found,
                                          std::vector<config::CustomerRecord>* records) const {
  const size_t n = customer_ids.size();
  RETURN_IF_ERROR(store_->MultiGet(customer_ids, records, found));
  const int h = space_->history_length();
  fields->assign(n * kCustomerFields, 0);
  history->assign(n * h, 0);
  for (size_t i = 0; i < n; ++i) {
    const config::CustomerRecord& r = (*records)[i];
    if (!(*found)[i] || r.fields_size() != kCustomerFields) {
      (*found)[i] = false;
      continue;
    }
    std::copy(r.fields().begin(), r.fields().end(), fields->begin() + i * kCustomerFields);
    for (int x = 0; x < std::min(h, r.recent_article_ids_size()); ++x) {
      auto it = article_row_.find(r.recent_article_ids(x));
      (*history)[i * h + x] = it == article_row_.end() ? 0 : it->second;
    }
  }
  return absl::OkStatus();
}

absl::Status Recommender::Recommend(const std::vector<absl::string_view>& customer_ids, int k,
                                    std::vector<Recommendation>* out, StageTimes* times, int search_threads,
                                    RecommendScratch* scratch) const {
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  StageTimes local;
  StageTimes& t = times != nullptr ? *times : local;
  const size_t n = customer_ids.size();
  out->assign(n, Recommendation());
  if (n == 0) return absl::OkStatus();
  if (k < 1 || k > static_cast<int>(fallback_ids_.size())) {
    return absl::InvalidArgumentError(absl::StrCat("k = ", k, " out of range 1..", fallback_ids_.size()));
  }
  RecommendScratch& s = *scratch;
  auto t0 = Clock::now();
  RETURN_IF_ERROR(EncodeCustomers(customer_ids, &s.fields, &s.history, &s.found, &s.records));
  // Compact the known customers' rows for the tower; the rest get the fallback.
  const int h = space_->history_length();
  std::vector<size_t> known;
  known.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (!s.found[i]) {
      Recommendation& rec = (*out)[i];
      rec.fallback = true;
      rec.fallback_reason = kReasonUnknownCustomer;
      FillFromFallback(k, &rec);
      continue;
    }
    const size_t j = known.size();
    known.push_back(i);
    if (j != i) {
      std::copy_n(s.fields.begin() + i * kCustomerFields, kCustomerFields, s.fields.begin() + j * kCustomerFields);
      std::copy_n(s.history.begin() + i * h, h, s.history.begin() + j * h);
    }
  }
  t.feature_lookup = since(t0);
  if (known.empty()) return absl::OkStatus();
  const int64_t m = static_cast<int64_t>(known.size());
  s.queries.resize(m * dim_);
  t0 = Clock::now();
  RETURN_IF_ERROR(tower_->Embed(s.fields.data(), s.history.data(), m, s.queries.data()));
  t.tower = since(t0);
  t0 = Clock::now();
  if (exact_ != nullptr) {
    s.ids.resize(m * k);
    s.scores.resize(m * k);
    exact_->Search(s.queries.data(), m, k, s.ids.data(), s.scores.data(), search_threads, &s.search);
  } else {
    // faiss takes its thread count from this thread's OpenMP setting: set it
    // for the search only, so the tower's next call keeps its own.
    const int before = omp_get_max_threads();
    if (search_threads > 0) omp_set_num_threads(search_threads);
    absl::Status searched = SearchArticles(*index_, s.queries.data(), m, k, &s.ids, &s.scores);
    omp_set_num_threads(before);
    RETURN_IF_ERROR(searched);
  }
  t.search = since(t0);
  for (int64_t j = 0; j < m; ++j) {
    Recommendation& rec = (*out)[known[j]];
    const float* q = s.queries.data() + j * dim_;
    if (!std::all_of(q, q + dim_, [](float v) { return std::isfinite(v); })) {
      // A model fault (the tower produced NaN or infinity for this
      // customer): the popular list, flagged, rather than an empty answer.
      rec.fallback = true;
      rec.fallback_reason = kReasonEmbeddingNotFinite;
      FillFromFallback(k, &rec);
      continue;
    }
    for (int x = 0; x < k; ++x) {
      const int64_t id = s.ids[j * k + x];
      if (id < 0) break;
      rec.article_ids.push_back(static_cast<int32_t>(id));
      rec.scores.push_back(s.scores[j * k + x]);
    }
    rec.filled_from_popular = FillFromFallback(k, &rec);
  }
  return absl::OkStatus();
}

}  // namespace hmrec
