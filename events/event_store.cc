#include "events/event_store.h"

#include <algorithm>
#include <climits>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/text_proto.h"
#include "events/redis_event_store.h"
#include "events/rocksdb_event_store.h"

namespace hmrec {

config::EventStoreConfig WithEventDefaults(config::EventStoreConfig c, const std::string& bundle_path) {
  if (c.backend().empty()) c.set_backend("rocksdb");
  if (c.path().empty() && !bundle_path.empty()) {
    // bundle_path names a bundle (".../bundles/current"): beside its directory.
    const std::filesystem::path bundles = std::filesystem::path(bundle_path).parent_path();
    c.set_path((bundles.parent_path() / "events").lexically_normal().string());
  }
  if (c.redis_address().empty()) c.set_redis_address("127.0.0.1:6379");
  if (c.redis_timeout_ms() == 0) c.set_redis_timeout_ms(500);
  if (c.horizon_days() == 0) c.set_horizon_days(28);
  if (c.max_events_per_request() == 0) c.set_max_events_per_request(10000);
  if (c.max_events_per_customer() == 0) c.set_max_events_per_customer(100);
  if (c.lookup_budget_ms() == 0) c.set_lookup_budget_ms(5);
  if (c.redis_probe_interval_ms() == 0) c.set_redis_probe_interval_ms(1000);
  if (c.max_pending_writes() == 0) c.set_max_pending_writes(64);
  return c;
}

absl::Status ValidateEventConfig(const config::EventStoreConfig& c) {
  if (c.backend() != "rocksdb" && c.backend() != "redis" && c.backend() != "off") {
    return absl::InvalidArgumentError(
        absl::StrCat("events.backend = '", c.backend(), "': expected 'rocksdb', 'redis' or 'off'"));
  }
  if (c.horizon_days() < 1) {
    return absl::InvalidArgumentError(absl::StrCat("events.horizon_days = ", c.horizon_days(), ": must be at least 1"));
  }
  if (c.max_events_per_request() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("events.max_events_per_request = ", c.max_events_per_request(), ": must be at least 1"));
  }
  if (c.max_events_per_customer() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("events.max_events_per_customer = ", c.max_events_per_customer(), ": must be at least 1"));
  }
  if (c.lookup_budget_ms() < 1 || c.redis_probe_interval_ms() < 1 || c.max_pending_writes() < 1) {
    return absl::InvalidArgumentError(absl::StrCat("events.lookup_budget_ms = ", c.lookup_budget_ms(),
                                                   ", events.redis_probe_interval_ms = ", c.redis_probe_interval_ms(),
                                                   ", events.max_pending_writes = ", c.max_pending_writes(),
                                                   ": each must be at least 1"));
  }
  if (c.redis_timeout_ms() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("events.redis_timeout_ms = ", c.redis_timeout_ms(), ": must be at least 1"));
  }
  if (c.backend() == "rocksdb" && c.path().empty()) return absl::InvalidArgumentError("events.path is empty");
  if (c.backend() == "redis" && c.redis_address().rfind(':') == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("events.redis_address = '", c.redis_address(), "': expected host:port"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<EventStore>> OpenEventStore(const config::EventStoreConfig& c) {
  if (c.backend() == "rocksdb") {
    return RocksEventStore::Open(c.path(), !c.no_sync(), c.horizon_days(), c.max_events_per_customer());
  }
  if (c.backend() == "redis") {
    std::string password;
    if (!c.redis_password_file().empty()) {
      absl::StatusOr<std::string> text = ReadFileToString(c.redis_password_file());
      if (!text.ok()) {
        return absl::NotFoundError(
            absl::StrCat("events.redis_password_file ", c.redis_password_file(), ": cannot read it"));
      }
      password = *std::move(text);
      if (absl::EndsWith(password, "\n")) password.pop_back();
      if (absl::EndsWith(password, "\r")) password.pop_back();
      if (password.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("events.redis_password_file ", c.redis_password_file(), " is empty"));
      }
    }
    RedisEventStore::Options o;
    o.address = c.redis_address();
    o.timeout_ms = c.redis_timeout_ms();
    o.horizon_days = c.horizon_days();
    o.max_events_per_customer = c.max_events_per_customer();
    o.password = std::move(password);
    o.probe_interval_ms = c.redis_probe_interval_ms();
    return RedisEventStore::Open(o);
  }
  return absl::InvalidArgumentError(absl::StrCat("events.backend = '", c.backend(), "': no store to open"));
}

int32_t HorizonStart(int32_t as_of, int horizon_days) {
  return static_cast<int32_t>(std::max<int64_t>(INT32_MIN, static_cast<int64_t>(as_of) - horizon_days));
}

void BoundEvents(int32_t first_day, int max_events, config::StoredEvents* list) {
  auto* events = list->mutable_events();
  events->erase(std::remove_if(events->begin(), events->end(),
                               [first_day](const config::StoredEvent& e) { return e.day() < first_day; }),
                events->end());
  if (events->size() > max_events) events->DeleteSubrange(0, events->size() - max_events);
}

}  // namespace hmrec
