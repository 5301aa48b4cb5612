// Purchases recorded online change the next recommendation: the real
// server (as hmrec_server runs it) on 127.0.0.1 over a tiny ranked bundle,
// with the embedded event store, and two servers sharing a real
// redis-server started here.

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "data/dates.h"
#include "data/ids.h"
#include "events/redis_event_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"
#include "proto/recommender.grpc.pb.h"
#include "server/inspector.h"
#include "server/server.h"
#include "tests/unit/redis_process.h"
#include "tests/unit/test_util.h"
#include "tests/unit/tiny_bundle.h"

namespace hmrec {
namespace {

using hmrec::testing::RedisProcess;
using hmrec::testing::TempDir;
using ::testing::HasSubstr;

std::string ArticleText(int32_t id) {
  char buf[kArticleIdDigits];
  FormatArticleIdTo(id, buf);
  return std::string(buf, kArticleIdDigits);
}

double Sample(const std::string& text, const std::string& series) {
  for (size_t at = text.find(series); at != std::string::npos; at = text.find(series, at + 1)) {
    if (at > 0 && text[at - 1] != '\n') continue;
    const size_t space = at + series.size();
    if (space < text.size() && text[space] == ' ') return std::stod(text.substr(space + 1));
  }
  return -1;
}

class RecordTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto tiny = hmrec::testing::MakeTinyBundles(*dir_, {"v1"}, {"v1"});
    ds_ = tiny.ds.release();
  }
  static void TearDownTestSuite() {
    delete ds_;
    delete dir_;
  }

  static config::ServerConfig Config(const std::string& events_backend, const std::string& redis = "") {
    static std::atomic<int> n{0};
    config::ServerConfig cfg;
    cfg.set_listen_address("127.0.0.1:0");
    cfg.set_bundle_path(dir_->File("bundles/v1"));
    cfg.set_workers(1);
    cfg.set_compute_threads(1);
    cfg.set_max_k(50);
    cfg.set_max_ids_per_request(100);
    cfg.set_max_response_bytes(4 << 20);
    cfg.mutable_events()->set_backend(events_backend);
    cfg.mutable_events()->set_path(dir_->File("events-" + std::to_string(n++)));
    if (!redis.empty()) cfg.mutable_events()->set_redis_address(redis);
    cfg.mutable_events()->set_redis_probe_interval_ms(100);
    return cfg;
  }
  static std::unique_ptr<Server> Start(const config::ServerConfig& cfg) {
    auto s = Server::Start(cfg);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }
  static std::unique_ptr<v1::Recommender::Stub> Stub(const Server& s) {
    return v1::Recommender::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(s.port()), grpc::InsecureChannelCredentials()));
  }
  static grpc::Status Recommend(v1::Recommender::Stub* stub, const std::string& customer, int k,
                                v1::Recommendation* out, int exclude_days = 0) {
    v1::RecommendRequest req;
    req.add_customer_ids(customer);
    req.set_k(k);
    req.set_explain(true);
    req.mutable_filters()->set_exclude_purchased_within_days(exclude_days);
    v1::RecommendResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    grpc::Status s = stub->Recommend(&ctx, req, &resp);
    if (s.ok()) *out = resp.results(0);
    return s;
  }
  static grpc::Status Record(v1::Recommender::Stub* stub, const v1::RecordPurchasesRequest& req,
                             v1::RecordPurchasesResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return stub->RecordPurchases(&ctx, req, resp);
  }
  // A purchase on the day after the bundle's data.
  static void Add(v1::RecordPurchasesRequest* req, const std::string& customer, int32_t article,
                  const std::string& event_id, int day_offset = 1) {
    v1::PurchaseEvent* e = req->add_events();
    e->set_customer_id(customer);
    e->set_article_id(ArticleText(article));
    e->set_t_dat(FormatDate(ds_->last_day + day_offset));
    e->set_price(0.03f);
    e->set_sales_channel_id(2);
    e->set_event_id(event_id);
  }
  // An article the customer never bought and is not recommended now.
  static int32_t NewArticleFor(const v1::Recommendation& now) {
    for (size_t a = ds_->articles.size(); a-- > 0;) {
      const std::string id = ArticleText(ds_->articles[a].article_id);
      if (std::find(now.article_ids().begin(), now.article_ids().end(), id) == now.article_ids().end()) {
        return ds_->articles[a].article_id;
      }
    }
    return -1;
  }
  static std::vector<std::string> Sources(const v1::Recommendation& r, const std::string& article) {
    std::vector<std::string> out;
    for (int i = 0; i < r.article_ids_size(); ++i) {
      if (r.article_ids(i) != article) continue;
      for (const v1::Reason& reason : r.explanations(i).reasons()) out.push_back(reason.source());
    }
    return out;
  }

  static TempDir* dir_;
  static Dataset* ds_;
};
TempDir* RecordTest::dir_ = nullptr;
Dataset* RecordTest::ds_ = nullptr;

// Record, then recommend: the bought article is a repurchase candidate
// (ranked into the list), the filter on recent purchases now removes it,
// and a retried call records nothing twice.
TEST_F(RecordTest, ARecordedPurchaseChangesTheNextRecommendation) {
  auto server = Start(Config("rocksdb"));
  ASSERT_NE(server, nullptr);
  auto stub = Stub(*server);
  const std::string customer(ds_->customer_id(7));
  v1::Recommendation before, after, filtered;
  ASSERT_TRUE(Recommend(stub.get(), customer, 50, &before).ok());
  EXPECT_EQ(before.events_applied(), 0);
  const int32_t article = NewArticleFor(before);
  ASSERT_GE(article, 0);

  v1::RecordPurchasesRequest req;
  Add(&req, customer, article, "evt-1");
  Add(&req, customer, article, "evt-2");
  v1::RecordPurchasesResponse resp;
  grpc::Status s = Record(stub.get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.recorded(), 2);
  EXPECT_EQ(resp.duplicates(), 0);
  EXPECT_EQ(resp.already_in_bundle(), 0);
  ASSERT_TRUE(Record(stub.get(), req, &resp).ok());
  EXPECT_EQ(resp.recorded(), 0);
  EXPECT_EQ(resp.duplicates(), 2) << "a retried call counts nothing twice";

  ASSERT_TRUE(Recommend(stub.get(), customer, 50, &after).ok());
  EXPECT_EQ(after.events_applied(), 2);
  EXPECT_TRUE(after.ranked());
  EXPECT_NE(std::vector<std::string>(after.article_ids().begin(), after.article_ids().end()),
            std::vector<std::string>(before.article_ids().begin(), before.article_ids().end()));
  EXPECT_THAT(Sources(after, ArticleText(article)), ::testing::Contains("repurchase"))
      << "the recorded article is proposed as a repurchase and ranked into the top 50";
  ASSERT_TRUE(Recommend(stub.get(), customer, 50, &filtered, /*exclude_days=*/1).ok());
  EXPECT_TRUE(Sources(filtered, ArticleText(article)).empty()) << "bought today: excluded by the filter";

  const std::string text = prometheus::TextSerializer().Serialize(server->registry().Collect());
  EXPECT_EQ(Sample(text, "hmrec_events_total{result=\"recorded\"}"), 2);
  EXPECT_EQ(Sample(text, "hmrec_events_total{result=\"duplicate\"}"), 2);
}

// A customer the bundle does not know, with recorded purchases, gets a
// personalised, ranked list instead of the fallback; events the bundle's
// data already covers change nothing.
TEST_F(RecordTest, UnknownCustomersWithEventsArePersonalised) {
  auto server = Start(Config("rocksdb"));
  ASSERT_NE(server, nullptr);
  auto stub = Stub(*server);
  const std::string stranger(64, 'b');
  v1::Recommendation r;
  ASSERT_TRUE(Recommend(stub.get(), stranger, 12, &r).ok());
  EXPECT_TRUE(r.fallback());
  v1::RecordPurchasesRequest req;
  Add(&req, stranger, ds_->articles[3].article_id, "s-1");
  Add(&req, stranger, ds_->articles[5].article_id, "s-2");
  Add(&req, stranger, ds_->articles[8].article_id, "s-old", /*day_offset=*/0);        // the bundle's last day
  Add(&req, stranger, ds_->articles[9].article_id, "s-ancient", /*day_offset=*/-60);  // past the 28-day horizon
  v1::RecordPurchasesResponse resp;
  ASSERT_TRUE(Record(stub.get(), req, &resp).ok());
  EXPECT_EQ(resp.recorded(), 3);
  EXPECT_EQ(resp.expired(), 1);
  EXPECT_EQ(resp.already_in_bundle(), 2);
  ASSERT_TRUE(Recommend(stub.get(), stranger, 12, &r).ok());
  EXPECT_FALSE(r.fallback());
  EXPECT_TRUE(r.ranked());
  EXPECT_EQ(r.events_applied(), 2);
  EXPECT_EQ(r.article_ids_size(), 12);
  const std::string text = prometheus::TextSerializer().Serialize(server->registry().Collect());
  EXPECT_EQ(Sample(text, "hmrec_events_total{result=\"recorded\"}"), 3);
  EXPECT_EQ(Sample(text, "hmrec_events_total{result=\"expired\"}"), 1);
  EXPECT_EQ(Sample(text, "hmrec_events_total{result=\"already_in_bundle\"}"), 2);
  EXPECT_GE(Sample(text, "hmrec_stage_duration_seconds_count{stage=\"events\"}"), 2) << "one lookup a batch";
}

TEST_F(RecordTest, BadEventsAreRefusedNamingTheField) {
  config::ServerConfig cfg = Config("rocksdb");
  cfg.mutable_events()->set_max_events_per_request(2);
  auto server = Start(cfg);
  ASSERT_NE(server, nullptr);
  auto stub = Stub(*server);
  const std::string customer(ds_->customer_id(1));
  v1::RecordPurchasesResponse resp;
  struct Case {
    std::function<void(v1::PurchaseEvent*)> spoil;
    std::string named;
  };
  const std::vector<Case> cases = {
      {[](v1::PurchaseEvent* e) { e->set_article_id("0999999999"); }, "events[1].article_id = '0999999999'"},
      {[](v1::PurchaseEvent* e) { e->set_article_id("12ab"); }, "events[1].article_id"},
      {[](v1::PurchaseEvent* e) { e->set_t_dat("2020-02-30"); }, "events[1].t_dat = '2020-02-30'"},
      {[](v1::PurchaseEvent* e) { e->set_t_dat("2099-01-01"); }, "events[1].t_dat = '2099-01-01' is after"},
      {[](v1::PurchaseEvent* e) { e->set_customer_id("XYZ"); }, "events[1].customer_id"},
      {[](v1::PurchaseEvent* e) { e->set_sales_channel_id(3); }, "events[1].sales_channel_id"},
      {[](v1::PurchaseEvent* e) { e->set_price(-1); }, "events[1].price"},
      {[](v1::PurchaseEvent* e) { e->clear_event_id(); }, "events[1].event_id"},
  };
  for (const Case& c : cases) {
    v1::RecordPurchasesRequest req;
    Add(&req, customer, ds_->articles[0].article_id, "ok-0");
    Add(&req, customer, ds_->articles[1].article_id, "ok-1");
    c.spoil(req.mutable_events(1));
    grpc::Status s = Record(stub.get(), req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.named;
    EXPECT_THAT(s.error_message(), HasSubstr(c.named));
  }
  // Nothing of a refused call was recorded.
  v1::Recommendation r;
  ASSERT_TRUE(Recommend(stub.get(), customer, 12, &r).ok());
  EXPECT_EQ(r.events_applied(), 0);
  // After the future-dated event was refused, a normal one applies (it once
  // moved the horizon for everyone: every later event was "expired").
  v1::RecordPurchasesRequest normal;
  Add(&normal, customer, ds_->articles[0].article_id, "after-future");
  ASSERT_TRUE(Record(stub.get(), normal, &resp).ok());
  EXPECT_EQ(resp.recorded(), 1);
  EXPECT_EQ(resp.expired(), 0);
  ASSERT_TRUE(Recommend(stub.get(), customer, 12, &r).ok());
  EXPECT_EQ(r.events_applied(), 1);
  v1::RecordPurchasesRequest three;
  for (int i = 0; i < 3; ++i) Add(&three, customer, ds_->articles[0].article_id, "many-" + std::to_string(i));
  grpc::Status s = Record(stub.get(), three, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("3 events, at most 2 per request"));
  v1::RecordPurchasesRequest empty;
  EXPECT_EQ(Record(stub.get(), empty, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto off = Start([] {
    config::ServerConfig c = Config("off");
    return c;
  }());
  ASSERT_NE(off, nullptr);
  v1::RecordPurchasesRequest one;
  Add(&one, customer, ds_->articles[0].article_id, "x");
  EXPECT_EQ(Record(Stub(*off).get(), one, &resp).error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

// Two replicas share Redis: an event recorded on one is applied on the
// other. With Redis down, Recommend still answers from the bundle (counted,
// health stays SERVING) and RecordPurchases is UNAVAILABLE; when Redis is
// back (its AOF synced per write), every acknowledged event is there.
TEST_F(RecordTest, ReplicasShareRedisAndSurviveItsOutage) {
  ASSERT_TRUE(RedisProcess::Available()) << "redis-server is missing: deploy/install_deps.sh installs it";
  TempDir redis_dir;
  RedisProcess redis(redis_dir.path(), hmrec::testing::FreePort());
  ASSERT_TRUE(redis.Start());
  auto a = Start(Config("redis", redis.address()));
  auto b = Start(Config("redis", redis.address()));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto stub_a = Stub(*a), stub_b = Stub(*b);
  const std::string customer(ds_->customer_id(11));
  v1::RecordPurchasesRequest req;
  Add(&req, customer, ds_->articles[2].article_id, "r-1");
  v1::RecordPurchasesResponse resp;
  ASSERT_TRUE(Record(stub_a.get(), req, &resp).ok());
  EXPECT_EQ(resp.recorded(), 1);
  v1::Recommendation r;
  ASSERT_TRUE(Recommend(stub_b.get(), customer, 12, &r).ok());
  EXPECT_EQ(r.events_applied(), 1) << "recorded on replica a, seen on replica b";

  redis.Stop(SIGKILL);
  ASSERT_TRUE(Recommend(stub_b.get(), customer, 12, &r).ok()) << "Recommend answers from the bundle alone";
  EXPECT_EQ(r.events_applied(), 0);
  EXPECT_EQ(r.article_ids_size(), 12);
  const std::string text = prometheus::TextSerializer().Serialize(b->registry().Collect());
  EXPECT_GE(Sample(text, "hmrec_event_lookup_failures_total"), 1);
  v1::RecordPurchasesRequest more;
  Add(&more, customer, ds_->articles[4].article_id, "r-2");
  grpc::Status s = Record(stub_a.get(), more, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr(redis.address()));

  ASSERT_TRUE(redis.Start());
  // Both replicas reach Redis again once their background probe has (every
  // 100 ms here); a client retries UNAVAILABLE meanwhile.
  grpc::Status back;
  for (int i = 0; i < 100 && !(back = Record(stub_a.get(), more, &resp)).ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(back.ok()) << back.error_message();
  EXPECT_EQ(resp.recorded(), 1);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(Recommend(stub_b.get(), customer, 12, &r).ok());
    if (r.events_applied() == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(r.events_applied(), 2) << "the event acknowledged before the crash, and the new one";
}

// Erasure across replicas: a customer erased on replica a is served as
// unknown by a at once and by b within its bundle_watch_ms, their recorded
// purchases are gone and new ones not kept; b keeps serving them as unknown
// while Redis is down; a server started after the erasure reads the list.
TEST_F(RecordTest, AnErasedCustomerIsUnknownOnEveryReplica) {
  ASSERT_TRUE(RedisProcess::Available()) << "redis-server is missing: deploy/install_deps.sh installs it";
  TempDir redis_dir;
  RedisProcess redis(redis_dir.path(), hmrec::testing::FreePort());
  ASSERT_TRUE(redis.Start());
  config::ServerConfig cfg = Config("redis", redis.address());
  cfg.set_bundle_watch_ms(100);
  auto a = Start(cfg);
  auto b = Start(cfg);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto stub_a = Stub(*a), stub_b = Stub(*b);
  const std::string customer(ds_->customer_id(13)), other(ds_->customer_id(14));
  v1::RecordPurchasesRequest req;
  Add(&req, customer, ds_->articles[2].article_id, "x-1");
  Add(&req, customer, ds_->articles[3].article_id, "x-2");
  v1::RecordPurchasesResponse resp;
  ASSERT_TRUE(Record(stub_a.get(), req, &resp).ok());
  v1::Recommendation r;
  ASSERT_TRUE(Recommend(stub_b.get(), customer, 12, &r).ok());
  ASSERT_FALSE(r.fallback());
  ASSERT_EQ(r.events_applied(), 2);

  auto erase = [](v1::Recommender::Stub* stub, const std::vector<std::string>& ids, v1::EraseCustomerResponse* out) {
    v1::EraseCustomerRequest e;
    for (const std::string& id : ids) e.add_customer_ids(id);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return stub->EraseCustomer(&ctx, e, out);
  };
  v1::EraseCustomerResponse erased;
  grpc::Status s = erase(stub_a.get(), {customer, customer}, &erased);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(erased.erased(), 1);
  EXPECT_EQ(erased.events_deleted(), 2);
  s = erase(stub_a.get(), {"ZZ"}, &erased);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("customer_ids[0] = 'ZZ'"));

  ASSERT_TRUE(Recommend(stub_a.get(), customer, 12, &r).ok());
  EXPECT_TRUE(r.fallback()) << "the replica that erased: at once";
  EXPECT_EQ(r.customer_id(), customer);
  EXPECT_EQ(r.article_ids_size(), 12);
  bool unknown_on_b = false;
  for (int i = 0; i < 100 && !unknown_on_b; ++i) {
    ASSERT_TRUE(Recommend(stub_b.get(), customer, 12, &r).ok());
    unknown_on_b = r.fallback();
    if (!unknown_on_b) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(unknown_on_b) << "the other replica, within its bundle_watch_ms";
  EXPECT_EQ(r.events_applied(), 0);
  ASSERT_TRUE(Recommend(stub_b.get(), other, 12, &r).ok());
  EXPECT_FALSE(r.fallback()) << "nobody else is affected";

  v1::RecordPurchasesRequest again;
  Add(&again, customer, ds_->articles[4].article_id, "x-3");
  ASSERT_TRUE(Record(stub_b.get(), again, &resp).ok());
  EXPECT_EQ(resp.erased(), 1);
  EXPECT_EQ(resp.recorded(), 0);
  const std::string text = prometheus::TextSerializer().Serialize(b->registry().Collect());
  EXPECT_EQ(Sample(text, "hmrec_events_total{result=\"erased\"}"), 1);

  // A server started now reads the list at start.
  auto c = Start(cfg);
  ASSERT_NE(c, nullptr);
  auto stub_c = Stub(*c);
  ASSERT_TRUE(Recommend(stub_c.get(), customer, 12, &r).ok());
  EXPECT_TRUE(r.fallback());

  redis.Stop(SIGKILL);
  ASSERT_TRUE(Recommend(stub_b.get(), customer, 12, &r).ok());
  EXPECT_TRUE(r.fallback()) << "the list held in memory outlives the store's outage";
  s = erase(stub_b.get(), {other}, &erased);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << "an erasure is acknowledged only once durable";
}

// Redis with a password (requirepass): the right one records; with a wrong
// one the server still starts and Recommend answers from the bundle, while
// RecordPurchases is UNAVAILABLE naming the authentication failure (and
// never the password).
TEST_F(RecordTest, RedisWithAPasswordAndAServerThatHasTheWrongOne) {
  ASSERT_TRUE(RedisProcess::Available()) << "redis-server is missing: deploy/install_deps.sh installs it";
  TempDir redis_dir;
  RedisProcess redis(redis_dir.path(), hmrec::testing::FreePort(), "right-password-123");
  ASSERT_TRUE(redis.Start());
  hmrec::testing::WriteFile(redis_dir.File("right"), "right-password-123\n");
  hmrec::testing::WriteFile(redis_dir.File("wrong"), "wrong-password-456\n");
  config::ServerConfig cfg = Config("redis", redis.address());
  cfg.mutable_events()->set_redis_password_file(redis_dir.File("right"));
  auto good = Start(cfg);
  ASSERT_NE(good, nullptr);
  const std::string customer(ds_->customer_id(13));
  v1::RecordPurchasesRequest req;
  Add(&req, customer, ds_->articles[2].article_id, "pw-1");
  v1::RecordPurchasesResponse resp;
  ASSERT_TRUE(Record(Stub(*good).get(), req, &resp).ok());
  EXPECT_EQ(resp.recorded(), 1);

  cfg.mutable_events()->set_redis_password_file(redis_dir.File("wrong"));
  auto bad = Start(cfg);
  ASSERT_NE(bad, nullptr) << "a Redis that refuses the password must not stop the server";
  auto stub = Stub(*bad);
  v1::Recommendation r;
  ASSERT_TRUE(Recommend(stub.get(), customer, 12, &r).ok());
  EXPECT_EQ(r.article_ids_size(), 12);
  EXPECT_EQ(r.events_applied(), 0) << "answered from the bundle alone";
  Add(&req, customer, ds_->articles[3].article_id, "pw-2");
  grpc::Status s = Record(stub.get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("AUTH refused: WRONGPASS"));
  EXPECT_THAT(s.error_message(), ::testing::Not(HasSubstr("wrong-password-456")));
  const std::string text = prometheus::TextSerializer().Serialize(bad->registry().Collect());
  EXPECT_GE(Sample(text, "hmrec_event_lookup_failures_total"), 1);
}

// The inspector's profile lists the purchases Recommend applies (after the
// bundle's data, of its articles) from the shared store, and says so, still
// answering from the bundle, when the store cannot be read.
TEST_F(RecordTest, TheInspectorListsAppliedEventsAndNamesAnUnreadableStore) {
  ASSERT_TRUE(RedisProcess::Available()) << "redis-server is missing: deploy/install_deps.sh installs it";
  TempDir redis_dir;
  RedisProcess redis(redis_dir.path(), hmrec::testing::FreePort());
  ASSERT_TRUE(redis.Start());
  RedisEventStore::Options o;
  o.address = redis.address();
  auto store = RedisEventStore::Open(o);
  ASSERT_TRUE(store.ok()) << store.status();
  auto r = Recommender::Load(dir_->File("bundles/v1"), RecommenderOptions());
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string customer(ds_->customer_id(12));
  auto event = [&](const std::string& id, int32_t article, int32_t day) {
    RecordedPurchase p;
    p.customer_id = customer;
    p.event.set_event_id(id);
    p.event.set_article_id(article);
    p.event.set_day(day);
    p.event.set_price(0.02f);
    p.event.set_channel(1);
    return p;
  };
  const int32_t fresh = ds_->articles[3].article_id, old = ds_->articles[5].article_id;
  ASSERT_TRUE(
      (*store)
          ->Record({event("in-bundle", old, ds_->last_day), event("new", fresh, ds_->last_day + 1)}, (*r)->as_of())
          .ok());

  auto p = InspectCustomer(**r, customer, store->get());
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->recorded_purchases_size(), 1) << "only the event after the bundle's data applies";
  // Every attribute of the view is the article's, from the bundle's article table.
  const v1::ArticleView& view = p->recorded_purchases(0).article();
  const Article& a = ds_->articles[3];
  EXPECT_EQ(view.article_id(), ArticleText(fresh));
  EXPECT_EQ(view.prod_name(), a.prod_name);
  EXPECT_EQ(view.product_type_name(), a.product_type_name);
  EXPECT_EQ(view.product_group_name(), a.product_group_name);
  EXPECT_EQ(view.colour_group_name(), a.colour_group_name);
  EXPECT_EQ(view.index_group_name(), a.index_group_name);
  EXPECT_EQ(view.garment_group_name(), a.garment_group_name);
  EXPECT_EQ(view.department_name(), a.department_name);
  EXPECT_EQ(p->recorded_purchases(0).date(), FormatDate(ds_->last_day + 1));
  EXPECT_TRUE(p->recorded_purchases_error().empty());
  // The profile is the customer's row of customers.csv, as the bundle encoded it.
  const Customer& c = ds_->customers[12];
  auto flag = [](int8_t v) { return v < 0 ? std::string() : std::string(v == 0 ? "0" : "1"); };
  EXPECT_TRUE(p->known());
  EXPECT_EQ(p->age(), c.age);
  EXPECT_EQ(p->club_member_status(), ds_->club_member_status.Get(c.club_member_status));
  EXPECT_EQ(p->fashion_news_frequency(), ds_->fashion_news_frequency.Get(c.fashion_news_frequency));
  EXPECT_EQ(p->fn(), flag(c.fn));
  EXPECT_EQ(p->active(), flag(c.active));
  // The filter values are every article's, sorted, without blanks.
  const v1::FilterValues filters = FilterValuesOf(**r);
  for (const auto* list :
       {&filters.index_group_names(), &filters.product_group_names(), &filters.garment_group_names()}) {
    EXPECT_TRUE(std::is_sorted(list->begin(), list->end()));
    EXPECT_EQ(std::count(list->begin(), list->end(), ""), 0);
  }
  EXPECT_THAT(filters.product_group_names(), ::testing::Contains(a.product_group_name));
  EXPECT_THAT(filters.garment_group_names(), ::testing::Contains(a.garment_group_name));
  const int stored = p->purchases_size();

  redis.Stop(SIGKILL);
  p = InspectCustomer(**r, customer, store->get());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->recorded_purchases_size(), 0);
  EXPECT_THAT(p->recorded_purchases_error(), HasSubstr("recorded purchases unavailable"));
  EXPECT_EQ(p->purchases_size(), stored) << "the bundle's history is still shown";
}

}  // namespace
}  // namespace hmrec
