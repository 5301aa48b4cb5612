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
//   GET /healthz        200 while the process serves
//   GET /readyz         200 while it accepts calls, 503 once draining
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

  const HttpApiOptions options_;
  RecommenderService* service_;
  const BundleHolder* bundles_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
  std::atomic<bool> draining_{false};
};

}  // namespace hmrec
