#include "server/service.h"

#include <chrono>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/ids.h"

namespace hmrec {
namespace {

constexpr int kDefaultK = 12;

// Quotes a client-supplied value for an error message: escaped, truncated.
std::string Quote(const std::string& value) {
  std::string v = absl::CHexEscape(value.size() > 80 ? value.substr(0, 80) + "..." : value);
  return absl::StrCat("'", v, "'");
}

}  // namespace

BatchQueue::Processor MakeProcessor(const BundleHolder* bundles, ServerMetrics* metrics) {
  return [bundles, metrics](int w, const std::vector<absl::string_view>& ids, int k, BatchAnswer* answer) {
    const std::shared_ptr<const ServingBundle> bundle = bundles->Current();
    answer->bundle_version = bundle->version;
    std::vector<Recommendation>* out = &answer->results;
    StageTimes t;
    absl::Status s = bundle->recommenders[w]->Recommend(ids, k, out, &t);
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

absl::Status ValidateRequest(const v1::RecommendRequest& request, const RequestLimits& limits) {
  if (request.customer_ids_size() == 0) return absl::InvalidArgumentError("customer_ids is empty");
  if (request.customer_ids_size() > limits.max_ids) {
    return absl::InvalidArgumentError(
        absl::StrCat(request.customer_ids_size(), " customer_ids, at most ", limits.max_ids, " per request"));
  }
  if (request.k() < 0 || request.k() > limits.max_k) {
    return absl::InvalidArgumentError(absl::StrCat("k = ", request.k(), " out of range 1..", limits.max_k));
  }
  for (int i = 0; i < request.customer_ids_size(); ++i) {
    if (!IsValidCustomerId(request.customer_ids(i))) {
      return absl::InvalidArgumentError(absl::StrCat("customer_ids[", i, "] = ", Quote(request.customer_ids(i)),
                                                     " is not 64 lowercase hex characters"));
    }
  }
  return absl::OkStatus();
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
  const int k = request->k() == 0 ? std::min(kDefaultK, limits_.max_k) : request->k();
  absl::Status submitted = queue_->Submit(
      std::move(ids), k, deadline,
      [finish, request, response](absl::Status s, BatchAnswer answer) {
        if (s.ok()) {
          const std::vector<Recommendation>& results = answer.results;
          response->set_bundle_version(answer.bundle_version);
          char buf[kArticleIdDigits];
          for (int i = 0; i < request->customer_ids_size(); ++i) {
            v1::Recommendation* r = response->add_results();
            r->set_customer_id(request->customer_ids(i));
            r->set_fallback(results[i].fallback);
            for (size_t j = 0; j < results[i].article_ids.size(); ++j) {
              FormatArticleIdTo(results[i].article_ids[j], buf);
              r->add_article_ids(std::string(buf, kArticleIdDigits));
              r->add_scores(results[i].scores[j]);
            }
          }
        }
        finish(s);
      });
  if (!submitted.ok()) finish(submitted);
  return reactor;
}

}  // namespace hmrec
