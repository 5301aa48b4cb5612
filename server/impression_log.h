#pragma once

// The impression log: what was served to whom, by which bundle and arm, for
// comparing a canary with the main bundle on the purchases that follow
// (`hmrec_evaluate arms`). One JSON line (config::ImpressionRecord) per
// customer of the sampled share (server/canary.h, a hash independent of the
// canary's) and per answered Recommend or personalised SimilarArticles call.
//
// Serving never waits for it: lines are queued (at most max_pending) and a
// writer thread appends them to the file (created mode 0600: it holds
// customer ids and what they were shown, not a log for people) or to a Redis
// stream every replica shares (events/redis_stream.h; one pipelined round
// trip per batch of lines); a full queue, or a sink that fails, drops lines,
// counted in hmrec_impressions_total{result="dropped"}. The file is reopened
// when it is moved away (logrotate's create mode), so it can be rotated
// without a restart. Thread-safe.

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "events/redis_stream.h"
#include "proto/config.pb.h"
#include "server/metrics.h"
#include "server/recommendation.h"

namespace hmrec {

class ImpressionLog {
 public:
  // Opens (creates) the file. `metrics` (may be null) counts lines.
  static absl::StatusOr<std::unique_ptr<ImpressionLog>> Open(const config::ImpressionLogConfig& config,
                                                             ServerMetrics* metrics);
  // Writes what is queued, then closes.
  ~ImpressionLog();

  // The sampled customers of one answered call: ids[i] got results[i]
  // (empty ids are skipped).
  void Add(const std::string& method, const std::vector<std::string>& ids, const std::vector<Recommendation>& results);

  // Blocks until every line queued before the call is written (tests).
  void Flush();

 private:
  ImpressionLog(config::ImpressionLogConfig config, ServerMetrics* metrics);
  void Run();
  absl::Status Reopen();

  const config::ImpressionLogConfig config_;
  ServerMetrics* metrics_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::deque<std::string> pending_;
  uint64_t queued_ = 0, written_ = 0;
  bool stopping_ = false;
  std::FILE* file_ = nullptr;
  ino_t inode_ = 0;
  std::optional<RedisStream> stream_;
  bool stream_failing_ = false;  // logged once per outage
  std::thread writer_;
};

}  // namespace hmrec
