#pragma once

// The server's HTTP/1.1 transport, for the HTTP/JSON API and the metrics
// port: GNU libmicrohttpd (Debian's libmicrohttpd-dev), plain or TLS
// (GnuTLS, with the config's certificate), optionally asking for client
// certificates (mutual TLS). It only moves bytes; what a request means is
// an HttpHandler's business (server/http_api.h, the metrics route).
//
// Bounds (HttpServerOptions): connections open at once (more are refused
// at accept), a connection silent for idle_timeout_seconds is closed
// (mid-request or between keep-alive requests), and so is one whose client
// has not delivered a whole request within request_timeout of the
// connection's opening or its previous answer (bytes trickled to stay under
// the idle timeout do not extend it), a request line + headers
// larger than max_header_bytes gets 431, a body larger than max_body_bytes
// gets 413 before a byte of it is read (Content-Length is required on a
// request with a body: 411 otherwise). The I/O runs on `threads` epoll
// threads; a handler never blocks them: its reply may come later from any
// thread (the connection is suspended until then), so slow calls hold a
// connection, not a thread, and /healthz answers while every batch worker
// is busy.
//
// Thread-safe. The destructor stops accepting, waits up to `grace` for
// handlers that have not replied yet, then closes every connection.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/config.pb.h"

struct MHD_Daemon;
struct MHD_Connection;

namespace hmrec {

struct HttpRequest {
  std::string method;
  std::string path;  // the URL's path, without the query
  // Every header as sent (names lower-cased), in order; repeats kept.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // TLS with client certificates: whether the client sent a certificate
  // that chains to tls.client_ca_file, and its subject CN.
  bool client_verified = false;
  std::string peer_cn;

  // The values of header `name` (lower case).
  std::vector<absl::string_view> Header(absl::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type
};

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // The request's line and headers are in (no body yet): returns the
  // response to send without reading the body (refusals: 401, 403, 404,
  // 405, ...), or nullopt to read it and call Serve.
  virtual std::optional<HttpResponse> Head(const HttpRequest& request) = 0;
  // The whole request: calls `reply` exactly once, on any thread, at any
  // time (synchronously too).
  virtual void Serve(HttpRequest request, std::function<void(HttpResponse)> reply) = 0;
  // The transport's own refusals (400, 411, 413) in the handler's format;
  // plain text by default.
  virtual HttpResponse TransportError(int status, const std::string& message);
};

struct HttpServerOptions {
  std::string address;  // host:port (port 0: any free one); IPv6 as [::1]:port
  // cert_file empty: plain HTTP. With client_ca_file, clients are asked for
  // a certificate and HttpRequest says whether it verified.
  config::TlsConfig tls;
  int max_connections = 256;
  int idle_timeout_seconds = 30;
  // The time a client has to deliver a whole request, from the connection's
  // opening or its previous answer; then the connection is closed (a client
  // trickling bytes under the idle timeout included).
  std::chrono::milliseconds request_timeout{30000};
  int max_header_bytes = 16 << 10;
  int64_t max_body_bytes = 1 << 20;
  int threads = 2;
  std::chrono::milliseconds grace{10000};  // the destructor's wait for handlers
  std::string name = "http";               // in log lines
};

class HttpServer {
 public:
  // Listens on options.address; errors name the address or the TLS file.
  // `handler` must outlive the server.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options, HttpHandler* handler);
  ~HttpServer();

  int port() const { return port_; }
  bool tls() const { return !options_.tls.cert_file().empty(); }
  // Requests whose handler has not replied yet.
  int64_t in_flight() const { return in_flight_.load(); }
  // Connections open now (at most max_connections).
  int64_t connections() const;
  // Connections closed because a request took longer than request_timeout.
  int64_t timed_out() const { return timed_out_.load(); }

 private:
  struct Request;
  struct Connection;
  friend struct HttpServerCallbacks;  // libmicrohttpd's callbacks (http_server.cc)
  HttpServer(HttpServerOptions options, HttpHandler* handler);
  // Sets `r`'s response (the first one set wins) and wakes its connection.
  // Touches only `r`: a handler's reply after the server is gone (it
  // answered 503 already) is a no-op.
  static void Complete(const std::shared_ptr<Request>& r, HttpResponse response);
  // The client certificate of `connection`'s TLS session: verified against
  // the trusted CA, and its subject CN (checked once per connection).
  void CheckPeer(MHD_Connection* connection, HttpRequest* request) const;

  const HttpServerOptions options_;
  HttpHandler* handler_;
  std::string key_pem_, cert_pem_, trust_pem_;  // MHD keeps pointers to these
  MHD_Daemon* daemon_ = nullptr;
  int port_ = 0;
  std::atomic<int64_t> in_flight_{0};
  std::mutex done_mu_;  // guards pending_
  std::condition_variable done_cv_;
  std::set<std::shared_ptr<Request>> pending_;  // served, not completed
  // The request deadline: every open connection, and a thread that closes
  // those whose request is overdue.
  void Sweep();
  std::mutex connections_mu_;  // guards open_ and the Connections' deadline fields
  std::set<Connection*> open_;
  std::condition_variable sweep_cv_;
  bool stopping_ = false;  // guarded by connections_mu_
  std::atomic<int64_t> timed_out_{0};
  std::thread sweeper_;
};

}  // namespace hmrec
