#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <thread>

#include "prometheus/text_serializer.h"
#include "prometheus/registry.h"
#include "server/metrics.h"

#include "common/dataset_cache.h"
#include "common/ids.h"
#include "common/model/tower_runner.h"
#include "common/text_proto.h"
#include "datagen/generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "index_builder/builder.h"
#include "proto/recommender.grpc.pb.h"
#include "server/batch_queue.h"
#include "server/recommender.h"
#include "server/service.h"
#include "tests/unit/test_util.h"
#include "tests/unit/tiny_bundle.h"
#include "trainer/trainer.h"

namespace hmrec {
namespace {

using hmrec::testing::TempDir;
using ::testing::HasSubstr;

// A real gRPC server on 127.0.0.1:0 over a tiny sealed bundle, and a client.
class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto tiny = hmrec::testing::MakeTinyBundles(*dir_, {"v1"}, {"v1"});
    ds_ = tiny.ds.release();
    recommender_ = Recommender::Load(dir_->File("bundles/v1"), RecommenderOptions())->release();
    registry_ = new std::shared_ptr<prometheus::Registry>(std::make_shared<prometheus::Registry>());
    metrics_ = new ServerMetrics(**registry_);
    metrics_->SetBundle(recommender_->version());
    queue_ = new BatchQueue({256, std::chrono::milliseconds(1), 10000}, MakeProcessor({recommender_}, metrics_),
                            MakeBatchObserver(metrics_));
    queue_->Start(1);
    RequestLimits limits;
    limits.max_k = 50;
    limits.max_ids = 100;
    service_ = new RecommenderService(queue_, limits, recommender_->version(), metrics_);
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service_);
    server_ = builder.BuildAndStart().release();
    ASSERT_GT(port_, 0);
    channel_ = new std::shared_ptr<grpc::Channel>(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port_), grpc::InsecureChannelCredentials()));
  }
  static void TearDownTestSuite() {
    server_->Shutdown();
    queue_->Shutdown();
    delete channel_;
    delete server_;
    delete service_;
    delete metrics_;
    delete registry_;
    delete queue_;
    delete recommender_;
    delete ds_;
    delete dir_;
  }
  grpc::Status Call(const v1::RecommendRequest& req, v1::RecommendResponse* resp) {
    auto stub = v1::Recommender::NewStub(*channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return stub->Recommend(&ctx, req, resp);
  }

  static TempDir* dir_;
  static Dataset* ds_;
  static Recommender* recommender_;
  static BatchQueue* queue_;
  static RecommenderService* service_;
  static std::shared_ptr<prometheus::Registry>* registry_;
  static ServerMetrics* metrics_;

  static grpc::Server* server_;
  static std::shared_ptr<grpc::Channel>* channel_;
  static int port_;
};
TempDir* ServerTest::dir_ = nullptr;
Dataset* ServerTest::ds_ = nullptr;
Recommender* ServerTest::recommender_ = nullptr;
BatchQueue* ServerTest::queue_ = nullptr;
RecommenderService* ServerTest::service_ = nullptr;
std::shared_ptr<prometheus::Registry>* ServerTest::registry_ = nullptr;
ServerMetrics* ServerTest::metrics_ = nullptr;

grpc::Server* ServerTest::server_ = nullptr;
std::shared_ptr<grpc::Channel>* ServerTest::channel_ = nullptr;
int ServerTest::port_ = 0;

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

  // The exposition text a scrape would return (the HTTP exposer is not
  // wired yet: see the server issue).
  const std::string text = prometheus::TextSerializer().Serialize((*registry_)->Collect());
  ASSERT_FALSE(text.empty());
  EXPECT_GE(Sample(text, "hmrec_request_duration_seconds_count{code=\"OK\",method=\"Recommend\"}"), 1);
  EXPECT_GE(Sample(text, "hmrec_request_duration_seconds_count{code=\"INVALID_ARGUMENT\",method=\"Recommend\"}"), 1);
  EXPECT_GE(Sample(text, "hmrec_fallback_total"), 1);
  EXPECT_GE(Sample(text, "hmrec_customers_total"), 2);
  EXPECT_GE(Sample(text, "hmrec_batch_ids_count"), 1);
  EXPECT_GE(Sample(text, "hmrec_stage_duration_seconds_count{stage=\"tower\"}"), 1);
  EXPECT_GE(Sample(text, "hmrec_stage_duration_seconds_count{stage=\"queue_wait\"}"), 1);
  EXPECT_EQ(Sample(text, "hmrec_bundle_info{version=\"v1\"}"), 1);
  // No customer id ever appears in the metrics.
  EXPECT_EQ(text.find(std::string(ds_->customer_id(1))), std::string::npos);
}

}  // namespace
}  // namespace hmrec
