// The ranker's two evaluators on one model: XGBoost's predictor and the
// native forest (ranker/forest.h), timed on the same rows, single-threaded
// and on `--threads`; prints ns per tree per row and rows/s, the median of
// --runs runs (docs/PERFORMANCE.md "Forest evaluator").
//
//   hmrec_forest_bench --model B/<version>/ranker.ubj [--rows 73000] [--runs 7]
//
// Rows are drawn from the model's own thresholds (Forest::ProbeRows: each
// feature at, just below or near a split value of it, or missing), so every
// split sends rows both ways; the server bench (bench/server_bench.sh,
// ranker_evaluator) measures the same on the served candidates.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "ranker/ranker.h"

ABSL_FLAG(std::string, model, "", "A ranker model (a bundle's ranker.ubj)");
ABSL_FLAG(int, rows, 73000, "Rows a call (the ranked 1000-id batch has ~73 candidates a customer)");
ABSL_FLAG(int, runs, 7, "Timed runs per setting (the median is printed)");
ABSL_FLAG(int, threads, 2, "Threads of the multi-threaded setting");

namespace {

int Fail(const std::string& what) {
  std::fprintf(stderr, "hmrec_forest_bench: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string model = absl::GetFlag(FLAGS_model);
  if (model.empty()) return Fail("--model is required");
  const int n = std::max(1, absl::GetFlag(FLAGS_rows));
  const int runs = std::max(1, absl::GetFlag(FLAGS_runs));
  std::printf("evaluator\tthreads\ttrees\trows\tms_median\tns_per_tree_row\trows_per_s\n");
  std::vector<float> rows;
  std::vector<float> reference;
  for (int threads : {1, std::max(1, absl::GetFlag(FLAGS_threads))}) {
    for (const char* evaluator : {"xgboost", "native"}) {
      auto ranker = hmrec::Ranker::Load(model, threads, evaluator);
      if (!ranker.ok()) return Fail(std::string(ranker.status().message()));
      if ((*ranker)->evaluator() != evaluator) return Fail("the native evaluator refused the model");
      if (rows.empty()) {
        auto json = (*ranker)->ToJson();
        if (!json.ok()) return Fail(std::string(json.status().message()));
        auto forest = hmrec::Forest::FromXGBoostJson(*json);
        if (!forest.ok()) return Fail(std::string(forest.status().message()));
        rows = forest->ProbeRows(n, 1);
      }
      const int nf = (*ranker)->num_features();
      std::vector<float> out(n);
      std::vector<double> ms;
      for (int r = 0; r <= runs; ++r) {  // run 0 warms up
        const auto start = std::chrono::steady_clock::now();
        const absl::Status s = (*ranker)->PredictMargins(rows.data(), n, nf, 0, 0, out.data());
        const double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        if (!s.ok()) return Fail(std::string(s.message()));
        if (r > 0) ms.push_back(t);
      }
      // Both evaluators must agree, or the timing means nothing.
      if (reference.empty()) {
        reference = out;
      } else {
        for (int i = 0; i < n; ++i) {
          if (std::fabs(out[i] - reference[i]) > 1e-5f * std::max(1.0f, std::fabs(reference[i]))) {
            return Fail("the evaluators disagree on row " + std::to_string(i));
          }
        }
      }
      std::sort(ms.begin(), ms.end());
      const double med = ms[ms.size() / 2];
      const int trees = (*ranker)->rounds();
      std::printf("%s\t%d\t%d\t%d\t%.3f\t%.2f\t%.0f\n", evaluator, threads, trees, n, med,
                  med * 1e6 / (static_cast<double>(trees) * n), n / (med / 1e3));
    }
  }
  return 0;
}
