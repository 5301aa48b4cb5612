#pragma once

// The validation gate: before `current` moves, a candidate bundle is scored
// beside the current one on the same held-out days through the serving code
// (server/recommender.h, the same Recommend the server runs), and promoted
// only when it passes every check:
//
//   sealed and intact    Recommender::Load verifies the manifest and every
//                        file's checksum (a damaged bundle is refused there)
//   same catalogue       it holds at least 99% of the current bundle's
//                        articles (a bundle of another catalogue is not an
//                        update of this one)
//   unseen days          both bundles' data ends before the held-out days
//                        (a bundle trained on them would be flattered)
//   quality              its MAP@12 on the held-out customers is at least
//                        (1 - max_drop) x the current bundle's
//   batch parity         a sample of customers answered one by one gets the
//                        lists their batch got (batching changes nothing)
//   latency smoke        the median of three 1,000-id calls within a budget
//
// A bundles directory without `current` (the first bundle): the candidate is
// judged alone (no catalogue or quality comparison; its MAP@12 reported).
//
// Not thread-safe.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace hmrec {

struct GateOptions {
  std::string bundles;    // the directory holding `current`
  std::string candidate;  // a version under it
  std::string holdout;    // held-out transactions (transactions_train.csv layout)
  double max_drop = 0.02;
  int64_t max_customers = 20000;  // of the holdout's, in id order
  int parity_customers = 200;
  double latency_budget_ms = 2000;  // median 1,000-id call
  bool promote = true;              // MakeCurrent when it passes
};

struct GateCheck {
  std::string name;
  bool passed = false;
  std::string detail;
};

struct GateReport {
  std::string candidate_version, current_version;
  double candidate_map = 0, current_map = 0;
  int64_t customers = 0;
  double candidate_batch_ms = 0;
  std::vector<GateCheck> checks;
  bool passed = false;
  bool promoted = false;

  std::string Json() const;
  // One line for stderr: the verdict and the first failed check.
  std::string Summary() const;
};

// Runs the checks; promotes when all pass (and options.promote). An error
// status only for what stops the gate from judging (an unreadable holdout,
// a current bundle that does not load); a failing candidate is a report
// with passed false.
absl::StatusOr<GateReport> RunGate(const GateOptions& options);

}  // namespace hmrec
