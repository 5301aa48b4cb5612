#pragma once

// The shared event store: Debian's redis-server through hiredis. Keys:
//   hmrec:c:<customer_id>  the customer's StoredEvents in recording order, each
//                          framed by its 4-byte length, appended to (APPEND)
//   hmrec:e:<event_id>     set once (SET NX): what makes Record idempotent
//   hmrec:newest_day       the newest day of any event
// Record is one EVAL of a Lua script (atomic on the server: markers, lists
// and the newest day change together or not at all); Lookup is one MGET of
// the batch's customers. Keys expire after the horizon (in
// seconds, on Redis's clock) and reads drop events older than the horizon
// (in days, against the newest day). Durability is the server's: with
// `appendonly yes` and `appendfsync always` Redis answers only after the
// AOF is fsynced (deploy/k8s/redis.yaml).
//
// With a password (Redis `requirepass`, from events.redis_password_file),
// every new connection sends AUTH first; a refused AUTH is UNAVAILABLE
// naming it (never the password).
//
// Connections come from a small pool (hiredis contexts are not
// thread-safe); a failed one is dropped. A call that fails on a pooled
// connection (Redis restarted since) is tried once more on a new one: both
// calls are safe to repeat (recording is idempotent by event id).

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "events/event_store.h"

struct redisContext;
struct redisReply;

namespace hmrec {

class RedisEventStore final : public EventStore {
 public:
  // INVALID_ARGUMENT for an address that is not host:port. Does not
  // connect: Redis may be down at start (Ping says).
  static absl::StatusOr<std::unique_ptr<RedisEventStore>> Open(const std::string& address, int timeout_ms,
                                                               int horizon_days, std::string password = "");
  ~RedisEventStore() override;

  absl::StatusOr<RecordCounts> Record(const std::vector<RecordedPurchase>& events) override;
  absl::Status Lookup(const std::vector<absl::string_view>& customer_ids,
                      std::vector<std::vector<config::StoredEvent>>* out) override;
  std::string Describe() const override { return "redis " + address_; }
  // Connects (and authenticates) and sends PING.
  absl::Status Ping() override;

 private:
  RedisEventStore(std::string host, int port, int timeout_ms, int horizon_days, std::string password);
  // A pooled connection (`*reused` true) or a new one.
  absl::StatusOr<redisContext*> Acquire(bool* reused);
  void Release(redisContext* c, bool healthy);
  absl::Status Error(const std::string& what, redisContext* c) const;
  absl::Status Corrupt(absl::string_view customer_id) const;
  struct ReplyFree {
    void operator()(redisReply* r) const;
  };
  using Reply = std::unique_ptr<redisReply, ReplyFree>;
  // Sends one command (binary-safe arguments) and returns its reply: errors
  // of the connection are UNAVAILABLE naming `what`; error replies are the
  // caller's to read.
  absl::StatusOr<Reply> Run(const std::vector<std::string>& args, const char* what);

  const std::string host_;
  const int port_;
  const std::string address_;
  const int timeout_ms_;
  const int horizon_days_;
  const std::string password_;  // empty: no AUTH
  std::mutex mu_;
  std::vector<redisContext*> idle_;
};

}  // namespace hmrec
