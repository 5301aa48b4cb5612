// server: serves Recommend over gRPC from a sealed bundle.
//
//   hmrec_server --config configs/server.pbtxt [--listen 127.0.0.1:0] [--bundle B/current]
//
// Prints "listening on HOST:PORT" on stderr when ready. SIGTERM/SIGINT:
// health goes NOT_SERVING, new calls are refused, in-flight calls get
// shutdown_grace_seconds to finish, exit 0.

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/model/tower_runner.h"
#include "common/runtime.h"
#include "common/text_proto.h"
#include "glog/logging.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"
#include "server/batch_queue.h"
#include "server/metrics.h"
#include "server/recommender.h"
#include "server/service.h"

ABSL_FLAG(std::string, config, "configs/server.pbtxt", "ServerConfig, text format");
ABSL_FLAG(std::string, listen, "", "Overrides the config's listen_address");
ABSL_FLAG(std::string, bundle, "", "Overrides the config's bundle_path");
ABSL_FLAG(std::string, metrics, "", "Overrides the config's metrics_address (\"off\" disables)");

namespace {
int Fail(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "server: %s: %s\n", what.c_str(), std::string(s.message()).c_str());
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  hmrec::ConfigureAllocator();
  absl::SetProgramUsageMessage("Serves Recommend over gRPC from a sealed bundle");
  absl::ParseCommandLine(argc, argv);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);

  // Signals are taken by a dedicated thread (sigwait), never by handlers.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  hmrec::config::ServerConfig cfg;
  absl::Status s = hmrec::ReadTextProto(absl::GetFlag(FLAGS_config), &cfg);
  if (!s.ok()) return Fail("bad config", s);
  if (!absl::GetFlag(FLAGS_listen).empty()) cfg.set_listen_address(absl::GetFlag(FLAGS_listen));
  if (!absl::GetFlag(FLAGS_bundle).empty()) cfg.set_bundle_path(absl::GetFlag(FLAGS_bundle));
  if (absl::GetFlag(FLAGS_metrics) == "off") {
    cfg.clear_metrics_address();
  } else if (!absl::GetFlag(FLAGS_metrics).empty()) {
    cfg.set_metrics_address(absl::GetFlag(FLAGS_metrics));
  }
  hmrec::ConfigureThreads(cfg.compute_threads());

  std::error_code ec;
  const std::string bundle = std::filesystem::canonical(cfg.bundle_path(), ec).string();
  if (ec) return Fail("cannot start", absl::NotFoundError("no bundle at " + cfg.bundle_path()));
  hmrec::RecommenderOptions ro;
  ro.device = cfg.device().empty() ? "cpu" : cfg.device();
  ro.ivf_nprobe = cfg.ivf_nprobe();
  ro.hnsw_ef_search = cfg.hnsw_ef_search();
  const int workers = std::max(1, cfg.workers());
  std::vector<std::unique_ptr<hmrec::Recommender>> recommenders;
  for (int w = 0; w < workers; ++w) {
    auto r = hmrec::Recommender::Load(bundle, ro);
    if (!r.ok()) return Fail("cannot start from bundle " + bundle, r.status());
    recommenders.push_back(std::move(*r));
  }
  const std::string version = recommenders[0]->version();

  auto registry = std::make_shared<prometheus::Registry>();
  hmrec::ServerMetrics metrics(*registry);
  metrics.SetBundle(version);
  std::unique_ptr<prometheus::Exposer> exposer;
  if (!cfg.metrics_address().empty()) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(cfg.metrics_address());
    } catch (const std::exception& e) {
      return Fail("cannot serve metrics on " + cfg.metrics_address(), absl::UnavailableError(e.what()));
    }
    exposer->RegisterCollectable(registry);
  }

  hmrec::BatchQueueOptions qo;
  if (cfg.max_batch_ids() > 0) qo.max_batch_ids = cfg.max_batch_ids();
  if (cfg.max_delay_us() > 0) qo.max_delay = std::chrono::microseconds(cfg.max_delay_us());
  if (cfg.max_queued_ids() > 0) qo.max_queued_ids = cfg.max_queued_ids();
  std::vector<hmrec::Recommender*> workers_recommenders;
  for (auto& r : recommenders) workers_recommenders.push_back(r.get());
  hmrec::BatchQueue queue(qo, hmrec::MakeProcessor(workers_recommenders, &metrics), hmrec::MakeBatchObserver(&metrics));
  queue.Start(workers);

  hmrec::RequestLimits limits;
  if (cfg.max_k() > 0) limits.max_k = cfg.max_k();
  if (cfg.max_ids_per_request() > 0) limits.max_ids = cfg.max_ids_per_request();
  hmrec::RecommenderService service(&queue, limits, version, &metrics);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(cfg.listen_address(), grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(16 << 20);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    return Fail("cannot start", absl::UnavailableError("cannot listen on " + cfg.listen_address()));
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  const std::string host = cfg.listen_address().substr(0, cfg.listen_address().rfind(':'));
  std::fprintf(stderr, "server: bundle %s, listening on %s:%d\n", version.c_str(), host.c_str(), port);
  if (exposer) {
    std::fprintf(stderr, "server: metrics on http://%s:%d/metrics\n",
                 cfg.metrics_address().substr(0, cfg.metrics_address().rfind(':')).c_str(),
                 exposer->GetListeningPorts().empty() ? 0 : exposer->GetListeningPorts()[0]);
  }
  std::fflush(stderr);

  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "server: signal %d: draining\n", sig);
  server->GetHealthCheckService()->SetServingStatus(false);
  const int grace = cfg.shutdown_grace_seconds() > 0 ? cfg.shutdown_grace_seconds() : 10;
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(grace));
  queue.Shutdown();
  server->Wait();
  std::fprintf(stderr, "server: stopped\n");
  return 0;
}
