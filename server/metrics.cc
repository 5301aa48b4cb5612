#include "server/metrics.h"

#include "absl/status/status.h"

namespace hmrec {
namespace {

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
  return *b;
}

}  // namespace

ServerMetrics::ServerMetrics(prometheus::Registry& registry)
    : registry_(registry),
      requests_(
          prometheus::BuildHistogram()
              .Name("hmrec_request_duration_seconds")
              .Help("Time from receiving a call to finishing it, by method, caller (the keys file's client name), "
                    "status code and arm (main, canary, mixed: the bundles that answered, whose versions "
                    "hmrec_bundle_info names; none: no bundle answered)")
              .Register(registry)),
      stages_(prometheus::BuildHistogram()
                  .Name("hmrec_stage_duration_seconds")
                  .Help("Time of one stage of a batch: queue_wait, events (the event store's lookup), "
                        "feature_lookup, tower, search, and with a ranker candidates, ranking_features, ranker; "
                        "similar (a batch's SimilarArticles requests)")
                  .Register(registry)),
      batch_ids_(
          prometheus::BuildHistogram()
              .Name("hmrec_batch_ids")
              .Help("Customer ids per processed batch (a SimilarArticles request counts one)")
              .Register(registry)
              .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048})),
      customers_(prometheus::BuildCounter()
                     .Name("hmrec_customers_total")
                     .Help("Customer ids answered")
                     .Register(registry)
                     .Add({})),
      fallback_(prometheus::BuildCounter()
                    .Name("hmrec_fallback_total")
                    .Help("Customer ids answered with the popular fallback, by reason: unknown_customer, "
                          "embedding_not_finite (a model fault)")
                    .Register(registry)),
      fallback_unknown_(fallback_.Add({{"reason", "unknown_customer"}})),
      fallback_embedding_(fallback_.Add({{"reason", "embedding_not_finite"}})),
      filled_(prometheus::BuildCounter()
                  .Name("hmrec_filled_articles_total")
                  .Help("Articles appended from the popular list because a search returned fewer than k")
                  .Register(registry)
                  .Add({})),
      queued_ids_(prometheus::BuildGauge()
                      .Name("hmrec_queued_ids")
                      .Help("Customer ids waiting in the batch queue")
                      .Register(registry)
                      .Add({})),
      bundle_info_(prometheus::BuildGauge()
                       .Name("hmrec_bundle_info")
                       .Help("The bundles being served (value 1): version by arm (main; canary with a canary)")
                       .Register(registry)),
      reloads_(
          prometheus::BuildCounter()
              .Name("hmrec_bundle_reloads_total")
              .Help("Bundle reloads by result: swapped (now served) or refused (failed verification, old one kept)")
              .Register(registry)),
      reloads_swapped_(reloads_.Add({{"result", "swapped"}})),
      reloads_refused_(reloads_.Add({{"result", "refused"}})),
      events_(prometheus::BuildCounter()
                  .Name("hmrec_events_total")
                  .Help("Purchases sent to RecordPurchases by result: recorded (new, durable), duplicate (event id "
                        "seen before), expired (older than the horizon), already_in_bundle (dated on or before the "
                        "served bundle's last data day: they change nothing while it is served), erased (of a customer "
                        "on the "
                        "erasure list: not kept)")
                  .Register(registry)),
      events_recorded_(events_.Add({{"result", "recorded"}})),
      events_duplicate_(events_.Add({{"result", "duplicate"}})),
      events_expired_(events_.Add({{"result", "expired"}})),
      events_in_bundle_(events_.Add({{"result", "already_in_bundle"}})),
      events_erased_(events_.Add({{"result", "erased"}})),
      event_lookup_failures_(prometheus::BuildCounter()
                                 .Name("hmrec_event_lookup_failures_total")
                                 .Help("Batches answered from the bundle alone because the event store failed")
                                 .Register(registry)
                                 .Add({})),
      event_store_up_(prometheus::BuildGauge()
                          .Name("hmrec_event_store_up")
                          .Help("1 while the event store of recorded purchases answers, 0 while it does not (Redis's "
                                "circuit breaker open: Recommend serves from the bundle alone, RecordPurchases is "
                                "UNAVAILABLE)")
                          .Register(registry)
                          .Add({})),
      impressions_(prometheus::BuildCounter()
                       .Name("hmrec_impressions_total")
                       .Help("Lines of the impression log by result: written, dropped (the writer's queue full, or "
                             "the file not writable; serving never waits for it)")
                       .Register(registry)),
      impressions_written_(impressions_.Add({{"result", "written"}})),
      impressions_dropped_(impressions_.Add({{"result", "dropped"}})),
      auth_refused_(prometheus::BuildCounter()
                        .Name("hmrec_auth_refused_total")
                        .Help("Calls refused by auth, by method and reason: no_credential, malformed, unknown_key, "
                              "unknown_certificate (UNAUTHENTICATED / 401), scope (PERMISSION_DENIED / 403)")
                        .Register(registry)),
      keys_reloads_(prometheus::BuildCounter()
                        .Name("hmrec_auth_keys_reloads_total")
                        .Help("Changes of the keys file seen, by result: loaded (now in force) or refused (did not "
                              "parse; the keys in force stay)")
                        .Register(registry)),
      keys_loaded_(keys_reloads_.Add({{"result", "loaded"}})),
      keys_refused_(keys_reloads_.Add({{"result", "refused"}})),
      keys_in_force_(prometheus::BuildGauge()
                         .Name("hmrec_auth_keys")
                         .Help("Clients in the keys file in force (keys and certificate names)")
                         .Register(registry)
                         .Add({})),
      rules_reloads_(prometheus::BuildCounter()
                         .Name("hmrec_rules_reloads_total")
                         .Help("Changes of the merchandising rules file (or its unavailable_file) seen, by result: "
                               "loaded (now in force) or refused (invalid; the rules in force stay)")
                         .Register(registry)),
      rules_loaded_(rules_reloads_.Add({{"result", "loaded"}})),
      rules_refused_(rules_reloads_.Add({{"result", "refused"}})),
      rules_articles_(prometheus::BuildGauge()
                          .Name("hmrec_rules_articles")
                          .Help("The merchandising rules in force against the main bundle: unavailable (articles "
                                "never served), unknown (rule article ids the bundle does not have)")
                          .Register(registry)),
      rules_unavailable_(rules_articles_.Add({{"kind", "unavailable"}})),
      rules_unknown_(rules_articles_.Add({{"kind", "unknown"}})),
      rule_changes_(prometheus::BuildCounter()
                        .Name("hmrec_rule_articles_total")
                        .Help("Articles the merchandising rules changed in served lists, by action: removed "
                              "(unavailable, kept out of a list it would have entered), boosted / buried (moved up "
                              "/ down by a campaign), capped (skipped by a diversity cap), pinned")
                        .Register(registry)),
      rule_removed_(rule_changes_.Add({{"action", "removed"}})),
      rule_boosted_(rule_changes_.Add({{"action", "boosted"}})),
      rule_buried_(rule_changes_.Add({{"action", "buried"}})),
      rule_capped_(rule_changes_.Add({{"action", "capped"}})),
      rule_pinned_(rule_changes_.Add({{"action", "pinned"}})),
      rules_unmet_(prometheus::BuildCounter()
                       .Name("hmrec_rules_caps_unmet_total")
                       .Help("Lists whose diversity caps k articles could not meet (filled past the caps)")
                       .Register(registry)
                       .Add({})) {
  // Every method and reason from the start: a rate of refusals reads 0,
  // not "no data", before the first one.
  for (const char* method : {"Recommend", "RecordPurchases", "http"}) {
    for (const char* reason : {"no_credential", "malformed", "unknown_key", "unknown_certificate", "scope"}) {
      auth_refused_.Add({{"method", method}, {"reason", reason}});
    }
  }
}

void ServerMetrics::ObserveRequest(const std::string& method, const std::string& caller, absl::StatusCode code,
                                   double seconds, const std::string& arm) {
  requests_
      .Add({{"method", method}, {"caller", caller}, {"code", absl::StatusCodeToString(code)}, {"arm", arm}},
           LatencyBuckets())
      .Observe(seconds);
}

void ServerMetrics::CountAuthRefusal(const std::string& method, const std::string& reason) {
  auth_refused_.Add({{"method", method}, {"reason", reason}}).Increment();
}

void ServerMetrics::SetAuthKeys(double entries) { keys_in_force_.Set(entries); }

void ServerMetrics::ObserveKeysReload(bool ok, double entries) {
  (ok ? keys_loaded_ : keys_refused_).Increment();
  keys_in_force_.Set(entries);
}

void ServerMetrics::ObserveStage(const std::string& stage, double seconds) {
  stages_.Add({{"stage", stage}}, LatencyBuckets()).Observe(seconds);
}

void ServerMetrics::ObserveBatch(double ids) { batch_ids_.Observe(ids); }

void ServerMetrics::AddResults(const std::vector<Recommendation>& results) {
  double unknown = 0, embedding = 0, filled = 0;
  for (const Recommendation& r : results) {
    if (r.fallback) (r.fallback_reason == kReasonUnknownCustomer ? unknown : embedding) += 1;
    filled += r.filled_from_popular;
  }
  customers_.Increment(static_cast<double>(results.size()));
  fallback_unknown_.Increment(unknown);
  fallback_embedding_.Increment(embedding);
  filled_.Increment(filled);
}

void ServerMetrics::ObserveReload(bool ok) { (ok ? reloads_swapped_ : reloads_refused_).Increment(); }

void ServerMetrics::AddEvents(int recorded, int duplicates, int expired, int already_in_bundle, int erased) {
  events_recorded_.Increment(recorded);
  events_duplicate_.Increment(duplicates);
  events_expired_.Increment(expired);
  events_in_bundle_.Increment(already_in_bundle);
  events_erased_.Increment(erased);
}

void ServerMetrics::CountEventLookupFailure() { event_lookup_failures_.Increment(); }

void ServerMetrics::SetEventStoreUp(bool up) { event_store_up_.Set(up ? 1 : 0); }

void ServerMetrics::CountImpressions(double written, double dropped) {
  impressions_written_.Increment(written);
  impressions_dropped_.Increment(dropped);
}

void ServerMetrics::ObserveRulesReload(bool ok) { (ok ? rules_loaded_ : rules_refused_).Increment(); }

void ServerMetrics::SetRules(double unavailable_articles, double unknown_article_ids) {
  rules_unavailable_.Set(unavailable_articles);
  rules_unknown_.Set(unknown_article_ids);
}

void ServerMetrics::AddRuleCounts(double removed, double boosted, double buried, double capped, double pinned,
                                  double unmet) {
  rule_removed_.Increment(removed);
  rule_boosted_.Increment(boosted);
  rule_buried_.Increment(buried);
  rule_capped_.Increment(capped);
  rule_pinned_.Increment(pinned);
  rules_unmet_.Increment(unmet);
}

void ServerMetrics::SetQueuedIds(double ids) { queued_ids_.Set(ids); }

void ServerMetrics::SetBundle(const std::string& arm, const std::string& version) {
  std::lock_guard<std::mutex> lock(bundle_mu_);
  prometheus::Gauge*& gauge = bundle_gauges_[arm];
  if (gauge != nullptr) bundle_info_.Remove(gauge);
  gauge = &bundle_info_.Add({{"arm", arm}, {"version", version}});
  gauge->Set(1);
}

}  // namespace hmrec
