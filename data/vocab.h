#pragma once

// Dense integer ids for strings: a vocabulary of categorical values, and a
// fixed-width index for the 64-character customer ids.
// Not thread-safe while being filled; safe to read from many threads after.

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/container/flat_hash_map.h"

namespace hmrec {

// Strings in order of first appearance; ids are 0, 1, 2, ...
class StringVocab {
 public:
  StringVocab() = default;
  StringVocab(const StringVocab&) = delete;
  StringVocab& operator=(const StringVocab&) = delete;
  StringVocab(StringVocab&&) = default;
  StringVocab& operator=(StringVocab&&) = default;

  // Returns the id of `s`, adding it if new.
  uint32_t Add(absl::string_view s);
  std::optional<uint32_t> Find(absl::string_view s) const;
  absl::string_view Get(uint32_t id) const { return strings_[id]; }
  size_t size() const { return strings_.size(); }

 private:
  std::deque<std::string> strings_;  // deque: views into it stay valid
  absl::flat_hash_map<absl::string_view, uint32_t> ids_;
};

// Ids of a fixed width stored back to back in stable chunks.
class FixedWidthIndex {
 public:
  explicit FixedWidthIndex(size_t width) : width_(width) {}
  FixedWidthIndex(const FixedWidthIndex&) = delete;
  FixedWidthIndex& operator=(const FixedWidthIndex&) = delete;
  FixedWidthIndex(FixedWidthIndex&&) = default;
  FixedWidthIndex& operator=(FixedWidthIndex&&) = default;

  // Adds `s` (which must be width() long). Returns false if already present.
  bool Add(absl::string_view s, uint32_t* id);
  std::optional<uint32_t> Find(absl::string_view s) const {
    auto it = ids_.find(s);
    if (it == ids_.end()) return std::nullopt;
    return it->second;
  }
  absl::string_view Get(uint32_t id) const {
    return absl::string_view(chunks_[id / kPerChunk].get() + (id % kPerChunk) * width_, width_);
  }
  size_t size() const { return size_; }
  size_t width() const { return width_; }
  void Reserve(size_t n) { ids_.reserve(n); }

 private:
  static constexpr size_t kPerChunk = 8192;
  size_t width_;
  size_t size_ = 0;
  std::vector<std::unique_ptr<char[]>> chunks_;
  absl::flat_hash_map<absl::string_view, uint32_t> ids_;
};

}  // namespace hmrec
