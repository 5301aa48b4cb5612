#include "server/bundle_holder.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace hmrec {
namespace {

// The directory `path` names now (symlinks resolved).
absl::StatusOr<std::string> Resolve(const std::string& path) {
  std::error_code ec;
  std::string dir = std::filesystem::canonical(path, ec).string();
  if (ec) return absl::NotFoundError(absl::StrCat("no bundle at ", path, " (", ec.message(), ")"));
  return dir;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BundleHolder>> BundleHolder::Open(std::string path, RecommenderOptions options) {
  std::unique_ptr<BundleHolder> h(new BundleHolder(std::move(path), std::move(options)));
  ASSIGN_OR_RETURN(std::string dir, Resolve(h->path_));
  ASSIGN_OR_RETURN(h->current_, h->Load(dir));
  return h;
}

absl::StatusOr<std::shared_ptr<const ServingBundle>> BundleHolder::Load(const std::string& dir) const {
  auto b = std::make_shared<ServingBundle>();
  b->dir = dir;
  ASSIGN_OR_RETURN(b->recommender, Recommender::Load(dir, options_));
  b->version = b->recommender->version();
  return std::shared_ptr<const ServingBundle>(std::move(b));
}

std::shared_ptr<const ServingBundle> BundleHolder::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

absl::StatusOr<BundleHolder::Reloaded> BundleHolder::Reload(bool force) {
  std::lock_guard<std::mutex> reload(reload_mu_);
  ASSIGN_OR_RETURN(std::string dir, Resolve(path_));
  if (dir == Current()->dir) return Reloaded::kUnchanged;
  if (dir == refused_dir_ && !force) return Reloaded::kUnchanged;
  absl::StatusOr<std::shared_ptr<const ServingBundle>> next = Load(dir);
  if (!next.ok()) {
    refused_dir_ = dir;
    return next.status();
  }
  refused_dir_.clear();
  std::shared_ptr<const ServingBundle> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    old = std::move(current_);
    current_ = std::move(*next);
  }
  retired_.push_back(std::move(old));
  return Reloaded::kSwapped;
}

void BundleHolder::ReleaseRetired() {
  std::lock_guard<std::mutex> reload(reload_mu_);
  // A retired bundle is no longer handed out, so a use count of 1 (ours)
  // cannot grow again.
  for (auto it = retired_.begin(); it != retired_.end();) {
    it = it->use_count() == 1 ? retired_.erase(it) : it + 1;
  }
}

}  // namespace hmrec
