#pragma once

// The server's Prometheus metrics, built once and registered in one
// registry (served over HTTP by prometheus::Exposer in main). Names follow
// Prometheus conventions: base units, _seconds, _total. No customer id is
// ever a label. Thread-safe (prometheus-cpp metrics are).

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/recommendation.h"

namespace hmrec {

class ServerMetrics {
 public:
  explicit ServerMetrics(prometheus::Registry& registry);

  // One finished call: its method, status code and duration.
  void ObserveRequest(const std::string& method, absl::StatusCode code, double seconds);
  // One stage of a batch: "queue_wait", "feature_lookup", "tower", "search".
  void ObserveStage(const std::string& stage, double seconds);
  void ObserveBatch(double ids);
  // One batch's answers: customers served, fallback answers by reason,
  // articles completed from the popular list.
  void AddResults(const std::vector<Recommendation>& results);
  void SetQueuedIds(double ids);
  void SetBundle(const std::string& version);
  // One bundle reload that swapped in a new bundle (ok) or refused one.
  void ObserveReload(bool ok);
  // RecordPurchases: events by result (recorded, duplicate, expired,
  // already_in_bundle).
  void AddEvents(int recorded, int duplicates, int expired, int already_in_bundle);
  // A batch answered without its customers' recorded events because the
  // event store failed (Redis down): served from the bundle alone.
  void CountEventLookupFailure();

 private:
  prometheus::Registry& registry_;
  prometheus::Family<prometheus::Histogram>& requests_;
  prometheus::Family<prometheus::Histogram>& stages_;
  prometheus::Histogram& batch_ids_;
  prometheus::Counter& customers_;
  prometheus::Family<prometheus::Counter>& fallback_;
  prometheus::Counter& fallback_unknown_;
  prometheus::Counter& fallback_embedding_;
  prometheus::Counter& filled_;
  prometheus::Gauge& queued_ids_;
  prometheus::Family<prometheus::Gauge>& bundle_info_;
  prometheus::Gauge* bundle_gauge_ = nullptr;
  prometheus::Family<prometheus::Counter>& reloads_;
  prometheus::Counter& reloads_swapped_;
  prometheus::Counter& reloads_refused_;
  prometheus::Family<prometheus::Counter>& events_;
  prometheus::Counter& events_recorded_;
  prometheus::Counter& events_duplicate_;
  prometheus::Counter& events_expired_;
  prometheus::Counter& events_in_bundle_;
  prometheus::Counter& event_lookup_failures_;
};

}  // namespace hmrec
