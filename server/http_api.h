#pragma once

// The HTTP/JSON edge of the server (civetweb), beside gRPC, for web back
// ends, notebooks and curl:
//
//   POST /v1/recommend  the JSON form of RecommendRequest (protobuf's JSON
//                       mapping; unknown fields refused) -> RecommendResponse;
//                       the same validation, batching, limits and metrics
//                       (method "http") as gRPC. Errors: 400 (invalid), 413
//                       (body over the limit, refused before it is read),
//                       429 (queue full), 503 (unavailable or draining), 504
//                       (deadline), 500; the body is {"error": {"code",
//                       "message"}}.
//   GET /v1/bundle      the served bundle's manifest, without its file list
//   GET /inspect        the inspector page (server/inspector.h): a customer's
//                       profile and purchases beside their recommendations
//   GET /v1/customers/ID  the page's customer view (CustomerProfile)
//   GET /v1/random_customer  {"customer_id": a known customer}
//   POST /v1/articles   ArticlesRequest -> ArticlesResponse (names, attributes)
//   GET /v1/filters     the values the attribute filters accept (FilterValues)
//   GET /healthz        200 while the process serves
//   GET /readyz         200 while it accepts calls, 503 once draining
//
// Plain HTTP only: with the config's tls { } the server refuses to start
// with an HTTP port (ValidateServerConfig). Debian 12's civetweb (1.15)
// resolves OpenSSL by the 1.1 API's names at run time and OpenSSL 3 does not
// export SSL_get_peer_certificate, so each HTTPS connection would call a null
// pointer (checked: segfault in civetweb-worker). Terminate TLS in front of
// it (ingress or mesh).
//
// Handlers run on civetweb's threads and wait for their batch.

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "proto/config.pb.h"
#include "server/service.h"

struct mg_context;
struct mg_connection;

namespace hmrec {

struct HttpApiOptions {
  std::string address;               // host:port (port 0: any free one)
  int64_t max_body_bytes = 1 << 20;  // larger request bodies get 413
  int threads = 8;                   // civetweb's connection threads
  int deadline_ms = 30000;           // per call (HTTP has no deadline header)
};

class HttpApi {
 public:
  // `service` and `bundles` must outlive the API.
  static absl::StatusOr<std::unique_ptr<HttpApi>> Start(const HttpApiOptions& options, RecommenderService* service,
                                                        const BundleHolder* bundles);
  ~HttpApi();  // stops listening, waits for the handlers

  int port() const { return port_; }
  // /readyz answers 503 from now on.
  void SetDraining() { draining_ = true; }

  // HTTP status of an absl status code.
  static int HttpStatus(absl::StatusCode code);

 private:
  HttpApi(HttpApiOptions options, RecommenderService* service, const BundleHolder* bundles);
  static int HandleRecommend(mg_connection* conn, void* self);
  static int HandleBundle(mg_connection* conn, void* self);
  static int HandleHealth(mg_connection* conn, void* self);
  static int HandleReady(mg_connection* conn, void* self);
  static int HandleInspect(mg_connection* conn, void* self);
  static int HandleCustomer(mg_connection* conn, void* self);
  static int HandleRandomCustomer(mg_connection* conn, void* self);
  static int HandleArticles(mg_connection* conn, void* self);
  static int HandleFilters(mg_connection* conn, void* self);
  // Reads the body as the JSON form of `message` (the body limit, 411, 413,
  // 400 naming `type`); returns 0, or the HTTP status it already answered.
  int ReadJson(mg_connection* conn, const char* type, google::protobuf::Message* message) const;

  const HttpApiOptions options_;
  RecommenderService* service_;
  const BundleHolder* bundles_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
  std::atomic<bool> draining_{false};
  std::atomic<uint64_t> random_calls_{0};
};

}  // namespace hmrec
