#include "data/vocab.h"

#include <cstring>

namespace hmrec {

uint32_t StringVocab::Add(absl::string_view s) {
  auto it = ids_.find(s);
  if (it != ids_.end()) return it->second;
  const uint32_t id = static_cast<uint32_t>(strings_.size());
  strings_.emplace_back(s);
  ids_.emplace(strings_.back(), id);
  return id;
}

std::optional<uint32_t> StringVocab::Find(absl::string_view s) const {
  auto it = ids_.find(s);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

bool FixedWidthIndex::Add(absl::string_view s, uint32_t* id) {
  if (ids_.contains(s)) return false;
  if (size_ % kPerChunk == 0) chunks_.emplace_back(new char[kPerChunk * width_]);
  char* slot = chunks_.back().get() + (size_ % kPerChunk) * width_;
  std::memcpy(slot, s.data(), width_);
  *id = static_cast<uint32_t>(size_++);
  ids_.emplace(absl::string_view(slot, width_), *id);
  return true;
}

}  // namespace hmrec
