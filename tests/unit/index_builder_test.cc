#include <cmath>
#include <filesystem>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "bundle/bundle.h"
#include "common/rng.h"
#include "common/text_proto.h"
#include "data/article_table.h"
#include "data/dataset_cache.h"
#include "datagen/generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index_builder/builder.h"
#include "index_builder/catalogue_refresh.h"
#include "search/article_index.h"
#include "store/feature_store.h"
#include "tests/unit/test_util.h"
#include "tests/unit/tiny_bundle.h"
#include "trainer/trainer.h"

namespace hmrec {
namespace {

using hmrec::testing::TempDir;

// Unit vectors around `clusters` random centres.
ArticleEmbeddings Clustered(int n, int dim, int clusters, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> centres(clusters * dim);
  for (float& c : centres) c = static_cast<float>(rng.Normal());
  ArticleEmbeddings e;
  e.dim = dim;
  for (int i = 0; i < n; ++i) {
    e.article_ids.push_back(100000000 + i * 7);
    const int c = static_cast<int>(rng.Below(clusters));
    double norm = 0;
    std::vector<float> v(dim);
    for (int k = 0; k < dim; ++k) {
      v[k] = centres[c * dim + k] + 0.3f * static_cast<float>(rng.Normal());
      norm += v[k] * v[k];
    }
    for (float x : v) e.values.push_back(static_cast<float>(x / std::sqrt(norm)));
  }
  return e;
}

config::IndexBuilderConfig Config(const std::string& type) {
  config::IndexBuilderConfig c;
  c.set_index_type(type);
  c.set_ivf_nlist(32);
  c.set_ivf_nprobe(8);
  c.set_hnsw_m(16);
  c.set_hnsw_ef_search(128);
  c.set_hnsw_ef_construction(100);
  return c;
}

double RecallAgainstFlat(const std::string& type) {
  ArticleEmbeddings e = Clustered(4000, 32, 40, 1);
  ArticleEmbeddings q = Clustered(200, 32, 40, 2);
  auto exact = BuildArticleIndex(e, Config("flat"));
  auto approx = BuildArticleIndex(e, Config(type));
  EXPECT_TRUE(exact.ok() && approx.ok());
  std::vector<int64_t> ei, ai;
  std::vector<float> es, as;
  EXPECT_TRUE(SearchArticles(*exact->index, q.values.data(), 200, 12, &ei, &es).ok());
  EXPECT_TRUE(SearchArticles(*approx->index, q.values.data(), 200, 12, &ai, &as).ok());
  int hits = 0;
  for (int i = 0; i < 200; ++i) {
    for (int k = 0; k < 12; ++k) {
      hits += std::count(ai.begin() + i * 12, ai.begin() + (i + 1) * 12, ei[i * 12 + k]) > 0;
    }
  }
  return hits / (200.0 * 12);
}

TEST(ArticleIndex, RecallOfEachTypeAgainstBruteForce) {
  EXPECT_DOUBLE_EQ(RecallAgainstFlat("flat"), 1.0);
  EXPECT_GT(RecallAgainstFlat("ivf"), 0.9);
  EXPECT_GT(RecallAgainstFlat("hnsw"), 0.9);
  EXPECT_GT(RecallAgainstFlat("sq8"), 0.9);
}

TEST(ArticleIndex, IdsRoundTripThroughTheFile) {
  TempDir dir;
  ArticleEmbeddings e = Clustered(500, 16, 10, 3);
  for (const char* type : {"flat", "ivf", "sq8", "hnsw"}) {
    auto built = BuildArticleIndex(e, Config(type));
    ASSERT_TRUE(built.ok()) << built.status();
    ASSERT_TRUE(WriteArticleIndex(*built->index, dir.File("i.faiss")).ok());
    auto read = ReadArticleIndex(dir.File("i.faiss"));
    ASSERT_TRUE(read.ok()) << read.status();
    std::vector<int64_t> ids;
    std::vector<float> scores;
    ASSERT_TRUE(SearchArticles(**read, e.values.data(), 500, 1, &ids, &scores).ok());
    int same = 0;
    for (int i = 0; i < 500; ++i) same += ids[i] == e.article_ids[i];
    EXPECT_GE(same, type == std::string("flat") ? 500 : 490) << type;  // each vector finds itself
  }
  EXPECT_FALSE(BuildArticleIndex(e, Config("lsh")).ok());
  EXPECT_EQ(ReadArticleIndex(dir.File("missing.faiss")).status().code(), absl::StatusCode::kDataLoss);
}

TEST(FeatureStore, RoundTripUnknownKeyAndCorruption) {
  TempDir dir;
  std::vector<std::pair<std::string, config::CustomerRecord>> records;
  for (int i = 0; i < 1000; ++i) {
    config::CustomerRecord r;
    for (int k = 0; k < 8; ++k) r.add_fields(i + k);
    if (i % 3) r.add_recent_article_ids(108775015 + i);
    records.emplace_back(hmrec::testing::CustomerId(i), r);
  }
  const std::string path = dir.File("features.rocksdb");
  ASSERT_TRUE(WriteFeatureStore(path, records).ok());
  EXPECT_EQ(WriteFeatureStore(path, records).code(), absl::StatusCode::kAlreadyExists);
  {
    auto store = FeatureStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    const std::string unknown(64, 'f');
    std::vector<absl::string_view> ids = {records[5].first, unknown, records[999].first};
    std::vector<config::CustomerRecord> got;
    std::vector<bool> found;
    ASSERT_TRUE((*store)->MultiGet(ids, &got, &found).ok());
    EXPECT_THAT(found, ::testing::ElementsAre(true, false, true));
    EXPECT_EQ(got[0].SerializeAsString(), records[5].second.SerializeAsString());
    EXPECT_EQ(got[2].SerializeAsString(), records[999].second.SerializeAsString());
  }
  // Unsorted keys are refused.
  std::swap(records[1], records[2]);
  EXPECT_EQ(WriteFeatureStore(dir.File("other"), records).code(), absl::StatusCode::kInvalidArgument);
  // A flipped byte in the data file is caught when the store is opened.
  for (const auto& f : std::filesystem::directory_iterator(path)) {
    if (f.path().extension() == ".sst") {
      std::string bytes = hmrec::testing::ReadFile(f.path().string());
      bytes[bytes.size() / 3] ^= 0x40;
      hmrec::testing::WriteFile(f.path().string(), bytes);
    }
  }
  EXPECT_FALSE(FeatureStore::Open(path).ok());
}

// Train a tiny bundle, then make it servable.
class BuilderTest : public ::testing::Test {
 protected:
  void SetUp() override { ds_ = hmrec::testing::MakeTinyBundles(dir_, {"v1", "v2"}, {}).ds; }
  TempDir dir_;
  std::unique_ptr<Dataset> ds_;
};

TEST_F(BuilderTest, SealsVerifiesAndSwitchesCurrent) {
  const std::string b1 = dir_.File("bundles/v1");
  // A bundle that is not sealed cannot become current.
  EXPECT_EQ(MakeCurrent(b1).code(), absl::StatusCode::kFailedPrecondition);
  auto report = BuildServableBundle(b1, *ds_, Config("flat"), false);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->customers, static_cast<int64_t>(ds_->customers.size()));
  EXPECT_GT(report->customers_without_purchases, 0);
  auto manifest = ReadManifest(b1);
  ASSERT_TRUE(manifest.ok());
  EXPECT_TRUE(manifest->sealed());
  EXPECT_TRUE(VerifyBundleFiles(b1, *manifest).ok());
  ASSERT_TRUE(MakeCurrent(b1).ok());
  EXPECT_EQ(std::filesystem::read_symlink(dir_.File("bundles/current")).string(), "v1");

  // Every customer has a record, buyers with their purchases, most recent first.
  auto store = FeatureStore::Open(b1 + "/" + kFeatureStoreDir);
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<absl::string_view> ids;
  for (uint32_t c = 0; c < ds_->customers.size(); ++c) ids.push_back(ds_->customer_id(c));
  std::vector<config::CustomerRecord> recs;
  std::vector<bool> found;
  ASSERT_TRUE((*store)->MultiGet(ids, &recs, &found).ok());
  EXPECT_EQ(std::count(found.begin(), found.end(), true), static_cast<long>(ids.size()));
  const Transactions& tx = ds_->transactions;
  const uint32_t last_buyer = tx.customer[tx.size() - 1];
  ASSERT_GT(recs[last_buyer].recent_article_ids_size(), 0);
  EXPECT_EQ(recs[last_buyer].recent_article_ids(0), ds_->articles[tx.article[tx.size() - 1]].article_id);
  EXPECT_EQ(recs[last_buyer].fields_size(), 8);

  // A sealed bundle is not built twice.
  EXPECT_EQ(BuildServableBundle(b1, *ds_, Config("flat"), false).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(BuilderTest, AFailedBuildNeverBecomesCurrent) {
  const std::string b1 = dir_.File("bundles/v1"), b2 = dir_.File("bundles/v2");
  ASSERT_TRUE(BuildServableBundle(b1, *ds_, Config("flat"), false).ok());
  ASSERT_TRUE(MakeCurrent(b1).ok());
  // v2's embeddings get corrupted: the build refuses it, current stays v1.
  const std::string emb = b2 + "/" + kArticleEmbeddingsFile;
  std::string bytes = hmrec::testing::ReadFile(emb);
  bytes[100] ^= 1;
  hmrec::testing::WriteFile(emb, bytes);
  auto report = BuildServableBundle(b2, *ds_, Config("flat"), false);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(MakeCurrent(b2).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::filesystem::read_symlink(dir_.File("bundles/current")).string(), "v1");
  // A sealed bundle whose file is later damaged cannot be made current either.
  hmrec::testing::WriteFile(b1 + "/" + kFallbackFile, "article_ids: 1\n");
  EXPECT_EQ(MakeCurrent(b1).code(), absl::StatusCode::kDataLoss);
}

TEST_F(BuilderTest, SameInputSameBundleContent) {
  // v1 and v2 were exported from the same trained model.
  const std::string b1 = dir_.File("bundles/v1"), b2 = dir_.File("bundles/v2");
  for (const char* type : {"flat", "ivf"}) {
    SCOPED_TRACE(type);
    TempDir copy;
    std::filesystem::copy(b1, copy.File("a"), std::filesystem::copy_options::recursive);
    std::filesystem::copy(b2, copy.File("b"), std::filesystem::copy_options::recursive);
    config::IndexBuilderConfig cfg = Config(type);
    cfg.set_ivf_nlist(16);
    ASSERT_TRUE(BuildServableBundle(copy.File("a"), *ds_, cfg, false).ok());
    ASSERT_TRUE(BuildServableBundle(copy.File("b"), *ds_, cfg, false).ok());
    for (const char* f : {kIndexFile, kFallbackFile}) {
      EXPECT_EQ(hmrec::testing::ReadFile(copy.File(std::string("a/") + f)),
                hmrec::testing::ReadFile(copy.File(std::string("b/") + f)))
          << f;
    }
    // The store's files carry creation times; its records are identical.
    auto sa = FeatureStore::Open(copy.File("a/features.rocksdb"));
    auto sb = FeatureStore::Open(copy.File("b/features.rocksdb"));
    ASSERT_TRUE(sa.ok() && sb.ok());
    std::vector<absl::string_view> ids;
    for (uint32_t c = 0; c < ds_->customers.size(); ++c) ids.push_back(ds_->customer_id(c));
    std::vector<config::CustomerRecord> ra, rb;
    std::vector<bool> fa, fb;
    ASSERT_TRUE((*sa)->MultiGet(ids, &ra, &fa).ok());
    ASSERT_TRUE((*sb)->MultiGet(ids, &rb, &fb).ok());
    for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ra[i].SerializeAsString(), rb[i].SerializeAsString());
  }
}

TEST_F(BuilderTest, RefusesDataTheBundleWasNotTrainedOn) {
  Dataset other;
  other.articles = ds_->articles;
  other.articles.pop_back();
  auto report = BuildServableBundle(dir_.File("bundles/v1"), other, Config("flat"), false);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);
}

// Going back: current returns to the version current before it, in the
// order they were made current; nothing before, or a damaged one, is
// refused and current stays.
TEST_F(BuilderTest, RollBackReturnsToTheVersionCurrentBefore) {
  const std::string b1 = dir_.File("bundles/v1"), b2 = dir_.File("bundles/v2"), root = dir_.File("bundles");
  ASSERT_TRUE(BuildServableBundle(b1, *ds_, Config("flat"), false).ok());
  ASSERT_TRUE(BuildServableBundle(b2, *ds_, Config("flat"), false).ok());
  auto current = [&] { return std::filesystem::read_symlink(dir_.File("bundles/current")).string(); };
  ASSERT_TRUE(MakeCurrent(b1).ok());
  ASSERT_TRUE(MakeCurrent(b2).ok());
  ASSERT_TRUE(MakeCurrent(b2).ok());  // again: recorded once
  EXPECT_EQ(hmrec::testing::ReadFile(dir_.File("bundles/current.history")), "v1\nv2\n");
  auto back = RollBack(root);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, b1);
  EXPECT_EQ(current(), "v1");
  back = RollBack(root);
  EXPECT_EQ(back.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(back.status().message()), ::testing::HasSubstr("nothing to go back to"));
  EXPECT_EQ(current(), "v1");
  // Forward again, then v1 is damaged: going back is refused, naming it.
  ASSERT_TRUE(MakeCurrent(b2).ok());
  hmrec::testing::WriteFile(b1 + "/" + kFallbackFile, "article_ids: 1\n");
  back = RollBack(root);
  EXPECT_EQ(back.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(back.status().message()), ::testing::HasSubstr("cannot go back to v1"));
  EXPECT_EQ(current(), "v2");
  EXPECT_EQ(hmrec::testing::ReadFile(dir_.File("bundles/current.history")), "v1\nv2\n");
}

// A newer articles.csv: the data's, with `extra` lines appended.
std::string NewerCatalogue(const TempDir& dir, const std::string& name, const std::vector<std::string>& extra) {
  std::string text = hmrec::testing::ReadFile(dir.File("data/articles.csv"));
  for (const std::string& line : extra) text += line + "\n";
  std::filesystem::create_directories(dir.File(name));
  hmrec::testing::WriteFile(dir.File(name + "/articles.csv"), text);
  return dir.File(name + "/articles.csv");
}

// The data's row of article `row` under another id.
std::string RowAs(const TempDir& dir, size_t row, const std::string& id) {
  const std::string text = hmrec::testing::ReadFile(dir.File("data/articles.csv"));
  size_t b = 0;
  for (size_t i = 0; i <= row; ++i) b = text.find('\n', b) + 1;  // skips the header
  const size_t e = text.find('\n', b);
  const std::string line = text.substr(b, e - b);
  return id + line.substr(line.find(','));
}

TEST_F(BuilderTest, ACatalogueRefreshAppendsNewArticlesAsANewSealedVersion) {
  const std::string b1 = dir_.File("bundles/v1");
  ASSERT_TRUE(BuildServableBundle(b1, *ds_, Config("flat"), false).ok());
  const size_t n = ds_->articles.size();
  // Two new articles: article 0's attributes and article 5's, new ids.
  RefreshOptions options;
  options.articles_csv = NewerCatalogue(dir_, "newer", {RowAs(dir_, 0, "0999999001"), RowAs(dir_, 5, "0999999002")});
  options.version = "v1r";
  auto report = RefreshCatalogue(b1, options, Config("flat"));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->added_articles, 2);
  EXPECT_EQ(report->trained_articles, static_cast<int64_t>(n));
  EXPECT_EQ(report->missing_articles, 0);
  const std::string r1 = dir_.File("bundles/v1r");
  EXPECT_EQ(report->bundle_dir, r1);
  auto manifest = ReadManifest(r1);
  ASSERT_TRUE(manifest.ok());
  EXPECT_TRUE(manifest->sealed());
  EXPECT_TRUE(VerifyBundleFiles(r1, *manifest).ok());
  EXPECT_EQ(manifest->version(), "v1r");
  EXPECT_EQ(manifest->num_articles(), static_cast<int64_t>(n + 2));
  EXPECT_EQ(manifest->catalogue_base_version(), "v1");
  EXPECT_EQ(manifest->catalogue_added_articles(), 2);
  ASSERT_TRUE(MakeCurrent(r1).ok());

  // The trained rows are untouched; the new ones are unit vectors, and two
  // articles with different attributes get different ones.
  auto before = ReadArticleEmbeddings(b1 + "/" + kArticleEmbeddingsFile);
  auto after = ReadArticleEmbeddings(r1 + "/" + kArticleEmbeddingsFile);
  ASSERT_TRUE(before.ok() && after.ok());
  ASSERT_EQ(after->article_ids.size(), n + 2);
  const size_t d = static_cast<size_t>(after->dim);
  EXPECT_TRUE(std::equal(before->values.begin(), before->values.end(), after->values.begin()));
  EXPECT_EQ(after->article_ids[n], 999999001);
  const float* x = &after->values[n * d];
  const float* y = &after->values[(n + 1) * d];
  double xx = 0, xy = 0;
  for (size_t i = 0; i < d; ++i) {
    xx += x[i] * x[i];
    xy += x[i] * y[i];
  }
  EXPECT_NEAR(xx, 1.0, 1e-4);
  EXPECT_LT(xy, 0.9999);
  auto table = ArticleTable::Load(r1 + "/" + kArticleTableFile);
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(table->Row(999999002), static_cast<int64_t>(n + 1));
  EXPECT_EQ(table->product_code(static_cast<uint32_t>(n + 1)), ds_->articles[5].product_code);
  EXPECT_EQ(table->Get(static_cast<uint32_t>(n), ArticleTable::kProdName), ds_->articles[0].prod_name);
  auto index = ReadArticleIndex(r1 + "/" + kIndexFile);
  ASSERT_TRUE(index.ok());
  EXPECT_EQ((*index)->ntotal, static_cast<int64_t>(n + 2));

  // Refreshed again with a third article: the base stays the trained one.
  options.articles_csv = NewerCatalogue(
      dir_, "newer2", {RowAs(dir_, 0, "0999999001"), RowAs(dir_, 5, "0999999002"), RowAs(dir_, 7, "0999999003")});
  options.version = "v1r2";
  report = RefreshCatalogue(r1, options, Config("flat"));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->added_articles, 1);
  manifest = ReadManifest(dir_.File("bundles/v1r2"));
  ASSERT_TRUE(manifest.ok());
  EXPECT_EQ(manifest->catalogue_base_version(), "v1");
  EXPECT_EQ(manifest->catalogue_added_articles(), 3);
  // Nothing new: nothing written. An existing version: refused.
  report = RefreshCatalogue(dir_.File("bundles/v1r2"), options, Config("flat"));
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->bundle_dir.empty());
  report = RefreshCatalogue(r1, options, Config("flat"));
  EXPECT_EQ(report.status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(BuilderTest, ACatalogueRefreshRefusesBadInputAndWritesNothing) {
  const std::string b1 = dir_.File("bundles/v1");
  RefreshOptions options;
  options.version = "v1r";
  options.articles_csv = NewerCatalogue(dir_, "newer", {RowAs(dir_, 0, "0999999001")});
  // An unsealed bundle.
  EXPECT_EQ(RefreshCatalogue(b1, options, Config("flat")).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(BuildServableBundle(b1, *ds_, Config("flat"), false).ok());
  // A duplicate row and a malformed one are named by file and line (the
  // file's lines, some descriptions span two).
  const std::string data = hmrec::testing::ReadFile(dir_.File("data/articles.csv"));
  const size_t n = static_cast<size_t>(std::count(data.begin(), data.end(), '\n')) - 1;
  options.articles_csv = NewerCatalogue(dir_, "dup", {RowAs(dir_, 0, "0999999001"), RowAs(dir_, 0, "0999999001")});
  auto report = RefreshCatalogue(b1, options, Config("flat"));
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(report.status().message()),
              ::testing::HasSubstr(absl::StrCat("articles.csv:", n + 3, ": duplicate article_id")));
  options.articles_csv = NewerCatalogue(dir_, "bad", {"0999999001,1,too few columns"});
  report = RefreshCatalogue(b1, options, Config("flat"));
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(report.status().message()), ::testing::HasSubstr(absl::StrCat("articles.csv:", n + 2)));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("bundles/v1r")));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("bundles/v1r.partial")));
  // A bundle without the article tower (from before it was exported).
  auto manifest = ReadManifest(b1);
  ASSERT_TRUE(manifest.ok());
  config::BundleManifest old = *manifest;
  old.clear_files();
  for (const config::BundleFile& f : manifest->files()) {
    if (f.name() != kArticleTowerFile) *old.add_files() = f;
  }
  ASSERT_TRUE(WriteManifest(b1, old).ok());
  options.articles_csv = NewerCatalogue(dir_, "newer", {RowAs(dir_, 0, "0999999001")});
  report = RefreshCatalogue(b1, options, Config("flat"));
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(report.status().message()), ::testing::HasSubstr("retrain"));
}

}  // namespace
}  // namespace hmrec
