#include "gate/gate.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/metrics.h"
#include "common/status_macros.h"
#include "data/dates.h"
#include "evaluate/score.h"
#include "index_builder/builder.h"
#include "server/recommender.h"

namespace hmrec {
namespace fs = std::filesystem;

namespace {

constexpr int kK = 12;
constexpr size_t kBatch = 1000;

// Every customer's top k, in batches of kBatch.
absl::Status Lists(const Recommender& r, const std::vector<std::string>& ids, std::vector<std::vector<int32_t>>* out) {
  out->clear();
  RecommendScratch scratch;
  std::vector<Recommendation> recs;
  for (size_t b = 0; b < ids.size(); b += kBatch) {
    std::vector<absl::string_view> batch(ids.begin() + static_cast<std::ptrdiff_t>(b),
                                         ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), b + kBatch)));
    RETURN_IF_ERROR(r.Recommend(batch, kK, &recs, nullptr, 0, &scratch));
    for (Recommendation& rec : recs) out->push_back(std::move(rec.article_ids));
  }
  return absl::OkStatus();
}

double Map(const std::vector<std::vector<int32_t>>& lists, const std::vector<std::string>& ids,
           const evaluate::Truth& truth) {
  double sum = 0;
  for (size_t i = 0; i < ids.size(); ++i) sum += AveragePrecisionAtK(lists[i], truth.at(ids[i]), kK);
  return ids.empty() ? 0 : sum / static_cast<double>(ids.size());
}

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c == '\n' ? ' ' : c);
  }
  return out;
}

}  // namespace

std::string GateReport::Json() const {
  std::string checks_json;
  for (const GateCheck& c : checks) {
    absl::StrAppend(&checks_json, checks_json.empty() ? "" : ", ",
                    absl::StrFormat(R"({"name": "%s", "passed": %s, "detail": "%s"})", c.name,
                                    c.passed ? "true" : "false", Escape(c.detail)));
  }
  return absl::StrFormat(
      R"({"candidate": "%s", "current": "%s", "passed": %s, "promoted": %s, "customers": %d, )"
      R"("candidate_map_at_12": %.6f, "current_map_at_12": %.6f, "candidate_batch_ms": %.1f, "checks": [%s]})",
      Escape(candidate_version), Escape(current_version), passed ? "true" : "false", promoted ? "true" : "false",
      customers, candidate_map, current_map, candidate_batch_ms, checks_json);
}

std::string GateReport::Summary() const {
  if (passed && current_version.empty()) {
    return absl::StrFormat("gate: %s passes (MAP@12 %.5f on %d held-out customers; the first bundle)%s",
                           candidate_version, candidate_map, customers,
                           promoted ? "; current -> " + candidate_version : "");
  }
  if (passed) {
    return absl::StrFormat("gate: %s passes (MAP@12 %.5f vs current %s %.5f on %d held-out customers)%s",
                           candidate_version, candidate_map, current_version, current_map, customers,
                           promoted ? "; current -> " + candidate_version : "");
  }
  for (const GateCheck& c : checks) {
    if (!c.passed) return absl::StrCat("gate: ", candidate_version, " refused: ", c.name, ": ", c.detail);
  }
  return absl::StrCat("gate: ", candidate_version, " refused");
}

absl::StatusOr<GateReport> RunGate(const GateOptions& o) {
  GateReport report;
  report.candidate_version = o.candidate;
  const fs::path root(o.bundles);
  std::error_code ec;
  // No `current` yet (a new bundles directory): the first candidate is
  // judged alone, its quality reported and compared with nothing.
  const bool first = !fs::exists(fs::symlink_status(root / kCurrentLink, ec));
  if (!first) {
    report.current_version = fs::read_symlink(root / kCurrentLink, ec).filename().string();
    if (ec) return absl::FailedPreconditionError(absl::StrCat((root / kCurrentLink).string(), " names no bundle"));
  }
  auto check = [&](std::string name, bool passed, std::string detail) {
    report.checks.push_back({std::move(name), passed, std::move(detail)});
    return passed;
  };
  if (!check("candidate", report.current_version != o.candidate,
             report.current_version == o.candidate ? "it is already current" : "a version other than current")) {
    return report;
  }

  int32_t first_day = 0;
  ASSIGN_OR_RETURN(evaluate::Truth truth, evaluate::ReadTruth(o.holdout, &first_day));
  if (truth.empty()) return absl::InvalidArgumentError(absl::StrCat(o.holdout, ": no held-out transactions"));
  RecommenderOptions ro;
  std::unique_ptr<Recommender> current;
  if (!first) {
    ASSIGN_OR_RETURN(current, Recommender::Load((root / kCurrentLink).string(), ro));
  }
  absl::StatusOr<std::unique_ptr<Recommender>> candidate = Recommender::Load((root / o.candidate).string(), ro);
  if (!check("sealed and intact", candidate.ok(),
             candidate.ok() ? "manifest sealed, every file's checksum matches"
                            : std::string(candidate.status().message()))) {
    return report;
  }
  const Recommender& cand = **candidate;

  // The same catalogue: the current bundle's articles, nearly all there.
  if (current != nullptr) {
    const ArticleTable& now = current->articles();
    int64_t kept = 0;
    for (uint32_t row = 0; row < now.size(); ++row) kept += cand.HasArticle(now.article_id(row));
    const double share = now.size() ? static_cast<double>(kept) / static_cast<double>(now.size()) : 1.0;
    check("same catalogue", share >= 0.99,
          absl::StrFormat("%d of the current bundle's %d articles are in it (at least 99%% needed)", kept, now.size()));
  }

  // Unseen days: both bundles end before the held-out days.
  for (const auto& [name, r] : {std::pair<std::string, const Recommender*>{"candidate", &cand},
                                std::pair<std::string, const Recommender*>{"current", current.get()}}) {
    if (r == nullptr) continue;
    absl::StatusOr<int32_t> last = ParseDate(r->manifest().data_last_day());
    check(absl::StrCat("unseen days (", name, ")"), last.ok() && *last < first_day,
          absl::StrCat("its data ends ", r->manifest().data_last_day(), ", the held-out days begin ",
                       FormatDate(first_day)));
  }

  // Quality on the held-out customers (id order, at most max_customers).
  std::vector<std::string> ids;
  for (const auto& [id, bought] : truth) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  if (static_cast<int64_t>(ids.size()) > o.max_customers) ids.resize(static_cast<size_t>(o.max_customers));
  report.customers = static_cast<int64_t>(ids.size());
  std::vector<std::vector<int32_t>> cand_lists, cur_lists;
  RETURN_IF_ERROR(Lists(cand, ids, &cand_lists));
  report.candidate_map = Map(cand_lists, ids, truth);
  if (current != nullptr) {
    RETURN_IF_ERROR(Lists(*current, ids, &cur_lists));
    report.current_map = Map(cur_lists, ids, truth);
    check("quality", report.candidate_map >= report.current_map * (1.0 - o.max_drop),
          absl::StrFormat("MAP@12 %.5f vs the current bundle's %.5f (at most %.0f%% lower allowed)",
                          report.candidate_map, report.current_map, 100 * o.max_drop));
  } else {
    check("quality", true,
          absl::StrFormat("MAP@12 %.5f; no current bundle to compare with (the first)", report.candidate_map));
  }

  // Batch parity: one by one as in the batch.
  int differ = 0;
  const size_t sample = std::min(ids.size(), static_cast<size_t>(std::max(0, o.parity_customers)));
  RecommendScratch scratch;
  std::vector<Recommendation> alone;
  for (size_t i = 0; i < sample; ++i) {
    RETURN_IF_ERROR(cand.Recommend({ids[i]}, kK, &alone, nullptr, 0, &scratch));
    differ += alone[0].article_ids != cand_lists[i];
  }
  check("batch parity", differ == 0,
        absl::StrCat(differ, " of ", sample, " customers got another list alone than in their batch"));

  // Latency smoke: three calls of 1,000 held-out customers (wrapping).
  std::vector<absl::string_view> batch;
  for (size_t i = 0; i < kBatch && !ids.empty(); ++i) batch.push_back(ids[i % ids.size()]);
  std::vector<double> ms;
  std::vector<Recommendation> recs;
  for (int run = 0; run < 3 && !batch.empty(); ++run) {
    const auto t0 = std::chrono::steady_clock::now();
    RETURN_IF_ERROR(cand.Recommend(batch, kK, &recs, nullptr, 0, &scratch));
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  report.candidate_batch_ms = ms.empty() ? 0 : ms[ms.size() / 2];
  check("latency smoke", report.candidate_batch_ms <= o.latency_budget_ms,
        absl::StrFormat("a 1,000-id call took %.1f ms (median of 3; budget %.0f ms)", report.candidate_batch_ms,
                        o.latency_budget_ms));

  report.passed = std::all_of(report.checks.begin(), report.checks.end(), [](const GateCheck& c) { return c.passed; });
  if (report.passed && o.promote) {
    RETURN_IF_ERROR(MakeCurrent((root / o.candidate).string()));
    report.promoted = true;
  }
  return report;
}

}  // namespace hmrec
