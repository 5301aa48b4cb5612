#pragma once

// The bundle's customer feature store: a RocksDB database keyed by the
// 64-hex customer id, each value a serialised CustomerRecord (encoded
// customer fields + recent purchases as article ids).
//
// Written once, offline, as one sorted SST file ingested into a fresh
// database (no Put per customer). Opened read-only with every block's
// checksum verified. A FeatureStore is safe to read from many threads.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/config.pb.h"

namespace rocksdb {
class DB;
}

namespace hmrec {

inline constexpr char kFeatureStoreDir[] = "features.rocksdb";

// Writes `records` (keys must be strictly increasing) into a new database
// at `path`, which must not exist.
absl::Status WriteFeatureStore(const std::string& path,
                               const std::vector<std::pair<std::string, config::CustomerRecord>>& records);
// The same, streaming: `record(i, &key, &value)` gives the i-th of `count`
// records (value = a serialised CustomerRecord), so a store larger than
// memory can be written.
absl::Status WriteFeatureStore(const std::string& path, int64_t count,
                               const std::function<void(int64_t i, std::string* key, std::string* value)>& record);

class FeatureStore {
 public:
  // Opens read-only and verifies the checksums of every file.
  static absl::StatusOr<std::unique_ptr<FeatureStore>> Open(const std::string& path);
  ~FeatureStore();

  // Looks up many customers at once; found[i] says whether ids[i] has a record.
  absl::Status MultiGet(const std::vector<absl::string_view>& ids, std::vector<config::CustomerRecord>* records,
                        std::vector<bool>* found) const;
  int64_t ApproximateCount() const;
  // The first customer id at or after `key` in key order, wrapping to the
  // first one (NOT_FOUND when the store is empty): with a random key, a
  // random customer.
  absl::StatusOr<std::string> KeyAtOrAfter(absl::string_view key) const;

 private:
  explicit FeatureStore(std::unique_ptr<rocksdb::DB> db);
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace hmrec
