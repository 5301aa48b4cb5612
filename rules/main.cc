// hmrec_rules: merchandising rules offline, with the code the server uses.
//
//   hmrec_rules check RULES [--bundle B] [--max_k 100]
//       Validates a rules file as the server would load it (exit 1 and
//       file:line when it is refused); with --bundle, also what the bundle
//       makes of it (unavailable articles it has, rule ids it lacks).
//   hmrec_rules diff --bundle B --rules NEW [--current OLD] [--customers 1000]
//       [--holdout truth.csv] [--date YYYY-MM-DD] [--k 12] [--json]
//       What replacing OLD (or no rules) by NEW would do to the customers'
//       lists: lists changed, articles moved, in and out, MAP@12 on the
//       holdout's customers when given.

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/runtime.h"
#include "data/dates.h"
#include "glog/logging.h"
#include "model/tower_runner.h"
#include "rules/merch_rules.h"
#include "rules/rules_diff.h"
#include "server/recommender.h"

ABSL_FLAG(std::string, bundle, "", "A sealed bundle (usually <bundles>/current)");
ABSL_FLAG(std::string, rules, "", "diff: the proposed rules file");
ABSL_FLAG(std::string, current, "", "diff: the rules file in force (empty: none)");
ABSL_FLAG(int, max_k, 100, "The server's max_k (pins must fit)");
ABSL_FLAG(int64_t, customers, 1000, "diff: customers compared");
ABSL_FLAG(std::string, holdout, "", "diff: held-out transactions; its customers are compared and scored");
ABSL_FLAG(std::string, date, "", "diff: the day campaigns and pins are judged on (default today, UTC)");
ABSL_FLAG(int, k, 12, "diff: list length");
ABSL_FLAG(bool, json, false, "diff: print JSON");
ABSL_FLAG(int, threads, 0, "Threads (0: every core)");

namespace {

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "hmrec_rules: %s\n", std::string(s.message()).c_str());
  return 1;
}

absl::StatusOr<std::unique_ptr<hmrec::Recommender>> LoadBundle() {
  const std::string bundle = absl::GetFlag(FLAGS_bundle);
  hmrec::RecommenderOptions ro;
  ro.max_k = absl::GetFlag(FLAGS_max_k);
  return hmrec::Recommender::Load(bundle, ro);
}

int Check(const std::string& path) {
  absl::StatusOr<std::shared_ptr<const hmrec::RuleSet>> set = hmrec::RuleSet::Load(path, absl::GetFlag(FLAGS_max_k));
  if (!set.ok()) return Fail(set.status());
  std::printf("%s: valid: %s\n", path.c_str(), (*set)->Summary().c_str());
  if (absl::GetFlag(FLAGS_bundle).empty()) return 0;
  absl::StatusOr<std::unique_ptr<hmrec::Recommender>> r = LoadBundle();
  if (!r.ok()) return Fail(r.status());
  const auto c = hmrec::CompileFor(*set, **r);
  std::printf("bundle %s: %lld unavailable articles it has; %lld rule article ids it does not have%s\n",
              (*r)->version().c_str(), static_cast<long long>(c->unavailable_count()),
              static_cast<long long>(c->unknown_article_ids()),
              c->unknown_article_ids() > 0 ? " (warned, not refused)" : "");
  return 0;
}

int Diff() {
  if (absl::GetFlag(FLAGS_bundle).empty() || absl::GetFlag(FLAGS_rules).empty()) {
    std::fprintf(stderr, "hmrec_rules diff: --bundle and --rules are required\n");
    return 2;
  }
  const int max_k = absl::GetFlag(FLAGS_max_k);
  std::shared_ptr<const hmrec::RuleSet> before;
  if (!absl::GetFlag(FLAGS_current).empty()) {
    absl::StatusOr<std::shared_ptr<const hmrec::RuleSet>> b = hmrec::RuleSet::Load(absl::GetFlag(FLAGS_current), max_k);
    if (!b.ok()) return Fail(b.status());
    before = *b;
  }
  absl::StatusOr<std::shared_ptr<const hmrec::RuleSet>> after = hmrec::RuleSet::Load(absl::GetFlag(FLAGS_rules), max_k);
  if (!after.ok()) return Fail(after.status());
  absl::StatusOr<std::unique_ptr<hmrec::Recommender>> r = LoadBundle();
  if (!r.ok()) return Fail(r.status());
  hmrec::RulesDiffOptions o;
  o.k = absl::GetFlag(FLAGS_k);
  o.customers = absl::GetFlag(FLAGS_customers);
  o.holdout = absl::GetFlag(FLAGS_holdout);
  if (absl::GetFlag(FLAGS_date).empty()) {
    o.day = hmrec::TodayUtc();
  } else {
    absl::StatusOr<int32_t> d = hmrec::ParseDate(absl::GetFlag(FLAGS_date));
    if (!d.ok()) return Fail(d.status());
    o.day = *d;
  }
  absl::StatusOr<hmrec::RulesDiff> d = hmrec::DiffRules(**r, before, *after, o);
  if (!d.ok()) return Fail(d.status());
  std::printf("%s\n", absl::GetFlag(FLAGS_json) ? d->Json().c_str() : d->Text().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  hmrec::PrepareProcess(argv);
  absl::SetProgramUsageMessage(
      "hmrec_rules check RULES [--bundle B] | hmrec_rules diff --bundle B --rules NEW [--current OLD]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  hmrec::ConfigureThreads(absl::GetFlag(FLAGS_threads));
  if (args.size() == 3 && std::string(args[1]) == "check") return Check(args[2]);
  if (args.size() == 2 && std::string(args[1]) == "diff") return Diff();
  std::fprintf(stderr,
               "usage: hmrec_rules check RULES [--bundle B] [--max_k N]\n"
               "       hmrec_rules diff --bundle B --rules NEW [--current OLD] [--customers N] "
               "[--holdout truth.csv] [--date YYYY-MM-DD]\n");
  return 2;
}
