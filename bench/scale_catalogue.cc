// Writes a trained bundle and a data directory whose catalogue is `scale`
// times the original (bench/synthetic_catalogue.h), for measuring the real
// index builder and server on it (bench/catalogue_bench.sh, docs/SCALING.md):
//
//   hmrec_scale_catalogue --bundle B/<version> --data DIR --scale 4 --out OUT
//
// OUT/data: articles.csv with the synthetic articles appended (each a copy
// of its real article's row under the new id), the other CSVs linked.
// OUT/bundles/v1: the bundle's tower and vocabularies, the replicated
// article embeddings, a fresh unsealed manifest, without the ranker (its
// tables describe the real catalogue only): the server serves it retrieval
// only. Customers never bought a synthetic article.

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "bench/synthetic_catalogue.h"
#include "bundle/bundle.h"
#include "data/ids.h"
#include "glog/logging.h"

ABSL_FLAG(std::string, bundle, "", "A trained (or sealed) bundle");
ABSL_FLAG(std::string, data, "", "The data it was trained on");
ABSL_FLAG(int, scale, 2, "Catalogue size as a multiple of the bundle's");
ABSL_FLAG(std::string, out, "", "Output directory (data/ and bundles/v1/ are written there)");

namespace {

namespace fs = std::filesystem;

[[noreturn]] void Die(const std::string& s) {
  std::fprintf(stderr, "scale_catalogue: %s\n", s.c_str());
  std::exit(1);
}

void Check(const absl::Status& s) {
  if (!s.ok()) Die(std::string(s.message()));
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  const fs::path bundle(absl::GetFlag(FLAGS_bundle)), data(absl::GetFlag(FLAGS_data)), out(absl::GetFlag(FLAGS_out));
  const int scale = absl::GetFlag(FLAGS_scale);
  if (bundle.empty() || data.empty() || out.empty() || scale < 1) Die("--bundle, --data, --out and --scale >= 1");
  auto emb = hmrec::ReadArticleEmbeddings((bundle / hmrec::kArticleEmbeddingsFile).string());
  if (!emb.ok()) Die(std::string(emb.status().message()));
  const size_t real = emb->article_ids.size();
  hmrec::ReplicateCatalogue(scale, &*emb);

  // articles.csv: the real rows in file order (the bundle's row order), then
  // the copies; the article_id is the first column.
  fs::create_directories(out / "data");
  std::ifstream in(data / "articles.csv");
  std::ofstream csv(out / "data" / "articles.csv");
  std::string header, line;
  if (!std::getline(in, header)) Die("cannot read articles.csv");
  csv << header << "\n";
  std::vector<std::string> rest;  // each row after its article_id
  // A record ends where its quotes balance (detail_desc may hold newlines).
  auto quotes = [](const std::string& x) { return std::count(x.begin(), x.end(), '"'); };
  while (std::getline(in, line)) {
    std::string more;
    while (quotes(line) % 2 == 1 && std::getline(in, more)) line += "\n" + more;
    const size_t comma = line.find(',');
    if (comma == std::string::npos) continue;
    csv << line << "\n";
    rest.push_back(line.substr(comma));
  }
  if (rest.size() != real) Die(absl::StrCat("articles.csv has ", rest.size(), " rows, the bundle ", real));
  for (size_t i = real; i < emb->article_ids.size(); ++i) {
    csv << hmrec::FormatArticleId(emb->article_ids[i]) << rest[i % real] << "\n";
  }
  csv.close();
  if (!csv) Die("cannot write articles.csv");
  for (const char* f : {"customers.csv", "transactions_train.csv", "sample_submission.csv"}) {
    if (fs::exists(data / f)) {
      fs::remove(out / "data" / f);
      fs::create_symlink(fs::absolute(data / f), out / "data" / f);
    }
  }

  // The bundle: tower, vocabularies, replicated embeddings, new manifest.
  const fs::path v = out / "bundles" / "v1";
  fs::remove_all(v);
  fs::create_directories(v);
  auto manifest = hmrec::ReadManifest(bundle.string());
  if (!manifest.ok()) Die(std::string(manifest.status().message()));
  hmrec::config::BundleManifest m = *manifest;
  m.clear_files();
  m.clear_sealed();
  m.clear_ranking_schema();
  m.set_version("v1");
  m.set_num_articles(static_cast<int64_t>(emb->article_ids.size()));
  for (const char* f : {hmrec::kCustomerTowerFile, hmrec::kVocabulariesFile}) fs::copy_file(bundle / f, v / f);
  Check(hmrec::WriteArticleEmbeddings((v / hmrec::kArticleEmbeddingsFile).string(), *emb));
  for (const char* f : {hmrec::kCustomerTowerFile, hmrec::kVocabulariesFile, hmrec::kArticleEmbeddingsFile}) {
    Check(hmrec::RecordBundleFile(v.string(), f, &m));
  }
  Check(hmrec::WriteManifest(v.string(), m));
  std::printf("%s\n", v.c_str());
  std::fprintf(stderr, "scale_catalogue: %zu articles (%zu real x %d) in %s\n", emb->article_ids.size(), real, scale,
               out.c_str());
  return 0;
}
