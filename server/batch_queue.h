#pragma once

// Merges the customer ids of concurrent requests into batches for the
// worker threads that own the heavy work (feature lookup, tower, search).
// A batch is flushed when it holds max_batch_ids ids or when its oldest
// request has waited max_delay; a request is never split, and every request
// gets exactly one completion, with its results in its own id order.
//
// Submit() never blocks (handlers call it from gRPC callbacks): it refuses
// with RESOURCE_EXHAUSTED ("queue full: ...") when the queue holds
// max_queued_ids ids, INVALID_ARGUMENT for a request larger than that bound
// (it could never be accepted), and UNAVAILABLE after Shutdown(). A request
// whose deadline passed while queued completes with DEADLINE_EXCEEDED and is
// not processed. A batch whose processor fails or throws completes each of
// its requests with that error (INTERNAL for an exception); the worker goes
// on with the next batch. Thread-safe.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/recommendation.h"

namespace hmrec {

struct BatchQueueOptions {
  int max_batch_ids = 1024;                   // flush when this many ids wait
  std::chrono::microseconds max_delay{2000};  // or when the oldest waited this long
  int64_t max_queued_ids = 200000;            // beyond: RESOURCE_EXHAUSTED
};

// What a batch (or one request's share of it) produced: results in id
// order, and the version of the bundle that answered. `deadline` is given
// to the processor: the earliest deadline of the batch's requests, for the
// stages that must budget their waits.
struct BatchAnswer {
  std::vector<Recommendation> results;
  std::string bundle_version;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

class BatchQueue {
 public:
  using Clock = std::chrono::steady_clock;
  // Called once per request, on a worker thread.
  using Done = std::function<void(absl::Status, BatchAnswer)>;
  // Processes one batch on the worker `worker`: options[i] is the options
  // of the request ids[i] came from.
  using Processor = std::function<absl::Status(int worker, const std::vector<absl::string_view>& ids,
                                               const std::vector<const RequestOptions*>& options, BatchAnswer* out)>;
  // Optional callbacks; each may be empty.
  struct Hooks {
    // Runs on each worker thread before its first batch (thread settings).
    std::function<void(int worker)> worker_start;
    // Each flushed batch: its size and the queue wait of its oldest request.
    std::function<void(size_t ids, std::chrono::microseconds oldest_wait)> batch;
    // The number of ids waiting, after every change (called under the
    // queue's lock: keep it cheap, e.g. a gauge's Set).
    std::function<void(int64_t ids)> queued_ids;
  };

  BatchQueue(BatchQueueOptions options, Processor processor, Hooks hooks = {});
  ~BatchQueue();  // Shutdown() with no deadline

  // Starts `workers` worker threads.
  void Start(int workers);

  absl::Status Submit(std::vector<std::string> ids, std::shared_ptr<const RequestOptions> options,
                      Clock::time_point deadline, Done done);

  // Stops accepting work, lets the workers finish what is queued, joins them.
  void Shutdown();

  int64_t queued_ids() const;

 private:
  struct Request {
    std::vector<std::string> ids;
    std::shared_ptr<const RequestOptions> options;
    Clock::time_point deadline;
    Clock::time_point enqueued;
    Done done;
  };
  void Work(int worker);

  const BatchQueueOptions options_;
  const Processor processor_;
  const Hooks hooks_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request> queue_;
  int64_t queued_ids_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace hmrec
