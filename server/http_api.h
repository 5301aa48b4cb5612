#pragma once

// The HTTP/JSON edge of the server, beside gRPC, for web back ends,
// notebooks, curl and the inspector page. Routes (scope needed):
//
//   POST /v1/recommend       recommend  the JSON form of RecommendRequest
//                                       (protobuf's JSON mapping; unknown fields
//                                       refused) -> RecommendResponse; the same
//                                       validation, batching, limits and metrics
//                                       (method "http") as gRPC
//   POST /v1/similar         recommend  SimilarArticlesRequest -> SimilarArticlesResponse,
//                                       the same path as gRPC SimilarArticles
//                                       (method "http_similar")
//   GET /v1/bundle           any key    the served bundle's manifest, without its file list
//   GET /v1/customers/ID     inspect    the inspector's customer view (CustomerProfile)
//   GET /v1/random_customer  inspect    {"customer_id": a known customer}
//   POST /v1/articles        inspect    ArticlesRequest -> ArticlesResponse
//   GET /v1/filters          inspect    the values the attribute filters accept
//   GET /inspect             none       the inspector page: static HTML holding no
//                                       data; it asks for a key and sends it with
//                                       every call above
//   GET /healthz             none       200 while the process serves
//   GET /readyz              none       200 while it accepts calls, 503 once draining
//
// Who is calling is RecommenderService::Authenticate's decision, the one
// gRPC uses: `authorization: Bearer KEY`, or with client certificates a
// verified CN. No or an unknown key: 401 with `WWW-Authenticate: Bearer`;
// a key without the scope: 403 naming it; both before the body is read.
// With tls.require_client_cert, a client without a verified certificate
// gets 401 on every route (as the gRPC port refuses its handshake).
// Errors: 400 (invalid), 404, 405, 411, 413 (body over the limit), 429
// (queue full), 503 (unavailable or draining), 504 (deadline), 500; the
// body is {"error": {"code", "message"}}.
//
// The transport is server/http_server.h; handlers never block its threads.

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "server/bundle_holder.h"
#include "server/http_server.h"
#include "server/rules_holder.h"
#include "server/service.h"

namespace hmrec {

struct HttpApiOptions {
  int deadline_ms = 30000;           // per call (HTTP has no deadline header)
  bool require_client_cert = false;  // tls.require_client_cert
  // The canary (may be null) and its share: the inspector's customer view
  // is the customer's arm's.
  const BundleHolder* canary = nullptr;
  double canary_percent = 0;
  // The merchandising rules in force (may be null): GET /v1/rules.
  const RulesHolder* rules = nullptr;
};

class HttpApi final : public HttpHandler {
 public:
  // `service` and `bundles` must outlive the API.
  HttpApi(HttpApiOptions options, RecommenderService* service, const BundleHolder* bundles);

  std::optional<HttpResponse> Head(const HttpRequest& request) override;
  void Serve(HttpRequest request, std::function<void(HttpResponse)> reply) override;
  // {"error": {"code": "INVALID_ARGUMENT", "message": ...}}
  HttpResponse TransportError(int status, const std::string& message) override;

  // /readyz answers 503 and the /v1 routes refuse from now on.
  void SetDraining() { draining_ = true; }

  // HTTP status of an absl status code.
  static int HttpStatus(absl::StatusCode code);

 private:
  // GET /v1/rules: the merchandising rules in force, as `bundle` has them.
  HttpResponse RulesView(const std::shared_ptr<const ServingBundle>& bundle) const;
  void Recommend(HttpRequest request, std::function<void(HttpResponse)> reply);
  void Similar(HttpRequest request, std::function<void(HttpResponse)> reply);
  template <typename Request, typename Response, typename Handler>
  void Post(HttpRequest request, const char* type, const char* method, Handler handle,
            std::function<void(HttpResponse)> reply);

  const HttpApiOptions options_;
  RecommenderService* service_;
  const BundleHolder* bundles_;
  std::atomic<bool> draining_{false};
  std::atomic<uint64_t> random_calls_{0};
};

// The metrics port: GET /metrics, Prometheus's text format of `registry`,
// no key (server/http_server.h carries it, with TLS when configured).
class MetricsRoute final : public HttpHandler {
 public:
  explicit MetricsRoute(std::shared_ptr<prometheus::Registry> registry) : registry_(std::move(registry)) {}
  std::optional<HttpResponse> Head(const HttpRequest& request) override;
  void Serve(HttpRequest request, std::function<void(HttpResponse)> reply) override;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
};

}  // namespace hmrec
