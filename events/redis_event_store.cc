#include "events/redis_event_store.h"

#include <hiredis/hiredis.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace hmrec {
namespace {

constexpr size_t kMaxIdle = 8;

std::string CustomerKey(absl::string_view id) { return absl::StrCat("hmrec:c:", id); }
std::string CountKey(absl::string_view id) { return absl::StrCat("hmrec:n:", id); }
constexpr char kErasedKey[] = "hmrec:erased";

// True when Redis closed the connection (a restart): worth one retry on a
// new connection. A timeout is not: Redis is slow or hung.
bool ClosedByPeer(const redisContext* c) {
  if (c->err == REDIS_ERR_EOF) return true;
  return c->err == REDIS_ERR_IO &&
         (std::strstr(c->errstr, "reset by peer") != nullptr || std::strstr(c->errstr, "Broken pipe") != nullptr);
}

// KEYS: per event its marker, its customer's list and count; last, the
// erasure list. ARGV: ttl seconds, the horizon's first day, the per-customer
// cap, then per event its day, payload and customer id. Returns
// {recorded, duplicates, expired, erased}.
constexpr char kRecordScript[] = R"lua(
local ttl = tonumber(ARGV[1])
local first = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local erasures = KEYS[#KEYS]
local recorded, duplicates, expired, erased = 0, 0, 0, 0
for j = 0, (#KEYS - 1) / 3 - 1 do
  local marker, list, count = KEYS[1 + 3 * j], KEYS[2 + 3 * j], KEYS[3 + 3 * j]
  local day = tonumber(ARGV[4 + 3 * j])
  if redis.call('EXISTS', marker) == 1 then
    duplicates = duplicates + 1
  elseif day < first then
    expired = expired + 1
  elseif redis.call('SISMEMBER', erasures, ARGV[6 + 3 * j]) == 1 then
    erased = erased + 1
  else
    redis.call('SET', marker, day, 'EX', ttl)
    redis.call('APPEND', list, ARGV[5 + 3 * j])
    if redis.call('INCR', count) > 2 * cap then
      -- Keep the last `cap` frames (4-byte little-endian length, payload).
      local s = redis.call('GET', list)
      local starts, pos = {}, 1
      while pos <= #s do
        starts[#starts + 1] = pos
        local n = struct.unpack('<I4', s, pos)
        pos = pos + 4 + n
      end
      redis.call('SET', list, string.sub(s, starts[#starts - cap + 1]))
      redis.call('SET', count, cap)
    end
    redis.call('EXPIRE', list, ttl)
    redis.call('EXPIRE', count, ttl)
    recorded = recorded + 1
  end
end
return {recorded, duplicates, expired, erased}
)lua";

// KEYS: per customer its list and count; last, the erasure list. ARGV: the
// customer ids. Returns {ids new to the list, events deleted}.
constexpr char kEraseScript[] = R"lua(
local erasures = KEYS[#KEYS]
local added, events = 0, 0
for j = 0, (#KEYS - 1) / 2 - 1 do
  local list, count = KEYS[1 + 2 * j], KEYS[2 + 2 * j]
  local n = redis.call('GET', count)
  if n then events = events + tonumber(n) end
  redis.call('DEL', list, count)
  added = added + redis.call('SADD', erasures, ARGV[1 + j])
end
return {added, events}
)lua";

}  // namespace

RedisEventStore::RedisEventStore(Options options, std::string host, int port)
    : options_(std::move(options)), host_(std::move(host)), port_(port), address_(absl::StrCat(host_, ":", port)) {
  prober_ = std::thread([this] { Probe(); });
}

RedisEventStore::~RedisEventStore() {
  {
    std::lock_guard<std::mutex> lock(probe_mu_);
    stopping_ = true;
  }
  probe_cv_.notify_all();
  prober_.join();
  for (redisContext* c : idle_) redisFree(c);
}

absl::StatusOr<std::unique_ptr<RedisEventStore>> RedisEventStore::Open(const Options& options) {
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(redis::ParseAddress(options.address, &host, &port));
  return std::unique_ptr<RedisEventStore>(new RedisEventStore(options, std::move(host), port));
}

absl::Status RedisEventStore::Ping() {
  // A probe goes through an open breaker.
  absl::StatusOr<Reply> pong = Run({"PING"}, "PING", std::chrono::milliseconds(options_.timeout_ms), true);
  absl::Status s = pong.status();
  if (pong.ok() && (*pong)->type == REDIS_REPLY_ERROR) {
    s = absl::UnavailableError(absl::StrCat("event store redis ", address_, ": PING: ", (*pong)->str));
    Trip(s);
  }
  if (s.ok() && !up_.exchange(true)) {
    reported_.store(false);
    {
      std::lock_guard<std::mutex> lock(listener_mu_);
      if (listener_) listener_(true);
    }
    std::fprintf(stderr, "server: event store redis %s answers again\n", address_.c_str());
    std::fflush(stderr);
  }
  return s;
}

void RedisEventStore::OnStateChange(std::function<void(bool up)> listener) {
  std::lock_guard<std::mutex> lock(listener_mu_);
  listener_ = std::move(listener);
}

void RedisEventStore::Trip(const absl::Status& why) {
  {
    std::lock_guard<std::mutex> lock(listener_mu_);
    last_error_ = std::string(why.message());
  }
  if (up_.exchange(false)) {
    std::lock_guard<std::mutex> lock(listener_mu_);
    if (listener_) listener_(false);
  }
  if (!reported_.exchange(true)) {
    std::fprintf(stderr, "server: %s; recorded purchases are off until it answers (probed every %d ms)\n",
                 std::string(why.message()).c_str(), options_.probe_interval_ms);
    std::fflush(stderr);
  }
  probe_cv_.notify_all();
}

void RedisEventStore::Probe() {
  std::unique_lock<std::mutex> lock(probe_mu_);
  while (!stopping_) {
    if (up_.load()) {
      probe_cv_.wait(lock, [this] { return stopping_ || !up_.load(); });
      continue;
    }
    probe_cv_.wait_for(lock, std::chrono::milliseconds(options_.probe_interval_ms), [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    Ping().IgnoreError();
    lock.lock();
  }
}

absl::Status RedisEventStore::CheckDurability() {
  for (const auto& [setting, wanted] : {std::pair<const char*, const char*>{"appendonly", "yes"},
                                        std::pair<const char*, const char*>{"appendfsync", "always"}}) {
    ASSIGN_OR_RETURN(Reply r,
                     Run({"CONFIG", "GET", setting}, "CONFIG GET", std::chrono::milliseconds(options_.timeout_ms)));
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[1]->type != REDIS_REPLY_STRING) {
      return absl::UnavailableError(absl::StrCat("event store redis ", address_, ": cannot read ", setting,
                                                 r->type == REDIS_REPLY_ERROR ? absl::StrCat(": ", r->str) : ""));
    }
    const std::string value(r->element[1]->str, r->element[1]->len);
    if (value != wanted) {
      return absl::FailedPreconditionError(absl::StrCat("event store redis ", address_, " has ", setting, " ", value,
                                                        ", not ", wanted,
                                                        ": an acknowledged purchase could be lost in a crash"));
    }
  }
  return absl::OkStatus();
}

absl::Status RedisEventStore::Error(const std::string& what, redisContext* c) const {
  const std::string why = c != nullptr && c->err != 0 ? c->errstr : "error reply";
  return absl::UnavailableError(absl::StrCat("event store redis ", address_, ": ", what, ": ", why));
}

absl::StatusOr<redisContext*> RedisEventStore::Acquire(std::chrono::milliseconds timeout, bool* reused) {
  const timeval tv = redis::Timeval(timeout);
  {
    std::lock_guard<std::mutex> lock(mu_);
    *reused = !idle_.empty();
    if (*reused) {
      redisContext* c = idle_.back();
      idle_.pop_back();
      redisSetTimeout(c, tv);
      return c;
    }
  }
  return redis::Connect(host_, port_, timeout, options_.password, absl::StrCat("event store redis ", address_));
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

absl::StatusOr<RedisEventStore::Reply> RedisEventStore::Run(const std::vector<std::string>& args, const char* what,
                                                            std::chrono::milliseconds timeout, bool probe) {
  if (!probe && !up_.load()) {
    std::lock_guard<std::mutex> lock(listener_mu_);
    return absl::UnavailableError(absl::StrCat("event store redis ", address_, " is not answering, retried in the ",
                                               "background; last failure: ", last_error_));
  }
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
    absl::StatusOr<redisContext*> acquired = Acquire(timeout, &reused);
    if (!acquired.ok()) {
      Trip(acquired.status());
      return acquired.status();
    }
    redisContext* c = *acquired;
    Reply r(static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), const_cast<const char**>(argv.data()), lens.data())));
    if (r != nullptr) {
      Release(c, true);
      return r;
    }
    absl::Status e = Error(what, c);
    const bool closed = ClosedByPeer(c);
    Release(c, false);
    if (!reused || attempt > 0 || !closed) {
      Trip(e);
      return e;
    }
  }
}

absl::StatusOr<RecordCounts> RedisEventStore::Record(const std::vector<RecordedPurchase>& events, int32_t as_of) {
  RecordCounts counts;
  if (events.empty()) return counts;
  std::vector<std::string> args = {"EVAL", kRecordScript, std::to_string(3 * events.size() + 1)};
  args.reserve(3 + 6 * events.size() + 4);
  for (const RecordedPurchase& p : events) {
    args.push_back(absl::StrCat("hmrec:e:", p.event.event_id()));
    args.push_back(CustomerKey(p.customer_id));
    args.push_back(CountKey(p.customer_id));
  }
  args.push_back(kErasedKey);
  args.push_back(std::to_string(static_cast<int64_t>(options_.horizon_days) * 86400));
  args.push_back(std::to_string(HorizonStart(as_of, options_.horizon_days)));
  args.push_back(std::to_string(options_.max_events_per_customer));
  for (const RecordedPurchase& p : events) {
    args.push_back(std::to_string(p.event.day()));
    // Length-prefixed: a customer's events are one string, appended to.
    const std::string bytes = p.event.SerializeAsString();
    const uint32_t n = static_cast<uint32_t>(bytes.size());
    std::string framed(reinterpret_cast<const char*>(&n), sizeof(n));
    framed += bytes;
    args.push_back(std::move(framed));
    args.push_back(p.customer_id);
  }
  ASSIGN_OR_RETURN(Reply r, Run(args, "EVAL (record)", std::chrono::milliseconds(options_.timeout_ms)));
  if (r->type == REDIS_REPLY_ERROR) {
    return absl::UnavailableError(absl::StrCat("event store redis ", address_, ": record: ", r->str));
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
    return absl::InternalError(absl::StrCat("event store redis ", address_, ": unexpected reply to the record script"));
  }
  counts.recorded = static_cast<int>(r->element[0]->integer);
  counts.duplicates = static_cast<int>(r->element[1]->integer);
  counts.expired = static_cast<int>(r->element[2]->integer);
  counts.erased = static_cast<int>(r->element[3]->integer);
  return counts;
}

absl::StatusOr<EraseCounts> RedisEventStore::Erase(const std::vector<std::string>& customer_ids) {
  EraseCounts counts;
  if (customer_ids.empty()) return counts;
  std::vector<std::string> args = {"EVAL", kEraseScript, std::to_string(2 * customer_ids.size() + 1)};
  for (const std::string& id : customer_ids) {
    args.push_back(CustomerKey(id));
    args.push_back(CountKey(id));
  }
  args.push_back(kErasedKey);
  args.insert(args.end(), customer_ids.begin(), customer_ids.end());
  ASSIGN_OR_RETURN(Reply r, Run(args, "EVAL (erase)", std::chrono::milliseconds(options_.timeout_ms)));
  if (r->type == REDIS_REPLY_ERROR) {
    return absl::UnavailableError(absl::StrCat("event store redis ", address_, ": erase: ", r->str));
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
    return absl::InternalError(absl::StrCat("event store redis ", address_, ": unexpected reply to the erase script"));
  }
  counts.customers = static_cast<int>(r->element[0]->integer);
  counts.events = static_cast<int>(r->element[1]->integer);
  return counts;
}

absl::StatusOr<int64_t> RedisEventStore::ErasedCount() {
  ASSIGN_OR_RETURN(Reply r, Run({"SCARD", kErasedKey}, "SCARD", std::chrono::milliseconds(options_.timeout_ms)));
  if (r->type != REDIS_REPLY_INTEGER) {
    return absl::UnavailableError(absl::StrCat(
        "event store redis ", address_, ": SCARD: ", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply"));
  }
  return static_cast<int64_t>(r->integer);
}

absl::Status RedisEventStore::ForEachErased(const std::function<absl::Status(absl::string_view customer_id)>& fn) {
  const std::chrono::milliseconds timeout(std::max(options_.timeout_ms, 1000));
  std::string cursor = "0";
  do {
    ASSIGN_OR_RETURN(Reply page, Run({"SSCAN", kErasedKey, cursor, "COUNT", "1000"}, "SSCAN", timeout));
    if (page->type != REDIS_REPLY_ARRAY || page->elements != 2 || page->element[0]->type != REDIS_REPLY_STRING ||
        page->element[1]->type != REDIS_REPLY_ARRAY) {
      return absl::UnavailableError(absl::StrCat("event store redis ", address_, ": SSCAN: unexpected reply"));
    }
    cursor.assign(page->element[0]->str, page->element[0]->len);
    const redisReply* ids = page->element[1];
    for (size_t i = 0; i < ids->elements; ++i) {
      RETURN_IF_ERROR(fn(absl::string_view(ids->element[i]->str, ids->element[i]->len)));
    }
  } while (cursor != "0");
  return absl::OkStatus();
}

absl::Status RedisEventStore::Corrupt(absl::string_view customer_id) const {
  return absl::DataLossError(
      absl::StrCat("event store redis ", address_, ": the events of customer ", customer_id, " do not parse"));
}

// A customer's list: frames of a 4-byte little-endian length and a
// StoredEvent.
absl::Status RedisEventStore::ParseList(absl::string_view customer_id, absl::string_view rest,
                                        config::StoredEvents* list) const {
  list->Clear();
  config::StoredEvent e;
  while (!rest.empty()) {
    uint32_t n = 0;
    if (rest.size() < sizeof(n)) return Corrupt(customer_id);
    std::memcpy(&n, rest.data(), sizeof(n));
    rest.remove_prefix(sizeof(n));
    if (rest.size() < n || !e.ParseFromArray(rest.data(), static_cast<int>(n))) return Corrupt(customer_id);
    rest.remove_prefix(n);
    *list->add_events() = e;
  }
  return absl::OkStatus();
}

absl::Status RedisEventStore::ForEachCustomer(const CustomerEventsFn& fn) {
  // SCAN the customers' keys a page at a time, MGET each page: the walk
  // never blocks Redis for long, and sees every key present throughout.
  const std::string prefix = CustomerKey("");
  const std::chrono::milliseconds timeout(std::max(options_.timeout_ms, 1000));
  std::string cursor = "0";
  config::StoredEvents list;
  std::vector<config::StoredEvent> events;
  do {
    ASSIGN_OR_RETURN(Reply page, Run({"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"}, "SCAN", timeout));
    if (page->type != REDIS_REPLY_ARRAY || page->elements != 2 || page->element[0]->type != REDIS_REPLY_STRING ||
        page->element[1]->type != REDIS_REPLY_ARRAY) {
      return absl::UnavailableError(absl::StrCat("event store redis ", address_, ": SCAN: unexpected reply"));
    }
    cursor.assign(page->element[0]->str, page->element[0]->len);
    const redisReply* keys = page->element[1];
    if (keys->elements == 0) continue;
    std::vector<std::string> get = {"MGET"};
    for (size_t i = 0; i < keys->elements; ++i) get.emplace_back(keys->element[i]->str, keys->element[i]->len);
    ASSIGN_OR_RETURN(Reply values, Run(get, "MGET", timeout));
    if (values->type != REDIS_REPLY_ARRAY || values->elements != keys->elements) {
      return absl::UnavailableError(absl::StrCat("event store redis ", address_, ": MGET: unexpected reply"));
    }
    for (size_t i = 0; i < keys->elements; ++i) {
      if (values->element[i]->type != REDIS_REPLY_STRING) continue;  // gone since the SCAN
      const absl::string_view id = absl::string_view(get[i + 1]).substr(prefix.size());
      RETURN_IF_ERROR(ParseList(id, absl::string_view(values->element[i]->str, values->element[i]->len), &list));
      events.assign(list.events().begin(), list.events().end());
      RETURN_IF_ERROR(fn(id, events));
    }
  } while (cursor != "0");
  return absl::OkStatus();
}

absl::Status RedisEventStore::Lookup(const std::vector<absl::string_view>& customer_ids, int32_t as_of,
                                     std::vector<std::vector<config::StoredEvent>>* out,
                                     std::chrono::milliseconds budget) {
  out->assign(customer_ids.size(), {});
  if (customer_ids.empty()) return absl::OkStatus();
  // One round trip, one command: every customer's events.
  std::vector<std::string> keys = {"MGET"};
  keys.reserve(customer_ids.size() + 1);
  for (absl::string_view id : customer_ids) keys.push_back(CustomerKey(id));
  const std::chrono::milliseconds timeout =
      budget.count() > 0 ? budget : std::chrono::milliseconds(options_.timeout_ms);
  ASSIGN_OR_RETURN(Reply r, Run(keys, "MGET", timeout));
  if (r->type != REDIS_REPLY_ARRAY || r->elements != customer_ids.size()) {
    return absl::UnavailableError(absl::StrCat("event store redis ", address_,
                                               ": MGET: ", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply"));
  }
  const int32_t first_day = HorizonStart(as_of, options_.horizon_days);
  config::StoredEvents list;
  for (size_t i = 0; i < customer_ids.size(); ++i) {
    const redisReply* item = r->element[i];
    if (item->type != REDIS_REPLY_STRING) continue;  // nil: no events
    RETURN_IF_ERROR(ParseList(customer_ids[i], absl::string_view(item->str, item->len), &list));
    BoundEvents(first_day, options_.max_events_per_customer, &list);
    (*out)[i].assign(list.events().begin(), list.events().end());
  }
  return absl::OkStatus();
}

}  // namespace hmrec
