// How the feature store grows with the number of customers: writes stores of
// 1x, 4x, 10x the bundle's customers (each synthetic customer a copy of a
// real record under a new id), with the product's writer, and reports build
// time, size on disk, the memory an open store holds, and the time to look up
// 1000 random customers in one MultiGet (the server's batch).
//
//   hmrec_store_bench --bundle out/full/bundles/current --scales 1,4,10 --dir /tmp/stores [--batches 50]
//       [--json FILE]

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "bundle/bundle.h"
#include "common/progress.h"
#include "common/runtime.h"
#include "glog/logging.h"
#include "rocksdb/db.h"
#include "store/feature_store.h"

ABSL_FLAG(std::string, bundle, "", "A sealed bundle (its feature store supplies the records)");
ABSL_FLAG(std::string, scales, "1,4,10", "Store sizes as multiples of the bundle's customers");
ABSL_FLAG(std::string, dir, "", "Where to write the stores (removed afterwards); needs ~size x scale of disk");
ABSL_FLAG(int, batches, 50, "Lookups of 1000 random customers per store");
ABSL_FLAG(std::string, json, "", "Append one JSON line per scale here");

namespace {

namespace fs = std::filesystem;

[[noreturn]] void Die(const std::string& s) {
  std::fprintf(stderr, "store_bench: %s\n", s.c_str());
  std::exit(1);
}

// Synthetic customer i's key: 64 lowercase hex characters, increasing with i.
std::string Key(int64_t i) { return absl::StrFormat("%064x", static_cast<unsigned long long>(i) * 2654435761ULL); }

double DirMiB(const std::string& d) {
  uintmax_t bytes = 0;
  for (const auto& e : fs::recursive_directory_iterator(d)) {
    if (e.is_regular_file()) bytes += e.file_size();
  }
  return static_cast<double>(bytes) / (1 << 20);
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  const std::string bundle = absl::GetFlag(FLAGS_bundle), dir = absl::GetFlag(FLAGS_dir);
  if (bundle.empty() || dir.empty()) Die("--bundle and --dir are required");
  // The real records' values, in store order.
  std::vector<std::string> values;
  {
    rocksdb::DB* raw = nullptr;
    rocksdb::Options o;
    rocksdb::Status s = rocksdb::DB::OpenForReadOnly(o, bundle + "/" + hmrec::kFeatureStoreDir, &raw);
    if (!s.ok()) Die("cannot open the bundle's feature store: " + s.ToString());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) values.push_back(it->value().ToString());
  }
  if (values.empty()) Die("the bundle's feature store is empty");
  std::printf(
      "| customers | x | build s | size on disk MiB | open store RSS MiB | 1000-id MultiGet p50 ms | p99 ms |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- |\n");
  std::ofstream json;
  if (!absl::GetFlag(FLAGS_json).empty()) json.open(absl::GetFlag(FLAGS_json), std::ios::app);
  for (absl::string_view sv : absl::StrSplit(absl::GetFlag(FLAGS_scales), ',')) {
    int scale = 0;
    if (!absl::SimpleAtoi(sv, &scale) || scale < 1) Die("--scales: bad value");
    const int64_t n = static_cast<int64_t>(values.size()) * scale;
    const std::string path = (fs::path(dir) / absl::StrFormat("store-x%d", scale)).string();
    fs::remove_all(path);
    hmrec::ProgressReporter progress(absl::StrFormat("store x%d", scale), n, "records");
    const auto t0 = std::chrono::steady_clock::now();
    absl::Status st = hmrec::WriteFeatureStore(path, n, [&](int64_t i, std::string* key, std::string* value) {
      *key = Key(i);
      *value = values[static_cast<size_t>(i) % values.size()];
      if (i % 100000 == 0) progress.Update(i);
    });
    if (!st.ok()) Die(std::string(st.message()));
    progress.Finish(n);
    const double build = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double rss0 = hmrec::ResidentMiB();
    auto store = hmrec::FeatureStore::Open(path);
    if (!store.ok()) Die(std::string(store.status().message()));
    std::mt19937_64 rng(7);
    std::vector<double> ms;
    std::vector<hmrec::config::CustomerRecord> recs;
    std::vector<bool> found;
    for (int b = 0; b < absl::GetFlag(FLAGS_batches); ++b) {
      std::vector<std::string> keys;
      for (int i = 0; i < 1000; ++i) keys.push_back(Key(static_cast<int64_t>(rng() % static_cast<uint64_t>(n))));
      std::vector<absl::string_view> ids(keys.begin(), keys.end());
      const auto t1 = std::chrono::steady_clock::now();
      st = (*store)->MultiGet(ids, &recs, &found);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count());
      if (!st.ok()) Die(std::string(st.message()));
      if (std::count(found.begin(), found.end(), true) != 1000) Die("a synthetic customer was not found");
    }
    const double rss = hmrec::ResidentMiB() - rss0;
    std::sort(ms.begin(), ms.end());
    const double p50 = ms[ms.size() / 2], p99 = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
    const double mib = DirMiB(path);
    std::printf("| %lld | %d | %.1f | %.0f | %.0f | %.2f | %.2f |\n", static_cast<long long>(n), scale, build, mib, rss,
                p50, p99);
    std::fflush(stdout);
    if (json.is_open()) {
      json << absl::StrFormat(
          "{\"customers\": %d, \"scale\": %d, \"build_s\": %.2f, \"disk_mib\": %.1f, \"rss_mib\": %.1f, "
          "\"multiget_ms_p50\": %.3f, \"multiget_ms_p99\": %.3f}\n",
          n, scale, build, mib, rss, p50, p99);
    }
    store->reset();
    fs::remove_all(path);
  }
  return 0;
}
