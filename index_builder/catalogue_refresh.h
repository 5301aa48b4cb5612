#pragma once

// The catalogue refresh: a new sealed bundle version from an existing one
// and a newer articles.csv, without retraining. The model (both towers, the
// ranker, the feature store, the popular fallback) is the base bundle's; the
// articles the base lacks are appended after its rows, embedded by the
// exported article tower from their attributes (the unknown-id vector
// stands for their id), and added to the index, the article table and the
// ranking tables (candidates/tables.h RankingTables::WithArticles). Rows
// already in the bundle keep their row, embedding and attributes, so what
// was trained and recorded about them stays valid; an article the newer
// file no longer lists stays too (taking it off sale is a serving rule).
// Not thread-safe.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "proto/config.pb.h"

namespace hmrec {

struct RefreshOptions {
  std::string articles_csv;    // the newer catalogue
  std::string version;         // of the new bundle; empty = the current UTC time
  std::string device = "cpu";  // where the article tower runs
  bool show_progress = false;
};

struct RefreshReport {
  std::string bundle_dir;  // the new sealed version; empty when nothing was added
  int64_t base_articles = 0;
  int64_t trained_articles = 0;  // of them, the ones the trainer embedded
  int64_t added_articles = 0;
  int64_t missing_articles = 0;  // in the bundle, not in the newer file (kept)
  std::string index_description;
  double seconds = 0;
};

// Reads the sealed bundle `base_dir` (bundles/<version>) and the newer
// catalogue, and writes bundles/<new version> beside it, sealed. Refuses,
// writing nothing: a base that is not sealed, fails its checksums or has no
// article tower; a catalogue with a malformed or duplicate row (the error
// names file:line); a version that exists. A catalogue that adds nothing
// writes nothing and reports no bundle_dir. The caller makes it current.
absl::StatusOr<RefreshReport> RefreshCatalogue(const std::string& base_dir, const RefreshOptions& options,
                                               const config::IndexBuilderConfig& cfg);

}  // namespace hmrec
