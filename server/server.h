#pragma once

// The whole server, assembled from its config: who may call what (API keys,
// server/auth.h), the served bundle (with hot swap), the batch queue and its
// workers, the gRPC service with health and reflection, the HTTP/JSON API
// and Prometheus metrics over HTTP(S). hmrec_server's main() adds only flags
// and signals; tests start the same object on 127.0.0.1:0.
//
// Lifecycle: Start() reads the keys file and the TLS files, loads and
// verifies the bundle (a missing or damaged one is an error naming it) and
// listens. A watcher thread re-resolves
// bundle_path every bundle_watch_ms and on RequestReload() (SIGHUP), and swaps
// in a changed bundle once it verified (BundleHolder). Drain() marks health
// NOT_SERVING, refuses new calls, gives in-flight calls the grace period to
// finish, then stops the workers and the watcher.

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "prometheus/registry.h"
#include "proto/config.pb.h"
#include "server/auth.h"
#include "server/batch_queue.h"
#include "server/bundle_holder.h"
#include "server/http_api.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/rules_holder.h"
#include "server/service.h"

namespace hmrec {

// Plaintext, TLS, or mutual TLS credentials for the gRPC port from `tls`;
// errors name the field and file.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const config::TlsConfig& tls);

class Server {
 public:
  // `config` as ReadServerConfig returns it; unset fields take their
  // defaults, and a contradicting config is refused naming its fields.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const config::ServerConfig& config);
  ~Server();  // Drain()s if still serving

  int port() const { return port_; }
  int metrics_port() const { return metrics_http_ ? metrics_http_->port() : 0; }  // 0 when metrics are off
  int http_port() const { return http_ ? http_->port() : 0; }                     // 0 when HTTP is off
  std::string version() const { return bundles_->Current()->version; }
  // How the current bundle's articles are searched (see Recommender).
  std::string search_kernel() const { return bundles_->Current()->recommender->search_kernel(); }
  // True when the current bundle's lists are ranked by its ranker.
  bool ranking() const { return bundles_->Current()->recommender->ranking(); }
  std::string ranker_evaluator() const { return bundles_->Current()->recommender->ranker_evaluator(); }
  int64_t queued_ids() const { return queue_->queued_ids(); }
  // The impression log (null without one).
  ImpressionLog* impressions() { return impressions_.get(); }
  // The HTTP/JSON API's routes (null when HTTP is off): what other
  // transports serve in the HTTP library comparison (bench/http_compare.cc).
  HttpHandler* http_handler() { return http_api_.get(); }

  // Re-resolves bundle_path now, retrying a bundle refused before, and
  // re-reads the keys file (SIGHUP).
  void RequestReload();
  // Stops serving: see the file comment. Idempotent.
  void Drain();

  prometheus::Registry& registry() { return *registry_; }

 private:
  Server() = default;
  void Watch();
  // Reads the event store's erasure list when it changed (at start and on
  // every watch tick); logs a failure once until the list was read.
  void RefreshErasures();
  // Re-resolves one arm's bundle path (`arm`: "main" or "canary"), logging
  // and counting the outcome.
  void ReloadArm(const char* arm, BundleHolder* holder, bool forced);
  // Re-reads the merchandising rules when their files changed (or when
  // forced), and sets their gauges for the main bundle.
  void ReloadRules(bool forced);

  config::ServerConfig config_;
  std::unique_ptr<BundleHolder> bundles_;
  std::unique_ptr<BundleHolder> canary_;  // null without a canary
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<MetricsRoute> metrics_route_;
  std::unique_ptr<HttpServer> metrics_http_;  // null when metrics_address is empty
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<EventStore> events_;                          // null when events.backend is off
  std::unique_ptr<EventWriter> writer_;                         // RecordPurchases' writes, with events_
  std::unique_ptr<ErasureList> erasures_;                       // with events_
  std::unique_ptr<ImpressionLog> impressions_;                  // null without impressions.path
  std::unique_ptr<RulesHolder> rules_;                          // null without rules_file
  std::shared_ptr<const CompiledRules> rules_compiled_logged_;  // watcher only: the last compile warned about
  std::unique_ptr<BatchQueue> queue_;
  std::unique_ptr<RecommenderService> service_;
  std::unique_ptr<HttpApi> http_api_;
  std::unique_ptr<HttpServer> http_;  // null when http_address is empty
  std::unique_ptr<grpc::Server> grpc_;
  int port_ = 0;

  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  bool reload_requested_ = false;
  bool stopping_ = false;
  std::thread watcher_;
  std::atomic<bool> drained_{false};
  std::atomic<bool> erasure_warned_{false};
};

}  // namespace hmrec
