#include "server/restricted_sources.h"

namespace hmrec {

std::shared_ptr<const RestrictedSources> RestrictedSourcesCache::Get(
    const std::string& key, absl::FunctionRef<std::shared_ptr<const RestrictedSources>()> build) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_key_.find(key);
    if (it != by_key_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return it->second->second;
    }
  }
  std::shared_ptr<const RestrictedSources> built = build();
  std::lock_guard<std::mutex> lock(mu_);
  ++builds_;
  auto it = by_key_.find(key);
  if (it != by_key_.end()) return it->second->second;  // another caller stored it first
  lru_.emplace_front(key, built);
  by_key_[key] = lru_.begin();
  rows_ += built->rows();
  while (rows_ > max_rows_ && lru_.size() > 1) {
    rows_ -= lru_.back().second->rows();
    by_key_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return built;
}

size_t RestrictedSourcesCache::entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lru_.size();
}

size_t RestrictedSourcesCache::rows() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rows_;
}

int64_t RestrictedSourcesCache::builds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return builds_;
}

}  // namespace hmrec
