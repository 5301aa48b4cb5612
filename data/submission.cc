#include "data/submission.h"

#include "common/text_proto.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "data/csv.h"
#include "data/ids.h"

namespace hmrec {
namespace {

constexpr size_t kMaxExamples = 10;
constexpr size_t kK = 12;

}  // namespace

std::string SubmissionCheck::Summary() const {
  std::string s = absl::StrCat(rows, " rows, ", rows_with_12_valid, " with 12 valid ids");
  if (malformed_rows) absl::StrAppend(&s, ", ", malformed_rows, " malformed");
  if (invalid_article_ids) absl::StrAppend(&s, ", ", invalid_article_ids, " invalid article ids");
  if (short_rows) absl::StrAppend(&s, ", ", short_rows, " with fewer than 12 ids");
  if (duplicate_customers) absl::StrAppend(&s, ", ", duplicate_customers, " repeated customers");
  for (const std::string& e : examples) absl::StrAppend(&s, "\n  e.g. ", e);
  return s;
}

absl::StatusOr<Submission> ReadSubmission(const std::string& path, SubmissionCheck* check) {
  ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> reader, CsvReader::Open(path));
  ASSIGN_OR_RETURN(bool has_header, reader->Next());
  if (!has_header || reader->fields().size() != 2 || reader->fields()[0] != "customer_id" ||
      reader->fields()[1] != "prediction") {
    return absl::InvalidArgumentError(absl::StrCat(path, ":1: header must be '", kSubmissionHeader, "'"));
  }
  auto note = [&](std::string what) {
    if (check->examples.size() < kMaxExamples) {
      check->examples.push_back(absl::StrCat(path, ":", reader->line(), ": ", what));
    }
  };
  Submission sub;
  while (true) {
    ASSIGN_OR_RETURN(bool has_row, reader->Next());
    if (!has_row) break;
    ++check->rows;
    const auto& f = reader->fields();
    if (f.size() != 2 || !IsValidCustomerId(f[0])) {
      ++check->malformed_rows;
      note(f.size() != 2 ? absl::StrCat("expected 2 fields, got ", f.size())
                         : absl::StrCat("bad customer_id '", f[0], "'"));
      continue;
    }
    std::vector<int32_t> ids;
    for (absl::string_view tok : absl::StrSplit(f[1], ' ', absl::SkipEmpty())) {
      absl::StatusOr<int32_t> id = ParseArticleId(tok);
      if (tok.size() != kArticleIdDigits || !id.ok()) {
        ++check->invalid_article_ids;
        note(absl::StrCat("bad article id '", tok, "' (need 10 digits)"));
        continue;
      }
      ids.push_back(*id);
    }
    if (ids.size() < kK) {
      ++check->short_rows;
      note(absl::StrCat(ids.size(), " valid article ids, expected 12"));
    } else {
      ++check->rows_with_12_valid;
    }
    auto [it, inserted] = sub.try_emplace(std::string(f[0]), std::move(ids));
    if (!inserted) {
      ++check->duplicate_customers;
      note(absl::StrCat("customer ", f[0], " appears again; the first row counts"));
    }
  }
  return sub;
}

void AppendSubmissionRow(absl::string_view customer_id, const std::vector<int32_t>& articles, std::string* out) {
  out->append(customer_id.data(), customer_id.size());
  out->push_back(',');
  char buf[kArticleIdDigits];
  for (size_t i = 0; i < articles.size(); ++i) {
    if (i > 0) out->push_back(' ');
    FormatArticleIdTo(articles[i], buf);
    out->append(buf, kArticleIdDigits);
  }
  out->push_back('\n');
}

absl::Status WriteBundleVersionFile(const std::string& path, const std::string& version) {
  return WriteFileAtomically(path, version + "\n");
}

absl::StatusOr<std::string> ReadBundleVersionFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::string version;
  if (!f || !std::getline(f, version) || version.empty()) {
    return absl::NotFoundError(absl::StrCat(path, ": no bundle version (hmrec_client --bundle_version_out writes it)"));
  }
  return version;
}

}  // namespace hmrec
