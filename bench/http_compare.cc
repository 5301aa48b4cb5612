// The HTTP library comparison behind server/http_server.h (docs/PERFORMANCE.md
// "HTTP library"): the real hmrec_server, whose HTTP/JSON API (the same
// HttpApi: routes, auth, JSON, batching) is served at once by three Debian
// HTTP libraries on three ports:
//
//   mhd      GNU libmicrohttpd 0.9.75 (TLS: GnuTLS) — the server's own port
//   beast    Boost.Beast 1.74 on Asio (TLS: OpenSSL 3), async, 2 threads
//   httplib  cpp-httplib 0.11.4 (TLS: OpenSSL 3), a thread per connection
//            from a pool of --httplib_threads
//
// Each is configured at its best for 64 keep-alive clients and bounded the
// same way where it can be (16 KiB of headers, 1 MiB bodies, 30 s idle).
// Prints "LIB PORT" lines on stdout, then serves until SIGTERM/SIGINT.
// bench/http_compare.sh drives wrk and the bounds probes against them.
//
//   hmrec_http_compare --config configs/server.pbtxt --bundle B/current --keys_file KEYS
//       [--tls_cert C.pem --tls_key C.key]

#include <signal.h>

#include <httplib.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/ascii.h"
#include "server/server.h"
#include "server/server_config.h"

ABSL_FLAG(std::string, config, "configs/server.pbtxt", "ServerConfig, text format");
ABSL_FLAG(std::string, bundle, "", "A sealed bundle (overrides the config's bundle_path)");
ABSL_FLAG(std::string, keys_file, "", "auth { keys_file } (every library serves the same auth)");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate: every port speaks TLS");
ABSL_FLAG(std::string, tls_key, "", "PEM key of --tls_cert");
ABSL_FLAG(int, httplib_threads, 64, "cpp-httplib's pool: one thread a keep-alive connection");
ABSL_FLAG(int, beast_threads, 2, "Asio threads of the Beast server");

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

constexpr int kHeaderBytes = 16 << 10;
constexpr int64_t kBodyBytes = 1 << 20;
constexpr auto kIdle = std::chrono::seconds(30);

// One request through the HttpApi, waiting for its answer (the blocking
// libraries' way).
hmrec::HttpResponse Call(hmrec::HttpHandler* api, hmrec::HttpRequest request) {
  if (std::optional<hmrec::HttpResponse> early = api->Head(request)) return *early;
  std::promise<hmrec::HttpResponse> answer;
  std::future<hmrec::HttpResponse> got = answer.get_future();
  api->Serve(std::move(request), [&answer](hmrec::HttpResponse r) { answer.set_value(std::move(r)); });
  return got.get();
}

// Boost.Beast: one session a connection, async reads and writes on a
// strand; the handler's reply is posted back to it.
template <class Stream>
class BeastSession : public std::enable_shared_from_this<BeastSession<Stream>> {
 public:
  BeastSession(Stream stream, hmrec::HttpHandler* api) : stream_(std::move(stream)), api_(api) {}
  void Start() {
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      beast::get_lowest_layer(stream_).expires_after(kIdle);
      stream_.async_handshake(asio::ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (!ec) self->Read();
      });
    } else {
      Read();
    }
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->header_limit(kHeaderBytes);
    parser_->body_limit(kBodyBytes);
    beast::get_lowest_layer(stream_).expires_after(kIdle);  // the whole request, headers and body
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }
  void OnRead(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) return Write(Status(413, "body over the limit"), false);
    if (ec == bhttp::error::header_limit) return Write(Status(431, "headers over the limit"), false);
    if (ec) return;  // closed, timed out or malformed
    const auto& req = parser_->get();
    hmrec::HttpRequest r;
    r.method = std::string(req.method_string());
    const std::string target(req.target());
    r.path = target.substr(0, target.find('?'));
    for (const auto& field : req) {
      r.headers.emplace_back(absl::AsciiStrToLower(std::string(field.name_string())), std::string(field.value()));
    }
    r.body = req.body();
    const bool keep_alive = req.keep_alive();
    if (std::optional<hmrec::HttpResponse> early = api_->Head(r)) return Write(*early, keep_alive);
    api_->Serve(std::move(r), [self = this->shared_from_this(), keep_alive](hmrec::HttpResponse answer) {
      asio::post(self->stream_.get_executor(),
                 [self, keep_alive, answer = std::move(answer)] { self->Write(answer, keep_alive); });
    });
  }
  static hmrec::HttpResponse Status(int status, const char* text) {
    hmrec::HttpResponse r;
    r.status = status;
    r.content_type = "text/plain";
    r.body = text;
    return r;
  }
  void Write(const hmrec::HttpResponse& answer, bool keep_alive) {
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>(static_cast<bhttp::status>(answer.status), 11);
    res->set(bhttp::field::content_type, answer.content_type);
    for (const auto& [k, v] : answer.headers) res->set(k, v);
    res->body() = answer.body;
    res->keep_alive(keep_alive);
    res->prepare_payload();
    bhttp::async_write(stream_, *res, [self = this->shared_from_this(), res, keep_alive](beast::error_code ec, size_t) {
      if (!ec && keep_alive) self->Read();
    });
  }

  Stream stream_;
  hmrec::HttpHandler* api_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
};

class BeastServer {
 public:
  BeastServer(hmrec::HttpHandler* api, asio::ssl::context* tls, int threads)
      : api_(api), tls_(tls), ioc_(threads), acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    Accept();
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  ~BeastServer() {
    ioc_.stop();
    for (std::thread& t : threads_) t.join();
  }
  int port() const { return acceptor_.local_endpoint().port(); }

 private:
  void Accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
      if (!ec) {
        socket.set_option(tcp::no_delay(true));
        if (tls_ != nullptr) {
          std::make_shared<BeastSession<beast::ssl_stream<beast::tcp_stream>>>(
              beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *tls_), api_)
              ->Start();
        } else {
          std::make_shared<BeastSession<beast::tcp_stream>>(beast::tcp_stream(std::move(socket)), api_)->Start();
        }
      }
      Accept();
    });
  }
  hmrec::HttpHandler* api_;
  asio::ssl::context* tls_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
};

// cpp-httplib: a blocking handler on a pool thread.
void Route(httplib::Server* s, hmrec::HttpHandler* api) {
  auto handle = [api](const httplib::Request& req, httplib::Response& res) {
    hmrec::HttpRequest r;
    r.method = req.method;
    r.path = req.path;
    for (const auto& [k, v] : req.headers) r.headers.emplace_back(absl::AsciiStrToLower(k), v);
    r.body = req.body;
    const hmrec::HttpResponse answer = Call(api, std::move(r));
    res.status = answer.status;
    for (const auto& [k, v] : answer.headers) res.set_header(k, v);
    res.set_content(answer.body, answer.content_type.c_str());
  };
  s->Post(".*", handle);
  s->Get(".*", handle);
  s->set_payload_max_length(kBodyBytes);
  s->set_keep_alive_max_count(1000000);
  s->set_read_timeout(kIdle.count(), 0);
  s->set_keep_alive_timeout(kIdle.count());
  const int threads = absl::GetFlag(FLAGS_httplib_threads);
  s->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto read = hmrec::ReadServerConfig(absl::GetFlag(FLAGS_config));
  if (!read.ok()) {
    std::fprintf(stderr, "http_compare: %s\n", std::string(read.status().message()).c_str());
    return 1;
  }
  hmrec::config::ServerConfig cfg = *read;
  cfg.set_listen_address("127.0.0.1:0");
  cfg.set_http_address("127.0.0.1:0");
  cfg.clear_metrics_address();
  cfg.mutable_events()->set_backend("off");
  if (!absl::GetFlag(FLAGS_bundle).empty()) cfg.set_bundle_path(absl::GetFlag(FLAGS_bundle));
  if (!absl::GetFlag(FLAGS_keys_file).empty()) cfg.mutable_auth()->set_keys_file(absl::GetFlag(FLAGS_keys_file));
  const std::string cert = absl::GetFlag(FLAGS_tls_cert), key = absl::GetFlag(FLAGS_tls_key);
  if (!cert.empty()) {
    cfg.mutable_tls()->set_cert_file(cert);
    cfg.mutable_tls()->set_key_file(key);
  }
  auto server = hmrec::Server::Start(cfg);
  if (!server.ok()) {
    std::fprintf(stderr, "http_compare: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  hmrec::HttpHandler* api = (*server)->http_handler();

  std::unique_ptr<asio::ssl::context> tls;
  if (!cert.empty()) {
    tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    tls->set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    tls->use_certificate_chain_file(cert);
    tls->use_private_key_file(key, asio::ssl::context::pem);
  }
  BeastServer beast_server(api, tls.get(), absl::GetFlag(FLAGS_beast_threads));

  std::unique_ptr<httplib::Server> httplib_server;
  if (cert.empty()) {
    httplib_server = std::make_unique<httplib::Server>();
  } else {
    httplib_server = std::make_unique<httplib::SSLServer>(cert.c_str(), key.c_str());
  }
  Route(httplib_server.get(), api);
  const int httplib_port = httplib_server->bind_to_any_port("127.0.0.1");
  std::thread httplib_thread([&] { httplib_server->listen_after_bind(); });

  std::printf("mhd %d\nbeast %d\nhttplib %d\n", (*server)->http_port(), beast_server.port(), httplib_port);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  httplib_server->stop();
  httplib_thread.join();
  return 0;
}
