#include "evaluate/merge.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "common/text_proto.h"
#include "data/ids.h"
#include "data/submission.h"

namespace hmrec::evaluate {

namespace {

struct Row {
  size_t part;
  int64_t line;
  absl::string_view text;  // without the newline
};

}  // namespace

absl::Status MergeSubmissions(const std::vector<std::string>& part_paths, const std::vector<std::string>& customers,
                              const std::string& out_path, MergeReport* report) {
  if (part_paths.empty()) return absl::InvalidArgumentError("merge: no parts given");
  // One model answered every part, or the merged file would mix two.
  std::string version;
  for (size_t p = 0; p < part_paths.size(); ++p) {
    ASSIGN_OR_RETURN(const std::string v, ReadBundleVersionFile(part_paths[p] + ".bundle"));
    if (p == 0) version = v;
    if (v != version) {
      return absl::InvalidArgumentError(absl::StrCat(part_paths[0], " was answered by bundle ", version, " and ",
                                                     part_paths[p], " by bundle ", v,
                                                     ": score every part against one bundle"));
    }
  }
  std::vector<std::string> contents(part_paths.size());
  absl::flat_hash_map<absl::string_view, Row> rows;
  rows.reserve(customers.size());
  for (size_t p = 0; p < part_paths.size(); ++p) {
    ASSIGN_OR_RETURN(contents[p], ReadFileToString(part_paths[p]));
    absl::string_view rest = contents[p];
    int64_t line = 0;
    while (!rest.empty()) {
      const size_t nl = rest.find('\n');
      absl::string_view text = rest.substr(0, nl);
      rest = nl == absl::string_view::npos ? absl::string_view() : rest.substr(nl + 1);
      ++line;
      if (line == 1) {
        if (text != kSubmissionHeader) {
          return absl::InvalidArgumentError(
              absl::StrCat(part_paths[p], ":1: not a submission part (expected the header '", kSubmissionHeader, "')"));
        }
        continue;
      }
      const absl::string_view id = text.substr(0, text.find(','));
      if (!IsValidCustomerId(id) || id.size() == text.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat(part_paths[p], ":", line, ": not a submission row (customer_id,prediction)"));
      }
      auto [it, inserted] = rows.emplace(id, Row{p, line, text});
      if (!inserted) {
        return absl::InvalidArgumentError(absl::StrCat("customer ", id, " is in ", part_paths[it->second.part], ":",
                                                       it->second.line, " and again in ", part_paths[p], ":", line));
      }
    }
  }
  std::string out = absl::StrCat(kSubmissionHeader, "\n");
  out.reserve(contents[0].size() * part_paths.size());
  int64_t missing = 0;
  std::string first_missing;
  for (const std::string& c : customers) {
    auto it = rows.find(c);
    if (it == rows.end()) {
      if (missing++ == 0) first_missing = c;
      continue;
    }
    absl::StrAppend(&out, it->second.text, "\n");
  }
  if (missing > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "customer ", first_missing, " is in none of the ", part_paths.size(), " parts",
        missing > 1 ? absl::StrCat(" (and ", missing - 1, " more)") : "", ": a part is missing or incomplete"));
  }
  if (rows.size() != customers.size()) {
    // Every customer was found, so some row's customer is not in the list.
    absl::flat_hash_map<absl::string_view, bool> listed;
    for (const std::string& c : customers) listed.emplace(c, true);
    for (const auto& [id, row] : rows) {
      if (!listed.contains(id)) {
        return absl::InvalidArgumentError(
            absl::StrCat(part_paths[row.part], ":", row.line, ": customer ", id, " is not in the customer list"));
      }
    }
  }
  if (out_path == "-") {
    if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0) {
      return absl::InternalError("cannot write the merged submission to stdout");
    }
  } else {
    const std::string tmp = out_path + ".tmp";
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f.write(out.data(), static_cast<std::streamsize>(out.size()));
      f.close();
      if (!f) return absl::InternalError(absl::StrCat("cannot write ", tmp));
    }
    std::error_code ec;
    std::filesystem::rename(tmp, out_path, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", out_path, ": ", ec.message()));
    RETURN_IF_ERROR(WriteBundleVersionFile(out_path + ".bundle", version));
  }
  report->bundle_version = version;
  report->parts = static_cast<int64_t>(part_paths.size());
  report->rows = static_cast<int64_t>(customers.size());
  return absl::OkStatus();
}

}  // namespace hmrec::evaluate
