#pragma once

// The customers this server must serve as unknown: the event store's
// erasure list (EraseCustomer), held in memory so that a batch consults it
// without a round trip and an event store that stops answering does not
// bring an erased customer's bundle features back. Read at start, re-read
// by the server's watcher whenever the store's count changes (one cheap
// call per bundle_watch_ms: how erasures taken by another replica arrive),
// and added to at once by this replica's own EraseCustomer calls. The list
// only grows, so a read adds to what is held and never removes. Thread-safe.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "events/event_store.h"

namespace hmrec {

class ErasureList {
 public:
  // `store` must outlive the list.
  explicit ErasureList(EventStore* store) : store_(store) {}

  // Reads the store's list if its count differs from the last read's. On an
  // error (the store down) keeps what it holds and returns the error; the
  // next call tries again.
  absl::Status Refresh();
  // This replica's erasures, before the next Refresh finds them.
  void Add(const std::vector<std::string>& customer_ids);

  // Replaces every id of `ids` on the list with an empty one (which no
  // feature store or event store holds: an unknown customer). Returns how
  // many it replaced.
  int Mask(std::vector<absl::string_view>* ids) const;
  bool Contains(absl::string_view customer_id) const;
  size_t size() const { return size_.load(); }
  // False until a Refresh succeeded: erasures taken before this server
  // started are not known yet.
  bool loaded() const { return read_count_.load() >= 0; }

 private:
  EventStore* store_;
  mutable std::shared_mutex mu_;  // guards ids_
  absl::flat_hash_set<std::string> ids_;
  std::atomic<size_t> size_{0};
  std::atomic<int64_t> read_count_{-1};  // the store's count at the last read
  std::mutex refresh_mu_;                // one Refresh at a time
};

}  // namespace hmrec
