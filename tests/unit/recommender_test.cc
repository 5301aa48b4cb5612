#include "server/recommender.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <thread>

#include <torch/serialize.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "bundle/bundle.h"
#include "candidates/ranking_config.h"
#include "common/text_proto.h"
#include "data/dataset_cache.h"
#include "data/history.h"
#include "datagen/generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index_builder/builder.h"
#include "index_builder/catalogue_refresh.h"
#include "model/tower_runner.h"
#include "model/towers.h"
#include "tests/unit/test_util.h"
#include "tests/unit/tiny_bundle.h"
#include "trainer/ranking_passes.h"
#include "trainer/retriever.h"
#include "trainer/trainer.h"

namespace hmrec {
namespace {

using hmrec::testing::TempDir;

// Rewrites the bundle's customer tower with NaN weights and re-records its
// checksum, as a training run that diverged would have exported it.
void PoisonCustomerTower(const std::string& bundle) {
  auto manifest = ReadManifest(bundle);
  ASSERT_TRUE(manifest.ok());
  config::FeatureVocabularies vocab;
  ASSERT_TRUE(ReadTextProto(bundle + "/" + kVocabulariesFile, &vocab).ok());
  auto space = FeatureSpace::FromProto(vocab);
  ASSERT_TRUE(space.ok());
  CustomerTower tower(space->CustomerFieldSizes(), static_cast<int64_t>(space->num_articles()) + 1,
                      space->HistoryAttributeSizes(), std::vector<int32_t>(), manifest->trainer().model());
  const std::string path = bundle + "/" + kCustomerTowerFile;
  torch::load(tower, path);
  {
    torch::NoGradGuard no_grad;
    for (torch::Tensor& p : tower->parameters()) p.fill_(std::numeric_limits<float>::quiet_NaN());
  }
  torch::save(tower, path);
  ASSERT_TRUE(RecordBundleFile(bundle, kCustomerTowerFile, &*manifest).ok());
  ASSERT_TRUE(WriteManifest(bundle, *manifest).ok());
}

// A tiny trained and sealed bundle, shared by the tests.
class RecommenderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto tiny = hmrec::testing::MakeTinyBundles(*dir_, {"sealed", "unsealed", "ivf"}, {"sealed"});
    ds_ = tiny.ds.release();
    trainer_ = tiny.trainer.release();
    // An approximate index that returns fewer than k articles when it
    // probes one list of 64.
    config::IndexBuilderConfig ivf;
    ivf.set_index_type("ivf");
    ivf.set_ivf_nlist(64);
    ivf.set_ivf_nprobe(1);
    auto built = BuildServableBundle(dir_->File("bundles/ivf"), *ds_, ivf, false);
    ASSERT_TRUE(built.ok()) << built.status();
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
  RecommenderOptions retrieval_only;
  retrieval_only.ranking = false;  // the search's own order
  auto r = Recommender::Load(dir_->File("bundles/sealed"), retrieval_only);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->version(), "sealed");
  std::vector<uint32_t> customers = {3, 10, 500};
  std::vector<absl::string_view> ids;
  for (uint32_t c : customers) ids.push_back(ds_->customer_id(c));
  std::vector<Recommendation> out;
  RecommendScratch scratch;
  ASSERT_TRUE((*r)->Recommend(ids, 12, &out, nullptr, 0, &scratch).ok());
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
      EXPECT_NEAR(out[i].scores[k], (1 - all[k].first) / 2, 1e-4) << "(1 + cosine) / 2";
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
    RecommendScratch scratch;
    ASSERT_TRUE((*r)->Recommend(ids, 12, &answers.back(), nullptr, 0, &scratch).ok());
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

// The ranker's two evaluators (the native forest, the default, and
// XGBoost's predictor) serve the same ranked lists with the same scores.
TEST_F(RecommenderTest, RankerEvaluatorsServeTheSameLists) {
  std::vector<absl::string_view> ids;
  for (uint32_t c = 0; c < 300; ++c) ids.push_back(ds_->customer_id(c));
  std::vector<std::vector<Recommendation>> answers;
  for (const char* how : {"", "xgboost"}) {
    RecommenderOptions options;
    options.ranker_evaluator = how;
    options.ranker_threads = 2;
    auto r = Recommender::Load(dir_->File("bundles/sealed"), options);
    ASSERT_TRUE(r.ok()) << how << ": " << r.status();
    ASSERT_TRUE((*r)->ranking());
    EXPECT_EQ((*r)->ranker_evaluator(), *how == 0 ? "native" : how);
    answers.emplace_back();
    RecommendScratch scratch;
    ASSERT_TRUE((*r)->Recommend(ids, 12, &answers.back(), nullptr, 0, &scratch).ok());
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(answers[1][i].article_ids, answers[0][i].article_ids) << "customer " << i;
    for (size_t j = 0; j < answers[0][i].scores.size(); ++j)
      EXPECT_NEAR(answers[1][i].scores[j], answers[0][i].scores[j], 1e-5);
  }
  RecommenderOptions bad;
  bad.ranker_evaluator = "treelite";
  auto r = Recommender::Load(dir_->File("bundles/sealed"), bad);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("'treelite'"));
}

TEST_F(RecommenderTest, UnknownCustomersGetTheFallbackInOrder) {
  auto r = Recommender::Load(dir_->File("bundles/sealed"), RecommenderOptions());
  ASSERT_TRUE(r.ok());
  const std::string unknown(64, 'e');
  std::vector<absl::string_view> ids = {unknown, ds_->customer_id(7), unknown};
  std::vector<Recommendation> out;
  RecommendScratch scratch;
  ASSERT_TRUE((*r)->Recommend(ids, 5, &out, nullptr, 0, &scratch).ok());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(out[0].fallback);
  EXPECT_FALSE(out[1].fallback);
  EXPECT_TRUE(out[2].fallback);
  EXPECT_EQ(out[0].article_ids.size(), 5u);
  EXPECT_EQ(out[0].article_ids, out[2].article_ids);
  EXPECT_EQ(out[1].article_ids.size(), 5u);
}

// One feature definition: what the server computes for a customer from the
// feature store equals what the trainer computes from the CSVs for the same
// day — the candidates and every feature of every candidate.
TEST_F(RecommenderTest, ServedRankingFeaturesEqualTheOfflineOnes) {
  auto r = Recommender::Load(dir_->File("bundles/sealed"), RecommenderOptions());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE((*r)->ranking());
  const config::RankingConfig rc = WithRankingDefaults((*r)->manifest().trainer().ranking());
  const CustomerHistory history = CustomerHistory::Build(ds_->transactions, ds_->customers.size());
  const int32_t as_of = ds_->last_day + 1;
  auto retriever = TwoTowerRetriever::Load(dir_->File("bundles/sealed"), *ds_, 1);
  ASSERT_TRUE(retriever.ok()) << retriever.status();
  auto built = BuildRankingTables(*ds_, history, as_of, rc, retriever->get());
  ASSERT_TRUE(built.ok()) << built.status();
  const RankingTables& tables = *built;
  ASSERT_GT(tables.num_clusters(), 0) << "the neighbours source's clusters";
  // The two-tower source searches the articles sold in its window, offline as online.
  const std::vector<int64_t> searched = TwoTowerSearchRows(tables, rc);
  ASSERT_LT(searched.size(), tables.num_articles()) << "the window should leave some articles out";
  (*retriever)->SearchOnly(as_of, searched);
  const int nf = NumRankingFeatures();
  const int cosine =
      static_cast<int>(std::find(RankingFeatureNames().begin(), RankingFeatureNames().end(), "two_tower_cosine") -
                       RankingFeatureNames().begin());
  const int tt_score =
      static_cast<int>(std::find(RankingFeatureNames().begin(), RankingFeatureNames().end(), "src_two_tower_score") -
                       RankingFeatureNames().begin());
  int customers = 0, rows = 0, from_neighbours = 0, from_style = 0;
  for (uint32_t c = 0; c < ds_->customers.size(); c += 5) {
    auto online = (*r)->RankingInputsOf(ds_->customer_id(c));
    ASSERT_TRUE(online.ok()) << online.status();
    CustomerView view;
    BuildCustomerView(history, c, ds_->customers[c].age, as_of, HistoryLimitsOf(rc), &view);
    std::vector<float> emb;
    std::vector<int64_t> hits;
    std::vector<float> hit_scores;
    ASSERT_TRUE(
        (*retriever)->Retrieve(*ds_, history, {c}, as_of, rc.two_tower_candidates(), &emb, &hits, &hit_scores).ok());
    CandidateScratch cs;
    std::vector<Candidate> cands;
    GenerateCandidates(
        view, tables,
        TwoTowerHits{hits.data(), hit_scores.data(), rc.two_tower_candidates(), emb.data(), (*retriever)->dim()}, rc,
        &cs, &cands);
    for (const Candidate& x : cands) {
      from_neighbours += x.from(kNeighbours);
      from_style += x.from(kStyleBuyers);
    }
    std::vector<float> features(cands.size() * nf);
    FeatureScratch fs;
    ComputeRankingFeatures(view, tables, cands,
                           TwoTowerEmbeddings{emb.data(), (*retriever)->article_embeddings(), (*retriever)->dim()}, &fs,
                           features.data());
    ASSERT_EQ(online->view.purchases.size(), view.purchases.size()) << "customer " << c;
    ASSERT_EQ(online->candidates.size(), cands.size()) << "customer " << c;
    for (size_t i = 0; i < cands.size(); ++i) ASSERT_EQ(online->candidates[i].article, cands[i].article);
    for (size_t i = 0; i < features.size(); ++i) {
      const float a = online->features[i], b = features[i];
      const int col = static_cast<int>(i % nf);
      if ((col == cosine || col == tt_score) && !(std::isnan(a) && std::isnan(b))) {
        // The tower runs on batches of other sizes online and offline: the
        // same inputs, float sums in another order.
        ASSERT_NEAR(a, b, 1e-5) << "customer " << c << " " << RankingFeatureNames()[col];
      } else {
        ASSERT_TRUE(a == b || (std::isnan(a) && std::isnan(b)))
            << "customer " << c << " " << RankingFeatureNames()[col] << ": online " << a << ", offline " << b;
      }
    }
    ++customers;
    rows += static_cast<int>(cands.size());
  }
  EXPECT_EQ(customers, 200);
  EXPECT_GT(rows, 5000);
  EXPECT_GT(from_neighbours, 200) << "every source is covered";
  EXPECT_GT(from_style, 200) << "every source is covered";
}

// Request filters: never an excluded article, nothing bought in the window,
// only the included groups; a narrow filter still gets k, from the popular
// list, filtered.
TEST_F(RecommenderTest, FiltersAreHonouredAndStillGiveK) {
  auto r = Recommender::Load(dir_->File("bundles/sealed"), RecommenderOptions());
  ASSERT_TRUE(r.ok());
  const ArticleTable& articles = (*r)->articles();
  // A customer who bought in the last 30 days.
  uint32_t buyer = 0;
  const CustomerHistory history = CustomerHistory::Build(ds_->transactions, ds_->customers.size());
  while (history.count(buyer) == 0 || history.last_day(buyer) < ds_->last_day - 10) ++buyer;
  const std::string unknown(64, 'e');
  const std::vector<absl::string_view> ids = {ds_->customer_id(buyer), unknown};
  std::vector<Recommendation> plain;
  RecommendScratch scratch;
  ASSERT_TRUE((*r)->Recommend(ids, 30, &plain, nullptr, 0, &scratch).ok());

  RequestOptions o;
  o.k = 30;
  o.filters.exclude_article_ids.insert(plain[0].article_ids[0]);
  o.filters.exclude_purchased_within_days = 30;
  o.filters.index_group_names = {
      std::string(articles.Get(articles.Row(plain[0].article_ids[1]), ArticleTable::kIndexGroup))};
  ASSERT_TRUE((*r)->CheckFilters(o.filters).ok());
  std::vector<Recommendation> out;
  ASSERT_TRUE((*r)->Recommend(ids, {&o, &o}, &out, nullptr, 0, &scratch).ok());
  std::set<int32_t> recent;
  for (size_t x = 0; x < history.count(buyer); ++x) {
    if (history.days(buyer)[x] >= ds_->last_day + 1 - 30)
      recent.insert(ds_->articles[history.articles(buyer)[x]].article_id);
  }
  ASSERT_FALSE(recent.empty());
  for (const Recommendation& rec : out) {
    ASSERT_EQ(rec.article_ids.size(), 30u);
    EXPECT_EQ(std::set<int32_t>(rec.article_ids.begin(), rec.article_ids.end()).size(), 30u);
    for (int32_t id : rec.article_ids) {
      EXPECT_NE(id, plain[0].article_ids[0]);
      EXPECT_EQ(articles.Get(articles.Row(id), ArticleTable::kIndexGroup), o.filters.index_group_names[0]);
    }
  }
  for (int32_t id : out[0].article_ids) EXPECT_FALSE(recent.count(id)) << id << " was bought within 30 days";
  // Unknown names are refused, named.
  RequestFilters bad;
  bad.garment_group_names = {"Spacesuits"};
  absl::Status refused = (*r)->CheckFilters(bad);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("'Spacesuits'"));
}

// SimilarArticles: exactly k distinct articles, never a query article, each
// with the sources that proposed it; a basket's lists come from all its
// articles; a batch answers each request as it would alone.
TEST_F(RecommenderTest, SimilarArticlesAreKDistinctOthersWithTheirReasons) {
  auto r = Recommender::Load(dir_->File("bundles/sealed"), RecommenderOptions());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE((*r)->ranking());
  const ArticleTable& articles = (*r)->articles();
  std::vector<RequestOptions> requests;
  for (uint32_t row = 0; row < articles.size(); row += articles.size() / 25) {
    RequestOptions o;
    o.k = 12;
    o.explain = true;
    auto q = std::make_shared<SimilarQuery>();
    q->article_ids = {articles.article_id(row)};
    if (requests.size() % 5 == 4) q->article_ids.push_back(articles.article_id((row + 7) % articles.size()));
    o.similar = q;
    requests.push_back(o);
  }
  std::vector<const RequestOptions*> all;
  for (const RequestOptions& o : requests) all.push_back(&o);
  std::vector<Recommendation> out;
  Recommender::SimilarScratch scratch;
  double seconds = -1;
  ASSERT_TRUE((*r)->Similar(std::vector<absl::string_view>(all.size()), all, &out, &seconds, 0, &scratch).ok());
  EXPECT_GE(seconds, 0);
  ASSERT_EQ(out.size(), requests.size());
  std::map<std::string, int> by_source;
  for (size_t i = 0; i < out.size(); ++i) {
    const Recommendation& rec = out[i];
    const std::vector<int32_t>& query = requests[i].similar->article_ids;
    ASSERT_EQ(rec.article_ids.size(), 12u);
    EXPECT_FALSE(rec.fallback);
    EXPECT_TRUE(rec.unknown_article_ids.empty());
    EXPECT_EQ(std::set<int32_t>(rec.article_ids.begin(), rec.article_ids.end()).size(), 12u);
    ASSERT_EQ(rec.explanations.size(), 12u);
    for (size_t j = 0; j < 12; ++j) {
      EXPECT_EQ(std::count(query.begin(), query.end(), rec.article_ids[j]), 0) << "a query article came back";
      if (j > 0) EXPECT_LE(rec.scores[j], rec.scores[j - 1]);
      ASSERT_FALSE(rec.explanations[j].reasons.empty());
      for (const Reason& why : rec.explanations[j].reasons) {
        if (why.source == kPopularSource) continue;
        ASSERT_GE(why.source, kSimilarSourceBase);
        const int src = why.source - kSimilarSourceBase;
        by_source[SimilarSourceName(src)] += 1;
        if (src == kSimilarBoughtTogether || src == kSimilarSameProduct) {
          EXPECT_EQ(std::count(query.begin(), query.end(), why.anchor_article_id), 1) << "anchor not a query article";
        }
        if (src == kSimilarSameProduct) {
          EXPECT_EQ(articles.product_code(static_cast<uint32_t>(articles.Row(rec.article_ids[j]))),
                    articles.product_code(static_cast<uint32_t>(articles.Row(why.anchor_article_id))));
        }
      }
    }
    // Alone, the same answer.
    std::vector<Recommendation> alone;
    ASSERT_TRUE((*r)->Similar({""}, {&requests[i]}, &alone, nullptr, 0, &scratch).ok());
    EXPECT_EQ(alone[0].article_ids, rec.article_ids) << "request " << i;
  }
  for (const char* source : {"embedding", "bought_together", "same_product", "popular_in_type"}) {
    EXPECT_GT(by_source[source], 0) << source << " never proposed anything";
  }
}

// An article nobody bought still gets k similar articles, mostly of its own
// product type (its embedding comes from its attributes; its type's best
// sellers are proposed).
TEST_F(RecommenderTest, ANeverBoughtArticleGetsSimilarArticlesOfItsType) {
  auto r = Recommender::Load(dir_->File("bundles/sealed"), RecommenderOptions());
  ASSERT_TRUE(r.ok()) << r.status();
  const ArticleTable& articles = (*r)->articles();
  std::vector<int64_t> sold(ds_->articles.size(), 0);
  for (uint32_t a : ds_->transactions.article) ++sold[a];
  std::map<uint32_t, int> type_count;
  for (uint32_t row = 0; row < articles.size(); ++row) type_count[articles.ValueId(row, ArticleTable::kProductType)]++;
  double same = 0, chance = 0, n = 0;
  Recommender::SimilarScratch scratch;
  for (uint32_t a = 0; a < ds_->articles.size(); ++a) {
    if (sold[a] != 0) continue;
    const uint32_t row = static_cast<uint32_t>(articles.Row(ds_->articles[a].article_id));
    RequestOptions o;
    o.k = 12;
    o.similar = std::make_shared<SimilarQuery>(SimilarQuery{{ds_->articles[a].article_id}, false});
    std::vector<Recommendation> out;
    ASSERT_TRUE((*r)->Similar({""}, {&o}, &out, nullptr, 0, &scratch).ok());
    ASSERT_EQ(out[0].article_ids.size(), 12u);
    const uint32_t type = articles.ValueId(row, ArticleTable::kProductType);
    for (int32_t id : out[0].article_ids) {
      same += articles.ValueId(static_cast<uint32_t>(articles.Row(id)), ArticleTable::kProductType) == type;
      n += 1;
    }
    chance += 12.0 * type_count[type] / articles.size();
  }
  ASSERT_GT(n, 0) << "the tiny world has no article that never sold";
  EXPECT_GT(same / n, 0.5) << "chance " << chance / n;
  EXPECT_GT(same / n, 3 * chance / n);
}

// A request naming a known customer is ordered for them (the same
// candidates, a "for_customer" reason on each, personalised); an unknown
// customer gets the unpersonalised list; customers differ.
TEST_F(RecommenderTest, SimilarArticlesForACustomerAreOrderedForThem) {
  auto r = Recommender::Load(dir_->File("bundles/sealed"), RecommenderOptions());
  ASSERT_TRUE(r.ok()) << r.status();
  Recommender::SimilarScratch scratch;
  RequestOptions o;
  o.k = 12;
  o.explain = true;
  o.similar =
      std::make_shared<SimilarQuery>(SimilarQuery{{ds_->articles[ds_->transactions.article[0]].article_id}, false});
  std::vector<Recommendation> plain;
  ASSERT_TRUE((*r)->Similar({""}, {&o}, &plain, nullptr, 0, &scratch).ok());
  EXPECT_FALSE(plain[0].personalised);
  const std::string unknown(64, 'e');
  std::vector<Recommendation> out;
  ASSERT_TRUE((*r)->Similar({unknown}, {&o}, &out, nullptr, 0, &scratch).ok());
  EXPECT_FALSE(out[0].personalised);
  EXPECT_EQ(out[0].article_ids, plain[0].article_ids);
  std::set<std::vector<int32_t>> lists;
  int differ = 0;
  for (uint32_t c = 0; c < 40; ++c) {
    const std::string id(ds_->customer_id(c));
    ASSERT_TRUE((*r)->Similar({id}, {&o}, &out, nullptr, 0, &scratch).ok());
    ASSERT_TRUE(out[0].personalised) << id;
    ASSERT_EQ(out[0].article_ids.size(), 12u);
    differ += out[0].article_ids != plain[0].article_ids;
    lists.insert(out[0].article_ids);
    for (const Explanation& e : out[0].explanations) {
      bool mine = false;
      for (const Reason& reason : e.reasons) mine = mine || reason.source == kSimilarSourceBase + kSimilarForCustomer;
      EXPECT_TRUE(mine || e.reasons.front().source == kPopularSource);
    }
    for (size_t j = 1; j < out[0].scores.size(); ++j) EXPECT_LE(out[0].scores[j], out[0].scores[j - 1]);
  }
  EXPECT_GT(differ, 20) << "a customer's taste moves the list";
  EXPECT_GT(lists.size(), 5u);
}

// Unknown ids are reported and the rest answered; none known: the popular
// list, flagged; filters and exclude_same_product_code hold, still k.
TEST_F(RecommenderTest, SimilarArticlesHonourFiltersAndReportUnknownIds) {
  auto r = Recommender::Load(dir_->File("bundles/sealed"), RecommenderOptions());
  ASSERT_TRUE(r.ok()) << r.status();
  const ArticleTable& articles = (*r)->articles();
  // An article with siblings (other variants of its product).
  uint32_t row = 0;
  auto siblings = [&](uint32_t x) {
    int n = 0;
    for (uint32_t y = 0; y < articles.size(); ++y) n += y != x && articles.product_code(y) == articles.product_code(x);
    return n;
  };
  while (siblings(row) == 0) ++row;
  const int32_t id = articles.article_id(row);
  RequestOptions o;
  o.k = 20;
  o.explain = true;
  o.similar = std::make_shared<SimilarQuery>(SimilarQuery{{999999999, id}, true});
  o.filters.index_group_names = {std::string(articles.Get(row, ArticleTable::kIndexGroup))};
  RequestOptions none;
  none.k = 12;
  none.similar = std::make_shared<SimilarQuery>(SimilarQuery{{999999998}, false});
  std::vector<Recommendation> out;
  Recommender::SimilarScratch scratch;
  ASSERT_TRUE((*r)->Similar({"", ""}, {&o, &none}, &out, nullptr, 0, &scratch).ok());
  EXPECT_EQ(out[0].unknown_article_ids, std::vector<int32_t>{999999999});
  EXPECT_FALSE(out[0].fallback);
  ASSERT_EQ(out[0].article_ids.size(), 20u);
  for (int32_t x : out[0].article_ids) {
    const uint32_t xr = static_cast<uint32_t>(articles.Row(x));
    EXPECT_NE(articles.product_code(xr), articles.product_code(row)) << x << " is a variant of the query";
    EXPECT_EQ(articles.Get(xr, ArticleTable::kIndexGroup), o.filters.index_group_names[0]);
  }
  EXPECT_TRUE(out[1].fallback);
  EXPECT_EQ(out[1].unknown_article_ids, std::vector<int32_t>{999999998});
  EXPECT_EQ(out[1].article_ids.size(), 12u);
  EXPECT_EQ(out[1].filled_from_popular, 12);
  // Without the exclusion, the variants come back (same_product).
  o.similar = std::make_shared<SimilarQuery>(SimilarQuery{{id}, false});
  o.filters = RequestFilters();
  ASSERT_TRUE((*r)->Similar({""}, {&o}, &out, nullptr, 0, &scratch).ok());
  int variants = 0;
  for (int32_t x : out[0].article_ids)
    variants += articles.product_code(static_cast<uint32_t>(articles.Row(x))) == articles.product_code(row);
  EXPECT_GT(variants, 0);
}

// `scores` is one scale, [0, 1], never rising down a list, whatever made the
// list (and a filter that fewer than k articles pass answers those, saying
// so):
// list: the ranker (with the cascade's partially scored rows), retrieval
// only, the popular fill under a narrow filter, the fallback. A client that
// sorts by score keeps the order.
TEST_F(RecommenderTest, ScoresNeverRiseDownAnyListOfAThousandCustomers) {
  const ArticleTable* articles = nullptr;
  for (const bool ranking : {true, false}) {
    RecommenderOptions ro;
    ro.ranking = ranking;
    auto r = Recommender::Load(dir_->File("bundles/sealed"), ro);
    ASSERT_TRUE(r.ok()) << r.status();
    articles = &(*r)->articles();
    std::vector<std::string> ids;
    for (uint32_t c = 0; c < 1000 && c < ds_->customers.size(); ++c) ids.emplace_back(ds_->customer_id(c));
    ids.push_back(std::string(64, 'e'));  // the fallback
    const std::vector<absl::string_view> views(ids.begin(), ids.end());
    for (const bool narrow : {false, true}) {
      RequestOptions o;
      o.k = 40;
      int passing = static_cast<int>(articles->size());
      if (narrow) {  // the rarest garment group: most of the list from the fill
        std::map<std::string, int> count;
        for (uint32_t a = 0; a < articles->size(); ++a)
          ++count[std::string(articles->Get(a, ArticleTable::kGarmentGroup))];
        const auto rarest =
            std::min_element(count.begin(), count.end(), [](auto& x, auto& y) { return x.second < y.second; });
        o.filters.garment_group_names = {rarest->first};
        passing = rarest->second;
      }
      std::vector<const RequestOptions*> options(ids.size(), &o);
      std::vector<Recommendation> out;
      RecommendScratch scratch;
      ASSERT_TRUE((*r)->Recommend(views, options, &out, nullptr, 0, &scratch).ok());
      for (const Recommendation& rec : out) {
        // Fewer than k pass the filter: all of them, and the result says so.
        ASSERT_EQ(static_cast<int>(rec.article_ids.size()), std::min(o.k, passing));
        EXPECT_EQ(rec.fewer_than_k, passing < o.k);
        for (size_t i = 0; i < rec.scores.size(); ++i) {
          ASSERT_GE(rec.scores[i], 0.0f);
          ASSERT_LE(rec.scores[i], i > 0 ? rec.scores[i - 1] : 1.0f)
              << "ranking " << ranking << " narrow " << narrow << " position " << i;
        }
      }
    }
  }
}

// A filter narrows the sources, not only the list: under a narrow garment
// group the ranked list is still made of the customer's candidates (the
// search runs within the group, and so do the other sources), never the
// popular fill; without a ranker it is the exact top k within the group. A
// customer with a filter and one without share a batch unharmed, and
// requests that allow the same articles share one restricted search.
TEST_F(RecommenderTest, ANarrowFilterIsServedFromTheSourcesNotTheFill) {
  auto emb = ReadArticleEmbeddings(dir_->File("bundles/sealed/") + kArticleEmbeddingsFile);
  ASSERT_TRUE(emb.ok());
  std::vector<uint32_t> customers;
  for (uint32_t c = 0; c < 200; ++c) customers.push_back(c);
  auto trained = trainer_->EmbedCustomers(customers);
  ASSERT_TRUE(trained.ok());
  for (const bool ranking : {true, false}) {
    RecommenderOptions ro;
    ro.ranking = ranking;
    auto r = Recommender::Load(dir_->File("bundles/sealed"), ro);
    ASSERT_TRUE(r.ok()) << r.status();
    const ArticleTable& articles = (*r)->articles();
    // The smallest garment group of at least 60 articles.
    std::map<std::string, int> count;
    for (uint32_t a = 0; a < articles.size(); ++a) ++count[std::string(articles.Get(a, ArticleTable::kGarmentGroup))];
    std::string group;
    for (const auto& [name, n] : count) {
      if (n >= 60 && (group.empty() || n < count[group])) group = name;
    }
    ASSERT_FALSE(group.empty());
    ASSERT_LT(count[group], static_cast<int>(articles.size()) / 4) << "not a narrow filter";
    RequestOptions filtered, plain;
    filtered.k = plain.k = 12;
    filtered.explain = plain.explain = true;
    filtered.filters.garment_group_names = {group};
    // Customer 2c filtered, 2c+1 not, in one batch.
    std::vector<absl::string_view> ids;
    std::vector<const RequestOptions*> options;
    for (uint32_t c : customers) {
      ids.push_back(ds_->customer_id(c));
      options.push_back(c % 2 == 0 ? &filtered : &plain);
    }
    std::vector<Recommendation> mixed, alone;
    RecommendScratch scratch;
    ASSERT_TRUE((*r)->Recommend(ids, options, &mixed, nullptr, 0, &scratch).ok());
    ASSERT_TRUE(
        (*r)->Recommend(ids, std::vector<const RequestOptions*>(ids.size(), &plain), &alone, nullptr, 0, &scratch)
            .ok());
    int from_two_tower = 0;
    for (uint32_t c : customers) {
      const Recommendation& rec = mixed[c];
      ASSERT_EQ(rec.article_ids.size(), 12u);
      if (c % 2 == 1) {
        EXPECT_EQ(rec.article_ids, alone[c].article_ids) << "an unfiltered customer's list changed";
        continue;
      }
      EXPECT_EQ(rec.filled_from_popular, 0) << "customer " << c << ": the fill, not the sources";
      for (size_t i = 0; i < rec.article_ids.size(); ++i) {
        EXPECT_EQ(articles.Get(articles.Row(rec.article_ids[i]), ArticleTable::kGarmentGroup), group);
        for (const Reason& reason : rec.explanations[i].reasons) {
          EXPECT_NE(reason.source, kPopularSource);
          from_two_tower += reason.source == kTwoTower;
        }
      }
      if (ranking) continue;
      // Retrieval only: the exact top 12 of the group.
      std::vector<std::pair<float, int32_t>> all;
      for (size_t a = 0; a < emb->article_ids.size(); ++a) {
        if (articles.Get(static_cast<uint32_t>(a), ArticleTable::kGarmentGroup) != group) continue;
        float sc = 0;
        for (int d = 0; d < emb->dim; ++d) sc += (*trained)[c * emb->dim + d] * emb->values[a * emb->dim + d];
        all.push_back({-sc, emb->article_ids[a]});
      }
      std::sort(all.begin(), all.end());
      EXPECT_EQ(rec.article_ids[0], all[0].second) << "customer " << c;
      for (int x = 0; x < 12; ++x) EXPECT_NEAR(rec.scores[x], (1 - all[x].first) / 2, 1e-4) << "customer " << c;
    }
    EXPECT_GT(from_two_tower, 0);
    // One restricted search for the group, whatever order a request lists it
    // in; another for another filter.
    EXPECT_EQ((*r)->restricted_sources().builds(), 1);
    RequestOptions same = filtered, other = filtered;
    same.filters.garment_group_names = {group, group};
    other.filters.index_group_names = {std::string(articles.Get(0, ArticleTable::kIndexGroup))};
    std::vector<Recommendation> more;
    ASSERT_TRUE((*r)->Recommend({ids[0], ids[2]}, {&same, &other}, &more, nullptr, 0, &scratch).ok());
    EXPECT_EQ((*r)->restricted_sources().builds(), 2);
    EXPECT_EQ(more[0].article_ids, mixed[0].article_ids);
  }
}

// Explanations: every article carries the sources that proposed it and the
// ranker's score; a repurchase reason only for what the customer bought.
TEST_F(RecommenderTest, ExplanationsNameTheSourcesAndTheRankerScore) {
  auto r = Recommender::Load(dir_->File("bundles/sealed"), RecommenderOptions());
  ASSERT_TRUE(r.ok());
  const CustomerHistory history = CustomerHistory::Build(ds_->transactions, ds_->customers.size());
  RequestOptions o;
  o.k = 20;
  o.explain = true;
  int repurchase_reasons = 0;
  for (uint32_t c = 0; c < 100; ++c) {
    std::vector<Recommendation> out;
    RecommendScratch scratch;
    ASSERT_TRUE((*r)->Recommend({ds_->customer_id(c)}, {&o}, &out, nullptr, 0, &scratch).ok());
    const Recommendation& rec = out[0];
    ASSERT_EQ(rec.explanations.size(), rec.article_ids.size());
    EXPECT_TRUE(rec.ranked);
    std::set<int32_t> bought;
    for (size_t x = 0; x < history.count(c); ++x) bought.insert(ds_->articles[history.articles(c)[x]].article_id);
    for (size_t i = 0; i < rec.article_ids.size(); ++i) {
      const Explanation& e = rec.explanations[i];
      ASSERT_FALSE(e.reasons.empty());
      // The served score: the ranker's margin through a logistic, never above
      // the score before it (a cascade-dropped row carries margin - kDropped).
      if (static_cast<int>(i) < static_cast<int>(rec.article_ids.size()) - rec.filled_from_popular) {
        const float margin = e.ranker_score < -kDropped / 2 ? e.ranker_score + kDropped : e.ranker_score;
        EXPECT_NEAR(std::min(1.0f / (1.0f + std::exp(-margin)), i > 0 ? rec.scores[i - 1] : 1.0f), rec.scores[i], 1e-6);
      }
      EXPECT_GE(rec.scores[i], 0.0f);
      EXPECT_LE(rec.scores[i], i > 0 ? rec.scores[i - 1] : 1.0f) << "scores rise down the list";
      for (const Reason& reason : e.reasons) {
        if (reason.source == kRepurchase) {
          EXPECT_TRUE(bought.count(rec.article_ids[i]));
          ++repurchase_reasons;
        }
        if (reason.source == kCoPurchase || reason.source == kSameProduct)
          EXPECT_TRUE(bought.count(reason.anchor_article_id));
      }
    }
  }
  EXPECT_GT(repurchase_reasons, 0);
}

// A catalogue refresh adds articles the ranker has never seen sell (no
// sales features: it puts them far down). Where a customer's candidates hold
// one, the best-ranked of them takes new_article_position (unless one is
// higher already), the rest of the list moves down one, explained as
// new_in_catalogue; off, a list shorter than the position, or a filter that
// excludes them: the ranker's list as it is.
TEST_F(RecommenderTest, ArticlesACatalogueRefreshAddedKeepAPlaceInRankedLists) {
  // 30 new articles: the attributes of the 30 best sellers of the last two
  // weeks (types the customers buy now), new ids.
  const int32_t last = *std::max_element(ds_->transactions.day.begin(), ds_->transactions.day.end());
  std::vector<int> sold(ds_->articles.size(), 0);
  for (size_t t = 0; t < ds_->transactions.size(); ++t) {
    if (ds_->transactions.day[t] > last - 14) ++sold[ds_->transactions.article[t]];
  }
  std::vector<size_t> rows(ds_->articles.size());
  std::iota(rows.begin(), rows.end(), 0);
  std::stable_sort(rows.begin(), rows.end(), [&](size_t a, size_t b) { return sold[a] > sold[b]; });
  const std::string text = hmrec::testing::ReadFile(dir_->File("data/articles.csv"));
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  std::string newer = text;
  std::set<int32_t> added;
  for (int i = 0; i < 30; ++i) {
    const std::string& line = lines[rows[static_cast<size_t>(i)] + 1];  // after the header
    const int32_t id = 999999001 + i;
    added.insert(id);
    newer += absl::StrCat("0", id, line.substr(line.find(',')), "\n");
  }
  std::filesystem::create_directories(dir_->File("newer"));
  hmrec::testing::WriteFile(dir_->File("newer/articles.csv"), newer);
  RefreshOptions refresh;
  refresh.articles_csv = dir_->File("newer/articles.csv");
  refresh.version = "refreshed";
  config::IndexBuilderConfig flat;
  flat.set_index_type("flat");
  auto report = RefreshCatalogue(dir_->File("bundles/sealed"), refresh, flat);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->added_articles, 30);

  RecommenderOptions off;
  off.new_article_position = -1;
  auto ranked = Recommender::Load(dir_->File("bundles/refreshed"), off);
  auto placed = Recommender::Load(dir_->File("bundles/refreshed"), RecommenderOptions());
  ASSERT_TRUE(ranked.ok() && placed.ok()) << placed.status();
  const uint32_t first_added = static_cast<uint32_t>(ds_->articles.size());
  RequestOptions o;
  o.explain = true;
  RequestOptions five = o;
  five.k = 5;
  RequestOptions forty = o;
  forty.k = 40;
  RequestOptions excluding = o;
  excluding.filters.exclude_article_ids = absl::flat_hash_set<int32_t>(added.begin(), added.end());
  int candidates_hold_added = 0, moved = 0, moved_up = 0, already = 0;
  for (uint32_t c = 0; c < 300; ++c) {
    const std::string id(ds_->customer_id(c));
    auto inputs = (*placed)->RankingInputsOf(id);
    ASSERT_TRUE(inputs.ok()) << inputs.status();
    const bool holds = std::any_of(inputs->candidates.begin(), inputs->candidates.end(),
                                   [&](const Candidate& x) { return x.article >= first_added; });
    candidates_hold_added += holds;
    for (const RequestOptions* opt : {&o, &five, &excluding, &forty}) {
      std::vector<Recommendation> a, b;
      RecommendScratch sa, sb;
      ASSERT_TRUE((*ranked)->Recommend({id}, {opt}, &a, nullptr, 0, &sa).ok());
      ASSERT_TRUE((*placed)->Recommend({id}, {opt}, &b, nullptr, 0, &sb).ok());
      ASSERT_EQ(b[0].article_ids.size(), static_cast<size_t>(opt->k));
      for (size_t i = 1; i < b[0].scores.size(); ++i) EXPECT_LE(b[0].scores[i], b[0].scores[i - 1]);
      if ((opt != &o && opt != &forty) || !holds) {
        EXPECT_EQ(a[0].article_ids, b[0].article_ids) << "customer " << c << ", k " << opt->k;
        if (opt == &excluding) {
          for (int32_t x : b[0].article_ids) EXPECT_FALSE(added.count(x));
        }
        continue;
      }
      // The ranker's list: an added article within the first 12 stays as it is.
      const std::vector<int32_t>& before = a[0].article_ids;
      const std::vector<int32_t>& after = b[0].article_ids;
      auto is_added = [&](int32_t x) { return added.count(x) > 0; };
      if (std::find_if(before.begin(), before.begin() + 12, is_added) != before.begin() + 12) {
        ++already;
        EXPECT_EQ(before, after);
        continue;
      }
      // Otherwise the best-ranked added candidate is 12th, the 11 before as they were.
      ASSERT_TRUE(added.count(after[11])) << "customer " << c << ", k " << opt->k;
      EXPECT_TRUE(std::equal(before.begin(), before.begin() + 11, after.begin()));
      EXPECT_TRUE(b[0].explanations[11].new_in_catalogue);
      EXPECT_FALSE(b[0].explanations[11].reasons.empty());
      EXPECT_EQ(b[0].scores[11], a[0].scores[11]);
      for (size_t i = 0; i < after.size(); ++i) EXPECT_EQ(b[0].explanations[i].new_in_catalogue, i == 11);
      if (opt == &o) {
        ++moved;
        continue;
      }
      // k = 40: an added article the ranker put 13th..40th moved up to 12th
      // (the ones between down one); without one, the 40th fell off.
      const auto lower = std::find_if(before.begin() + 12, before.end(), is_added);
      if (lower != before.end()) {
        ++moved_up;
        EXPECT_EQ(after[11], *lower);
        EXPECT_EQ(std::set<int32_t>(before.begin(), before.end()), std::set<int32_t>(after.begin(), after.end()));
      } else {
        EXPECT_TRUE(std::equal(before.begin() + 11, before.end() - 1, after.begin() + 12));
      }
    }
  }
  std::printf(
      "of 300 customers, %d have an added article among their candidates: %d shown one in their 12 only by "
      "the placement, %d in their 40 moved up from 13th..40th, %d lists left as the ranker made them\n",
      candidates_hold_added, moved, moved_up, already);
  EXPECT_GT(moved, 0);
  EXPECT_GT(moved_up, 0);
}

// Every customer gets exactly k distinct articles: a search that finds fewer
// (IVF probing one list) is completed from the popular list, and says so.
TEST_F(RecommenderTest, EveryCustomerGetsExactlyKEvenFromAnApproximateIndex) {
  auto r = Recommender::Load(dir_->File("bundles/ivf"), RecommenderOptions());
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string unknown(64, 'e');
  std::vector<absl::string_view> ids = {unknown};
  for (uint32_t c = 0; c < 50; ++c) ids.push_back(ds_->customer_id(c));
  std::vector<Recommendation> out;
  RecommendScratch scratch;
  ASSERT_TRUE((*r)->Recommend(ids, 100, &out, nullptr, 0, &scratch).ok());
  int filled = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_EQ(out[i].article_ids.size(), 100u) << i;
    ASSERT_EQ(out[i].scores.size(), 100u) << i;
    EXPECT_EQ(std::set<int32_t>(out[i].article_ids.begin(), out[i].article_ids.end()).size(), 100u) << i;
    EXPECT_EQ(out[i].fallback, i == 0) << i;
    if (i > 0) {
      EXPECT_GT(out[i].filled_from_popular, 0) << "one IVF list of ~6 articles cannot give 100";
      filled += out[i].filled_from_popular;
    }
  }
  EXPECT_EQ(out[0].fallback_reason, kReasonUnknownCustomer);
  EXPECT_GT(filled, 0);
  // k beyond what the server allows is refused, not silently shortened.
  EXPECT_EQ((*r)->Recommend(ids, 401, &out, nullptr, 0, &scratch).code(), absl::StatusCode::kInvalidArgument);
}

// A server whose max_k exceeds the bundle's fallback could not keep the
// exactly-k promise for unknown customers: the bundle is refused at load.
TEST_F(RecommenderTest, RefusesABundleWhoseFallbackIsShorterThanMaxK) {
  RecommenderOptions options;
  options.max_k = 401;  // the tiny catalogue has 400 articles
  auto r = Recommender::Load(dir_->File("bundles/sealed"), options);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("fewer than max_k = 401"));
}

// OpenMP thread counts are per thread: a search on 2 threads must not leave
// the worker's next tower call with 2 (the faiss path sets OpenMP's count).
TEST_F(RecommenderTest, SearchLeavesTheCallersThreadCountsAsTheyWere) {
  std::vector<absl::string_view> ids;
  for (uint32_t c = 0; c < 20; ++c) ids.push_back(ds_->customer_id(c));
  for (const char* how : {"faiss", "blocked"}) {
    RecommenderOptions options;
    options.flat_search = how;
    auto r = Recommender::Load(dir_->File("bundles/sealed"), options);
    ASSERT_TRUE(r.ok());
    ConfigureWorkerThreads(1);
    std::vector<Recommendation> out;
    RecommendScratch scratch;
    ASSERT_TRUE((*r)->Recommend(ids, 12, &out, nullptr, /*search_threads=*/2, &scratch).ok());
    const ThreadCounts after = CurrentThreadCounts();
    EXPECT_EQ(after.openmp, 1) << how;
    EXPECT_EQ(after.torch_intra_op, 1) << how;
  }
}

// One loaded bundle serves every worker: concurrent calls, each with its own
// scratch, answer exactly what one thread alone answers.
TEST_F(RecommenderTest, OneRecommenderServesManyThreadsAtOnce) {
  auto loaded = Recommender::Load(dir_->File("bundles/sealed"), RecommenderOptions());
  ASSERT_TRUE(loaded.ok());
  const Recommender& r = **loaded;
  std::vector<absl::string_view> ids;
  for (uint32_t c = 0; c < 300; ++c) ids.push_back(ds_->customer_id(c));
  std::vector<Recommendation> expected;
  RecommendScratch alone;
  ASSERT_TRUE(r.Recommend(ids, 12, &expected, nullptr, 1, &alone).ok());
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      RecommendScratch scratch;
      std::vector<Recommendation> out;
      for (int i = 0; i < 10; ++i) {
        if (!r.Recommend(ids, 12, &out, nullptr, 1, &scratch).ok()) ++mismatches;
        for (size_t c = 0; c < ids.size(); ++c) mismatches += out[c].article_ids != expected[c].article_ids;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// A tower that produces NaN (a model fault) must not answer an empty list
// as if it were personalised: the customer gets the fallback, flagged.
TEST_F(RecommenderTest, ANonFiniteEmbeddingGetsTheFallbackWithItsReason) {
  TempDir copy;
  std::filesystem::copy(dir_->File("bundles/sealed"), copy.File("b"), std::filesystem::copy_options::recursive);
  PoisonCustomerTower(copy.File("b"));
  auto r = Recommender::Load(copy.File("b"), RecommenderOptions());
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<absl::string_view> ids = {ds_->customer_id(3), ds_->customer_id(4)};
  std::vector<Recommendation> out;
  RecommendScratch scratch;
  ASSERT_TRUE((*r)->Recommend(ids, 12, &out, nullptr, 0, &scratch).ok());
  for (const Recommendation& rec : out) {
    EXPECT_TRUE(rec.fallback);
    EXPECT_EQ(rec.fallback_reason, kReasonEmbeddingNotFinite);
    EXPECT_EQ(rec.article_ids.size(), 12u);
  }
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
  // A manifest whose catalogue_added_articles does not match its embeddings
  // and trained articles (a hand-edited or mixed-up bundle).
  TempDir other;
  std::filesystem::copy(dir_->File("bundles/sealed"), other.File("b"), std::filesystem::copy_options::recursive);
  auto manifest = ReadManifest(other.File("b"));
  ASSERT_TRUE(manifest.ok());
  manifest->set_catalogue_added_articles(3);
  ASSERT_TRUE(WriteManifest(other.File("b"), *manifest).ok());
  auto mixed = Recommender::Load(other.File("b"), RecommenderOptions());
  EXPECT_EQ(mixed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(mixed.status().message()), ::testing::HasSubstr("do not add up"));
}

}  // namespace
}  // namespace hmrec
