#pragma once

// A real redis-server (Debian's package) for a test: started on 127.0.0.1
// on a free port with its own directory, AOF on with appendfsync always (an
// acknowledged write is on disk), stopped — or killed — by the test.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
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

  // Starts it and waits until it accepts connections (false after 10 s).
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
      const int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<uint16_t>(port_));
      const bool up = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
      close(fd);
      if (up) return true;
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

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

 private:
  std::string dir_;
  std::string password_;
  int port_;
  pid_t pid_ = -1;
};

}  // namespace hmrec::testing
