// RecordPurchases' writer queue (server/event_writer.h): writes run off the
// caller's thread, in order; a full queue refuses at once; the destructor
// runs what was queued. Run under TSan too.

#include "server/event_writer.h"

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hmrec {
namespace {

TEST(EventWriter, RunsWritesInOrderOffTheCallersThread) {
  std::vector<int> done;
  std::mutex mu;
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<bool> elsewhere{true};
  {
    EventWriter writer(100);
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(writer
                      .Submit([&, i] {
                        if (std::this_thread::get_id() == caller) elsewhere = false;
                        std::lock_guard<std::mutex> lock(mu);
                        done.push_back(i);
                      })
                      .ok());
    }
  }  // the destructor runs what was queued
  ASSERT_EQ(done.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(done[i], i);
  EXPECT_TRUE(elsewhere.load());
}

TEST(EventWriter, AFullQueueRefusesAtOnce) {
  // Declared before the writer: they outlive its thread.
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> started;
  EventWriter writer(2);
  ASSERT_TRUE(writer
                  .Submit([&] {
                    started.set_value();
                    gate.wait();  // a store that hangs
                  })
                  .ok());
  started.get_future().wait();
  ASSERT_TRUE(writer.Submit([] {}).ok());
  ASSERT_TRUE(writer.Submit([] {}).ok());
  EXPECT_EQ(writer.waiting(), 2);
  const auto start = std::chrono::steady_clock::now();
  const absl::Status full = writer.Submit([] {});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(100));
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(full.message()), ::testing::HasSubstr("max_pending_writes"));
  release.set_value();
}

}  // namespace
}  // namespace hmrec
