#pragma once

// An append-only log in a Redis stream (XADD with an approximate MAXLEN),
// for records many replicas write and one reader collects: the server's
// impression log (ServerConfig.impressions.redis_stream). Each entry holds
// one field, "line". Not thread-safe: one writer thread (or one reader) per
// object.
//
// Every round trip has a timeout; a failure drops the connection, and the
// next call connects again, at most once per `retry_ms` (before that it
// fails at once): a Redis that is down costs the writer nothing but the
// lines, which the caller counts.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct redisContext;

namespace hmrec {

class RedisStream {
 public:
  struct Options {
    std::string address;         // host:port
    std::string key;             // the stream's key
    std::string password;        // empty: no AUTH
    int64_t max_len = 10000000;  // entries kept (approximately: MAXLEN ~)
    int timeout_ms = 1000;
    int retry_ms = 1000;
  };
  // INVALID_ARGUMENT for an address that is not host:port or an empty key.
  // Does not connect.
  static absl::StatusOr<RedisStream> Open(Options options);
  RedisStream(RedisStream&& other) noexcept;
  RedisStream& operator=(RedisStream&&) = delete;
  RedisStream(const RedisStream&) = delete;
  ~RedisStream();

  // Appends the lines, pipelined: one round trip. UNAVAILABLE naming the
  // stream when Redis does not take them (some may have been kept).
  absl::Status Append(const std::vector<std::string>& lines);
  // Every entry's line, oldest first, read in pages of 1,000.
  absl::Status ForEach(const std::function<absl::Status(absl::string_view line)>& fn);
  std::string Describe() const { return "redis stream " + options_.key + " at " + options_.address; }

 private:
  RedisStream(Options options, std::string host, int port);
  absl::Status Connect();
  absl::Status Failed(const std::string& what);

  Options options_;
  std::string host_;
  int port_ = 0;
  redisContext* c_ = nullptr;
  std::chrono::steady_clock::time_point next_try_{};
};

}  // namespace hmrec
