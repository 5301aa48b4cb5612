// Measures one load of a Kaggle-layout dataset directory and prints a JSON
// line: wall seconds, rows, and the process's peak resident memory.
//
//   hmrec_data_load_bench --data DIR --mode parse    # CSVs only, cache untouched
//   hmrec_data_load_bench --data DIR --mode write    # CSVs, then write the cache
//   hmrec_data_load_bench --data DIR --mode cached   # from the cache (must be current)
//
// One load per process, so peak memory is that load's; bench/data_bench.sh
// runs it several times and reports medians.

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "data/dataset_cache.h"
#include "glog/logging.h"

ABSL_FLAG(std::string, data, "", "Dataset directory");
ABSL_FLAG(std::string, mode, "parse", "parse, write or cached");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  const std::string data = absl::GetFlag(FLAGS_data);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  hmrec::LoadOptions opts;
  opts.show_progress = false;
  opts.use_cache = mode != "parse";

  std::string fingerprint;
  if (mode == "cached") {
    absl::StatusOr<std::string> fp = hmrec::DatasetFingerprint(data, opts);
    if (!fp.ok()) {
      std::fprintf(stderr, "bench: %s\n", std::string(fp.status().message()).c_str());
      return 1;
    }
    fingerprint = *fp;
  }
  const auto t0 = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<hmrec::Dataset>> ds =
      mode == "cached" ? hmrec::ReadDatasetCache(hmrec::DatasetCachePath(data, opts), fingerprint)
                       : hmrec::LoadDataset(data, opts);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!ds.ok()) {
    std::fprintf(stderr, "bench: %s\n", std::string(ds.status().message()).c_str());
    return 1;
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  std::printf(
      "{\"mode\": \"%s\", \"seconds\": %.3f, \"transactions\": %zu, \"customers\": %zu, "
      "\"articles\": %zu, \"from_cache\": %s, \"peak_rss_mib\": %.1f}\n",
      mode.c_str(), secs, (*ds)->transactions.size(), (*ds)->customers.size(), (*ds)->articles.size(),
      (*ds)->report.from_cache ? "true" : "false", ru.ru_maxrss / 1024.0);
  return 0;
}
