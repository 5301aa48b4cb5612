// datagen: writes Kaggle-layout H&M CSVs from the generative model of
// docs/DATA.md.
//
//   hmrec_datagen --scale small --out data/small
//   hmrec_datagen --config configs/datagen_custom.pbtxt --out DIR

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/text_proto.h"
#include "datagen/generator.h"
#include "glog/logging.h"

ABSL_FLAG(std::string, scale, "small", "Preset: tiny (~1k customers), small (~50k), full (1.37M)");
ABSL_FLAG(std::string, config, "", "Text-format DatagenConfig; its fields override the --scale preset");
ABSL_FLAG(std::string, out, "", "Output directory (created if missing)");
ABSL_FLAG(int64_t, seed, -1, "Overrides the seed when >= 0");
ABSL_FLAG(bool, quiet, false, "No progress lines");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Writes Kaggle-layout H&M CSVs: hmrec_datagen --scale small --out DIR");
  absl::ParseCommandLine(argc, argv);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);

  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) {
    std::fprintf(stderr, "datagen: --out is required\n");
    return 2;
  }
  absl::StatusOr<hmrec::config::DatagenConfig> cfg = hmrec::datagen::ScalePreset(absl::GetFlag(FLAGS_scale));
  if (!cfg.ok()) {
    std::fprintf(stderr, "datagen: %s\n", std::string(cfg.status().message()).c_str());
    return 2;
  }
  if (!absl::GetFlag(FLAGS_config).empty()) {
    hmrec::config::DatagenConfig overrides;
    absl::Status s = hmrec::ReadTextProto(absl::GetFlag(FLAGS_config), &overrides);
    if (!s.ok()) {
      std::fprintf(stderr, "datagen: %s\n", std::string(s.message()).c_str());
      return 2;
    }
    cfg->MergeFrom(overrides);
  }
  if (absl::GetFlag(FLAGS_seed) >= 0) cfg->set_seed(static_cast<uint64_t>(absl::GetFlag(FLAGS_seed)));

  hmrec::datagen::GenerateStats stats;
  absl::Status s = hmrec::datagen::Generate(*cfg, out, !absl::GetFlag(FLAGS_quiet), &stats);
  if (!s.ok()) {
    std::fprintf(stderr, "datagen: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::fprintf(stderr,
               "datagen: wrote %s: %lld articles (%lld never bought), %lld customers (%lld without "
               "purchase), %lld transactions in %.1f s\n",
               out.c_str(), static_cast<long long>(stats.articles), static_cast<long long>(stats.articles_never_bought),
               static_cast<long long>(stats.customers), static_cast<long long>(stats.customers_without_purchase),
               static_cast<long long>(stats.transactions), stats.seconds);
  return 0;
}
