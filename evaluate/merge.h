#pragma once

// Joins the parts of a sharded batch scoring run (hmrec_client
// --all-customers --shard I/N, one part per machine) into one Kaggle
// submission, refusing any set of parts that does not hold every customer
// of the list exactly once, or that more than one bundle answered: each
// part's version is in PART.bundle beside it (hmrec_client
// --bundle_version_out), and the merged file's goes to OUT.bundle.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace hmrec::evaluate {

struct MergeReport {
  int64_t parts = 0;
  int64_t rows = 0;
  std::string bundle_version;  // the one version that answered every part
};

// Writes the header and each customer's row (copied byte for byte from its
// part) in the order of `customers` to `out_path` (through a temporary file
// renamed in place; "-" = stdout). Fails, writing nothing, naming: a part
// that is not a submission (its first line is not the header), a row whose
// customer id is malformed (file:line), a customer in two parts or twice in
// one (both places), a customer in no part (with how many more), a customer
// that is not in the list, a part without PART.bundle, two parts answered by
// different bundles (both named).
absl::Status MergeSubmissions(const std::vector<std::string>& part_paths, const std::vector<std::string>& customers,
                              const std::string& out_path, MergeReport* report);

}  // namespace hmrec::evaluate
