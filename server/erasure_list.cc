#include "server/erasure_list.h"

#include <mutex>

#include "common/status_macros.h"

namespace hmrec {

absl::Status ErasureList::Refresh() {
  std::lock_guard<std::mutex> one(refresh_mu_);
  ASSIGN_OR_RETURN(const int64_t count, store_->ErasedCount());
  if (count == read_count_.load()) return absl::OkStatus();
  std::vector<std::string> read;
  read.reserve(static_cast<size_t>(count));
  RETURN_IF_ERROR(store_->ForEachErased([&read](absl::string_view id) {
    read.emplace_back(id);
    return absl::OkStatus();
  }));
  Add(read);
  read_count_ = count;
  return absl::OkStatus();
}

void ErasureList::Add(const std::vector<std::string>& customer_ids) {
  if (customer_ids.empty()) return;
  std::unique_lock<std::shared_mutex> lock(mu_);
  ids_.insert(customer_ids.begin(), customer_ids.end());
  size_ = ids_.size();
}

int ErasureList::Mask(std::vector<absl::string_view>* ids) const {
  if (size_.load() == 0) return 0;
  int masked = 0;
  std::shared_lock<std::shared_mutex> lock(mu_);
  for (absl::string_view& id : *ids) {
    if (!id.empty() && ids_.contains(id)) {
      id = absl::string_view();
      ++masked;
    }
  }
  return masked;
}

bool ErasureList::Contains(absl::string_view customer_id) const {
  if (size_.load() == 0) return false;
  std::shared_lock<std::shared_mutex> lock(mu_);
  return ids_.contains(customer_id);
}

}  // namespace hmrec
