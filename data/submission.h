#pragma once

// Kaggle submission files: "customer_id,prediction" with up to 12
// space-separated 10-digit article ids per customer.
//
// Reading never stops at a bad row: malformed rows, ids that are not 10
// digits, rows with fewer than 12 ids and repeated customers are counted and
// reported with examples, and the valid part of each row is kept — the way
// Kaggle would score such a file.

#include <cstdint>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace hmrec {

inline constexpr char kSubmissionHeader[] = "customer_id,prediction";

struct SubmissionCheck {
  int64_t rows = 0;
  int64_t malformed_rows = 0;       // wrong field count or bad customer id
  int64_t invalid_article_ids = 0;  // tokens that are not 10 digits
  int64_t short_rows = 0;           // fewer than 12 valid ids
  int64_t duplicate_customers = 0;  // a later row for the same customer is ignored
  int64_t rows_with_12_valid = 0;
  std::vector<std::string> examples;  // first few problems, "file:line: what"

  std::string Summary() const;
};

using Submission = absl::flat_hash_map<std::string, std::vector<int32_t>>;

// Reads a submission. Errors only when the file cannot be read or is not a
// submission at all (bad header, broken CSV quoting).
absl::StatusOr<Submission> ReadSubmission(const std::string& path, SubmissionCheck* check);

// Appends one "customer_id,id id id\n" line to `out`.
void AppendSubmissionRow(absl::string_view customer_id, const std::vector<int32_t>& articles, std::string* out);

// The bundle version that answered a (part of a) submission, kept beside it
// as PATH (one line, e.g. part-0-of-4.csv.bundle): written through a
// temporary file renamed in place; read back without its newline.
// hmrec_client --bundle_version_out writes it, hmrec_evaluate merge reads it.
absl::Status WriteBundleVersionFile(const std::string& path, const std::string& version);
absl::StatusOr<std::string> ReadBundleVersionFile(const std::string& path);

}  // namespace hmrec
