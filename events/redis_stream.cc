#include "events/redis_stream.h"

#include <hiredis/hiredis.h>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "events/redis_connection.h"

namespace hmrec {
namespace {

using redis::Reply;

Reply Command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return Reply(static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data())));
}

}  // namespace

RedisStream::RedisStream(Options options, std::string host, int port)
    : options_(std::move(options)), host_(std::move(host)), port_(port) {}

RedisStream::RedisStream(RedisStream&& other) noexcept
    : options_(std::move(other.options_)),
      host_(std::move(other.host_)),
      port_(other.port_),
      c_(other.c_),
      next_try_(other.next_try_) {
  other.c_ = nullptr;
}

RedisStream::~RedisStream() {
  if (c_ != nullptr) redisFree(c_);
}

absl::StatusOr<RedisStream> RedisStream::Open(Options options) {
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(redis::ParseAddress(options.address, &host, &port));
  if (options.key.empty()) return absl::InvalidArgumentError("the redis stream's key is empty");
  return RedisStream(std::move(options), std::move(host), port);
}

absl::Status RedisStream::Failed(const std::string& what) {
  const std::string why = c_ != nullptr && c_->err != 0 ? c_->errstr : what;
  if (c_ != nullptr) redisFree(c_);
  c_ = nullptr;
  next_try_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.retry_ms);
  return absl::UnavailableError(absl::StrCat(Describe(), ": ", why));
}

absl::Status RedisStream::Connect() {
  if (c_ != nullptr) return absl::OkStatus();
  if (std::chrono::steady_clock::now() < next_try_) {
    return absl::UnavailableError(absl::StrCat(Describe(), ": not answering; tried again shortly"));
  }
  absl::StatusOr<redisContext*> c =
      redis::Connect(host_, port_, std::chrono::milliseconds(options_.timeout_ms), options_.password, Describe());
  if (!c.ok()) {
    next_try_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.retry_ms);
    return c.status();
  }
  c_ = *c;
  return absl::OkStatus();
}

absl::Status RedisStream::Append(const std::vector<std::string>& lines) {
  if (lines.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(Connect());
  const std::string max_len = std::to_string(options_.max_len);
  for (const std::string& line : lines) {
    const char* argv[] = {"XADD", options_.key.c_str(), "MAXLEN", "~", max_len.c_str(), "*", "line", line.c_str()};
    const size_t lens[] = {4, options_.key.size(), 6, 1, max_len.size(), 1, 4, line.size()};
    if (redisAppendCommandArgv(c_, 8, argv, lens) != REDIS_OK) return Failed("XADD");
  }
  std::string refused;
  for (size_t i = 0; i < lines.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(c_, &raw) != REDIS_OK) return Failed("XADD");
    Reply r(static_cast<redisReply*>(raw));
    if (r->type == REDIS_REPLY_ERROR && refused.empty()) refused = r->str;
  }
  if (!refused.empty()) return absl::UnavailableError(absl::StrCat(Describe(), ": XADD: ", refused));
  return absl::OkStatus();
}

absl::Status RedisStream::ForEach(const std::function<absl::Status(absl::string_view line)>& fn) {
  RETURN_IF_ERROR(Connect());
  std::string start = "-";
  while (true) {
    Reply page = Command(c_, {"XRANGE", options_.key, start, "+", "COUNT", "1000"});
    if (page == nullptr) return Failed("XRANGE");
    if (page->type == REDIS_REPLY_ERROR) return absl::UnavailableError(absl::StrCat(Describe(), ": ", page->str));
    if (page->type != REDIS_REPLY_ARRAY) return absl::UnavailableError(absl::StrCat(Describe(), ": XRANGE reply"));
    if (page->elements == 0) return absl::OkStatus();
    for (size_t i = 0; i < page->elements; ++i) {
      const redisReply* entry = page->element[i];
      if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) continue;
      const redisReply* fields = entry->element[1];
      for (size_t f = 0; f + 1 < fields->elements; f += 2) {
        if (absl::string_view(fields->element[f]->str, fields->element[f]->len) == "line") {
          RETURN_IF_ERROR(fn(absl::string_view(fields->element[f + 1]->str, fields->element[f + 1]->len)));
        }
      }
      // The next page starts after this id (an exclusive range).
      if (i + 1 == page->elements)
        start = absl::StrCat("(", std::string(entry->element[0]->str, entry->element[0]->len));
    }
    if (page->elements < 1000) return absl::OkStatus();
  }
}

}  // namespace hmrec
