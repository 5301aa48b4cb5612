#pragma once

// Recommendations for a whole list of customers from a running server, for
// a Kaggle submission: batches of `batch_size` ids, `in_flight` calls at a
// time, a deadline on every call, retries with exponential backoff and
// jitter on transient errors (IsTransient: a server restarting, slow or
// shedding load), progress on stderr. A permanent error (a request the
// server will never accept) stops the run at once, naming it.
//
// All or nothing: every customer gets exactly `k` article ids, in input
// order, or the call returns an error naming a customer that could not be
// served and why. Nothing partial is ever handed back. One bundle answers
// the whole list: a batch answered by another bundle version than the first
// (a rollout during the run) fails the run (ABORTED, naming both), since a
// submission mixing two models scores neither.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "common/rng.h"

namespace hmrec {

struct BatchClientOptions {
  int k = 12;
  int batch_size = 1000;
  int in_flight = 4;        // concurrent calls: twice the server's workers keeps them busy; lowered while
                            // the server refuses calls for a full queue
  int deadline_ms = 30000;  // per call
  int max_attempts = 10;    // per batch, first try included
  int initial_backoff_ms = 100;
  int max_backoff_ms = 5000;
  double max_rate = 0;  // customers/s to stay under (0: no limit)
  bool show_progress = true;
};

struct BatchClientReport {
  int64_t customers = 0;
  int64_t fallback = 0;  // answered with the popular fallback
  int64_t batches = 0;
  int64_t retries = 0;  // calls repeated after a retryable error
  double wall_seconds = 0;
  std::vector<double> batch_ms;  // latency of each successful call
  std::string bundle_version;    // the one version that answered every batch ("V+canary:C" with a canary)
  int in_flight_asked = 0;       // BatchClientOptions::in_flight
  int in_flight = 0;             // at the end: lower when the server's queue refused calls

  // "1,371,980 customers in 142.1 s (9,655/s), 1,372 batches, p50 98 ms, p99 160 ms, ..."
  std::string Summary() const;
};

// The waits between retries of one call: exponential with jitter, each
// uniform in [b/2, b] where b starts at `initial_ms` and doubles up to
// `max_ms`. Shared by the batch client and the recorder.
class Backoff {
 public:
  Backoff(int initial_ms, int max_ms, uint64_t seed) : next_ms_(initial_ms), max_ms_(max_ms), rng_(seed) {}
  // Sleeps for the next wait.
  void Wait();

 private:
  int next_ms_;
  const int max_ms_;
  Rng rng_;
};

// True for errors worth retrying: UNAVAILABLE, DEADLINE_EXCEEDED, and
// RESOURCE_EXHAUSTED when the server's queue is full. Everything else
// (INVALID_ARGUMENT, a response over the size limit, ...) is permanent.
bool IsTransient(const grpc::Status& status);

// Fills `articles` with ids.size() x options.k article ids (row i for
// ids[i]). `ids` must be valid customer ids (the server refuses others).
absl::Status RecommendAll(const std::shared_ptr<grpc::Channel>& channel, const std::vector<std::string>& ids,
                          const BatchClientOptions& options, std::vector<int32_t>* articles, BatchClientReport* report);

}  // namespace hmrec
