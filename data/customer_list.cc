#include "data/customer_list.h"

#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "data/csv.h"
#include "data/ids.h"

namespace hmrec {

absl::StatusOr<std::vector<std::string>> ReadCustomerIds(const std::string& path) {
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
  if (ids.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no customers"));
  return ids;
}

}  // namespace hmrec
