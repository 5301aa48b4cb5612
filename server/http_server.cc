#include "server/http_server.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/text_proto.h"

namespace hmrec {

// One request: shared by MHD's per-request pointer and the handler's reply,
// so a reply that comes after the server gave up on it is harmless.
struct HttpServer::Request {
  HttpRequest request;
  std::mutex mu;
  bool started = false;    // Serve was called
  bool replied = false;    // a response is set (the handler's, or 503 at shutdown)
  bool suspended = false;  // the connection waits for the reply
  bool discard = false;    // refused at the headers: the body is read and dropped, then `response` sent
  HttpResponse response;
  MHD_Connection* connection = nullptr;
};

// What is learnt once per connection: its client certificate; and where its
// current request stands against the request deadline (those fields under
// HttpServer::connections_mu_).
struct HttpServer::Connection {
  bool peer_checked = false;
  bool verified = false;
  std::string cn;
  MHD_socket fd = MHD_INVALID_SOCKET;
  std::chrono::steady_clock::time_point since;  // opened, or last answered
  bool receiving = true;                        // no handler runs for it now
  bool shut = false;                            // closed by the deadline
};

namespace {

std::mutex log_mu;

void LogMessage(void* self, const char* format, va_list args) {
  char line[512];
  std::vsnprintf(line, sizeof(line), format, args);
  std::string text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  const HttpServerOptions* options = static_cast<const HttpServerOptions*>(self);
  std::lock_guard<std::mutex> lock(log_mu);
  std::fprintf(stderr, "server: %s %s: %s\n", options->name.c_str(), options->address.c_str(), text.c_str());
}

MHD_Result CollectHeader(void* out, MHD_ValueKind, const char* key, const char* value) {
  static_cast<std::vector<std::pair<std::string, std::string>>*>(out)->emplace_back(
      absl::AsciiStrToLower(key != nullptr ? key : ""), value != nullptr ? value : "");
  return MHD_YES;
}

absl::StatusOr<std::string> ReadPem(const char* what, const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFileToString(path);
  if (!pem.ok() || pem->empty()) return absl::NotFoundError(absl::StrCat("tls.", what, ": cannot read ", path));
  return pem;
}

HttpResponse Text(int status, const std::string& text) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain";
  r.body = text + "\n";
  return r;
}

}  // namespace

struct HttpServerCallbacks {
  using Request = HttpServer::Request;
  using Connection = HttpServer::Connection;
  static MHD_Result OnRequest(void* self, MHD_Connection* connection, const char* url, const char* method,
                              const char* version, const char* upload_data, size_t* upload_data_size, void** slot);
  static void OnCompleted(void* self, MHD_Connection* connection, void** slot, MHD_RequestTerminationCode why);
  static void OnConnection(void* self, MHD_Connection* connection, void** socket_context,
                           MHD_ConnectionNotificationCode event);
  // The request deadline: off while a handler runs for `connection`, and
  // restarted when its answer is sent.
  static void Receiving(HttpServer* server, MHD_Connection* connection, bool receiving);
  // Queues `response` on `connection`.
  static MHD_Result Send(MHD_Connection* connection, const HttpResponse& response);
};

HttpResponse HttpHandler::TransportError(int status, const std::string& message) { return Text(status, message); }

std::vector<absl::string_view> HttpRequest::Header(absl::string_view name) const {
  std::vector<absl::string_view> out;
  for (const auto& [key, value] : headers) {
    if (key == name) out.push_back(value);
  }
  return out;
}

HttpServer::HttpServer(HttpServerOptions options, HttpHandler* handler)
    : options_(std::move(options)), handler_(handler) {}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options, HttpHandler* handler) {
  std::unique_ptr<HttpServer> s(new HttpServer(options, handler));
  const config::TlsConfig& tls = options.tls;
  const bool use_tls = !tls.cert_file().empty();
  if (use_tls) {
    auto cert = ReadPem("cert_file", tls.cert_file());
    if (!cert.ok()) return cert.status();
    auto key = ReadPem("key_file", tls.key_file());
    if (!key.ok()) return key.status();
    s->cert_pem_ = *cert;
    s->key_pem_ = *key;
    if (!tls.client_ca_file().empty()) {
      auto trust = ReadPem("client_ca_file", tls.client_ca_file());
      if (!trust.ok()) return trust.status();
      s->trust_pem_ = *trust;
    }
  }

  // host:port, the host possibly [IPv6].
  const size_t colon = options.address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(options.address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.name, " address '", options.address, "': expected host:port"));
  }
  std::string host = options.address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.empty() ? nullptr : host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 ||
      found == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.name, " address '", options.address, "': cannot resolve '", host, "'"));
  }
  sockaddr_storage addr{};
  std::memcpy(&addr, found->ai_addr, found->ai_addrlen);
  const bool ipv6 = found->ai_family == AF_INET6;
  freeaddrinfo(found);

  unsigned int flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  if (use_tls) flags |= MHD_USE_TLS;
  if (ipv6) flags |= MHD_USE_IPv6;
  // The pool holds the request line and headers, the read buffer and the
  // response headers; a request whose headers do not fit gets 431.
  const size_t pool = static_cast<size_t>(std::max(4096, options.max_header_bytes)) + 4096;
  std::vector<MHD_OptionItem> o = {
      // First, so that MHD's messages about the options below come here too.
      {MHD_OPTION_EXTERNAL_LOGGER, reinterpret_cast<intptr_t>(&LogMessage),
       const_cast<HttpServerOptions*>(&s->options_)},
      {MHD_OPTION_SOCK_ADDR, 0, &addr},
      {MHD_OPTION_CONNECTION_LIMIT, std::max(1, options.max_connections), nullptr},
      {MHD_OPTION_CONNECTION_TIMEOUT, std::max(1, options.idle_timeout_seconds), nullptr},
      {MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<intptr_t>(pool), nullptr},
      {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&HttpServerCallbacks::OnCompleted), s.get()},
      {MHD_OPTION_NOTIFY_CONNECTION, reinterpret_cast<intptr_t>(&HttpServerCallbacks::OnConnection), s.get()},
  };
  if (options.threads > 1) o.push_back({MHD_OPTION_THREAD_POOL_SIZE, options.threads, nullptr});
  if (use_tls) {
    o.push_back({MHD_OPTION_HTTPS_MEM_KEY, 0, const_cast<char*>(s->key_pem_.c_str())});
    o.push_back({MHD_OPTION_HTTPS_MEM_CERT, 0, const_cast<char*>(s->cert_pem_.c_str())});
    // TLS 1.2 and 1.3 only.
    o.push_back({MHD_OPTION_HTTPS_PRIORITIES, 0, const_cast<char*>("NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2")});
    if (!s->trust_pem_.empty()) o.push_back({MHD_OPTION_HTTPS_MEM_TRUST, 0, const_cast<char*>(s->trust_pem_.c_str())});
  }
  o.push_back({MHD_OPTION_END, 0, nullptr});
  s->daemon_ = MHD_start_daemon(flags, 0, nullptr, nullptr, &HttpServerCallbacks::OnRequest, s.get(), MHD_OPTION_ARRAY,
                                o.data(), MHD_OPTION_END);
  if (s->daemon_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot serve ", options.name, " on ", options.address,
                                               use_tls ? " (or the TLS certificate and key do not load)" : "",
                                               ": see the lines above"));
  }
  const MHD_DaemonInfo* info = MHD_get_daemon_info(s->daemon_, MHD_DAEMON_INFO_BIND_PORT);
  s->port_ = info != nullptr ? info->port : port;
  s->sweeper_ = std::thread([server = s.get()] { server->Sweep(); });
  return s;
}

void HttpServer::Sweep() {
  // Checks a few times per deadline (at most every 250 ms).
  const auto every = std::clamp<std::chrono::milliseconds>(options_.request_timeout / 4, std::chrono::milliseconds(10),
                                                           std::chrono::milliseconds(250));
  std::unique_lock<std::mutex> lock(connections_mu_);
  while (!sweep_cv_.wait_for(lock, every, [this] { return stopping_; })) {
    const auto now = std::chrono::steady_clock::now();
    for (Connection* c : open_) {
      if (!c->receiving || c->shut || now - c->since < options_.request_timeout) continue;
      // MHD sees the end of the stream and closes the connection itself; the
      // socket stays open until it does (its close notification takes this
      // lock first), so this never touches another connection's socket.
      c->shut = true;
      shutdown(c->fd, SHUT_RDWR);
      ++timed_out_;
    }
  }
}

HttpServer::~HttpServer() {
  if (daemon_ == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(connections_mu_);
    stopping_ = true;
  }
  sweep_cv_.notify_all();
  sweeper_.join();
  // No new connections; the listening socket is ours to close once MHD
  // has stopped.
  const MHD_socket listener = MHD_quiesce_daemon(daemon_);
  std::unique_lock<std::mutex> lock(done_mu_);
  if (!done_cv_.wait_for(lock, options_.grace, [this] { return in_flight_.load() == 0; })) {
    std::fprintf(stderr, "server: %s: %lld calls unanswered after %lld ms; answering them 503\n", options_.name.c_str(),
                 static_cast<long long>(in_flight_.load()), static_cast<long long>(options_.grace.count()));
  }
  lock.unlock();
  // MHD must not be stopped with suspended connections: answer the
  // stragglers here (their handlers' late replies are then ignored).
  std::vector<std::shared_ptr<Request>> waiting;
  {
    std::lock_guard<std::mutex> l(done_mu_);
    waiting.assign(pending_.begin(), pending_.end());
  }
  for (const std::shared_ptr<Request>& r : waiting) Complete(r, Text(503, "the server is shutting down"));
  lock.lock();
  done_cv_.wait_for(lock, std::chrono::seconds(2), [this] { return in_flight_.load() == 0; });
  lock.unlock();
  MHD_stop_daemon(daemon_);
  if (listener != MHD_INVALID_SOCKET) close(listener);
}

int64_t HttpServer::connections() const {
  const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
  return info != nullptr ? static_cast<int64_t>(info->num_connections) : 0;
}

void HttpServer::CheckPeer(MHD_Connection* connection, HttpRequest* request) const {
  const MHD_ConnectionInfo* context = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  Connection* state = context != nullptr ? static_cast<Connection*>(context->socket_context) : nullptr;
  if (state != nullptr && state->peer_checked) {
    request->client_verified = state->verified;
    request->peer_cn = state->cn;
    return;
  }
  bool verified = false;
  std::string cn;
  const MHD_ConnectionInfo* tls = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  gnutls_session_t session = tls != nullptr ? static_cast<gnutls_session_t>(tls->tls_session) : nullptr;
  unsigned int status = 0;
  // Chain to the trusted CA (MHD_OPTION_HTTPS_MEM_TRUST), validity dates.
  if (session != nullptr && gnutls_certificate_verify_peers2(session, &status) == GNUTLS_E_SUCCESS && status == 0) {
    unsigned int count = 0;
    const gnutls_datum_t* chain = gnutls_certificate_get_peers(session, &count);
    gnutls_x509_crt_t cert = nullptr;
    if (chain != nullptr && count > 0 && gnutls_x509_crt_init(&cert) == GNUTLS_E_SUCCESS) {
      if (gnutls_x509_crt_import(cert, &chain[0], GNUTLS_X509_FMT_DER) == GNUTLS_E_SUCCESS) {
        verified = true;
        char buf[257];
        size_t size = sizeof(buf);
        if (gnutls_x509_crt_get_dn_by_oid(cert, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &size) == GNUTLS_E_SUCCESS) {
          cn.assign(buf, size);
        }
      }
      gnutls_x509_crt_deinit(cert);
    }
  }
  request->client_verified = verified;
  request->peer_cn = cn;
  if (state != nullptr) {
    state->peer_checked = true;
    state->verified = verified;
    state->cn = cn;
  }
}

void HttpServerCallbacks::OnConnection(void* self, MHD_Connection* connection, void** socket_context,
                                       MHD_ConnectionNotificationCode event) {
  HttpServer* server = static_cast<HttpServer*>(self);
  if (event == MHD_CONNECTION_NOTIFY_STARTED) {
    auto* c = new Connection();
    const MHD_ConnectionInfo* fd = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    c->fd = fd != nullptr ? fd->connect_fd : MHD_INVALID_SOCKET;
    c->since = std::chrono::steady_clock::now();
    *socket_context = c;
    if (c->fd != MHD_INVALID_SOCKET) {
      std::lock_guard<std::mutex> lock(server->connections_mu_);
      server->open_.insert(c);
    }
  } else if (event == MHD_CONNECTION_NOTIFY_CLOSED) {
    auto* c = static_cast<Connection*>(*socket_context);
    {
      std::lock_guard<std::mutex> lock(server->connections_mu_);
      server->open_.erase(c);
    }
    delete c;
    *socket_context = nullptr;
  }
}

void HttpServerCallbacks::Receiving(HttpServer* server, MHD_Connection* connection, bool receiving) {
  const MHD_ConnectionInfo* context = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  Connection* c = context != nullptr ? static_cast<Connection*>(context->socket_context) : nullptr;
  if (c == nullptr) return;
  std::lock_guard<std::mutex> lock(server->connections_mu_);
  c->receiving = receiving;
  c->since = std::chrono::steady_clock::now();
}

MHD_Result HttpServerCallbacks::Send(MHD_Connection* connection, const HttpResponse& response) {
  MHD_Response* r = MHD_create_response_from_buffer(response.body.size(), const_cast<char*>(response.body.data()),
                                                    MHD_RESPMEM_MUST_COPY);
  if (r == nullptr) return MHD_NO;
  MHD_add_response_header(r, "Content-Type", response.content_type.c_str());
  MHD_add_response_header(r, "Cache-Control", "no-store");
  for (const auto& [key, value] : response.headers) MHD_add_response_header(r, key.c_str(), value.c_str());
  const MHD_Result queued = MHD_queue_response(connection, static_cast<unsigned int>(response.status), r);
  MHD_destroy_response(r);
  return queued;
}

void HttpServer::Complete(const std::shared_ptr<Request>& r, HttpResponse response) {
  MHD_Connection* resume = nullptr;
  {
    std::lock_guard<std::mutex> lock(r->mu);
    if (r->replied) return;
    r->replied = true;
    r->response = std::move(response);
    if (r->suspended) {
      r->suspended = false;
      resume = r->connection;
    }
  }
  // The connection stays suspended (and alive) until this call.
  if (resume != nullptr) MHD_resume_connection(resume);
}

MHD_Result HttpServerCallbacks::OnRequest(void* self, MHD_Connection* connection, const char* url, const char* method,
                                          const char* /*version*/, const char* upload_data, size_t* upload_data_size,
                                          void** slot) {
  HttpServer* server = static_cast<HttpServer*>(self);
  auto* held = static_cast<std::shared_ptr<Request>*>(*slot);
  if (held == nullptr) {
    // The line and headers are in: decide whether to read the body.
    auto r = std::make_shared<Request>();
    r->connection = connection;
    r->request.method = method != nullptr ? method : "";
    r->request.path = url != nullptr ? url : "";
    MHD_get_connection_values(connection, MHD_HEADER_KIND, &CollectHeader, &r->request.headers);
    if (!server->trust_pem_.empty()) server->CheckPeer(connection, &r->request);
    *slot = new std::shared_ptr<Request>(r);
    const std::vector<absl::string_view> length = r->request.Header("content-length");
    const std::vector<absl::string_view> chunked = r->request.Header("transfer-encoding");
    int64_t bytes = 0;
    if (!chunked.empty() || (length.empty() && (r->request.method == "POST" || r->request.method == "PUT"))) {
      return Send(connection, server->handler_->TransportError(411, "a Content-Length header is required"));
    }
    if (length.size() > 1 || (length.size() == 1 && (!absl::SimpleAtoi(length[0], &bytes) || bytes < 0))) {
      return Send(connection, server->handler_->TransportError(400, "a malformed Content-Length header"));
    }
    std::optional<HttpResponse> refusal = server->handler_->Head(r->request);  // auth first
    if (!refusal && bytes > server->options_.max_body_bytes) {
      refusal = server->handler_->TransportError(
          413,
          absl::StrCat("request body of ", bytes, " bytes, more than the limit of ", server->options_.max_body_bytes));
    }
    if (refusal) {
      // Nothing of the body is kept. A client that asked first (Expect:
      // 100-continue) sends none; others are still sending it and would
      // miss the answer if the connection closed under them, so a body of
      // up to 4x the limit is read and dropped first. Beyond that: answer
      // and close.
      const bool asked = !r->request.Header("expect").empty();
      if (bytes == 0 || asked || bytes > 4 * std::max<int64_t>(server->options_.max_body_bytes, 1 << 20)) {
        return Send(connection, *refusal);
      }
      r->discard = true;
      r->response = *std::move(refusal);
      return MHD_YES;
    }
    r->request.body.reserve(static_cast<size_t>(bytes));
    return MHD_YES;
  }
  const std::shared_ptr<Request> r = *held;
  if (r->discard) {
    if (*upload_data_size > 0) {
      *upload_data_size = 0;
      return MHD_YES;
    }
    return Send(connection, r->response);
  }
  if (*upload_data_size > 0) {
    if (r->request.body.size() + *upload_data_size > static_cast<size_t>(server->options_.max_body_bytes)) {
      return MHD_NO;  // more than the Content-Length promised: close
    }
    r->request.body.append(upload_data, *upload_data_size);
    *upload_data_size = 0;
    return MHD_YES;
  }
  std::unique_lock<std::mutex> lock(r->mu);
  if (r->replied) return Send(connection, r->response);
  if (r->started) return MHD_YES;  // resumed without a reply: cannot happen; wait
  r->started = true;
  lock.unlock();
  {
    std::lock_guard<std::mutex> l(server->done_mu_);
    ++server->in_flight_;
    server->pending_.insert(r);
  }
  Receiving(server, connection, false);
  HttpRequest request = std::move(r->request);
  server->handler_->Serve(std::move(request),
                          [r](HttpResponse response) { HttpServer::Complete(r, std::move(response)); });
  lock.lock();
  if (r->replied) return Send(connection, r->response);  // answered at once
  r->suspended = true;
  MHD_suspend_connection(connection);
  return MHD_YES;
}

void HttpServerCallbacks::OnCompleted(void* self, MHD_Connection* connection, void** slot, MHD_RequestTerminationCode) {
  HttpServer* server = static_cast<HttpServer*>(self);
  auto* held = static_cast<std::shared_ptr<Request>*>(*slot);
  if (held != nullptr) {
    {
      std::lock_guard<std::mutex> lock(server->done_mu_);
      if (server->pending_.erase(*held) > 0) --server->in_flight_;
    }
    server->done_cv_.notify_all();
    delete held;
    *slot = nullptr;
  }
  Receiving(server, connection, true);  // the next request's time starts
}

}  // namespace hmrec
