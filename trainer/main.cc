// trainer: learns the two towers on Kaggle-layout data and exports a bundle.
//
//   hmrec_trainer --config configs/trainer.pbtxt --data SPLIT/train \
//       --holdout SPLIT/truth.csv --work_dir out/train --bundles out/bundles
//
// Prints the new bundle's path on stdout.
//
// Data-parallel: run N copies with the PyTorch launcher environment
// (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE; GLOO_SOCKET_IFNAME to pick the
// interface), e.g. under torchrun or a Kubernetes Indexed Job
// (deploy/k8s/jobs/). Rank 0 evaluates, checkpoints, exports the bundle and
// trains the ranker; the other ranks exit 0 once the towers are trained.

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/runtime.h"
#include "common/text_proto.h"
#include "data/dataset_cache.h"
#include "distributed/collective.h"
#include "distributed/launch_env.h"
#include "glog/logging.h"
#include "model/tower_runner.h"
#include "trainer/ranking_trainer.h"
#include "trainer/trainer.h"

ABSL_FLAG(std::string, config, "configs/trainer.pbtxt", "TrainerConfig, text format");
ABSL_FLAG(std::string, data, "", "Directory with articles.csv, customers.csv, transactions_train.csv");
ABSL_FLAG(std::string, holdout, "", "Held-out transactions (truth.csv) to evaluate on; optional");
ABSL_FLAG(std::vector<std::string>, extra_transactions, {},
          "More transaction files after --data's (comma-separated; e.g. hmrec_events export's purchases recorded "
          "online); their customers missing from customers.csv join with an unknown profile");
ABSL_FLAG(std::string, erasures, "",
          "Customers to forget (`hmrec_events erasures`: a customer_id header, one id a line): their rows and "
          "purchases are left out of the training");
ABSL_FLAG(std::string, work_dir, "", "Checkpoints, metrics and the training curve");
ABSL_FLAG(std::string, bundles, "", "Bundles root; the bundle goes to <bundles>/<version>/");
ABSL_FLAG(std::string, version, "", "Bundle version (default: UTC time, e.g. 20261123T170000Z)");
ABSL_FLAG(std::string, device, "", "Overrides the config's device: cpu, cuda, cuda:N");
ABSL_FLAG(int, epochs, -1, "Overrides the config's epochs");
ABSL_FLAG(int, threads, -1, "Overrides the config's thread count");
ABSL_FLAG(bool, resume, false, "Continue from the last checkpoint in --work_dir");
ABSL_FLAG(int64_t, eval_max_customers, 0,
          "Evaluate after each epoch on at most this many held-out customers (0 = all, the same "
          "set every epoch); the last epoch always uses all");
ABSL_FLAG(std::string, plot_script, HMREC_DEFAULT_PLOT_SCRIPT, "Script that renders the training curve PNG");
ABSL_FLAG(std::string, ranker_plot_script, HMREC_DEFAULT_RANKER_PLOT_SCRIPT,
          "Script that renders the ranker's validation curve PNG");
ABSL_FLAG(bool, ranking, true, "Train the ranking stage when the config has a ranking section");
ABSL_FLAG(std::string, python, "/usr/bin/python3", "Python with matplotlib (Debian's python3-matplotlib) for the plot");
ABSL_FLAG(bool, quiet, false, "No progress lines");

namespace {
int Fail(const absl::Status& s) {
  std::fprintf(stderr, "trainer: %s\n", std::string(s.message()).c_str());
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Trains the two-tower model and exports a bundle");
  hmrec::PrepareProcess(argv);
  hmrec::ConfigureAllocator();
  absl::ParseCommandLine(argc, argv);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);

  hmrec::config::TrainerConfig cfg;
  absl::Status s = hmrec::ReadTextProto(absl::GetFlag(FLAGS_config), &cfg);
  if (!s.ok()) return Fail(s);
  if (!absl::GetFlag(FLAGS_device).empty()) cfg.set_device(absl::GetFlag(FLAGS_device));
  if (absl::GetFlag(FLAGS_epochs) >= 0) cfg.set_epochs(absl::GetFlag(FLAGS_epochs));
  if (absl::GetFlag(FLAGS_threads) >= 0) cfg.set_threads(absl::GetFlag(FLAGS_threads));
  const std::string data = absl::GetFlag(FLAGS_data), work = absl::GetFlag(FLAGS_work_dir),
                    bundles = absl::GetFlag(FLAGS_bundles);
  if (data.empty() || work.empty() || bundles.empty()) {
    return Fail(absl::InvalidArgumentError("--data, --work_dir and --bundles are required"));
  }
  hmrec::ConfigureThreads(cfg.threads());
  absl::StatusOr<hmrec::LaunchEnv> env = hmrec::ReadLaunchEnv();
  if (!env.ok()) return Fail(env.status());
  const bool rank0 = env->rank == 0;
  // Only rank 0 draws progress lines; the others report per epoch.
  const bool progress = !absl::GetFlag(FLAGS_quiet) && rank0;
  std::unique_ptr<hmrec::Collective> collective;
  if (env->distributed()) {
    // Before the rendezvous: a bad batch fails at once, not after the others wait.
    if (absl::Status s = hmrec::CheckGlobalBatch(cfg.batch_size(), env->world_size); !s.ok()) return Fail(s);
    const int t = cfg.distributed().timeout_seconds() > 0 ? cfg.distributed().timeout_seconds() : 1800;
    std::fprintf(stderr, "trainer: %s: waiting for the other ranks (timeout %d s)\n", env->Describe().c_str(), t);
    absl::StatusOr<std::unique_ptr<hmrec::Collective>> c =
        hmrec::Collective::Connect(*env, std::chrono::seconds(t), cfg.device().rfind("cuda", 0) == 0);
    if (!c.ok()) return Fail(c.status());
    collective = std::move(*c);
    std::fprintf(stderr, "trainer: %s: all %d ranks connected\n", env->Describe().c_str(), env->world_size);
  }

  hmrec::LoadOptions load;
  load.show_progress = progress;
  absl::StatusOr<std::unique_ptr<hmrec::Dataset>> ds = hmrec::LoadDataset(data, load);
  if (!ds.ok()) return Fail(ds.status());
  for (const std::string& extra : absl::GetFlag(FLAGS_extra_transactions)) {
    const size_t rows = (*ds)->transactions.size();
    absl::StatusOr<int64_t> added = hmrec::ReadExtraTransactions(extra, load, ds->get());
    if (!added.ok()) return Fail(added.status());
    std::fprintf(stderr, "trainer: %s: %zu more transactions, %lld customers not in customers.csv added\n",
                 extra.c_str(), (*ds)->transactions.size() - rows, static_cast<long long>(*added));
  }
  if (!absl::GetFlag(FLAGS_erasures).empty()) {
    absl::StatusOr<hmrec::ErasureReport> erased = hmrec::ApplyErasures(absl::GetFlag(FLAGS_erasures), ds->get());
    if (!erased.ok()) return Fail(erased.status());
    std::fprintf(stderr, "trainer: %s: %lld customers erased (%lld listed), %lld of their transactions left out\n",
                 absl::GetFlag(FLAGS_erasures).c_str(), static_cast<long long>(erased->customers),
                 static_cast<long long>(erased->listed), static_cast<long long>(erased->transactions));
  }
  std::fprintf(stderr, "trainer: %s\n", (*ds)->report.Summary().c_str());

  std::unique_ptr<hmrec::Holdout> holdout;
  if (!absl::GetFlag(FLAGS_holdout).empty() && rank0) {
    int64_t unknown = 0;
    absl::StatusOr<hmrec::Holdout> h = hmrec::ReadHoldout(absl::GetFlag(FLAGS_holdout), **ds, &unknown);
    if (!h.ok()) return Fail(h.status());
    holdout = std::make_unique<hmrec::Holdout>(std::move(*h));
    std::fprintf(stderr, "trainer: holdout of %zu customers (%lld not in customers.csv, left out)\n",
                 holdout->customers.size(), static_cast<long long>(unknown));
  }

  hmrec::TrainerOptions opts;
  opts.work_dir = work;
  opts.plot_script = absl::GetFlag(FLAGS_plot_script);
  opts.python = absl::GetFlag(FLAGS_python);
  opts.resume = absl::GetFlag(FLAGS_resume);
  opts.show_progress = !absl::GetFlag(FLAGS_quiet);
  opts.collective = collective.get();
  opts.eval_max_customers = absl::GetFlag(FLAGS_eval_max_customers);
  absl::StatusOr<std::unique_ptr<hmrec::Trainer>> trainer = hmrec::Trainer::Create(cfg, **ds, holdout.get(), opts);
  if (!trainer.ok()) return Fail(trainer.status());
  std::fprintf(stderr, "trainer: %lld examples, device %s, %d threads\n",
               static_cast<long long>((*trainer)->num_examples()), cfg.device().empty() ? "cpu" : cfg.device().c_str(),
               cfg.threads());
  absl::StatusOr<std::vector<hmrec::EpochMetrics>> metrics = (*trainer)->Train();
  if (!metrics.ok()) return Fail(metrics.status());
  if (collective) {
    std::fprintf(stderr, "trainer: %s: parameters digest %016llx\n", env->Describe().c_str(),
                 static_cast<unsigned long long>((*trainer)->ParameterDigest()));
    if (!rank0) return 0;  // rank 0 exports and trains the ranker
  }
  absl::StatusOr<std::string> bundle = (*trainer)->Export(bundles, absl::GetFlag(FLAGS_version));
  if (!bundle.ok()) return Fail(bundle.status());
  trainer->reset();  // the towers' training state is not needed any more: free it before the ranking stage
  hmrec::ReleaseFreeHeap();
  if (cfg.has_ranking() && absl::GetFlag(FLAGS_ranking)) {
    hmrec::RankingOptions ro;
    ro.work_dir = work;
    ro.show_progress = !absl::GetFlag(FLAGS_quiet);
    ro.plot_script = absl::GetFlag(FLAGS_ranker_plot_script);
    ro.python = absl::GetFlag(FLAGS_python);
    absl::StatusOr<hmrec::RankingReport> ranking = hmrec::TrainRanking(cfg, **ds, holdout.get(), *bundle, ro);
    if (!ranking.ok()) return Fail(ranking.status());
    std::fprintf(stderr, "trainer: ranking %s\n", ranking->Json().c_str());
  }
  std::fprintf(stderr, "trainer: wrote bundle %s\n", bundle->c_str());
  std::printf("%s\n", bundle->c_str());
  return 0;
}
