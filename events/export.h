#pragma once

// Recorded purchases back into training: every event a store holds, written
// as transactions_train.csv rows (t_dat, customer_id, article_id, price,
// sales_channel_id), so a retrain reads base data + export
// (hmrec_trainer --extra_transactions). Not thread-safe.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "events/event_store.h"

namespace hmrec {

struct ExportReport {
  int64_t customers = 0;   // with at least one exported event
  int64_t events = 0;      // rows written
  int64_t duplicates = 0;  // event ids seen before (written once)
  int64_t before_since = 0;
  int64_t erased = 0;  // customers on the erasure list: never exported
};

// Writes `store`'s events dated `since_day` or later (days since
// 1970-01-01; INT32_MIN: all) to `path` (atomically: a temporary file, then
// a rename), one row per event id, ordered by day, then customer id, then
// recording order. Customers on the store's erasure list are left out.
absl::StatusOr<ExportReport> ExportEvents(EventStore& store, int32_t since_day, const std::string& path);

// Writes the store's erasure list to `path` (atomically), a `customer_id`
// header and one id a line, sorted, once each: what the trainer and the
// index builder take as --erasures. Returns how many ids.
absl::StatusOr<int64_t> ExportErasures(EventStore& store, const std::string& path);

}  // namespace hmrec
