#include "server/server_config.h"

#include <arpa/inet.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/text_proto.h"
#include "data/dates.h"
#include "events/event_store.h"

namespace hmrec {
namespace {

void MakeAbsolute(const std::filesystem::path& base, std::string* path) {
  if (path->empty() || std::filesystem::path(*path).is_absolute()) return;
  *path = (base / *path).lexically_normal().string();
}

}  // namespace

bool IsLoopbackAddress(const std::string& address) {
  std::string host = address.substr(0, address.rfind(':'));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost" || host == "::1") return true;
  in_addr v4{};
  return inet_pton(AF_INET, host.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

absl::StatusOr<config::ServerConfig> ReadServerConfig(const std::string& path) {
  config::ServerConfig cfg;
  RETURN_IF_ERROR(ReadTextProto(path, &cfg));
  const std::filesystem::path base = std::filesystem::absolute(path).parent_path();
  MakeAbsolute(base, cfg.mutable_bundle_path());
  if (cfg.has_canary()) MakeAbsolute(base, cfg.mutable_canary()->mutable_bundle_path());
  if (cfg.has_impressions()) {
    MakeAbsolute(base, cfg.mutable_impressions()->mutable_path());
    MakeAbsolute(base, cfg.mutable_impressions()->mutable_redis_password_file());
  }
  MakeAbsolute(base, cfg.mutable_tls()->mutable_cert_file());
  MakeAbsolute(base, cfg.mutable_tls()->mutable_key_file());
  MakeAbsolute(base, cfg.mutable_tls()->mutable_client_ca_file());
  MakeAbsolute(base, cfg.mutable_events()->mutable_path());
  MakeAbsolute(base, cfg.mutable_events()->mutable_redis_password_file());
  MakeAbsolute(base, cfg.mutable_auth()->mutable_keys_file());
  MakeAbsolute(base, cfg.mutable_rules_file());
  return cfg;
}

config::ServerConfig WithDefaults(config::ServerConfig c) {
  if (c.max_batch_ids() == 0) c.set_max_batch_ids(1000);
  if (c.max_delay_us() == 0) c.set_max_delay_us(2000);
  if (c.max_queued_ids() == 0) c.set_max_queued_ids(4000);
  if (c.workers() == 0) c.set_workers(2);
  if (c.max_k() == 0) c.set_max_k(100);
  if (c.max_ids_per_request() == 0) c.set_max_ids_per_request(2000);
  if (c.device().empty()) c.set_device("cpu");
  if (c.shutdown_grace_seconds() == 0) c.set_shutdown_grace_seconds(10);
  if (c.bundle_watch_ms() == 0) c.set_bundle_watch_ms(1000);
  if (c.flat_search().empty()) c.set_flat_search("blocked");
  if (c.max_response_bytes() == 0) c.set_max_response_bytes(kDefaultMaxResponseBytes);
  if (c.ranking().empty()) c.set_ranking("on");
  if (c.max_http_body_bytes() == 0) c.set_max_http_body_bytes(1 << 20);
  if (c.max_http_connections() == 0) c.set_max_http_connections(256);
  if (c.http_idle_timeout_seconds() == 0) c.set_http_idle_timeout_seconds(30);
  if (c.http_request_timeout_seconds() == 0) c.set_http_request_timeout_seconds(30);
  if (c.max_http_header_bytes() == 0) c.set_max_http_header_bytes(16 << 10);
  if (c.http_threads() == 0) c.set_http_threads(2);
  if (c.max_excluded_articles() == 0) c.set_max_excluded_articles(1000);
  if (c.max_filter_names() == 0) c.set_max_filter_names(64);
  if (c.max_similar_articles() == 0) c.set_max_similar_articles(100);
  if (c.new_article_position() == 0) c.set_new_article_position(12);
  *c.mutable_events() = WithEventDefaults(c.events(), c.bundle_path());
  if (c.has_impressions() && c.impressions().sample_percent() == 0) c.mutable_impressions()->set_sample_percent(100);
  if (c.has_impressions()) {
    config::ImpressionLogConfig* i = c.mutable_impressions();
    if (i->max_pending() == 0) i->set_max_pending(10000);
    if (!i->redis_stream().empty()) {
      if (i->redis_max_len() == 0) i->set_redis_max_len(10000000);
      if (i->redis_address().empty()) {
        i->set_redis_address(c.events().redis_address());
        if (i->redis_password_file().empty()) i->set_redis_password_file(c.events().redis_password_file());
      }
    }
  }
  return c;
}

int64_t MaxResponseBytes(int64_t ids, int64_t k) {
  // Per result: customer_id (tag, length, 64 bytes), fallback, a reason of
  // at most 64 bytes, filled_from_popular, fewer_than_k, the framing of the
  // result and of its packed scores; per article: a 10-digit id (tag, length, 10 bytes)
  // and a 4-byte score. Per response: the bundle version (at most 256).
  constexpr int64_t kPerResult = 66 + 2 + 66 + 6 + 2 + 6 + 6;
  constexpr int64_t kPerArticle = 12 + 4;
  return 264 + ids * (kPerResult + k * kPerArticle);
}

absl::Status ValidateServerConfig(const config::ServerConfig& c) {
  struct Count {
    const char* name;
    int64_t value;
  };
  for (const Count& f :
       {Count{"max_batch_ids", c.max_batch_ids()}, Count{"max_delay_us", c.max_delay_us()},
        Count{"max_queued_ids", c.max_queued_ids()}, Count{"workers", c.workers()}, Count{"max_k", c.max_k()},
        Count{"max_ids_per_request", c.max_ids_per_request()}, Count{"max_response_bytes", c.max_response_bytes()},
        Count{"max_http_body_bytes", c.max_http_body_bytes()}, Count{"max_http_connections", c.max_http_connections()},
        Count{"http_idle_timeout_seconds", c.http_idle_timeout_seconds()},
        Count{"http_request_timeout_seconds", c.http_request_timeout_seconds()},
        Count{"max_http_header_bytes", c.max_http_header_bytes()}, Count{"http_threads", c.http_threads()},
        Count{"max_excluded_articles", c.max_excluded_articles()}, Count{"max_filter_names", c.max_filter_names()},
        Count{"max_similar_articles", c.max_similar_articles()}}) {
    if (f.value < 1) return absl::InvalidArgumentError(absl::StrCat(f.name, " = ", f.value, ": must be at least 1"));
  }
  for (const Count& f : {Count{"compute_threads", c.compute_threads()}, Count{"search_threads", c.search_threads()},
                         Count{"ivf_nprobe", c.ivf_nprobe()}, Count{"hnsw_ef_search", c.hnsw_ef_search()},
                         Count{"shutdown_grace_seconds", c.shutdown_grace_seconds()}}) {
    if (f.value < 0) return absl::InvalidArgumentError(absl::StrCat(f.name, " = ", f.value, ": must not be negative"));
  }
  if (c.max_ids_per_request() > c.max_queued_ids()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_ids_per_request (", c.max_ids_per_request(), ") exceeds max_queued_ids (", c.max_queued_ids(),
        "): a request the server accepts could never be queued; raise max_queued_ids or lower max_ids_per_request"));
  }
  const int64_t worst = MaxResponseBytes(c.max_ids_per_request(), c.max_k());
  if (worst > c.max_response_bytes()) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_ids_per_request (", c.max_ids_per_request(), ") x max_k (", c.max_k(),
                     ") allows responses of up to ", worst, " bytes, more than max_response_bytes (",
                     c.max_response_bytes(), "; gRPC clients refuse more than 4 MiB by default): lower either limit"));
  }
  if (c.flat_search() != "blocked" && c.flat_search() != "blocked-fp32" && c.flat_search() != "faiss") {
    return absl::InvalidArgumentError(
        absl::StrCat("flat_search = '", c.flat_search(), "': expected 'blocked', 'blocked-fp32' or 'faiss'"));
  }
  if (c.ranking() != "on" && c.ranking() != "off") {
    return absl::InvalidArgumentError(absl::StrCat("ranking = '", c.ranking(), "': expected 'on' or 'off'"));
  }
  if (!c.ranker_evaluator().empty() && c.ranker_evaluator() != "native" && c.ranker_evaluator() != "xgboost") {
    return absl::InvalidArgumentError(absl::StrCat("ranker_evaluator = '", c.ranker_evaluator(),
                                                   "': expected 'native', 'xgboost' or '' (the bundle's)"));
  }
  RETURN_IF_ERROR(ValidateEventConfig(c.events()));
  if (c.listen_address().empty()) return absl::InvalidArgumentError("listen_address is empty");
  if (c.auth().keys_file().empty() && !c.allow_unauthenticated()) {
    // Safe by default: without keys, only this machine may call.
    struct Address {
      const char* field;
      const std::string& value;
    };
    for (const Address& a :
         {Address{"listen_address", c.listen_address()}, Address{"http_address", c.http_address()}}) {
      if (a.value.empty() || IsLoopbackAddress(a.value)) continue;
      return absl::InvalidArgumentError(absl::StrCat(
          a.field, " ", a.value, " is not a loopback address and there is no auth { keys_file }: anyone who reaches ",
          "it could call every API. Give the server API keys (auth { keys_file: \"...\" }), listen on 127.0.0.1, or ",
          "set allow_unauthenticated: true to serve without keys"));
    }
  }
  if (c.bundle_path().empty()) return absl::InvalidArgumentError("bundle_path is empty");
  if (c.has_canary()) {
    const config::CanaryConfig& k = c.canary();
    if (!(k.percent() >= 0 && k.percent() <= 100)) {
      return absl::InvalidArgumentError(absl::StrCat("canary.percent = ", k.percent(), " is outside 0..100"));
    }
    if (k.bundle_path().empty()) return absl::InvalidArgumentError("canary.bundle_path is empty");
    if (std::filesystem::path(k.bundle_path()).lexically_normal() ==
        std::filesystem::path(c.bundle_path()).lexically_normal()) {
      return absl::InvalidArgumentError(
          absl::StrCat("canary.bundle_path ", k.bundle_path(), " is bundle_path: a canary is a second bundle"));
    }
  }
  if (c.has_impressions()) {
    const config::ImpressionLogConfig& i = c.impressions();
    if (i.path().empty() == i.redis_stream().empty()) {
      return absl::InvalidArgumentError("impressions: give one of path and redis_stream");
    }
    if (!i.redis_stream().empty() && i.redis_address().empty()) {
      return absl::InvalidArgumentError("impressions.redis_stream needs redis_address (or events.redis_address)");
    }
    if (!(i.sample_percent() > 0 && i.sample_percent() <= 100)) {
      return absl::InvalidArgumentError(
          absl::StrCat("impressions.sample_percent = ", i.sample_percent(), " is outside (0, 100]"));
    }
    if (i.max_pending() < 1) {
      return absl::InvalidArgumentError(absl::StrCat("impressions.max_pending = ", i.max_pending(), " is below 1"));
    }
  }
  if (!c.rules_date().empty() && !ParseDate(c.rules_date()).ok()) {
    return absl::InvalidArgumentError(absl::StrCat("rules_date \"", c.rules_date(), "\" is not YYYY-MM-DD"));
  }
  return absl::OkStatus();
}

}  // namespace hmrec
