#include "client/recorder.h"

#include <chrono>
#include <random>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/batch_client.h"
#include "common/progress.h"
#include "common/rng.h"
#include "data/csv.h"
#include "proto/recommender.grpc.pb.h"

namespace hmrec {
namespace {

// FNV-1a, 64 bits: the same on every machine and every run.
uint64_t Fnv1a(uint64_t h, absl::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h ^ 0xff;  // a field separator
}

std::string Thousands(int64_t v) {
  std::string s = absl::StrCat(v);
  for (int i = static_cast<int>(s.size()) - 3; i > (v < 0 ? 1 : 0); i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

}  // namespace

namespace {

uint64_t RowHash(absl::string_view t_dat, absl::string_view customer_id, absl::string_view article_id,
                 absl::string_view price, absl::string_view channel) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (absl::string_view f : {t_dat, customer_id, article_id, price, channel}) h = Fnv1a(h, f);
  return h;
}

}  // namespace

std::string RowEventId(absl::string_view t_dat, absl::string_view customer_id, absl::string_view article_id,
                       absl::string_view price, absl::string_view channel, int occurrence) {
  return absl::StrFormat("%016x-%d", RowHash(t_dat, customer_id, article_id, price, channel), occurrence);
}

std::string RecordReport::Summary(const std::string& path) const {
  return absl::StrCat(Thousands(events), " events from ", path, " in ", absl::StrFormat("%.1f", wall_seconds), " s (",
                      Thousands(static_cast<int64_t>(wall_seconds > 0 ? events / wall_seconds : 0)),
                      "/s): ", Thousands(recorded), " recorded, ", Thousands(duplicates), " duplicates, ",
                      Thousands(expired), " expired, ", Thousands(already_in_bundle), " already in the served bundle; ",
                      calls, " calls, ", retries, " retries");
}

absl::Status RecordFile(const std::shared_ptr<grpc::Channel>& channel, const std::string& path,
                        const RecordOptions& options, RecordReport* report) {
  *report = RecordReport();
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<CsvReader>> reader = CsvReader::Open(path);
  if (!reader.ok()) return reader.status();
  CsvReader& csv = **reader;
  absl::StatusOr<bool> header = csv.Next();
  if (!header.ok()) return header.status();
  const std::vector<absl::string_view> expected = {"t_dat", "customer_id", "article_id", "price", "sales_channel_id"};
  if (!*header || csv.fields() != expected) {
    return csv.RecordError("expected the header t_dat,customer_id,article_id,price,sales_channel_id");
  }
  auto stub = v1::Recommender::NewStub(channel);
  ProgressReporter progress("recording", csv.file_size(), "bytes");
  progress.set_enabled(options.show_progress);
  // Occurrences so far of each row (by its hash). Identical rows share
  // their date, so while the file's dates never go back (the Kaggle file is
  // in date order) only the current date's rows are kept: memory stays at
  // one day's rows, not 31 million. A date going back keeps all from then.
  absl::flat_hash_map<uint64_t, int> seen;
  std::string newest_date;
  bool in_date_order = true;
  Rng rng(std::random_device{}());
  v1::RecordPurchasesRequest request;
  int64_t first_line = 0;

  auto send = [&]() -> absl::Status {
    if (request.events_size() == 0) return absl::OkStatus();
    Backoff backoff(BatchClientOptions().initial_backoff_ms, BatchClientOptions().max_backoff_ms, rng.Next());
    for (int attempt = 1;; ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(options.deadline_ms));
      v1::RecordPurchasesResponse response;
      grpc::Status s = stub->RecordPurchases(&ctx, request, &response);
      ++report->calls;
      if (s.ok()) {
        report->events += request.events_size();
        report->recorded += response.recorded();
        report->duplicates += response.duplicates();
        report->expired += response.expired();
        report->already_in_bundle += response.already_in_bundle();
        request.clear_events();
        return absl::OkStatus();
      }
      const std::string where = absl::StrCat(path, " lines ", first_line, "..", csv.line());
      if (!IsTransient(s) || attempt >= options.max_attempts) {
        return absl::Status(
            static_cast<absl::StatusCode>(s.error_code()),
            absl::StrCat("RecordPurchases for ", where, " failed after ", attempt, " attempt(s): ", s.error_message()));
      }
      ++report->retries;
      backoff.Wait();
    }
  };

  while (true) {
    absl::StatusOr<bool> more = csv.Next();
    if (!more.ok()) return more.status();
    if (!*more) break;
    const std::vector<absl::string_view>& f = csv.fields();
    if (f.size() != 5) return csv.RecordError(absl::StrCat("expected 5 fields, found ", f.size()));
    float price = 0;
    int channel = 0;
    if (!absl::SimpleAtof(f[3], &price)) return csv.RecordError(absl::StrCat("price '", f[3], "' is not a number"));
    if (!absl::SimpleAtoi(f[4], &channel)) {
      return csv.RecordError(absl::StrCat("sales_channel_id '", f[4], "' is not a number"));
    }
    if (request.events_size() == 0) first_line = csv.line();
    v1::PurchaseEvent* e = request.add_events();
    e->set_t_dat(std::string(f[0]));
    e->set_customer_id(std::string(f[1]));
    e->set_article_id(std::string(f[2]));
    e->set_price(price);
    e->set_sales_channel_id(channel);
    if (in_date_order && f[0] != newest_date) {
      if (f[0] > newest_date) {
        seen.clear();
        newest_date = std::string(f[0]);
      } else {
        in_date_order = false;
      }
    }
    const int occurrence = seen[RowHash(f[0], f[1], f[2], f[3], f[4])]++;
    e->set_event_id(RowEventId(f[0], f[1], f[2], f[3], f[4], occurrence));
    if (request.events_size() >= options.batch_size) {
      absl::Status s = send();
      if (!s.ok()) return s;
      progress.Update(csv.bytes_consumed());
    }
  }
  absl::Status s = send();
  if (!s.ok()) return s;
  progress.Finish(csv.file_size());
  report->wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return absl::OkStatus();
}

}  // namespace hmrec
