// The HTTP transport (server/http_server.h) on 127.0.0.1 with a handler that
// answers from other threads, as the batch workers do: keep-alive clients
// in parallel, slow calls that hold connections but no thread, the bounds
// (header size, body size, Content-Length, idle and connection limits) and
// a shutdown that answers what its handlers never did. Run under TSan too.

#include "server/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hmrec {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Answers "/echo" with the body, "/slow" after 1 s, "/never" never (the
// reply is kept), from a worker thread; refuses "/refused" at the headers.
class TestHandler final : public HttpHandler {
 public:
  TestHandler() : worker_([this] { Run(); }) {}
  ~TestHandler() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  std::optional<HttpResponse> Head(const HttpRequest& request) override {
    if (request.path != "/refused") return std::nullopt;
    HttpResponse r;
    r.status = 401;
    r.body = "refused at the headers";
    return r;
  }
  void Serve(HttpRequest request, std::function<void(HttpResponse)> reply) override {
    if (request.path == "/now") {
      HttpResponse r;
      r.body = "now";
      return reply(r);
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (request.path == "/never") {
      never_.push_back(std::move(reply));
      return;
    }
    const auto at = std::chrono::steady_clock::now() + std::chrono::milliseconds(request.path == "/slow" ? 1000 : 0);
    work_.push_back({at, std::move(request), std::move(reply)});
    cv_.notify_all();
  }
  // The replies of "/never" calls, to call after the server is gone.
  std::vector<std::function<void(HttpResponse)>> TakeNever() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(never_);
  }

 private:
  struct Work {
    std::chrono::steady_clock::time_point at;
    HttpRequest request;
    std::function<void(HttpResponse)> reply;
  };
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      if (work_.empty()) {
        cv_.wait(lock);
        continue;
      }
      if (work_.front().at > std::chrono::steady_clock::now()) {
        cv_.wait_until(lock, work_.front().at);
        continue;
      }
      Work w = std::move(work_.front());
      work_.pop_front();
      lock.unlock();
      HttpResponse r;
      r.body = w.request.path + ":" + w.request.body;
      w.reply(r);
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Work> work_;
  std::vector<std::function<void(HttpResponse)>> never_;
  bool stop_ = false;
  std::thread worker_;
};

// A blocking HTTP/1.1 client on one keep-alive connection.
class Client {
 public:
  explicit Client(int port, int timeout_s = 10) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const timeval tv{timeout_s, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  }
  ~Client() { close(fd_); }
  bool Send(const std::string& bytes) {
    return send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // The next response: "STATUS BODY", or "" when the connection ended.
  std::string Read() {
    while (true) {
      const size_t end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t length = 0;
        const size_t at = buf_.find("Content-Length: ");
        if (at != std::string::npos && at < end) {
          absl::SimpleAtoi(buf_.substr(at + 16, buf_.find("\r\n", at) - at - 16), &length);
        }
        if (buf_.size() >= end + 4 + length) {
          std::string out = buf_.substr(9, 3) + " " + buf_.substr(end + 4, length);
          buf_.erase(0, end + 4 + length);
          return out;
        }
      }
      char chunk[65536];
      const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) return "";
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }
  std::string Call(const std::string& method, const std::string& path, const std::string& body = "",
                   const std::string& extra = "") {
    const std::string length = method == "POST" ? absl::StrCat("Content-Length: ", body.size(), "\r\n") : "";
    if (!Send(absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: t\r\n", length, extra, "\r\n", body))) return "";
    return Read();
  }
  bool connected() const { return connected_; }
  // True when the server closed the connection (end of stream or reset),
  // false when it is open and nothing came within the timeout.
  bool Closed() {
    char c;
    const ssize_t n = recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

std::unique_ptr<HttpServer> Serve(TestHandler* handler, HttpServerOptions o = {}) {
  o.address = "127.0.0.1:0";
  auto s = HttpServer::Start(o, handler);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

TEST(HttpServer, KeepAliveClientsInParallelAreAnsweredFromAnotherThread) {
  TestHandler handler;
  auto server = Serve(&handler);
  ASSERT_NE(server, nullptr);
  std::atomic<int> wrong{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 16; ++c) {
    clients.emplace_back([&, c] {
      Client client(server->port());
      for (int i = 0; i < 40; ++i) {
        const std::string body = absl::StrCat("c", c, "-", i);
        if (client.Call("POST", "/echo", body) != "200 /echo:" + body) ++wrong;
        if (client.Call("GET", "/now") != "200 now") ++wrong;
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(wrong.load(), 0);
  // A call leaves in_flight when libmicrohttpd reports its answer sent,
  // which may come just after the client has read it.
  for (int i = 0; i < 100 && server->in_flight() != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(server->in_flight(), 0);
}

// A slow call holds its connection, not an I/O thread: with one thread,
// eight calls waiting and 50 clients stalled mid-request, another
// connection is answered at once.
TEST(HttpServer, SlowCallsDoNotHoldTheThreads) {
  TestHandler handler;
  HttpServerOptions o;
  o.threads = 1;
  auto server = Serve(&handler, o);
  ASSERT_NE(server, nullptr);
  std::vector<std::unique_ptr<Client>> slow;
  for (int i = 0; i < 8; ++i) {
    slow.push_back(std::make_unique<Client>(server->port()));
    ASSERT_TRUE(slow.back()->Send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"));
  }
  // And 50 clients that sent half a request and stalled.
  std::vector<std::unique_ptr<Client>> stalled;
  for (int i = 0; i < 50; ++i) {
    stalled.push_back(std::make_unique<Client>(server->port()));
    ASSERT_TRUE(stalled.back()->Send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-"));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(server->in_flight(), 8);
  const auto start = std::chrono::steady_clock::now();
  Client fast(server->port());
  EXPECT_EQ(fast.Call("GET", "/now"), "200 now");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(800));
  for (auto& c : slow) EXPECT_EQ(c->Read(), "200 /slow:");
}

TEST(HttpServer, BoundsHeadersBodiesAndLengths) {
  TestHandler handler;
  HttpServerOptions o;
  o.max_header_bytes = 8 << 10;
  o.max_body_bytes = 1000;
  auto server = Serve(&handler, o);
  ASSERT_NE(server, nullptr);
  // Headers over the bound: 431.
  EXPECT_THAT(Client(server->port()).Call("GET", "/now", "", "X-Big: " + std::string(20 << 10, 'a') + "\r\n"),
              StartsWith("431"));
  EXPECT_EQ(Client(server->port()).Call("GET", "/now", "", "X-Ok: " + std::string(4 << 10, 'a') + "\r\n"), "200 now");
  // A body over the limit: 413, its bytes read and dropped so the client
  // that sent it all still gets the answer, on a connection that stays usable.
  Client big(server->port());
  EXPECT_THAT(big.Call("POST", "/echo", std::string(5000, 'x')), StartsWith("413 request body of 5000 bytes"));
  EXPECT_EQ(big.Call("POST", "/echo", "after"), "200 /echo:after");
  // Asked first (Expect: 100-continue): 413 at once, nothing sent.
  Client asked(server->port());
  ASSERT_TRUE(asked.Send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n"));
  EXPECT_THAT(asked.Read(), StartsWith("413"));
  // No length, or chunked: 411; a malformed length: 400.
  Client nolength(server->port());
  ASSERT_TRUE(nolength.Send("POST /echo HTTP/1.1\r\nHost: t\r\n\r\n"));
  EXPECT_THAT(nolength.Read(), StartsWith("411"));
  Client chunked(server->port());
  ASSERT_TRUE(
      chunked.Send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"));
  EXPECT_THAT(chunked.Read(), StartsWith("411"));
  EXPECT_THAT(Client(server->port()).Call("GET", "/now", "", "Content-Length: -4\r\n"), StartsWith("400"));
  // The handler's refusal at the headers comes before the body is read.
  EXPECT_EQ(Client(server->port()).Call("POST", "/refused", std::string(5000, 'x')), "401 refused at the headers");
}

TEST(HttpServer, SilentConnectionsAreClosedAndConnectionsAreBounded) {
  TestHandler handler;
  HttpServerOptions o;
  o.idle_timeout_seconds = 1;
  o.max_connections = 4;
  o.threads = 1;
  auto server = Serve(&handler, o);
  ASSERT_NE(server, nullptr);
  // Half a request line, then silence: closed after the idle timeout.
  Client slowloris(server->port());
  ASSERT_TRUE(slowloris.Send("GET /now HT"));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(slowloris.Read(), "");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // Four connections in use, ten more knocking: never more than four open
  // at once; the others wait in the listen backlog (or are closed).
  std::vector<std::unique_ptr<Client>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<Client>(server->port()));
    EXPECT_EQ(held.back()->Call("GET", "/now"), "200 now");
  }
  EXPECT_EQ(server->connections(), 4);
  std::vector<std::unique_ptr<Client>> more;
  for (int i = 0; i < 10; ++i) {
    more.push_back(std::make_unique<Client>(server->port(), /*timeout_s=*/1));
    more.back()->Send("GET /now HTTP/1.1\r\nHost: t\r\n\r\n");
  }
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_LE(server->connections(), 4);
  }
  held.clear();
  more.clear();
  Client after(server->port());
  EXPECT_EQ(after.Call("GET", "/now"), "200 now");
}

// A client that trickles a request a byte at a time (never silent long
// enough for the idle timeout) is closed at the request deadline; 50 of them
// do not keep /healthz-like calls from an answer within 1 s, and a
// keep-alive client that pauses between calls, within the deadline, is
// served.
TEST(HttpServer, ARequestTrickledUnderTheIdleTimeoutIsClosedAtTheDeadline) {
  TestHandler handler;
  HttpServerOptions o;
  o.idle_timeout_seconds = 30;
  o.request_timeout = std::chrono::milliseconds(1500);
  o.threads = 1;
  auto server = Serve(&handler, o);
  ASSERT_NE(server, nullptr);
  std::vector<std::unique_ptr<Client>> trickling;
  for (int i = 0; i < 50; ++i) {
    trickling.push_back(std::make_unique<Client>(server->port(), /*timeout_s=*/1));
    ASSERT_TRUE(trickling.back()->Send("GET /now HTTP/1.1\r\nHost: t\r\nX-Slow: "));
  }
  Client keepalive(server->port());
  EXPECT_EQ(keepalive.Call("GET", "/now"), "200 now");
  const auto start = std::chrono::steady_clock::now();
  for (int step = 0; step < 60 && server->timed_out() < 50; ++step) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (auto& c : trickling) c->Send("a");  // never silent for long
    if (step == 5) {
      const auto asked = std::chrono::steady_clock::now();
      EXPECT_EQ(Client(server->port()).Call("GET", "/now"), "200 now");
      EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds(1));
      EXPECT_EQ(keepalive.Call("GET", "/now"), "200 now") << "a pause within the deadline";
    }
  }
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(server->timed_out(), 50);
  EXPECT_LE(server->timed_out(), 51) << "the keep-alive client may reach its own deadline too";
  EXPECT_GE(took, std::chrono::milliseconds(1000));
  EXPECT_LT(took, std::chrono::seconds(5));
  for (auto& c : trickling) EXPECT_TRUE(c->Closed());
  Client after(server->port());
  EXPECT_EQ(after.Call("GET", "/now"), "200 now");
}

// Shutdown: calls whose handler never answers get 503 after the grace, and
// a handler's reply after the server is gone is harmless.
TEST(HttpServer, ShutdownAnswersWhatTheHandlersDidNot) {
  TestHandler handler;
  HttpServerOptions o;
  o.grace = std::chrono::milliseconds(300);
  auto server = Serve(&handler, o);
  ASSERT_NE(server, nullptr);
  Client stuck(server->port());
  ASSERT_TRUE(stuck.Send("GET /never HTTP/1.1\r\nHost: t\r\n\r\n"));
  Client slow(server->port());
  ASSERT_TRUE(slow.Send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::thread stop([&] { server.reset(); });
  EXPECT_THAT(stuck.Read(), StartsWith("503"));
  stop.join();
  for (auto& reply : handler.TakeNever()) reply(HttpResponse());
  EXPECT_THAT(slow.Read(), StartsWith("503"));
}

TEST(HttpServer, RefusesABadAddressOrCertificateNamingIt) {
  TestHandler handler;
  HttpServerOptions o;
  o.address = "127.0.0.1";
  EXPECT_THAT(std::string(HttpServer::Start(o, &handler).status().message()), HasSubstr("expected host:port"));
  o.address = "127.0.0.1:0";
  o.tls.set_cert_file("/nonexistent/cert.pem");
  o.tls.set_key_file("/nonexistent/key.pem");
  EXPECT_THAT(std::string(HttpServer::Start(o, &handler).status().message()),
              HasSubstr("tls.cert_file: cannot read /nonexistent/cert.pem"));
}

}  // namespace
}  // namespace hmrec
