#include "store/feature_store.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/crash_point.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/sst_file_writer.h"
#include "rocksdb/table.h"

namespace hmrec {
namespace {

rocksdb::Options StoreOptions() {
  rocksdb::Options o;
  o.compression = rocksdb::kLZ4Compression;
  rocksdb::BlockBasedTableOptions t;
  t.block_size = 16 * 1024;
  t.checksum = rocksdb::kXXH3;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  o.max_open_files = -1;
  return o;
}

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  if (s.IsCorruption()) return absl::DataLossError(absl::StrCat(what, ": ", s.ToString()));
  if (s.IsNotFound() || s.IsPathNotFound()) return absl::NotFoundError(absl::StrCat(what, ": ", s.ToString()));
  return absl::InternalError(absl::StrCat(what, ": ", s.ToString()));
}

}  // namespace

absl::Status WriteFeatureStore(const std::string& path,
                               const std::vector<std::pair<std::string, config::CustomerRecord>>& records) {
  return WriteFeatureStore(path, static_cast<int64_t>(records.size()),
                           [&](int64_t i, std::string* key, std::string* value) {
                             *key = records[i].first;
                             records[i].second.SerializeToString(value);
                           });
}

absl::Status WriteFeatureStore(const std::string& path, int64_t count,
                               const std::function<void(int64_t i, std::string* key, std::string* value)>& record) {
  if (std::filesystem::exists(path)) {
    return absl::AlreadyExistsError(absl::StrCat("feature store ", path, " exists"));
  }
  rocksdb::Options options = StoreOptions();
  const std::string sst = path + ".sst";
  {
    rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), options);
    absl::Status s = FromRocks(writer.Open(sst), "cannot create " + sst);
    if (!s.ok()) return s;
    std::string key, previous, value;
    for (int64_t i = 0; i < count; ++i) {
      record(i, &key, &value);
      if (i > 0 && key <= previous) {
        return absl::InvalidArgumentError(absl::StrCat("feature store keys not strictly increasing at ", key));
      }
      s = FromRocks(writer.Put(key, value), "cannot write " + sst);
      if (!s.ok()) return s;
      if (i == count / 2) CrashPoint("store_half_written");
      previous.swap(key);
    }
    s = FromRocks(writer.Finish(), "cannot finish " + sst);
    if (!s.ok()) return s;
  }
  options.create_if_missing = true;
  options.error_if_exists = true;
  rocksdb::DB* raw = nullptr;
  absl::Status s = FromRocks(rocksdb::DB::Open(options, path, &raw), "cannot create " + path);
  if (!s.ok()) return s;
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::IngestExternalFileOptions ingest;
  ingest.move_files = true;
  s = FromRocks(db->IngestExternalFile({sst}, ingest), "cannot ingest " + sst);
  if (!s.ok()) return s;
  s = FromRocks(db->Close(), "cannot close " + path);
  std::filesystem::remove(sst);
  return s;
}

FeatureStore::FeatureStore(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}
FeatureStore::~FeatureStore() {
  if (db_) db_->Close().PermitUncheckedError();
}

absl::StatusOr<std::unique_ptr<FeatureStore>> FeatureStore::Open(const std::string& path) {
  if (!std::filesystem::exists(path)) return absl::NotFoundError(absl::StrCat("no feature store at ", path));
  rocksdb::Options options = StoreOptions();
  options.paranoid_checks = true;
  rocksdb::DB* raw = nullptr;
  absl::Status s = FromRocks(rocksdb::DB::OpenForReadOnly(options, path, &raw), "cannot open " + path);
  if (!s.ok()) return s;
  std::unique_ptr<rocksdb::DB> db(raw);
  s = FromRocks(db->VerifyChecksum(), "feature store " + path + " failed its checksums");
  if (!s.ok()) return s;
  return std::unique_ptr<FeatureStore>(new FeatureStore(std::move(db)));
}

absl::Status FeatureStore::MultiGet(const std::vector<absl::string_view>& ids,
                                    std::vector<config::CustomerRecord>* records, std::vector<bool>* found) const {
  std::vector<rocksdb::Slice> keys;
  keys.reserve(ids.size());
  for (absl::string_view id : ids) keys.emplace_back(id.data(), id.size());
  std::vector<rocksdb::PinnableSlice> values(ids.size());
  std::vector<rocksdb::Status> statuses(ids.size());
  db_->MultiGet(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), keys.size(), keys.data(), values.data(),
                statuses.data());
  records->resize(ids.size());
  found->assign(ids.size(), false);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    if (!statuses[i].ok()) return FromRocks(statuses[i], absl::StrCat("lookup of ", ids[i]));
    if (!(*records)[i].ParseFromArray(values[i].data(), static_cast<int>(values[i].size()))) {
      return absl::DataLossError(absl::StrCat("feature store record of ", ids[i], " does not parse"));
    }
    (*found)[i] = true;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> FeatureStore::KeyAtOrAfter(absl::string_view key) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  it->Seek(rocksdb::Slice(key.data(), key.size()));
  if (!it->Valid()) it->SeekToFirst();
  if (!it->status().ok()) return FromRocks(it->status(), "feature store scan");
  if (!it->Valid()) return absl::NotFoundError("the feature store is empty");
  return it->key().ToString();
}

int64_t FeatureStore::ApproximateCount() const {
  uint64_t n = 0;
  db_->GetIntProperty("rocksdb.estimate-num-keys", &n);
  return static_cast<int64_t>(n);
}

}  // namespace hmrec
