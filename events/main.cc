// hmrec_events: what the event store holds, for the retrain job.
//
//   hmrec_events export --out FILE.csv [--since YYYY-MM-DD]
//       (--backend rocksdb --path DIR | --backend redis --redis_address HOST:PORT [--redis_password_file F])
//
// Writes every recorded purchase (deduplicated by event id) in the layout of
// transactions_train.csv, for `hmrec_trainer --extra_transactions FILE`. The
// embedded store is exported with its server stopped (RocksDB lets one
// process open it); Redis while the servers run.
//
//   hmrec_events erasures --out FILE.csv (--backend ...)
//
// Writes the erasure list (customers erased by EraseCustomer), for
// `hmrec_trainer --erasures FILE` and `hmrec_index_builder --erasures FILE`.
//
//   hmrec_events impressions --stream KEY --out FILE.jsonl --redis_address HOST:PORT [--redis_password_file F]
//
// Writes the impression log the servers append to a Redis stream
// (ServerConfig.impressions.redis_stream), one JSON line per entry, for
// `hmrec_evaluate arms --impressions FILE`.

#include <climits>
#include <cstdio>
#include <ostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "common/text_proto.h"
#include "data/dates.h"
#include "events/event_store.h"
#include "events/export.h"
#include "events/redis_stream.h"

ABSL_FLAG(std::string, backend, "rocksdb", "rocksdb or redis");
ABSL_FLAG(std::string, path, "", "rocksdb: the store's directory (the server's events.path)");
ABSL_FLAG(std::string, redis_address, "127.0.0.1:6379", "redis: host:port");
ABSL_FLAG(std::string, redis_password_file, "", "redis: a file holding the password (none: no AUTH)");
ABSL_FLAG(std::string, out, "", "The CSV to write (export: transactions_train.csv layout; erasures: customer_id)");
ABSL_FLAG(std::string, since, "", "Only events dated this day (YYYY-MM-DD) or later");
ABSL_FLAG(std::string, stream, "", "impressions: the Redis stream's key (the servers' impressions.redis_stream)");

namespace {
int Fail(const absl::Status& s) {
  std::fprintf(stderr, "events: %s\n", std::string(s.message()).c_str());
  return 1;
}
// The servers' impression stream to a file, atomically.
int Impressions() {
  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty() || absl::GetFlag(FLAGS_stream).empty()) {
    return Fail(absl::InvalidArgumentError("impressions needs --stream and --out"));
  }
  hmrec::RedisStream::Options o;
  o.address = absl::GetFlag(FLAGS_redis_address);
  o.key = absl::GetFlag(FLAGS_stream);
  o.timeout_ms = 10000;
  if (!absl::GetFlag(FLAGS_redis_password_file).empty()) {
    absl::StatusOr<std::string> text = hmrec::ReadFileToString(absl::GetFlag(FLAGS_redis_password_file));
    if (!text.ok()) return Fail(text.status());
    o.password = std::string(absl::StripTrailingAsciiWhitespace(*text));
  }
  absl::StatusOr<hmrec::RedisStream> stream = hmrec::RedisStream::Open(o);
  if (!stream.ok()) return Fail(stream.status());
  int64_t lines = 0;
  absl::Status written = hmrec::WriteFileAtomically(out, [&](std::ostream& f) {
    return stream->ForEach([&](absl::string_view line) {
      f << line << '\n';
      ++lines;
      return absl::OkStatus();
    });
  });
  if (!written.ok()) return Fail(written);
  std::fprintf(stderr, "events: wrote %lld impressions from %s to %s\n", static_cast<long long>(lines),
               stream->Describe().c_str(), out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "hmrec_events export --out FILE [--since DAY] [--backend ...]: recorded purchases; hmrec_events erasures --out "
      "FILE [--backend ...]: the erasure list");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  const std::string command = args.size() == 2 ? args[1] : "";
  if (command != "export" && command != "erasures" && command != "impressions") {
    std::fprintf(stderr,
                 "usage: hmrec_events export --out FILE.csv [--since YYYY-MM-DD] [flags]\n"
                 "       hmrec_events erasures --out FILE.csv [flags]\n"
                 "       hmrec_events impressions --stream KEY --out FILE.jsonl --redis_address HOST:PORT (--help)\n");
    return 2;
  }
  if (command == "impressions") return Impressions();
  if (absl::GetFlag(FLAGS_out).empty()) return Fail(absl::InvalidArgumentError("--out is required"));
  int32_t since = INT32_MIN;
  if (!absl::GetFlag(FLAGS_since).empty()) {
    absl::StatusOr<int32_t> day = hmrec::ParseDate(absl::GetFlag(FLAGS_since));
    if (!day.ok())
      return Fail(absl::InvalidArgumentError("--since " + absl::GetFlag(FLAGS_since) + ": not YYYY-MM-DD"));
    since = *day;
  }
  hmrec::config::EventStoreConfig c;
  c.set_backend(absl::GetFlag(FLAGS_backend));
  c.set_path(absl::GetFlag(FLAGS_path));
  c.set_redis_address(absl::GetFlag(FLAGS_redis_address));
  c.set_redis_password_file(absl::GetFlag(FLAGS_redis_password_file));
  if (c.backend() == "rocksdb" && c.path().empty()) return Fail(absl::InvalidArgumentError("rocksdb needs --path"));
  c = hmrec::WithEventDefaults(c, "");
  absl::Status valid = hmrec::ValidateEventConfig(c);
  if (!valid.ok()) return Fail(valid);
  auto store = hmrec::OpenEventStore(c);
  if (!store.ok()) return Fail(store.status());
  if (command == "erasures") {
    auto erased = hmrec::ExportErasures(**store, absl::GetFlag(FLAGS_out));
    if (!erased.ok()) return Fail(erased.status());
    std::fprintf(stderr, "events: wrote %lld erased customers from %s to %s\n", static_cast<long long>(*erased),
                 (*store)->Describe().c_str(), absl::GetFlag(FLAGS_out).c_str());
    return 0;
  }
  auto report = hmrec::ExportEvents(**store, since, absl::GetFlag(FLAGS_out));
  if (!report.ok()) return Fail(report.status());
  std::fprintf(stderr,
               "events: wrote %lld purchases of %lld customers from %s to %s (%lld duplicate event ids, %lld before "
               "--since, %lld erased customers left out)\n",
               static_cast<long long>(report->events), static_cast<long long>(report->customers),
               (*store)->Describe().c_str(), absl::GetFlag(FLAGS_out).c_str(),
               static_cast<long long>(report->duplicates), static_cast<long long>(report->before_since),
               static_cast<long long>(report->erased));
  return 0;
}
