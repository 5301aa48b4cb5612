#pragma once

// events: purchases recorded online (RecordPurchases), kept until the next
// bundle holds them. Two backends behind one interface:
//
//   rocksdb  embedded, one replica: a writable RocksDB beside the bundles,
//            WAL on, one synced write per call (events/rocksdb_event_store.h);
//   redis    shared by replicas: Debian's redis-server through hiredis, one
//            round trip per call (events/redis_event_store.h).
//
// Both are idempotent by event id (a retried call records nothing twice),
// keep a customer's events in recording order, at most
// `max_events_per_customer` of them (the most recent), and forget events
// older than the horizon: `horizon_days` before `as_of`, the served bundle's
// features_as_of (the first day its data does not hold). The horizon counts
// back from the bundle, never from dates clients sent. Thread-safe.
//
// Erasure (a customer's request to be forgotten): Erase deletes the
// customer's stored events and puts the id on the store's erasure list,
// kept for good (no horizon) and shared like the events; Record keeps no
// event of a customer on it (counted `erased`, acknowledged). The servers
// serve listed customers as unknown (server/erasure_list.h), the export
// leaves them out, and `hmrec_events erasures` writes the list for the next
// training (--erasures). Event-id markers stay: they hold a day and an id
// the shop chose, and make a late retry of an erased purchase a duplicate.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "events/purchase.h"
#include "proto/config.pb.h"

namespace hmrec {

struct RecordCounts {
  int recorded = 0;    // new, now durable
  int duplicates = 0;  // event ids seen before, or twice in the call
  int expired = 0;     // older than the horizon: not kept
  int erased = 0;      // of customers on the erasure list: not kept
};

struct EraseCounts {
  int customers = 0;  // ids new to the erasure list
  int events = 0;     // stored events deleted
};

class EventStore {
 public:
  virtual ~EventStore() = default;

  // Stores the new events durably, all in one write: when this returns OK
  // every counted event survives a crash of the process (and of the machine
  // when the backend syncs). On an error nothing of the call is recorded.
  virtual absl::StatusOr<RecordCounts> Record(const std::vector<RecordedPurchase>& events, int32_t as_of) = 0;

  // For each id: its events within the horizon of `as_of`, in recording
  // order (empty when none). One round trip for the whole list, within
  // `budget` when given (a Recommend batch cannot wait long) or the store's
  // own timeout.
  virtual absl::Status Lookup(const std::vector<absl::string_view>& customer_ids, int32_t as_of,
                              std::vector<std::vector<config::StoredEvent>>* out,
                              std::chrono::milliseconds budget = std::chrono::milliseconds(0)) = 0;

  // Every customer's stored events, whatever the horizon (still stored: not
  // yet expired by the store), in recording order, customer by customer in
  // the store's key order; an error `fn` returns stops the walk with it.
  // For exports (hmrec_events), not for serving: it reads the whole store.
  using CustomerEventsFn =
      std::function<absl::Status(absl::string_view customer_id, const std::vector<config::StoredEvent>& events)>;
  virtual absl::Status ForEachCustomer(const CustomerEventsFn& fn) = 0;

  // Deletes each customer's events and adds the ids to the erasure list,
  // durably (as Record) and all in one write: on an error nothing changed.
  // Idempotent: an id erased before is counted in neither field.
  virtual absl::StatusOr<EraseCounts> Erase(const std::vector<std::string>& customer_ids) = 0;
  // Every id on the erasure list, in the store's order.
  virtual absl::Status ForEachErased(const std::function<absl::Status(absl::string_view customer_id)>& fn) = 0;
  // How many ids the list holds. It only grows, so an unchanged count means
  // an unchanged list: what a server polls before reading it again.
  virtual absl::StatusOr<int64_t> ErasedCount() = 0;

  // "rocksdb /path" or "redis host:port", for logs and errors.
  virtual std::string Describe() const = 0;

  // OK when the store answers now. A store that does not (Redis down or
  // refusing the password) is still usable: calls fail at once until a
  // background probe reaches it again.
  virtual absl::Status Ping() { return absl::OkStatus(); }
  // False while the store is known not to answer (Redis's breaker open).
  virtual bool Up() const { return true; }
  // `listener` is called (on any thread) whenever Up() changes.
  virtual void OnStateChange(std::function<void(bool up)> listener) {}
  // OK when every acknowledged write survives a crash of the machine
  // (RocksDB: synced writes; Redis: appendonly yes, appendfsync always);
  // FAILED_PRECONDITION naming what is not; UNAVAILABLE when unknown.
  virtual absl::Status CheckDurability() = 0;
};

// Defaults of ServerConfig.events; `bundle_path` gives the rocksdb default
// directory ("events" beside the bundles' directory).
config::EventStoreConfig WithEventDefaults(config::EventStoreConfig c, const std::string& bundle_path);
absl::Status ValidateEventConfig(const config::EventStoreConfig& c);

// Opens the configured backend (not "off"). For redis, reads
// redis_password_file (an unreadable or empty file is an error naming it)
// and does not connect.
absl::StatusOr<std::unique_ptr<EventStore>> OpenEventStore(const config::EventStoreConfig& c);

// Shared by the backends: the first day within the horizon of `as_of`.
int32_t HorizonStart(int32_t as_of, int horizon_days);
// Drops the events of `list` before `first_day`, then all but the last
// `max_events` of the rest.
void BoundEvents(int32_t first_day, int max_events, config::StoredEvents* list);

}  // namespace hmrec
