#pragma once

// Where RecordPurchases calls wait for their write: a bounded queue and one
// writer thread, so a gRPC callback thread never blocks on an fsync or a
// Redis round trip. A call that finds the queue full is refused at once
// (RESOURCE_EXHAUSTED: retry with backoff; recording is idempotent by
// event id). Writes run in arrival order.
//
// Thread-safe. The destructor runs every write already queued, then stops.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/status/status.h"

namespace hmrec {

class EventWriter {
 public:
  // At most `capacity` writes waiting (the one running not counted).
  explicit EventWriter(int capacity);
  ~EventWriter();

  // Queues `write` (it runs on the writer thread), or RESOURCE_EXHAUSTED
  // when `capacity` writes wait already.
  absl::Status Submit(std::function<void()> write);

  int64_t waiting() const;

 private:
  void Run();

  const int capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace hmrec
