// Index trade-offs on a real bundle: for flat, IVF and HNSW settings, the
// build time, the time to search 1000 customers' embeddings for their top k
// (12 unless --k; median of several runs), and recall@k against exact search.
//
//   hmrec_index_bench --bundle out/full/bundles/current [--queries 1000] [--runs 5] [--threads 2]
//       [--scale 4] [--json FILE]
//
// Queries are real: 1000 customers from the bundle's feature store, embedded
// by its customer tower. --scale M searches a catalogue M times the bundle's:
// each article plus M-1 synthetic neighbours (its embedding plus small noise,
// renormalised), for how search cost and memory grow (docs/SCALING.md).

#include <omp.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/synthetic_catalogue.h"
#include "bundle/bundle.h"
#include "common/runtime.h"
#include "common/text_proto.h"
#include "features/feature_space.h"
#include "glog/logging.h"
#include "model/tower_runner.h"
#include "rocksdb/db.h"
#include "search/article_index.h"
#include "search/exact_search.h"
#include "store/feature_store.h"

ABSL_FLAG(std::string, bundle, "", "A sealed bundle");
ABSL_FLAG(int, queries, 1000, "Customers to search for");
ABSL_FLAG(int, runs, 5, "Search repetitions (median reported)");
ABSL_FLAG(int, threads, 2, "OpenMP / LibTorch threads");
ABSL_FLAG(std::string, types, "flat,blocked,ivf,sq8,hnsw", "Which index types to measure");
ABSL_FLAG(int, scale, 1, "Catalogue size as a multiple of the bundle's (synthetic neighbours of real articles)");
ABSL_FLAG(std::string, json, "", "Append one JSON line per setting here");
ABSL_FLAG(int, k, 12,
          "Articles searched for a customer (the ranking's two-tower source searches two_tower_candidates)");
ABSL_FLAG(std::string, ivf, "",
          "IVF settings to measure instead of the default list, e.g. 1024:16,4096:32 (nlist:nprobe)");

namespace {

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

[[noreturn]] void Die(const absl::Status& s) {
  std::fprintf(stderr, "index_bench: %s\n", std::string(s.message()).c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  hmrec::PrepareProcess(argv);
  hmrec::ConfigureAllocator();
  absl::ParseCommandLine(argc, argv);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  hmrec::ConfigureThreads(absl::GetFlag(FLAGS_threads));
  const std::string b = absl::GetFlag(FLAGS_bundle);
  auto manifest = hmrec::ReadManifest(b);
  if (!manifest.ok()) Die(manifest.status());
  auto emb = hmrec::ReadArticleEmbeddings(b + "/" + hmrec::kArticleEmbeddingsFile);
  if (!emb.ok()) Die(emb.status());
  const int scale = absl::GetFlag(FLAGS_scale);
  const int k = absl::GetFlag(FLAGS_k);
  if (k < 1) Die(absl::InvalidArgumentError("--k must be at least 1"));
  hmrec::ReplicateCatalogue(scale, &*emb);
  std::fprintf(stderr, "index_bench: %zu articles (%dx the bundle's)\n", emb->article_ids.size(), scale);
  std::ofstream json;
  if (!absl::GetFlag(FLAGS_json).empty()) json.open(absl::GetFlag(FLAGS_json), std::ios::app);
  hmrec::config::FeatureVocabularies vocab;
  if (auto s = hmrec::ReadTextProto(b + "/" + hmrec::kVocabulariesFile, &vocab); !s.ok()) Die(s);
  auto space = hmrec::FeatureSpace::FromProto(vocab);
  if (!space.ok()) Die(space.status());
  auto runner =
      hmrec::CustomerTowerRunner::Load(b + "/" + hmrec::kCustomerTowerFile, manifest->trainer().model(), *space, "cpu");
  if (!runner.ok()) Die(runner.status());

  // The first N customers of the store (keys are random hex: an unbiased sample).
  const int n = absl::GetFlag(FLAGS_queries);
  std::vector<std::string> ids;
  {
    rocksdb::DB* raw = nullptr;
    rocksdb::Options o;
    if (!rocksdb::DB::OpenForReadOnly(o, b + "/" + hmrec::kFeatureStoreDir, &raw).ok())
      Die(absl::InternalError("store"));
    std::unique_ptr<rocksdb::DB> db(raw);
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    for (it->SeekToFirst(); it->Valid() && static_cast<int>(ids.size()) < n; it->Next())
      ids.push_back(it->key().ToString());
  }
  auto store = hmrec::FeatureStore::Open(b + "/" + hmrec::kFeatureStoreDir);
  if (!store.ok()) Die(store.status());
  std::vector<absl::string_view> views(ids.begin(), ids.end());
  std::vector<hmrec::config::CustomerRecord> recs;
  std::vector<bool> found;
  if (auto s = (*store)->MultiGet(views, &recs, &found); !s.ok()) Die(s);
  absl::flat_hash_map<int32_t, int32_t> row;
  for (size_t i = 0; i < emb->article_ids.size(); ++i) row[emb->article_ids[i]] = static_cast<int32_t>(i) + 1;
  const int h = space->history_length();
  std::vector<int32_t> fields(ids.size() * hmrec::kCustomerFields), hist(ids.size() * h, 0);
  for (size_t i = 0; i < ids.size(); ++i) {
    for (int k = 0; k < hmrec::kCustomerFields; ++k) fields[i * hmrec::kCustomerFields + k] = recs[i].fields(k);
    for (int k = 0; k < std::min(h, recs[i].recent_article_ids_size()); ++k)
      hist[i * h + k] = row[recs[i].recent_article_ids(k)];
  }
  std::vector<float> queries(ids.size() * runner->get()->dim());
  if (auto s = (*runner)->Embed(fields.data(), hist.data(), ids.size(), queries.data()); !s.ok()) Die(s);

  struct Setting {
    std::string type;
    int nlist, nprobe, m, ef;
  };
  std::vector<Setting> settings = {
      {"flat", 0, 0, 0, 0},    {"blocked", 0, 0, 0, 0}, {"ivf", 256, 4, 0, 0},   {"ivf", 256, 16, 0, 0},
      {"ivf", 256, 64, 0, 0},  {"ivf", 1024, 16, 0, 0}, {"ivf", 1024, 24, 0, 0}, {"ivf", 1024, 32, 0, 0},
      {"ivf", 2048, 24, 0, 0}, {"ivf", 2048, 32, 0, 0}, {"ivf", 4096, 48, 0, 0}, {"ivf", 4096, 64, 0, 0},
      {"sq8", 0, 0, 0, 0},     {"hnsw", 0, 0, 32, 32},  {"hnsw", 0, 0, 32, 64},  {"hnsw", 0, 0, 32, 128}};
  if (!absl::GetFlag(FLAGS_ivf).empty()) {
    std::vector<Setting> chosen;
    for (const Setting& st : settings) {
      if (st.type != "ivf") chosen.push_back(st);
    }
    for (absl::string_view part : absl::StrSplit(absl::GetFlag(FLAGS_ivf), ',')) {
      std::vector<std::string> nn = absl::StrSplit(part, ':');
      int nlist = 0, nprobe = 0;
      if (nn.size() != 2 || !absl::SimpleAtoi(nn[0], &nlist) || !absl::SimpleAtoi(nn[1], &nprobe)) {
        Die(absl::InvalidArgumentError(absl::StrCat("--ivf: '", part, "' is not nlist:nprobe")));
      }
      chosen.push_back({"ivf", nlist, nprobe, 0, 0});
    }
    settings = chosen;
  }
  std::vector<int64_t> exact;
  std::printf(
      "| index | articles | build s | search %d queries, ms (median of %d) | (slowest) | memory MiB | recall@k vs "
      "exact |\n| --- | --- | --- | --- | --- | --- | --- |\n",
      n, absl::GetFlag(FLAGS_runs));
  std::unique_ptr<faiss::Index> last_hnsw, flat_index;
  const std::string types = "," + absl::GetFlag(FLAGS_types) + ",";
  for (const Setting& st : settings) {
    if (st.type != "flat" && types.find("," + st.type + ",") == std::string::npos) continue;
    if (st.type == "blocked") {  // hmrec's ExactSearch over the flat index, every kernel
      for (auto kernel :
           {hmrec::ExactSearch::Kernel::kAuto, hmrec::ExactSearch::Kernel::kFp32, hmrec::ExactSearch::Kernel::kSgemm}) {
        auto es = hmrec::ExactSearch::FromFaissIndex(*flat_index, kernel);
        if (!es.ok()) Die(es.status());
        std::vector<int64_t> got(ids.size() * k);
        std::vector<float> scores(ids.size() * k);
        std::vector<double> times;
        for (int r = 0; r < absl::GetFlag(FLAGS_runs); ++r) {
          auto t0 = std::chrono::steady_clock::now();
          (*es)->Search(queries.data(), static_cast<int64_t>(ids.size()), k, got.data(), scores.data());
          times.push_back(Seconds(t0) * 1000);
        }
        std::sort(times.begin(), times.end());
        std::printf("| Flat, hmrec exact search (%s kernel) | %zu | (same) | %.1f | %.1f | | %s |\n", (*es)->kernel(),
                    emb->article_ids.size(), times[times.size() / 2], times.back(),
                    got == exact ? "1 (identical ids)" : "differs");
        if (json.is_open()) {
          json << "{\"index\": \"exact " << (*es)->kernel() << "\", \"articles\": " << emb->article_ids.size()
               << ", \"scale\": " << scale << ", \"search_ms_p50\": " << times[times.size() / 2]
               << ", \"search_ms_max\": " << times.back() << "}\n";
        }
        std::fflush(stdout);
        if (kernel == hmrec::ExactSearch::Kernel::kSgemm) break;
      }
      continue;
    }
    hmrec::config::IndexBuilderConfig cfg;
    cfg.set_index_type(st.type);
    cfg.set_ivf_nlist(st.nlist);
    cfg.set_ivf_nprobe(st.nprobe);
    cfg.set_hnsw_m(st.m);
    cfg.set_hnsw_ef_search(st.ef);
    double build = 0, memory = 0;
    std::unique_ptr<faiss::Index> index;
    std::string desc;
    if (st.type == "hnsw" && last_hnsw) {  // same graph, other efSearch
      index = std::move(last_hnsw);
      hmrec::ConfigureSearch(index.get(), cfg).IgnoreError();
      desc = "IDMap,HNSW32,Flat(IP) efSearch " + std::to_string(st.ef);
    } else {
      const double rss0 = hmrec::ResidentMiB();
      auto t0 = std::chrono::steady_clock::now();
      auto built = hmrec::BuildArticleIndex(*emb, cfg);
      if (!built.ok()) Die(built.status());
      build = Seconds(t0);
      memory = hmrec::ResidentMiB() - rss0;
      index = std::move(built->index);
      desc = built->description;
    }
    std::vector<double> times;
    std::vector<int64_t> got;
    std::vector<float> scores;
    for (int r = 0; r < absl::GetFlag(FLAGS_runs); ++r) {
      auto t0 = std::chrono::steady_clock::now();
      if (auto s = hmrec::SearchArticles(*index, queries.data(), ids.size(), k, &got, &scores); !s.ok()) Die(s);
      times.push_back(Seconds(t0) * 1000);
    }
    std::sort(times.begin(), times.end());
    if (st.type == "flat") exact = got;
    int64_t hits = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      for (int j = 0; j < k; ++j) {
        hits += std::count(got.begin() + i * k, got.begin() + (i + 1) * k, exact[i * k + j]) > 0;
      }
    }
    const double recall = static_cast<double>(hits) / (static_cast<double>(ids.size()) * k);
    std::printf("| %s | %zu | %s | %.1f | %.1f | %s | %.4f |\n", desc.c_str(), emb->article_ids.size(),
                build > 0 ? std::to_string(build).substr(0, 5).c_str() : "(same)", times[times.size() / 2],
                times.back(), memory > 0 ? std::to_string(static_cast<int>(memory)).c_str() : "", recall);
    if (json.is_open()) {
      json << "{\"index\": \"" << desc << "\", \"articles\": " << emb->article_ids.size() << ", \"scale\": " << scale
           << ", \"build_s\": " << build << ", \"memory_mib\": " << memory
           << ", \"search_ms_p50\": " << times[times.size() / 2] << ", \"search_ms_max\": " << times.back()
           << ", \"k\": " << k << ", \"recall_at_k\": " << recall << "}\n";
    }
    std::fflush(stdout);
    if (st.type == "hnsw") last_hnsw = std::move(index);
    if (st.type == "flat") flat_index = std::move(index);
  }
  return 0;
}
