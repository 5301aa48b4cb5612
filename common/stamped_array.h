#ifndef HMREC_COMMON_STAMPED_ARRAY_H_
#define HMREC_COMMON_STAMPED_ARRAY_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hmrec {

// Values by a dense key in [0, size), emptied in O(1): a slot holds a value
// only when the current round stamped it, so Reset writes nothing but the
// stamp and the list of touched keys. For the per-customer sums and indexes
// the ranking stage keeps by article row or attribute code: an array access
// where a hash map cost a hash on every add and lookup, and no clearing loop.
// Reused by one thread; not thread-safe.
template <typename V>
class StampedArray {
 public:
  // Empties the array and sizes it for keys in [0, size).
  void Reset(size_t size) {
    touched_.clear();
    if (++stamp_ == 0) {  // wrapped: no slot may look current
      slots_.assign(slots_.size(), Slot{V{}, 0});
      stamp_ = 1;
    }
    if (slots_.size() != size) slots_.assign(size, Slot{V{}, 0});
  }
  size_t size() const { return slots_.size(); }

  // The value of `key`, V{} when first touched since Reset (the key is then
  // listed in touched()).
  V& operator[](uint32_t key) {
    Slot& s = slots_[key];
    if (s.stamp != stamp_) {
      s = {V{}, stamp_};
      touched_.push_back(key);
    }
    return s.value;
  }
  // Whether `key` was touched since Reset.
  bool contains(uint32_t key) const { return slots_[key].stamp == stamp_; }
  // The value of `key` without touching it: V{} when untouched.
  V get(uint32_t key) const {
    const Slot& s = slots_[key];
    return s.stamp == stamp_ ? s.value : V{};
  }
  // The keys touched since Reset, in the order first touched.
  const std::vector<uint32_t>& touched() const { return touched_; }

 private:
  struct Slot {
    V value;
    uint32_t stamp;
  };
  std::vector<Slot> slots_;
  std::vector<uint32_t> touched_;
  uint32_t stamp_ = 0;
};

}  // namespace hmrec

#endif  // HMREC_COMMON_STAMPED_ARRAY_H_
