#pragma once

// Loading the H&M tables fast: a binary cache of the parsed tables beside
// the CSVs, used while the CSVs are unchanged.
//
// The cache is keyed by a fingerprint of the three CSVs (size, modification
// time, and a CRC of their first and last MiB) and of the load options that
// change its content. It carries a CRC of its whole content; a stale or
// corrupt cache is ignored (with a reason) and rebuilt from the CSVs.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "data/hm_data.h"

namespace hmrec {

// Loads articles.csv, customers.csv and transactions_train.csv of
// `data_dir`, from the cache when it is current, else by parsing the CSVs
// and then rewriting the cache (a cache that cannot be written is a warning,
// not an error).
absl::StatusOr<std::unique_ptr<Dataset>> LoadDataset(const std::string& data_dir, const LoadOptions& options);

// Returns the cache file LoadDataset uses for `data_dir`.
std::string DatasetCachePath(const std::string& data_dir, const LoadOptions& options);

// Returns the fingerprint the cache of `data_dir` must carry to be current.
absl::StatusOr<std::string> DatasetFingerprint(const std::string& data_dir, const LoadOptions& options);

// Writes `ds` to `path` under `fingerprint`.
absl::Status WriteDatasetCache(const std::string& path, const std::string& fingerprint, const Dataset& ds);

// Reads the cache at `path`. Returns FAILED_PRECONDITION when it was written
// for another fingerprint, DATA_LOSS when it is corrupt, NOT_FOUND when absent.
absl::StatusOr<std::unique_ptr<Dataset>> ReadDatasetCache(const std::string& path, const std::string& fingerprint);

}  // namespace hmrec
