#pragma once

// The server's Prometheus metrics, built once and registered in one
// registry (served on the metrics port by server/http_server.h). Names follow
// Prometheus conventions: base units, _seconds, _total. No customer id is
// ever a label. Thread-safe (prometheus-cpp metrics are).

#include <map>
#include <memory>
#include <mutex>
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

  // One finished call: its method, caller (a name from the keys file,
  // "anonymous" without auth, "" when refused before it was known), status
  // code and duration.
  // `arm`: the bundles that answered (service.h ArmOf), "none" when none did.
  void ObserveRequest(const std::string& method, const std::string& caller, absl::StatusCode code, double seconds,
                      const std::string& arm = "none");
  // A call refused by auth: the method (or HTTP route) and the reason
  // (auth.h RefusalName: no_credential, malformed, unknown_key, ...).
  void CountAuthRefusal(const std::string& method, const std::string& reason);
  // One keys-file reload that saw a change: loaded or refused (the keys in
  // force stay), and the entries in force after it.
  void ObserveKeysReload(bool ok, double entries);
  // The entries of the keys file read at start.
  void SetAuthKeys(double entries);
  // One stage of a batch: "queue_wait", "feature_lookup", "tower", "search".
  void ObserveStage(const std::string& stage, double seconds);
  void ObserveBatch(double ids);
  // One batch's answers: customers served, fallback answers by reason,
  // articles completed from the popular list.
  void AddResults(const std::vector<Recommendation>& results);
  void SetQueuedIds(double ids);
  // The version an arm ("main", "canary") serves now.
  void SetBundle(const std::string& arm, const std::string& version);
  // One bundle reload that swapped in a new bundle (ok) or refused one.
  void ObserveReload(bool ok);
  // RecordPurchases: events by result (recorded, duplicate, expired,
  // already_in_bundle).
  void AddEvents(int recorded, int duplicates, int expired, int already_in_bundle, int erased);
  // A batch answered without its customers' recorded events because the
  // event store failed (Redis down): served from the bundle alone.
  void CountEventLookupFailure();
  // 1 while the event store answers, 0 while it is known not to (Redis's
  // circuit breaker open).
  void SetEventStoreUp(bool up);
  // The impression log: lines written, and dropped (queue full, or the
  // file could not be written).
  void CountImpressions(double written, double dropped);
  // Merchandising rules: a change of the rules file seen (loaded, or
  // refused and the rules in force kept), what the rules in force hold
  // (unavailable articles the bundle has, rule article ids it lacks), and
  // the articles each kind of rule changed.
  void ObserveRulesReload(bool ok);
  void SetRules(double unavailable_articles, double unknown_article_ids);
  void AddRuleCounts(double removed, double boosted, double buried, double capped, double pinned, double unmet);

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
  std::mutex bundle_mu_;                                     // guards bundle_gauges_
  std::map<std::string, prometheus::Gauge*> bundle_gauges_;  // by arm
  prometheus::Family<prometheus::Counter>& reloads_;
  prometheus::Counter& reloads_swapped_;
  prometheus::Counter& reloads_refused_;
  prometheus::Family<prometheus::Counter>& events_;
  prometheus::Counter& events_recorded_;
  prometheus::Counter& events_duplicate_;
  prometheus::Counter& events_expired_;
  prometheus::Counter& events_in_bundle_;
  prometheus::Counter& events_erased_;
  prometheus::Counter& event_lookup_failures_;
  prometheus::Gauge& event_store_up_;
  prometheus::Family<prometheus::Counter>& impressions_;
  prometheus::Counter& impressions_written_;
  prometheus::Counter& impressions_dropped_;
  prometheus::Family<prometheus::Counter>& auth_refused_;
  prometheus::Family<prometheus::Counter>& keys_reloads_;
  prometheus::Counter& keys_loaded_;
  prometheus::Counter& keys_refused_;
  prometheus::Gauge& keys_in_force_;
  prometheus::Family<prometheus::Counter>& rules_reloads_;
  prometheus::Counter& rules_loaded_;
  prometheus::Counter& rules_refused_;
  prometheus::Family<prometheus::Gauge>& rules_articles_;
  prometheus::Gauge& rules_unavailable_;
  prometheus::Gauge& rules_unknown_;
  prometheus::Family<prometheus::Counter>& rule_changes_;
  prometheus::Counter& rule_removed_;
  prometheus::Counter& rule_boosted_;
  prometheus::Counter& rule_buried_;
  prometheus::Counter& rule_capped_;
  prometheus::Counter& rule_pinned_;
  prometheus::Counter& rules_unmet_;
};

}  // namespace hmrec
