#pragma once

// A real redis-server (Debian's package) for a test: started on 127.0.0.1
// on a free port with its own directory, AOF on with appendfsync always (an
// acknowledged write is on disk), stopped — or killed — by the test.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

namespace hmrec::testing {

inline int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

class RedisProcess {
 public:
  // `dir` holds its AOF; the same dir and port restart it with its data.
  // With `password`, clients must AUTH (requirepass).
  RedisProcess(std::string dir, int port, std::string password = "")
      : dir_(std::move(dir)), port_(port), password_(std::move(password)) {}
  ~RedisProcess() { Stop(); }

  static bool Available() { return access("/usr/bin/redis-server", X_OK) == 0; }

  // Starts it and waits until it answers PING with PONG (false after 10 s):
  // a restarted Redis accepts connections while it is still loading its AOF
  // and answers every command with -LOADING until it is done.
  bool Start() {
    pid_ = fork();
    if (pid_ == 0) {
      const std::string port = std::to_string(port_);
      if (password_.empty()) {
        execl("/usr/bin/redis-server", "redis-server", "--bind", "127.0.0.1", "--port", port.c_str(), "--dir",
              dir_.c_str(), "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
              "--logfile", "", "--loglevel", "warning", static_cast<char*>(nullptr));
      } else {
        execl("/usr/bin/redis-server", "redis-server", "--bind", "127.0.0.1", "--port", port.c_str(), "--dir",
              dir_.c_str(), "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
              "--logfile", "", "--loglevel", "warning", "--requirepass", password_.c_str(),
              static_cast<char*>(nullptr));
      }
      _exit(127);
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < until) {
      if (AnswersPing()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // SIGTERM (a clean shutdown) or SIGKILL (a crash), and waits for it.
  void Stop(int signal = SIGTERM) {
    if (pid_ <= 0) return;
    kill(pid_, signal);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  // SIGSTOP / SIGCONT: a hung Redis (connections accepted, never answered).
  void Pause() { kill(pid_, SIGSTOP); }
  void Resume() { kill(pid_, SIGCONT); }

  // The output of `redis-cli -p PORT COMMAND` (whitespace-separated words),
  // last newline dropped.
  std::string Cli(const std::string& command) const {
    const std::string cmd = "redis-cli -p " + std::to_string(port_) + " " + command + " 2>&1";
    std::string out;
    if (FILE* p = popen(cmd.c_str(), "r")) {
      char buf[256];
      while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
      pclose(p);
    }
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }

  // One connection: (AUTH and) PING; true when the last reply is +PONG.
  bool AnswersPing() const {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    timeval tv{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port_));
    std::string reply;
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
      std::string request;
      if (!password_.empty()) request += "AUTH " + password_ + "\r\n";
      request += "PING\r\n";
      const size_t replies = password_.empty() ? 1 : 2;
      if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
        char buf[256];
        size_t lines = 0;
        while (lines < replies) {
          const ssize_t n = recv(fd, buf, sizeof(buf), 0);
          if (n <= 0) break;
          reply.append(buf, static_cast<size_t>(n));
          lines = 0;
          for (char ch : reply) lines += ch == '\n';
        }
      }
    }
    close(fd);
    return reply.size() >= 7 && reply.compare(reply.size() - 7, 7, "+PONG\r\n") == 0;
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

 private:
  std::string dir_;
  std::string password_;
  int port_;
  pid_t pid_ = -1;
};

}  // namespace hmrec::testing
