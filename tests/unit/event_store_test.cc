// The event stores: the same contract for the embedded RocksDB store and
// for Redis (a real redis-server started here on 127.0.0.1).

#include <signal.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "data/dates.h"
#include "events/event_store.h"
#include "events/export.h"
#include "events/redis_event_store.h"
#include "events/redis_stream.h"
#include "events/rocksdb_event_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/erasure_list.h"
#include "tests/unit/redis_process.h"
#include "tests/unit/test_util.h"

namespace hmrec {
namespace {

using hmrec::testing::CustomerId;
using hmrec::testing::RedisProcess;
using hmrec::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

bool WaitFor(const std::function<bool()>& done) {
  for (int i = 0; i < 500 && !done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return done();
}

RecordedPurchase Event(int customer, const std::string& id, int32_t article, int32_t day, float price = 0.05f) {
  RecordedPurchase p;
  p.customer_id = CustomerId(customer);
  p.event.set_event_id(id);
  p.event.set_article_id(article);
  p.event.set_day(day);
  p.event.set_price(price);
  p.event.set_channel(2);
  return p;
}

// The served bundle's features_as_of in these tests: the horizon counts
// back from it.
constexpr int32_t kAsOf = 105;

std::vector<std::vector<config::StoredEvent>> LookUp(EventStore* store, const std::vector<int>& customers,
                                                     int32_t as_of = kAsOf) {
  std::vector<std::string> ids;
  for (int c : customers) ids.push_back(CustomerId(c));
  std::vector<absl::string_view> views(ids.begin(), ids.end());
  std::vector<std::vector<config::StoredEvent>> out;
  absl::Status s = store->Lookup(views, as_of, &out);
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

// Each backend behind the interface, reopenable on the same data.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::unique_ptr<EventStore> Open(int horizon_days = 28, int max_events_per_customer = 100) = 0;
  // Ends the store's process (or the embedded store's owner) abruptly.
  virtual void Crash() = 0;
};

class RocksBackend : public Backend {
 public:
  std::unique_ptr<EventStore> Open(int horizon_days, int max_events_per_customer) override {
    auto s = RocksEventStore::Open(dir_.File("events"), /*sync=*/true, horizon_days, max_events_per_customer);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }
  void Crash() override {}  // the store is closed when the test drops it

 private:
  TempDir dir_;
};

RedisEventStore::Options Options(const std::string& address, int horizon_days = 28, int max_events = 100) {
  RedisEventStore::Options o;
  o.address = address;
  o.timeout_ms = 2000;
  o.horizon_days = horizon_days;
  o.max_events_per_customer = max_events;
  o.probe_interval_ms = 100;
  return o;
}

class RedisBackend : public Backend {
 public:
  RedisBackend() : redis_(dir_.path(), hmrec::testing::FreePort()) { started_ = redis_.Start(); }
  std::unique_ptr<EventStore> Open(int horizon_days, int max_events_per_customer) override {
    if (!started_) started_ = redis_.Start();
    EXPECT_TRUE(started_) << "redis-server did not start";
    auto s = RedisEventStore::Open(Options(redis_.address(), horizon_days, max_events_per_customer));
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }
  void Crash() override {
    redis_.Stop(SIGKILL);
    started_ = false;
  }
  RedisProcess& redis() { return redis_; }

 private:
  TempDir dir_;
  RedisProcess redis_;
  bool started_ = false;
};

class EventStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "redis") {
      ASSERT_TRUE(RedisProcess::Available()) << "redis-server is missing: deploy/install_deps.sh installs it";
      backend_ = std::make_unique<RedisBackend>();
    } else {
      backend_ = std::make_unique<RocksBackend>();
    }
  }
  std::unique_ptr<Backend> backend_;
};

TEST_P(EventStoreTest, RecordsInOrderAndLooksUpByCustomer) {
  auto store = backend_->Open();
  ASSERT_NE(store, nullptr);
  auto counts = store->Record({Event(1, "a", 111, 100), Event(2, "b", 222, 100), Event(1, "c", 333, 101)}, kAsOf);
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->recorded, 3);
  EXPECT_EQ(counts->duplicates, 0);
  auto got = LookUp(store.get(), {1, 2, 3});
  ASSERT_EQ(got.size(), 3u);
  ASSERT_EQ(got[0].size(), 2u);
  EXPECT_EQ(got[0][0].article_id(), 111);
  EXPECT_EQ(got[0][1].article_id(), 333);
  EXPECT_EQ(got[0][1].day(), 101);
  EXPECT_EQ(got[0][1].channel(), 2);
  EXPECT_FLOAT_EQ(got[0][1].price(), 0.05f);
  ASSERT_EQ(got[1].size(), 1u);
  EXPECT_EQ(got[1][0].event_id(), "b");
  EXPECT_TRUE(got[2].empty());
}

// The export for retraining: every stored event once, in the
// transactions layout, by day then customer, from `since` on.
TEST_P(EventStoreTest, ExportsEveryEventOnceInTheTransactionsLayout) {
  auto store = backend_->Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(
      store->Record({Event(2, "b", 222, 101, 0.25f), Event(1, "a", 111, 100), Event(1, "c", 333, 101)}, kAsOf).ok());
  ASSERT_TRUE(store->Record({Event(1, "a", 111, 100), Event(3, "d", 444, 99)}, kAsOf).ok());  // a retried "a"
  int customers = 0;
  ASSERT_TRUE(store
                  ->ForEachCustomer([&](absl::string_view id, const std::vector<config::StoredEvent>& events) {
                    ++customers;
                    EXPECT_EQ(id.size(), 64u);
                    EXPECT_FALSE(events.empty());
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(customers, 3);
  TempDir dir;
  auto report = ExportEvents(*store, 100, dir.File("extra.csv"));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->events, 3);
  EXPECT_EQ(report->customers, 2);
  EXPECT_EQ(report->before_since, 1);
  const std::string day100 = FormatDate(100), day101 = FormatDate(101);
  EXPECT_EQ(hmrec::testing::ReadFile(dir.File("extra.csv")),
            "t_dat,customer_id,article_id,price,sales_channel_id\n" + day100 + "," + CustomerId(1) +
                ",0000000111,0.0500000007,2\n" + day101 + "," + CustomerId(1) + ",0000000333,0.0500000007,2\n" +
                day101 + "," + CustomerId(2) + ",0000000222,0.25,2\n");
  // A stop asked by the walker's function is returned.
  EXPECT_EQ(store
                ->ForEachCustomer([](absl::string_view, const std::vector<config::StoredEvent>&) {
                  return absl::CancelledError("enough");
                })
                .code(),
            absl::StatusCode::kCancelled);
}

TEST_P(EventStoreTest, ARetriedEventIsCountedOnce) {
  auto store = backend_->Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Record({Event(1, "a", 111, 100)}, kAsOf).ok());
  // The retry of the same call, and an id twice in one call.
  auto counts = store->Record({Event(1, "a", 111, 100), Event(1, "d", 444, 100), Event(1, "d", 444, 100)}, kAsOf);
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->recorded, 1);
  EXPECT_EQ(counts->duplicates, 2);
  auto got = LookUp(store.get(), {1});
  ASSERT_EQ(got[0].size(), 2u);
  EXPECT_EQ(got[0][0].event_id(), "a");
  EXPECT_EQ(got[0][1].event_id(), "d");
}

TEST_P(EventStoreTest, TheHorizonCountsBackFromTheBundleNotFromClientDates) {
  auto store = backend_->Open(/*horizon_days=*/7);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Record({Event(1, "old", 111, 100), Event(2, "x", 222, 100)}, kAsOf).ok());
  // A new bundle (as_of 110) moves the horizon: day 100 is now 10 days back.
  auto counts = store->Record({Event(1, "new", 333, 110), Event(3, "late", 444, 101)}, 110);
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->recorded, 1);
  EXPECT_EQ(counts->expired, 1);
  auto got = LookUp(store.get(), {1, 2, 3}, 110);
  ASSERT_EQ(got[0].size(), 1u);
  EXPECT_EQ(got[0][0].event_id(), "new");
  EXPECT_TRUE(got[1].empty()) << "customer 2's only event is past the horizon";
  EXPECT_TRUE(got[2].empty());
  // An event dated far in the future changes nothing for anyone else: the
  // horizon stays the bundle's.
  ASSERT_TRUE(store->Record({Event(4, "future", 555, 40000)}, 110).ok());
  counts = store->Record({Event(5, "normal", 666, 111)}, 110);
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->recorded, 1);
  EXPECT_EQ(counts->expired, 0);
  got = LookUp(store.get(), {1, 5}, 110);
  EXPECT_EQ(got[0].size(), 1u);
  EXPECT_EQ(got[1].size(), 1u);
}

// 10,000 events for one customer leave a bounded list: the most recent
// max_events_per_customer, in order.
TEST_P(EventStoreTest, AManyEventCustomerKeepsABoundedList) {
  auto store = backend_->Open(/*horizon_days=*/28, /*max_events_per_customer=*/100);
  ASSERT_NE(store, nullptr);
  for (int call = 0; call < 10; ++call) {
    std::vector<RecordedPurchase> batch;
    for (int i = 0; i < 1000; ++i) {
      const int n = call * 1000 + i;
      batch.push_back(Event(1, "m" + std::to_string(n), 1000 + n, 100));
    }
    auto counts = store->Record(batch, kAsOf);
    ASSERT_TRUE(counts.ok()) << counts.status();
    ASSERT_EQ(counts->recorded, 1000);
  }
  auto got = LookUp(store.get(), {1});
  ASSERT_EQ(got[0].size(), 100u);
  EXPECT_EQ(got[0].front().event_id(), "m9900");
  EXPECT_EQ(got[0].back().event_id(), "m9999");
  if (GetParam() == "redis") {
    // What Redis holds, not only what a read returns: at most twice the cap.
    const std::string len = static_cast<RedisBackend*>(backend_.get())->redis().Cli("STRLEN hmrec:c:" + CustomerId(1));
    EXPECT_GT(std::stoll(len), 0);
    EXPECT_LE(std::stoll(len), 2 * 100 * 40) << "the list grew past twice the cap";
  }
}

// Acknowledged means durable: after a restart every event is there, none
// twice. Redis is SIGKILLed right after the answer (its AOF is fsynced per
// write); the embedded store is closed and reopened here, and SIGKILLed in
// EmbeddedEventStore.SurvivesSigkillAfterAnAcknowledgedWrite.
TEST_P(EventStoreTest, AcknowledgedEventsSurviveARestart) {
  {
    auto store = backend_->Open();
    ASSERT_NE(store, nullptr);
    std::vector<RecordedPurchase> batch;
    for (int i = 0; i < 500; ++i) batch.push_back(Event(i % 50, "e" + std::to_string(i), 1000 + i, 100 + i % 7));
    auto counts = store->Record(batch, kAsOf);
    ASSERT_TRUE(counts.ok()) << counts.status();
    ASSERT_EQ(counts->recorded, 500);
    backend_->Crash();
  }
  auto store = backend_->Open();
  ASSERT_NE(store, nullptr);
  std::vector<int> all;
  for (int c = 0; c < 50; ++c) all.push_back(c);
  auto got = LookUp(store.get(), all);
  size_t total = 0;
  for (const auto& list : got) total += list.size();
  EXPECT_EQ(total, 500u);
  auto again = store->Record({Event(0, "e0", 1000, 100)}, kAsOf);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->duplicates, 1);
}

TEST_P(EventStoreTest, AnErasedCustomerIsForgottenAndStaysForgotten) {
  {
    auto store = backend_->Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Record({Event(1, "a", 111, 100), Event(1, "b", 222, 101), Event(2, "c", 333, 101)}, kAsOf).ok());
    // An unknown id is listed anyway; one id twice counts once.
    auto erased = store->Erase({CustomerId(1), CustomerId(9), CustomerId(1)});
    ASSERT_TRUE(erased.ok()) << erased.status();
    EXPECT_EQ(erased->customers, 2);
    EXPECT_EQ(erased->events, 2);
    auto got = LookUp(store.get(), {1, 2});
    EXPECT_TRUE(got[0].empty());
    EXPECT_EQ(got[1].size(), 1u);
    // Their new purchases are acknowledged, not kept; others' are.
    auto counts = store->Record({Event(1, "d", 444, 102), Event(2, "e", 555, 102)}, kAsOf);
    ASSERT_TRUE(counts.ok()) << counts.status();
    EXPECT_EQ(counts->erased, 1);
    EXPECT_EQ(counts->recorded, 1);
    EXPECT_TRUE(LookUp(store.get(), {1})[0].empty());
    // Erasing again changes nothing.
    erased = store->Erase({CustomerId(1)});
    ASSERT_TRUE(erased.ok());
    EXPECT_EQ(erased->customers, 0);
    EXPECT_EQ(erased->events, 0);
    backend_->Crash();
  }
  // The list survives a crash; the export leaves the customer out.
  auto store = backend_->Open();
  ASSERT_NE(store, nullptr);
  auto count = store->ErasedCount();
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, 2);
  TempDir dir;
  auto list = ExportErasures(*store, dir.File("erasures.csv"));
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(*list, 2);
  EXPECT_EQ(hmrec::testing::ReadFile(dir.File("erasures.csv")),
            "customer_id\n" + CustomerId(1) + "\n" + CustomerId(9) + "\n");
  auto report = ExportEvents(*store, INT32_MIN, dir.File("extra.csv"));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->events, 2);
  EXPECT_THAT(hmrec::testing::ReadFile(dir.File("extra.csv")), Not(HasSubstr(CustomerId(1))));
  EXPECT_THAT(hmrec::testing::ReadFile(dir.File("extra.csv")), HasSubstr(CustomerId(2)));
  auto after = store->Record({Event(1, "f", 666, 103)}, kAsOf);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->erased, 1);
}

// What a server holds of the store's erasure list: read when the store's
// count changes (another replica's erasure), added to by its own calls,
// kept while the store does not answer.
TEST_P(EventStoreTest, AServersErasureListFollowsTheStore) {
  auto store = backend_->Open();
  ASSERT_NE(store, nullptr);
  // A second server's connection to Redis; RocksDB has one process.
  std::unique_ptr<EventStore> replica = GetParam() == "redis" ? backend_->Open() : nullptr;
  EventStore* other = replica != nullptr ? replica.get() : store.get();
  ASSERT_TRUE(store->Erase({CustomerId(1)}).ok());
  ErasureList list(other);
  EXPECT_FALSE(list.loaded());
  ASSERT_TRUE(list.Refresh().ok());
  EXPECT_TRUE(list.loaded());
  EXPECT_TRUE(list.Contains(CustomerId(1)));
  EXPECT_FALSE(list.Contains(CustomerId(2)));
  // Erased through the first server: the second's next refresh has it.
  ASSERT_TRUE(store->Erase({CustomerId(2)}).ok());
  EXPECT_FALSE(list.Contains(CustomerId(2)));
  ASSERT_TRUE(list.Refresh().ok());
  EXPECT_TRUE(list.Contains(CustomerId(2)));
  list.Add({CustomerId(3)});
  EXPECT_EQ(list.size(), 3u);
  const std::string a = CustomerId(1), b = CustomerId(4);
  std::vector<absl::string_view> batch = {a, b, a};
  EXPECT_EQ(list.Mask(&batch), 2);
  EXPECT_TRUE(batch[0].empty());
  EXPECT_EQ(batch[1], b);
  EXPECT_TRUE(batch[2].empty());
  if (GetParam() == "redis") {
    backend_->Crash();
    EXPECT_FALSE(list.Refresh().ok());
    EXPECT_TRUE(list.Contains(CustomerId(1)));  // what it read stays
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, EventStoreTest, ::testing::Values("rocksdb", "redis"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// The embedded store in a child process that is SIGKILLed right after its
// synced write returns: the parent reopens the directory and finds every
// acknowledged event once.
TEST(EmbeddedEventStore, SurvivesSigkillAfterAnAcknowledgedWrite) {
  TempDir dir;
  const std::string path = dir.File("events");
  int ack[2];
  ASSERT_EQ(pipe(ack), 0);
  const pid_t child = fork();
  if (child == 0) {
    auto store = RocksEventStore::Open(path, /*sync=*/true, 28, 100);
    if (!store.ok()) _exit(2);
    std::vector<RecordedPurchase> batch;
    for (int i = 0; i < 300; ++i) batch.push_back(Event(i % 30, "k" + std::to_string(i), 2000 + i, 200));
    auto counts = (*store)->Record(batch, kAsOf);
    if (!counts.ok() || counts->recorded != 300) _exit(3);
    const char byte = 1;
    if (write(ack[1], &byte, 1) != 1) _exit(4);
    pause();  // killed here, with the store open
    _exit(0);
  }
  close(ack[1]);
  char byte = 0;
  ASSERT_EQ(read(ack[0], &byte, 1), 1) << "the child did not acknowledge";
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  auto store = RocksEventStore::Open(path, true, 28, 100);
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<int> all;
  for (int c = 0; c < 30; ++c) all.push_back(c);
  auto got = LookUp(store->get(), all);
  size_t total = 0;
  for (const auto& list : got) total += list.size();
  EXPECT_EQ(total, 300u);
  auto again = (*store)->Record({Event(0, "k0", 2000, 200)}, kAsOf);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->duplicates, 1) << "an acknowledged id must still be known after the crash";
}

// A real redis-server, started for each test.
class RedisStoreTest : public ::testing::Test {
 protected:
  RedisStoreTest() : redis_(dir_.path(), hmrec::testing::FreePort()) {}
  void SetUp() override {
    ASSERT_TRUE(RedisProcess::Available()) << "redis-server is missing: deploy/install_deps.sh installs it";
    ASSERT_TRUE(redis_.Start());
  }
  TempDir dir_;
  RedisProcess redis_;
};

TEST_F(RedisStoreTest, UnavailableWhenRedisIsDownAndBackWhenItReturns) {
  auto store = RedisEventStore::Open(Options(redis_.address()));
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Record({Event(1, "a", 111, 100)}, kAsOf).ok());
  redis_.Stop(SIGKILL);
  auto refused = (*store)->Record({Event(1, "b", 222, 100)}, kAsOf);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_NE(refused.status().message().find(redis_.address()), std::string::npos) << refused.status();
  std::vector<std::vector<config::StoredEvent>> out;
  const std::string id = CustomerId(1);
  EXPECT_EQ((*store)->Lookup({id}, kAsOf, &out).code(), absl::StatusCode::kUnavailable);
  // Back up with its AOF: the acknowledged event is there, the refused one
  // not (once the background probe has seen it back).
  ASSERT_TRUE(redis_.Start());
  ASSERT_TRUE(WaitFor([&] { return (*store)->Up(); })) << "the probe did not see Redis back";
  auto got = LookUp(store->get(), {1});
  ASSERT_EQ(got[0].size(), 1u);
  EXPECT_EQ(got[0][0].event_id(), "a");
  // Nobody at the address: the store opens (the server starts) and says so.
  auto nobody = RedisEventStore::Open(Options("127.0.0.1:1"));
  ASSERT_TRUE(nobody.ok());
  EXPECT_EQ((*nobody)->Ping().code(), absl::StatusCode::kUnavailable);
}

// Redis hung (SIGSTOP: connections are accepted by the kernel and never
// answered): a lookup waits at most its budget, then the breaker opens and
// every later call fails at once without touching the network, until the
// background probe sees Redis answer again.
TEST_F(RedisStoreTest, AHungRedisCostsABatchItsBudgetOnceThenNothing) {
  auto store = RedisEventStore::Open(Options(redis_.address()));
  ASSERT_TRUE(store.ok());
  std::atomic<int> downs{0}, ups{0};
  (*store)->OnStateChange([&](bool up) { (up ? ups : downs)++; });
  ASSERT_TRUE((*store)->Record({Event(1, "a", 111, 100)}, kAsOf).ok());
  const std::string id = CustomerId(1);
  std::vector<std::vector<config::StoredEvent>> out;
  redis_.Pause();
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ((*store)->Lookup({id}, kAsOf, &out, std::chrono::milliseconds(5)).code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(200)) << "waited past its budget";
  EXPECT_FALSE((*store)->Up());
  EXPECT_EQ(downs.load(), 1);
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ((*store)->Lookup({id}, kAsOf, &out, std::chrono::milliseconds(5)).code(), absl::StatusCode::kUnavailable);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50)) << "the open breaker waited";
  auto refused = (*store)->Record({Event(1, "b", 222, 100)}, kAsOf);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  redis_.Resume();
  ASSERT_TRUE(WaitFor([&] { return (*store)->Up(); })) << "the probe did not see Redis answer again";
  EXPECT_EQ(ups.load(), 1);
  ASSERT_TRUE((*store)->Lookup({id}, kAsOf, &out, std::chrono::milliseconds(50)).ok());
  ASSERT_EQ(out[0].size(), 1u);
  ASSERT_TRUE((*store)->Record({Event(1, "b", 222, 100)}, kAsOf).ok());
}

// A store opened while Redis is down works once Redis starts.
TEST(RedisEventStore, OpenedWhileRedisIsDownItRecordsOnceRedisIsUp) {
  ASSERT_TRUE(RedisProcess::Available());
  TempDir dir;
  RedisProcess redis(dir.path(), hmrec::testing::FreePort());
  auto store = RedisEventStore::Open(Options(redis.address()));
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->Ping().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE((*store)->Up());
  EXPECT_EQ((*store)->Record({Event(1, "a", 111, 100)}, kAsOf).status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(redis.Start());
  ASSERT_TRUE(WaitFor([&] { return (*store)->Up(); }));
  auto counts = (*store)->Record({Event(1, "a", 111, 100)}, kAsOf);
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->recorded, 1);
}

// The durability check reads Redis's own settings.
// The impression log's Redis stream: appended in order across pipelined
// batches, read back in pages; a Redis that is down fails at once, naming
// the stream, and the next append after retry_ms connects again.
TEST(RedisStream, AppendsInOrderReadsInPagesAndSurvivesAnOutage) {
  ASSERT_TRUE(RedisProcess::Available());
  TempDir dir;
  RedisProcess redis(dir.path(), hmrec::testing::FreePort());
  ASSERT_TRUE(redis.Start());
  RedisStream::Options o;
  o.address = redis.address();
  o.key = "test:impressions";
  o.retry_ms = 50;
  auto stream = RedisStream::Open(o);
  ASSERT_TRUE(stream.ok()) << stream.status();
  std::vector<std::string> lines;
  for (int i = 0; i < 2500; ++i) lines.push_back("{\"n\": " + std::to_string(i) + "}");
  ASSERT_TRUE(stream->Append({lines.begin(), lines.begin() + 1200}).ok());
  ASSERT_TRUE(stream->Append({lines.begin() + 1200, lines.end()}).ok());
  std::vector<std::string> read;
  ASSERT_TRUE(stream
                  ->ForEach([&read](absl::string_view line) {
                    read.emplace_back(line);
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(read, lines);
  redis.Stop(SIGKILL);
  absl::Status down = stream->Append({"x"});
  EXPECT_EQ(down.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(down.message()), HasSubstr("test:impressions"));
  ASSERT_TRUE(redis.Start());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(stream->Append({"y"}).ok());
  o.address = "nohost";
  EXPECT_EQ(RedisStream::Open(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RedisStoreTest, ChecksTheAppendOnlySettings) {
  auto store = RedisEventStore::Open(Options(redis_.address()));
  ASSERT_TRUE(store.ok());
  EXPECT_TRUE((*store)->CheckDurability().ok());  // the test Redis: appendonly yes, appendfsync always
  redis_.Cli("CONFIG SET appendfsync everysec");
  const absl::Status s = (*store)->CheckDurability();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("appendfsync everysec, not always"));
}

// Redis with requirepass: the right password records; a wrong one, or
// none, is UNAVAILABLE naming the authentication failure, never the
// password.
TEST(RedisEventStore, AuthenticatesWithThePasswordAndNamesARefusal) {
  ASSERT_TRUE(RedisProcess::Available());
  TempDir dir;
  RedisProcess redis(dir.path(), hmrec::testing::FreePort(), "s3cret-pw");
  ASSERT_TRUE(redis.Start());
  RedisEventStore::Options o = Options(redis.address());
  o.password = "s3cret-pw";
  auto good = RedisEventStore::Open(o);
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE((*good)->Ping().ok());
  auto recorded = (*good)->Record({Event(1, "a", 111, 100)}, kAsOf);
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  EXPECT_EQ(recorded->recorded, 1);
  EXPECT_EQ(LookUp(good->get(), {1})[0].size(), 1u);

  o.password = "guess";
  auto wrong = RedisEventStore::Open(o);
  ASSERT_TRUE(wrong.ok());
  auto refused = (*wrong)->Record({Event(1, "b", 222, 100)}, kAsOf);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("AUTH refused: WRONGPASS"));
  EXPECT_THAT(std::string(refused.status().message()), Not(HasSubstr("guess")));
  EXPECT_EQ((*wrong)->Ping().code(), absl::StatusCode::kUnavailable);

  auto none = RedisEventStore::Open(Options(redis.address()));
  ASSERT_TRUE(none.ok());
  std::vector<std::vector<config::StoredEvent>> out;
  const std::string id = CustomerId(1);
  const absl::Status lookup = (*none)->Lookup({id}, kAsOf, &out);
  EXPECT_EQ(lookup.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(lookup.message()), HasSubstr("NOAUTH"));
}

TEST(EventConfig, ReadsTheRedisPasswordFileAndRefusesAnUnreadableOrEmptyOne) {
  TempDir dir;
  config::EventStoreConfig c = WithEventDefaults({}, "/srv/hm/bundles/current");
  c.set_backend("redis");
  c.set_redis_address("127.0.0.1:1");
  c.set_redis_password_file(dir.File("missing"));
  auto missing = OpenEventStore(c);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr(dir.File("missing") + ": cannot read it"));
  hmrec::testing::WriteFile(dir.File("empty"), "\n");
  c.set_redis_password_file(dir.File("empty"));
  auto empty = OpenEventStore(c);
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr(dir.File("empty") + " is empty"));
  hmrec::testing::WriteFile(dir.File("pw"), "pw\n");
  c.set_redis_password_file(dir.File("pw"));
  EXPECT_TRUE(OpenEventStore(c).ok());
}

// A pooled connection dies with a Redis restart: the next call is tried
// again on a new connection and succeeds, as does a lookup.
TEST_F(RedisStoreTest, ACallAfterARedisRestartSucceeds) {
  auto store = RedisEventStore::Open(Options(redis_.address()));
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Record({Event(1, "a", 111, 100)}, kAsOf).ok());
  redis_.Stop();
  ASSERT_TRUE(redis_.Start());
  auto again = (*store)->Record({Event(1, "b", 222, 100)}, kAsOf);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->recorded, 1);
  redis_.Stop();
  ASSERT_TRUE(redis_.Start());
  auto got = LookUp(store->get(), {1});
  ASSERT_EQ(got[0].size(), 2u);
}

TEST(EventConfig, DefaultsAndValidation) {
  config::EventStoreConfig c = WithEventDefaults({}, "/srv/hm/bundles/current");
  EXPECT_EQ(c.backend(), "rocksdb");
  EXPECT_EQ(c.path(), "/srv/hm/events");
  EXPECT_FALSE(c.no_sync());
  EXPECT_EQ(c.horizon_days(), 28);
  EXPECT_TRUE(ValidateEventConfig(c).ok());
  c.set_backend("memcached");
  EXPECT_NE(ValidateEventConfig(c).message().find("events.backend"), std::string::npos);
  c.set_backend("redis");
  c.set_redis_address("localhost");
  EXPECT_NE(ValidateEventConfig(c).message().find("events.redis_address"), std::string::npos);
}

}  // namespace
}  // namespace hmrec
