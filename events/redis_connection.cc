#include "events/redis_connection.h"

#include <hiredis/hiredis.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace hmrec::redis {

void ReplyFree::operator()(redisReply* r) const {
  if (r != nullptr) freeReplyObject(r);
}

timeval Timeval(std::chrono::milliseconds t) {
  const int64_t ms = std::max<int64_t>(1, t.count());
  return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
}

absl::Status ParseAddress(const std::string& address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), port) || *port <= 0 || *port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("redis address '", address, "': expected host:port"));
  }
  *host = address.substr(0, colon);
  return absl::OkStatus();
}

absl::StatusOr<redisContext*> Connect(const std::string& host, int port, std::chrono::milliseconds timeout,
                                      const std::string& password, const std::string& who) {
  const timeval tv = Timeval(timeout);
  redisContext* c = redisConnectWithTimeout(host.c_str(), port, tv);
  if (c == nullptr || c->err != 0) {
    absl::Status e = absl::UnavailableError(
        absl::StrCat(who, ": cannot connect: ", c != nullptr ? c->errstr : "cannot allocate a connection"));
    if (c != nullptr) redisFree(c);
    return e;
  }
  redisSetTimeout(c, tv);
  if (!password.empty()) {
    Reply auth(static_cast<redisReply*>(redisCommand(c, "AUTH %b", password.data(), password.size())));
    if (auth == nullptr || auth->type == REDIS_REPLY_ERROR) {
      absl::Status e = absl::UnavailableError(
          auth == nullptr ? absl::StrCat(who, ": AUTH: ", c->err != 0 ? c->errstr : "error reply")
                          : absl::StrCat(who, ": AUTH refused: ", auth->str));
      redisFree(c);
      return e;
    }
  }
  return c;
}

}  // namespace hmrec::redis
