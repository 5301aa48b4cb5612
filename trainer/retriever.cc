#include "trainer/retriever.h"

#include <climits>
#include <filesystem>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "bundle/bundle.h"
#include "common/status_macros.h"
#include "common/text_proto.h"
#include "features/feature_space.h"
#include "model/tower_runner.h"
#include "search/exact_search.h"

namespace hmrec {

struct TwoTowerRetriever::Impl {
  std::unique_ptr<FeatureSpace> space;
  std::unique_ptr<CustomerTowerRunner> tower;
  ArticleEmbeddings embeddings;
  std::unique_ptr<ExactSearch> search;
  int threads = 1;
  int32_t search_day = INT32_MIN;
};

TwoTowerRetriever::TwoTowerRetriever(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TwoTowerRetriever::~TwoTowerRetriever() = default;

absl::StatusOr<std::unique_ptr<TwoTowerRetriever>> TwoTowerRetriever::Load(const std::string& bundle_dir,
                                                                           const Dataset& ds, int threads) {
  auto impl = std::make_unique<Impl>();
  impl->threads = std::max(1, threads);
  const std::filesystem::path dir(bundle_dir);
  ASSIGN_OR_RETURN(config::BundleManifest manifest, ReadManifest(bundle_dir));
  config::FeatureVocabularies vocab;
  RETURN_IF_ERROR(ReadTextProto((dir / kVocabulariesFile).string(), &vocab));
  ASSIGN_OR_RETURN(FeatureSpace space, FeatureSpace::FromProto(vocab));
  impl->space = std::make_unique<FeatureSpace>(std::move(space));
  ASSIGN_OR_RETURN(impl->tower, CustomerTowerRunner::Load((dir / kCustomerTowerFile).string(),
                                                          manifest.trainer().model(), *impl->space, "cpu"));
  ASSIGN_OR_RETURN(impl->embeddings, ReadArticleEmbeddings((dir / kArticleEmbeddingsFile).string()));
  if (impl->embeddings.article_ids.size() != ds.articles.size()) {
    return absl::FailedPreconditionError(absl::StrCat("bundle ", bundle_dir, " has ",
                                                      impl->embeddings.article_ids.size(), " articles, the data ",
                                                      ds.articles.size()));
  }
  for (size_t a = 0; a < ds.articles.size(); ++a) {
    if (impl->embeddings.article_ids[a] != ds.articles[a].article_id) {
      return absl::FailedPreconditionError(absl::StrCat("bundle ", bundle_dir, ": article row ", a, " is ",
                                                        impl->embeddings.article_ids[a], ", the data's is ",
                                                        ds.articles[a].article_id));
    }
  }
  std::vector<int64_t> rows(ds.articles.size());
  std::iota(rows.begin(), rows.end(), 0);
  impl->search = std::make_unique<ExactSearch>(impl->embeddings.values, std::move(rows), impl->embeddings.dim);
  return std::unique_ptr<TwoTowerRetriever>(new TwoTowerRetriever(std::move(impl)));
}

absl::Status TwoTowerRetriever::Retrieve(const Dataset& ds, const CustomerHistory& history,
                                         const std::vector<uint32_t>& customers, int32_t as_of, int k,
                                         std::vector<float>* embeddings, std::vector<int64_t>* rows,
                                         std::vector<float>* scores) {
  Impl& m = *impl_;
  const int64_t n = static_cast<int64_t>(customers.size());
  const int h = m.space->history_length();
  std::vector<int32_t> fields(n * kCustomerFields), hist(n * h, 0);
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t c = customers[i];
    const size_t count = history.CountBefore(c, as_of);
    const int32_t last_day = count > 0 ? history.days(c)[count - 1] : 0;
    m.space->EncodeCustomerStatic(ds, ds.customers[c], fields.data() + i * kCustomerFields);
    m.space->EncodeCustomerHistory(history.articles(c), static_cast<int64_t>(count), last_day, as_of,
                                   fields.data() + i * kCustomerFields, hist.data() + i * h);
  }
  const int dim = m.embeddings.dim;
  embeddings->resize(n * dim);
  RETURN_IF_ERROR(m.tower->Embed(fields.data(), hist.data(), n, embeddings->data()));
  rows->resize(n * k);
  scores->resize(n * k);
  if (k > 0) m.search->Search(embeddings->data(), n, k, rows->data(), scores->data(), m.threads);
  return absl::OkStatus();
}

void TwoTowerRetriever::SearchOnly(int32_t day, const std::vector<int64_t>& rows) {
  Impl& m = *impl_;
  m.search_day = day;
  m.search = ExactSearch::OverRows(m.embeddings.values.data(), m.embeddings.dim, rows);
}

int32_t TwoTowerRetriever::search_day() const { return impl_->search_day; }
const float* TwoTowerRetriever::article_embeddings() const { return impl_->embeddings.values.data(); }
int TwoTowerRetriever::dim() const { return impl_->embeddings.dim; }

}  // namespace hmrec
