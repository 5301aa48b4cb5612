#include "server/server_config.h"

#include <cmath>

#include "google/protobuf/util/json_util.h"
#include "server/request.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/recommender.pb.h"
#include "tests/unit/test_util.h"

namespace hmrec {
namespace {

using hmrec::testing::TempDir;
using ::testing::HasSubstr;

config::ServerConfig Valid() {
  config::ServerConfig c;
  c.set_listen_address("127.0.0.1:0");
  c.set_bundle_path("/b/current");
  return WithDefaults(c);
}

TEST(ServerConfig, TheShippedDefaultsAreConsistent) { EXPECT_TRUE(ValidateServerConfig(Valid()).ok()); }

TEST(ServerConfig, LoopbackAddressesAreThisMachineOnly) {
  for (const char* a : {"127.0.0.1:50051", "127.1.2.3:0", "localhost:8080", "[::1]:50051"}) {
    EXPECT_TRUE(IsLoopbackAddress(a)) << a;
  }
  for (const char* a : {"0.0.0.0:50051", "[::]:50051", ":50051", "10.0.0.7:50051", "128.0.0.1:1", "hmrec:50051",
                        "localhost.example.com:1", "[::ffff:10.0.0.1]:1"}) {
    EXPECT_FALSE(IsLoopbackAddress(a)) << a;
  }
}

// Safe by default: without API keys the server only listens where nobody
// else can reach it, unless the operator says otherwise, by name.
TEST(ServerConfig, RefusesANonLoopbackAddressWithoutAuthNamingTheWayOut) {
  config::ServerConfig c = Valid();
  c.set_listen_address("0.0.0.0:50051");
  absl::Status s = ValidateServerConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("listen_address 0.0.0.0:50051 is not a loopback address"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("allow_unauthenticated: true"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("auth { keys_file"));

  c = Valid();
  c.set_http_address("[::]:8080");
  EXPECT_THAT(std::string(ValidateServerConfig(c).message()), HasSubstr("http_address [::]:8080"));
  // The metrics port needs no key: any address.
  c = Valid();
  c.set_metrics_address("0.0.0.0:9464");
  EXPECT_TRUE(ValidateServerConfig(c).ok());

  c = Valid();
  c.set_listen_address("0.0.0.0:50051");
  c.set_http_address("0.0.0.0:8080");
  c.set_allow_unauthenticated(true);
  EXPECT_TRUE(ValidateServerConfig(c).ok());
  c.set_allow_unauthenticated(false);
  c.mutable_auth()->set_keys_file("/etc/hmrec/keys");
  EXPECT_TRUE(ValidateServerConfig(c).ok());
}

TEST(ServerConfig, HttpBoundsHaveDefaultsAndRefuseZeroOrLess) {
  const config::ServerConfig c = Valid();
  EXPECT_EQ(c.max_http_connections(), 256);
  EXPECT_EQ(c.http_idle_timeout_seconds(), 30);
  EXPECT_EQ(c.http_request_timeout_seconds(), 30);
  EXPECT_EQ(c.max_http_header_bytes(), 16 << 10);
  EXPECT_EQ(c.http_threads(), 2);
  config::ServerConfig bad = c;
  bad.set_http_threads(-1);
  EXPECT_THAT(std::string(ValidateServerConfig(bad).message()), HasSubstr("http_threads = -1"));
  bad = c;
  bad.set_max_http_connections(-5);
  EXPECT_THAT(std::string(ValidateServerConfig(bad).message()), HasSubstr("max_http_connections = -5"));
}

// New articles of a refreshed bundle take the 12th place by default; a
// negative position (off) stays as written and is valid.
TEST(ServerConfig, NewArticlePositionDefaultsToTwelveAndNegativeTurnsItOff) {
  EXPECT_EQ(Valid().new_article_position(), 12);
  config::ServerConfig c;
  c.set_listen_address("127.0.0.1:0");
  c.set_bundle_path("/b/current");
  c.set_new_article_position(-1);
  c = WithDefaults(c);
  EXPECT_EQ(c.new_article_position(), -1);
  EXPECT_TRUE(ValidateServerConfig(c).ok());
}

// The operator's case: 10,000 ids allowed per request, 4,000 queued: such
// a request would be refused as "queue full" forever.
TEST(ServerConfig, RefusesARequestLimitTheQueueCannotHold) {
  config::ServerConfig c = Valid();
  c.set_max_ids_per_request(10000);
  c.set_max_queued_ids(4000);
  absl::Status s = ValidateServerConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("max_ids_per_request (10000) exceeds max_queued_ids (4000)"));
}

TEST(ServerConfig, RefusesLimitsWhoseResponsesClientsCouldNotReceive) {
  config::ServerConfig c = Valid();
  c.set_max_queued_ids(100000);
  c.set_max_ids_per_request(10000);
  c.set_max_k(100);
  absl::Status s = ValidateServerConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("max_ids_per_request (10000) x max_k (100)"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("max_response_bytes"));
  c.set_max_response_bytes(64 << 20);  // clients that raised their limit
  EXPECT_TRUE(ValidateServerConfig(c).ok());
}

TEST(ServerConfig, RefusesNegativeCountsAndUnknownSearchNamingTheField) {
  config::ServerConfig c = Valid();
  c.set_search_threads(-1);
  EXPECT_THAT(std::string(ValidateServerConfig(c).message()), HasSubstr("search_threads = -1"));
  c = Valid();
  c.set_workers(-2);
  EXPECT_THAT(std::string(ValidateServerConfig(c).message()), HasSubstr("workers = -2"));
  c = Valid();
  c.set_flat_search("gpu");
  EXPECT_THAT(std::string(ValidateServerConfig(c).message()), HasSubstr("flat_search = 'gpu'"));
  c = Valid();
  c.set_ranker_evaluator("treelite");
  EXPECT_THAT(std::string(ValidateServerConfig(c).message()), HasSubstr("ranker_evaluator = 'treelite'"));
  c.set_ranker_evaluator("xgboost");
  EXPECT_TRUE(ValidateServerConfig(c).ok());
}

// The bound the start-up check relies on holds for the largest response the
// limits allow: 64-character ids, k ten-digit articles, a fallback reason.
TEST(ServerConfig, MaxResponseBytesBoundsARealResponse) {
  for (int k : {1, 12, 100}) {
    v1::RecommendResponse r;
    r.set_bundle_version(std::string(200, 'v'));
    for (int i = 0; i < 50; ++i) {
      v1::Recommendation* rec = r.add_results();
      rec->set_customer_id(std::string(64, 'f'));
      rec->set_fallback(true);
      rec->set_fallback_reason("customer embedding not finite");
      rec->set_filled_from_popular(k);
      for (int j = 0; j < k; ++j) {
        rec->add_article_ids("0999999999");
        rec->add_scores(-1.5e30f);
      }
    }
    EXPECT_LE(static_cast<int64_t>(r.ByteSizeLong()), MaxResponseBytes(50, k)) << "k " << k;
    if (k >= 12) {  // not so loose that valid limits are refused
      EXPECT_GE(static_cast<double>(r.ByteSizeLong()), 0.8 * MaxResponseBytes(50, k)) << "k " << k;
    }
  }
}

// A score of -0.0 (a ranker margin of exactly zero, say) is answered as
// 0.0: gRPC would send -0.0 while JSON drops it as the default, and the two
// APIs would disagree.
TEST(Response, NegativeZeroScoresAreAnsweredAsZeroSoGrpcAndJsonAgree) {
  v1::RecommendRequest request;
  request.add_customer_ids(std::string(64, 'a'));
  Recommendation rec;
  rec.article_ids = {108775015};
  rec.scores = {-0.0f};
  Explanation e;
  e.ranker_score = -0.0f;
  e.reasons.push_back({0, 0, -0.0f, 0});
  rec.explanations.push_back(e);
  v1::RecommendResponse response;
  FillResponse(request, {rec}, "v", &response);
  const v1::Recommendation& r = response.results(0);
  EXPECT_FALSE(std::signbit(r.scores(0)));
  EXPECT_FALSE(std::signbit(r.explanations(0).ranker_score()));
  EXPECT_FALSE(std::signbit(r.explanations(0).reasons(0).score()));
  std::string json;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(response, &json).ok());
  v1::RecommendResponse back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &back).ok());
  EXPECT_EQ(back.SerializeAsString(), response.SerializeAsString());
}

// Relative paths are the config file's, so the server runs from anywhere.
TEST(ServerConfig, RelativePathsAreTakenFromTheConfigFilesDirectory) {
  TempDir dir;
  hmrec::testing::WriteFile(dir.File("etc/server.pbtxt"),
                            "listen_address: \"127.0.0.1:0\"\n"
                            "bundle_path: \"../bundles/current\"\n"
                            "tls { cert_file: \"certs/s.pem\" key_file: \"/abs/s.key\" }\n"
                            "auth { keys_file: \"secrets/keys\" }\n"
                            "events { redis_password_file: \"secrets/redis\" }\n"
                            "canary { bundle_path: \"../bundles/canary\" percent: 5 }\n"
                            "impressions { path: \"impressions.jsonl\" }\n");
  auto c = ReadServerConfig(dir.File("etc/server.pbtxt"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->bundle_path(), dir.File("bundles/current"));
  EXPECT_EQ(c->tls().cert_file(), dir.File("etc/certs/s.pem"));
  EXPECT_EQ(c->tls().key_file(), "/abs/s.key");
  EXPECT_EQ(c->tls().client_ca_file(), "");
  EXPECT_EQ(c->auth().keys_file(), dir.File("etc/secrets/keys"));
  EXPECT_EQ(c->events().redis_password_file(), dir.File("etc/secrets/redis"));
  EXPECT_EQ(c->canary().bundle_path(), dir.File("bundles/canary"));
  EXPECT_EQ(c->impressions().path(), dir.File("etc/impressions.jsonl"));
}

// A canary: a percent within 0..100 and a path other than the main one;
// the impression log: a sample within (0, 100] (0 means all) and a path.
TEST(ServerConfig, RefusesABadCanaryOrImpressionLogNamingTheField) {
  config::ServerConfig c = Valid();
  c.mutable_canary()->set_bundle_path("/b/canary");
  c.mutable_canary()->set_percent(30);
  EXPECT_TRUE(ValidateServerConfig(c).ok());
  for (double bad : {-1.0, 100.5, std::nan("")}) {
    c.mutable_canary()->set_percent(bad);
    EXPECT_THAT(std::string(ValidateServerConfig(c).message()), HasSubstr("canary.percent")) << bad;
  }
  c.mutable_canary()->set_percent(30);
  c.mutable_canary()->set_bundle_path("/b/./current");
  EXPECT_THAT(std::string(ValidateServerConfig(c).message()), HasSubstr("is bundle_path"));
  c.clear_canary();
  c.mutable_impressions()->set_path("/var/x.jsonl");
  config::ServerConfig d = WithDefaults(c);
  EXPECT_EQ(d.impressions().sample_percent(), 100);
  EXPECT_EQ(d.impressions().max_pending(), 10000);
  EXPECT_TRUE(ValidateServerConfig(d).ok());
  d.mutable_impressions()->set_sample_percent(101);
  EXPECT_THAT(std::string(ValidateServerConfig(d).message()), HasSubstr("impressions.sample_percent"));
  d.mutable_impressions()->set_sample_percent(10);
  d.mutable_impressions()->clear_path();
  EXPECT_THAT(std::string(ValidateServerConfig(d).message()), HasSubstr("give one of path and redis_stream"));
}

}  // namespace
}  // namespace hmrec
