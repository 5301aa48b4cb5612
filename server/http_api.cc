#include "server/http_api.h"

#include <civetweb.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "server/inspector.h"

namespace hmrec {
namespace {

using google::protobuf::util::JsonParseOptions;
using google::protobuf::util::JsonPrintOptions;

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

void Reply(mg_connection* conn, int status, const std::string& body, const char* content_type = "application/json") {
  mg_response_header_start(conn, status);
  mg_response_header_add(conn, "Content-Type", content_type, -1);
  mg_response_header_add(conn, "Content-Length", std::to_string(body.size()).c_str(), -1);
  mg_response_header_add(conn, "Cache-Control", "no-store", -1);
  mg_response_header_send(conn);
  mg_write(conn, body.data(), body.size());
}

void ReplyError(mg_connection* conn, int status, absl::StatusCode code, const std::string& message) {
  Reply(conn, status,
        absl::StrCat("{\"error\": {\"code\": ", JsonString(absl::StatusCodeToString(code)),
                     ", \"message\": ", JsonString(message), "}}\n"));
}

// 200 with `message` in protobuf's JSON mapping (proto field names).
int ReplyMessage(mg_connection* conn, const google::protobuf::Message& message) {
  std::string json;
  JsonPrintOptions print;
  print.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(message, &json, print).ok()) {
    ReplyError(conn, 500, absl::StatusCode::kInternal, "cannot write the answer as JSON");
    return 500;
  }
  Reply(conn, 200, json + "\n");
  return 200;
}

// The error of `status` with its HTTP code; returns the code.
int ReplyStatus(mg_connection* conn, const absl::Status& status) {
  const int code = HttpApi::HttpStatus(status.code());
  ReplyError(conn, code, status.code(), std::string(status.message()));
  return code;
}

// `result`'s message as JSON, or its error.
template <typename T>
int ReplyResult(mg_connection* conn, const absl::StatusOr<T>& result) {
  return result.ok() ? ReplyMessage(conn, *result) : ReplyStatus(conn, result.status());
}

bool IsMethod(mg_connection* conn, const char* method) {
  const mg_request_info* info = mg_get_request_info(conn);
  if (std::strcmp(info->request_method, method) == 0) return true;
  ReplyError(conn, 405, absl::StatusCode::kInvalidArgument,
             absl::StrCat(info->request_method, " ", info->local_uri, ": only ", method, " is served here"));
  return false;
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
    : options_(std::move(options)), service_(service), bundles_(bundles) {}

HttpApi::~HttpApi() {
  if (ctx_ != nullptr) mg_stop(ctx_);
}

absl::StatusOr<std::unique_ptr<HttpApi>> HttpApi::Start(const HttpApiOptions& options, RecommenderService* service,
                                                        const BundleHolder* bundles) {
  std::unique_ptr<HttpApi> api(new HttpApi(options, service, bundles));
  // civetweb takes "host:port" (IPv4) as its listening port.
  const std::string threads = std::to_string(std::max(1, options.threads));
  const char* mg_options[] = {"num_threads", threads.c_str(),   "request_timeout_ms",
                              "60000",       "listening_ports", options.address.c_str(),
                              nullptr};
  mg_callbacks callbacks{};
  // civetweb's own errors (sockets, malformed requests) go to the server's log.
  callbacks.log_message = [](const mg_connection*, const char* message) {
    std::fprintf(stderr, "server: http: %s\n", message);
    return 1;
  };
  api->ctx_ = mg_start(&callbacks, api.get(), mg_options);
  if (api->ctx_ == nullptr) return absl::UnavailableError(absl::StrCat("cannot serve HTTP on ", options.address));
  mg_set_request_handler(api->ctx_, "/v1/recommend$", &HttpApi::HandleRecommend, api.get());
  mg_set_request_handler(api->ctx_, "/v1/bundle$", &HttpApi::HandleBundle, api.get());
  mg_set_request_handler(api->ctx_, "/healthz$", &HttpApi::HandleHealth, api.get());
  mg_set_request_handler(api->ctx_, "/inspect$", &HttpApi::HandleInspect, api.get());
  mg_set_request_handler(api->ctx_, "/v1/customers/", &HttpApi::HandleCustomer, api.get());
  mg_set_request_handler(api->ctx_, "/v1/random_customer$", &HttpApi::HandleRandomCustomer, api.get());
  mg_set_request_handler(api->ctx_, "/v1/articles$", &HttpApi::HandleArticles, api.get());
  mg_set_request_handler(api->ctx_, "/v1/filters$", &HttpApi::HandleFilters, api.get());
  mg_set_request_handler(api->ctx_, "/readyz$", &HttpApi::HandleReady, api.get());
  mg_server_port ports[4];
  const int n = mg_get_server_ports(api->ctx_, 4, ports);
  if (n < 1) return absl::UnavailableError(absl::StrCat("HTTP on ", options.address, ": no listening port"));
  api->port_ = ports[0].port;
  return api;
}

int HttpApi::ReadJson(mg_connection* conn, const char* type, google::protobuf::Message* message) const {
  const mg_request_info* info = mg_get_request_info(conn);
  if (info->content_length < 0) {
    ReplyError(conn, 411, absl::StatusCode::kInvalidArgument, "a Content-Length header is required");
    return 411;
  }
  if (info->content_length > options_.max_body_bytes) {
    // Refused before a byte of the body is read.
    ReplyError(conn, 413, absl::StatusCode::kInvalidArgument,
               absl::StrCat("request body of ", info->content_length, " bytes, more than the limit of ",
                            options_.max_body_bytes));
    return 413;
  }
  std::string body(static_cast<size_t>(info->content_length), '\0');
  size_t got = 0;
  while (got < body.size()) {
    const int r = mg_read(conn, body.data() + got, body.size() - got);
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  if (got != body.size()) {
    ReplyError(conn, 400, absl::StatusCode::kInvalidArgument,
               absl::StrCat("request body ended after ", got, " of ", body.size(), " bytes"));
    return 400;
  }
  JsonParseOptions parse;
  parse.ignore_unknown_fields = false;
  const auto parsed = google::protobuf::util::JsonStringToMessage(body, message, parse);
  if (!parsed.ok()) {
    ReplyError(conn, 400, absl::StatusCode::kInvalidArgument,
               absl::StrCat("the body is not a ", type,
                            " in JSON: ", std::string(parsed.message().data(), parsed.message().size())));
    return 400;
  }
  return 0;
}

int HttpApi::HandleRecommend(mg_connection* conn, void* self) {
  HttpApi* api = static_cast<HttpApi*>(self);
  if (!IsMethod(conn, "POST")) return 405;
  v1::RecommendRequest request;
  if (const int code = api->ReadJson(conn, "RecommendRequest", &request); code != 0) return code;
  v1::RecommendResponse response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  absl::Status status;
  api->service_->Handle(&request, &response,
                        std::chrono::system_clock::now() + std::chrono::milliseconds(api->options_.deadline_ms), "http",
                        [&](const absl::Status& s) {
                          std::lock_guard<std::mutex> lock(mu);
                          status = s;
                          done = true;
                          cv.notify_one();
                        });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
  }
  if (!status.ok()) return ReplyStatus(conn, status);
  return ReplyMessage(conn, response);
}

int HttpApi::HandleBundle(mg_connection* conn, void* self) {
  HttpApi* api = static_cast<HttpApi*>(self);
  if (!IsMethod(conn, "GET")) return 405;
  config::BundleManifest summary = api->bundles_->Current()->recommender->manifest();
  summary.clear_files();
  return ReplyMessage(conn, summary);
}

int HttpApi::HandleInspect(mg_connection* conn, void*) {
  if (!IsMethod(conn, "GET")) return 405;
  Reply(conn, 200, InspectorPage(), "text/html; charset=utf-8");
  return 200;
}

int HttpApi::HandleCustomer(mg_connection* conn, void* self) {
  HttpApi* api = static_cast<HttpApi*>(self);
  if (!IsMethod(conn, "GET")) return 405;
  const std::string uri = mg_get_request_info(conn)->local_uri;
  constexpr absl::string_view kPrefix = "/v1/customers/";
  const absl::string_view id = absl::string_view(uri).substr(std::min(uri.size(), kPrefix.size()));
  return ReplyResult(conn, InspectCustomer(*api->bundles_->Current()->recommender, id, api->service_->events()));
}

int HttpApi::HandleRandomCustomer(mg_connection* conn, void* self) {
  HttpApi* api = static_cast<HttpApi*>(self);
  if (!IsMethod(conn, "GET")) return 405;
  const uint64_t seed = api->random_calls_.fetch_add(1) * 0x9e3779b97f4a7c15ULL ^
                        static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  absl::StatusOr<std::string> id = RandomCustomer(*api->bundles_->Current()->recommender, seed);
  if (!id.ok()) return ReplyStatus(conn, id.status());
  Reply(conn, 200, absl::StrCat("{\"customer_id\": ", JsonString(*id), "}\n"));
  return 200;
}

int HttpApi::HandleArticles(mg_connection* conn, void* self) {
  HttpApi* api = static_cast<HttpApi*>(self);
  if (!IsMethod(conn, "POST")) return 405;
  v1::ArticlesRequest request;
  if (const int code = api->ReadJson(conn, "ArticlesRequest", &request); code != 0) return code;
  return ReplyResult(conn, DescribeArticles(*api->bundles_->Current()->recommender, request));
}

int HttpApi::HandleFilters(mg_connection* conn, void* self) {
  HttpApi* api = static_cast<HttpApi*>(self);
  if (!IsMethod(conn, "GET")) return 405;
  return ReplyMessage(conn, FilterValuesOf(*api->bundles_->Current()->recommender));
}

int HttpApi::HandleHealth(mg_connection* conn, void*) {
  Reply(conn, 200, "ok\n", "text/plain");
  return 200;
}

int HttpApi::HandleReady(mg_connection* conn, void* self) {
  HttpApi* api = static_cast<HttpApi*>(self);
  if (api->draining_) {
    Reply(conn, 503, "draining\n", "text/plain");
    return 503;
  }
  Reply(conn, 200, "ready\n", "text/plain");
  return 200;
}

}  // namespace hmrec
