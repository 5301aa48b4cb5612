// index_builder: makes a trained bundle servable (faiss index, RocksDB
// feature store, popular fallback), seals it and makes it current.
//
//   hmrec_index_builder --bundle out/bundles/V --data DIR [--config configs/index_builder.pbtxt]

#include <cstdio>
#include <string>

#include <omp.h>
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/runtime.h"
#include "common/text_proto.h"
#include "data/dataset_cache.h"
#include "glog/logging.h"
#include "index_builder/builder.h"

ABSL_FLAG(std::string, bundle, "", "Trained bundle directory (bundles/<version>)");
ABSL_FLAG(std::string, data, "", "The data the bundle was trained on");
ABSL_FLAG(std::string, config, "configs/index_builder.pbtxt", "IndexBuilderConfig, text format");
ABSL_FLAG(std::string, index_type, "", "Overrides the config: flat, ivf, sq8 or hnsw");
ABSL_FLAG(bool, make_current, true, "Point bundles/current at the sealed bundle");
ABSL_FLAG(bool, quiet, false, "No progress lines");

namespace {
int Fail(const absl::Status& s) {
  std::fprintf(stderr, "index_builder: %s\n", std::string(s.message()).c_str());
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  hmrec::PrepareProcess(argv);
  hmrec::ConfigureAllocator();
  absl::SetProgramUsageMessage("Adds the faiss index and the feature store to a bundle and seals it");
  absl::ParseCommandLine(argc, argv);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  hmrec::config::IndexBuilderConfig cfg;
  absl::Status s = hmrec::ReadTextProto(absl::GetFlag(FLAGS_config), &cfg);
  if (!s.ok()) return Fail(s);
  if (!absl::GetFlag(FLAGS_index_type).empty()) cfg.set_index_type(absl::GetFlag(FLAGS_index_type));
  omp_set_num_threads(cfg.threads() > 0 ? cfg.threads() : omp_get_num_procs());
  const std::string bundle = absl::GetFlag(FLAGS_bundle), data = absl::GetFlag(FLAGS_data);
  if (bundle.empty() || data.empty()) return Fail(absl::InvalidArgumentError("--bundle and --data are required"));

  hmrec::LoadOptions load;
  load.show_progress = !absl::GetFlag(FLAGS_quiet);
  auto ds = hmrec::LoadDataset(data, load);
  if (!ds.ok()) return Fail(ds.status());
  auto report = hmrec::BuildServableBundle(bundle, **ds, cfg, !absl::GetFlag(FLAGS_quiet));
  if (!report.ok()) return Fail(report.status());
  std::fprintf(stderr,
               "index_builder: index %s over %lld articles in %.1f s; feature store of %lld customers "
               "(%lld without purchases) in %.1f s; sealed %s\n",
               report->index_description.c_str(), static_cast<long long>(report->articles), report->index_seconds,
               static_cast<long long>(report->customers), static_cast<long long>(report->customers_without_purchases),
               report->store_seconds, bundle.c_str());
  if (absl::GetFlag(FLAGS_make_current)) {
    s = hmrec::MakeCurrent(bundle);
    if (!s.ok()) return Fail(s);
    std::fprintf(stderr, "index_builder: current -> %s\n", bundle.c_str());
  }
  return 0;
}
