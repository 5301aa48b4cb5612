#pragma once

// What the Redis clients of events/ share (redis_event_store.h,
// redis_stream.h): the host:port address, hiredis replies owned by a
// unique_ptr, and a connection opened within a timeout and authenticated.

#include <sys/time.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

struct redisContext;
struct redisReply;

namespace hmrec::redis {

struct ReplyFree {
  void operator()(redisReply* r) const;
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

// At least 1 ms.
timeval Timeval(std::chrono::milliseconds t);

// "host:port" into its parts; INVALID_ARGUMENT "redis address '...':
// expected host:port" otherwise.
absl::Status ParseAddress(const std::string& address, std::string* host, int* port);

// A connection to host:port with `timeout` on the connect and every later
// read and write, authenticated with `password` (empty: none). Errors are
// UNAVAILABLE, prefixed with `who`: "WHO: cannot connect: ...", "WHO: AUTH
// refused: WRONGPASS ..." (Redis's reply, never the password).
absl::StatusOr<redisContext*> Connect(const std::string& host, int port, std::chrono::milliseconds timeout,
                                      const std::string& password, const std::string& who);

}  // namespace hmrec::redis
