#include "server/server.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

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

// Sends "GET path" to the HTTP server at `address` (its host; a wildcard
// host is reached on loopback) on `port`, and requires a 200 answer within 5 s.
absl::Status CheckHttpAnswers(const std::string& address, int port, const std::string& path) {
  std::string host = address.substr(0, address.rfind(':'));
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  auto fail = [&](const std::string& why) {
    return absl::UnavailableError(
        absl::StrCat("metrics endpoint ", address, " (port ", port, ") does not serve ", path, ": ", why));
  };
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || found == nullptr) {
    return fail("cannot resolve " + host);
  }
  const int fd = socket(found->ai_family, SOCK_STREAM, 0);
  const timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  const bool connected = fd >= 0 && connect(fd, found->ai_addr, found->ai_addrlen) == 0;
  freeaddrinfo(found);
  std::string answer;
  if (connected) {
    const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", host, "\r\n\r\n");
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
      char buf[64];
      ssize_t got;
      while (answer.size() < 12 && (got = recv(fd, buf, sizeof(buf), 0)) > 0) answer.append(buf, got);
    }
  }
  if (fd >= 0) close(fd);
  if (!connected) return fail("cannot connect");
  if (answer.rfind("HTTP/1.", 0) != 0 || answer.substr(9, 3) != "200") {
    return fail(answer.empty() ? "no answer" : "answered '" + answer.substr(0, 12) + "'");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const config::TlsConfig& tls) {
  if (tls.cert_file().empty()) {
    if (tls.require_client_cert() || !tls.key_file().empty()) {
      return absl::InvalidArgumentError("tls: key_file or require_client_cert set without cert_file");
    }
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions options(tls.require_client_cert()
                                                ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                                : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.cert_chain, ReadPem("cert_file", tls.cert_file()));
  ASSIGN_OR_RETURN(pair.private_key, ReadPem("key_file", tls.key_file()));
  options.pem_key_cert_pairs.push_back(pair);
  if (tls.require_client_cert()) {
    if (tls.client_ca_file().empty()) {
      return absl::InvalidArgumentError("tls.require_client_cert needs tls.client_ca_file");
    }
    ASSIGN_OR_RETURN(options.pem_root_certs, ReadPem("client_ca_file", tls.client_ca_file()));
  }
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const config::ServerConfig& raw_config) {
  const config::ServerConfig config = WithDefaults(raw_config);
  RETURN_IF_ERROR(ValidateServerConfig(config));
  // Bad TLS settings fail before the (slow) bundle load.
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials, MakeServerCredentials(config.tls()));
  std::unique_ptr<Server> s(new Server());
  s->config_ = config;
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
  ro.ranker_threads = std::max(1, config.search_threads() > 0 ? config.search_threads() : config.compute_threads());
  ASSIGN_OR_RETURN(s->bundles_, BundleHolder::Open(config.bundle_path(), ro));

  s->registry_ = std::make_shared<prometheus::Registry>();
  s->metrics_ = std::make_unique<ServerMetrics>(*s->registry_);
  s->metrics_->SetBundle(s->bundles_->Current()->version);
  if (!config.metrics_address().empty()) {
    try {
      s->exposer_ = std::make_unique<prometheus::Exposer>(config.metrics_address());
    } catch (const std::exception& e) {
      return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", config.metrics_address(), ": ", e.what()));
    }
    s->exposer_->RegisterCollectable(s->registry_);
    // Listening is not serving: ask for /metrics once, as Prometheus will.
    RETURN_IF_ERROR(CheckHttpAnswers(config.metrics_address(), s->metrics_port(), "/metrics"));
  }

  if (config.events().backend() != "off") {
    ASSIGN_OR_RETURN(s->events_, OpenEventStore(config.events()));
    std::fprintf(stderr, "server: recording purchases in %s\n", s->events_->Describe().c_str());
  }

  BatchQueueOptions qo;
  qo.max_batch_ids = config.max_batch_ids();
  qo.max_delay = std::chrono::microseconds(config.max_delay_us());
  qo.max_queued_ids = config.max_queued_ids();
  s->queue_ = std::make_unique<BatchQueue>(
      qo,
      MakeProcessor(s->bundles_.get(), s->metrics_.get(), config.workers(), config.search_threads(), s->events_.get()),
      MakeQueueHooks(s->metrics_.get(), config.compute_threads()));
  s->queue_->Start(config.workers());

  RequestLimits limits;
  limits.max_k = config.max_k();
  limits.max_ids = config.max_ids_per_request();
  limits.max_response_bytes = config.max_response_bytes();
  BundleHolder* bundles = s->bundles_.get();
  s->service_ = std::make_unique<RecommenderService>(
      s->queue_.get(), limits, s->metrics_.get(),
      [bundles](const RequestFilters& f) { return bundles->Current()->recommender->CheckFilters(f); });

  if (s->events_ != nullptr) {
    s->service_->EnableRecording(s->events_.get(), config.events().max_events_per_request(), bundles);
  }

  if (!config.http_address().empty()) {
    HttpApiOptions ho;
    ho.address = config.http_address();
    ho.max_body_bytes = config.max_http_body_bytes();
    ASSIGN_OR_RETURN(s->http_, HttpApi::Start(ho, s->service_.get(), bundles));
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen_address(), credentials, &s->port_);
  builder.RegisterService(s->service_.get());
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
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

int Server::metrics_port() const {
  if (!exposer_) return 0;
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports[0];
}

void Server::RequestReload() {
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    reload_requested_ = true;
  }
  watch_cv_.notify_all();
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

    const std::string before = bundles_->Current()->version;
    absl::StatusOr<BundleHolder::Reloaded> r = bundles_->Reload(forced);
    if (!r.ok()) {
      metrics_->ObserveReload(false);
      std::fprintf(stderr, "server: refused the bundle at %s: %s; still serving %s\n", bundles_->path().c_str(),
                   std::string(r.status().message()).c_str(), before.c_str());
    } else if (*r == BundleHolder::Reloaded::kSwapped) {
      const std::string now = bundles_->Current()->version;
      metrics_->ObserveReload(true);
      metrics_->SetBundle(now);
      std::fprintf(stderr, "server: now serving bundle %s (was %s)\n", now.c_str(), before.c_str());
    } else if (forced) {
      std::fprintf(stderr, "server: reload: %s still names bundle %s\n", bundles_->path().c_str(), before.c_str());
    }
    std::fflush(stderr);
    bundles_->ReleaseRetired();
    lock.lock();
  }
}

void Server::Drain() {
  if (!grpc_ || drained_.exchange(true)) return;
  grpc_->GetHealthCheckService()->SetServingStatus(false);
  if (http_) http_->SetDraining();
  const int grace = config_.shutdown_grace_seconds();
  grpc_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(grace));
  http_.reset();  // stops accepting; waits for its calls in flight (the queue still runs)
  queue_->Shutdown();
  grpc_->Wait();
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    stopping_ = true;
  }
  watch_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

}  // namespace hmrec
