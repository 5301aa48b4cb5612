#include "evaluate/split.h"

#include <algorithm>
#include <filesystem>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/progress.h"
#include "common/status_macros.h"
#include "data/csv.h"
#include "data/customer_list.h"
#include "data/dates.h"
#include "data/hm_data.h"

namespace hmrec::evaluate {
namespace fs = std::filesystem;

namespace {

// Returns the last t_dat of a transactions file (which need not be sorted).
absl::StatusOr<int32_t> LastDay(const std::string& path, bool show_progress) {
  ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> r, CsvReader::Open(path));
  ASSIGN_OR_RETURN(bool has_header, r->Next());
  if (!has_header) return absl::InvalidArgumentError(absl::StrCat(path, ": empty file"));
  ProgressReporter progress("scanning dates", r->file_size() >> 20, "MiB");
  progress.set_enabled(show_progress);
  std::string last_text;
  int32_t last = INT32_MIN;
  int64_t rows = 0;
  while (true) {
    ASSIGN_OR_RETURN(bool has_row, r->Next());
    if (!has_row) break;
    if (r->fields().empty()) return r->RecordError("empty row");
    if ((++rows & 0xFFFF) == 0) progress.Update(r->bytes_consumed() >> 20);
    absl::string_view t = r->fields()[0];
    if (t == last_text) continue;
    absl::StatusOr<int32_t> d = ParseDate(t);
    if (!d.ok()) return r->RecordError(absl::StrCat("column t_dat: ", d.status().message()));
    last_text.assign(t.data(), t.size());
    last = std::max(last, *d);
  }
  if (rows == 0) return absl::InvalidArgumentError(absl::StrCat(path, ": no transactions"));
  progress.Finish(r->file_size() >> 20);
  return last;
}

absl::Status CopyInto(const fs::path& from, const fs::path& to_dir) {
  std::error_code ec;
  const fs::path to = to_dir / from.filename();
  const fs::path tmp = to.string() + ".tmp";
  fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, ec);
  if (!ec) fs::rename(tmp, to, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot copy ", from.string(), ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

absl::Status SplitHoldout(const std::string& data_dir, int holdout_days, const std::string& out_dir, bool show_progress,
                          SplitResult* result, const SplitExtras& extras) {
  if (holdout_days < 1) {
    return absl::InvalidArgumentError(absl::StrCat("holdout days = ", holdout_days, ": need >= 1"));
  }
  const fs::path src(data_dir);
  const fs::path train = fs::path(out_dir) / kTrainDir;
  std::error_code ec;
  fs::create_directories(train, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", train.string(), ": ", ec.message()));

  absl::flat_hash_set<std::string> erased;
  if (!extras.erasures.empty()) {
    ASSIGN_OR_RETURN(const std::vector<std::string> ids, ReadCustomerIds(extras.erasures, /*allow_empty=*/true));
    erased.insert(ids.begin(), ids.end());
  }
  const std::string tx_path = (src / kTransactionsFile).string();
  ASSIGN_OR_RETURN(int32_t last_day, LastDay(tx_path, show_progress));
  for (const std::string& extra : extras.transactions) {
    absl::StatusOr<int32_t> last = LastDay(extra, show_progress);
    // An export of a store that held nothing is a header alone.
    if (!last.ok() && !absl::StrContains(last.status().message(), "no transactions")) return last.status();
    if (last.ok()) last_day = std::max(last_day, *last);
  }
  const int32_t first_holdout = last_day - holdout_days + 1;

  ASSIGN_OR_RETURN(std::unique_ptr<CsvWriter> truth_out, CsvWriter::Open((fs::path(out_dir) / kTruthFile).string()));
  std::unique_ptr<CsvWriter> extra_out;
  if (!extras.transactions.empty()) {
    ASSIGN_OR_RETURN(extra_out, CsvWriter::Open((train / kExtraTransactionsFile).string()));
  }
  bool truth_header = false;
  // One file's rows: the held-out days to truth.csv, the others to `before`.
  auto split = [&](const std::string& path, CsvWriter* before, bool header, int64_t* before_rows) -> absl::Status {
    ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> r, CsvReader::Open(path));
    ASSIGN_OR_RETURN(bool has_header, r->Next());
    if (!has_header) return absl::InvalidArgumentError(absl::StrCat(path, ": empty file"));
    if (r->fields().size() < 2 || r->fields()[0] != "t_dat" || r->fields()[1] != "customer_id") {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":1: expected the transactions header (t_dat,customer_id,...)"));
    }
    if (header) before->Row(r->fields());
    if (!truth_header) truth_out->Row(r->fields());
    truth_header = true;
    ProgressReporter progress("splitting " + path, r->file_size() >> 20, "MiB");
    progress.set_enabled(show_progress);
    std::string last_text;
    int32_t day = 0;
    int64_t rows = 0;
    while (true) {
      ASSIGN_OR_RETURN(bool has_row, r->Next());
      if (!has_row) break;
      const auto& f = r->fields();
      if (f.size() < 2) return r->RecordError("expected t_dat,customer_id,...");
      if (f[0] != last_text) {
        absl::StatusOr<int32_t> d = ParseDate(f[0]);
        if (!d.ok()) return r->RecordError(absl::StrCat("column t_dat: ", d.status().message()));
        day = *d;
        last_text = std::string(f[0]);
      }
      if ((++rows & 0xFFFF) == 0) progress.Update(r->bytes_consumed() >> 20);
      if (!erased.empty() && erased.contains(f[1])) {
        ++result->erased_rows;
        continue;
      }
      CsvWriter& out = day >= first_holdout ? *truth_out : *before;
      (day >= first_holdout ? result->holdout_rows : *before_rows)++;
      for (absl::string_view v : f) out.Field(v);
      out.EndRow();
    }
    progress.Finish(r->file_size() >> 20);
    return absl::OkStatus();
  };
  {
    ASSIGN_OR_RETURN(std::unique_ptr<CsvWriter> train_out, CsvWriter::Open((train / kTransactionsFile).string()));
    RETURN_IF_ERROR(split(tx_path, train_out.get(), true, &result->train_rows));
    RETURN_IF_ERROR(train_out->Close());
  }
  for (size_t i = 0; i < extras.transactions.size(); ++i) {
    // The extra files joined, one header.
    RETURN_IF_ERROR(split(extras.transactions[i], extra_out.get(), i == 0, &result->extra_rows));
  }
  if (extra_out) RETURN_IF_ERROR(extra_out->Close());
  RETURN_IF_ERROR(truth_out->Close());
  RETURN_IF_ERROR(CopyInto(src / kArticlesFile, train));
  RETURN_IF_ERROR(CopyInto(src / kCustomersFile, train));
  if (fs::exists(src / kSampleSubmissionFile)) {
    RETURN_IF_ERROR(CopyInto(src / kSampleSubmissionFile, train));
  }
  result->first_holdout_day = first_holdout;
  result->last_day = last_day;
  return absl::OkStatus();
}

}  // namespace hmrec::evaluate
