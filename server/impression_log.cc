#include "server/impression_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/text_proto.h"
#include "data/dates.h"
#include "data/ids.h"
#include "google/protobuf/util/json_util.h"
#include "server/canary.h"

namespace hmrec {

ImpressionLog::ImpressionLog(config::ImpressionLogConfig config, ServerMetrics* metrics)
    : config_(std::move(config)), metrics_(metrics) {}

absl::StatusOr<std::unique_ptr<ImpressionLog>> ImpressionLog::Open(const config::ImpressionLogConfig& config,
                                                                   ServerMetrics* metrics) {
  std::unique_ptr<ImpressionLog> log(new ImpressionLog(config, metrics));
  if (!config.redis_stream().empty()) {
    RedisStream::Options o;
    o.address = config.redis_address();
    o.key = config.redis_stream();
    o.max_len = config.redis_max_len();
    if (!config.redis_password_file().empty()) {
      absl::StatusOr<std::string> text = ReadFileToString(config.redis_password_file());
      if (!text.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("impressions.redis_password_file ", config.redis_password_file(), ": cannot read it"));
      }
      o.password = std::string(absl::StripTrailingAsciiWhitespace(*text));
    }
    absl::StatusOr<RedisStream> stream = RedisStream::Open(std::move(o));
    if (!stream.ok()) return absl::InvalidArgumentError(absl::StrCat("impressions: ", stream.status().message()));
    log->stream_.emplace(*std::move(stream));
  } else if (absl::Status s = log->Reopen(); !s.ok()) {
    return s;
  }
  log->writer_ = std::thread([p = log.get()] { p->Run(); });
  return log;
}

absl::Status ImpressionLog::Reopen() {
  if (file_ != nullptr) std::fclose(file_);
  file_ = nullptr;
  const int fd = ::open(config_.path().c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("impressions.path ", config_.path(), ": ", std::strerror(errno)));
  }
  struct stat st {};
  fstat(fd, &st);
  inode_ = st.st_ino;
  file_ = fdopen(fd, "a");
  if (file_ == nullptr) {
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("impressions.path ", config_.path(), ": cannot open"));
  }
  return absl::OkStatus();
}

ImpressionLog::~ImpressionLog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (file_ != nullptr) std::fclose(file_);
}

void ImpressionLog::Add(const std::string& method, const std::vector<std::string>& ids,
                        const std::vector<Recommendation>& results) {
  std::vector<std::string> lines;
  std::string time;
  google::protobuf::util::JsonPrintOptions json;
  json.preserve_proto_field_names = true;
  for (size_t i = 0; i < ids.size() && i < results.size(); ++i) {
    if (ids[i].empty() || !InShare(ids[i], config_.sample_percent(), kImpressionSalt)) continue;
    const Recommendation& r = results[i];
    if (time.empty()) time = FormatUtcNow("%Y-%m-%dT%H:%M:%SZ");
    config::ImpressionRecord rec;
    rec.set_time(time);
    rec.set_customer_id(ids[i]);
    rec.set_method(method);
    rec.set_bundle_version(r.bundle_version);
    rec.set_arm(r.canary ? "canary" : "main");
    for (int32_t a : r.article_ids) rec.add_article_ids(FormatArticleId(a));
    std::string line;
    if (!google::protobuf::util::MessageToJsonString(rec, &line, json).ok()) continue;
    lines.push_back(std::move(line));
  }
  if (lines.empty()) return;
  size_t dropped = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (std::string& l : lines) {
      if (pending_.size() >= static_cast<size_t>(config_.max_pending())) {
        ++dropped;
        continue;
      }
      pending_.push_back(std::move(l));
      ++queued_;
    }
  }
  cv_.notify_one();
  if (dropped > 0 && metrics_ != nullptr) metrics_->CountImpressions(0, static_cast<double>(dropped));
}

void ImpressionLog::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = queued_;
  done_cv_.wait(lock, [&] { return written_ >= target; });
}

void ImpressionLog::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
    if (pending_.empty() && stopping_) return;
    std::deque<std::string> batch;
    batch.swap(pending_);
    lock.unlock();
    size_t ok = 0;
    if (stream_.has_value()) {
      const absl::Status s = stream_->Append({batch.begin(), batch.end()});
      if (s.ok()) ok = batch.size();
      if (!s.ok() && !stream_failing_) {
        std::fprintf(stderr, "server: impressions: %s; lines are dropped (counted) until it answers\n",
                     std::string(s.message()).c_str());
        std::fflush(stderr);
      }
      stream_failing_ = !s.ok();
    } else {
      // Rotated away (moved or deleted): a new file at the path.
      struct stat st {};
      if (stat(config_.path().c_str(), &st) != 0 || st.st_ino != inode_) Reopen().IgnoreError();
      for (const std::string& l : batch) {
        if (file_ != nullptr && std::fwrite(l.data(), 1, l.size(), file_) == l.size() &&
            std::fputc('\n', file_) != EOF) {
          ++ok;
        }
      }
      if (file_ != nullptr) std::fflush(file_);
    }
    if (metrics_ != nullptr)
      metrics_->CountImpressions(static_cast<double>(ok), static_cast<double>(batch.size() - ok));
    lock.lock();
    written_ += batch.size();
    done_cv_.notify_all();
  }
}

}  // namespace hmrec
