#pragma once

// The embedded event store: a writable RocksDB (WAL on). Keys:
//   c/<customer_id>  StoredEvents, the customer's events in recording order
//                    (at most max_events_per_customer, the most recent)
//   e/<event_id>     the event's day (4 bytes): what makes Record idempotent
//   x/<customer_id>  on the erasure list (empty value), never expires
// Record runs one writer at a time (check, then one WriteBatch, synced when
// asked); Lookup is one MultiGet. Event-id markers older than the horizon
// are dropped by a compaction filter, lists are pruned and capped when
// written. (Stores written before the horizon counted from the bundle also
// hold m/newest_day, which nothing reads any more.)

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "events/event_store.h"

namespace rocksdb {
class DB;
class CompactionFilter;
}  // namespace rocksdb

namespace hmrec {

class RocksEventStore final : public EventStore {
 public:
  // Creates `dir` when missing.
  static absl::StatusOr<std::unique_ptr<RocksEventStore>> Open(const std::string& dir, bool sync, int horizon_days,
                                                               int max_events_per_customer);
  ~RocksEventStore() override;

  absl::StatusOr<RecordCounts> Record(const std::vector<RecordedPurchase>& events, int32_t as_of) override;
  absl::Status ForEachCustomer(const CustomerEventsFn& fn) override;
  absl::Status Lookup(const std::vector<absl::string_view>& customer_ids, int32_t as_of,
                      std::vector<std::vector<config::StoredEvent>>* out,
                      std::chrono::milliseconds budget = std::chrono::milliseconds(0)) override;
  absl::StatusOr<EraseCounts> Erase(const std::vector<std::string>& customer_ids) override;
  absl::Status ForEachErased(const std::function<absl::Status(absl::string_view customer_id)>& fn) override;
  absl::StatusOr<int64_t> ErasedCount() override { return erased_count_.load(); }
  std::string Describe() const override { return "rocksdb " + dir_; }
  absl::Status CheckDurability() override;

 private:
  RocksEventStore(std::string dir, bool sync, int horizon_days, int max_events_per_customer);

  const std::string dir_;
  const bool sync_;
  const int horizon_days_;
  const int max_events_per_customer_;
  std::atomic<int32_t> marker_cutoff_;    // read by the compaction filter
  std::atomic<int64_t> erased_count_{0};  // x/ keys: counted at Open, then kept
  std::unique_ptr<rocksdb::CompactionFilter> filter_;
  std::unique_ptr<rocksdb::DB> db_;
  std::mutex write_mu_;
};

}  // namespace hmrec
