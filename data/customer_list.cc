#include "data/customer_list.h"

#include <algorithm>
#include <filesystem>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "data/csv.h"
#include "data/hm_data.h"
#include "data/ids.h"

namespace hmrec {

absl::StatusOr<std::vector<std::string>> ReadCustomerIds(const std::string& path, bool allow_empty) {
  ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> reader, CsvReader::Open(path));
  ASSIGN_OR_RETURN(bool any, reader->Next());
  if (!any || reader->fields().empty() || reader->fields()[0] != "customer_id") {
    return absl::InvalidArgumentError(absl::StrCat(path, ":1: expected a header starting with customer_id"));
  }
  std::vector<std::string> ids;
  absl::flat_hash_map<std::string, int64_t> line_of;
  while (true) {
    ASSIGN_OR_RETURN(bool more, reader->Next());
    if (!more) break;
    const absl::string_view id = reader->fields()[0];
    if (!IsValidCustomerId(id)) {
      std::string shown(id.substr(0, 80));
      return reader->RecordError(
          absl::StrCat("customer_id '", absl::CHexEscape(shown), "' is not 64 lowercase hex characters"));
    }
    auto [it, inserted] = line_of.emplace(std::string(id), reader->line());
    if (!inserted) {
      return reader->RecordError(absl::StrCat("customer ", id, " is listed twice (first on line ", it->second, ")"));
    }
    ids.emplace_back(id);
  }
  if (ids.empty() && !allow_empty) return absl::InvalidArgumentError(absl::StrCat(path, ": no customers"));
  return ids;
}

std::string CustomerListIn(const std::string& data_dir) {
  const std::filesystem::path d(data_dir);
  return std::filesystem::exists(d / "sample_submission.csv") ? (d / "sample_submission.csv").string()
                                                              : (d / "customers.csv").string();
}

void Shard::Range(int64_t n) {
  const int64_t base = n / count, extra = n % count;
  begin = index * base + std::min<int64_t>(index, extra);
  end = begin + base + (index < extra ? 1 : 0);
}

absl::StatusOr<Shard> ParseShard(const std::string& text) {
  const std::vector<std::string> parts = absl::StrSplit(text, '/');
  Shard s;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &s.index) || !absl::SimpleAtoi(parts[1], &s.count) ||
      s.count < 1 || s.index < 0 || s.index >= s.count) {
    return absl::InvalidArgumentError(
        absl::StrCat("shard '", text, "' is not I/N with 0 <= I < N (e.g. 0/4 for the first of four parts)"));
  }
  return s;
}

}  // namespace hmrec
