#include "server/recommender.h"

#include <filesystem>

#include "absl/strings/string_view.h"
#include "bundle/bundle.h"
#include "common/text_proto.h"
#include "data/dataset_cache.h"
#include "datagen/generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index_builder/builder.h"
#include "tests/unit/test_util.h"
#include "tests/unit/tiny_bundle.h"
#include "trainer/trainer.h"

namespace hmrec {
namespace {

using hmrec::testing::TempDir;

// A tiny trained and sealed bundle, shared by the tests.
class RecommenderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto tiny = hmrec::testing::MakeTinyBundles(*dir_, {"sealed", "unsealed"}, {"sealed"});
    ds_ = tiny.ds.release();
    trainer_ = tiny.trainer.release();
  }
  static void TearDownTestSuite() {
    delete trainer_;
    delete ds_;
    delete dir_;
  }
  static TempDir* dir_;
  static Dataset* ds_;
  static Trainer* trainer_;
};
TempDir* RecommenderTest::dir_ = nullptr;
Dataset* RecommenderTest::ds_ = nullptr;
Trainer* RecommenderTest::trainer_ = nullptr;

TEST_F(RecommenderTest, KnownCustomersGetTheExactTopKOfTheirTrainedEmbedding) {
  auto r = Recommender::Load(dir_->File("bundles/sealed"), RecommenderOptions());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->version(), "sealed");
  std::vector<uint32_t> customers = {3, 10, 500};
  std::vector<absl::string_view> ids;
  for (uint32_t c : customers) ids.push_back(ds_->customer_id(c));
  std::vector<Recommendation> out;
  ASSERT_TRUE((*r)->Recommend(ids, 12, &out).ok());
  ASSERT_EQ(out.size(), 3u);
  auto emb = ReadArticleEmbeddings(dir_->File("bundles/sealed/") + kArticleEmbeddingsFile);
  auto trained = trainer_->EmbedCustomers(customers);
  ASSERT_TRUE(emb.ok() && trained.ok());
  for (size_t i = 0; i < customers.size(); ++i) {
    EXPECT_FALSE(out[i].fallback);
    ASSERT_EQ(out[i].article_ids.size(), 12u);
    // Brute force over the trainer's embedding of the same customer.
    std::vector<std::pair<float, int32_t>> all;
    for (size_t a = 0; a < emb->article_ids.size(); ++a) {
      float s = 0;
      for (int d = 0; d < emb->dim; ++d) s += (*trained)[i * emb->dim + d] * emb->values[a * emb->dim + d];
      all.push_back({-s, emb->article_ids[a]});
    }
    std::sort(all.begin(), all.end());
    for (int k = 0; k < 12; ++k) {
      EXPECT_NEAR(out[i].scores[k], -all[k].first, 1e-4);
      if (k > 0) EXPECT_GE(out[i].scores[k - 1], out[i].scores[k]);
    }
    EXPECT_EQ(out[i].article_ids[0], all[0].second);
  }
}

// Every way of searching the flat index answers the same; an unknown way is
// refused, naming it.
TEST_F(RecommenderTest, FlatSearchSettingsAgree) {
  std::vector<absl::string_view> ids;
  for (uint32_t c = 0; c < 200; ++c) ids.push_back(ds_->customer_id(c));
  std::vector<std::vector<Recommendation>> answers;
  std::vector<std::string> kernels;
  for (const char* how : {"blocked", "blocked-fp32", "faiss"}) {
    RecommenderOptions options;
    options.flat_search = how;
    auto r = Recommender::Load(dir_->File("bundles/sealed"), options);
    ASSERT_TRUE(r.ok()) << how << ": " << r.status();
    kernels.push_back((*r)->search_kernel());
    answers.emplace_back();
    ASSERT_TRUE((*r)->Recommend(ids, 12, &answers.back()).ok());
  }
  EXPECT_EQ(kernels[2], "faiss");
  EXPECT_NE(kernels[1], "faiss");
  EXPECT_NE(kernels[1], "int8-vnni+rescore");
  for (size_t a = 1; a < answers.size(); ++a) {
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ(answers[a][i].article_ids, answers[0][i].article_ids)
          << kernels[a] << " vs " << kernels[0] << ", customer " << i;
      for (size_t j = 0; j < answers[0][i].scores.size(); ++j)
        EXPECT_NEAR(answers[a][i].scores[j], answers[0][i].scores[j], 1e-5);
    }
  }
  RecommenderOptions bad;
  bad.flat_search = "gpu";
  auto r = Recommender::Load(dir_->File("bundles/sealed"), bad);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("'gpu'"));
}

TEST_F(RecommenderTest, UnknownCustomersGetTheFallbackInOrder) {
  auto r = Recommender::Load(dir_->File("bundles/sealed"), RecommenderOptions());
  ASSERT_TRUE(r.ok());
  const std::string unknown(64, 'e');
  std::vector<absl::string_view> ids = {unknown, ds_->customer_id(7), unknown};
  std::vector<Recommendation> out;
  ASSERT_TRUE((*r)->Recommend(ids, 5, &out).ok());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(out[0].fallback);
  EXPECT_FALSE(out[1].fallback);
  EXPECT_TRUE(out[2].fallback);
  EXPECT_EQ(out[0].article_ids.size(), 5u);
  EXPECT_EQ(out[0].article_ids, out[2].article_ids);
  EXPECT_EQ(out[1].article_ids.size(), 5u);
}

TEST_F(RecommenderTest, RefusesUnsealedOrDamagedBundles) {
  auto unsealed = Recommender::Load(dir_->File("bundles/unsealed"), RecommenderOptions());
  EXPECT_EQ(unsealed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(unsealed.status().message()), ::testing::HasSubstr("not sealed"));
  TempDir copy;
  std::filesystem::copy(dir_->File("bundles/sealed"), copy.File("b"), std::filesystem::copy_options::recursive);
  const std::string index = copy.File("b/") + kIndexFile;
  std::string bytes = hmrec::testing::ReadFile(index);
  bytes[bytes.size() - 10] ^= 0x10;
  hmrec::testing::WriteFile(index, bytes);
  auto damaged = Recommender::Load(copy.File("b"), RecommenderOptions());
  EXPECT_EQ(damaged.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(damaged.status().message()), ::testing::HasSubstr(kIndexFile));
}

}  // namespace
}  // namespace hmrec
