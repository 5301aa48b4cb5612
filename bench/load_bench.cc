// Load generator for a running hmrec_server: closed loop, `concurrency`
// clients each keeping one Recommend call of `ids_per_request` customers in
// flight, for a bounded time (or request count). Latency is measured client
// to client. Prints one JSON object on stdout:
//
//   hmrec_load_bench --server 127.0.0.1:50051 --customers DATA/customers.csv \
//       --ids_per_request 1000 --concurrency 1 --duration_s 10
//
// {"ids_per_request":1000,"concurrency":1,"seconds":10.0,"requests":..,
//  "customers":..,"customers_per_s":..,"p50_ms":..,"p90_ms":..,"p99_ms":..,
//  "max_ms":..,"failed":0,"failures":{"UNAVAILABLE":n},"fallback":..,"versions":["v1"]}
//
// Customers are taken in turn from the list (wrapping around), so a run
// touches as many distinct customers as it serves, as a real workload does.
//
// With --similar_articles ARTICLES_CSV each call is SimilarArticles instead,
// asking for the articles like `ids_per_request` article ids (a basket; 1:
// an article's page) taken in turn from that file's first column; then
// "customers" in the summary counts article ids asked about. With
// --similar_for_customers too, each such call names a customer from
// --customers (taken in turn): the personalised order's cost.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/api_key.h"
#include "common/metrics.h"
#include "data/csv.h"
#include "data/customer_list.h"
#include "proto/recommender.grpc.pb.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "host:port of hmrec_server");
ABSL_FLAG(std::string, customers, "", "CSV whose first column is customer_id (customers.csv, sample_submission.csv)");
ABSL_FLAG(int, ids_per_request, 1, "Customer ids per Recommend call (article ids per SimilarArticles call)");
ABSL_FLAG(std::string, similar_articles, "",
          "articles.csv: call SimilarArticles for article ids taken in turn from its first column instead of "
          "Recommend");
ABSL_FLAG(bool, similar_for_customers, false,
          "With --similar_articles: each call also names a customer (in turn from --customers): ordered for them");
ABSL_FLAG(int, concurrency, 1, "Calls kept in flight (one client thread each)");
ABSL_FLAG(double, duration_s, 10, "Measured run time (after the warm-up)");
ABSL_FLAG(int64_t, requests, 0, "Stop after this many measured calls instead (0: use --duration_s)");
ABSL_FLAG(double, warmup_s, 1, "Calls made before measuring (not counted)");
ABSL_FLAG(int, k, 12, "Articles per customer");
ABSL_FLAG(std::string, garment_group, "", "Every call filters to this garment_group_name (a narrow filter's cost)");
ABSL_FLAG(int, deadline_ms, 5000, "Deadline of each call");
ABSL_FLAG(int, channels, 0, "gRPC channels (connections) shared by the clients; 0: one per 16 clients");
ABSL_FLAG(std::string, api_key_file, "",
          "A file holding the API key sent with every call; default: $HMREC_API_KEY, else no key");
ABSL_FLAG(double, rate, 0,
          "Open loop: calls per second offered in total, on a fixed schedule whatever the answers (use enough "
          "--concurrency to cover rate x latency); a refused call is not retried. 0: closed loop");

namespace {

using Clock = std::chrono::steady_clock;

struct ClientResult {
  std::vector<double> latency_ms;
  std::vector<double> refused_ms;  // RESOURCE_EXHAUSTED answers: how quickly a refusal comes
  int64_t behind = 0;              // open loop: calls sent later than scheduled (threads too few)
  std::map<std::string, int64_t> failures;
  std::set<std::string> versions;
  int64_t customers = 0;
  int64_t fallback = 0;
};

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Closed- or open-loop load on hmrec_server; prints a JSON summary");
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_customers).empty()) {
    std::fprintf(stderr, "load_bench: --customers is required\n");
    return 2;
  }
  auto ids = hmrec::ReadCustomerIds(absl::GetFlag(FLAGS_customers));
  std::vector<std::string> articles;
  if (!absl::GetFlag(FLAGS_similar_articles).empty()) {
    absl::StatusOr<std::unique_ptr<hmrec::CsvReader>> r = hmrec::CsvReader::Open(absl::GetFlag(FLAGS_similar_articles));
    absl::StatusOr<bool> more = r.ok() ? (*r)->Next() : absl::StatusOr<bool>(r.status());
    while (more.ok() && *more) {
      more = (*r)->Next();
      if (more.ok() && *more && !(*r)->fields().empty()) articles.emplace_back((*r)->fields()[0]);
    }
    if (!more.ok() || articles.empty()) {
      std::fprintf(stderr, "load_bench: no article ids in %s\n", absl::GetFlag(FLAGS_similar_articles).c_str());
      return 1;
    }
  }
  if (!ids.ok()) {
    std::fprintf(stderr, "load_bench: %s\n", std::string(ids.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<std::string> key = hmrec::LoadApiKey(absl::GetFlag(FLAGS_api_key_file));
  if (!key.ok()) {
    std::fprintf(stderr, "load_bench: %s\n", std::string(key.status().message()).c_str());
    return 1;
  }
  const int per_request = std::max(1, absl::GetFlag(FLAGS_ids_per_request));
  const int concurrency = std::max(1, absl::GetFlag(FLAGS_concurrency));
  const int n_channels =
      absl::GetFlag(FLAGS_channels) > 0 ? absl::GetFlag(FLAGS_channels) : std::max(1, (concurrency + 15) / 16);
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int c = 0; c < n_channels; ++c) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetInt("grpc.channel_id", c);  // distinct args: a connection per channel
    channels.push_back(
        hmrec::CreateChannelWithKey(absl::GetFlag(FLAGS_server), grpc::InsecureChannelCredentials(), args, *key));
    if (!channels.back()->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      std::fprintf(stderr, "load_bench: cannot connect to %s\n", absl::GetFlag(FLAGS_server).c_str());
      return 1;
    }
  }

  std::atomic<int64_t> next_id{0};
  std::atomic<int64_t> measured_calls{0};
  const int64_t max_requests = absl::GetFlag(FLAGS_requests);
  const auto start = Clock::now();
  const auto measure_from =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(absl::GetFlag(FLAGS_warmup_s)));
  const auto stop_at = measure_from + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(absl::GetFlag(FLAGS_duration_s)));
  std::vector<ClientResult> results(concurrency);
  std::vector<Clock::time_point> first_measured(concurrency, Clock::time_point::max());
  std::vector<Clock::time_point> last_done(concurrency, start);
  std::vector<std::thread> clients;
  for (int t = 0; t < concurrency; ++t) {
    clients.emplace_back([&, t] {
      auto stub = hmrec::v1::Recommender::NewStub(channels[t % channels.size()]);
      ClientResult& r = results[t];
      hmrec::v1::RecommendRequest req;
      req.set_k(absl::GetFlag(FLAGS_k));
      if (!absl::GetFlag(FLAGS_garment_group).empty()) {
        req.mutable_filters()->add_garment_group_names(absl::GetFlag(FLAGS_garment_group));
      }
      hmrec::v1::RecommendResponse resp;
      hmrec::v1::SimilarArticlesRequest similar_req;
      similar_req.set_k(absl::GetFlag(FLAGS_k));
      hmrec::v1::SimilarArticlesResponse similar_resp;
      const double rate = absl::GetFlag(FLAGS_rate);
      for (int64_t call = 0;; ++call) {
        if (rate > 0) {
          // Thread t sends calls t, t + concurrency, ... of one schedule at `rate`.
          const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>((call * concurrency + t) / rate));
          if (Clock::now() > due + std::chrono::milliseconds(5)) ++r.behind;
          std::this_thread::sleep_until(due);
        }
        const auto now = Clock::now();
        const bool measuring = now >= measure_from;
        if (max_requests > 0 ? (measuring && measured_calls.load() >= max_requests) : now >= stop_at) break;
        if (measuring && max_requests > 0 && measured_calls.fetch_add(1) >= max_requests) break;
        const int64_t first = next_id.fetch_add(per_request);
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(absl::GetFlag(FLAGS_deadline_ms)));
        grpc::Status s;
        Clock::time_point t0, t1;
        if (!articles.empty()) {
          similar_req.clear_article_ids();
          for (int i = 0; i < per_request; ++i) {
            similar_req.add_article_ids(articles[static_cast<size_t>(first + i) % articles.size()]);
          }
          if (absl::GetFlag(FLAGS_similar_for_customers)) {
            similar_req.set_customer_id((*ids)[static_cast<size_t>(first) % ids->size()]);
          }
          similar_resp.Clear();
          t0 = Clock::now();
          s = stub->SimilarArticles(&ctx, similar_req, &similar_resp);
          t1 = Clock::now();
          // One list a call: shaped like one result for the checks below.
          resp.Clear();
          if (s.ok()) {
            for (int i = 0; i < per_request; ++i) resp.add_results()->set_fallback(similar_resp.fallback());
            resp.set_bundle_version(similar_resp.bundle_version());
          }
        } else {
          req.clear_customer_ids();
          for (int i = 0; i < per_request; ++i) {
            req.add_customer_ids((*ids)[static_cast<size_t>(first + i) % ids->size()]);
          }
          resp.Clear();
          t0 = Clock::now();
          s = stub->Recommend(&ctx, req, &resp);
          t1 = Clock::now();
        }
        if (!measuring) continue;
        if (first_measured[t] == Clock::time_point::max()) first_measured[t] = t0;
        last_done[t] = t1;
        if (!s.ok()) {
          ++r.failures[absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code()))];
          if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
            r.refused_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
          }
          continue;
        }
        if (resp.results_size() != per_request) {
          ++r.failures["WRONG_RESULT_COUNT"];
          continue;
        }
        r.latency_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        r.customers += per_request;
        for (const auto& rec : resp.results()) r.fallback += rec.fallback();
        r.versions.insert(resp.bundle_version());
      }
    });
  }
  for (auto& c : clients) c.join();

  ClientResult all;
  Clock::time_point begin = Clock::time_point::max(), end = start;
  for (int t = 0; t < concurrency; ++t) {
    const ClientResult& r = results[t];
    all.latency_ms.insert(all.latency_ms.end(), r.latency_ms.begin(), r.latency_ms.end());
    all.refused_ms.insert(all.refused_ms.end(), r.refused_ms.begin(), r.refused_ms.end());
    all.behind += r.behind;
    for (const auto& [code, n] : r.failures) all.failures[code] += n;
    all.versions.insert(r.versions.begin(), r.versions.end());
    all.customers += r.customers;
    all.fallback += r.fallback;
    begin = std::min(begin, first_measured[t]);
    end = std::max(end, last_done[t]);
  }
  std::sort(all.latency_ms.begin(), all.latency_ms.end());
  std::sort(all.refused_ms.begin(), all.refused_ms.end());
  const double seconds = begin < end ? std::chrono::duration<double>(end - begin).count() : 0;
  int64_t failed = 0;
  std::vector<std::string> failure_parts;
  for (const auto& [code, n] : all.failures) {
    failed += n;
    failure_parts.push_back(absl::StrCat("\"", code, "\":", n));
  }
  std::vector<std::string> versions;
  for (const std::string& v : all.versions) versions.push_back(absl::StrCat("\"", v, "\""));
  const int64_t ok_requests = static_cast<int64_t>(all.latency_ms.size());
  std::printf(
      "{\"ids_per_request\":%d,\"concurrency\":%d,\"seconds\":%.3f,\"requests\":%lld,\"customers\":%lld,"
      "\"customers_per_s\":%.1f,\"requests_per_s\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
      "\"max_ms\":%.3f,\"failed\":%lld,\"failures\":{%s},\"fallback\":%lld,\"versions\":[%s],"
      "\"offered_calls_per_s\":%.1f,\"late_sends\":%lld,\"refused_p50_ms\":%.3f,\"refused_p99_ms\":%.3f}\n",
      per_request, concurrency, seconds, static_cast<long long>(ok_requests), static_cast<long long>(all.customers),
      seconds > 0 ? static_cast<double>(all.customers) / seconds : 0.0,
      seconds > 0 ? static_cast<double>(ok_requests) / seconds : 0.0, hmrec::Quantile(all.latency_ms, 0.5),
      hmrec::Quantile(all.latency_ms, 0.9), hmrec::Quantile(all.latency_ms, 0.99),
      all.latency_ms.empty() ? 0.0 : all.latency_ms.back(), static_cast<long long>(failed),
      absl::StrJoin(failure_parts, ",").c_str(), static_cast<long long>(all.fallback),
      absl::StrJoin(versions, ",").c_str(), absl::GetFlag(FLAGS_rate), static_cast<long long>(all.behind),
      hmrec::Quantile(all.refused_ms, 0.5), hmrec::Quantile(all.refused_ms, 0.99));
  return failed > 0 ? 3 : 0;
}
