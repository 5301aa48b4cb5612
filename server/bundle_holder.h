#pragma once

// The bundle being served, and its replacement without a pause.
//
// A BundleHolder serves the sealed bundle its path names (usually the
// `bundles/current` symlink the index builder switches). Reload() resolves the
// path again; when it names another directory, the new bundle is loaded and
// verified completely (every checksum) while the
// old one keeps serving, then swapped in under a lock held only for a pointer
// copy. Batches that already took the old bundle finish on it; it is freed by
// ReleaseRetired() once nobody holds it, off the serving threads.
//
// A bundle that fails to load is refused, the old one keeps serving, and the
// refused directory is not retried until it changes or a forced reload
// (SIGHUP) asks for it. Current() is thread-safe; Reload() serialises itself.

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/recommender.h"

namespace hmrec {

// One loaded bundle: its Recommender, shared by every batch worker (its
// immutable state is loaded once; each worker brings its own scratch).
struct ServingBundle {
  std::string version;
  std::string dir;  // canonical directory
  std::unique_ptr<const Recommender> recommender;
};

class BundleHolder {
 public:
  enum class Reloaded { kUnchanged, kSwapped };

  // Loads the bundle `path` names. Errors name the path.
  static absl::StatusOr<std::unique_ptr<BundleHolder>> Open(std::string path, RecommenderOptions options);

  std::shared_ptr<const ServingBundle> Current() const;

  // kSwapped when a new bundle is now served; kUnchanged when the path still
  // names the served directory (or, unless `force`, a refused one); an error
  // when the named bundle is missing or fails verification (old one kept).
  absl::StatusOr<Reloaded> Reload(bool force);

  // Frees a replaced bundle once no batch holds it. Call from a thread that
  // does not serve (the watcher).
  void ReleaseRetired();

  const std::string& path() const { return path_; }

 private:
  BundleHolder(std::string path, RecommenderOptions options) : path_(std::move(path)), options_(std::move(options)) {}
  absl::StatusOr<std::shared_ptr<const ServingBundle>> Load(const std::string& dir) const;

  const std::string path_;
  const RecommenderOptions options_;
  mutable std::mutex mu_;  // guards current_ (held for pointer copies only)
  std::shared_ptr<const ServingBundle> current_;
  std::mutex reload_mu_;  // one reload at a time; guards the members below
  std::vector<std::shared_ptr<const ServingBundle>> retired_;
  std::string refused_dir_;
};

}  // namespace hmrec
