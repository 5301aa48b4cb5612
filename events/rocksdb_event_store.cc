#include "events/rocksdb_event_store.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <filesystem>

#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace hmrec {
namespace {

std::string CustomerKey(absl::string_view id) { return absl::StrCat("c/", id); }
std::string EventKey(absl::string_view id) { return absl::StrCat("e/", id); }
std::string ErasedKey(absl::string_view id) { return absl::StrCat("x/", id); }

std::string EncodeDay(int32_t day) { return std::string(reinterpret_cast<const char*>(&day), sizeof(day)); }
bool DecodeDay(const rocksdb::Slice& s, int32_t* day) {
  if (s.size() != sizeof(*day)) return false;
  std::memcpy(day, s.data(), sizeof(*day));
  return true;
}

absl::Status Failed(const std::string& dir, const char* what, const rocksdb::Status& s) {
  return absl::UnavailableError(absl::StrCat("event store ", dir, ": ", what, ": ", s.ToString()));
}

absl::Status Corrupt(const std::string& dir, absl::string_view customer_id) {
  return absl::DataLossError(
      absl::StrCat("event store ", dir, ": the events of customer ", customer_id, " do not parse"));
}

// Drops event-id markers older than the horizon: a retry that late would
// be expired anyway.
class MarkerExpiry final : public rocksdb::CompactionFilter {
 public:
  explicit MarkerExpiry(const std::atomic<int32_t>* cutoff) : cutoff_(cutoff) {}
  bool Filter(int /*level*/, const rocksdb::Slice& key, const rocksdb::Slice& value, std::string* /*new_value*/,
              bool* /*value_changed*/) const override {
    int32_t day = 0;
    return key.starts_with("e/") && DecodeDay(value, &day) && day < cutoff_->load(std::memory_order_relaxed);
  }
  const char* Name() const override { return "hmrec.MarkerExpiry"; }

 private:
  const std::atomic<int32_t>* cutoff_;
};

}  // namespace

RocksEventStore::RocksEventStore(std::string dir, bool sync, int horizon_days, int max_events_per_customer)
    : dir_(std::move(dir)),
      sync_(sync),
      horizon_days_(horizon_days),
      max_events_per_customer_(max_events_per_customer),
      marker_cutoff_(INT32_MIN) {}

RocksEventStore::~RocksEventStore() {
  if (db_) db_->Close().PermitUncheckedError();
}

absl::StatusOr<std::unique_ptr<RocksEventStore>> RocksEventStore::Open(const std::string& dir, bool sync,
                                                                       int horizon_days, int max_events_per_customer) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("event store ", dir, ": cannot create it: ", ec.message()));
  std::unique_ptr<RocksEventStore> s(new RocksEventStore(dir, sync, horizon_days, max_events_per_customer));
  s->filter_ = std::make_unique<MarkerExpiry>(&s->marker_cutoff_);
  rocksdb::Options options;
  options.create_if_missing = true;
  options.compaction_filter = s->filter_.get();
  options.max_background_jobs = 1;
  rocksdb::BlockBasedTableOptions table;
  // Most customers have no events: a miss should not read a block.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* db = nullptr;
  rocksdb::Status st = rocksdb::DB::Open(options, dir, &db);
  if (!st.ok()) return Failed(dir, "cannot open", st);
  s->db_.reset(db);
  int64_t erased = 0;
  RETURN_IF_ERROR(s->ForEachErased([&erased](absl::string_view) {
    ++erased;
    return absl::OkStatus();
  }));
  s->erased_count_ = erased;
  return s;
}

absl::StatusOr<RecordCounts> RocksEventStore::Record(const std::vector<RecordedPurchase>& events, int32_t as_of) {
  RecordCounts counts;
  if (events.empty()) return counts;
  std::lock_guard<std::mutex> lock(write_mu_);
  const int32_t cutoff = HorizonStart(as_of, horizon_days_);

  // Which ids are new: not stored before, and first in this call.
  std::vector<std::string> event_keys;
  std::vector<rocksdb::Slice> slices;
  event_keys.reserve(events.size());
  for (const RecordedPurchase& p : events) event_keys.push_back(EventKey(p.event.event_id()));
  for (const std::string& k : event_keys) slices.emplace_back(k);
  std::vector<std::string> values;
  std::vector<rocksdb::Status> found = db_->MultiGet(rocksdb::ReadOptions(), slices, &values);
  absl::flat_hash_set<absl::string_view> seen;
  absl::flat_hash_map<std::string, config::StoredEvents> lists;  // customer -> its list, to be written
  std::vector<const RecordedPurchase*> fresh;
  for (size_t i = 0; i < events.size(); ++i) {
    if (!found[i].ok() && !found[i].IsNotFound()) return Failed(dir_, "cannot read", found[i]);
    if (found[i].ok() || !seen.insert(events[i].event.event_id()).second) {
      ++counts.duplicates;
      continue;
    }
    if (events[i].event.day() < cutoff) {
      ++counts.expired;
      continue;
    }
    fresh.push_back(&events[i]);
    lists.try_emplace(events[i].customer_id);
  }

  // The customers' lists as stored, plus the new events; none for a
  // customer on the erasure list.
  std::vector<std::string> customers, customer_keys, erased_keys;
  for (const auto& [c, unused] : lists) {
    customers.push_back(c);
    customer_keys.push_back(CustomerKey(c));
    erased_keys.push_back(ErasedKey(c));
  }
  if (erased_count_.load() > 0) {
    slices.assign(erased_keys.begin(), erased_keys.end());
    found = db_->MultiGet(rocksdb::ReadOptions(), slices, &values);
    absl::flat_hash_set<absl::string_view> erased;
    for (size_t i = 0; i < customers.size(); ++i) {
      if (found[i].ok()) {
        erased.insert(customers[i]);
      } else if (!found[i].IsNotFound()) {
        return Failed(dir_, "cannot read", found[i]);
      }
    }
    if (!erased.empty()) {
      const size_t before = fresh.size();
      fresh.erase(std::remove_if(fresh.begin(), fresh.end(),
                                 [&erased](const RecordedPurchase* p) { return erased.contains(p->customer_id); }),
                  fresh.end());
      counts.erased = static_cast<int>(before - fresh.size());
      std::vector<std::string> kept_customers, kept_keys;
      for (size_t i = 0; i < customers.size(); ++i) {
        if (erased.contains(customers[i])) continue;
        kept_customers.push_back(customers[i]);
        kept_keys.push_back(customer_keys[i]);
      }
      for (absl::string_view c : erased) lists.erase(c);
      customers.swap(kept_customers);
      customer_keys.swap(kept_keys);
    }
  }
  slices.assign(customer_keys.begin(), customer_keys.end());
  values.clear();
  found = db_->MultiGet(rocksdb::ReadOptions(), slices, &values);
  for (size_t i = 0; i < customers.size(); ++i) {
    if (found[i].IsNotFound()) continue;
    if (!found[i].ok()) return Failed(dir_, "cannot read", found[i]);
    if (!lists[customers[i]].ParseFromString(values[i])) return Corrupt(dir_, customers[i]);
  }
  rocksdb::WriteBatch batch;
  for (const RecordedPurchase* p : fresh) {
    *lists[p->customer_id].add_events() = p->event;
    batch.Put(EventKey(p->event.event_id()), EncodeDay(p->event.day()));
  }
  for (size_t i = 0; i < customers.size(); ++i) {
    config::StoredEvents& list = lists[customers[i]];
    BoundEvents(cutoff, max_events_per_customer_, &list);
    batch.Put(customer_keys[i], list.SerializeAsString());
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync_;
  rocksdb::Status st = db_->Write(wo, &batch);
  if (!st.ok()) return Failed(dir_, "cannot write", st);
  counts.recorded = static_cast<int>(fresh.size());
  marker_cutoff_ = cutoff;
  return counts;
}

absl::StatusOr<EraseCounts> RocksEventStore::Erase(const std::vector<std::string>& customer_ids) {
  EraseCounts counts;
  if (customer_ids.empty()) return counts;
  std::lock_guard<std::mutex> lock(write_mu_);
  const absl::flat_hash_set<std::string> ids(customer_ids.begin(), customer_ids.end());
  std::vector<std::string> keys;
  for (const std::string& id : ids) {
    keys.push_back(CustomerKey(id));
    keys.push_back(ErasedKey(id));
  }
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<std::string> values;
  const std::vector<rocksdb::Status> found = db_->MultiGet(rocksdb::ReadOptions(), slices, &values);
  rocksdb::WriteBatch batch;
  config::StoredEvents list;
  size_t i = 0;
  for (const std::string& id : ids) {
    const size_t events = i, listed = i + 1;
    i += 2;
    for (size_t k : {events, listed}) {
      if (!found[k].ok() && !found[k].IsNotFound()) return Failed(dir_, "cannot read", found[k]);
    }
    if (found[events].ok()) {
      if (!list.ParseFromString(values[events])) return Corrupt(dir_, id);
      counts.events += list.events_size();
      batch.Delete(keys[events]);
    }
    if (found[listed].IsNotFound()) {
      batch.Put(keys[listed], "");
      ++counts.customers;
    }
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync_;
  rocksdb::Status st = db_->Write(wo, &batch);
  if (!st.ok()) return Failed(dir_, "cannot write", st);
  erased_count_ += counts.customers;
  return counts;
}

absl::Status RocksEventStore::ForEachErased(const std::function<absl::Status(absl::string_view customer_id)>& fn) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string prefix = ErasedKey("");
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    RETURN_IF_ERROR(fn(absl::string_view(it->key().data() + prefix.size(), it->key().size() - prefix.size())));
  }
  if (!it->status().ok()) return Failed(dir_, "cannot read", it->status());
  return absl::OkStatus();
}

absl::Status RocksEventStore::CheckDurability() {
  if (sync_) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "event store ", dir_, " acknowledges before an fsync (events.no_sync): a power loss could lose a purchase"));
}

absl::Status RocksEventStore::ForEachCustomer(const CustomerEventsFn& fn) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string prefix = CustomerKey("");
  config::StoredEvents list;
  std::vector<config::StoredEvent> events;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    const absl::string_view id(it->key().data() + prefix.size(), it->key().size() - prefix.size());
    if (!list.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) return Corrupt(dir_, id);
    events.assign(list.events().begin(), list.events().end());
    RETURN_IF_ERROR(fn(id, events));
  }
  if (!it->status().ok()) return Failed(dir_, "cannot read", it->status());
  return absl::OkStatus();
}

// A local store: its reads take microseconds, no budget to keep.
absl::Status RocksEventStore::Lookup(const std::vector<absl::string_view>& customer_ids, int32_t as_of,
                                     std::vector<std::vector<config::StoredEvent>>* out,
                                     std::chrono::milliseconds /*budget*/) {
  out->assign(customer_ids.size(), {});
  if (customer_ids.empty()) return absl::OkStatus();
  std::vector<std::string> keys;
  keys.reserve(customer_ids.size());
  for (absl::string_view id : customer_ids) keys.push_back(CustomerKey(id));
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<std::string> values;
  const std::vector<rocksdb::Status> found = db_->MultiGet(rocksdb::ReadOptions(), slices, &values);
  const int32_t cutoff = HorizonStart(as_of, horizon_days_);
  config::StoredEvents list;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (found[i].IsNotFound()) continue;
    if (!found[i].ok()) return Failed(dir_, "cannot read", found[i]);
    if (!list.ParseFromString(values[i])) return Corrupt(dir_, customer_ids[i]);
    BoundEvents(cutoff, max_events_per_customer_, &list);
    (*out)[i].assign(list.events().begin(), list.events().end());
  }
  return absl::OkStatus();
}

}  // namespace hmrec
