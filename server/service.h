#pragma once

// The gRPC edge of the server: the callback-API handler validates a request,
// hands its ids to the BatchQueue and returns without blocking; the batch
// worker completes the call. The one place where absl::Status becomes
// grpc::Status.

#include <chrono>
#include <functional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "events/event_store.h"
#include "proto/recommender.grpc.pb.h"
#include "server/auth.h"
#include "server/batch_queue.h"
#include "server/bundle_holder.h"
#include "server/erasure_list.h"
#include "server/event_writer.h"
#include "server/impression_log.h"
#include "server/metrics.h"
#include "server/request.h"
#include "server/rules_holder.h"

namespace hmrec {

// The batch workers' job: worker w (0..workers-1) runs the Recommender of
// the bundle being served when the batch starts (the whole batch is answered
// by that bundle) with its own scratch, and records the stage timings and
// customer counts in `metrics` (may be null). `search_threads` is
// ServerConfig.search_threads: shared by the running batches' searches (0:
// each uses the worker's OpenMP setting).
// With `events` (may be null), the batch's customers' recorded purchases
// are looked up first (one round trip, within `lookup_budget` or a tenth of
// the time to the batch's deadline, whichever is less) and applied; if the
// store fails the batch is answered from the bundle alone and the failure
// counted. Customers on `erasures` (may be null) are served as unknown:
// neither the bundle's features nor recorded events are read for them.
// With `rules` (may be null), each answer follows the merchandising rules
// in force (server/rules_holder.h): the core never serves an unavailable
// article and builds each list longer than k; the rules shape it to k.
// With `canary` (may be null), the customers in its `canary_percent` share
// (server/canary.h) are answered by the bundle it serves, the others by
// `bundles`': each result names its bundle version and arm.
BatchQueue::Processor MakeProcessor(const BundleHolder* bundles, ServerMetrics* metrics, int workers,
                                    int search_threads = 0, EventStore* events = nullptr,
                                    std::chrono::milliseconds lookup_budget = std::chrono::milliseconds(5),
                                    const ErasureList* erasures = nullptr, const BundleHolder* canary = nullptr,
                                    double canary_percent = 0, const RulesHolder* rules = nullptr);

// Hooks that record each flushed batch's size and queue wait and the queue
// depth in `metrics`, and set each worker's LibTorch/OpenMP threads to
// `compute_threads` on the worker itself (thread counts are per thread).
BatchQueue::Hooks MakeQueueHooks(ServerMetrics* metrics, int compute_threads);

// The arm that answered a call's results: "main", "canary", "mixed" (both),
// "none" (no result: a refused or failed call). A request metric's label.
std::string ArmOf(const std::vector<Recommendation>& results);

// The one conversion to the wire.
grpc::Status ToGrpcStatus(const absl::Status& status);

class RecommenderService final : public v1::Recommender::CallbackService {
 public:
  // Checks a request's filters against the bundle being served
  // (INVALID_ARGUMENT naming an unknown value).
  using FilterCheck = std::function<absl::Status(const RequestFilters&)>;

  // `queue`, `auth` and `metrics` (may be null) must outlive the service.
  RecommenderService(BatchQueue* queue, const Authenticator* auth, RequestLimits limits,
                     ServerMetrics* metrics = nullptr, FilterCheck check_filters = nullptr);

  // The caller of a call that needs `scope`, from the credentials an edge
  // took from it (the one decision both edges share); a refusal is counted
  // under `method` and returned for the edge to send.
  absl::StatusOr<Caller> Authenticate(const Credentials& credentials, Scope scope, const std::string& method,
                                      Refusal* why = nullptr) const;

  grpc::ServerUnaryReactor* Recommend(grpc::CallbackServerContext* context, const v1::RecommendRequest* request,
                                      v1::RecommendResponse* response) override;

  // The one path of a Recommend call, whatever the transport: validation,
  // filters, the batch queue; `done` runs once, with the response filled
  // when the status is OK. `request` and `response` must live until then.
  // `method` labels the call in the metrics ("Recommend" for gRPC, "http"),
  // `caller` is who Authenticate() said is calling.
  using Done = std::function<void(const absl::Status&)>;
  void Handle(const v1::RecommendRequest* request, v1::RecommendResponse* response,
              std::chrono::system_clock::time_point deadline, const std::string& method, const Caller& caller,
              Done done);

  grpc::ServerUnaryReactor* SimilarArticles(grpc::CallbackServerContext* context,
                                            const v1::SimilarArticlesRequest* request,
                                            v1::SimilarArticlesResponse* response) override;
  // The one path of a SimilarArticles call, whatever the transport: like
  // Handle(), through the same batch queue (one place a request).
  void HandleSimilar(const v1::SimilarArticlesRequest* request, v1::SimilarArticlesResponse* response,
                     std::chrono::system_clock::time_point deadline, const std::string& method, const Caller& caller,
                     Done done);

  // RecordPurchases stores into `store` through `writer` (both must outlive
  // the service; the callback thread only validates and queues), at most
  // `max_events` a call, articles checked against `bundles`' current one,
  // dates no later than the day after the later of today and the bundle's
  // last data day. Without this call RecordPurchases is UNIMPLEMENTED.
  // Every call by a known caller writes one audit line (server/audit.h).
  // EraseCustomer erases through the same store and writer and adds the
  // ids to `erasures` (which must outlive the service); without this call
  // it is UNIMPLEMENTED.
  void EnableRecording(EventStore* store, EventWriter* writer, int max_events, const BundleHolder* bundles,
                       ErasureList* erasures);
  // Every answered Recommend and personalised SimilarArticles call is
  // offered to `log` (must outlive the service), which keeps its sample.
  void LogImpressions(ImpressionLog* log) { impressions_ = log; }
  // The event store RecordPurchases writes to (null when recording is off).
  EventStore* events() const { return events_; }
  grpc::ServerUnaryReactor* RecordPurchases(grpc::CallbackServerContext* context,
                                            const v1::RecordPurchasesRequest* request,
                                            v1::RecordPurchasesResponse* response) override;
  grpc::ServerUnaryReactor* EraseCustomer(grpc::CallbackServerContext* context, const v1::EraseCustomerRequest* request,
                                          v1::EraseCustomerResponse* response) override;

 private:
  // The credentials of a gRPC call: its authorization metadata and, when
  // the transport verified a client certificate, its subject CN.
  static Credentials CredentialsOf(const grpc::CallbackServerContext* context);
  // `done` wrapped to record the call's time under `method`, `caller` and
  // the arm that answered (`*arm` when it runs; "none" without).
  Done Timed(const std::string& method, const Caller& caller, Done done,
             std::shared_ptr<const std::string> arm = nullptr) const;
  // What Handle and HandleSimilar share once a request is valid: its filter
  // names checked against the bundle, then the batch queue within the call's
  // deadline; `fill` writes the response from an answer, `finish` runs once.
  void Enqueue(std::vector<std::string> ids, std::shared_ptr<const RequestOptions> options,
               std::chrono::system_clock::time_point call_deadline, std::function<void(const BatchAnswer&)> fill,
               Done finish);
  // The one path of a write (RecordPurchases, EraseCustomer): the caller
  // checked for `scope`, UNIMPLEMENTED without an event store, `validate`
  // on the callback thread, then `work` on the event writer's thread; the
  // call timed under `method` and audited by `audit` (caller, outcome).
  using WriteAudit = std::function<void(const std::string& caller, const absl::Status& status)>;
  grpc::ServerUnaryReactor* Write(grpc::CallbackServerContext* context, Scope scope, const std::string& method,
                                  const WriteAudit& audit, const std::function<absl::Status()>& validate,
                                  std::function<absl::Status()> work);
  // RecordPurchases once the caller is known, on the writer's thread.
  absl::Status Record(const v1::RecordPurchasesRequest& request, v1::RecordPurchasesResponse* response);
  // EraseCustomer once the caller is known, on the writer's thread.
  absl::Status Erase(const v1::EraseCustomerRequest& request, v1::EraseCustomerResponse* response);

  BatchQueue* queue_;
  const Authenticator* auth_;
  const RequestLimits limits_;
  ServerMetrics* metrics_;
  const FilterCheck check_filters_;
  EventStore* events_ = nullptr;
  EventWriter* writer_ = nullptr;
  int max_events_ = 0;
  const BundleHolder* bundles_ = nullptr;
  ErasureList* erasures_ = nullptr;
  ImpressionLog* impressions_ = nullptr;
};

}  // namespace hmrec
