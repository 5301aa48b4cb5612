#include "server/service.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "data/dates.h"
#include "model/tower_runner.h"
#include "server/audit.h"
#include "server/canary.h"

namespace hmrec {
namespace {

// A batch's share of the server's search threads (0: the worker's OpenMP
// setting), counted among the batches running while it lives.
class ThreadShare {
 public:
  ThreadShare(std::atomic<int>* running, int search_threads) : running_(running) {
    const int now_running = ++*running_;
    threads_ = search_threads > 0 ? std::max(1, search_threads / now_running) : 0;
  }
  ~ThreadShare() { --*running_; }
  ThreadShare(const ThreadShare&) = delete;
  ThreadShare& operator=(const ThreadShare&) = delete;
  int threads() const { return threads_; }

 private:
  std::atomic<int>* running_;
  int threads_ = 0;
};

}  // namespace

BatchQueue::Processor MakeProcessor(const BundleHolder* bundles, ServerMetrics* metrics, int workers,
                                    int search_threads, EventStore* events, std::chrono::milliseconds lookup_budget,
                                    const ErasureList* erasures, const BundleHolder* canary, double canary_percent,
                                    const RulesHolder* rules) {
  auto running = std::make_shared<std::atomic<int>>(0);
  // Scratch belongs to the worker, not to the bundle: it survives swaps.
  auto scratch = std::make_shared<std::vector<RecommendScratch>>(static_cast<size_t>(std::max(1, workers)));
  auto recorded = std::make_shared<std::vector<CustomerEvents>>(static_cast<size_t>(std::max(1, workers)));
  auto similar_scratch =
      std::make_shared<std::vector<Recommender::SimilarScratch>>(static_cast<size_t>(std::max(1, workers)));
  // The purchases recorded for `ids` (worker w's buffer), or null when there
  // is no event store or the lookup failed (counted; the answer goes on
  // from the bundle).
  auto lookup = [metrics, events, recorded, lookup_budget](int w, const ServingBundle& bundle,
                                                           const std::vector<absl::string_view>& ids,
                                                           std::chrono::steady_clock::time_point deadline) {
    const CustomerEvents* applied = nullptr;
    if (events == nullptr || ids.empty()) return applied;
    const auto t0 = std::chrono::steady_clock::now();
    CustomerEvents& mine = (*recorded)[static_cast<size_t>(w)];
    // A dependency that hangs must not hold the batch: a few ms at most.
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - t0) / 10;
    const std::chrono::milliseconds budget = std::max(std::chrono::milliseconds(1), std::min(lookup_budget, left));
    absl::Status looked = events->Lookup(ids, bundle.recommender->as_of(), &mine, budget);
    if (looked.ok()) {
      applied = &mine;
    } else if (metrics != nullptr) {
      metrics->CountEventLookupFailure();
    }
    if (metrics != nullptr) {
      metrics->ObserveStage("events", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return applied;
  };
  // One batch's Recommend ids (SimilarArticles requests are answered apart).
  auto recommend = [metrics, search_threads, running, scratch, lookup](
                       int w, const std::shared_ptr<const ServingBundle>& bundle,
                       const std::vector<absl::string_view>& ids, const std::vector<const RequestOptions*>& options,
                       std::chrono::steady_clock::time_point deadline, std::vector<Recommendation>* out) {
    const CustomerEvents* applied = lookup(w, *bundle, ids, deadline);
    StageTimes t;
    absl::Status s;
    {
      const ThreadShare share(running.get(), search_threads);
      s = bundle->recommender->Recommend(ids, options, out, &t, share.threads(), &(*scratch)[static_cast<size_t>(w)],
                                         applied);
    }
    if (metrics != nullptr) {
      metrics->ObserveStage("feature_lookup", t.feature_lookup);
      metrics->ObserveStage("tower", t.tower);
      metrics->ObserveStage("search", t.search);
      if (bundle->recommender->ranking()) {
        metrics->ObserveStage("candidates", t.candidates);
        metrics->ObserveStage("ranking_features", t.features);
        metrics->ObserveStage("ranker", t.ranker);
      }
      if (s.ok()) metrics->AddResults(*out);
    }
    return s;
  };
  // The part of a batch one bundle answers, in the batch's order.
  auto serve = [metrics, search_threads, running, similar_scratch, recommend, lookup](
                   int w, const std::shared_ptr<const ServingBundle>& bundle, const std::vector<absl::string_view>& ids,
                   const std::vector<const RequestOptions*>& options, std::chrono::steady_clock::time_point deadline,
                   std::vector<Recommendation>* results) -> absl::Status {
    size_t similar = 0;
    for (const RequestOptions* o : options) similar += o->similar != nullptr;
    if (similar == 0) return recommend(w, bundle, ids, options, deadline, results);
    // A batch holding SimilarArticles requests: each kind through its own
    // path, the answers put back in the batch's order.
    std::vector<absl::string_view> rec_ids, sim_ids, personal_ids;
    std::vector<const RequestOptions*> rec_options, sim_options;
    std::vector<size_t> rec_at, sim_at;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (options[i]->similar != nullptr) {
        sim_ids.push_back(ids[i]);  // the customer it is for; empty: none
        if (!ids[i].empty()) personal_ids.push_back(ids[i]);
        sim_options.push_back(options[i]);
        sim_at.push_back(i);
      } else {
        rec_ids.push_back(ids[i]);
        rec_options.push_back(options[i]);
        rec_at.push_back(i);
      }
    }
    results->assign(ids.size(), Recommendation());
    std::vector<Recommendation> part;
    if (!rec_ids.empty()) {
      RETURN_IF_ERROR(recommend(w, bundle, rec_ids, rec_options, deadline, &part));
      for (size_t j = 0; j < rec_at.size(); ++j) (*results)[rec_at[j]] = std::move(part[j]);
    }
    // Recorded purchases of the customers similar requests name, aligned
    // with sim_ids (after the Recommend part: they share the buffer).
    CustomerEvents sim_events;
    const CustomerEvents* personal = lookup(w, *bundle, personal_ids, deadline);
    if (personal != nullptr) {
      sim_events.resize(sim_ids.size());
      for (size_t j = 0, p = 0; j < sim_ids.size(); ++j) {
        if (!sim_ids[j].empty()) sim_events[j] = (*personal)[p++];
      }
    }
    double seconds = 0;
    absl::Status s;
    {
      const ThreadShare share(running.get(), search_threads);
      s = bundle->recommender->Similar(sim_ids, sim_options, &part, &seconds, share.threads(),
                                       &(*similar_scratch)[static_cast<size_t>(w)],
                                       personal != nullptr ? &sim_events : nullptr);
    }
    if (metrics != nullptr) metrics->ObserveStage("similar", seconds);
    RETURN_IF_ERROR(s);
    for (size_t j = 0; j < sim_at.size(); ++j) (*results)[sim_at[j]] = std::move(part[j]);
    return absl::OkStatus();
  };
  // The part one bundle answers, with the merchandising rules in force:
  // the core is asked for longer lists that skip the unavailable articles,
  // then each is shaped to its k by the rules.
  auto ruled = [rules, metrics, serve](
                   int w, const std::shared_ptr<const ServingBundle>& bundle, const std::vector<absl::string_view>& ids,
                   const std::vector<const RequestOptions*>& options, std::chrono::steady_clock::time_point deadline,
                   std::vector<Recommendation>* results) -> absl::Status {
    if (rules == nullptr) return serve(w, bundle, ids, options, deadline, results);
    const std::shared_ptr<const CompiledRules> compiled = rules->For(bundle);
    const int limit = static_cast<int>(bundle->recommender->fallback_ids().size());
    // One copy of each distinct request's options (a request's customers
    // share theirs), reserved so that the pointers stay put.
    std::vector<RequestOptions> copies;
    copies.reserve(options.size());
    absl::flat_hash_map<const RequestOptions*, const RequestOptions*> copy_of;
    std::vector<const RequestOptions*> pooled(options.size());
    for (size_t i = 0; i < options.size(); ++i) {
      const RequestOptions*& c = copy_of[options[i]];
      if (c == nullptr) {
        copies.push_back(compiled->Pooled(*options[i], limit));
        c = &copies.back();
      }
      pooled[i] = c;
    }
    RETURN_IF_ERROR(serve(w, bundle, ids, pooled, deadline, results));
    RuleCounts counts;
    int64_t removed = 0;
    const int32_t day = rules->Today();
    for (size_t i = 0; i < results->size(); ++i) {
      removed += (*results)[i].unavailable_removed;
      compiled->Shape(*options[i], day, &(*results)[i], &counts);
    }
    if (metrics != nullptr) {
      metrics->AddRuleCounts(static_cast<double>(removed), static_cast<double>(counts.boosted),
                             static_cast<double>(counts.buried), static_cast<double>(counts.capped),
                             static_cast<double>(counts.pinned), static_cast<double>(counts.unmet));
    }
    return absl::OkStatus();
  };
  return [bundles, canary, canary_percent, erasures, ruled](int w, const std::vector<absl::string_view>& batch_ids,
                                                            const std::vector<const RequestOptions*>& options,
                                                            BatchAnswer* answer) -> absl::Status {
    // Erased customers are served as unknown ones: their ids are not looked
    // up anywhere (the response keeps the ids the caller sent).
    std::vector<absl::string_view> masked;
    if (erasures != nullptr && erasures->size() > 0) {
      masked = batch_ids;
      if (erasures->Mask(&masked) == 0) masked.clear();
    }
    const std::vector<absl::string_view>& ids = masked.empty() ? batch_ids : masked;
    const std::shared_ptr<const ServingBundle> main = bundles->Current();
    answer->bundle_version = main->version;
    // The canary's customers (by the id sent: an erased customer stays in
    // their arm, as an unknown one; a SimilarArticles request without a
    // customer is the main arm's).
    std::vector<bool> in_canary(ids.size(), false);
    size_t canaries = 0;
    if (canary != nullptr && canary_percent > 0) {
      for (size_t i = 0; i < ids.size(); ++i) {
        in_canary[i] = InCanaryArm(batch_ids[i], canary_percent);
        canaries += in_canary[i];
      }
    }
    if (canaries == 0) {
      RETURN_IF_ERROR(ruled(w, main, ids, options, answer->deadline, &answer->results));
      for (Recommendation& r : answer->results) r.bundle_version = main->version;
      return absl::OkStatus();
    }
    const std::shared_ptr<const ServingBundle> second = canary->Current();
    answer->results.assign(ids.size(), Recommendation());
    for (const bool arm : {false, true}) {
      std::vector<absl::string_view> arm_ids;
      std::vector<const RequestOptions*> arm_options;
      std::vector<size_t> at;
      for (size_t i = 0; i < ids.size(); ++i) {
        if (in_canary[i] != arm) continue;
        arm_ids.push_back(ids[i]);
        arm_options.push_back(options[i]);
        at.push_back(i);
      }
      if (at.empty()) continue;
      const std::shared_ptr<const ServingBundle>& bundle = arm ? second : main;
      std::vector<Recommendation> part;
      RETURN_IF_ERROR(ruled(w, bundle, arm_ids, arm_options, answer->deadline, &part));
      for (size_t j = 0; j < at.size(); ++j) {
        part[j].bundle_version = bundle->version;
        part[j].canary = arm;
        answer->results[at[j]] = std::move(part[j]);
      }
    }
    return absl::OkStatus();
  };
}

BatchQueue::Hooks MakeQueueHooks(ServerMetrics* metrics, int compute_threads) {
  BatchQueue::Hooks hooks;
  hooks.worker_start = [compute_threads](int) { ConfigureWorkerThreads(compute_threads); };
  if (metrics != nullptr) {
    hooks.batch = [metrics](size_t ids, std::chrono::microseconds oldest_wait) {
      metrics->ObserveBatch(static_cast<double>(ids));
      metrics->ObserveStage("queue_wait", static_cast<double>(oldest_wait.count()) / 1e6);
    };
    hooks.queued_ids = [metrics](int64_t ids) { metrics->SetQueuedIds(static_cast<double>(ids)); };
  }
  return hooks;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

RecommenderService::RecommenderService(BatchQueue* queue, const Authenticator* auth, RequestLimits limits,
                                       ServerMetrics* metrics, FilterCheck check_filters)
    : queue_(queue), auth_(auth), limits_(limits), metrics_(metrics), check_filters_(std::move(check_filters)) {}

Credentials RecommenderService::CredentialsOf(const grpc::CallbackServerContext* context) {
  Credentials c;
  const auto& metadata = context->client_metadata();
  for (auto [it, end] = metadata.equal_range("authorization"); it != end; ++it) {
    c.authorization.emplace_back(it->second.data(), it->second.size());
  }
  // Present only when the TLS handshake verified a client certificate
  // against tls.client_ca_file (require_client_cert).
  const std::shared_ptr<const grpc::AuthContext> auth = context->auth_context();
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    const std::vector<grpc::string_ref> cn = auth->FindPropertyValues("x509_common_name");
    if (cn.size() == 1) c.peer_cn.assign(cn[0].data(), cn[0].size());
  }
  return c;
}

absl::StatusOr<Caller> RecommenderService::Authenticate(const Credentials& credentials, Scope scope,
                                                        const std::string& method, Refusal* why) const {
  Refusal refusal = Refusal::kNone;
  std::string known;  // a caller without the scope is still named in the metrics
  absl::StatusOr<Caller> caller = auth_->Check(credentials, scope, &refusal, &known);
  if (why != nullptr) *why = refusal;
  if (!caller.ok() && metrics_ != nullptr) {
    metrics_->CountAuthRefusal(method, RefusalName(refusal));
    metrics_->ObserveRequest(method, known, caller.status().code(), 0);
  }
  return caller;
}

grpc::ServerUnaryReactor* RecommenderService::Recommend(grpc::CallbackServerContext* context,
                                                        const v1::RecommendRequest* request,
                                                        v1::RecommendResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<Caller> caller = Authenticate(CredentialsOf(context), kScopeRecommend, "Recommend");
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  Handle(request, response, context->deadline(), "Recommend", *caller,
         [reactor](const absl::Status& s) { reactor->Finish(ToGrpcStatus(s)); });
  return reactor;
}

void RecommenderService::Handle(const v1::RecommendRequest* request, v1::RecommendResponse* response,
                                std::chrono::system_clock::time_point call_deadline, const std::string& method,
                                const Caller& caller, Done done) {
  auto arm = std::make_shared<std::string>("none");
  Done finish = Timed(method, caller, std::move(done), arm);
  absl::Status valid = ValidateRequest(*request, limits_);
  if (!valid.ok()) return finish(valid);
  Enqueue(
      std::vector<std::string>(request->customer_ids().begin(), request->customer_ids().end()),
      std::make_shared<const RequestOptions>(OptionsOf(*request, limits_)), call_deadline,
      [this, request, response, arm, method](const BatchAnswer& answer) {
        FillResponse(*request, answer.results, answer.bundle_version, response);
        *arm = ArmOf(answer.results);
        if (impressions_ != nullptr) {
          impressions_->Add(method, {request->customer_ids().begin(), request->customer_ids().end()}, answer.results);
        }
      },
      std::move(finish));
}

RecommenderService::Done RecommenderService::Timed(const std::string& method, const Caller& caller, Done done,
                                                   std::shared_ptr<const std::string> arm) const {
  return [done = std::move(done), start = std::chrono::steady_clock::now(), metrics = metrics_, method,
          name = caller.name, arm = std::move(arm)](const absl::Status& s) {
    if (metrics != nullptr) {
      metrics->ObserveRequest(method, name, s.code(),
                              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                              arm != nullptr ? *arm : "none");
    }
    done(s);
  };
}

std::string ArmOf(const std::vector<Recommendation>& results) {
  size_t canary = 0;
  for (const Recommendation& r : results) canary += r.canary;
  if (results.empty()) return "none";
  return canary == 0 ? "main" : canary == results.size() ? "canary" : "mixed";
}

void RecommenderService::Enqueue(std::vector<std::string> ids, std::shared_ptr<const RequestOptions> options,
                                 std::chrono::system_clock::time_point call_deadline,
                                 std::function<void(const BatchAnswer&)> fill, Done finish) {
  if (check_filters_) {
    absl::Status filters = check_filters_(options->filters);
    if (!filters.ok()) return finish(filters);
  }
  // The call's deadline, on the queue's clock (none: a generous default).
  const auto remaining = call_deadline - std::chrono::system_clock::now();
  const auto deadline = remaining > std::chrono::hours(1) ? BatchQueue::Clock::now() + std::chrono::hours(1)
                                                          : BatchQueue::Clock::now() + remaining;
  // The queue calls back once for an accepted request; a refused one is
  // answered here.
  auto shared_finish = std::make_shared<Done>(std::move(finish));
  absl::Status submitted = queue_->Submit(std::move(ids), std::move(options), deadline,
                                          [shared_finish, fill = std::move(fill)](absl::Status s, BatchAnswer answer) {
                                            if (s.ok()) fill(answer);
                                            (*shared_finish)(s);
                                          });
  if (!submitted.ok()) (*shared_finish)(submitted);
}

grpc::ServerUnaryReactor* RecommenderService::SimilarArticles(grpc::CallbackServerContext* context,
                                                              const v1::SimilarArticlesRequest* request,
                                                              v1::SimilarArticlesResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<Caller> caller = Authenticate(CredentialsOf(context), kScopeRecommend, "SimilarArticles");
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  HandleSimilar(request, response, context->deadline(), "SimilarArticles", *caller,
                [reactor](const absl::Status& s) { reactor->Finish(ToGrpcStatus(s)); });
  return reactor;
}

void RecommenderService::HandleSimilar(const v1::SimilarArticlesRequest* request, v1::SimilarArticlesResponse* response,
                                       std::chrono::system_clock::time_point call_deadline, const std::string& method,
                                       const Caller& caller, Done done) {
  auto arm = std::make_shared<std::string>("none");
  Done finish = Timed(method, caller, std::move(done), arm);
  absl::Status valid = ValidateSimilarRequest(*request, limits_);
  if (!valid.ok()) return finish(valid);
  // One place in the queue under the customer it is for (empty: none); the
  // query is in its options.
  Enqueue(
      std::vector<std::string>{request->customer_id()},
      std::make_shared<const RequestOptions>(SimilarOptionsOf(*request, limits_)), call_deadline,
      [this, request, response, arm, method](const BatchAnswer& answer) {
        FillSimilarResponse(answer.results.at(0), answer.bundle_version, response);
        *arm = ArmOf(answer.results);
        if (impressions_ != nullptr) impressions_->Add(method, {request->customer_id()}, answer.results);
      },
      std::move(finish));
}

void RecommenderService::EnableRecording(EventStore* store, EventWriter* writer, int max_events,
                                         const BundleHolder* bundles, ErasureList* erasures) {
  events_ = store;
  writer_ = writer;
  max_events_ = max_events;
  bundles_ = bundles;
  erasures_ = erasures;
}

grpc::ServerUnaryReactor* RecommenderService::Write(grpc::CallbackServerContext* context, Scope scope,
                                                    const std::string& method, const WriteAudit& audit,
                                                    const std::function<absl::Status()>& validate,
                                                    std::function<absl::Status()> work) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<Caller> caller = Authenticate(CredentialsOf(context), scope, method);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  Done finish = Timed(method, *caller, [reactor, audit, name = caller->name](const absl::Status& s) {
    audit(name, s);
    reactor->Finish(ToGrpcStatus(s));
  });
  if (events_ == nullptr) {
    finish(absl::UnimplementedError(absl::StrCat(method, ": this server has no event store (events.backend: off)")));
    return reactor;
  }
  if (absl::Status valid = validate(); !valid.ok()) {
    finish(valid);
    return reactor;
  }
  // The store's round trip or fsync runs on the writer's thread, never here.
  absl::Status queued = writer_->Submit([work = std::move(work), finish] { finish(work()); });
  if (!queued.ok()) finish(queued);
  return reactor;
}

grpc::ServerUnaryReactor* RecommenderService::EraseCustomer(grpc::CallbackServerContext* context,
                                                            const v1::EraseCustomerRequest* request,
                                                            v1::EraseCustomerResponse* response) {
  return Write(
      context, kScopeErase, "EraseCustomer",
      [request, response](const std::string& caller, const absl::Status& s) {
        AuditEraseCustomer(caller, *request, s, *response);
      },
      [this, request] { return ValidateCustomerIds(request->customer_ids(), limits_); },
      [this, request, response] { return Erase(*request, response); });
}

absl::Status RecommenderService::Erase(const v1::EraseCustomerRequest& request, v1::EraseCustomerResponse* response) {
  std::vector<std::string> ids(request.customer_ids().begin(), request.customer_ids().end());
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  // Durable in the store first (every replica's list comes from it), then
  // this replica's list at once.
  ASSIGN_OR_RETURN(const EraseCounts counts, events_->Erase(ids));
  erasures_->Add(ids);
  response->set_erased(counts.customers);
  response->set_already_erased(static_cast<int32_t>(ids.size()) - counts.customers);
  response->set_events_deleted(counts.events);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* RecommenderService::RecordPurchases(grpc::CallbackServerContext* context,
                                                              const v1::RecordPurchasesRequest* request,
                                                              v1::RecordPurchasesResponse* response) {
  return Write(
      context, kScopeRecord, "RecordPurchases",
      [request, response](const std::string& caller, const absl::Status& s) {
        AuditRecordPurchases(caller, *request, s, *response);
      },
      [] { return absl::OkStatus(); },  // validated with the bundle, on the writer's thread
      [this, request, response] { return Record(*request, response); });
}

absl::Status RecommenderService::Record(const v1::RecordPurchasesRequest& request,
                                        v1::RecordPurchasesResponse* response) {
  std::vector<RecordedPurchase> purchases;
  RETURN_IF_ERROR(ParsePurchases(request, max_events_, &purchases));
  const std::shared_ptr<const ServingBundle> bundle = bundles_->Current();
  const int32_t as_of = bundle->recommender->as_of();
  // No event from the future: a date after tomorrow (by the server's clock,
  // or by the bundle's data when that runs ahead, as when replaying
  // history) is a client's mistake, refused before it reaches the store.
  const int32_t today = TodayUtc();
  const int32_t latest = std::max(today, as_of - 1) + 1;
  for (size_t i = 0; i < purchases.size(); ++i) {
    const config::StoredEvent& e = purchases[i].event;
    if (!bundle->recommender->HasArticle(e.article_id())) {
      return absl::InvalidArgumentError(
          absl::StrCat("events[", i, "].article_id = ", QuoteClientValue(request.events(i).article_id()),
                       " is not an article of bundle ", bundle->version));
    }
    if (e.day() > latest) {
      return absl::InvalidArgumentError(absl::StrCat(
          "events[", i, "].t_dat = ", QuoteClientValue(request.events(i).t_dat()), " is after ", FormatDate(latest),
          " (the day after the later of today and the bundle's last data day): a purchase cannot be in the future"));
    }
  }
  // Durable before the answer: the store returns once the write is synced.
  ASSIGN_OR_RETURN(const RecordCounts counts, events_->Record(purchases, as_of));
  // The events of this call that the bundle's data already covers.
  int already_in_bundle = 0;
  for (const RecordedPurchase& p : purchases) already_in_bundle += p.event.day() < as_of;
  response->set_recorded(counts.recorded);
  response->set_duplicates(counts.duplicates);
  response->set_expired(counts.expired);
  response->set_already_in_bundle(already_in_bundle);
  response->set_erased(counts.erased);
  if (metrics_ != nullptr) {
    metrics_->AddEvents(counts.recorded, counts.duplicates, counts.expired, already_in_bundle, counts.erased);
  }
  return absl::OkStatus();
}

}  // namespace hmrec
