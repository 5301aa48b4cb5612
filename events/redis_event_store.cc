#include "events/redis_event_store.h"

#include <hiredis/hiredis.h>

#include <climits>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace hmrec {
namespace {

constexpr size_t kMaxIdle = 8;
constexpr char kNewestKey[] = "hmrec:newest_day";

std::string CustomerKey(absl::string_view id) { return absl::StrCat("hmrec:c:", id); }

// KEYS: newest_day, then per event its marker and its customer's list.
// ARGV: ttl seconds, horizon days, then per event its day and payload.
// Returns {recorded, duplicates, expired}.
constexpr char kRecordScript[] = R"lua(
local ttl = tonumber(ARGV[1])
local horizon = tonumber(ARGV[2])
local newest = tonumber(redis.call('GET', KEYS[1]) or '-2147483648')
for i = 3, #ARGV, 2 do
  local d = tonumber(ARGV[i])
  if d > newest then newest = d end
end
redis.call('SET', KEYS[1], newest)
local recorded, duplicates, expired = 0, 0, 0
for j = 0, (#KEYS - 1) / 2 - 1 do
  local marker, list = KEYS[2 + 2 * j], KEYS[3 + 2 * j]
  local day = tonumber(ARGV[3 + 2 * j])
  if redis.call('EXISTS', marker) == 1 then
    duplicates = duplicates + 1
  elseif day < newest - horizon then
    expired = expired + 1
  else
    redis.call('SET', marker, day, 'EX', ttl)
    redis.call('APPEND', list, ARGV[4 + 2 * j])
    redis.call('EXPIRE', list, ttl)
    recorded = recorded + 1
  end
end
return {recorded, duplicates, expired}
)lua";

}  // namespace

void RedisEventStore::ReplyFree::operator()(redisReply* r) const {
  if (r != nullptr) freeReplyObject(r);
}

RedisEventStore::RedisEventStore(std::string host, int port, int timeout_ms, int horizon_days, std::string password)
    : host_(std::move(host)),
      port_(port),
      address_(absl::StrCat(host_, ":", port)),
      timeout_ms_(timeout_ms),
      horizon_days_(horizon_days),
      password_(std::move(password)) {}

RedisEventStore::~RedisEventStore() {
  for (redisContext* c : idle_) redisFree(c);
}

absl::StatusOr<std::unique_ptr<RedisEventStore>> RedisEventStore::Open(const std::string& address, int timeout_ms,
                                                                       int horizon_days, std::string password) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("redis address '", address, "': expected host:port"));
  }
  return std::unique_ptr<RedisEventStore>(
      new RedisEventStore(address.substr(0, colon), port, timeout_ms, horizon_days, std::move(password)));
}

absl::Status RedisEventStore::Ping() {
  ASSIGN_OR_RETURN(Reply pong, Run({"PING"}, "PING"));
  if (pong->type == REDIS_REPLY_ERROR) {
    return absl::UnavailableError(absl::StrCat("event store redis ", address_, ": PING: ", pong->str));
  }
  return absl::OkStatus();
}

absl::Status RedisEventStore::Error(const std::string& what, redisContext* c) const {
  const std::string why = c != nullptr && c->err != 0 ? c->errstr : "error reply";
  return absl::UnavailableError(absl::StrCat("event store redis ", address_, ": ", what, ": ", why));
}

absl::StatusOr<redisContext*> RedisEventStore::Acquire(bool* reused) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    *reused = !idle_.empty();
    if (*reused) {
      redisContext* c = idle_.back();
      idle_.pop_back();
      return c;
    }
  }
  const timeval tv{timeout_ms_ / 1000, (timeout_ms_ % 1000) * 1000};
  redisContext* c = redisConnectWithTimeout(host_.c_str(), port_, tv);
  if (c == nullptr || c->err != 0) {
    absl::Status e = Error("cannot connect", c);
    if (c != nullptr) redisFree(c);
    return e;
  }
  redisSetTimeout(c, tv);
  if (!password_.empty()) {
    Reply auth(static_cast<redisReply*>(redisCommand(c, "AUTH %b", password_.data(), password_.size())));
    if (auth == nullptr || auth->type == REDIS_REPLY_ERROR) {
      // Redis's reply names the failure (WRONGPASS ...), never the password.
      absl::Status e =
          auth == nullptr
              ? Error("AUTH", c)
              : absl::UnavailableError(absl::StrCat("event store redis ", address_, ": AUTH refused: ", auth->str));
      redisFree(c);
      return e;
    }
  }
  return c;
}

void RedisEventStore::Release(redisContext* c, bool healthy) {
  if (healthy && c->err == 0) {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < kMaxIdle) {
      idle_.push_back(c);
      return;
    }
  }
  redisFree(c);
}

absl::StatusOr<RecordCounts> RedisEventStore::Record(const std::vector<RecordedPurchase>& events) {
  RecordCounts counts;
  if (events.empty()) return counts;
  std::vector<std::string> args = {"EVAL", kRecordScript, std::to_string(1 + 2 * events.size()), kNewestKey};
  args.reserve(4 + 4 * events.size() + 2);
  for (const RecordedPurchase& p : events) {
    args.push_back(absl::StrCat("hmrec:e:", p.event.event_id()));
    args.push_back(CustomerKey(p.customer_id));
  }
  args.push_back(std::to_string(static_cast<int64_t>(horizon_days_) * 86400));
  args.push_back(std::to_string(horizon_days_));
  for (const RecordedPurchase& p : events) {
    args.push_back(std::to_string(p.event.day()));
    // Length-prefixed: a customer's events are one string, appended to.
    const std::string bytes = p.event.SerializeAsString();
    const uint32_t n = static_cast<uint32_t>(bytes.size());
    std::string framed(reinterpret_cast<const char*>(&n), sizeof(n));
    framed += bytes;
    args.push_back(std::move(framed));
  }
  ASSIGN_OR_RETURN(Reply r, Run(args, "EVAL (record)"));
  if (r->type == REDIS_REPLY_ERROR) {
    return absl::UnavailableError(absl::StrCat("event store redis ", address_, ": record: ", r->str));
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
    return absl::InternalError(absl::StrCat("event store redis ", address_, ": unexpected reply to the record script"));
  }
  counts.recorded = static_cast<int>(r->element[0]->integer);
  counts.duplicates = static_cast<int>(r->element[1]->integer);
  counts.expired = static_cast<int>(r->element[2]->integer);
  return counts;
}

absl::StatusOr<RedisEventStore::Reply> RedisEventStore::Run(const std::vector<std::string>& args, const char* what) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  // A pooled connection may have died with a Redis restart: once more on a
  // new one (both commands are safe to repeat).
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    ASSIGN_OR_RETURN(redisContext * c, Acquire(&reused));
    Reply r(static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), const_cast<const char**>(argv.data()), lens.data())));
    if (r != nullptr) {
      Release(c, true);
      return r;
    }
    absl::Status e = Error(what, c);
    Release(c, false);
    if (!reused || attempt > 0) return e;
  }
}

absl::Status RedisEventStore::Corrupt(absl::string_view customer_id) const {
  return absl::DataLossError(
      absl::StrCat("event store redis ", address_, ": the events of customer ", customer_id, " do not parse"));
}

absl::Status RedisEventStore::Lookup(const std::vector<absl::string_view>& customer_ids,
                                     std::vector<std::vector<config::StoredEvent>>* out) {
  out->assign(customer_ids.size(), {});
  if (customer_ids.empty()) return absl::OkStatus();
  // One round trip, one command: the newest day and every customer's events.
  std::vector<std::string> keys = {"MGET", kNewestKey};
  keys.reserve(customer_ids.size() + 2);
  for (absl::string_view id : customer_ids) keys.push_back(CustomerKey(id));
  ASSIGN_OR_RETURN(Reply r, Run(keys, "MGET"));
  if (r->type != REDIS_REPLY_ARRAY || r->elements != customer_ids.size() + 1) {
    return absl::UnavailableError(absl::StrCat("event store redis ", address_,
                                               ": MGET: ", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply"));
  }
  int64_t newest = INT32_MIN;
  const redisReply* day = r->element[0];
  if (day->type == REDIS_REPLY_STRING) absl::SimpleAtoi(absl::string_view(day->str, day->len), &newest);
  const int64_t cutoff = newest - horizon_days_;
  config::StoredEvent e;
  for (size_t i = 0; i < customer_ids.size(); ++i) {
    const redisReply* item = r->element[i + 1];
    if (item->type != REDIS_REPLY_STRING) continue;  // nil: no events
    absl::string_view rest(item->str, item->len);
    while (!rest.empty()) {
      uint32_t n = 0;
      if (rest.size() < sizeof(n)) return Corrupt(customer_ids[i]);
      std::memcpy(&n, rest.data(), sizeof(n));
      rest.remove_prefix(sizeof(n));
      if (rest.size() < n || !e.ParseFromArray(rest.data(), static_cast<int>(n))) return Corrupt(customer_ids[i]);
      rest.remove_prefix(n);
      if (e.day() >= cutoff) (*out)[i].push_back(e);
    }
  }
  return absl::OkStatus();
}

}  // namespace hmrec
