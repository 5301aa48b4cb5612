#include "index_builder/catalogue_refresh.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "bundle/bundle.h"
#include "candidates/tables.h"
#include "common/progress.h"
#include "common/status_macros.h"
#include "common/text_proto.h"
#include "data/article_table.h"
#include "data/dates.h"
#include "features/feature_space.h"
#include "model/tower_runner.h"
#include "search/article_index.h"
#include "store/feature_store.h"

namespace hmrec {
namespace fs = std::filesystem;

namespace {

// Articles embedded per tower call.
constexpr int64_t kEmbedBatch = 8192;

// The base's file `name` in the new version: a hard link (sealed files are
// never written again), a copy where links are not possible.
absl::Status Carry(const fs::path& from_dir, const fs::path& to_dir, const std::string& name) {
  std::error_code ec;
  fs::create_directories((to_dir / name).parent_path(), ec);
  fs::create_hard_link(from_dir / name, to_dir / name, ec);
  if (ec) {
    ec.clear();
    fs::copy_file(from_dir / name, to_dir / name, fs::copy_options::overwrite_existing, ec);
  }
  if (ec)
    return absl::InternalError(absl::StrCat("cannot carry ", name, " into ", to_dir.string(), ": ", ec.message()));
  return absl::OkStatus();
}

// Encodes and embeds `added` (their rows follow the base's `first_row`):
// the unknown id, their attributes, and "never sold" as of any day.
absl::Status EmbedAdded(const std::vector<Article>& added, const FeatureSpace& space, ArticleTowerRunner* tower,
                        bool show_progress, std::vector<float>* out) {
  const int64_t n = static_cast<int64_t>(added.size());
  const ArticleSales never_sold;
  std::vector<int32_t> fields(static_cast<size_t>(n) * kArticleFields);
  for (int64_t i = 0; i < n; ++i) {
    int32_t* f = &fields[static_cast<size_t>(i) * kArticleFields];
    space.EncodeArticleStatic(0, added[static_cast<size_t>(i)], f);
    f[0] = 0;  // the unknown id: the one the trainer's id dropout taught
    FeatureSpace::EncodeArticleDynamic(never_sold, 0, 0, f);
  }
  out->resize(static_cast<size_t>(n) * tower->dim());
  ProgressReporter progress("embedding new articles", n, "articles");
  progress.set_enabled(show_progress);
  for (int64_t b = 0; b < n; b += kEmbedBatch) {
    const int64_t e = std::min(n, b + kEmbedBatch);
    RETURN_IF_ERROR(tower->Embed(&fields[static_cast<size_t>(b) * kArticleFields], e - b,
                                 out->data() + static_cast<size_t>(b) * tower->dim()));
    progress.Update(e);
  }
  progress.Finish(n);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RefreshReport> RefreshCatalogue(const std::string& base_dir, const RefreshOptions& options,
                                               const config::IndexBuilderConfig& cfg) {
  const auto t0 = std::chrono::steady_clock::now();
  const fs::path base = fs::path(base_dir).lexically_normal();
  ASSIGN_OR_RETURN(config::BundleManifest manifest, ReadManifest(base.string()));
  if (!manifest.sealed()) {
    return absl::FailedPreconditionError(
        absl::StrCat(base.string(), " is not sealed: only a sealed bundle's catalogue can be refreshed"));
  }
  RETURN_IF_ERROR(VerifyBundleFiles(base.string(), manifest));
  if (!ManifestLists(manifest, kArticleTowerFile)) {
    return absl::FailedPreconditionError(
        absl::StrCat(base.string(), " has no ", kArticleTowerFile,
                     " (trained before bundles carried the article tower): retrain it to refresh its catalogue"));
  }
  // Read and check the newer catalogue first: a bad file writes nothing.
  Dataset catalogue;
  RETURN_IF_ERROR(ReadArticles(options.articles_csv, &catalogue));

  ASSIGN_OR_RETURN(ArticleEmbeddings emb, ReadArticleEmbeddings((base / kArticleEmbeddingsFile).string()));
  ASSIGN_OR_RETURN(ArticleTable table, ArticleTable::Load((base / kArticleTableFile).string()));
  if (table.size() != emb.article_ids.size()) {
    return absl::DataLossError(absl::StrCat(base.string(), ": the article table has ", table.size(),
                                            " articles, the embeddings ", emb.article_ids.size()));
  }
  config::FeatureVocabularies vocab;
  RETURN_IF_ERROR(ReadTextProto((base / kVocabulariesFile).string(), &vocab));
  ASSIGN_OR_RETURN(FeatureSpace space, FeatureSpace::FromProto(vocab));

  RefreshReport report;
  report.base_articles = static_cast<int64_t>(emb.article_ids.size());
  report.trained_articles = static_cast<int64_t>(space.num_articles());
  std::vector<Article> added;
  absl::flat_hash_set<int32_t> listed;
  for (const Article& a : catalogue.articles) {
    listed.insert(a.article_id);
    if (table.Row(a.article_id) < 0) added.push_back(a);
  }
  for (int32_t id : emb.article_ids) report.missing_articles += !listed.contains(id);
  report.added_articles = static_cast<int64_t>(added.size());
  if (added.empty()) return report;

  const std::string version = options.version.empty() ? FormatUtcNow("%Y%m%dT%H%M%SZ") : options.version;
  const fs::path final_dir = base.parent_path() / version;
  const fs::path tmp = base.parent_path() / (version + ".partial");
  std::error_code ec;
  if (fs::exists(final_dir, ec)) {
    return absl::AlreadyExistsError(absl::StrCat("bundle ", final_dir.string(), " exists; pick another --version"));
  }

  // The new rows: embedded by the article tower, then everything per row.
  ASSIGN_OR_RETURN(
      std::unique_ptr<ArticleTowerRunner> tower,
      ArticleTowerRunner::Load((base / kArticleTowerFile).string(), manifest.trainer().model(), space, options.device));
  if (tower->dim() != emb.dim) {
    return absl::DataLossError(absl::StrCat(base.string(), ": the article tower embeds in ", tower->dim(),
                                            " dimensions, the embeddings have ", emb.dim));
  }
  std::vector<float> vectors;
  RETURN_IF_ERROR(EmbedAdded(added, space, tower.get(), options.show_progress, &vectors));
  for (const Article& a : added) emb.article_ids.push_back(a.article_id);
  emb.values.insert(emb.values.end(), vectors.begin(), vectors.end());

  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", tmp.string(), ": ", ec.message()));
  const std::set<std::string> rewritten = {kArticleEmbeddingsFile, kIndexFile, kArticleTableFile, kRankingTablesFile};
  for (const config::BundleFile& f : manifest.files()) {
    if (rewritten.count(f.name()) == 0) RETURN_IF_ERROR(Carry(base, tmp, f.name()));
  }
  RETURN_IF_ERROR(WriteArticleEmbeddings((tmp / kArticleEmbeddingsFile).string(), emb));
  ASSIGN_OR_RETURN(BuiltIndex index, BuildArticleIndex(emb, cfg));
  RETURN_IF_ERROR(WriteArticleIndex(*index.index, (tmp / kIndexFile).string()));
  report.index_description = index.description;
  RETURN_IF_ERROR(table.WithArticles(added).Save((tmp / kArticleTableFile).string()));
  if (ManifestLists(manifest, kRankingTablesFile)) {
    ASSIGN_OR_RETURN(RankingTables tables, RankingTables::Load((base / kRankingTablesFile).string()));
    if (tables.num_articles() != static_cast<size_t>(report.base_articles)) {
      return absl::DataLossError(absl::StrCat(base.string(), ": ranking tables of ", tables.num_articles(),
                                              " articles, embeddings of ", report.base_articles));
    }
    std::vector<ArticleAttributes> attributes;
    for (const Article& x : added) {
      attributes.push_back({x.product_code, x.index_group_no, x.product_type_no, x.colour_group_code, x.section_no,
                            x.department_no, x.garment_group_no});
    }
    RETURN_IF_ERROR(tables.WithArticles(attributes).Save((tmp / kRankingTablesFile).string()));
  }

  // The manifest: the base's, with this version, catalogue and checksums.
  config::BundleManifest next = manifest;
  next.set_version(version);
  next.set_created_at(FormatUtcNow("%Y-%m-%dT%H:%M:%SZ"));
  next.set_num_articles(static_cast<int64_t>(emb.article_ids.size()));
  next.set_index_type(index.description);
  next.set_catalogue_base_version(manifest.catalogue_base_version().empty() ? manifest.version()
                                                                            : manifest.catalogue_base_version());
  next.set_catalogue_added_articles(static_cast<int64_t>(emb.article_ids.size()) - report.trained_articles);
  next.clear_files();
  for (const config::BundleFile& f : manifest.files()) RETURN_IF_ERROR(RecordBundleFile(tmp.string(), f.name(), &next));
  next.set_sealed(true);
  RETURN_IF_ERROR(WriteManifest(tmp.string(), next));
  fs::rename(tmp, final_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot publish bundle ", final_dir.string(), ": ", ec.message()));
  report.bundle_dir = final_dir.string();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace hmrec
