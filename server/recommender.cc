#include "server/recommender.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <numeric>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bundle/bundle.h"
#include "candidates/ranking_config.h"
#include "common/status_macros.h"
#include "common/text_proto.h"
#include "data/dates.h"
#include "search/exact_search.h"

namespace hmrec {
namespace fs = std::filesystem;

namespace {

// The served scores' one scale, [0, 1], higher first (recommendation.h).
// The ranker's margin through a logistic (rows the cascade scored with its
// first trees only carry that partial margin minus kDropped: theirs).
float RankerScore(float margin) {
  if (margin < -kDropped / 2) margin += kDropped;
  return 1.0f / (1.0f + std::exp(-margin));
}
// A two-tower cosine, [-1, 1], onto [0, 1].
float CosineScore(float cosine) { return std::clamp((1.0f + cosine) / 2.0f, 0.0f, 1.0f); }
// False when the tower produced NaN or infinity in an embedding (a model fault).
bool AllFinite(const float* v, int n) {
  return std::all_of(v, v + n, [](float x) { return std::isfinite(x); });
}
// Moves the rows of the found customers (EncodeCustomers' output, `h`
// history slots a row) to the front, in order, and returns their indices:
// the tower embeds only them.
std::vector<size_t> CompactFound(const std::vector<bool>& found, int h, std::vector<int32_t>* fields,
                                 std::vector<int32_t>* history) {
  std::vector<size_t> known;
  known.reserve(found.size());
  for (size_t i = 0; i < found.size(); ++i) {
    if (!found[i]) continue;
    const size_t j = known.size();
    known.push_back(i);
    if (j != i) {
      std::copy_n(fields->begin() + i * kCustomerFields, kCustomerFields, fields->begin() + j * kCustomerFields);
      std::copy_n(history->begin() + i * h, h, history->begin() + j * h);
    }
  }
  return known;
}

}  // namespace

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
        std::string(kIndexFile), std::string(kFallbackFile), std::string(kFeatureStoreDir) + "/CURRENT",
        std::string(kArticleTableFile)}) {
    if (!ManifestLists(r->manifest_, required)) {
      return absl::DataLossError(absl::StrCat("bundle ", bundle_dir, ": the manifest does not list ", required,
                                              " (a sealed bundle checksums every file it serves)"));
    }
  }
  r->version_ = r->manifest_.version();
  r->new_article_position_ = options.new_article_position;
  ASSIGN_OR_RETURN(r->as_of_, ParseDate(r->manifest_.features_as_of()));
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
  // Rows past the trained ones were added by a catalogue refresh; the
  // manifest says how many.
  if (r->space_->num_articles() > emb.article_ids.size() ||
      static_cast<int64_t>(emb.article_ids.size() - r->space_->num_articles()) !=
          r->manifest_.catalogue_added_articles()) {
    return absl::DataLossError(absl::StrCat("bundle ", bundle_dir, ": ", emb.article_ids.size(),
                                            " article embeddings, ", r->space_->num_articles(),
                                            " trained articles and ", r->manifest_.catalogue_added_articles(),
                                            " added by a catalogue refresh do not add up"));
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
  ASSIGN_OR_RETURN(ArticleTable articles, ArticleTable::Load((dir / kArticleTableFile).string()));
  if (articles.size() != emb.article_ids.size()) {
    return absl::DataLossError(absl::StrCat("bundle ", bundle_dir, ": the article table has ", articles.size(),
                                            " articles, the embeddings ", emb.article_ids.size()));
  }
  r->articles_ = std::make_unique<ArticleTable>(std::move(articles));

  if (!r->manifest_.ranking_schema().empty() && options.ranking) {
    if (r->manifest_.ranking_schema() != kRankingSchema) {
      return absl::FailedPreconditionError(absl::StrCat(
          "bundle ", bundle_dir, ": its ranker was trained on the features '", r->manifest_.ranking_schema(),
          "', this server computes '", kRankingSchema, "' (serve it with ranking off, or retrain)"));
    }
    for (const char* required : {kRankerFile, kRankingTablesFile}) {
      if (!ManifestLists(r->manifest_, required))
        return absl::DataLossError(absl::StrCat("bundle ", bundle_dir, ": the manifest does not list ", required));
    }
    r->ranking_config_ = WithRankingDefaults(r->manifest_.trainer().ranking());
    const std::string evaluator =
        !options.ranker_evaluator.empty() ? options.ranker_evaluator : r->ranking_config_.ranker().evaluator();
    ASSIGN_OR_RETURN(r->ranker_, Ranker::Load((dir / kRankerFile).string(), options.ranker_threads, evaluator));
    if (r->ranker_->num_features() != NumRankingFeatures()) {
      return absl::DataLossError(absl::StrCat("bundle ", bundle_dir, ": the ranker reads ", r->ranker_->num_features(),
                                              " features, the schema has ", NumRankingFeatures()));
    }
    ASSIGN_OR_RETURN(RankingTables tables, RankingTables::Load((dir / kRankingTablesFile).string()));
    if (tables.num_articles() != emb.article_ids.size()) {
      return absl::DataLossError(absl::StrCat("bundle ", bundle_dir, ": ranking tables of ", tables.num_articles(),
                                              " articles, embeddings of ", emb.article_ids.size()));
    }
    if (tables.day() != r->as_of_) {
      return absl::DataLossError(absl::StrCat("bundle ", bundle_dir, ": ranking tables as of day ", tables.day(),
                                              ", the features as of ", r->manifest_.features_as_of()));
    }
    r->tables_ = std::make_unique<RankingTables>(std::move(tables));
    r->limits_ = HistoryLimitsOf(r->ranking_config_);
    // The two-tower source's own search, over the articles it may propose
    // (labels: article rows), whatever index serves the retrieval-only path.
    const std::vector<int64_t> rows =
        TwoTowerSearchRows(*r->tables_, r->ranking_config_, static_cast<int64_t>(r->space_->num_articles()));
    r->two_tower_search_ = ExactSearch::OverRows(emb.values.data(), r->dim_, rows);
    r->two_tower_rows_.assign(emb.article_ids.size(), 0);
    for (int64_t row : rows) r->two_tower_rows_[static_cast<size_t>(row)] = 1;
  }
  r->article_vectors_ = std::move(emb.values);
  {
    const size_t n = r->articles_->size();
    std::vector<int32_t> codes(n), types(n);
    for (uint32_t row = 0; row < n; ++row) {
      codes[row] = r->articles_->product_code(row);
      types[row] = r->tables_ != nullptr ? r->tables_->attributes(row).product_type
                                         : static_cast<int32_t>(r->articles_->ValueId(row, ArticleTable::kProductType));
    }
    r->similar_ = std::make_unique<SimilarArticles>(r->article_vectors_.data(), r->dim_, std::move(codes),
                                                    std::move(types), r->tables_.get());
  }
  // Restricted searches of up to twice the catalogue's rows in all: a few
  // wide filters or many narrow ones.
  r->restricted_ = std::make_unique<RestrictedSourcesCache>(2 * r->articles_->size() + 1);
  return r;
}

// A request's filters resolved against this bundle: allowed value ids of
// each include list (empty = any) and the excluded article ids.
struct Recommender::Filter {
  const RequestFilters* filters = nullptr;
  // The merchandising rules' unavailable rows (RequestOptions; may be null).
  const std::vector<uint8_t>* unavailable = nullptr;
  absl::flat_hash_set<uint32_t> index_groups, product_groups, garment_groups;

  Filter(const RequestFilters& f, const std::vector<uint8_t>* unavailable_rows, const ArticleTable& articles)
      : filters(&f), unavailable(unavailable_rows) {
    auto resolve = [&](const std::vector<std::string>& names, int column, absl::flat_hash_set<uint32_t>* out) {
      for (const std::string& n : names) {
        const int64_t id = articles.FindValue(column, n);
        // Checked at submission; a value the (swapped-in) bundle lacks
        // matches nothing, so the include list still restricts.
        out->insert(id >= 0 ? static_cast<uint32_t>(id) : UINT32_MAX);
      }
    };
    resolve(f.index_group_names, ArticleTable::kIndexGroup, &index_groups);
    resolve(f.product_group_names, ArticleTable::kProductGroup, &product_groups);
    resolve(f.garment_group_names, ArticleTable::kGarmentGroup, &garment_groups);
    // The attribute lists, canonical (sorted value ids per list): requests
    // that allow the same articles share their restricted sources.
    if (!index_groups.empty() || !product_groups.empty() || !garment_groups.empty()) {
      for (const auto* set : {&index_groups, &product_groups, &garment_groups}) {
        std::vector<uint32_t> ids(set->begin(), set->end());
        std::sort(ids.begin(), ids.end());
        absl::StrAppend(&key, absl::StrJoin(ids, ","), ";");
      }
    }
  }

  // Set when the request has attribute lists (key not empty).
  std::string key;
  std::shared_ptr<const RestrictedSources> restricted;

  // One article of the fill order (the popular list, then the catalogue)
  // that the request's own filters let through.
  struct Fill {
    uint32_t row;
    int32_t id;
    float score;  // the popular list's (0 for the rest of the catalogue)
    int rank;     // its place in the popular list, or past it
  };
  // The fill order's allowed articles found so far, and where the scan of
  // the fill order stopped: built once per request and batch, as far as
  // its customers need (Recommender::FillFromPopular).
  mutable std::vector<Fill> fill;
  mutable size_t fill_scanned = 0;

  // True when `row` (article `id`) passes the request's filters, whoever
  // the customer.
  bool AllowsArticle(uint32_t row, int32_t id, const ArticleTable& articles) const {
    return (unavailable == nullptr || (*unavailable)[row] == 0) && !filters->exclude_article_ids.contains(id) &&
           AllowsAttributes(row, articles);
  }

  // True when the merchandising rules keep `row` out.
  bool Unavailable(uint32_t row) const { return unavailable != nullptr && (*unavailable)[row] != 0; }

  // True when `row` is in every attribute list of the request.
  bool AllowsAttributes(uint32_t row, const ArticleTable& articles) const {
    auto in = [&](const absl::flat_hash_set<uint32_t>& allowed, int column) {
      return allowed.empty() || allowed.contains(articles.ValueId(row, column));
    };
    return in(index_groups, ArticleTable::kIndexGroup) && in(product_groups, ArticleTable::kProductGroup) &&
           in(garment_groups, ArticleTable::kGarmentGroup);
  }

  // True when `row` (article `id`) may be recommended to a customer whose
  // history is `view` (null: none).
  bool Allows(uint32_t row, int32_t id, const CustomerView* view, const ArticleTable& articles) const {
    return AllowsArticle(row, id, articles) && AllowsFor(row, view);
  }

  // The customer's part: not bought within the request's window.
  bool AllowsFor(uint32_t row, const CustomerView* view) const {
    if (view != nullptr && filters->exclude_purchased_within_days > 0) {
      const int32_t since = view->as_of - filters->exclude_purchased_within_days;
      for (auto p = view->purchases.rbegin(); p != view->purchases.rend() && p->day >= since; ++p) {
        if (p->article == row) return false;
      }
    }
    return true;
  }
};

const Recommender::Filter& Recommender::FilterOf(const RequestOptions& o, FilterCache* cache) const {
  std::unique_ptr<Filter>& f = (*cache)[&o];
  if (f == nullptr) {
    f = std::make_unique<Filter>(o.filters, o.unavailable_rows, *articles_);
    f->restricted = RestrictedOf(*f);
  }
  return *f;
}

std::shared_ptr<const RestrictedSources> Recommender::RestrictedOf(const Filter& filter) const {
  if (filter.key.empty()) return nullptr;
  return restricted_->Get(filter.key, [&] {
    const size_t n = articles_->size();
    std::vector<uint8_t> allowed(n, 0);
    for (size_t row = 0; row < n; ++row) allowed[row] = filter.AllowsAttributes(static_cast<uint32_t>(row), *articles_);
    auto r = std::make_shared<RestrictedSources>(ArticleFilter(std::move(allowed), tables_.get()));
    // The rows the search may propose: with a ranker, the allowed ones among
    // the two-tower source's (all allowed ones when fewer than its
    // candidates, the rule of TwoTowerSearchRows); without, every allowed
    // one.
    std::vector<int64_t> rows;
    if (ranker_ != nullptr) {
      for (int64_t row : r->filter.rows()) {
        if (two_tower_rows_[static_cast<size_t>(row)] != 0) rows.push_back(row);
      }
      if (static_cast<int64_t>(rows.size()) < ranking_config_.two_tower_candidates()) rows = r->filter.rows();
    } else {
      rows = r->filter.rows();
    }
    if (!rows.empty()) r->search = ExactSearch::OverRows(article_vectors_.data(), dim_, rows);
    return r;
  });
}

absl::Status Recommender::SearchKnown(int64_t m, int search_k, const std::vector<const RestrictedSources*>& restricted,
                                      int threads, RecommendScratch* s) const {
  s->ids.resize(m * search_k);
  s->scores.resize(m * search_k);
  // The bundle's search of `count` gathered queries.
  auto search_all = [&](const float* q, int64_t count, int64_t* ids, float* scores) -> absl::Status {
    if (ranker_ != nullptr) {
      two_tower_search_->Search(q, count, search_k, ids, scores, threads, &s->search);
    } else if (exact_ != nullptr) {
      exact_->Search(q, count, search_k, ids, scores, threads, &s->search);
    } else {
      // faiss takes its thread count from this thread's OpenMP setting: set
      // it for the search only, so the tower's next call keeps its own.
      const int before = omp_get_max_threads();
      if (threads > 0) omp_set_num_threads(threads);
      std::vector<int64_t> i;
      std::vector<float> d;
      absl::Status searched = SearchArticles(*index_, q, count, search_k, &i, &d);
      omp_set_num_threads(before);
      RETURN_IF_ERROR(searched);
      std::copy(i.begin(), i.end(), ids);
      std::copy(d.begin(), d.end(), scores);
    }
    return absl::OkStatus();
  };
  if (std::all_of(restricted.begin(), restricted.end(), [](const RestrictedSources* r) { return r == nullptr; })) {
    return search_all(s->queries.data(), m, s->ids.data(), s->scores.data());
  }
  // Customers grouped by their filter's sources (null: the bundle's search),
  // each group's queries gathered, searched at once and scattered back.
  absl::flat_hash_map<const RestrictedSources*, std::vector<int64_t>> groups;
  for (int64_t j = 0; j < m; ++j) groups[restricted[static_cast<size_t>(j)]].push_back(j);
  for (const auto& [sources, members] : groups) {
    const int64_t g = static_cast<int64_t>(members.size());
    s->group_queries.resize(g * dim_);
    s->group_ids.resize(g * search_k);
    s->group_scores.resize(g * search_k);
    for (int64_t x = 0; x < g; ++x) {
      std::copy_n(s->queries.data() + members[x] * dim_, dim_, s->group_queries.data() + x * dim_);
    }
    if (sources == nullptr) {
      RETURN_IF_ERROR(search_all(s->group_queries.data(), g, s->group_ids.data(), s->group_scores.data()));
    } else if (sources->search == nullptr) {
      std::fill(s->group_ids.begin(), s->group_ids.end(), -1);  // the filter allows no article
      std::fill(s->group_scores.begin(), s->group_scores.end(), -std::numeric_limits<float>::infinity());
    } else {
      sources->search->Search(s->group_queries.data(), g, search_k, s->group_ids.data(), s->group_scores.data(),
                              threads, &s->search);
      if (ranker_ == nullptr) {
        // Its labels are rows; the retrieval-only path reads article ids.
        for (int64_t& id : s->group_ids) {
          if (id >= 0) id = articles_->article_id(static_cast<uint32_t>(id));
        }
      }
    }
    for (int64_t x = 0; x < g; ++x) {
      std::copy_n(s->group_ids.data() + x * search_k, search_k, s->ids.data() + members[x] * search_k);
      std::copy_n(s->group_scores.data() + x * search_k, search_k, s->scores.data() + members[x] * search_k);
    }
  }
  return absl::OkStatus();
}

absl::Status Recommender::CheckFilters(const RequestFilters& f) const {
  struct List {
    const char* field;
    const std::vector<std::string>* names;
    int column;
  };
  for (const List& l : {List{"filters.index_group_names", &f.index_group_names, ArticleTable::kIndexGroup},
                        List{"filters.product_group_names", &f.product_group_names, ArticleTable::kProductGroup},
                        List{"filters.garment_group_names", &f.garment_group_names, ArticleTable::kGarmentGroup}}) {
    for (const std::string& n : *l.names) {
      if (articles_->FindValue(l.column, n) < 0) {
        return absl::InvalidArgumentError(absl::StrCat(l.field, ": no article has ", ArticleTable::ColumnName(l.column),
                                                       " '", absl::CHexEscape(n.substr(0, 80)), "'"));
      }
    }
  }
  return absl::OkStatus();
}

int Recommender::FillFromPopular(int k, const Filter& filter, const CustomerView* view, Recommendation* rec,
                                 bool explain) const {
  int added = 0;
  // The popular list's own scale (time-decayed sales) as a share of its
  // best seller's: in [0, 1] like the other scores.
  const float best = fallback_scores_.empty() || !(fallback_scores_[0] > 0) ? 1.0f : fallback_scores_[0];
  // The fill order: the popular list, then (a narrow filter can pass few of
  // it) the rest of the catalogue in its order, so that k articles come back
  // when k exist. Its articles that pass the request's filters are found
  // once per request and batch; each customer only skips what it holds
  // already and what it bought within the window.
  const size_t total = fallback_ids_.size() + articles_->size();
  for (size_t f = 0; static_cast<int>(rec->article_ids.size()) < k; ++f) {
    while (f >= filter.fill.size() && filter.fill_scanned < total) {
      const size_t i = filter.fill_scanned++;
      Filter::Fill next;
      if (i < fallback_ids_.size()) {
        next = {static_cast<uint32_t>(article_row_.at(fallback_ids_[i]) - 1), fallback_ids_[i], fallback_scores_[i],
                static_cast<int>(i)};
      } else {
        const uint32_t row = static_cast<uint32_t>(i - fallback_ids_.size());
        next = {row, articles_->article_id(row), 0.0f, static_cast<int>(i)};
      }
      if (filter.AllowsArticle(next.row, next.id, *articles_)) filter.fill.push_back(next);
    }
    if (f >= filter.fill.size()) break;  // the whole catalogue scanned
    const Filter::Fill& c = filter.fill[f];
    if (!filter.AllowsFor(c.row, view)) continue;
    if (std::find(rec->article_ids.begin(), rec->article_ids.end(), c.id) != rec->article_ids.end()) continue;
    rec->article_ids.push_back(c.id);
    rec->article_rows.push_back(c.row);
    rec->scores.push_back(std::clamp(c.score / best, 0.0f, 1.0f));
    if (explain) {
      Explanation e;
      e.reasons.push_back({kPopularSource, c.rank, c.score, 0});
      e.ranker_score = c.score;
      rec->explanations.push_back(std::move(e));
    }
    ++added;
  }
  rec->fewer_than_k = static_cast<int>(rec->article_ids.size()) < k;
  // One scale, best first: an article never scores above the one before it
  // (a row the cascade's partial model placed, or a fill, may estimate
  // higher on its own; its place says it is not).
  for (size_t i = 1; i < rec->scores.size(); ++i) rec->scores[i] = std::min(rec->scores[i], rec->scores[i - 1]);
  return added;
}

std::vector<std::string> Recommender::ClubStatusNames() const {
  const int64_t n = space_->CustomerFieldSizes()[1];
  std::vector<std::string> names(static_cast<size_t>(std::max<int64_t>(n, 1)));
  for (int64_t v = 1; v < n; ++v) names[static_cast<size_t>(v)] = space_->CustomerFieldText(1, static_cast<int32_t>(v));
  return names;
}

absl::Status Recommender::CheckUnavailableRows(const RequestOptions& o) const {
  if (o.unavailable_rows != nullptr && o.unavailable_rows->size() != articles_->size()) {
    return absl::InternalError(absl::StrCat("unavailable rows for ", o.unavailable_rows->size(),
                                            " articles given to a bundle of ", articles_->size()));
  }
  return absl::OkStatus();
}

absl::Status Recommender::CheckK(int k) const {
  if (k < 1 || k > static_cast<int>(fallback_ids_.size())) {
    return absl::InvalidArgumentError(absl::StrCat("k = ", k, " out of range 1..", fallback_ids_.size()));
  }
  return absl::OkStatus();
}

absl::Status Recommender::Similar(const std::vector<absl::string_view>& customer_ids,
                                  const std::vector<const RequestOptions*>& options, std::vector<Recommendation>* out,
                                  double* seconds, int threads, SimilarScratch* s, const CustomerEvents* events) const {
  const auto start = std::chrono::steady_clock::now();
  const size_t n = options.size();
  if (customer_ids.size() != n) return absl::InternalError("Similar: one customer id (or none) a request");
  out->assign(n, Recommendation());
  // Each request's filters with its query articles (and, when asked, their
  // other variants) excluded: the sources and the popular fill skip them alike.
  std::vector<RequestOptions> local(n);
  std::vector<int64_t> query_of(n, -1);  // position in s->anchors, -1: no known article
  s->anchors.clear();
  for (size_t i = 0; i < n; ++i) {
    const RequestOptions& o = *options[i];
    if (o.similar == nullptr) return absl::InternalError("Similar: a request without its query articles");
    RETURN_IF_ERROR(CheckK(o.k));
    RETURN_IF_ERROR(CheckUnavailableRows(o));
    local[i] = o;
    local[i].similar = nullptr;
    std::vector<uint32_t> rows;
    for (int32_t id : o.similar->article_ids) {
      auto it = article_row_.find(id);
      if (it == article_row_.end()) {
        (*out)[i].unknown_article_ids.push_back(id);
        continue;
      }
      const uint32_t row = static_cast<uint32_t>(it->second - 1);
      if (std::find(rows.begin(), rows.end(), row) != rows.end()) continue;
      rows.push_back(row);
      local[i].filters.exclude_article_ids.insert(id);
      if (o.similar->exclude_same_product_code) {
        for (uint32_t other : similar_->product_rows(row)) {
          local[i].filters.exclude_article_ids.insert(articles_->article_id(other));
        }
      }
    }
    if (!rows.empty()) {
      query_of[i] = static_cast<int64_t>(s->anchors.size());
      s->anchors.push_back(std::move(rows));
    }
  }
  FilterCache cache;
  std::vector<const Filter*> filter_of_query(s->anchors.size());
  for (size_t i = 0; i < n; ++i) {
    if (query_of[i] >= 0) filter_of_query[static_cast<size_t>(query_of[i])] = &FilterOf(local[i], &cache);
  }
  similar_->Find(
      s->anchors, similar_mix_,
      [&](size_t q, uint32_t row) {
        return filter_of_query[q]->AllowsArticle(row, articles_->article_id(row), *articles_);
      },
      threads, &s->similar, &s->candidates);
  RETURN_IF_ERROR(PersonaliseSimilar(customer_ids, query_of, events, s, out));
  for (size_t i = 0; i < n; ++i) {
    const RequestOptions& o = local[i];
    Recommendation& rec = (*out)[i];
    const float best = SimilarArticles::MaxScore(similar_mix_, rec.personalised);
    const Filter& filter = FilterOf(o, &cache);
    if (query_of[i] < 0) {
      rec.fallback = true;
      rec.fallback_reason = "no known article";
    } else {
      for (const SimilarCandidate& c : s->candidates[static_cast<size_t>(query_of[i])]) {
        if (static_cast<int>(rec.article_ids.size()) >= o.k) break;
        rec.article_ids.push_back(articles_->article_id(c.row));
        rec.article_rows.push_back(c.row);
        rec.scores.push_back(std::clamp(c.score / best, 0.0f, 1.0f));
        if (o.explain) {
          Explanation e;
          for (int src = 0; src < kNumSimilarSources; ++src) {
            if (!c.from(src)) continue;
            const bool anchored = src == kSimilarBoughtTogether || src == kSimilarSameProduct;
            e.reasons.push_back(
                {kSimilarSourceBase + src, c.rank[static_cast<size_t>(src)], c.source_score[static_cast<size_t>(src)],
                 anchored && c.anchor >= 0 ? articles_->article_id(static_cast<uint32_t>(c.anchor)) : 0});
          }
          if (c.customer_rank >= 0) {
            e.reasons.push_back({kSimilarSourceBase + kSimilarForCustomer, c.customer_rank, c.customer_score, 0});
          }
          e.ranker_score = c.score;
          rec.explanations.push_back(std::move(e));
        }
      }
    }
    rec.filled_from_popular = FillFromPopular(o.k, filter, nullptr, &rec, o.explain);
  }
  if (seconds != nullptr) *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return absl::OkStatus();
}

absl::Status Recommender::PersonaliseSimilar(const std::vector<absl::string_view>& customer_ids,
                                             const std::vector<int64_t>& query_of, const CustomerEvents* events,
                                             SimilarScratch* s, std::vector<Recommendation>* out) const {
  std::vector<absl::string_view> who;
  std::vector<size_t> at;
  CustomerEvents their;
  for (size_t i = 0; i < customer_ids.size(); ++i) {
    if (customer_ids[i].empty() || query_of[i] < 0) continue;
    who.push_back(customer_ids[i]);
    at.push_back(i);
    if (events != nullptr && i < events->size()) their.push_back((*events)[i]);
  }
  if (who.empty()) return absl::OkStatus();
  std::vector<int> applied;
  RETURN_IF_ERROR(EncodeCustomers(who, &s->fields, &s->history, &s->found, &s->records,
                                  events != nullptr ? &their : nullptr, &applied));
  // Unknown customers keep the unpersonalised order (the tower skips them).
  const std::vector<size_t> known = CompactFound(s->found, space_->history_length(), &s->fields, &s->history);
  if (known.empty()) return absl::OkStatus();
  s->embeddings.resize(known.size() * static_cast<size_t>(dim_));
  RETURN_IF_ERROR(
      tower_->Embed(s->fields.data(), s->history.data(), static_cast<int64_t>(known.size()), s->embeddings.data()));
  for (size_t k = 0; k < known.size(); ++k) {
    const float* u = s->embeddings.data() + k * static_cast<size_t>(dim_);
    if (!AllFinite(u, dim_)) continue;  // a diverged tower: the unpersonalised order too
    const size_t j = known[k];
    const size_t i = at[j];
    similar_->Personalise(u, similar_mix_, &s->candidates[static_cast<size_t>(query_of[i])]);
    (*out)[i].personalised = true;
    (*out)[i].events_applied = applied[j];
  }
  return absl::OkStatus();
}

int Recommender::ApplyEvents(const std::vector<config::StoredEvent>& events, bool known,
                             config::CustomerRecord* r) const {
  // The bundle's clock: events count as bought on its last day.
  const int32_t day = as_of_ - 1;
  std::vector<const config::StoredEvent*> fresh;
  for (const config::StoredEvent& e : events) {
    if (AppliesEvent(e)) fresh.push_back(&e);
  }
  if (fresh.empty()) return 0;
  if (!known) {
    r->Clear();
    r->mutable_fields()->Resize(kCustomerFields, 0);  // every profile field unknown
    r->set_age(-1);
  }
  // Recording order within the day (the stored lists are oldest first).
  std::stable_sort(fresh.begin(), fresh.end(),
                   [](const config::StoredEvent* a, const config::StoredEvent* b) { return a->day() < b->day(); });
  for (const config::StoredEvent* e : fresh) {
    r->add_purchase_article_ids(e->article_id());
    r->add_purchase_days(day);
    r->add_purchase_prices(e->price());
    r->mutable_purchase_channels()->push_back(static_cast<char>(e->channel()));
  }
  // The tower's history is most recent first.
  google::protobuf::RepeatedField<int32_t> recent;
  for (auto e = fresh.rbegin(); e != fresh.rend(); ++e) recent.Add((*e)->article_id());
  recent.MergeFrom(r->recent_article_ids());
  r->mutable_recent_article_ids()->Swap(&recent);
  // Bundles before purchase_count: the least count of the stored band.
  int64_t before = r->purchase_count();
  if (before == 0) before = FeatureSpace::HistoryCountBandFloor(r->fields(6));
  r->set_purchase_count(static_cast<int32_t>(before + static_cast<int64_t>(fresh.size())));
  r->set_fields(6, FeatureSpace::HistoryCountBand(r->purchase_count()));
  r->set_fields(7, FeatureSpace::DaysBand(as_of_ - day));
  return static_cast<int>(fresh.size());
}

absl::Status Recommender::EncodeCustomers(const std::vector<absl::string_view>& customer_ids,
                                          std::vector<int32_t>* fields, std::vector<int32_t>* history,
                                          std::vector<bool>* found, std::vector<config::CustomerRecord>* records,
                                          const CustomerEvents* events, std::vector<int>* applied) const {
  const size_t n = customer_ids.size();
  RETURN_IF_ERROR(store_->MultiGet(customer_ids, records, found));
  if (applied != nullptr) applied->assign(n, 0);
  const int h = space_->history_length();
  // The tower knows the trained rows only: an article a catalogue refresh
  // added (a row past them) is left out of its history, like an unknown one.
  const int32_t trained = static_cast<int32_t>(space_->num_articles());
  fields->assign(n * kCustomerFields, 0);
  history->assign(n * h, 0);
  for (size_t i = 0; i < n; ++i) {
    config::CustomerRecord& r = (*records)[i];
    const bool known = (*found)[i] && r.fields_size() == kCustomerFields;
    const int added = events != nullptr && i < events->size() ? ApplyEvents((*events)[i], known, &r) : 0;
    if (applied != nullptr) (*applied)[i] = added;
    if (!known && added == 0) {
      (*found)[i] = false;
      continue;
    }
    (*found)[i] = true;
    std::copy(r.fields().begin(), r.fields().end(), fields->begin() + i * kCustomerFields);
    for (int x = 0; x < std::min(h, r.recent_article_ids_size()); ++x) {
      auto it = article_row_.find(r.recent_article_ids(x));
      (*history)[i * h + x] = it == article_row_.end() || it->second > trained ? 0 : it->second;
    }
  }
  return absl::OkStatus();
}

absl::Status Recommender::Recommend(const std::vector<absl::string_view>& customer_ids, int k,
                                    std::vector<Recommendation>* out, StageTimes* times, int search_threads,
                                    RecommendScratch* scratch) const {
  RequestOptions options;
  options.k = k;
  const std::vector<const RequestOptions*> per_id(customer_ids.size(), &options);
  return Recommend(customer_ids, per_id, out, times, search_threads, scratch);
}

absl::Status Recommender::Recommend(const std::vector<absl::string_view>& customer_ids,
                                    const std::vector<const RequestOptions*>& options, std::vector<Recommendation>* out,
                                    StageTimes* times, int search_threads, RecommendScratch* scratch,
                                    const CustomerEvents* events) const {
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  StageTimes local;
  StageTimes& t = times != nullptr ? *times : local;
  const size_t n = customer_ids.size();
  out->assign(n, Recommendation());
  if (n == 0) return absl::OkStatus();
  if (options.size() != n) return absl::InternalError("one RequestOptions per customer id expected");
  FilterCache filters;
  int max_k = 0;
  bool filtered = false;
  for (const RequestOptions* o : options) {
    RETURN_IF_ERROR(CheckK(o->k));
    RETURN_IF_ERROR(CheckUnavailableRows(*o));
    max_k = std::max(max_k, o->k);
    filtered = filtered || !o->filters.empty() || o->unavailable_rows != nullptr;
  }
  RecommendScratch& s = *scratch;
  auto t0 = Clock::now();
  RETURN_IF_ERROR(
      EncodeCustomers(customer_ids, &s.fields, &s.history, &s.found, &s.records, events, &s.events_applied));
  for (size_t i = 0; i < n; ++i) {
    (*out)[i].events_applied = s.events_applied[i];
    if (s.found[i]) {
      (*out)[i].customer_age = s.records[i].age();
      (*out)[i].club_status = s.records[i].fields_size() > 1 ? s.records[i].fields(1) : 0;
    }
  }
  // Compact the known customers' rows for the tower; the rest get the fallback.
  const std::vector<size_t> known = CompactFound(s.found, space_->history_length(), &s.fields, &s.history);
  for (size_t i = 0; i < n; ++i) {
    if (s.found[i]) continue;
    Recommendation& rec = (*out)[i];
    rec.fallback = true;
    rec.fallback_reason = kReasonUnknownCustomer;
    FillFromPopular(options[i]->k, FilterOf(*options[i], &filters), nullptr, &rec, options[i]->explain);
  }
  t.feature_lookup = since(t0);
  if (known.empty()) return absl::OkStatus();
  const int64_t m = static_cast<int64_t>(known.size());
  s.queries.resize(m * dim_);
  t0 = Clock::now();
  RETURN_IF_ERROR(tower_->Embed(s.fields.data(), s.history.data(), m, s.queries.data()));
  t.tower = since(t0);
  // The search: the two-tower source's candidates when ranking, else the
  // list itself (with room for what filters take out).
  const int search_k = ranker_ != nullptr ? ranking_config_.two_tower_candidates()
                                          : (filtered ? std::min<int>(4 * max_k + 32, article_row_.size()) : max_k);
  t0 = Clock::now();
  // A request's attribute filters narrow the sources (the search first):
  // their customers are searched within the allowed articles.
  std::vector<const RestrictedSources*> restricted(known.size());
  for (size_t j = 0; j < known.size(); ++j) restricted[j] = FilterOf(*options[known[j]], &filters).restricted.get();
  RETURN_IF_ERROR(SearchKnown(m, search_k, restricted, search_threads, &s));
  t.search = since(t0);
  if (ranker_ != nullptr) return Rank(known, search_k, options, out, &t, search_threads, &s, &filters, restricted);

  for (int64_t j = 0; j < m; ++j) {
    const size_t i = known[j];
    Recommendation& rec = (*out)[i];
    const RequestOptions& o = *options[i];
    const Filter& filter = FilterOf(o, &filters);
    const float* q = s.queries.data() + j * dim_;
    if (!AllFinite(q, dim_)) {
      // A model fault (the tower produced NaN or infinity for this
      // customer): the popular list, flagged, rather than an empty answer.
      rec.fallback = true;
      rec.fallback_reason = kReasonEmbeddingNotFinite;
      FillFromPopular(o.k, filter, nullptr, &rec, o.explain);
      continue;
    }
    CustomerView view;
    const CustomerView* v = nullptr;
    if (o.filters.exclude_purchased_within_days > 0) {
      // The recent purchases the filter needs: from the tower's history ids
      // (the ranking's history is only stored with a ranker).
      const config::CustomerRecord& r = s.records[i];
      view.as_of = as_of_;
      for (int x = 0; x < r.purchase_article_ids_size(); ++x) {
        auto it = article_row_.find(r.purchase_article_ids(x));
        if (it != article_row_.end())
          view.purchases.push_back({static_cast<uint32_t>(it->second - 1), r.purchase_days(x)});
      }
      v = &view;
    }
    for (int x = 0; x < search_k && static_cast<int>(rec.article_ids.size()) < o.k; ++x) {
      const int64_t id = s.ids[j * search_k + x];
      if (id < 0) break;
      const uint32_t row = static_cast<uint32_t>(article_row_.at(static_cast<int32_t>(id)) - 1);
      if (!filter.Allows(row, static_cast<int32_t>(id), v, *articles_)) {
        rec.unavailable_removed += filter.Unavailable(row);
        continue;
      }
      rec.article_ids.push_back(static_cast<int32_t>(id));
      rec.article_rows.push_back(row);
      rec.scores.push_back(CosineScore(s.scores[j * search_k + x]));
      if (o.explain) {
        Explanation e;
        e.reasons.push_back({kTwoTower, x, s.scores[j * search_k + x], 0});
        e.ranker_score = s.scores[j * search_k + x];
        rec.explanations.push_back(std::move(e));
      }
    }
    rec.filled_from_popular = FillFromPopular(o.k, filter, v, &rec, o.explain);
  }
  return absl::OkStatus();
}

void Recommender::BuildCandidates(const config::CustomerRecord& r, int64_t j, int search_k, const RecommendScratch& s,
                                  RecommendScratch::PerThread* t, CustomerView* view,
                                  std::vector<Candidate>* candidates, const ArticleFilter* filter) const {
  // The customer as the ranking saw them offline: the stored bounded
  // history (the same limits), as of the bundle's day.
  view->age = static_cast<int16_t>(r.age());
  view->as_of = as_of_;
  view->purchases.clear();
  for (int x = 0; x < r.purchase_article_ids_size(); ++x) {
    auto it = article_row_.find(r.purchase_article_ids(x));
    if (it == article_row_.end()) continue;
    view->purchases.push_back({static_cast<uint32_t>(it->second - 1), r.purchase_days(x), r.purchase_prices(x),
                               x < static_cast<int>(r.purchase_channels().size())
                                   ? static_cast<uint8_t>(r.purchase_channels()[x])
                                   : uint8_t{0}});
  }
  ApplyLimits(limits_, view);
  TwoTowerHits hits{s.ids.data() + j * search_k, s.scores.data() + j * search_k, search_k,  // article rows
                    s.queries.data() + j * dim_, dim_};
  GenerateCandidates(*view, *tables_, hits, ranking_config_, &t->candidates, candidates, filter);
}

absl::StatusOr<Recommender::RankingInputs> Recommender::RankingInputsOf(absl::string_view customer_id) const {
  if (ranker_ == nullptr) return absl::FailedPreconditionError("this bundle is served without a ranker");
  RecommendScratch s;
  const std::vector<absl::string_view> ids = {customer_id};
  RETURN_IF_ERROR(EncodeCustomers(ids, &s.fields, &s.history, &s.found, &s.records));
  if (!s.found[0]) return absl::NotFoundError(absl::StrCat("customer ", customer_id, " is not in the feature store"));
  s.queries.resize(dim_);
  RETURN_IF_ERROR(tower_->Embed(s.fields.data(), s.history.data(), 1, s.queries.data()));
  const int search_k = ranking_config_.two_tower_candidates();
  s.ids.resize(search_k);
  s.scores.resize(search_k);
  two_tower_search_->Search(s.queries.data(), 1, search_k, s.ids.data(), s.scores.data(), 1, &s.search);
  RankingInputs out;
  RecommendScratch::PerThread t;
  BuildCandidates(s.records[0], 0, search_k, s, &t, &out.view, &out.candidates);
  out.features.resize(out.candidates.size() * NumRankingFeatures());
  TwoTowerEmbeddings emb{s.queries.data(), article_vectors_.data(), dim_};
  ComputeRankingFeatures(out.view, *tables_, out.candidates, emb, &t.features, out.features.data());
  return out;
}

absl::Status Recommender::Rank(const std::vector<size_t>& known, int search_k,
                               const std::vector<const RequestOptions*>& options, std::vector<Recommendation>* out,
                               StageTimes* t, int threads, RecommendScratch* s, FilterCache* filters,
                               const std::vector<const RestrictedSources*>& restricted) const {
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  const int64_t m = static_cast<int64_t>(known.size());
  const int nf = NumRankingFeatures();
  s->views.resize(known.size());
  s->candidates.resize(known.size());
  s->offsets.assign(known.size() + 1, 0);
  std::vector<char> finite(known.size(), 1);
  // Customers are independent: a lone batch spreads them over the cores
  // the search had (each thread with its own scratch; same results).
  const int nt = std::max(1, threads);
  if (static_cast<int>(s->per_thread.size()) < nt) s->per_thread.resize(static_cast<size_t>(nt));
  auto t0 = Clock::now();
#pragma omp parallel for num_threads(nt) schedule(dynamic, 32)
  for (int64_t j = 0; j < m; ++j) {
    const config::CustomerRecord& r = s->records[known[j]];
    const float* q = s->queries.data() + j * dim_;
    finite[j] = AllFinite(q, dim_);
    std::vector<Candidate>& cands = s->candidates[j];
    cands.clear();
    if (!finite[j]) continue;
    const RestrictedSources* within = restricted[static_cast<size_t>(j)];
    BuildCandidates(r, j, search_k, *s, &s->per_thread[static_cast<size_t>(omp_get_thread_num())], &s->views[j], &cands,
                    within != nullptr ? &within->filter : nullptr);
  }
  for (int64_t j = 0; j < m; ++j) s->offsets[j + 1] = s->offsets[j] + s->candidates[j].size();
  t->candidates = since(t0);
  t0 = Clock::now();
  s->features.resize(s->offsets.back() * static_cast<size_t>(nf));
#pragma omp parallel for num_threads(nt) schedule(dynamic, 32)
  for (int64_t j = 0; j < m; ++j) {
    if (s->candidates[j].empty()) continue;
    TwoTowerEmbeddings emb{s->queries.data() + j * dim_, article_vectors_.data(), dim_};
    ComputeRankingFeatures(s->views[j], *tables_, s->candidates[j], emb,
                           &s->per_thread[static_cast<size_t>(omp_get_thread_num())].features,
                           s->features.data() + s->offsets[j] * nf);
  }
  t->features = since(t0);
  t0 = Clock::now();
  RETURN_IF_ERROR(ScoreGroups(*ranker_, s->features.data(), s->offsets, nf, ranking_config_.cascade_first_trees(),
                              ranking_config_.cascade_keep(), &s->ranker_scores, &s->cascade));
  t->ranker = since(t0);

  for (int64_t j = 0; j < m; ++j) {
    const size_t i = known[j];
    Recommendation& rec = (*out)[i];
    const RequestOptions& o = *options[i];
    const Filter& filter = FilterOf(o, filters);
    if (!finite[j]) {
      rec.fallback = true;
      rec.fallback_reason = kReasonEmbeddingNotFinite;
      FillFromPopular(o.k, filter, nullptr, &rec, o.explain);
      continue;
    }
    const std::vector<Candidate>& cands = s->candidates[j];
    const float* score = s->ranker_scores.data() + s->offsets[j];
    s->order.resize(cands.size());
    std::iota(s->order.begin(), s->order.end(), 0u);
    // Best first; equal scores keep the candidates' order (deterministic).
    std::stable_sort(s->order.begin(), s->order.end(), [&](uint32_t a, uint32_t b) { return score[a] > score[b]; });
    rec.ranked = true;
    for (uint32_t c : s->order) {
      if (static_cast<int>(rec.article_ids.size()) >= o.k) break;
      const Candidate& cand = cands[c];
      const int32_t id = articles_->article_id(cand.article);
      if (!filter.Allows(cand.article, id, &s->views[j], *articles_)) {
        rec.unavailable_removed += filter.Unavailable(cand.article);
        continue;
      }
      rec.article_ids.push_back(id);
      rec.article_rows.push_back(cand.article);
      rec.scores.push_back(RankerScore(score[c]));
      if (o.explain) rec.explanations.push_back(ExplainCandidate(cand, score[c]));
    }
    PlaceAddedArticle(cands, score, s->order, filter, &s->views[j], o, &rec);
    rec.filled_from_popular = FillFromPopular(o.k, filter, &s->views[j], &rec, o.explain);
  }
  return absl::OkStatus();
}

Explanation Recommender::ExplainCandidate(const Candidate& cand, float margin) const {
  Explanation e;
  e.ranker_score = margin;
  for (int src = 0; src < kNumSources; ++src) {
    if (!cand.from(src)) continue;
    int32_t anchor = 0;
    if (src == kCoPurchase && cand.copurchase_anchor >= 0) anchor = articles_->article_id(cand.copurchase_anchor);
    if (src == kSameProduct && cand.product_anchor >= 0) anchor = articles_->article_id(cand.product_anchor);
    e.reasons.push_back({src, cand.rank[src], cand.score[src], anchor});
  }
  return e;
}

void Recommender::PlaceAddedArticle(const std::vector<Candidate>& cands, const float* score,
                                    const std::vector<uint32_t>& order, const Filter& filter, const CustomerView* view,
                                    const RequestOptions& o, Recommendation* rec) const {
  const uint32_t first_added = static_cast<uint32_t>(space_->num_articles());
  if (new_article_position_ <= 0 || articles_->size() <= first_added) return;
  const size_t at = static_cast<size_t>(new_article_position_ - 1);
  if (rec->article_rows.size() <= at) return;
  for (size_t i = 0; i <= at; ++i) {
    if (rec->article_rows[i] >= first_added) return;
  }
  // The ranker's best among the added candidates the request allows.
  const auto found = std::find_if(order.begin(), order.end(), [&](uint32_t c) {
    return cands[c].article >= first_added &&
           filter.Allows(cands[c].article, articles_->article_id(cands[c].article), view, *articles_);
  });
  if (found == order.end()) return;
  const Candidate& best = cands[*found];
  // Already further down the list: moved up from there.
  const auto was = std::find(rec->article_rows.begin(), rec->article_rows.end(), best.article);
  if (was != rec->article_rows.end()) {
    const auto q = was - rec->article_rows.begin();
    rec->article_rows.erase(was);
    rec->article_ids.erase(rec->article_ids.begin() + q);
    rec->scores.erase(rec->scores.begin() + q);
    if (o.explain) rec->explanations.erase(rec->explanations.begin() + q);
  }
  const auto pos = static_cast<std::ptrdiff_t>(at);
  // It takes the score of the place it takes: scores never rise down a list.
  const float placed_score = rec->scores[at];
  rec->article_rows.insert(rec->article_rows.begin() + pos, best.article);
  rec->article_ids.insert(rec->article_ids.begin() + pos, articles_->article_id(best.article));
  rec->scores.insert(rec->scores.begin() + pos, placed_score);
  if (o.explain) {
    Explanation e = ExplainCandidate(best, score[*found]);
    e.new_in_catalogue = true;
    rec->explanations.insert(rec->explanations.begin() + pos, std::move(e));
  }
  if (static_cast<int>(rec->article_ids.size()) > o.k) {
    rec->article_ids.pop_back();
    rec->article_rows.pop_back();
    rec->scores.pop_back();
    if (o.explain) rec->explanations.pop_back();
  }
}

absl::StatusOr<config::CustomerRecord> Recommender::StoredRecord(absl::string_view customer_id) const {
  std::vector<config::CustomerRecord> records;
  std::vector<bool> found;
  RETURN_IF_ERROR(store_->MultiGet({customer_id}, &records, &found));
  if (!found[0]) return absl::NotFoundError(absl::StrCat("customer ", customer_id, " is not in the bundle"));
  return std::move(records[0]);
}

}  // namespace hmrec
