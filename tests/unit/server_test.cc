#include <faiss/IndexFlat.h>
#include <faiss/IndexIDMap.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include "bundle/bundle.h"
#include "client/batch_client.h"
#include "common/text_proto.h"
#include "data/dataset_cache.h"
#include "data/ids.h"
#include "datagen/generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index_builder/builder.h"
#include "model/tower_runner.h"
#include "prometheus/text_serializer.h"
#include "proto/recommender.grpc.pb.h"
#include "search/article_index.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/service.h"
#include "tests/unit/test_util.h"
#include "tests/unit/tiny_bundle.h"
#include "trainer/trainer.h"

namespace hmrec {
namespace {

using hmrec::testing::TempDir;
using ::testing::HasSubstr;

// The real server (hmrec::Server, as hmrec_server runs it) on 127.0.0.1:0
// over a tiny sealed bundle, with metrics over HTTP, and a client.
config::ServerConfig TestConfig(const std::string& bundle) {
  config::ServerConfig cfg;
  cfg.set_listen_address("127.0.0.1:0");
  cfg.set_metrics_address("127.0.0.1:0");
  cfg.set_bundle_path(bundle);
  cfg.set_max_batch_ids(256);
  cfg.set_max_delay_us(1000);
  cfg.set_max_queued_ids(10000);
  cfg.set_workers(1);
  cfg.set_compute_threads(1);
  cfg.set_max_k(50);
  cfg.set_max_response_bytes(1 << 20);  // 100 ids x 50 articles fit; explained, they do not
  cfg.set_max_ids_per_request(100);
  // Each server its own embedded event store (one process may hold one).
  static std::atomic<int> servers{0};
  cfg.mutable_events()->set_path(
      (std::filesystem::path(bundle).parent_path().parent_path() / ("events-" + std::to_string(servers++))).string());
  return cfg;
}

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto tiny = hmrec::testing::MakeTinyBundles(*dir_, {"v1", "v2"}, {"v1", "v2"});
    ds_ = tiny.ds.release();
    // Served by directory, not through `current`: this server never swaps.
    auto server = Server::Start(TestConfig(dir_->File("bundles/v1")));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
    channel_ = new std::shared_ptr<grpc::Channel>(Channel(server_->port()));
  }
  static void TearDownTestSuite() {
    delete channel_;
    delete server_;
    delete ds_;
    delete dir_;
  }
  static std::shared_ptr<grpc::Channel> Channel(int port) {
    return grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  }
  static grpc::Status Call(const std::shared_ptr<grpc::Channel>& channel, const v1::RecommendRequest& req,
                           v1::RecommendResponse* resp) {
    auto stub = v1::Recommender::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return stub->Recommend(&ctx, req, resp);
  }
  grpc::Status Call(const v1::RecommendRequest& req, v1::RecommendResponse* resp) { return Call(*channel_, req, resp); }

  static TempDir* dir_;
  static Dataset* ds_;
  static Server* server_;
  static std::shared_ptr<grpc::Channel>* channel_;
};
TempDir* ServerTest::dir_ = nullptr;
Dataset* ServerTest::ds_ = nullptr;
Server* ServerTest::server_ = nullptr;
std::shared_ptr<grpc::Channel>* ServerTest::channel_ = nullptr;

TEST_F(ServerTest, AnswersInRequestOrderWithFallbackFlagged) {
  v1::RecommendRequest req;
  const std::string unknown(64, 'a');
  req.add_customer_ids(std::string(ds_->customer_id(5)));
  req.add_customer_ids(unknown);
  req.add_customer_ids(std::string(ds_->customer_id(9)));
  v1::RecommendResponse resp;
  grpc::Status s = Call(req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.bundle_version(), "v1");
  ASSERT_EQ(resp.results_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(resp.results(i).customer_id(), req.customer_ids(i));
    ASSERT_EQ(resp.results(i).article_ids_size(), 12);  // k defaults to 12
    for (const std::string& id : resp.results(i).article_ids()) {
      EXPECT_EQ(id.size(), 10u);
      EXPECT_TRUE(ParseArticleId(id).ok());
    }
  }
  EXPECT_FALSE(resp.results(0).fallback());
  EXPECT_TRUE(resp.results(1).fallback());
  EXPECT_FALSE(resp.results(2).fallback());
}

TEST_F(ServerTest, BadRequestsGetInvalidArgumentNamingTheValue) {
  v1::RecommendResponse resp;
  v1::RecommendRequest empty;
  EXPECT_EQ(Call(empty, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  v1::RecommendRequest bad;
  bad.add_customer_ids(std::string(ds_->customer_id(1)));
  bad.add_customer_ids("not-a-customer\n");
  grpc::Status s = Call(bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("customer_ids[1] = 'not-a-customer\\n'"));

  v1::RecommendRequest big_k;
  big_k.add_customer_ids(std::string(ds_->customer_id(1)));
  big_k.set_k(51);
  EXPECT_THAT(Call(big_k, &resp).error_message(), HasSubstr("k = 51 out of range 1..50"));

  v1::RecommendRequest many;
  for (int i = 0; i < 101; ++i) many.add_customer_ids(std::string(ds_->customer_id(i)));
  EXPECT_THAT(Call(many, &resp).error_message(), HasSubstr("101 customer_ids, at most 100"));

  // 100,000 excluded ids for one customer (~1.4 MB): refused by count,
  // before any id is parsed, naming the limit.
  v1::RecommendRequest excluding;
  excluding.add_customer_ids(std::string(ds_->customer_id(1)));
  for (int i = 0; i < 100000; ++i) excluding.mutable_filters()->add_exclude_article_ids("0108775015");
  s = Call(excluding, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("filters.exclude_article_ids: 100000 ids, at most 1000"));
  v1::RecommendRequest names;
  names.add_customer_ids(std::string(ds_->customer_id(1)));
  for (int i = 0; i < 65; ++i) names.mutable_filters()->add_garment_group_names("Jersey Basic");
  EXPECT_THAT(Call(names, &resp).error_message(), HasSubstr("filters.garment_group_names: 65 names, at most 64"));

  // Over the 16 MiB message limit: refused by the transport before any
  // handler runs; the server goes on serving.
  v1::RecommendRequest huge;
  huge.add_customer_ids(std::string(17 << 20, 'a'));
  EXPECT_EQ(Call(huge, &resp).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  v1::RecommendRequest good;
  good.add_customer_ids(std::string(ds_->customer_id(1)));
  EXPECT_TRUE(Call(good, &resp).ok());
}

TEST_F(ServerTest, ConcurrentClientsAllServed) {
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        v1::RecommendRequest req;
        req.add_customer_ids(std::string(ds_->customer_id((t * 10 + i) % ds_->customers.size())));
        req.set_k(5);
        v1::RecommendResponse resp;
        if (Call(req, &resp).ok() && resp.results_size() == 1 && resp.results(0).article_ids_size() == 5) ++ok;
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(ok.load(), 80);
}

// The body of an HTTP/1.0 GET of 127.0.0.1:port/path ("" on failure).
std::string HttpGet(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size())) {
      char buf[65536];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || response.find(" 200 ") > response.find("\r\n")) return "";
  return body == std::string::npos ? "" : response.substr(body + 4);
}

// Returns the value of the first sample line starting with `prefix`, or -1.
double Sample(const std::string& text, const std::string& prefix) {
  size_t pos = 0;
  while ((pos = text.find(prefix, pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') {
      const size_t end = text.find('\n', pos);
      const std::string line = text.substr(pos, end - pos);
      return std::stod(line.substr(line.rfind(' ') + 1));
    }
    pos += prefix.size();
  }
  return -1;
}

TEST_F(ServerTest, MetricsRecordCallsInPrometheusText) {
  v1::RecommendRequest req;
  req.add_customer_ids(std::string(ds_->customer_id(1)));
  req.add_customer_ids(std::string(64, 'b'));  // unknown: fallback
  v1::RecommendResponse resp;
  ASSERT_TRUE(Call(req, &resp).ok());
  v1::RecommendRequest bad;
  bad.add_customer_ids("x");
  EXPECT_FALSE(Call(bad, &resp).ok());

  // Scraped over HTTP as Prometheus would.
  const std::string text = HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_THAT(text, HasSubstr("# TYPE hmrec_request_duration_seconds histogram"));
  EXPECT_GE(
      Sample(
          text,
          "hmrec_request_duration_seconds_count{arm=\"main\",caller=\"anonymous\",code=\"OK\",method=\"Recommend\"}"),
      1);
  EXPECT_GE(Sample(text,
                   "hmrec_request_duration_seconds_count{arm=\"none\",caller=\"anonymous\",code=\"INVALID_ARGUMENT\","
                   "method=\"Recommend\"}"),
            1);
  EXPECT_GE(Sample(text, "hmrec_fallback_total{reason=\"unknown_customer\"}"), 1);
  EXPECT_GE(Sample(text, "hmrec_customers_total"), 2);
  EXPECT_GE(Sample(text, "hmrec_batch_ids_count"), 1);
  EXPECT_GE(Sample(text, "hmrec_stage_duration_seconds_count{stage=\"tower\"}"), 1);
  EXPECT_GE(Sample(text, "hmrec_stage_duration_seconds_count{stage=\"queue_wait\"}"), 1);
  EXPECT_EQ(Sample(text, "hmrec_bundle_info{arm=\"main\",version=\"v1\"}"), 1);
  // No customer id ever appears in the metrics.
  EXPECT_EQ(text.find(std::string(ds_->customer_id(1))), std::string::npos);
}

// The metrics port serves /metrics and nothing else: no files, no
// directory listing, whatever the path.
// Operators autoscale on hmrec_queued_ids: it must show ids that wait.
TEST_F(ServerTest, QueueDepthGaugeShowsWaitingIds) {
  config::ServerConfig cfg = TestConfig(dir_->File("bundles/v1"));
  cfg.set_max_delay_us(1500000);  // a partial batch waits 1.5 s before it is flushed
  auto server = Server::Start(cfg);
  ASSERT_TRUE(server.ok()) << server.status();
  v1::RecommendRequest req;
  for (uint32_t c = 0; c < 10; ++c) req.add_customer_ids(std::string(ds_->customer_id(c)));
  v1::RecommendResponse resp;
  grpc::Status status;
  std::thread caller([&] { status = Call(Channel((*server)->port()), req, &resp); });
  double seen = -1;
  for (int i = 0; i < 100 && seen != 10; ++i) {
    seen = Sample(HttpGet((*server)->metrics_port(), "/metrics"), "hmrec_queued_ids");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(seen, 10);
  caller.join();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Sample(HttpGet((*server)->metrics_port(), "/metrics"), "hmrec_queued_ids"), 0);
}

// Contradicting limits are refused at start, naming the fields, instead of
// refusing valid requests forever.
TEST_F(ServerTest, ContradictingLimitsAreRefusedAtStart) {
  config::ServerConfig cfg = TestConfig(dir_->File("bundles/v1"));
  cfg.set_max_queued_ids(4000);
  cfg.set_max_ids_per_request(5000);
  auto server = Server::Start(cfg);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("max_ids_per_request (5000) exceeds max_queued_ids"));
}

// k articles for every customer, known or not; the response says why the
// fallback answered.
TEST_F(ServerTest, EveryCustomerGetsExactlyTheKAskedFor) {
  v1::RecommendRequest req;
  req.set_k(50);
  req.add_customer_ids(std::string(ds_->customer_id(5)));
  req.add_customer_ids(std::string(64, 'c'));
  v1::RecommendResponse resp;
  ASSERT_TRUE(Call(req, &resp).ok());
  ASSERT_EQ(resp.results_size(), 2);
  EXPECT_EQ(resp.results(0).article_ids_size(), 50);
  EXPECT_EQ(resp.results(1).article_ids_size(), 50);
  EXPECT_FALSE(resp.results(0).fallback());
  EXPECT_TRUE(resp.results(1).fallback());
  EXPECT_EQ(resp.results(1).fallback_reason(), "unknown customer");
}

// Ranked, explained and filtered over gRPC; unknown filter values and
// oversized explanations are refused, named.
TEST_F(ServerTest, RankedExplainedAndFilteredOverGrpc) {
  v1::RecommendRequest req;
  req.set_k(15);
  req.set_explain(true);
  req.add_customer_ids(std::string(ds_->customer_id(3)));
  req.add_customer_ids(std::string(64, 'c'));
  req.mutable_filters()->add_index_group_names(ds_->articles[0].index_group_name);
  v1::RecommendResponse resp;
  ASSERT_TRUE(Call(req, &resp).ok());
  ASSERT_EQ(resp.results_size(), 2);
  const v1::Recommendation& known = resp.results(0);
  EXPECT_TRUE(known.ranked());
  ASSERT_EQ(known.article_ids_size(), 15);
  ASSERT_EQ(known.explanations_size(), 15);
  std::set<std::string> sources;
  for (int i = 0; i < 15; ++i) {
    const int64_t row = ds_->FindArticle(*ParseArticleId(known.article_ids(i))).value();
    EXPECT_EQ(ds_->articles[row].index_group_name, ds_->articles[0].index_group_name);
    ASSERT_GT(known.explanations(i).reasons_size(), 0);
    for (const v1::Reason& r : known.explanations(i).reasons()) {
      sources.insert(r.source());
      EXPECT_FALSE(r.text().empty());
      EXPECT_GE(r.rank(), 1);
    }
  }
  EXPECT_GT(sources.size(), 1u) << "every article from one source";
  const v1::Recommendation& unknown = resp.results(1);
  EXPECT_TRUE(unknown.fallback());
  EXPECT_FALSE(unknown.ranked());
  ASSERT_EQ(unknown.explanations_size(), 15);
  EXPECT_EQ(unknown.explanations(0).reasons(0).source(), "popular");

  v1::RecommendRequest bad = req;
  bad.mutable_filters()->add_garment_group_names("Spacesuits");
  grpc::Status s = Call(bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("'Spacesuits'"));
  v1::RecommendRequest huge;
  huge.set_explain(true);
  huge.set_k(50);
  for (int i = 0; i < 100; ++i) huge.add_customer_ids(std::string(ds_->customer_id(i)));
  s = Call(huge, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("response limit"));
}

// SimilarArticles over gRPC: k distinct ids, never the query's, explained;
// malformed ids refused naming their index, unknown ones reported; calls
// ride the batch queue with Recommend calls and are counted by method.
TEST_F(ServerTest, SimilarArticlesOverGrpcBesideRecommendCalls) {
  auto stub = v1::Recommender::NewStub(*channel_);
  auto similar = [&](const v1::SimilarArticlesRequest& req, v1::SimilarArticlesResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return stub->SimilarArticles(&ctx, req, resp);
  };
  const std::string query = FormatArticleId(ds_->articles[7].article_id);
  v1::SimilarArticlesRequest req;
  req.add_article_ids(query);
  req.add_article_ids("0999999999");  // well-formed, not in the bundle
  req.set_k(10);
  req.set_explain(true);
  v1::SimilarArticlesResponse resp;
  grpc::Status s = similar(req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.bundle_version(), "v1");
  ASSERT_EQ(resp.article_ids_size(), 10);
  ASSERT_EQ(resp.explanations_size(), 10);
  EXPECT_EQ(std::set<std::string>(resp.article_ids().begin(), resp.article_ids().end()).size(), 10u);
  EXPECT_THAT(resp.unknown_article_ids(), ::testing::ElementsAre("0999999999"));
  EXPECT_FALSE(resp.fallback());
  std::set<std::string> sources;
  for (int i = 0; i < 10; ++i) {
    EXPECT_NE(resp.article_ids(i), query);
    for (const v1::Reason& r : resp.explanations(i).reasons()) {
      sources.insert(r.source());
      EXPECT_FALSE(r.text().empty());
    }
  }
  EXPECT_TRUE(sources.count("embedding")) << "no article from the embedding neighbours";

  v1::SimilarArticlesRequest bad;
  bad.add_article_ids(query);
  bad.add_article_ids("07x6016001");
  s = similar(bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("article_ids[1] = '07x6016001' is not a 10-digit article id"));
  bad.clear_article_ids();
  bad.add_article_ids(query);
  bad.set_k(51);
  EXPECT_THAT(similar(bad, &resp).error_message(), HasSubstr("k = 51 out of range 1..50"));
  v1::SimilarArticlesRequest basket;
  for (int i = 0; i < 101; ++i) basket.add_article_ids(FormatArticleId(ds_->articles[i].article_id));
  EXPECT_THAT(similar(basket, &resp).error_message(), HasSubstr("101 article_ids, at most 100 (max_similar_articles)"));
  bad.set_k(5);
  bad.mutable_filters()->set_exclude_purchased_within_days(7);
  EXPECT_THAT(similar(bad, &resp).error_message(), HasSubstr("exclude_purchased_within_days"));
  bad.clear_filters();
  bad.set_customer_id("not-a-customer");
  s = similar(bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("customer_id = 'not-a-customer' is not 64 lowercase hex characters"));
  // For a known customer: personalised, still 10 other articles; for an
  // unknown (well-formed) one: the unpersonalised list.
  v1::SimilarArticlesRequest mine = req;
  mine.set_customer_id(std::string(ds_->customer_id(ds_->transactions.customer[0])));
  v1::SimilarArticlesResponse theirs;
  ASSERT_TRUE(similar(mine, &theirs).ok());
  EXPECT_TRUE(theirs.personalised());
  EXPECT_EQ(theirs.article_ids_size(), 10);
  mine.set_customer_id(std::string(64, 'f'));
  ASSERT_TRUE(similar(mine, &theirs).ok());
  EXPECT_FALSE(theirs.personalised());
  EXPECT_TRUE(std::equal(theirs.article_ids().begin(), theirs.article_ids().end(), resp.article_ids().begin()));

  // Concurrent Recommend and SimilarArticles calls, batched together: each
  // gets its own kind of answer.
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        if ((t + i) % 2 == 0) {
          v1::RecommendRequest r;
          r.add_customer_ids(std::string(ds_->customer_id(static_cast<uint32_t>(t * 10 + i))));
          v1::RecommendResponse out;
          ok += Call(r, &out).ok() && out.results_size() == 1 && out.results(0).article_ids_size() == 12;
        } else {
          v1::SimilarArticlesResponse out;
          ok += similar(req, &out).ok() && out.article_ids_size() == 10 &&
                std::equal(out.article_ids().begin(), out.article_ids().end(), resp.article_ids().begin());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 40);
  const std::string metrics = HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_THAT(metrics, HasSubstr("method=\"SimilarArticles\""));
  EXPECT_THAT(metrics, HasSubstr("stage=\"similar\""));
}

// The batch's answers counted by kind: fallbacks by reason, articles
// filled from the popular list.
TEST(ServerMetricsTest, CountsFallbacksByReasonAndFilledArticles) {
  prometheus::Registry registry;
  ServerMetrics metrics(registry);
  std::vector<Recommendation> results(4);
  results[0].fallback = true;
  results[0].fallback_reason = kReasonUnknownCustomer;
  results[1].fallback = true;
  results[1].fallback_reason = kReasonEmbeddingNotFinite;
  results[2].filled_from_popular = 3;
  results[3].filled_from_popular = 2;
  metrics.AddResults(results);
  const std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_EQ(Sample(text, "hmrec_customers_total"), 4);
  EXPECT_EQ(Sample(text, "hmrec_fallback_total{reason=\"unknown_customer\"}"), 1);
  EXPECT_EQ(Sample(text, "hmrec_fallback_total{reason=\"embedding_not_finite\"}"), 1);
  EXPECT_EQ(Sample(text, "hmrec_filled_articles_total"), 5);
}

// Each batch worker sets its own thread counts (OpenMP keeps them per
// thread), whatever the thread that created it had.
TEST(ServerWorkers, SetTheirOwnThreadCounts) {
  BatchQueue::Hooks hooks = MakeQueueHooks(nullptr, /*compute_threads=*/1);
  ThreadCounts seen;
  std::thread worker([&] {
    ConfigureWorkerThreads(2);  // what a worker might inherit
    hooks.worker_start(0);
    seen = CurrentThreadCounts();
  });
  worker.join();
  EXPECT_EQ(seen.openmp, 1);
  EXPECT_EQ(seen.torch_intra_op, 1);
}

TEST_F(ServerTest, MetricsPortServesNothingButMetrics) {
  ASSERT_THAT(HttpGet(server_->metrics_port(), "/metrics"), HasSubstr("hmrec_bundle_info"));
  for (const std::string path :
       {"/", "/etc/passwd", "/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/metrics/../../../etc/passwd",
        "/index.html", "/manifest.pbtxt", "/proc/self/environ"}) {
    EXPECT_EQ(HttpGet(server_->metrics_port(), path), "") << path << " answered 200";
  }
}

// Flips one byte in the middle of `file`.
void Corrupt(const std::string& file) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(0, std::ios::end);
  const std::streamoff mid = f.tellg() / 2;
  f.seekg(mid);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(mid);
  f.write(&c, 1);
}

// The batch client writes a submission from one bundle or none: a rollout
// in the middle of its run (the server swaps v1 -> v2) fails it, naming both.
TEST_F(ServerTest, TheBatchClientRefusesASubmissionAnsweredByTwoBundles) {
  ASSERT_TRUE(MakeCurrent(dir_->File("bundles/v1")).ok());
  config::ServerConfig cfg = TestConfig(dir_->File("bundles/current"));
  cfg.set_bundle_watch_ms(20);
  auto started = Server::Start(cfg);
  ASSERT_TRUE(started.ok()) << started.status();
  std::vector<std::string> ids;
  for (size_t c = 0; c < ds_->customers.size(); ++c) ids.emplace_back(ds_->customer_id(c));
  BatchClientOptions o;
  o.batch_size = 20;
  o.in_flight = 1;
  o.max_rate = 400;  // ~2.5 s for 1,000 customers
  o.show_progress = false;
  std::vector<int32_t> articles;
  BatchClientReport report;
  absl::Status result;
  std::thread run([&] { result = RecommendAll(Channel((*started)->port()), ids, o, &articles, &report); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(MakeCurrent(dir_->File("bundles/v2")).ok());
  run.join();
  EXPECT_EQ(result.code(), absl::StatusCode::kAborted) << result;
  EXPECT_THAT(std::string(result.message()),
              HasSubstr("answered by bundle v2 while earlier batches were answered by v1"));
  // One bundle throughout: the same run succeeds and says which.
  BatchClientOptions plain;
  plain.show_progress = false;
  plain.batch_size = 50;
  result = RecommendAll(Channel((*started)->port()), ids, plain, &articles, &report);
  ASSERT_TRUE(result.ok()) << result;
  EXPECT_EQ(report.bundle_version, "v2");
}

TEST_F(ServerTest, TheBatchClientSendsFewerCallsAtOnceWhenTheServersQueueRefusesThem) {
  // A queue of 100 ids and one worker: of eight calls of 50 ids at once, most
  // are shed. With two attempts a call, a client that kept eight in flight
  // would give up; this one lowers its calls in flight and serves everyone.
  config::ServerConfig cfg = TestConfig(dir_->File("bundles/v1"));
  cfg.set_max_queued_ids(100);
  cfg.set_max_batch_ids(50);
  auto started = Server::Start(cfg);
  ASSERT_TRUE(started.ok()) << started.status();
  std::vector<std::string> ids;
  for (size_t c = 0; c < ds_->customers.size(); ++c) ids.emplace_back(ds_->customer_id(c));
  BatchClientOptions o;
  o.batch_size = 50;
  o.in_flight = 8;
  o.max_attempts = 2;
  o.initial_backoff_ms = 1;
  o.max_backoff_ms = 5;
  o.show_progress = false;
  std::vector<int32_t> articles;
  BatchClientReport report;
  const absl::Status result = RecommendAll(Channel((*started)->port()), ids, o, &articles, &report);
  ASSERT_TRUE(result.ok()) << result;
  EXPECT_EQ(report.customers, static_cast<int64_t>(ids.size()));
  EXPECT_EQ(report.in_flight_asked, 8);
  EXPECT_LT(report.in_flight, 8);
  EXPECT_GE(report.in_flight, 1);
  EXPECT_GT(report.retries, 0);
  EXPECT_THAT(report.Summary(), HasSubstr("calls in flight (8 asked: the server's queue refused more)"));
  EXPECT_EQ(std::count(articles.begin(), articles.end(), 0), 0);
}

TEST_F(ServerTest, HotSwapUnderConcurrentLoadFailsNoRequestAndRefusesACorruptBundle) {
  // A second server follows bundles/current, polled every 20 ms.
  ASSERT_TRUE(MakeCurrent(dir_->File("bundles/v1")).ok());
  config::ServerConfig cfg = TestConfig(dir_->File("bundles/current"));
  cfg.set_bundle_watch_ms(20);
  auto started = Server::Start(cfg);
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<Server> server = std::move(*started);
  auto channel = Channel(server->port());

  // Clients call without pause; each records failures and the versions it saw.
  std::atomic<bool> stop{false};
  std::atomic<int> calls{0}, failures{0}, backwards{0}, v2_answers{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      std::string last = "v1";
      for (int i = 0; !stop.load(); ++i) {
        v1::RecommendRequest req;
        for (int j = 0; j < 1 + (i + t) % 7; ++j)
          req.add_customer_ids(std::string(ds_->customer_id((t * 97 + i * 7 + j) % ds_->customers.size())));
        v1::RecommendResponse resp;
        grpc::Status st = Call(channel, req, &resp);
        ++calls;
        if (!st.ok() || resp.results_size() != req.customer_ids_size()) {
          ++failures;
          continue;
        }
        for (const auto& r : resp.results()) {
          if (r.article_ids_size() != 12) ++failures;
        }
        if (resp.bundle_version() == "v2") ++v2_answers;
        if (resp.bundle_version() < last) ++backwards;  // once on v2, never back on v1
        last = resp.bundle_version();
      }
    });
  }
  auto wait_for = [&](const std::function<bool()>& done) {
    for (int i = 0; i < 500 && !done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return done();
  };
  ASSERT_TRUE(wait_for([&] { return calls.load() > 50; }));
  // Switch current to v2 the way the index builder does: the server swaps.
  ASSERT_TRUE(MakeCurrent(dir_->File("bundles/v2")).ok());
  EXPECT_TRUE(wait_for([&] { return v2_answers.load() > 50; })) << "never answered from v2";
  EXPECT_EQ(server->version(), "v2");

  // A bundle damaged on disk becomes current (MakeCurrent would refuse it:
  // the link is switched by hand): refused, counted, v2 keeps serving.
  std::filesystem::copy(dir_->File("bundles/v2"), dir_->File("bundles/v3"), std::filesystem::copy_options::recursive);
  Corrupt(dir_->File("bundles/v3/article_embeddings.bin"));
  EXPECT_FALSE(MakeCurrent(dir_->File("bundles/v3")).ok());
  std::filesystem::create_directory_symlink("v3", dir_->File("bundles/current.tmp"));
  std::filesystem::rename(dir_->File("bundles/current.tmp"), dir_->File("bundles/current"));
  EXPECT_TRUE(wait_for([&] {
    return Sample(HttpGet(server->metrics_port(), "/metrics"), "hmrec_bundle_reloads_total{result=\"refused\"}") == 1;
  })) << HttpGet(server->metrics_port(), "/metrics");
  const int before = calls.load();
  ASSERT_TRUE(wait_for([&] { return calls.load() > before + 50; }));
  stop = true;
  for (auto& c : clients) c.join();

  EXPECT_EQ(failures.load(), 0) << "of " << calls.load() << " calls";
  EXPECT_EQ(backwards.load(), 0);
  EXPECT_EQ(server->version(), "v2");
  const std::string text = HttpGet(server->metrics_port(), "/metrics");
  EXPECT_EQ(Sample(text, "hmrec_bundle_reloads_total{result=\"swapped\"}"), 1);
  EXPECT_EQ(Sample(text, "hmrec_bundle_info{arm=\"main\",version=\"v2\"}"), 1);
  EXPECT_EQ(text.find("hmrec_bundle_info{arm=\"main\",version=\"v1\"}"), std::string::npos);

  // The refused bundle is also refused at startup, naming what is wrong.
  auto bad = Server::Start(TestConfig(dir_->File("bundles/v3")));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("article_embeddings.bin"));
  ASSERT_TRUE(MakeCurrent(dir_->File("bundles/v1")).ok());
}

TEST_F(ServerTest, DrainFinishesCallsInFlightAndRefusesNewOnes) {
  // Batches wait up to 3 s to fill: calls are in flight when Drain starts.
  config::ServerConfig cfg = TestConfig(dir_->File("bundles/v1"));
  cfg.set_max_delay_us(3000000);
  cfg.set_shutdown_grace_seconds(60);
  cfg.set_max_batch_ids(100000);
  cfg.set_max_queued_ids(100000);
  auto started = Server::Start(cfg);
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<Server> server = std::move(*started);
  auto channel = Channel(server->port());
  ASSERT_TRUE(channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(20)));

  constexpr int kCalls = 16;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kCalls; ++t) {
    clients.emplace_back([&, t] {
      v1::RecommendRequest req;
      req.add_customer_ids(std::string(ds_->customer_id(t)));
      v1::RecommendResponse resp;
      if (Call(channel, req, &resp).ok() && resp.results_size() == 1) ++ok;
    });
  }
  for (int i = 0; i < 200 && server->queued_ids() < kCalls; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(server->queued_ids(), kCalls);  // all received, none answered yet
  const auto start = std::chrono::steady_clock::now();
  server->Drain();
  const double drain_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (auto& c : clients) c.join();
  EXPECT_EQ(ok.load(), kCalls);
  EXPECT_LT(drain_s, 30.0) << "drain took " << drain_s << " s";  // ends when the calls are done, not at the 60 s grace
  v1::RecommendResponse resp;
  v1::RecommendRequest late;
  late.add_customer_ids(std::string(ds_->customer_id(0)));
  EXPECT_EQ(Call(channel, late, &resp).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(ServerTest, DamagedBundlesAreRefusedAtStartNamingTheFault) {
  struct Fault {
    std::string name;
    std::function<void(const std::string& dir)> apply;
    std::string message;
  };
  const std::vector<Fault> faults = {
      {"truncated index",
       [](const std::string& d) {
         std::filesystem::resize_file(d + "/index.faiss", std::filesystem::file_size(d + "/index.faiss") / 2);
       },
       "index.faiss has"},
      {"corrupt feature store file",
       [](const std::string& d) {
         for (const auto& e : std::filesystem::directory_iterator(d + "/features.rocksdb")) {
           if (e.path().extension() == ".sst") Corrupt(e.path().string());
         }
       },
       ".sst has CRC-32"},
      {"missing tower", [](const std::string& d) { std::filesystem::remove(d + "/customer_tower.pt"); },
       "customer_tower.pt is missing"},
      {"manifest without the index",
       [](const std::string& d) {
         config::BundleManifest m;
         ASSERT_TRUE(ReadTextProto(d + "/manifest.pbtxt", &m).ok());
         auto* files = m.mutable_files();
         for (int i = 0; i < files->size(); ++i) {
           if (files->Get(i).name() == "index.faiss") {
             files->DeleteSubrange(i, 1);
             break;
           }
         }
         ASSERT_TRUE(WriteTextProto(d + "/manifest.pbtxt", m).ok());
       },
       "the manifest does not list index.faiss"},
      {"no manifest", [](const std::string& d) { std::filesystem::remove(d + "/manifest.pbtxt"); }, "manifest"},
      // Checksums intact (the file is re-recorded), content of the wrong shape:
      // an index of 32-dimensional vectors for a 64-dimensional tower.
      {"index of the wrong dimension",
       [](const std::string& d) {
         auto emb = ReadArticleEmbeddings(d + "/article_embeddings.bin");
         ASSERT_TRUE(emb.ok());
         faiss::IndexFlatIP flat(emb->dim / 2);
         faiss::IndexIDMap index(&flat);
         std::vector<float> half(emb->article_ids.size() * (emb->dim / 2), 0.1f);
         std::vector<faiss::Index::idx_t> ids(emb->article_ids.begin(), emb->article_ids.end());
         index.add_with_ids(static_cast<faiss::Index::idx_t>(ids.size()), half.data(), ids.data());
         ASSERT_TRUE(WriteArticleIndex(index, d + "/index.faiss").ok());
         config::BundleManifest m;
         ASSERT_TRUE(ReadTextProto(d + "/manifest.pbtxt", &m).ok());
         ASSERT_TRUE(RecordBundleFile(d, "index.faiss", &m).ok());  // replaces the entry
         ASSERT_TRUE(WriteTextProto(d + "/manifest.pbtxt", m).ok());
       },
       "index holds"},
  };
  for (size_t i = 0; i < faults.size(); ++i) {
    const std::string dir = dir_->File("bundles/fault" + std::to_string(i));
    std::filesystem::copy(dir_->File("bundles/v2"), dir, std::filesystem::copy_options::recursive);
    faults[i].apply(dir);
    auto server = Server::Start(TestConfig(dir));
    ASSERT_FALSE(server.ok()) << faults[i].name << " was served";
    EXPECT_THAT(std::string(server.status().message()), HasSubstr(faults[i].message)) << faults[i].name;
  }
}

}  // namespace
}  // namespace hmrec
