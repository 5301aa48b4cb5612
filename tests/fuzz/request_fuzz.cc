// libFuzzer target for request handling (clang -fsanitize=fuzzer,address,undefined;
// built with -DHMREC_FUZZ=ON, see tests/fuzz/README.md): the bytes a client
// sends -> RecommendRequest -> validation -> response, as
// server/service.cc does it, with answers made up per id in place of the
// model (the serving core is tested on real bundles elsewhere). Input
// starting with '{' is the HTTP API's JSON (server/http_api.cc: protobuf's
// JSON mapping, unknown fields refused), and the response goes back to JSON;
// input starting with '#' is a RecordPurchasesRequest (the rest, binary);
// input starting with 'A' is a call's authorization values (one a line)
// checked as server/auth.h checks them; input starting with 'K' is a keys
// file.
//
// Properties: a rejected request gets INVALID_ARGUMENT whose message is
// printable ASCII of bounded length (client values are escaped and cut);
// authorization values are UNAUTHENTICATED (or the one known key's caller)
// with a bounded printable message that never quotes them; a keys file is
// parsed or refused with INVALID_ARGUMENT "fuzz:LINE: ...", printable;
// an accepted one gets one result per id, in order, each with k ten-digit
// article ids, and the response survives a serialise/parse round trip.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include "candidates/sources.h"

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "proto/recommender.pb.h"
#include "server/auth.h"
#include "server/request.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "request_fuzz: property violated: %s\n", what);
    std::abort();
  }
}

bool PrintableAscii(const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

void CheckRefusal(const absl::Status& s) {
  Check(s.code() == absl::StatusCode::kInvalidArgument, "a bad request is not INVALID_ARGUMENT");
  const std::string message(s.message());
  Check(PrintableAscii(message), "an error message carries unescaped bytes");
  Check(message.size() <= 512, "an error message is unbounded");
}

void RecordPurchases(const uint8_t* data, size_t size) {
  hmrec::v1::RecordPurchasesRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return;
  std::vector<hmrec::RecordedPurchase> events;
  const absl::Status s = hmrec::ParsePurchases(request, 100, &events);
  if (!s.ok()) {
    CheckRefusal(s);
    return;
  }
  Check(static_cast<int>(events.size()) == request.events_size(), "not one parsed event per event");
  for (const hmrec::RecordedPurchase& e : events) {
    Check(e.customer_id.size() == 64, "an accepted customer id is not 64 characters");
    Check(e.event.channel() == 1 || e.event.channel() == 2, "an accepted channel is not 1 or 2");
    Check(e.event.price() >= 0, "an accepted price is negative");
    Check(!e.event.event_id().empty() && e.event.event_id().size() <= 128, "an accepted event id out of bounds");
  }
}

void Authorization(const std::string& text) {
  static const std::shared_ptr<const hmrec::KeySet> keys = [] {
    auto set = hmrec::KeySet::Parse("web recommend sha256:" + hmrec::KeyDigestHex("the-one-key") + "\n", "fuzz");
    Check(set.ok(), "the fuzzer's keys file does not parse");
    return *set;
  }();
  std::vector<absl::string_view> values = absl::StrSplit(text, '\n');
  if (text.empty()) values.clear();
  const absl::StatusOr<absl::string_view> token = hmrec::BearerToken(values);
  if (!token.ok()) {
    Check(token.status().code() == absl::StatusCode::kUnauthenticated, "a bad credential is not UNAUTHENTICATED");
    const std::string message(token.status().message());
    Check(PrintableAscii(message) && message.size() <= 200, "a refusal's message is unbounded or unprintable");
    // Never the value: a refusal's message is the same for every value of
    // its kind (the kind decided by canonical stand-ins).
    std::vector<std::string> stand_in;
    if (values.size() > 1) {
      stand_in.assign(values.size(), "x");
    } else if (values.size() == 1) {
      const bool bearer = values[0].size() >= 7 && absl::EqualsIgnoreCase(values[0].substr(0, 7), "bearer ");
      stand_in.push_back(bearer ? "Bearer " : "x");
    }
    const std::vector<absl::string_view> views(stand_in.begin(), stand_in.end());
    Check(message == hmrec::BearerToken(views).status().message(), "a refusal's message depends on the value");
    return;
  }
  Check(!token->empty() && token->size() <= 1024, "an accepted token out of bounds");
  const hmrec::Caller* caller = keys->FindKey(*token);
  Check((caller != nullptr) == (*token == "the-one-key"), "a key matched another key's hash");
}

void KeysFile(const std::string& text) {
  const auto set = hmrec::KeySet::Parse(text, "fuzz");
  if (set.ok()) {
    Check((*set)->Names().size() == (*set)->size(), "not one name an entry");
    return;
  }
  Check(set.status().code() == absl::StatusCode::kInvalidArgument, "a bad keys file is not INVALID_ARGUMENT");
  const std::string message(set.status().message());
  Check(message.rfind("fuzz:", 0) == 0, "a refusal does not name the file and line");
  Check(PrintableAscii(message) && message.size() <= 512, "a refusal's message is unbounded or unprintable");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 0 && data[0] == '#') {
    RecordPurchases(data + 1, size - 1);
    return 0;
  }
  if (size > 0 && (data[0] == 'A' || data[0] == 'K')) {
    const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    data[0] == 'A' ? Authorization(text) : KeysFile(text);
    return 0;
  }
  const bool json = size > 0 && data[0] == '{';
  hmrec::v1::RecommendRequest request;
  if (json) {
    google::protobuf::util::JsonParseOptions parse;
    parse.ignore_unknown_fields = false;
    const std::string text(reinterpret_cast<const char*>(data), size);
    if (!google::protobuf::util::JsonStringToMessage(text, &request, parse).ok()) return 0;  // 400 before us
  } else if (!request.ParseFromArray(data, static_cast<int>(size))) {
    return 0;  // gRPC refuses these before us
  }
  hmrec::RequestLimits limits;
  limits.max_k = 100;
  limits.max_ids = 1000;
  const absl::Status valid = hmrec::ValidateRequest(request, limits);
  if (!valid.ok()) {
    CheckRefusal(valid);
    return 0;
  }
  const int k = hmrec::RequestedK(request, limits);
  Check(k >= 1 && k <= limits.max_k, "k out of range after validation");
  const hmrec::RequestOptions options = hmrec::OptionsOf(request, limits);
  Check(options.k == k, "options disagree with the request's k");
  Check(options.filters.exclude_article_ids.size() <= static_cast<size_t>(request.filters().exclude_article_ids_size()),
        "more excluded ids than the request named");
  Check(options.filters.exclude_purchased_within_days >= 0, "a negative day window passed validation");
  std::vector<hmrec::Recommendation> results(static_cast<size_t>(request.customer_ids_size()));
  for (int i = 0; i < request.customer_ids_size(); ++i) {
    const std::string& id = request.customer_ids(i);
    hmrec::Recommendation& r = results[static_cast<size_t>(i)];
    r.fallback = id[0] < '8';
    uint32_t h = 2166136261u;
    for (unsigned char c : id) h = (h ^ c) * 16777619u;
    for (int j = 0; j < k; ++j) {
      r.article_ids.push_back(static_cast<int32_t>((h + 7919u * static_cast<uint32_t>(j)) % 1000000000u));
      r.scores.push_back(1.0f - 0.01f * static_cast<float>(j));
      if (options.explain) {  // the largest explanation: every source, with anchors
        hmrec::Explanation e;
        for (int src = hmrec::kPopularSource; src < hmrec::kNumSources; ++src) {
          if (static_cast<int>(e.reasons.size()) < 6) e.reasons.push_back({src, 32767, -1.5e30f, 999999999});
        }
        r.explanations.push_back(e);
      }
    }
  }
  hmrec::v1::RecommendResponse response;
  hmrec::FillResponse(request, results, "fuzz", &response);
  std::string wire;
  Check(response.SerializeToString(&wire), "the response does not serialise");
  hmrec::v1::RecommendResponse back;
  Check(back.ParseFromString(wire), "the response does not parse back");
  if (json) {  // the HTTP API's answer: to JSON and back, unchanged
    std::string text;
    google::protobuf::util::JsonPrintOptions print;
    print.preserve_proto_field_names = true;
    Check(google::protobuf::util::MessageToJsonString(response, &text, print).ok(), "the response is not JSON");
    hmrec::v1::RecommendResponse parsed;
    Check(google::protobuf::util::JsonStringToMessage(text, &parsed).ok(), "the JSON response does not parse");
    Check(parsed.results_size() == response.results_size(), "the JSON response lost results");
  }
  Check(back.results_size() == request.customer_ids_size(), "not one result per id");
  if (options.explain) {
    Check(static_cast<int64_t>(wire.size()) <=
              static_cast<int64_t>(request.ByteSizeLong()) + request.customer_ids_size() * (160 + k * 16) +
                  static_cast<int64_t>(request.customer_ids_size()) * k * hmrec::kMaxExplanationBytes,
          "explanations larger than the bound validation relies on");
  }
  for (int i = 0; i < back.results_size(); ++i) {
    const hmrec::v1::Recommendation& r = back.results(i);
    Check(r.customer_id() == request.customer_ids(i), "results out of request order");
    Check(r.article_ids_size() == k && r.scores_size() == k, "a result without k articles");
    for (const std::string& a : r.article_ids()) {
      Check(a.size() == 10 && a.find_first_not_of("0123456789") == std::string::npos, "an article id is not 10 digits");
    }
  }
  return 0;
}
