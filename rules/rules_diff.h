#pragma once

// What a change of merchandising rules would do to served lists, before it
// goes live (`hmrec_rules diff`): the same customers' lists from one bundle
// through the serving core and rules/merch_rules.h, once with the rules in
// force (or none) and once with the proposed ones.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rules/merch_rules.h"
#include "server/recommender.h"

namespace hmrec {

struct RulesDiffOptions {
  int k = 12;
  int32_t day = 0;           // the day campaigns and pins are judged on
  int64_t customers = 1000;  // at most this many
  // Held-out transactions (transactions layout): its customers are the ones
  // compared (in id order) and MAP@12 is scored on them. Empty: customers
  // of the bundle's store, from the start of its order.
  std::string holdout;
};

struct RulesDiff {
  int64_t customers = 0;
  int64_t changed_lists = 0;
  int64_t articles_moved = 0;    // in both lists, at another position
  int64_t articles_added = 0;    // in the proposed list only
  int64_t articles_removed = 0;  // in the list before only
  RuleCounts before_counts, after_counts;
  // MAP@12 on the holdout (-1 without one).
  double map_before = -1, map_after = -1;
  std::vector<std::string> examples;  // a few changed lists, for people

  std::string Text() const;
  std::string Json() const;
};

// `set` compiled against the bundle `r` serves (its articles, club
// statuses and popular list).
std::shared_ptr<const CompiledRules> CompileFor(std::shared_ptr<const RuleSet> set, const Recommender& r);

// The bundle's customers from the start of its store's order, at most n.
absl::StatusOr<std::vector<std::string>> FirstCustomers(const Recommender& r, int64_t n);

// The lists of `ids` from `r` with `rules` applied (null: none), as the
// server's batch processor builds them.
absl::Status ListsWithRules(const Recommender& r, const CompiledRules* rules, const std::vector<std::string>& ids,
                            int k, int32_t day, std::vector<Recommendation>* out, RuleCounts* counts);

absl::StatusOr<RulesDiff> DiffRules(const Recommender& r, std::shared_ptr<const RuleSet> before,
                                    std::shared_ptr<const RuleSet> after, const RulesDiffOptions& o);

}  // namespace hmrec
