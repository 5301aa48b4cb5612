#include "client/batch_client.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/metrics.h"
#include "common/progress.h"
#include "common/rng.h"
#include "data/ids.h"
#include "proto/recommender.grpc.pb.h"

namespace hmrec {
namespace {

using Clock = std::chrono::steady_clock;

// The server shedding load: RESOURCE_EXHAUSTED saying "queue full".
bool IsQueueFull(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED && s.error_message().rfind("queue full", 0) == 0;
}

}  // namespace

void Backoff::Wait() {
  const int ms = next_ms_ / 2 + static_cast<int>(rng_.Next() % static_cast<uint64_t>(next_ms_ / 2 + 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  next_ms_ = std::min(max_ms_, next_ms_ * 2);
}

bool IsTransient(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return true;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      // The server shedding load says "queue full"; any other exhaustion (a
      // message over a size limit) fails the same way every time.
      return IsQueueFull(s);
    default:
      return false;
  }
}

namespace {

// Checks one response against its request and copies its article ids into
// rows [first, first + n) of `articles`. Counts fallbacks.
absl::Status TakeResponse(const v1::RecommendRequest& req, const v1::RecommendResponse& resp, int k, size_t first,
                          std::vector<int32_t>* articles, int64_t* fallback) {
  if (resp.results_size() != req.customer_ids_size()) {
    return absl::DataLossError(
        absl::StrCat("server answered ", resp.results_size(), " of ", req.customer_ids_size(), " customers"));
  }
  for (int i = 0; i < resp.results_size(); ++i) {
    const v1::Recommendation& r = resp.results(i);
    if (r.customer_id() != req.customer_ids(i)) {
      return absl::DataLossError(
          absl::StrCat("result ", i, " is for customer ", r.customer_id(), ", expected ", req.customer_ids(i)));
    }
    if (r.article_ids_size() < k) {
      return absl::DataLossError(
          absl::StrCat("customer ", r.customer_id(), " got ", r.article_ids_size(), " articles, expected ", k));
    }
    for (int j = 0; j < k; ++j) {
      absl::StatusOr<int32_t> id = ParseArticleId(r.article_ids(j));
      if (!id.ok()) return absl::DataLossError(absl::StrCat("customer ", r.customer_id(), ": ", id.status().message()));
      (*articles)[(first + i) * k + j] = *id;
    }
    *fallback += r.fallback();
  }
  return absl::OkStatus();
}

// The calls a worker may have in flight: `in_flight` at first, one fewer
// each time the server sheds a call for a full queue (its workers and queue
// hold fewer ids than the client sends at once), never below one. A worker
// holds a permit only while its call is out.
class InFlightLimit {
 public:
  explicit InFlightLimit(int limit) : limit_(std::max(1, limit)) {}
  void Acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return active_ < limit_; });
    ++active_;
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    --active_;
    cv_.notify_one();
  }
  // True when the limit was lowered; false when it is already one.
  bool Shrink() {
    std::lock_guard<std::mutex> lock(mu_);
    if (limit_ == 1) return false;
    --limit_;
    return true;
  }
  int limit() {
    std::lock_guard<std::mutex> lock(mu_);
    return limit_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int limit_;
  int active_ = 0;
};

}  // namespace

std::string BatchClientReport::Summary() const {
  std::vector<double> sorted = batch_ms;
  std::sort(sorted.begin(), sorted.end());
  auto q = [&](double p) { return Quantile(sorted, p); };
  return absl::StrFormat(
      "%d customers in %.1f s (%.0f/s), %d batches, batch latency p50 %.1f ms p99 %.1f ms, %d retries, "
      "fallback %.2f%%, bundle %s%s",
      customers, wall_seconds, wall_seconds > 0 ? customers / wall_seconds : 0.0, batches, q(0.5), q(0.99), retries,
      customers > 0 ? 100.0 * fallback / customers : 0.0, bundle_version,
      in_flight < in_flight_asked ? absl::StrFormat(", %d calls in flight (%d asked: the server's queue refused more)",
                                                    in_flight, in_flight_asked)
                                  : "");
}

absl::Status RecommendAll(const std::shared_ptr<grpc::Channel>& channel, const std::vector<std::string>& ids,
                          const BatchClientOptions& options, std::vector<int32_t>* articles,
                          BatchClientReport* report) {
  const int k = options.k;
  const size_t batch = static_cast<size_t>(std::max(1, options.batch_size));
  const size_t n_batches = (ids.size() + batch - 1) / batch;
  articles->assign(ids.size() * k, 0);
  *report = BatchClientReport();
  const auto start = Clock::now();

  std::atomic<size_t> next{0};
  std::atomic<int64_t> done{0}, fallback{0}, retries{0};
  std::atomic<bool> failed{false};
  std::mutex mu;  // guards the members below
  absl::Status error;
  std::vector<double> latencies;
  std::string version;         // the main arm's, from the first batch answered
  std::string canary_version;  // the canary arm's, when one answered
  InFlightLimit limit(options.in_flight);

  auto work = [&](int worker) {
    auto stub = v1::Recommender::NewStub(channel);
    Rng rng(0x5eed, static_cast<uint64_t>(worker));
    while (!failed.load()) {
      const size_t b = next.fetch_add(1);
      if (b >= n_batches) return;
      const size_t first = b * batch, last = std::min(ids.size(), first + batch);
      if (options.max_rate > 0) {  // stay under max_rate customers/s
        std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                                                  static_cast<double>(first) / options.max_rate)));
      }
      v1::RecommendRequest req;
      req.set_k(k);
      for (size_t i = first; i < last; ++i) req.add_customer_ids(ids[i]);
      absl::Status outcome;
      Backoff backoff(options.initial_backoff_ms, options.max_backoff_ms, rng.Next());
      for (int attempt = 1;; ++attempt) {
        v1::RecommendResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(options.deadline_ms));
        limit.Acquire();
        const auto t0 = Clock::now();
        grpc::Status s = stub->Recommend(&ctx, req, &resp);
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        limit.Release();
        if (s.ok()) {
          int64_t fb = 0;
          outcome = TakeResponse(req, resp, k, first, articles, &fb);
          if (outcome.ok()) {
            std::lock_guard<std::mutex> lock(mu);
            // One version per arm for the whole run: the main bundle's, and
            // the canary's when the servers run one (each result names its
            // own; a response's version is empty when both answered).
            for (const v1::Recommendation& r : resp.results()) {
              std::string& seen = r.canary() ? canary_version : version;
              const std::string& now = r.bundle_version().empty() ? resp.bundle_version() : r.bundle_version();
              if (seen.empty()) seen = now;
              if (now != seen && outcome.ok()) {
                outcome = absl::AbortedError(absl::StrCat(
                    "answered by ", r.canary() ? "canary " : "", "bundle ", now,
                    " while earlier batches were answered by ", seen,
                    ": the servers' bundle changed during the run (a rollout); run again once every server serves "
                    "one bundle"));
              }
            }
            if (outcome.ok()) {
              fallback += fb;
              done += static_cast<int64_t>(last - first);
              latencies.push_back(ms);
            }
          }
          break;
        }
        const bool transient = IsTransient(s);
        outcome = absl::Status(
            static_cast<absl::StatusCode>(s.error_code()),
            transient ? s.error_message() : absl::StrCat("permanent error, not retried: ", s.error_message()));
        if (!transient || failed.load()) break;
        // Shed for a full queue while the client had more than one call out:
        // fewer calls at once, and this one again (not counted as an attempt).
        if (IsQueueFull(s) && limit.Shrink()) {
          --attempt;
        } else if (attempt >= options.max_attempts) {
          break;
        }
        ++retries;
        backoff.Wait();
      }
      if (!outcome.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (error.ok()) {
          error = absl::Status(outcome.code(),
                               absl::StrCat("customer ", ids[first], " (and the other ", last - first - 1, " of batch ",
                                            b + 1, " of ", n_batches, ") could not be served: ", outcome.message()));
        }
        failed = true;
        return;
      }
    }
  };

  const int workers = std::max(1, std::min<int>(options.in_flight, static_cast<int>(std::max<size_t>(1, n_batches))));
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) threads.emplace_back(work, w);
  ProgressReporter progress("client", static_cast<int64_t>(ids.size()), "customers");
  progress.set_enabled(options.show_progress);
  while (true) {
    const int64_t d = done.load();
    if (d >= static_cast<int64_t>(ids.size()) || failed.load()) break;
    progress.set_suffix(absl::StrCat(retries.load(), " retries"));
    progress.Update(d);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (std::thread& t : threads) t.join();
  if (!error.ok()) return error;
  progress.Finish(done.load());

  report->customers = done.load();
  report->fallback = fallback.load();
  report->batches = static_cast<int64_t>(n_batches);
  report->retries = retries.load();
  report->wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  report->batch_ms = std::move(latencies);
  // A canary's version joins the main one: parts answered by different
  // canaries are different submissions too (hmrec_evaluate merge).
  report->bundle_version = canary_version.empty() ? version : absl::StrCat(version, "+canary:", canary_version);
  report->in_flight_asked = std::max(1, options.in_flight);
  report->in_flight = limit.limit();
  if (report->customers != static_cast<int64_t>(ids.size())) {
    return absl::InternalError(absl::StrCat("served ", report->customers, " of ", ids.size(), " customers"));
  }
  return absl::OkStatus();
}

}  // namespace hmrec
