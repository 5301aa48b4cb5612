#include "events/export.h"

#include <algorithm>
#include <cstdio>
#include <ostream>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "common/text_proto.h"
#include "data/dates.h"
#include "data/hm_data.h"
#include "data/ids.h"

namespace hmrec {
namespace {

// The store's erasure list as a set (Redis's SSCAN may name an id twice).
absl::StatusOr<absl::flat_hash_set<std::string>> ErasedIds(EventStore& store) {
  absl::flat_hash_set<std::string> erased;
  RETURN_IF_ERROR(store.ForEachErased([&erased](absl::string_view id) {
    erased.emplace(id);
    return absl::OkStatus();
  }));
  return erased;
}

}  // namespace

absl::StatusOr<ExportReport> ExportEvents(EventStore& store, int32_t since_day, const std::string& path) {
  struct Row {
    int32_t day;
    std::string customer;
    int64_t order;  // recording order within the customer
    config::StoredEvent event;
  };
  std::vector<Row> rows;
  absl::flat_hash_set<std::string> seen;
  ExportReport report;
  // A customer erased during the walk: Erase deletes the events in the same
  // write that lists the id, so the walk finds them only where it got there
  // first, as an export taken before the erasure would.
  ASSIGN_OR_RETURN(const absl::flat_hash_set<std::string> erased, ErasedIds(store));
  RETURN_IF_ERROR(store.ForEachCustomer(
      [&](absl::string_view customer, const std::vector<config::StoredEvent>& events) -> absl::Status {
        if (erased.contains(customer)) {
          ++report.erased;
          return absl::OkStatus();
        }
        bool any = false;
        for (size_t i = 0; i < events.size(); ++i) {
          const config::StoredEvent& e = events[i];
          if (e.day() < since_day) {
            ++report.before_since;
            continue;
          }
          if (!seen.insert(e.event_id()).second) {
            ++report.duplicates;
            continue;
          }
          rows.push_back({e.day(), std::string(customer), static_cast<int64_t>(i), e});
          any = true;
        }
        report.customers += any;
        return absl::OkStatus();
      }));
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return std::tie(a.day, a.customer, a.order) < std::tie(b.day, b.customer, b.order);
  });
  RETURN_IF_ERROR(WriteFileAtomically(path, [&rows](std::ostream& out) {
    out << "t_dat,customer_id,article_id,price,sales_channel_id\n";
    for (const Row& r : rows) {
      out << FormatDate(r.day) << ',' << r.customer << ',' << FormatArticleId(r.event.article_id()) << ','
          << absl::StrFormat("%.9g", r.event.price()) << ',' << r.event.channel() << '\n';
    }
    return absl::OkStatus();
  }));
  report.events = static_cast<int64_t>(rows.size());
  return report;
}

absl::StatusOr<int64_t> ExportErasures(EventStore& store, const std::string& path) {
  ASSIGN_OR_RETURN(const absl::flat_hash_set<std::string> unique, ErasedIds(store));
  std::vector<std::string> ids(unique.begin(), unique.end());
  std::sort(ids.begin(), ids.end());
  RETURN_IF_ERROR(WriteFileAtomically(path, [&ids](std::ostream& out) {
    out << "customer_id\n";
    for (const std::string& id : ids) out << id << '\n';
    return absl::OkStatus();
  }));
  return static_cast<int64_t>(ids.size());
}

}  // namespace hmrec
