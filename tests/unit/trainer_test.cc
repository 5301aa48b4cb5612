#include <cmath>
#include <filesystem>
#include <numeric>

#include "absl/strings/str_join.h"
#include "bundle/bundle.h"
#include "common/text_proto.h"
#include "data/dataset_cache.h"
#include "data/dates.h"
#include "datagen/generator.h"
#include "evaluate/split.h"
#include "features/feature_space.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/tower_runner.h"
#include "tests/unit/test_util.h"
#include "trainer/examples.h"
#include "trainer/trainer.h"

namespace hmrec {
namespace {

using hmrec::testing::TempDir;

config::TrainerConfig SmallConfig() {
  config::TrainerConfig c;
  ParseTextProto(
      R"pb(
        model { embedding_dim: 16 feature_dim: 8 hidden: 32 history_length: 8 postal_buckets: 64 dropout: 0.0 }
        window_days: 60
        epochs: 3
        batch_size: 128
        customer_learning_rate: 0.005
        article_learning_rate: 0.005
        temperature: 0.1
        recency_half_life_days: 30
        logq_correction: true
        seed: 7
        device: "cpu"
        threads: 1
        evaluate_every_epoch: true
      )pb",
      "test", &c)
      .IgnoreError();
  return c;
}

// Tiny generated data with the last 7 days held out, shared by the tests.
class TrainerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ConfigureThreads(1);
    dir_ = new TempDir();
    datagen::GenerateStats stats;
    ASSERT_TRUE(datagen::Generate(*datagen::ScalePreset("tiny"), dir_->File("data"), false, &stats).ok());
    evaluate::SplitResult split;
    ASSERT_TRUE(evaluate::SplitHoldout(dir_->File("data"), 7, dir_->File("split"), false, &split).ok());
    LoadOptions opts;
    opts.show_progress = false;
    auto ds = LoadDataset(dir_->File("split/train"), opts);
    ASSERT_TRUE(ds.ok()) << ds.status();
    ds_ = ds->release();
    int64_t unknown = 0;
    auto h = ReadHoldout(dir_->File("split/truth.csv"), *ds_, &unknown);
    ASSERT_TRUE(h.ok()) << h.status();
    holdout_ = new Holdout(std::move(*h));
  }
  static void TearDownTestSuite() {
    delete holdout_;
    delete ds_;
    delete dir_;
  }
  std::unique_ptr<Trainer> MakeTrainer(const config::TrainerConfig& cfg, const std::string& work, bool resume = false) {
    TrainerOptions o;
    o.work_dir = work;
    o.show_progress = false;
    o.resume = resume;
    auto t = Trainer::Create(cfg, *ds_, holdout_, o);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? std::move(*t) : nullptr;
  }

  static TempDir* dir_;
  static Dataset* ds_;
  static Holdout* holdout_;
  TempDir work_;
};
TempDir* TrainerTest::dir_ = nullptr;
Dataset* TrainerTest::ds_ = nullptr;
Holdout* TrainerTest::holdout_ = nullptr;

TEST_F(TrainerTest, LossFallsAndTheModelLearnsThePlantedTaste) {
  auto t = MakeTrainer(SmallConfig(), work_.path());
  auto m = t->Train();
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 3u);
  EXPECT_LT((*m)[2].loss, (*m)[0].loss * 0.97);
  // Far better than a model that knows nothing: 12 random articles of 400
  // would find a held-out purchase with probability ~3%.
  EXPECT_TRUE((*m)[2].evaluated);
  EXPECT_GT((*m)[2].recall_at_12, 0.1);
  EXPECT_TRUE(std::filesystem::exists(work_.File("training_metrics.jsonl")));
}

TEST_F(TrainerTest, CustomerEmbeddingsAreUnitLength) {
  auto t = MakeTrainer(SmallConfig(), work_.path());
  std::vector<uint32_t> customers(50);
  std::iota(customers.begin(), customers.end(), 0);
  auto e = t->EmbedCustomers(customers);
  ASSERT_TRUE(e.ok());
  ASSERT_EQ(e->size(), 50u * 16);
  for (size_t i = 0; i < 50; ++i) {
    double norm = 0;
    for (int d = 0; d < 16; ++d) norm += (*e)[i * 16 + d] * (*e)[i * 16 + d];
    EXPECT_NEAR(norm, 1.0, 1e-5);
  }
}

TEST_F(TrainerTest, ExportedBundleServesTheSameEmbeddings) {
  config::TrainerConfig cfg = SmallConfig();
  cfg.set_epochs(1);
  auto t = MakeTrainer(cfg, work_.path());
  ASSERT_TRUE(t->Train().ok());
  auto bundle = t->Export(work_.File("bundles"), "v1");
  ASSERT_TRUE(bundle.ok()) << bundle.status();

  // Everything the manifest names is there and intact.
  auto manifest = ReadManifest(*bundle);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_TRUE(VerifyBundleFiles(*bundle, *manifest).ok());
  EXPECT_EQ(manifest->embedding_dim(), 16);
  EXPECT_EQ(manifest->features_as_of(), FormatDate(ds_->last_day + 1));
  auto emb = ReadArticleEmbeddings(*bundle + "/" + kArticleEmbeddingsFile);
  ASSERT_TRUE(emb.ok());
  ASSERT_EQ(emb->article_ids.size(), ds_->articles.size());
  ASSERT_EQ(emb->values.size(), ds_->articles.size() * 16);
  for (size_t i = 0; i < ds_->articles.size(); ++i) {
    EXPECT_EQ(emb->article_ids[i], ds_->articles[i].article_id);
    double norm = 0;
    for (int d = 0; d < 16; ++d) norm += emb->values[i * 16 + d] * emb->values[i * 16 + d];
    EXPECT_NEAR(norm, 1.0, 1e-5) << "article row " << i;
  }

  // The serving path: vocabularies + tower weights from the bundle, features
  // encoded from the raw customer data, as the index builder will.
  config::FeatureVocabularies vocab;
  ASSERT_TRUE(ReadTextProto(*bundle + "/" + kVocabulariesFile, &vocab).ok());
  auto space = FeatureSpace::FromProto(vocab);
  ASSERT_TRUE(space.ok()) << space.status();
  auto runner =
      CustomerTowerRunner::Load(*bundle + "/" + kCustomerTowerFile, manifest->trainer().model(), *space, "cpu");
  ASSERT_TRUE(runner.ok()) << runner.status();
  CustomerHistory history = CustomerHistory::Build(ds_->transactions, ds_->customers.size());
  std::vector<uint32_t> customers = {0, 1, 2, 17, 123, static_cast<uint32_t>(ds_->customers.size() - 1)};
  const int h = space->history_length();
  std::vector<int32_t> fields(customers.size() * kCustomerFields), hist(customers.size() * h);
  for (size_t i = 0; i < customers.size(); ++i) {
    const uint32_t c = customers[i];
    space->EncodeCustomerStatic(*ds_, ds_->customers[c], &fields[i * kCustomerFields]);
    space->EncodeCustomerHistory(history.articles(c), static_cast<int64_t>(history.count(c)), history.last_day(c),
                                 ds_->last_day + 1, &fields[i * kCustomerFields], &hist[i * h]);
  }
  std::vector<float> served(customers.size() * 16);
  ASSERT_TRUE((*runner)->Embed(fields.data(), hist.data(), customers.size(), served.data()).ok());
  auto trained = t->EmbedCustomers(customers);
  ASSERT_TRUE(trained.ok());
  for (size_t i = 0; i < served.size(); ++i) EXPECT_NEAR(served[i], (*trained)[i], 1e-6) << i;

  // A corrupted file is caught by its checksum.
  const std::string path = *bundle + "/" + kArticleEmbeddingsFile;
  std::string bytes = hmrec::testing::ReadFile(path);
  bytes[bytes.size() / 2] ^= 1;
  hmrec::testing::WriteFile(path, bytes);
  absl::Status s = VerifyBundleFiles(*bundle, *manifest);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr(kArticleEmbeddingsFile));
}

TEST_F(TrainerTest, ResumedRunMatchesUninterruptedRun) {
  config::TrainerConfig cfg = SmallConfig();
  cfg.set_epochs(2);
  TempDir straight, interrupted;
  auto a = MakeTrainer(cfg, straight.path());
  ASSERT_TRUE(a->Train().ok());

  config::TrainerConfig first = cfg;
  first.set_epochs(1);
  ASSERT_TRUE(MakeTrainer(first, interrupted.path())->Train().ok());
  auto b = MakeTrainer(cfg, interrupted.path(), /*resume=*/true);
  auto metrics = b->Train();
  ASSERT_TRUE(metrics.ok());
  ASSERT_EQ(metrics->size(), 2u);  // the resumed epoch's metrics are kept

  std::vector<uint32_t> customers(40);
  std::iota(customers.begin(), customers.end(), 0);
  auto ea = a->EmbedCustomers(customers);
  auto eb = b->EmbedCustomers(customers);
  ASSERT_TRUE(ea.ok() && eb.ok());
  for (size_t i = 0; i < ea->size(); ++i) EXPECT_FLOAT_EQ((*ea)[i], (*eb)[i]) << i;
}

TEST_F(TrainerTest, ResumeRefusesACheckpointOfAnotherConfig) {
  config::TrainerConfig cfg = SmallConfig();
  cfg.set_epochs(1);
  ASSERT_TRUE(MakeTrainer(cfg, work_.path())->Train().ok());
  cfg.set_temperature(0.3);
  TrainerOptions o;
  o.work_dir = work_.path();
  o.show_progress = false;
  o.resume = true;
  auto t = Trainer::Create(cfg, *ds_, holdout_, o);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(TrainerDevice, CudaRequestedWithoutCudaIsAClearError) {
  absl::Status s = CheckDevice("cuda");
  // On a machine with a GPU and a CUDA LibTorch this is fine; here it says why not.
  if (!s.ok()) EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("--device cpu"));
  EXPECT_FALSE(CheckDevice("tpu").ok());
  EXPECT_TRUE(CheckDevice("cpu").ok());
}

// ---- features: no leakage

class LeakageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // One customer: A on day 1; B and C on day 2; D on day 3. Article D
    // first sells on day 3.
    const std::string header = absl::StrJoin(ArticleColumns(), ",") + "\n";
    std::string articles = header;
    for (int i = 1; i <= 4; ++i) {
      articles += "010877501" + std::to_string(i) +
                  ",108775,x,253,Vest top,Garment Upper body,1010016,Solid,9,Black,4,Dark,5,Black,1676,"
                  "Jersey,A,Ladieswear,1,Ladieswear,16,Womens,1002,Jersey Basic,desc\n";
    }
    hmrec::testing::WriteFile(dir_.File("articles.csv"), articles);
    const std::string c = hmrec::testing::CustomerId(1);
    hmrec::testing::WriteFile(dir_.File("customers.csv"),
                              "customer_id,FN,Active,club_member_status,fashion_news_frequency,age,postal_code\n" + c +
                                  ",,,ACTIVE,NONE,30,p\n");
    hmrec::testing::WriteFile(dir_.File("transactions_train.csv"),
                              "t_dat,customer_id,article_id,price,sales_channel_id\n"
                              "2020-01-01," +
                                  c +
                                  ",0108775011,0.01,1\n"
                                  "2020-01-02," +
                                  c +
                                  ",0108775012,0.01,1\n"
                                  "2020-01-02," +
                                  c +
                                  ",0108775013,0.01,1\n"
                                  "2020-01-03," +
                                  c + ",0108775014,0.01,1\n");
    LoadOptions opts;
    opts.use_cache = false;
    opts.show_progress = false;
    ds_ = std::move(*LoadDataset(dir_.path(), opts));
  }
  TempDir dir_;
  std::unique_ptr<Dataset> ds_;
};

TEST_F(LeakageTest, HistoryAndArticleFeaturesSeeOnlyEarlierDays) {
  config::TrainerConfig cfg = SmallConfig();
  cfg.set_window_days(0);
  FeatureSpace space = FeatureSpace::Build(*ds_, cfg.model());
  TrainingData td = TrainingData::Build(*ds_, space, cfg);
  ASSERT_EQ(td.examples().size(), 4u);
  std::vector<uint32_t> order(4);
  std::iota(order.begin(), order.end(), 0);
  Batch b;
  td.FillBatch(order, 0, 4, &b);
  const int h = space.history_length();
  // Expected history (article rows + 1, most recent first) per example.
  std::map<int32_t, std::vector<int32_t>> want = {{0, {}}, {1, {1}}, {2, {1}}, {3, {3, 2, 1}}};
  for (int i = 0; i < 4; ++i) {
    const int32_t article = b.article_rows[i];
    std::vector<int32_t> got;
    for (int k = 0; k < h && b.history[i * h + k] != 0; ++k) got.push_back(b.history[i * h + k]);
    if (article == 1 || article == 2) {
      // B and C were bought the same day: neither sees the other.
      EXPECT_EQ(got, std::vector<int32_t>{1}) << "article row " << article;
    } else {
      EXPECT_EQ(got, want[article]) << "article row " << article;
    }
    // History-length band counts only earlier purchases.
    EXPECT_EQ(b.customer_fields[i * kCustomerFields + 6], article == 0 ? 0 : (article == 3 ? 3 : 1));
    // An article's "days since first sale" is 0 (never sold) on its first day.
    EXPECT_EQ(b.article_fields[i * kArticleFields + 1 + kArticleCategoricalFields], 0);
    EXPECT_EQ(b.article_fields[i * kArticleFields + 2 + kArticleCategoricalFields], 0);
  }
  // Exported features are as of the day after the data: D has sold once.
  std::vector<int32_t> af;
  td.EncodeArticles(td.as_of_day(), &af);
  EXPECT_EQ(af[3 * kArticleFields + 2 + kArticleCategoricalFields], 1);
}

// Article-id dropout: that share of a batch's examples shows the article
// tower the unknown id (0) with the article's attributes; the same order
// gives the same batch; an article no example trained is exported by the
// unknown id. Without dropout, every id is shown.
TEST_F(LeakageTest, ArticleIdDropoutHidesIdsAndStandsInForUntrainedArticles) {
  config::TrainerConfig cfg = SmallConfig();
  cfg.set_window_days(1);  // only D's day: A, B and C have no example
  FeatureSpace space = FeatureSpace::Build(*ds_, cfg.model());
  std::vector<int32_t> af;
  TrainingData plain = TrainingData::Build(*ds_, space, cfg);
  plain.EncodeArticles(plain.as_of_day(), &af);
  for (int a = 0; a < 4; ++a) EXPECT_EQ(af[a * kArticleFields], a + 1);
  cfg.mutable_model()->set_article_id_dropout(0.5);
  TrainingData td = TrainingData::Build(*ds_, space, cfg);
  ASSERT_EQ(td.examples().size(), 1u);
  td.EncodeArticles(td.as_of_day(), &af);
  EXPECT_EQ(af[0 * kArticleFields], 0);
  EXPECT_EQ(af[1 * kArticleFields], 0);
  EXPECT_EQ(af[2 * kArticleFields], 0);
  EXPECT_EQ(af[3 * kArticleFields], 4) << "D has an example: its own id";
  EXPECT_EQ(af[0 * kArticleFields + 1], af[3 * kArticleFields + 1]) << "the attributes stay";
  // The one example, at 2,000 positions of an order: about half hidden, the
  // same each time.
  std::vector<uint32_t> order(2000, 0);
  Batch b, again;
  td.FillBatch(order, 0, order.size(), &b);
  td.FillBatch(order, 0, order.size(), &again);
  int hidden = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const int32_t id = b.article_fields[i * kArticleFields];
    EXPECT_TRUE(id == 0 || id == 4) << id;
    hidden += id == 0;
    EXPECT_EQ(b.article_rows[i], 3) << "the label stays the article's";
  }
  EXPECT_EQ(b.article_fields, again.article_fields);
  EXPECT_NEAR(hidden / 2000.0, 0.5, 0.05);
  cfg.mutable_model()->set_article_id_dropout(1.0);
  TrainerOptions o;
  o.work_dir = dir_.File("work");
  EXPECT_THAT(std::string(Trainer::Create(cfg, *ds_, nullptr, o).status().message()),
              ::testing::HasSubstr("article_id_dropout"));
}

}  // namespace
}  // namespace hmrec
