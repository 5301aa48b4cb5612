// server: serves Recommend over gRPC from a sealed bundle.
//
//   hmrec_server --config configs/server.pbtxt [--listen 127.0.0.1:0] [--bundle B/current]
//
// Prints "listening on HOST:PORT" on stderr when ready. SIGHUP: look for a
// new bundle now (hot swap; bundle_path is also polled) and re-read the keys
// file (auth { keys_file }; also polled). SIGTERM/SIGINT:
// health goes NOT_SERVING, new calls are refused, in-flight calls get
// shutdown_grace_seconds to finish, exit 0.

#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "common/runtime.h"
#include "glog/logging.h"
#include "server/server.h"
#include "server/server_config.h"

ABSL_FLAG(std::string, config, "configs/server.pbtxt", "ServerConfig, text format");
ABSL_FLAG(std::string, listen, "", "Overrides the config's listen_address");
ABSL_FLAG(std::string, bundle, "", "Overrides the config's bundle_path");
ABSL_FLAG(std::string, metrics, "", "Overrides the config's metrics_address (\"off\" disables)");
ABSL_FLAG(std::string, events, "", "Overrides the config's events.backend: rocksdb (embedded), redis or off");
ABSL_FLAG(std::string, events_path, "",
          "Overrides the config's events.path (the embedded store's directory; one server at a time)");
ABSL_FLAG(std::string, http, "", "Overrides the config's http_address (\"off\" disables)");
ABSL_FLAG(std::string, ranking, "", "Overrides the config's ranking: on (the bundle's ranker) or off (retrieval only)");
ABSL_FLAG(std::string, ranker_evaluator, "",
          "Overrides the config's ranker_evaluator: native (the forest laid out for the CPU) or xgboost");

namespace {
int Fail(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "server: %s: %s\n", what.c_str(), std::string(s.message()).c_str());
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  hmrec::PrepareProcess(argv, {.heap_huge_pages = true});
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
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<hmrec::config::ServerConfig> read = hmrec::ReadServerConfig(absl::GetFlag(FLAGS_config));
  if (!read.ok()) return Fail("bad config", read.status());
  hmrec::config::ServerConfig cfg = *read;
  if (!absl::GetFlag(FLAGS_listen).empty()) cfg.set_listen_address(absl::GetFlag(FLAGS_listen));
  if (!absl::GetFlag(FLAGS_bundle).empty()) cfg.set_bundle_path(absl::GetFlag(FLAGS_bundle));
  if (!absl::GetFlag(FLAGS_ranking).empty()) cfg.set_ranking(absl::GetFlag(FLAGS_ranking));
  if (!absl::GetFlag(FLAGS_ranker_evaluator).empty()) cfg.set_ranker_evaluator(absl::GetFlag(FLAGS_ranker_evaluator));
  if (!absl::GetFlag(FLAGS_http).empty()) {
    cfg.set_http_address(absl::GetFlag(FLAGS_http) == "off" ? "" : absl::GetFlag(FLAGS_http));
  }
  if (!absl::GetFlag(FLAGS_events).empty()) cfg.mutable_events()->set_backend(absl::GetFlag(FLAGS_events));
  if (!absl::GetFlag(FLAGS_events_path).empty()) cfg.mutable_events()->set_path(absl::GetFlag(FLAGS_events_path));
  if (absl::GetFlag(FLAGS_metrics) == "off") {
    cfg.clear_metrics_address();
  } else if (!absl::GetFlag(FLAGS_metrics).empty()) {
    cfg.set_metrics_address(absl::GetFlag(FLAGS_metrics));
  }
  absl::StatusOr<std::unique_ptr<hmrec::Server>> server = hmrec::Server::Start(cfg);
  if (!server.ok()) return Fail("cannot start", server.status());
  const std::string host = cfg.listen_address().substr(0, cfg.listen_address().rfind(':'));
  std::fprintf(stderr, "server: bundle %s, listening on %s:%d\n", (*server)->version().c_str(), host.c_str(),
               (*server)->port());
  const std::string ranked =
      absl::StrCat("ranked by the bundle's ranker (", (*server)->ranker_evaluator(), " evaluator)");
  std::fprintf(stderr, "server: search kernel %s, %s\n", (*server)->search_kernel().c_str(),
               (*server)->ranking() ? ranked.c_str() : "retrieval only (no ranker, or ranking off)");
  std::fprintf(stderr, "server: %s\n", hmrec::HeapPagesStatus().c_str());
  const char* scheme = cfg.tls().cert_file().empty() ? "http" : "https";
  if ((*server)->metrics_port() > 0) {
    std::fprintf(stderr, "server: metrics on %s://%s:%d/metrics\n", scheme,
                 cfg.metrics_address().substr(0, cfg.metrics_address().rfind(':')).c_str(), (*server)->metrics_port());
  }
  if ((*server)->http_port() > 0) {
    std::fprintf(stderr, "server: HTTP/JSON API on %s://%s:%d/v1/recommend, inspector page /inspect\n", scheme,
                 cfg.http_address().substr(0, cfg.http_address().rfind(':')).c_str(), (*server)->http_port());
  }
  std::fflush(stderr);

  int sig = 0;
  while (true) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP) break;
    std::fprintf(stderr, "server: SIGHUP: checking %s for a new bundle%s\n", cfg.bundle_path().c_str(),
                 cfg.auth().keys_file().empty() ? "" : " and re-reading the keys file");
    (*server)->RequestReload();
  }
  std::fprintf(stderr, "server: signal %d: draining\n", sig);
  (*server)->Drain();
  std::fprintf(stderr, "server: stopped\n");
  return 0;
}
