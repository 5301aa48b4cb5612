#include "server/http_api.h"

#include "data/dates.h"

#include "server/canary.h"

#include <chrono>
#include <string>

#include <google/protobuf/util/json_util.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "prometheus/text_serializer.h"
#include "server/inspector.h"
#include "server/json_text.h"

namespace hmrec {
namespace {

using google::protobuf::util::JsonParseOptions;
using google::protobuf::util::JsonPrintOptions;

constexpr char kRealm[] = "Bearer realm=\"hmrec\"";

HttpResponse Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse Error(int status, absl::StatusCode code, absl::string_view message) {
  return Json(status, absl::StrCat("{\"error\": {\"code\": ", JsonText(absl::StatusCodeToString(code)),
                                   ", \"message\": ", JsonText(message), "}}\n"));
}

// The error of `status` with its HTTP code.
HttpResponse FromStatus(const absl::Status& status) {
  return Error(HttpApi::HttpStatus(status.code()), status.code(), status.message());
}

// `message` in protobuf's JSON mapping (proto field names) into `json`;
// false when it cannot be written.
bool ToJson(const google::protobuf::Message& message, std::string* json) {
  JsonPrintOptions print;
  print.preserve_proto_field_names = true;
  return google::protobuf::util::MessageToJsonString(message, json, print).ok();
}

// 200 with `message` in protobuf's JSON mapping.
HttpResponse FromMessage(const google::protobuf::Message& message) {
  std::string json;
  if (!ToJson(message, &json)) return Error(500, absl::StatusCode::kInternal, "cannot write the answer as JSON");
  return Json(200, json + "\n");
}

template <typename T>
HttpResponse FromResult(const absl::StatusOr<T>& result) {
  return result.ok() ? FromMessage(*result) : FromStatus(result.status());
}

HttpResponse Text(int status, const char* text) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain";
  r.body = text;
  return r;
}

// Parses `body` as the JSON form of `message`: nullopt, or the 400 naming `type`.
std::optional<HttpResponse> ParseJson(const std::string& body, const char* type, google::protobuf::Message* message) {
  JsonParseOptions parse;
  parse.ignore_unknown_fields = false;
  const auto parsed = google::protobuf::util::JsonStringToMessage(body, message, parse);
  if (parsed.ok()) return std::nullopt;
  return Error(400, absl::StatusCode::kInvalidArgument,
               absl::StrCat("the body is not a ", type,
                            " in JSON: ", std::string(parsed.message().data(), parsed.message().size())));
}

struct Route {
  const char* method;
  const char* path;  // exact, or a prefix when it ends in '/'
  bool needs_key;
  Scope scope;
  bool api;  // a /v1 route: refused while draining
};

constexpr Route kRoutes[] = {
    {"POST", "/v1/recommend", true, kScopeRecommend, true},
    {"POST", "/v1/similar", true, kScopeRecommend, true},
    {"GET", "/v1/bundle", true, kAnyScope, true},
    {"GET", "/v1/customers/", true, kScopeInspect, true},
    {"GET", "/v1/random_customer", true, kScopeInspect, true},
    {"POST", "/v1/articles", true, kScopeInspect, true},
    {"GET", "/v1/filters", true, kScopeInspect, true},
    {"GET", "/v1/rules", true, kScopeInspect, true},
    {"GET", "/inspect", false, kAnyScope, false},
    {"GET", "/healthz", false, kAnyScope, false},
    {"GET", "/readyz", false, kAnyScope, false},
};

// The route of `request`, or null.
const Route* Find(const HttpRequest& request) {
  for (const Route& r : kRoutes) {
    const absl::string_view path(r.path);
    if (path.back() == '/' ? absl::StartsWith(request.path, path) : request.path == path) return &r;
  }
  return nullptr;
}

}  // namespace

int HttpApi::HttpStatus(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kCancelled:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    case absl::StatusCode::kUnimplemented:
      return 501;
    default:
      return 500;
  }
}

HttpApi::HttpApi(HttpApiOptions options, RecommenderService* service, const BundleHolder* bundles)
    : options_(options), service_(service), bundles_(bundles) {}

HttpResponse HttpApi::TransportError(int status, const std::string& message) {
  return Error(status, absl::StatusCode::kInvalidArgument, message);
}

std::optional<HttpResponse> HttpApi::Head(const HttpRequest& request) {
  if (options_.require_client_cert && !request.client_verified) {
    HttpResponse r = Error(401, absl::StatusCode::kUnauthenticated,
                           "a client certificate signed by the server's client CA is required");
    r.headers.emplace_back("WWW-Authenticate", kRealm);
    return r;
  }
  const Route* route = Find(request);
  if (route == nullptr) {
    return Error(404, absl::StatusCode::kNotFound, absl::StrCat("no route ", request.path.substr(0, 80)));
  }
  if (request.method != route->method) {
    HttpResponse r = Error(
        405, absl::StatusCode::kInvalidArgument,
        absl::StrCat(request.method.substr(0, 16), " ", route->path, ": only ", route->method, " is served here"));
    r.headers.emplace_back("Allow", route->method);
    return r;
  }
  if (route->needs_key) {
    Credentials credentials;
    credentials.authorization = request.Header("authorization");
    credentials.peer_cn = request.peer_cn;
    Refusal why = Refusal::kNone;
    absl::StatusOr<Caller> caller = service_->Authenticate(credentials, route->scope, "http", &why);
    if (!caller.ok()) {
      HttpResponse r = FromStatus(caller.status());
      if (why == Refusal::kScope) {
        r.headers.emplace_back("WWW-Authenticate", absl::StrCat(kRealm, ", error=\"insufficient_scope\", scope=\"",
                                                                ScopeName(route->scope), "\""));
      } else if (why == Refusal::kNoCredential) {
        r.headers.emplace_back("WWW-Authenticate", kRealm);
      } else {
        r.headers.emplace_back("WWW-Authenticate", absl::StrCat(kRealm, ", error=\"invalid_token\""));
      }
      return r;
    }
  }
  if (route->api && draining_) {
    HttpResponse r = Error(503, absl::StatusCode::kUnavailable, "the server is draining");
    r.headers.emplace_back("Connection", "close");
    return r;
  }
  return std::nullopt;
}

void HttpApi::Serve(HttpRequest request, std::function<void(HttpResponse)> reply) {
  const absl::string_view path = request.path;
  if (path == "/v1/recommend") return Recommend(std::move(request), std::move(reply));
  if (path == "/v1/similar") return Similar(std::move(request), std::move(reply));
  if (path == "/healthz") return reply(Text(200, "ok\n"));
  if (path == "/readyz") return reply(draining_ ? Text(503, "draining\n") : Text(200, "ready\n"));
  if (path == "/inspect") {
    HttpResponse page = Text(200, "");
    page.content_type = "text/html; charset=utf-8";
    page.body = InspectorPage();
    return reply(std::move(page));
  }
  const std::shared_ptr<const ServingBundle> bundle = bundles_->Current();
  const Recommender& recommender = *bundle->recommender;
  if (path == "/v1/bundle") {
    config::BundleManifest summary = recommender.manifest();
    summary.clear_files();
    return reply(FromMessage(summary));
  }
  if (absl::StartsWith(path, "/v1/customers/")) {
    const absl::string_view id = path.substr(absl::string_view("/v1/customers/").size());
    // The customer's arm, as Recommend routes them.
    const bool canary = options_.canary != nullptr && InCanaryArm(id, options_.canary_percent);
    const std::shared_ptr<const ServingBundle> arm = canary ? options_.canary->Current() : bundle;
    absl::StatusOr<v1::CustomerProfile> profile = InspectCustomer(*arm->recommender, id, service_->events());
    if (profile.ok()) profile->set_arm(canary ? "canary" : "main");
    return reply(FromResult(profile));
  }
  if (path == "/v1/random_customer") {
    const uint64_t seed = random_calls_.fetch_add(1) * 0x9e3779b97f4a7c15ULL ^
                          static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    absl::StatusOr<std::string> id = RandomCustomer(recommender, seed);
    if (!id.ok()) return reply(FromStatus(id.status()));
    return reply(Json(200, absl::StrCat("{\"customer_id\": ", JsonText(*id), "}\n")));
  }
  if (path == "/v1/articles") {
    v1::ArticlesRequest articles;
    if (std::optional<HttpResponse> bad = ParseJson(request.body, "ArticlesRequest", &articles)) {
      return reply(*std::move(bad));
    }
    return reply(FromResult(DescribeArticles(recommender, articles)));
  }
  if (path == "/v1/filters") return reply(FromMessage(FilterValuesOf(recommender)));
  if (path == "/v1/rules") return reply(RulesView(bundle));
  reply(Error(404, absl::StatusCode::kNotFound, "no route"));
}

HttpResponse HttpApi::RulesView(const std::shared_ptr<const ServingBundle>& bundle) const {
  if (options_.rules == nullptr) return Json(200, "{\"source\": \"\", \"summary\": \"no rules_file\"}\n");
  const std::shared_ptr<const CompiledRules> c = options_.rules->For(bundle);
  // The rules as written, but the unavailable list (it may hold a million
  // ids) as counts.
  config::MerchandisingRules rules = c->rule_set().rules;
  rules.clear_unavailable_article_ids();
  std::string json;
  if (!ToJson(rules, &json)) return Error(500, absl::StatusCode::kInternal, "cannot write the rules as JSON");
  return Json(200, absl::StrCat("{\"source\": ", JsonText(c->rule_set().source),
                                ", \"summary\": ", JsonText(c->rule_set().Summary()),
                                ", \"date\": ", JsonText(FormatDate(options_.rules->Today())), ", \"bundle_version\": ",
                                JsonText(bundle->version), ", \"unavailable_articles\": ", c->unavailable_count(),
                                ", \"unknown_article_ids\": ", c->unknown_article_ids(), ", \"rules\": ", json, "}\n"));
}

// A POST of `Request` in JSON answered by `handle` (a RecommenderService
// Handle* path) with `Response`, under `method` in the metrics.
template <typename Request, typename Response, typename Handler>
void HttpApi::Post(HttpRequest request, const char* type, const char* method, Handler handle,
                   std::function<void(HttpResponse)> reply) {
  struct Call {
    Request request;
    Response response;
  };
  auto call = std::make_shared<Call>();
  if (std::optional<HttpResponse> bad = ParseJson(request.body, type, &call->request)) {
    return reply(*std::move(bad));
  }
  // Head() checked the key; who it belongs to labels the metrics.
  Credentials credentials;
  credentials.authorization = request.Header("authorization");
  credentials.peer_cn = request.peer_cn;
  absl::StatusOr<Caller> caller = service_->Authenticate(credentials, kScopeRecommend, method);
  if (!caller.ok()) return reply(FromStatus(caller.status()));  // the keys changed since Head()
  (service_->*handle)(&call->request, &call->response,
                      std::chrono::system_clock::now() + std::chrono::milliseconds(options_.deadline_ms), method,
                      *caller, [call, reply = std::move(reply)](const absl::Status& s) {
                        reply(s.ok() ? FromMessage(call->response) : FromStatus(s));
                      });
}

void HttpApi::Recommend(HttpRequest request, std::function<void(HttpResponse)> reply) {
  Post<v1::RecommendRequest, v1::RecommendResponse>(std::move(request), "RecommendRequest", "http",
                                                    &RecommenderService::Handle, std::move(reply));
}

void HttpApi::Similar(HttpRequest request, std::function<void(HttpResponse)> reply) {
  Post<v1::SimilarArticlesRequest, v1::SimilarArticlesResponse>(std::move(request), "SimilarArticlesRequest",
                                                                "http_similar", &RecommenderService::HandleSimilar,
                                                                std::move(reply));
}

std::optional<HttpResponse> MetricsRoute::Head(const HttpRequest& request) {
  if (request.path != "/metrics") return Error(404, absl::StatusCode::kNotFound, "only /metrics is served here");
  if (request.method != "GET") return Error(405, absl::StatusCode::kInvalidArgument, "only GET is served here");
  return std::nullopt;
}

void MetricsRoute::Serve(HttpRequest, std::function<void(HttpResponse)> reply) {
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = prometheus::TextSerializer().Serialize(registry_->Collect());
  reply(std::move(r));
}

}  // namespace hmrec
