#pragma once

// The bundle: the directory bundles/<version>/ that carries a trained model
// from the offline programs to the server (see docs/ARCHITECTURE.md). This module knows
// its file names, reads and writes the manifest and the article embeddings,
// and checks every file against the checksums in the manifest.
// Functions are stateless and thread-safe.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/config.pb.h"

namespace hmrec {

inline constexpr char kManifestFile[] = "manifest.pbtxt";
inline constexpr char kCustomerTowerFile[] = "customer_tower.pt";
inline constexpr char kArticleEmbeddingsFile[] = "article_embeddings.bin";
// The article tower's weights: embeds an article the trainer never saw from
// its attributes (the index builder's catalogue refresh).
inline constexpr char kArticleTowerFile[] = "article_tower.pt";
inline constexpr char kVocabulariesFile[] = "vocabularies.pbtxt";
inline constexpr char kFallbackFile[] = "fallback.pbtxt";
// The articles' names and attributes (data/article_table.h).
inline constexpr char kArticleTableFile[] = "articles.bin";
// The ranking stage (present when the manifest names a ranking_schema).
inline constexpr char kRankerFile[] = "ranker.ubj";
inline constexpr char kRankingTablesFile[] = "ranking_tables.bin";

// Every article's embedding, in the order of the vocabularies' article rows.
struct ArticleEmbeddings {
  int32_t dim = 0;
  std::vector<int32_t> article_ids;  // row -> article id
  std::vector<float> values;         // row-major, article_ids.size() x dim
};

absl::Status WriteArticleEmbeddings(const std::string& path, const ArticleEmbeddings& e);
absl::StatusOr<ArticleEmbeddings> ReadArticleEmbeddings(const std::string& path);

// Writes `message` as text proto to `path` atomically (temporary + rename).
absl::Status WriteTextProto(const std::string& path, const google::protobuf::Message& message);

// Adds (or replaces) the entry of `name` in the manifest with its size and
// CRC-32, reading the file from `bundle_dir`.
absl::Status RecordBundleFile(const std::string& bundle_dir, const std::string& name, config::BundleManifest* manifest);

absl::StatusOr<config::BundleManifest> ReadManifest(const std::string& bundle_dir);
absl::Status WriteManifest(const std::string& bundle_dir, const config::BundleManifest& manifest);

// True when the manifest lists `name` among its files.
bool ManifestLists(const config::BundleManifest& manifest, const std::string& name);

// Checks that every file the manifest names exists with its size and CRC-32.
// Errors name the file and what differs.
absl::Status VerifyBundleFiles(const std::string& bundle_dir, const config::BundleManifest& manifest);

// Returns the CRC-32 of a whole file as 8 hex digits.
absl::StatusOr<std::string> FileCrc32(const std::string& path);

}  // namespace hmrec
