// client: asks a running hmrec_server for recommendations.
//
//   hmrec_client --server HOST:PORT --customer-id ID [--articles articles.csv] [--k 12]
//       prints the recommendations readably (rank, article, product type and name, score,
//       personalised or fallback).
//   hmrec_client --server HOST:PORT --all-customers (--customers FILE | --data DIR) > submission.csv
//       writes a Kaggle submission for every customer of FILE (sample_submission.csv or
//       customers.csv; with --data, DIR/sample_submission.csv if present, else DIR/customers.csv),
//       in input order, exactly once each. Progress and a summary go to stderr. If any customer
//       cannot be served after the retries it exits 1 naming them, and writes nothing.
//       With --shard I/N it serves only the I-th of N contiguous parts of that list (one part per
//       machine or Job pod); `hmrec_evaluate merge` joins the parts into the same submission.
//   hmrec_client --server HOST:PORT --record transactions.csv
//       replays purchases as RecordPurchases events.
//   hmrec_client --server HOST:PORT --erase ERASURES.csv
//       erases the customers of a customer_id list (EraseCustomer; a key with scope "erase"), in
//       batches, retried on transient errors (erasing is idempotent).
//
// Every mode sends the API key of --api_key_file (or $HMREC_API_KEY) with each call.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/api_key.h"
#include "client/batch_client.h"
#include "client/recorder.h"
#include "common/text_proto.h"
#include "data/customer_list.h"
#include "data/hm_data.h"
#include "data/ids.h"
#include "data/submission.h"
#include "proto/recommender.grpc.pb.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "host:port of hmrec_server");
ABSL_FLAG(std::string, customer_id, "", "One customer to show recommendations for");
ABSL_FLAG(std::string, erase, "",
          "A CSV whose first column is customer_id: erase those customers (EraseCustomer, scope erase)");
ABSL_FLAG(std::string, record, "",
          "Replay this transactions file (Kaggle layout) to the server as RecordPurchases events");
ABSL_FLAG(bool, all_customers, false, "Write a submission for every customer to stdout");
ABSL_FLAG(std::string, customers, "", "sample_submission.csv or customers.csv: who --all-customers serves");
ABSL_FLAG(std::string, bundle_version_out, "",
          "With --all-customers: write the bundle version that answered every customer to this file (e.g. "
          "PART.csv.bundle beside a --shard part: hmrec_evaluate merge requires one version across the parts)");
ABSL_FLAG(std::string, shard, "",
          "I/N: with --all-customers, serve only part I (0-based) of N contiguous parts of the customer list; "
          "hmrec_evaluate merge joins the parts");
ABSL_FLAG(std::string, data, "", "A directory of Kaggle files: customers (and articles.csv for names) from there");
ABSL_FLAG(std::string, articles, "", "articles.csv, for product names in --customer-id output");
ABSL_FLAG(int, k, 12, "Articles per customer (--all-customers always asks 12)");
ABSL_FLAG(int, batch_size, 1000, "Customers per call");
ABSL_FLAG(int, in_flight, 4,
          "Calls in flight at once (twice the server's workers keeps every worker busy; lowered while the server "
          "refuses calls for a full queue)");
ABSL_FLAG(int, deadline_ms, 30000, "Deadline of each call");
ABSL_FLAG(int, max_attempts, 10, "Attempts per batch before giving up (retries back off exponentially)");
ABSL_FLAG(double, max_rate, 0, "Stay under this many customers/s (0: as fast as the server answers)");
ABSL_FLAG(bool, quiet, false, "No progress line");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA bundle to verify the server's certificate with; enables TLS");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate chain, for servers that require mutual TLS");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_server_name, "",
          "Name to verify in the server's certificate (default: the host of --server)");
ABSL_FLAG(std::string, api_key_file, "",
          "A file holding the API key sent with every call (authorization: Bearer KEY); default: the environment "
          "variable HMREC_API_KEY, else no key");
ABSL_FLAG(std::string, load_balancing, "pick_first",
          "gRPC load-balancing policy: pick_first, or round_robin to spread calls over every address the "
          "server name resolves to (e.g. dns:///hmrec-server-headless:50051 in Kubernetes)");

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "client: %s\n", message.c_str());
  return 1;
}

std::string ReadFileOrDie(const std::string& flag, const std::string& path) {
  absl::StatusOr<std::string> content = hmrec::ReadFileToString(path);
  if (!content.ok() || content->empty()) {
    std::fprintf(stderr, "client: --%s: cannot read %s\n", flag.c_str(), path.c_str());
    std::exit(1);
  }
  return *content;
}

std::shared_ptr<grpc::ChannelCredentials> Credentials() {
  if (absl::GetFlag(FLAGS_tls_ca).empty()) {
    if (!absl::GetFlag(FLAGS_tls_cert).empty()) {
      std::fprintf(stderr, "client: --tls_cert needs --tls_ca (the CA that signed the server's certificate)\n");
      std::exit(1);
    }
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = ReadFileOrDie("tls_ca", absl::GetFlag(FLAGS_tls_ca));
  if (!absl::GetFlag(FLAGS_tls_cert).empty()) {
    o.pem_cert_chain = ReadFileOrDie("tls_cert", absl::GetFlag(FLAGS_tls_cert));
    o.pem_private_key = ReadFileOrDie("tls_key", absl::GetFlag(FLAGS_tls_key));
  }
  return grpc::SslCredentials(o);
}

std::shared_ptr<grpc::Channel> Connect() {
  grpc::ChannelArguments args;
  if (!absl::GetFlag(FLAGS_tls_server_name).empty()) {
    args.SetSslTargetNameOverride(absl::GetFlag(FLAGS_tls_server_name));
  }
  args.SetMaxReceiveMessageSize(256 << 20);
  // Reconnect as often as the calls are retried: gRPC's own default backs a
  // lost connection off to 1, 1.6, 2.6, 4.1, 6.6 s ..., and calls on the
  // channel fail at once in between, so a server that is back after a few
  // seconds could use up a batch's attempts before the channel tried again.
  const hmrec::BatchClientOptions defaults;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, defaults.initial_backoff_ms);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetLoadBalancingPolicyName(absl::GetFlag(FLAGS_load_balancing));
  absl::StatusOr<std::string> key = hmrec::LoadApiKey(absl::GetFlag(FLAGS_api_key_file));
  if (!key.ok()) {
    std::fprintf(stderr, "client: %s\n", std::string(key.status().message()).c_str());
    std::exit(1);
  }
  return hmrec::CreateChannelWithKey(absl::GetFlag(FLAGS_server), Credentials(), args, *key);
}

std::string InData(const std::string& name) {
  return absl::GetFlag(FLAGS_data).empty() ? "" : (std::filesystem::path(absl::GetFlag(FLAGS_data)) / name).string();
}

int ShowOne(const std::string& id) {
  if (!hmrec::IsValidCustomerId(id)) return Fail("--customer-id '" + id + "' is not 64 lowercase hex characters");
  std::string articles_path = absl::GetFlag(FLAGS_articles);
  if (articles_path.empty() && std::filesystem::exists(InData("articles.csv"))) articles_path = InData("articles.csv");
  hmrec::Dataset names;
  if (!articles_path.empty()) {
    absl::Status s = hmrec::ReadArticles(articles_path, &names);
    if (!s.ok()) return Fail(std::string(s.message()));
  }
  auto stub = hmrec::v1::Recommender::NewStub(Connect());
  hmrec::v1::RecommendRequest req;
  req.add_customer_ids(id);
  req.set_k(absl::GetFlag(FLAGS_k));
  req.set_explain(true);
  hmrec::v1::RecommendResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(absl::GetFlag(FLAGS_deadline_ms)));
  grpc::Status s = stub->Recommend(&ctx, req, &resp);
  if (!s.ok()) return Fail(absl::StrFormat("Recommend failed: %d %s", s.error_code(), s.error_message()));
  if (resp.results_size() != 1) return Fail("the server answered no result");
  const hmrec::v1::Recommendation& r = resp.results(0);
  const std::string how = r.fallback() ? absl::StrCat("fallback: ", r.fallback_reason(), ", popular articles")
                          : r.ranked() ? "personalised, ranked"
                                       : "personalised";
  const std::string events =
      r.events_applied() > 0 ? absl::StrCat(", with ", r.events_applied(), " purchase(s) recorded since") : "";
  std::printf("customer %s: %s%s (bundle %s)\n", id.c_str(), how.c_str(), events.c_str(),
              resp.bundle_version().c_str());
  std::printf("%4s  %-10s  %7s  %-22s  %-28s  %s\n", "rank", "article_id", "score", "product_type", "prod_name", "why");
  for (int i = 0; i < r.article_ids_size(); ++i) {
    std::string type, name;
    auto aid = hmrec::ParseArticleId(r.article_ids(i));
    if (aid.ok()) {
      if (auto row = names.FindArticle(*aid)) {
        type = names.articles[*row].product_type_name;
        name = names.articles[*row].prod_name;
      }
    }
    std::string why;
    if (i < r.explanations_size()) {
      for (const hmrec::v1::Reason& reason : r.explanations(i).reasons()) {
        std::string text = reason.text();
        if (!reason.anchor_article_id().empty()) {
          auto anchor = hmrec::ParseArticleId(reason.anchor_article_id());
          if (anchor.ok()) {
            if (auto row = names.FindArticle(*anchor)) {
              absl::StrAppend(&text, " (", names.articles[*row].prod_name, ")");
            }
          }
        }
        absl::StrAppend(&why, why.empty() ? "" : "; ", text, " #", reason.rank());
      }
    }
    std::printf("%4d  %-10s  %7.4f  %-22s  %-28s  %s\n", i + 1, r.article_ids(i).c_str(), r.scores(i), type.c_str(),
                name.c_str(), why.c_str());
  }
  return 0;
}

int WriteAll() {
  std::string path = absl::GetFlag(FLAGS_customers);
  if (path.empty() && !absl::GetFlag(FLAGS_data).empty()) path = hmrec::CustomerListIn(absl::GetFlag(FLAGS_data));
  if (path.empty()) return Fail("--all-customers needs --customers FILE or --data DIR");
  auto ids = hmrec::ReadCustomerIds(path);
  if (!ids.ok()) return Fail(std::string(ids.status().message()));
  std::fprintf(stderr, "client: %zu customers from %s\n", ids->size(), path.c_str());
  if (!absl::GetFlag(FLAGS_shard).empty()) {
    absl::StatusOr<hmrec::Shard> shard = hmrec::ParseShard(absl::GetFlag(FLAGS_shard));
    if (!shard.ok()) return Fail(absl::StrCat("--shard: ", shard.status().message()));
    shard->Range(static_cast<int64_t>(ids->size()));
    std::fprintf(stderr, "client: part %d of %d: customers %lld..%lld of the list\n", shard->index, shard->count,
                 static_cast<long long>(shard->begin), static_cast<long long>(shard->end) - 1);
    if (shard->begin == shard->end) return Fail("--shard: this part is empty (more parts than customers)");
    *ids = std::vector<std::string>(ids->begin() + shard->begin, ids->begin() + shard->end);
  }

  hmrec::BatchClientOptions o;
  o.k = 12;
  o.batch_size = absl::GetFlag(FLAGS_batch_size);
  o.in_flight = absl::GetFlag(FLAGS_in_flight);
  o.deadline_ms = absl::GetFlag(FLAGS_deadline_ms);
  o.max_attempts = absl::GetFlag(FLAGS_max_attempts);
  o.max_rate = absl::GetFlag(FLAGS_max_rate);
  o.show_progress = !absl::GetFlag(FLAGS_quiet);
  std::vector<int32_t> articles;
  hmrec::BatchClientReport report;
  absl::Status s = hmrec::RecommendAll(Connect(), *ids, o, &articles, &report);
  if (!s.ok()) return Fail(std::string(s.message()) + "; no submission written");

  // Only now, with every customer served, does anything reach stdout.
  std::string out = std::string(hmrec::kSubmissionHeader) + "\n";
  std::vector<int32_t> row(12);
  for (size_t i = 0; i < ids->size(); ++i) {
    row.assign(articles.begin() + i * 12, articles.begin() + (i + 1) * 12);
    hmrec::AppendSubmissionRow((*ids)[i], row, &out);
    if (out.size() > (8 << 20) || i + 1 == ids->size()) {
      if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size()) return Fail("cannot write to stdout");
      out.clear();
    }
  }
  if (std::fflush(stdout) != 0) return Fail("cannot write to stdout");
  if (const std::string path = absl::GetFlag(FLAGS_bundle_version_out); !path.empty()) {
    absl::Status s = hmrec::WriteBundleVersionFile(path, report.bundle_version);
    if (!s.ok()) return Fail(std::string(s.message()));
  }
  std::fprintf(stderr, "client: %s\n", report.Summary().c_str());
  return 0;
}

int Record(const std::string& path) {
  hmrec::RecordOptions o;
  o.batch_size = absl::GetFlag(FLAGS_batch_size);
  o.deadline_ms = absl::GetFlag(FLAGS_deadline_ms);
  o.max_attempts = absl::GetFlag(FLAGS_max_attempts);
  o.show_progress = !absl::GetFlag(FLAGS_quiet);
  hmrec::RecordReport report;
  absl::Status s = hmrec::RecordFile(Connect(), path, o, &report);
  if (!s.ok()) {
    std::fprintf(stderr, "client: before the failure: %s\n", report.Summary(path).c_str());
    return Fail(std::string(s.message()));
  }
  std::fprintf(stderr, "client: %s\n", report.Summary(path).c_str());
  return 0;
}

int Erase(const std::string& path) {
  absl::StatusOr<std::vector<std::string>> ids = hmrec::ReadCustomerIds(path);
  if (!ids.ok()) return Fail(std::string(ids.status().message()));
  auto stub = hmrec::v1::Recommender::NewStub(Connect());
  hmrec::Rng rng(std::random_device{}());
  const size_t batch = static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_batch_size)));
  int64_t erased = 0, already = 0, events = 0;
  for (size_t begin = 0; begin < ids->size(); begin += batch) {
    hmrec::v1::EraseCustomerRequest request;
    for (size_t i = begin; i < std::min(ids->size(), begin + batch); ++i) request.add_customer_ids((*ids)[i]);
    hmrec::Backoff backoff(hmrec::BatchClientOptions().initial_backoff_ms, hmrec::BatchClientOptions().max_backoff_ms,
                           rng.Next());
    for (int attempt = 1;; ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(absl::GetFlag(FLAGS_deadline_ms)));
      hmrec::v1::EraseCustomerResponse response;
      const grpc::Status s = stub->EraseCustomer(&ctx, request, &response);
      if (s.ok()) {
        erased += response.erased();
        already += response.already_erased();
        events += response.events_deleted();
        break;
      }
      if (!hmrec::IsTransient(s) || attempt >= absl::GetFlag(FLAGS_max_attempts)) {
        return Fail(absl::StrCat("EraseCustomer for ", path, " rows ", begin + 2, "..",
                                 begin + 1 + request.customer_ids_size(), " failed after ", attempt,
                                 " attempt(s) (the rows before are erased): ", s.error_message()));
      }
      backoff.Wait();
    }
  }
  std::fprintf(stderr,
               "client: %zu customers of %s: %lld erased, %lld erased before; %lld recorded purchases deleted\n",
               ids->size(), path.c_str(), static_cast<long long>(erased), static_cast<long long>(already),
               static_cast<long long>(events));
  return 0;
}

// Flags may be spelled with dashes (--all-customers) as well as underscores.
std::vector<char*> Underscored(int argc, char** argv, std::vector<std::string>* storage) {
  storage->assign(argv, argv + argc);
  std::vector<char*> out;
  for (std::string& a : *storage) {
    if (a.rfind("--", 0) == 0) {
      const size_t end = std::min(a.find('='), a.size());
      for (size_t i = 2; i < end; ++i) a[i] = a[i] == '-' ? '_' : a[i];
    }
    out.push_back(a.data());
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> storage;
  std::vector<char*> args = Underscored(argc, argv, &storage);
  argv = args.data();
  absl::SetProgramUsageMessage(
      "hmrec_client --server HOST:PORT (--customer-id ID | --all-customers --customers FILE > submission.csv | "
      "--record TRANSACTIONS.csv | --erase ERASURES.csv)");
  absl::ParseCommandLine(argc, argv);
  const int modes = !absl::GetFlag(FLAGS_customer_id).empty() + absl::GetFlag(FLAGS_all_customers) +
                    !absl::GetFlag(FLAGS_record).empty() + !absl::GetFlag(FLAGS_erase).empty();
  if (modes != 1) {
    return Fail("give exactly one of --customer-id ID, --all-customers, --record FILE and --erase FILE");
  }
  if (!absl::GetFlag(FLAGS_shard).empty() && !absl::GetFlag(FLAGS_all_customers)) {
    return Fail("--shard I/N goes with --all-customers");
  }
  if (!absl::GetFlag(FLAGS_record).empty()) return Record(absl::GetFlag(FLAGS_record));
  if (!absl::GetFlag(FLAGS_erase).empty()) return Erase(absl::GetFlag(FLAGS_erase));
  return absl::GetFlag(FLAGS_all_customers) ? WriteAll() : ShowOne(absl::GetFlag(FLAGS_customer_id));
}
