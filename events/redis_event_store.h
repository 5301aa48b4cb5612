#pragma once

// The shared event store: Debian's redis-server through hiredis. Keys:
//   hmrec:c:<customer_id>  the customer's StoredEvents in recording order, each
//                          framed by its 4-byte length, appended to (APPEND)
//   hmrec:n:<customer_id>  how many frames that string holds
//   hmrec:e:<event_id>     set once (SET NX): what makes Record idempotent
//   hmrec:erased           the erasure list, a set of customer ids (no TTL)
// Record is one EVAL of a Lua script (atomic on the server: markers, lists
// and counts change together or not at all; a list past twice
// max_events_per_customer is cut to its last max_events_per_customer in the
// same script; an event of a customer on the erasure list is not kept);
// Erase is one EVAL too; Lookup is one MGET of the batch's customers. Keys expire
// after the horizon (in seconds, on Redis's clock) and reads drop events
// older than the horizon (in days, before the bundle's as_of). Durability is
// the server's: with `appendonly yes` and `appendfsync always` Redis answers
// only after the AOF is fsynced (deploy/k8s/redis.yaml); CheckDurability
// reads both settings.
//
// With a password (Redis `requirepass`, from events.redis_password_file),
// every new connection sends AUTH first; a refused AUTH is UNAVAILABLE
// naming it (never the password).
//
// A Redis that does not answer never stalls the server: every round trip
// has a deadline (a lookup's is a few ms, from the batch's deadline; a
// write's redis_timeout_ms), and the first failure opens a circuit breaker:
// until a background probe (every probe_interval_ms) reaches Redis again,
// Lookup and Record fail at once, without touching the network.
//
// Connections come from a small pool (hiredis contexts are not
// thread-safe); a failed one is dropped. A call that fails on a pooled
// connection because Redis closed it (a restart) is tried once more on a new
// one: both calls are safe to repeat (recording is idempotent by event id).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "events/event_store.h"
#include "events/redis_connection.h"

struct redisContext;
struct redisReply;

namespace hmrec {

class RedisEventStore final : public EventStore {
 public:
  struct Options {
    std::string address;                // host:port
    int timeout_ms = 500;               // a write's round trip, a probe's connect + PING
    int horizon_days = 28;              // see EventStore
    int max_events_per_customer = 100;  // see EventStore
    std::string password;               // empty: no AUTH
    int probe_interval_ms = 1000;       // how often an open breaker tries Redis again
  };

  // INVALID_ARGUMENT for an address that is not host:port. Does not
  // connect: Redis may be down at start (Ping says, and opens the breaker).
  static absl::StatusOr<std::unique_ptr<RedisEventStore>> Open(const Options& options);
  ~RedisEventStore() override;

  absl::StatusOr<RecordCounts> Record(const std::vector<RecordedPurchase>& events, int32_t as_of) override;
  absl::Status ForEachCustomer(const CustomerEventsFn& fn) override;
  absl::Status Lookup(const std::vector<absl::string_view>& customer_ids, int32_t as_of,
                      std::vector<std::vector<config::StoredEvent>>* out,
                      std::chrono::milliseconds budget = std::chrono::milliseconds(0)) override;
  absl::StatusOr<EraseCounts> Erase(const std::vector<std::string>& customer_ids) override;
  absl::Status ForEachErased(const std::function<absl::Status(absl::string_view customer_id)>& fn) override;
  absl::StatusOr<int64_t> ErasedCount() override;
  std::string Describe() const override { return "redis " + address_; }
  // Connects (and authenticates) and sends PING; a failure opens the breaker.
  absl::Status Ping() override;
  bool Up() const override { return up_.load(); }
  void OnStateChange(std::function<void(bool up)> listener) override;
  // OK when Redis answers `appendonly yes` and `appendfsync always`;
  // FAILED_PRECONDITION naming the setting that is not, UNAVAILABLE when
  // they cannot be read (down, or CONFIG disabled).
  absl::Status CheckDurability() override;

 private:
  explicit RedisEventStore(Options options, std::string host, int port);
  // A pooled connection (`*reused` true) or a new one, with `timeout` for
  // the connect, AUTH and every read and write.
  absl::StatusOr<redisContext*> Acquire(std::chrono::milliseconds timeout, bool* reused);
  void Release(redisContext* c, bool healthy);
  absl::Status Error(const std::string& what, redisContext* c) const;
  absl::Status Corrupt(absl::string_view customer_id) const;
  absl::Status ParseList(absl::string_view customer_id, absl::string_view frames, config::StoredEvents* list) const;
  using Reply = redis::Reply;
  // Sends one command (binary-safe arguments) within `timeout` and returns
  // its reply: errors of the connection are UNAVAILABLE naming `what` and
  // open the breaker; error replies are the caller's to read. With the
  // breaker open: UNAVAILABLE at once, unless `probe`.
  absl::StatusOr<Reply> Run(const std::vector<std::string>& args, const char* what, std::chrono::milliseconds timeout,
                            bool probe = false);
  // Opens the breaker (logs the first failure once).
  void Trip(const absl::Status& why);
  // The background prober: while the breaker is open, PINGs every
  // probe_interval_ms and closes it when Redis answers.
  void Probe();

  const Options options_;
  const std::string host_;
  const int port_;
  const std::string address_;
  std::mutex mu_;  // guards idle_
  std::vector<redisContext*> idle_;
  std::atomic<bool> up_{true};         // the breaker is closed
  std::atomic<bool> reported_{false};  // the outage was logged
  std::mutex listener_mu_;             // guards listener_ and last_error_
  std::function<void(bool)> listener_;
  std::string last_error_;  // why the breaker opened
  std::mutex probe_mu_;
  std::condition_variable probe_cv_;
  bool stopping_ = false;
  std::thread prober_;
};

}  // namespace hmrec
