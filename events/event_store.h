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
// keep a customer's events in recording order, and forget events older than
// the horizon: `horizon_days` before the newest day any event has had.
// Thread-safe.

#include <cstdint>
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
};

class EventStore {
 public:
  virtual ~EventStore() = default;

  // Stores the new events durably, all in one write: when this returns OK
  // every counted event survives a crash of the process (and of the machine
  // when the backend syncs). On an error nothing of the call is recorded.
  virtual absl::StatusOr<RecordCounts> Record(const std::vector<RecordedPurchase>& events) = 0;

  // For each id: its events within the horizon, in recording order (empty
  // when none). One round trip for the whole list.
  virtual absl::Status Lookup(const std::vector<absl::string_view>& customer_ids,
                              std::vector<std::vector<config::StoredEvent>>* out) = 0;

  // "rocksdb /path" or "redis host:port", for logs and errors.
  virtual std::string Describe() const = 0;

  // OK when the store answers now. A store that does not (Redis down or
  // refusing the password) is still usable: calls fail until it answers.
  virtual absl::Status Ping() { return absl::OkStatus(); }
};

// Defaults of ServerConfig.events; `bundle_path` gives the rocksdb default
// directory ("events" beside the bundles' directory).
config::EventStoreConfig WithEventDefaults(config::EventStoreConfig c, const std::string& bundle_path);
absl::Status ValidateEventConfig(const config::EventStoreConfig& c);

// Opens the configured backend (not "off"). For redis, reads
// redis_password_file (an unreadable or empty file is an error naming it)
// and does not connect.
absl::StatusOr<std::unique_ptr<EventStore>> OpenEventStore(const config::EventStoreConfig& c);

// Shared by the backends: the events of `list` a reader applies, given the
// newest day of the store (drops those older than the horizon).
void DropExpired(int32_t newest_day, int horizon_days, config::StoredEvents* list);

}  // namespace hmrec
