#pragma once

// Merchandising rules (config::MerchandisingRules): what the people who run
// the shop decide about every served list, without retraining or a
// redeploy: articles never to serve (out of stock, recalled), diversity caps,
// campaigns that boost or bury matching articles for a segment between two
// dates, and pins.
//
// Two steps, the same in the server and in `hmrec_rules`:
//
//   RuleSet::Load / Parse   the file as written, validated as a whole (no
//                           bundle needed): a malformed file, an end date
//                           before its start, a negative cap, a pin beyond
//                           max_k or two pins on one position at once are
//                           refused with file:line.
//   CompiledRules::Compile  the rule set against one bundle's article table:
//                           a row mask of the unavailable articles (ids the
//                           bundle lacks are counted, not refused), each
//                           campaign's matching rows, the pins' rows.
//
// The serving core never serves an unavailable row (it is part of every
// request's filter: search, candidates, fills). CompiledRules::Apply then
// shapes each answer, which the core made longer than k (PoolSize): the
// campaigns in force for the customer re-order it, the diversity caps skip
// what exceeds them (refilling from further down the ranked list, then the
// bundle's popular list), the pins take their positions, and the list is
// cut to k. Rules name themselves in the explanations (Explanation::rules)
// and the list's rules (Recommendation::rules).
//
// A RuleSet and a CompiledRules are immutable; Apply is const and may run
// on many threads at once.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/article_table.h"
#include "proto/config.pb.h"
#include "server/recommendation.h"

namespace hmrec {

// The rules file as written and validated.
struct RuleSet {
  config::MerchandisingRules rules;
  std::string source;  // the file it came from
  // unavailable_article_ids and the unavailable_file's ids, distinct.
  std::vector<int32_t> unavailable;
  std::string unavailable_file;  // resolved path ("" = none)
  // Pins and campaigns as days (days since 1970-01-01; both inclusive).
  struct Window {
    int32_t start = INT32_MIN;
    int32_t end = INT32_MAX;
    bool Contains(int32_t day) const { return day >= start && day <= end; }
  };
  std::vector<Window> campaign_windows, pin_windows;

  // Reads and validates `path` (and the unavailable_file it names, relative
  // to the rules file's folder). Pins must fit lists of `max_k`.
  static absl::StatusOr<std::shared_ptr<const RuleSet>> Load(const std::string& path, int max_k);
  // The same for rules text named `source` in errors; a relative
  // unavailable_file is read from `base_dir`.
  static absl::StatusOr<std::shared_ptr<const RuleSet>> Parse(const std::string& text, const std::string& source,
                                                              const std::string& base_dir, int max_k);

  // True when some rule re-orders or caps lists (campaigns, diversity,
  // pins): the answers must then be built longer than k and shaped.
  bool Shapes() const;
  // How long an answer of k must be built for Apply to have room: k plus
  // what caps and buried articles may take out, at most `limit`.
  int PoolSize(int k, int limit) const;
  // A summary for logs and the inspector: counts of each kind of rule.
  std::string Summary() const;
};

// What the rules know of the customer a list is for.
struct CustomerTraits {
  bool known = false;
  int age = -1;             // -1 unknown
  int32_t club_status = 0;  // the bundle's encoded club_member_status; 0 unknown
};

// Articles each kind of rule changed, for the metrics.
struct RuleCounts {
  int64_t boosted = 0;  // moved up by a campaign
  int64_t buried = 0;   // moved down by a campaign
  int64_t capped = 0;   // skipped by a diversity cap (a lower article took its place)
  int64_t pinned = 0;   // placed by a pin
  int64_t unmet = 0;    // lists where the caps could not be met with k articles (filled anyway)
};

class CompiledRules {
 public:
  // `club_status_names[v]` is the club_member_status text of encoded value
  // v (0 = unknown); `popular` the bundle's fallback list (article ids, best
  // first), the refill after the ranked candidates.
  static std::shared_ptr<const CompiledRules> Compile(std::shared_ptr<const RuleSet> rules,
                                                      const ArticleTable& articles,
                                                      const std::vector<std::string>& club_status_names,
                                                      std::vector<int32_t> popular);

  // 1 for each row of the bundle never to serve.
  const std::vector<uint8_t>& unavailable_rows() const { return unavailable_rows_; }
  int64_t unavailable_count() const { return unavailable_count_; }
  // Rule article ids the bundle does not have (unavailable, campaigns' id
  // lists, pins): warned about and counted, not refused.
  int64_t unknown_article_ids() const { return unknown_ids_; }
  const RuleSet& rule_set() const { return *rules_; }

  // The options the core is asked with for a request `o`: k raised to
  // PoolSize (at most `limit`, the bundle's popular list's length) and the
  // unavailable rows set. Valid while this CompiledRules lives.
  RequestOptions Pooled(const RequestOptions& o, int limit) const;

  // Shapes `rec`, the core's answer of up to PoolSize(k) articles for a
  // request `options` (its k, filters, explain) and a customer `traits`, on
  // `day`: to exactly k articles (fewer only when the pool and the popular
  // list hold fewer that the request allows).
  void Apply(const RequestOptions& options, const CustomerTraits& traits, int32_t day, Recommendation* rec,
             RuleCounts* counts) const;
  // What the server does with each of the core's answers: when some rule
  // shapes lists, Apply with the customer's traits as the core left them
  // in `rec` (known: not the fallback, or for SimilarArticles personalised;
  // age; club status). Nothing when no rule shapes lists.
  void Shape(const RequestOptions& options, int32_t day, Recommendation* rec, RuleCounts* counts) const;

 private:
  CompiledRules() = default;
  // True when the customer is in segment i (rule set order).
  bool InSegment(int i, const CustomerTraits& t) const;
  // True when `row` may be added to a list of `options` that did not
  // propose it (a pin, a popular refill): available and within the
  // request's filters.
  bool RequestAllows(const RequestOptions& options, uint32_t row) const;

  std::shared_ptr<const RuleSet> rules_;
  const ArticleTable* articles_ = nullptr;
  std::vector<uint8_t> unavailable_rows_;
  int64_t unavailable_count_ = 0;
  int64_t unknown_ids_ = 0;
  // Per segment (rule set order): club status codes allowed (empty = any).
  std::vector<std::vector<int32_t>> segment_clubs_;
  // The campaigns matching each row (indices), as compressed rows:
  // row_campaigns_[row_campaign_offsets_[row] .. row_campaign_offsets_[row + 1]).
  std::vector<uint32_t> row_campaign_offsets_;
  std::vector<uint16_t> row_campaigns_;
  // Per campaign and per pin: the indices of its segments (empty: everyone).
  std::vector<std::vector<int>> campaign_segments_, pin_segments_;
  // Rule names by rule id: campaigns, then pins ("pin:NAME"), then
  // "diversity".
  std::vector<std::string> rule_names_;
  // Per pin: the row (-1 = not in the bundle).
  std::vector<int64_t> pin_rows_;
  std::vector<int32_t> popular_;
};

}  // namespace hmrec
