// index_builder: makes a trained bundle servable (faiss index, RocksDB
// feature store, popular fallback), seals it and makes it current; or, with
// --refresh_catalogue, writes a new sealed version of a servable bundle with
// the articles a newer articles.csv adds (same model) and makes it current.
//
//   hmrec_index_builder --bundle out/bundles/V --data DIR [--config configs/index_builder.pbtxt]
//   hmrec_index_builder --refresh_catalogue --bundle out/bundles/V --data NEWER_DIR [--version W]
//   hmrec_index_builder --rollback --bundles out/bundles   (current back to the version before)

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <omp.h>
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/runtime.h"
#include "common/text_proto.h"
#include "data/dataset_cache.h"
#include "glog/logging.h"
#include "index_builder/builder.h"
#include "index_builder/catalogue_refresh.h"
#include "model/tower_runner.h"

ABSL_FLAG(std::string, bundle, "", "Trained bundle directory (bundles/<version>)");
ABSL_FLAG(std::string, data, "", "The data the bundle was trained on");
ABSL_FLAG(std::vector<std::string>, extra_transactions, {},
          "The trainer's --extra_transactions files, the same ones (the bundle's data is --data plus them)");
ABSL_FLAG(std::string, erasures, "",
          "Customers to forget (`hmrec_events erasures`: a customer_id header, one id a line): their rows and "
          "purchases are left out of the bundle (give the trainer the same file)");
ABSL_FLAG(std::string, config, "configs/index_builder.pbtxt", "IndexBuilderConfig, text format");
ABSL_FLAG(std::string, index_type, "", "Overrides the config: flat, ivf, sq8 or hnsw");
ABSL_FLAG(bool, make_current, true, "Point bundles/current at the sealed bundle");
ABSL_FLAG(
    bool, no_promote, false,
    "Leave bundles/current where it is (= --make_current=false): hmrec_gate decides whether the bundle goes live");
ABSL_FLAG(bool, quiet, false, "No progress lines");
ABSL_FLAG(bool, refresh_catalogue, false,
          "Write a new sealed version of the sealed --bundle with the articles --data's articles.csv adds "
          "(embedded by the bundle's article tower; no retraining) and make it current");
ABSL_FLAG(std::string, version, "", "With --refresh_catalogue: the new version's name (default: UTC time)");
ABSL_FLAG(std::string, device, "cpu", "With --refresh_catalogue: where the article tower runs (cpu, cuda)");
ABSL_FLAG(bool, rollback, false,
          "Point --bundles' current back at the version that was current before (current.history); refuses "
          "when there is none or it fails its checks");
ABSL_FLAG(std::string, bundles, "", "With --rollback: the bundles directory (the one holding current)");

namespace {
int Fail(const absl::Status& s) {
  std::fprintf(stderr, "index_builder: %s\n", std::string(s.message()).c_str());
  return 1;
}

int RunRefresh(const std::string& bundle, const std::string& data, const hmrec::config::IndexBuilderConfig& cfg) {
  hmrec::ConfigureThreads(cfg.threads());
  hmrec::RefreshOptions options;
  options.articles_csv = (std::filesystem::path(data) / hmrec::kArticlesFile).string();
  options.version = absl::GetFlag(FLAGS_version);
  options.device = absl::GetFlag(FLAGS_device);
  options.show_progress = !absl::GetFlag(FLAGS_quiet);
  auto report = hmrec::RefreshCatalogue(bundle, options, cfg);
  if (!report.ok()) return Fail(report.status());
  if (report->bundle_dir.empty()) {
    std::fprintf(stderr,
                 "index_builder: %s adds no article to %s (%lld articles, %lld of them not in the file); "
                 "nothing written, current unchanged\n",
                 options.articles_csv.c_str(), bundle.c_str(), static_cast<long long>(report->base_articles),
                 static_cast<long long>(report->missing_articles));
    return 0;
  }
  std::fprintf(stderr,
               "index_builder: catalogue refreshed in %.1f s: %lld articles added to the %lld of %s (%lld trained; "
               "%lld no longer in the file, kept); index %s; sealed %s\n",
               report->seconds, static_cast<long long>(report->added_articles),
               static_cast<long long>(report->base_articles), bundle.c_str(),
               static_cast<long long>(report->trained_articles), static_cast<long long>(report->missing_articles),
               report->index_description.c_str(), report->bundle_dir.c_str());
  if (absl::GetFlag(FLAGS_make_current) && !absl::GetFlag(FLAGS_no_promote)) {
    absl::Status s = hmrec::MakeCurrent(report->bundle_dir);
    if (!s.ok()) return Fail(s);
    std::fprintf(stderr, "index_builder: current -> %s\n", report->bundle_dir.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  hmrec::PrepareProcess(argv);
  hmrec::ConfigureAllocator();
  absl::SetProgramUsageMessage("Adds the faiss index and the feature store to a bundle and seals it");
  absl::ParseCommandLine(argc, argv);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  // Going back needs no config and no data.
  if (absl::GetFlag(FLAGS_rollback)) {
    const std::string root = absl::GetFlag(FLAGS_bundles);
    if (root.empty()) return Fail(absl::InvalidArgumentError("--rollback needs --bundles (the directory of current)"));
    std::error_code ec;
    const std::string was = std::filesystem::read_symlink(std::filesystem::path(root) / hmrec::kCurrentLink, ec);
    absl::StatusOr<std::string> back = hmrec::RollBack(root);
    if (!back.ok()) return Fail(back.status());
    std::fprintf(stderr, "index_builder: current -> %s (rolled back from %s)\n", back->c_str(), was.c_str());
    return 0;
  }
  hmrec::config::IndexBuilderConfig cfg;
  absl::Status s = hmrec::ReadTextProto(absl::GetFlag(FLAGS_config), &cfg);
  if (!s.ok()) return Fail(s);
  if (!absl::GetFlag(FLAGS_index_type).empty()) cfg.set_index_type(absl::GetFlag(FLAGS_index_type));
  omp_set_num_threads(cfg.threads() > 0 ? cfg.threads() : omp_get_num_procs());
  const std::string bundle = absl::GetFlag(FLAGS_bundle), data = absl::GetFlag(FLAGS_data);
  if (bundle.empty() || data.empty()) return Fail(absl::InvalidArgumentError("--bundle and --data are required"));
  if (absl::GetFlag(FLAGS_refresh_catalogue)) return RunRefresh(bundle, data, cfg);

  hmrec::LoadOptions load;
  load.show_progress = !absl::GetFlag(FLAGS_quiet);
  auto ds = hmrec::LoadDataset(data, load);
  if (!ds.ok()) return Fail(ds.status());
  for (const std::string& extra : absl::GetFlag(FLAGS_extra_transactions)) {
    absl::StatusOr<int64_t> added = hmrec::ReadExtraTransactions(extra, load, ds->get());
    if (!added.ok()) return Fail(added.status());
  }
  if (!absl::GetFlag(FLAGS_erasures).empty()) {
    absl::StatusOr<hmrec::ErasureReport> erased = hmrec::ApplyErasures(absl::GetFlag(FLAGS_erasures), ds->get());
    if (!erased.ok()) return Fail(erased.status());
    std::fprintf(stderr, "index_builder: %s: %lld customers erased (%lld listed)\n",
                 absl::GetFlag(FLAGS_erasures).c_str(), static_cast<long long>(erased->customers),
                 static_cast<long long>(erased->listed));
  }
  auto report = hmrec::BuildServableBundle(bundle, **ds, cfg, !absl::GetFlag(FLAGS_quiet));
  if (!report.ok()) return Fail(report.status());
  std::fprintf(stderr,
               "index_builder: index %s over %lld articles in %.1f s; feature store of %lld customers "
               "(%lld without purchases) in %.1f s; sealed %s\n",
               report->index_description.c_str(), static_cast<long long>(report->articles), report->index_seconds,
               static_cast<long long>(report->customers), static_cast<long long>(report->customers_without_purchases),
               report->store_seconds, bundle.c_str());
  if (absl::GetFlag(FLAGS_make_current) && !absl::GetFlag(FLAGS_no_promote)) {
    s = hmrec::MakeCurrent(bundle);
    if (!s.ok()) return Fail(s);
    std::fprintf(stderr, "index_builder: current -> %s\n", bundle.c_str());
  }
  return 0;
}
