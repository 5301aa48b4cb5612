#include "server/batch_queue.h"

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hmrec {
namespace {

using Clock = BatchQueue::Clock;
using ::testing::ElementsAre;

// Echoes each id back as its single "article" (the id's number), and
// records the batches it saw.
struct Echo {
  std::mutex mu;
  std::vector<size_t> batch_sizes;
  absl::Status Process(int, const std::vector<absl::string_view>& ids,
                       const std::vector<const RequestOptions*>& options, BatchAnswer* answer) {
    {
      std::lock_guard<std::mutex> lock(mu);
      batch_sizes.push_back(ids.size());
    }
    answer->bundle_version = "echo-" + std::to_string(batch_sizes.size());
    std::vector<Recommendation>* out = &answer->results;
    out->assign(ids.size(), Recommendation());
    for (size_t i = 0; i < ids.size(); ++i) {
      const int k = options[i]->k;
      for (int j = 0; j < k; ++j) (*out)[i].article_ids.push_back(std::stoi(std::string(ids[i])) * 100 + j);
      (*out)[i].scores.assign(k, 1.0f);
    }
    return absl::OkStatus();
  }
};

struct Outcome {
  std::promise<std::pair<absl::Status, std::vector<Recommendation>>> promise;
  std::string version;  // the answering bundle's version
  BatchQueue::Done Callback() {
    return [this](absl::Status s, BatchAnswer a) {
      version = a.bundle_version;
      promise.set_value({s, std::move(a.results)});
    };
  }
  std::pair<absl::Status, std::vector<Recommendation>> Get() {
    auto f = promise.get_future();
    EXPECT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    return f.get();
  }
};

Clock::time_point Later() { return Clock::now() + std::chrono::seconds(60); }

std::shared_ptr<const RequestOptions> Opt(int k) {
  auto o = std::make_shared<RequestOptions>();
  o->k = k;
  return o;
}

BatchQueue::Processor Bind(Echo& e) {
  return [&e](int w, const std::vector<absl::string_view>& ids, const std::vector<const RequestOptions*>& options,
              BatchAnswer* out) { return e.Process(w, ids, options, out); };
}

TEST(BatchQueue, MergesConcurrentRequestsKeepingEachOnesOrder) {
  Echo echo;
  // Six ids fill a batch; the delay is too long to ever flush by time.
  BatchQueue q({/*max_batch_ids=*/6, std::chrono::hours(1), 1000}, Bind(echo));
  Outcome a, b, c;
  // Queued before the worker starts: one batch takes all three.
  ASSERT_TRUE(q.Submit({"1", "2"}, Opt(2), Later(), a.Callback()).ok());
  ASSERT_TRUE(q.Submit({"3"}, Opt(1), Later(), b.Callback()).ok());
  ASSERT_TRUE(q.Submit({"4", "5", "6"}, Opt(3), Later(), c.Callback()).ok());
  q.Start(1);
  auto ra = a.Get(), rb = b.Get(), rc = c.Get();
  ASSERT_TRUE(ra.first.ok() && rb.first.ok() && rc.first.ok());
  EXPECT_THAT(ra.second[0].article_ids, ElementsAre(100, 101));
  EXPECT_THAT(ra.second[1].article_ids, ElementsAre(200, 201));
  EXPECT_THAT(rb.second[0].article_ids, ElementsAre(300));  // k of its own request
  EXPECT_THAT(rc.second[2].article_ids, ElementsAre(600, 601, 602));
  EXPECT_THAT(echo.batch_sizes, ElementsAre(6));
  // Each request is told which bundle answered its batch.
  EXPECT_EQ(ra.first.ok() ? a.version : "", "echo-1");
  EXPECT_EQ(c.version, "echo-1");
}

TEST(BatchQueue, FlushesOnSizeWithoutWaitingForTheDelay) {
  Echo echo;
  // A delay no test would wait for: only a full batch can flush.
  BatchQueue q({/*max_batch_ids=*/4, std::chrono::hours(1), 1000}, Bind(echo));
  q.Start(1);
  Outcome a, b;
  ASSERT_TRUE(q.Submit({"1", "2"}, Opt(1), Later(), a.Callback()).ok());
  ASSERT_TRUE(q.Submit({"3", "4"}, Opt(1), Later(), b.Callback()).ok());
  EXPECT_TRUE(a.Get().first.ok());
  EXPECT_TRUE(b.Get().first.ok());
}

TEST(BatchQueue, FlushesAPartialBatchWhenItsDelayExpires) {
  Echo echo;
  BatchQueue q({/*max_batch_ids=*/1000, std::chrono::milliseconds(20), 1000}, Bind(echo));
  q.Start(2);
  Outcome a;
  ASSERT_TRUE(q.Submit({"7"}, Opt(1), Later(), a.Callback()).ok());
  auto r = a.Get();
  ASSERT_TRUE(r.first.ok());
  EXPECT_THAT(r.second[0].article_ids, ElementsAre(700));
}

TEST(BatchQueue, ExpiredRequestsAreSkippedNotProcessed) {
  Echo echo;
  BatchQueue q({100, std::chrono::milliseconds(1), 1000}, Bind(echo));
  Outcome late, fine;
  ASSERT_TRUE(q.Submit({"1"}, Opt(1), Clock::now() - std::chrono::seconds(1), late.Callback()).ok());
  ASSERT_TRUE(q.Submit({"2"}, Opt(1), Later(), fine.Callback()).ok());
  q.Start(1);
  EXPECT_EQ(late.Get().first.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(fine.Get().first.ok());
  EXPECT_THAT(echo.batch_sizes, ElementsAre(1));  // only the live id was processed
}

TEST(BatchQueue, RefusesBeyondItsBoundAndAfterShutdown) {
  Echo echo;
  BatchQueue q({100, std::chrono::hours(1), /*max_queued_ids=*/3}, Bind(echo));
  Outcome a;
  ASSERT_TRUE(q.Submit({"1", "2"}, Opt(1), Later(), a.Callback()).ok());
  absl::Status over = q.Submit({"3", "4"}, Opt(1), Later(), [](absl::Status, BatchAnswer) {});
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(q.queued_ids(), 2);
  q.Start(1);
  q.Shutdown();  // drains: the accepted request still completes
  EXPECT_TRUE(a.Get().first.ok());
  absl::Status after = q.Submit({"5"}, Opt(1), Later(), [](absl::Status, BatchAnswer) {});
  EXPECT_EQ(after.code(), absl::StatusCode::kUnavailable);
}

TEST(BatchQueue, AFailedBatchFailsEveryRequestInIt) {
  BatchQueue q({100, std::chrono::milliseconds(1), 1000},
               [](int, const std::vector<absl::string_view>&, const std::vector<const RequestOptions*>&, BatchAnswer*) {
                 return absl::InternalError("store unreadable");
               });
  Outcome a, b;
  ASSERT_TRUE(q.Submit({"1"}, Opt(1), Later(), a.Callback()).ok());
  ASSERT_TRUE(q.Submit({"2"}, Opt(1), Later(), b.Callback()).ok());
  q.Start(1);
  EXPECT_EQ(a.Get().first.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(b.Get().first.code(), absl::StatusCode::kInternal);
}

// An exception thrown by the processor (not only a returned error) fails
// that batch's calls with INTERNAL; the worker lives on and serves the next.
TEST(BatchQueue, AnExceptionFailsItsBatchAndTheWorkerGoesOn) {
  Echo echo;
  std::atomic<int> calls{0};
  BatchQueue q({100, std::chrono::milliseconds(1), 1000},
               [&](int w, const std::vector<absl::string_view>& ids, const std::vector<const RequestOptions*>& options,
                   BatchAnswer* out) -> absl::Status {
                 if (calls++ == 0) throw std::runtime_error("bad_alloc-like failure");
                 return echo.Process(w, ids, options, out);
               });
  q.Start(1);
  Outcome a;
  ASSERT_TRUE(q.Submit({"1"}, Opt(1), Later(), a.Callback()).ok());
  auto first = a.Get();
  EXPECT_EQ(first.first.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(first.first.message()), ::testing::HasSubstr("bad_alloc-like failure"));
  Outcome b;
  ASSERT_TRUE(q.Submit({"2"}, Opt(1), Later(), b.Callback()).ok());
  auto second = b.Get();
  ASSERT_TRUE(second.first.ok()) << second.first;
  EXPECT_THAT(second.second[0].article_ids, ElementsAre(200));
}

// Thread settings are per thread: the hook runs on each worker thread
// itself, before that worker's first batch.
TEST(BatchQueue, WorkerStartRunsOnEachWorkerBeforeItsFirstBatch) {
  std::mutex mu;
  std::map<int, std::thread::id> started, processed;
  BatchQueue::Hooks hooks;
  hooks.worker_start = [&](int w) {
    std::lock_guard<std::mutex> lock(mu);
    started[w] = std::this_thread::get_id();
  };
  BatchQueue q(
      {1, std::chrono::microseconds(1), 1000},
      [&](int w, const std::vector<absl::string_view>& ids, const std::vector<const RequestOptions*>&,
          BatchAnswer* out) {
        std::lock_guard<std::mutex> lock(mu);
        EXPECT_TRUE(started.count(w)) << "worker " << w << " processed before its start hook";
        processed[w] = std::this_thread::get_id();
        out->results.assign(ids.size(), Recommendation());
        return absl::OkStatus();
      },
      hooks);
  q.Start(2);
  std::vector<std::unique_ptr<Outcome>> outcomes;
  for (int i = 0; i < 20; ++i) {
    outcomes.push_back(std::make_unique<Outcome>());
    ASSERT_TRUE(q.Submit({std::to_string(i)}, Opt(1), Later(), outcomes.back()->Callback()).ok());
  }
  for (auto& o : outcomes) EXPECT_TRUE(o->Get().first.ok());
  q.Shutdown();
  EXPECT_EQ(started.size(), 2u);
  for (const auto& [w, id] : processed) EXPECT_EQ(id, started[w]) << "worker " << w;
}

// The depth hook sees every change: the gauge an autoscaler reads.
TEST(BatchQueue, ReportsTheQueueDepthOnEveryChange) {
  Echo echo;
  std::mutex mu;
  std::vector<int64_t> depths;
  BatchQueue::Hooks hooks;
  hooks.queued_ids = [&](int64_t n) {
    std::lock_guard<std::mutex> lock(mu);
    depths.push_back(n);
  };
  BatchQueue q({100, std::chrono::hours(1), 1000}, Bind(echo), hooks);
  Outcome a, b;
  ASSERT_TRUE(q.Submit({"1", "2", "3"}, Opt(1), Later(), a.Callback()).ok());
  ASSERT_TRUE(q.Submit({"4", "5"}, Opt(1), Later(), b.Callback()).ok());
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_THAT(depths, ElementsAre(3, 5));
  }
  q.Start(1);
  q.Shutdown();
  EXPECT_TRUE(a.Get().first.ok());
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(depths.back(), 0);
}

// A request larger than the queue could ever hold is not "queue full"
// (which clients retry): it is refused as invalid, for good.
TEST(BatchQueue, ARequestLargerThanTheWholeQueueIsInvalid) {
  Echo echo;
  BatchQueue q({100, std::chrono::hours(1), /*max_queued_ids=*/3}, Bind(echo));
  absl::Status s = q.Submit({"1", "2", "3", "4"}, Opt(1), Later(), [](absl::Status, BatchAnswer) {});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("more than the queue holds"));
}

TEST(BatchQueue, ManyConcurrentSubmittersAllComplete) {
  Echo echo;
  BatchQueue q({64, std::chrono::milliseconds(2), 100000}, Bind(echo));
  q.Start(2);
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        Outcome o;
        const std::string id = std::to_string(t * 1000 + i);
        if (!q.Submit({id}, Opt(1), Later(), o.Callback()).ok()) continue;
        auto r = o.Get();
        if (r.first.ok() && r.second.size() == 1 && r.second[0].article_ids[0] == std::stoi(id) * 100) ++ok;
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(ok.load(), 400);
  size_t total = 0;
  for (size_t s : echo.batch_sizes) total += s;
  EXPECT_EQ(total, 400u);
}

}  // namespace
}  // namespace hmrec
