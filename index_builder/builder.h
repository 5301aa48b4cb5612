#pragma once

// Turns a trained bundle into a servable one: the faiss index over the
// article embeddings, the RocksDB customer feature store, the popular
// fallback list, and the sealed manifest (checksums of every file). Only a
// sealed bundle can be made current, by an atomic rename of the
// bundles/current symlink. Not thread-safe.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "data/hm_data.h"
#include "proto/config.pb.h"

namespace hmrec {

inline constexpr char kCurrentLink[] = "current";
// Beside it: the versions made current, one a line, oldest first (the last
// is the one `current` names), for going back.
inline constexpr char kCurrentHistoryFile[] = "current.history";
// Articles in the popular fallback when the config leaves fallback_size 0:
// enough for any k a server allows (its max_k must not exceed it) and for
// filters that keep only part of the list.
inline constexpr int kDefaultFallbackSize = 1000;

struct BuildReport {
  std::string index_description;
  int64_t articles = 0;
  int64_t customers = 0;
  int64_t customers_without_purchases = 0;
  double index_seconds = 0;
  double store_seconds = 0;
};

// Adds index, feature store and fallback to the trained bundle at
// `bundle_dir` and seals its manifest. `ds` must be the data the bundle was
// trained on (checked: same articles, same last day).
absl::StatusOr<BuildReport> BuildServableBundle(const std::string& bundle_dir, const Dataset& ds,
                                                const config::IndexBuilderConfig& cfg, bool show_progress);

// Points <bundles root>/current at `bundle_dir` atomically; refuses a bundle
// that is not sealed or fails its checksums. Records the version in
// <bundles root>/current.history.
absl::Status MakeCurrent(const std::string& bundle_dir);

// Points <bundles root>/current back at the version that was current before
// the one it names (current.history), and returns that version's directory.
// Refuses, leaving `current` as it is: no earlier version recorded, or the
// earlier version is gone, unsealed or fails its checksums (named).
absl::StatusOr<std::string> RollBack(const std::string& bundles_root);

}  // namespace hmrec
