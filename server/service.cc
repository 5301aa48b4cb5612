#include "server/service.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>

namespace hmrec {

BatchQueue::Processor MakeProcessor(const BundleHolder* bundles, ServerMetrics* metrics, int search_threads) {
  auto running = std::make_shared<std::atomic<int>>(0);
  return [bundles, metrics, search_threads, running](int w, const std::vector<absl::string_view>& ids, int k,
                                                     BatchAnswer* answer) {
    const std::shared_ptr<const ServingBundle> bundle = bundles->Current();
    answer->bundle_version = bundle->version;
    std::vector<Recommendation>* out = &answer->results;
    StageTimes t;
    const int now_running = ++*running;
    const int threads = search_threads > 0 ? std::max(1, search_threads / now_running) : 0;
    absl::Status s = bundle->recommenders[w]->Recommend(ids, k, out, &t, threads);
    --*running;
    if (metrics != nullptr) {
      metrics->ObserveStage("feature_lookup", t.feature_lookup);
      metrics->ObserveStage("tower", t.tower);
      metrics->ObserveStage("search", t.search);
      if (s.ok()) {
        double fallback = 0;
        for (const Recommendation& r : *out) fallback += r.fallback;
        metrics->AddCustomers(static_cast<double>(out->size()), fallback);
      }
    }
    return s;
  };
}

BatchQueue::BatchObserver MakeBatchObserver(ServerMetrics* metrics) {
  return [metrics](size_t ids, std::chrono::microseconds oldest_wait) {
    if (metrics == nullptr) return;
    metrics->ObserveBatch(static_cast<double>(ids));
    metrics->ObserveStage("queue_wait", static_cast<double>(oldest_wait.count()) / 1e6);
  };
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

RecommenderService::RecommenderService(BatchQueue* queue, RequestLimits limits, ServerMetrics* metrics)
    : queue_(queue), limits_(limits), metrics_(metrics) {}

grpc::ServerUnaryReactor* RecommenderService::Recommend(grpc::CallbackServerContext* context,
                                                        const v1::RecommendRequest* request,
                                                        v1::RecommendResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const auto start = std::chrono::steady_clock::now();
  ServerMetrics* metrics = metrics_;
  auto finish = [reactor, start, metrics](const absl::Status& s) {
    if (metrics != nullptr) {
      metrics->ObserveRequest("Recommend", s.code(),
                              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    reactor->Finish(ToGrpcStatus(s));
  };
  absl::Status valid = ValidateRequest(*request, limits_);
  if (!valid.ok()) {
    finish(valid);
    return reactor;
  }
  // The call's deadline, on the queue's clock (none: a generous default).
  const auto remaining = context->deadline() - std::chrono::system_clock::now();
  const auto deadline = remaining > std::chrono::hours(1) ? BatchQueue::Clock::now() + std::chrono::hours(1)
                                                          : BatchQueue::Clock::now() + remaining;
  std::vector<std::string> ids(request->customer_ids().begin(), request->customer_ids().end());
  const int k = RequestedK(*request, limits_);
  absl::Status submitted =
      queue_->Submit(std::move(ids), k, deadline, [finish, request, response](absl::Status s, BatchAnswer answer) {
        if (s.ok()) FillResponse(*request, answer.results, answer.bundle_version, response);
        finish(s);
      });
  if (!submitted.ok()) finish(submitted);
  return reactor;
}

}  // namespace hmrec
