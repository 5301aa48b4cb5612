#pragma once

// The merchandising rules in force (ServerConfig.rules_file), and their
// replacement without a pause: the server's watcher calls Reload() every
// bundle_watch_ms and on SIGHUP; when the rules file or its
// unavailable_file changed (inode, size or modification time), the whole
// file is read and validated (rules/merch_rules.h) while the old rules keep
// serving, then swapped in under a lock held for a pointer copy. A file
// that fails is refused: the rules in force stay, the error names file:line
// (the server logs it) and hmrec_rules_reloads_total{result="refused"}
// counts it.
//
// Rules are compiled against each bundle that serves (the main one and the
// canary's) on first use after a swap of either, and cached. Thread-safe.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rules/merch_rules.h"
#include "server/bundle_holder.h"
#include "server/metrics.h"

namespace hmrec {

class RulesHolder {
 public:
  // Loads `path` (must be valid: a server does not start with rules it
  // cannot read). `date` ("" = today, UTC) is the day campaigns and pins are
  // judged on. `metrics` may be null.
  static absl::StatusOr<std::unique_ptr<RulesHolder>> Open(std::string path, int max_k, const std::string& date,
                                                           ServerMetrics* metrics);

  // Re-reads the files when they changed (or when `force`): true when new
  // rules are in force, false when nothing changed; an error (old rules
  // kept) when the new ones are invalid.
  absl::StatusOr<bool> Reload(bool force);

  std::shared_ptr<const RuleSet> rules() const;
  // The rules compiled for `bundle` (cached per bundle and rules).
  std::shared_ptr<const CompiledRules> For(const std::shared_ptr<const ServingBundle>& bundle) const;
  // Days since 1970-01-01 that rules are judged on now.
  int32_t Today() const;
  const std::string& path() const { return path_; }

 private:
  RulesHolder(std::string path, int max_k, int32_t fixed_day, ServerMetrics* metrics)
      : path_(std::move(path)), max_k_(max_k), fixed_day_(fixed_day), metrics_(metrics) {}
  // What identifies a version of the files on disk.
  std::string Stamp(const RuleSet* current) const;

  const std::string path_;
  const int max_k_;
  const int32_t fixed_day_;  // INT32_MIN: today
  ServerMetrics* const metrics_;
  mutable std::mutex mu_;  // guards rules_ and compiled_
  std::shared_ptr<const RuleSet> rules_;
  struct Compiled {
    std::weak_ptr<const ServingBundle> bundle;
    const ServingBundle* key = nullptr;
    std::shared_ptr<const CompiledRules> rules;
  };
  mutable std::vector<Compiled> compiled_;  // a few: the bundles serving
  std::mutex reload_mu_;                    // one Reload at a time; guards stamp_
  std::string stamp_;
};

}  // namespace hmrec
