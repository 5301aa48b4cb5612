#include "server/recommender.h"

#include <omp.h>

#include <chrono>
#include <filesystem>

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
  if (options.flat_search != "faiss") {
    // An exact index is searched by ExactSearch (same results, faster); the
    // others by faiss.
    auto exact = ExactSearch::FromFaissIndex(
        *r->index_, options.flat_search == "blocked" ? ExactSearch::Kernel::kAuto : ExactSearch::Kernel::kFp32);
    if (exact.ok()) r->exact_ = std::move(*exact);
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
  return r;
}

absl::Status Recommender::EncodeCustomers(const std::vector<absl::string_view>& customer_ids,
                                          std::vector<int32_t>* fields, std::vector<int32_t>* history,
                                          std::vector<bool>* found) {
  const size_t n = customer_ids.size();
  RETURN_IF_ERROR(store_->MultiGet(customer_ids, &records_, found));
  const int h = space_->history_length();
  fields->assign(n * kCustomerFields, 0);
  history->assign(n * h, 0);
  for (size_t i = 0; i < n; ++i) {
    const config::CustomerRecord& r = records_[i];
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
                                    std::vector<Recommendation>* out, StageTimes* times, int search_threads) {
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  StageTimes local;
  StageTimes& t = times != nullptr ? *times : local;
  const size_t n = customer_ids.size();
  out->assign(n, Recommendation());
  if (n == 0) return absl::OkStatus();
  auto t0 = Clock::now();
  RETURN_IF_ERROR(EncodeCustomers(customer_ids, &fields_, &history_, &found_));
  // Compact the known customers' rows for the tower; the rest get the fallback.
  const int h = space_->history_length();
  std::vector<size_t> known;
  known.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (!found_[i]) {
      Recommendation& rec = (*out)[i];
      rec.fallback = true;
      const size_t m = std::min<size_t>(k, fallback_ids_.size());
      rec.article_ids.assign(fallback_ids_.begin(), fallback_ids_.begin() + m);
      rec.scores.assign(fallback_scores_.begin(), fallback_scores_.begin() + m);
      continue;
    }
    const size_t j = known.size();
    known.push_back(i);
    if (j != i) {
      std::copy_n(fields_.begin() + i * kCustomerFields, kCustomerFields, fields_.begin() + j * kCustomerFields);
      std::copy_n(history_.begin() + i * h, h, history_.begin() + j * h);
    }
  }
  t.feature_lookup = since(t0);
  if (known.empty()) return absl::OkStatus();
  const int64_t m = static_cast<int64_t>(known.size());
  queries_.resize(m * dim_);
  t0 = Clock::now();
  RETURN_IF_ERROR(tower_->Embed(fields_.data(), history_.data(), m, queries_.data()));
  t.tower = since(t0);
  t0 = Clock::now();
  if (exact_ != nullptr) {
    ids_.resize(m * k);
    scores_.resize(m * k);
    exact_->Search(queries_.data(), m, k, ids_.data(), scores_.data(), search_threads);
  } else {
    // faiss takes its thread count from this thread's OpenMP setting.
    if (search_threads > 0) omp_set_num_threads(search_threads);
    RETURN_IF_ERROR(SearchArticles(*index_, queries_.data(), m, k, &ids_, &scores_));
  }
  t.search = since(t0);
  for (int64_t j = 0; j < m; ++j) {
    Recommendation& rec = (*out)[known[j]];
    for (int x = 0; x < k; ++x) {
      const int64_t id = ids_[j * k + x];
      if (id < 0) break;
      rec.article_ids.push_back(static_cast<int32_t>(id));
      rec.scores.push_back(scores_[j * k + x]);
    }
  }
  return absl::OkStatus();
}

}  // namespace hmrec
