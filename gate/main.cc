// hmrec_gate: scores a candidate bundle beside the current one on held-out
// days through the serving code and promotes it only when every check
// passes (gate/gate.h); otherwise a report and exit 1, current unchanged.
//
//   hmrec_gate --bundles out/bundles --candidate VERSION --holdout truth.csv [--max_drop 0.02]
//       [--report gate.json] [--max_customers 20000] [--latency_budget_ms 2000] [--no_promote]

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/runtime.h"
#include "gate/gate.h"
#include "glog/logging.h"
#include "model/tower_runner.h"

ABSL_FLAG(std::string, bundles, "", "The bundles directory (holding current)");
ABSL_FLAG(std::string, candidate, "", "The candidate's version (a directory under --bundles)");
ABSL_FLAG(std::string, holdout, "", "Held-out transactions after both bundles' data (transactions layout)");
ABSL_FLAG(double, max_drop, 0.02, "The candidate's MAP@12 may be at most this share below the current one's");
ABSL_FLAG(int64_t, max_customers, 20000, "Held-out customers scored (in id order)");
ABSL_FLAG(double, latency_budget_ms, 2000, "Budget of the median 1,000-id call");
ABSL_FLAG(std::string, report, "", "Also write the report as JSON here");
ABSL_FLAG(bool, no_promote, false, "Judge only: leave current where it is even when the candidate passes");
ABSL_FLAG(int, threads, 0, "Threads (0: every core)");

int main(int argc, char** argv) {
  hmrec::PrepareProcess(argv);
  absl::SetProgramUsageMessage("hmrec_gate --bundles B --candidate V --holdout truth.csv: promote or refuse");
  absl::ParseCommandLine(argc, argv);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  hmrec::ConfigureThreads(absl::GetFlag(FLAGS_threads));
  hmrec::GateOptions o;
  o.bundles = absl::GetFlag(FLAGS_bundles);
  o.candidate = absl::GetFlag(FLAGS_candidate);
  o.holdout = absl::GetFlag(FLAGS_holdout);
  o.max_drop = absl::GetFlag(FLAGS_max_drop);
  o.max_customers = absl::GetFlag(FLAGS_max_customers);
  o.latency_budget_ms = absl::GetFlag(FLAGS_latency_budget_ms);
  o.promote = !absl::GetFlag(FLAGS_no_promote);
  if (o.bundles.empty() || o.candidate.empty() || o.holdout.empty()) {
    std::fprintf(stderr, "gate: --bundles, --candidate and --holdout are required\n");
    return 2;
  }
  if (!(o.max_drop >= 0 && o.max_drop < 1)) {
    std::fprintf(stderr, "gate: --max_drop %g is not in [0, 1)\n", o.max_drop);
    return 2;
  }
  absl::StatusOr<hmrec::GateReport> report = hmrec::RunGate(o);
  if (!report.ok()) {
    std::fprintf(stderr, "gate: cannot judge %s: %s\n", o.candidate.c_str(),
                 std::string(report.status().message()).c_str());
    return 1;
  }
  if (!absl::GetFlag(FLAGS_report).empty()) {
    std::ofstream(absl::GetFlag(FLAGS_report)) << report->Json() << "\n";
  }
  std::printf("%s\n", report->Json().c_str());
  std::fprintf(stderr, "%s\n", report->Summary().c_str());
  return report->passed ? 0 : 1;
}
