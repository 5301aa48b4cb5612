#include "server/server.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/text_proto.h"
#include "model/tower_runner.h"
#include "server/server_config.h"

namespace hmrec {
namespace {

constexpr int kMaxMessageBytes = 16 << 20;

absl::StatusOr<std::string> ReadPem(const std::string& what, const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFileToString(path);
  if (!pem.ok() || pem->empty()) return absl::NotFoundError(absl::StrCat("tls.", what, ": cannot read ", path));
  return pem;
}

// The HTTP transport's options for `address` from the config.
HttpServerOptions HttpOptions(const config::ServerConfig& c, const std::string& address, const char* name) {
  HttpServerOptions o;
  o.address = address;
  o.tls = c.tls();
  o.max_connections = c.max_http_connections();
  o.idle_timeout_seconds = c.http_idle_timeout_seconds();
  o.request_timeout = std::chrono::seconds(c.http_request_timeout_seconds());
  o.max_header_bytes = c.max_http_header_bytes();
  o.max_body_bytes = c.max_http_body_bytes();
  o.threads = c.http_threads();
  o.grace = std::chrono::seconds(c.shutdown_grace_seconds());
  o.name = name;
  return o;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const config::TlsConfig& tls) {
  if (tls.cert_file().empty()) {
    if (tls.require_client_cert() || !tls.key_file().empty()) {
      return absl::InvalidArgumentError("tls: key_file or require_client_cert set without cert_file");
    }
    return grpc::InsecureServerCredentials();
  }
  // With a client CA, client certificates are asked for and verified
  // (a verified one's CN may stand for an API key); required when
  // require_client_cert. Without one, none are asked for.
  grpc::SslServerCredentialsOptions options(
      tls.require_client_cert()       ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
      : !tls.client_ca_file().empty() ? GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY
                                      : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.cert_chain, ReadPem("cert_file", tls.cert_file()));
  ASSIGN_OR_RETURN(pair.private_key, ReadPem("key_file", tls.key_file()));
  options.pem_key_cert_pairs.push_back(pair);
  if (tls.require_client_cert() && tls.client_ca_file().empty()) {
    return absl::InvalidArgumentError("tls.require_client_cert needs tls.client_ca_file");
  }
  if (!tls.client_ca_file().empty()) {
    ASSIGN_OR_RETURN(options.pem_root_certs, ReadPem("client_ca_file", tls.client_ca_file()));
  }
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const config::ServerConfig& raw_config) {
  const config::ServerConfig config = WithDefaults(raw_config);
  RETURN_IF_ERROR(ValidateServerConfig(config));
  // Bad TLS settings and keys files fail before the (slow) bundle load.
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials, MakeServerCredentials(config.tls()));
  std::unique_ptr<Server> s(new Server());
  s->config_ = config;
  s->registry_ = std::make_shared<prometheus::Registry>();
  s->metrics_ = std::make_unique<ServerMetrics>(*s->registry_);
  ServerMetrics* metrics = s->metrics_.get();
  const std::string keys_file = config.auth().keys_file();
  ASSIGN_OR_RETURN(s->auth_,
                   Authenticator::Open(config.auth(), [metrics, keys_file](const absl::Status& status, size_t entries) {
                     metrics->ObserveKeysReload(status.ok(), static_cast<double>(entries));
                     if (status.ok()) {
                       std::fprintf(stderr, "server: auth: %zu clients in force from %s\n", entries, keys_file.c_str());
                     } else {
                       std::fprintf(stderr,
                                    "server: auth: refused the keys file: %s; the %zu clients in "
                                    "force stay\n",
                                    std::string(status.message()).c_str(), entries);
                     }
                     std::fflush(stderr);
                   }));
  if (s->auth_->enabled()) {
    metrics->SetAuthKeys(static_cast<double>(s->auth_->entries()));
    std::fprintf(stderr, "server: auth: %zu clients from %s\n", s->auth_->entries(), keys_file.c_str());
  } else if (config.allow_unauthenticated()) {
    std::fprintf(stderr,
                 "server: WARNING: allow_unauthenticated: no auth { keys_file }, so anyone who reaches %s%s%s may "
                 "call every API, record purchases and read customers' data\n",
                 config.listen_address().c_str(), config.http_address().empty() ? "" : " or ",
                 config.http_address().c_str());
  }
  ConfigureThreads(config.compute_threads());

  RecommenderOptions ro;
  ro.device = config.device();
  ro.ivf_nprobe = config.ivf_nprobe();
  ro.hnsw_ef_search = config.hnsw_ef_search();
  ro.flat_search = config.flat_search();
  ro.max_k = config.max_k();
  ro.ranking = config.ranking() != "off";
  // XGBoost's thread count is the booster's, not the call's: a lone batch
  // predicts on the search's share of the cores; concurrent batches then
  // share them (measured in docs/PERFORMANCE.md).
  ro.ranker_evaluator = config.ranker_evaluator();
  ro.new_article_position = config.new_article_position();
  ro.ranker_threads = std::max(1, config.search_threads() > 0 ? config.search_threads() : config.compute_threads());
  ASSIGN_OR_RETURN(s->bundles_, BundleHolder::Open(config.bundle_path(), ro));
  s->metrics_->SetBundle("main", s->bundles_->Current()->version);
  if (config.has_canary()) {
    // A canary that does not load stops the start, as the main bundle does:
    // a configured experiment that silently serves no one would mislead.
    absl::StatusOr<std::unique_ptr<BundleHolder>> canary = BundleHolder::Open(config.canary().bundle_path(), ro);
    if (!canary.ok()) return absl::Status(canary.status().code(), absl::StrCat("canary: ", canary.status().message()));
    s->canary_ = std::move(*canary);
    s->metrics_->SetBundle("canary", s->canary_->Current()->version);
    std::fprintf(stderr, "server: canary bundle %s serves %.2f%% of the customers (main: %s)\n",
                 s->canary_->Current()->version.c_str(), config.canary().percent(),
                 s->bundles_->Current()->version.c_str());
  }
  if (!config.metrics_address().empty()) {
    // TLS like the other ports, without asking for client certificates
    // (Prometheus scrapes it; it needs no key).
    HttpServerOptions mo = HttpOptions(config, config.metrics_address(), "metrics");
    mo.tls.clear_client_ca_file();
    mo.tls.clear_require_client_cert();
    s->metrics_route_ = std::make_unique<MetricsRoute>(s->registry_);
    ASSIGN_OR_RETURN(s->metrics_http_, HttpServer::Start(mo, s->metrics_route_.get()));
  }

  if (config.events().backend() != "off") {
    ASSIGN_OR_RETURN(s->events_, OpenEventStore(config.events()));
    std::fprintf(stderr, "server: recording purchases in %s\n", s->events_->Describe().c_str());
    // A store that does not answer degrades the server, never stops it:
    // Recommend answers from the bundle alone and RecordPurchases is
    // UNAVAILABLE until a background probe reaches it.
    if (const absl::Status ping = s->events_->Ping(); !ping.ok()) {
      std::fprintf(stderr,
                   "server: WARNING: %s; until it answers, Recommend serves from the bundle alone and "
                   "RecordPurchases is UNAVAILABLE\n",
                   std::string(ping.message()).c_str());
    } else if (const absl::Status durable = s->events_->CheckDurability(); !durable.ok()) {
      if (config.events().require_durable() && absl::IsFailedPrecondition(durable)) {
        return absl::FailedPreconditionError(absl::StrCat(durable.message(), " (events.require_durable)"));
      }
      std::fprintf(stderr, "server: WARNING: %s\n", std::string(durable.message()).c_str());
    }
    s->metrics_->SetEventStoreUp(s->events_->Up());
    s->events_->OnStateChange([metrics](bool up) { metrics->SetEventStoreUp(up); });
    s->writer_ = std::make_unique<EventWriter>(config.events().max_pending_writes());
    s->erasures_ = std::make_unique<ErasureList>(s->events_.get());
    s->RefreshErasures();
  }

  if (!config.rules_file().empty()) {
    absl::StatusOr<std::unique_ptr<RulesHolder>> rules =
        RulesHolder::Open(config.rules_file(), config.max_k(), config.rules_date(), s->metrics_.get());
    if (!rules.ok()) return absl::Status(rules.status().code(), absl::StrCat("rules_file: ", rules.status().message()));
    s->rules_ = std::move(*rules);
    std::fprintf(stderr, "server: merchandising rules from %s: %s\n", config.rules_file().c_str(),
                 s->rules_->rules()->Summary().c_str());
    s->ReloadRules(false);
  }

  BatchQueueOptions qo;
  qo.max_batch_ids = config.max_batch_ids();
  qo.max_delay = std::chrono::microseconds(config.max_delay_us());
  qo.max_queued_ids = config.max_queued_ids();
  s->queue_ = std::make_unique<BatchQueue>(
      qo,
      MakeProcessor(s->bundles_.get(), s->metrics_.get(), config.workers(), config.search_threads(), s->events_.get(),
                    std::chrono::milliseconds(config.events().lookup_budget_ms()), s->erasures_.get(), s->canary_.get(),
                    config.canary().percent(), s->rules_.get()),
      MakeQueueHooks(s->metrics_.get(), config.compute_threads()));
  s->queue_->Start(config.workers());

  RequestLimits limits;
  limits.max_k = config.max_k();
  limits.max_ids = config.max_ids_per_request();
  limits.max_response_bytes = config.max_response_bytes();
  limits.max_excluded_articles = config.max_excluded_articles();
  limits.max_filter_names = config.max_filter_names();
  limits.max_similar_articles = config.max_similar_articles();
  BundleHolder* bundles = s->bundles_.get();
  s->service_ = std::make_unique<RecommenderService>(
      s->queue_.get(), s->auth_.get(), limits, s->metrics_.get(),
      [bundles](const RequestFilters& f) { return bundles->Current()->recommender->CheckFilters(f); });

  if (config.has_impressions()) {
    ASSIGN_OR_RETURN(s->impressions_, ImpressionLog::Open(config.impressions(), s->metrics_.get()));
    s->service_->LogImpressions(s->impressions_.get());
    std::fprintf(stderr, "server: impressions of %.2f%% of the customers to %s\n",
                 config.impressions().sample_percent(), config.impressions().path().c_str());
  }
  if (s->events_ != nullptr) {
    s->service_->EnableRecording(s->events_.get(), s->writer_.get(), config.events().max_events_per_request(), bundles,
                                 s->erasures_.get());
  }

  if (!config.http_address().empty()) {
    HttpApiOptions ho;
    ho.require_client_cert = config.tls().require_client_cert();
    ho.canary = s->canary_.get();
    ho.canary_percent = config.canary().percent();
    ho.rules = s->rules_.get();
    s->http_api_ = std::make_unique<HttpApi>(ho, s->service_.get(), bundles);
    ASSIGN_OR_RETURN(s->http_,
                     HttpServer::Start(HttpOptions(config, config.http_address(), "http"), s->http_api_.get()));
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen_address(), credentials, &s->port_);
  builder.RegisterService(s->service_.get());
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  // Request metadata up to the HTTP port's header bound: a malformed
  // 10 KB authorization value reaches the auth check (UNAUTHENTICATED)
  // instead of gRPC's 8 KiB default (RESOURCE_EXHAUSTED).
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, config.max_http_header_bytes());
  builder.SetMaxSendMessageSize(static_cast<int>(std::min<int64_t>(config.max_response_bytes(), INT32_MAX)));
  s->grpc_ = builder.BuildAndStart();
  if (!s->grpc_ || s->port_ == 0) {
    s->queue_->Shutdown();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", config.listen_address()));
  }
  s->grpc_->GetHealthCheckService()->SetServingStatus(true);
  s->watcher_ = std::thread([p = s.get()] { p->Watch(); });
  return s;
}

Server::~Server() { Drain(); }

void Server::RequestReload() {
  if (auth_ != nullptr) auth_->Reload().IgnoreError();  // the listener logs the outcome
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    reload_requested_ = true;
  }
  watch_cv_.notify_all();
}

void Server::RefreshErasures() {
  if (erasures_ == nullptr) return;
  const bool was_loaded = erasures_->loaded();
  const size_t before = erasures_->size();
  const absl::Status s = erasures_->Refresh();
  if (!s.ok()) {
    // Once per outage at start; a store that stops answering later keeps
    // the list read before (the store's own breaker logs the outage).
    if (!was_loaded && !erasure_warned_.exchange(true)) {
      std::fprintf(stderr,
                   "server: WARNING: cannot read the erasure list (%s): customers erased before this start are "
                   "served from the bundle until it is read (retried every bundle_watch_ms)\n",
                   std::string(s.message()).c_str());
      std::fflush(stderr);
    }
    return;
  }
  if (!was_loaded || erasures_->size() != before) {
    std::fprintf(stderr, "server: erasure list: %zu customers served as unknown\n", erasures_->size());
    std::fflush(stderr);
  }
}

void Server::ReloadArm(const char* arm, BundleHolder* holder, bool forced) {
  const bool main = holder == bundles_.get();
  const std::string what = main ? "" : absl::StrCat(arm, " ");
  const std::string before = holder->Current()->version;
  absl::StatusOr<BundleHolder::Reloaded> r = holder->Reload(forced);
  if (!r.ok()) {
    metrics_->ObserveReload(false);
    std::fprintf(stderr, "server: refused the %sbundle at %s: %s; still serving %s\n", what.c_str(),
                 holder->path().c_str(), std::string(r.status().message()).c_str(), before.c_str());
  } else if (*r == BundleHolder::Reloaded::kSwapped) {
    const std::string now = holder->Current()->version;
    metrics_->ObserveReload(true);
    metrics_->SetBundle(arm, now);
    std::fprintf(stderr, "server: now serving %sbundle %s (was %s)\n", what.c_str(), now.c_str(), before.c_str());
  } else if (forced) {
    std::fprintf(stderr, "server: reload: %s still names %sbundle %s\n", holder->path().c_str(), what.c_str(),
                 before.c_str());
  }
}

void Server::ReloadRules(bool forced) {
  if (rules_ == nullptr) return;
  absl::StatusOr<bool> r = rules_->Reload(forced);
  if (!r.ok()) {
    std::fprintf(stderr, "server: refused the merchandising rules: %s; the rules in force stay\n",
                 std::string(r.status().message()).c_str());
  } else if (*r) {
    std::fprintf(stderr, "server: merchandising rules now in force: %s\n", rules_->rules()->Summary().c_str());
  }
  // Compiled here, off the serving threads, for the main bundle (after a
  // swap too); the gauges say what the bundle makes of them.
  const std::shared_ptr<const CompiledRules> c = rules_->For(bundles_->Current());
  metrics_->SetRules(static_cast<double>(c->unavailable_count()), static_cast<double>(c->unknown_article_ids()));
  if (c != rules_compiled_logged_ && c->unknown_article_ids() > 0) {
    std::fprintf(stderr, "server: WARNING: %lld article ids of the merchandising rules are not in bundle %s\n",
                 static_cast<long long>(c->unknown_article_ids()), bundles_->Current()->version.c_str());
  }
  rules_compiled_logged_ = c;
  if (canary_ != nullptr) rules_->For(canary_->Current());
}

void Server::Watch() {
  const int watch_ms = config_.bundle_watch_ms() > 0 ? config_.bundle_watch_ms() : 1000;
  const bool polling = config_.bundle_watch_ms() >= 0;
  std::unique_lock<std::mutex> lock(watch_mu_);
  while (!stopping_) {
    if (polling) {
      watch_cv_.wait_for(lock, std::chrono::milliseconds(watch_ms), [this] { return stopping_ || reload_requested_; });
    } else {
      watch_cv_.wait(lock, [this] { return stopping_ || reload_requested_; });
    }
    if (stopping_) break;
    const bool forced = reload_requested_;
    reload_requested_ = false;
    lock.unlock();

    RefreshErasures();
    ReloadArm("main", bundles_.get(), forced);
    if (canary_ != nullptr) ReloadArm("canary", canary_.get(), forced);
    ReloadRules(forced);
    std::fflush(stderr);
    bundles_->ReleaseRetired();
    if (canary_ != nullptr) canary_->ReleaseRetired();
    lock.lock();
  }
}

void Server::Drain() {
  if (!grpc_ || drained_.exchange(true)) return;
  grpc_->GetHealthCheckService()->SetServingStatus(false);
  if (http_api_) http_api_->SetDraining();
  const int grace = config_.shutdown_grace_seconds();
  grpc_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(grace));
  http_.reset();  // stops accepting; waits for its calls in flight (the queue still runs)
  queue_->Shutdown();
  grpc_->Wait();
  writer_.reset();  // the writes of calls that were answered are done
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    stopping_ = true;
  }
  watch_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

}  // namespace hmrec
