#include "server/rules_holder.h"

#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "data/dates.h"

namespace hmrec {
namespace {

std::string StampOf(const std::string& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return "-";
  return absl::StrCat(st.st_ino, ":", st.st_size, ":", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec);
}

}  // namespace

absl::StatusOr<std::unique_ptr<RulesHolder>> RulesHolder::Open(std::string path, int max_k, const std::string& date,
                                                               ServerMetrics* metrics) {
  int32_t fixed_day = INT32_MIN;
  if (!date.empty()) {
    absl::StatusOr<int32_t> d = ParseDate(date);
    if (!d.ok()) return absl::InvalidArgumentError(absl::StrCat("rules_date \"", date, "\" is not YYYY-MM-DD"));
    fixed_day = *d;
  }
  std::unique_ptr<RulesHolder> h(new RulesHolder(std::move(path), max_k, fixed_day, metrics));
  const std::string before = h->Stamp(nullptr);
  ASSIGN_OR_RETURN(h->rules_, RuleSet::Load(h->path_, max_k));
  // Changed while it was read: the first watch reads it again.
  if (h->Stamp(nullptr) == before) h->stamp_ = h->Stamp(h->rules_.get());
  if (h->metrics_ != nullptr) h->metrics_->ObserveRulesReload(true);
  return h;
}

std::string RulesHolder::Stamp(const RuleSet* current) const {
  std::string s = StampOf(path_);
  if (current != nullptr && !current->unavailable_file.empty()) {
    absl::StrAppend(&s, "|", StampOf(current->unavailable_file));
  }
  return s;
}

absl::StatusOr<bool> RulesHolder::Reload(bool force) {
  std::lock_guard<std::mutex> reload(reload_mu_);
  const std::shared_ptr<const RuleSet> current = rules();
  const std::string stamp = Stamp(current.get());
  if (!force && stamp == stamp_) return false;
  absl::StatusOr<std::shared_ptr<const RuleSet>> next = RuleSet::Load(path_, max_k_);
  // Refused once per version of the files: the next change is tried again.
  stamp_ = stamp;
  if (!next.ok()) {
    if (metrics_ != nullptr) metrics_->ObserveRulesReload(false);
    return next.status();
  }
  // The files as read; when one changed while it was read (or the new set
  // names another unavailable_file), the next watch reads them again.
  const std::string after = Stamp(next->get());
  stamp_ = after == stamp ? after : "";
  {
    std::lock_guard<std::mutex> lock(mu_);
    rules_ = *std::move(next);
    compiled_.clear();
  }
  if (metrics_ != nullptr) metrics_->ObserveRulesReload(true);
  return true;
}

std::shared_ptr<const RuleSet> RulesHolder::rules() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rules_;
}

std::shared_ptr<const CompiledRules> RulesHolder::For(const std::shared_ptr<const ServingBundle>& bundle) const {
  std::shared_ptr<const RuleSet> set;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Compiled& c : compiled_) {
      if (c.key == bundle.get() && !c.bundle.expired()) return c.rules;
    }
    set = rules_;
  }
  // Compiled outside the lock (a long unavailable list takes tens of ms);
  // two workers may both compile after a swap, the second result is kept.
  const Recommender& r = *bundle->recommender;
  std::shared_ptr<const CompiledRules> compiled =
      CompiledRules::Compile(set, r.articles(), r.ClubStatusNames(), r.fallback_ids());
  std::lock_guard<std::mutex> lock(mu_);
  if (rules_ != set) return compiled;  // reloaded meanwhile: serve this batch, cache nothing stale
  compiled_.erase(std::remove_if(compiled_.begin(), compiled_.end(),
                                 [&](const Compiled& c) { return c.bundle.expired() || c.key == bundle.get(); }),
                  compiled_.end());
  compiled_.push_back({bundle, bundle.get(), compiled});
  return compiled;
}

int32_t RulesHolder::Today() const { return fixed_day_ != INT32_MIN ? fixed_day_ : TodayUtc(); }

}  // namespace hmrec
