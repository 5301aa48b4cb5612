#include "index_builder/builder.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "bundle/bundle.h"
#include "candidates/ranking_config.h"
#include "common/crash_point.h"
#include "common/progress.h"
#include "common/status_macros.h"
#include "common/text_proto.h"
#include "data/article_table.h"
#include "data/customer_view.h"
#include "data/dates.h"
#include "data/history.h"
#include "features/feature_space.h"
#include "search/article_index.h"
#include "store/feature_store.h"

namespace hmrec {
namespace fs = std::filesystem;

namespace {

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

config::FallbackList PopularFallback(const Dataset& ds, const config::IndexBuilderConfig& cfg) {
  const int window = cfg.fallback_window_days() > 0 ? cfg.fallback_window_days() : 7;
  const double half_life = cfg.fallback_half_life_days() > 0 ? cfg.fallback_half_life_days() : 3;
  const int size = cfg.fallback_size() > 0 ? cfg.fallback_size() : kDefaultFallbackSize;
  std::vector<double> score(ds.articles.size(), 0.0);
  std::vector<int64_t> sales(ds.articles.size(), 0);  // all time: orders what the window did not sell
  const Transactions& tx = ds.transactions;
  for (size_t i = 0; i < tx.size(); ++i) {
    const int32_t age = ds.last_day - tx.day[i];
    if (age < window) score[tx.article[i]] += std::exp2(-age / half_life);
    ++sales[tx.article[i]];
  }
  std::vector<uint32_t> order(ds.articles.size());
  std::iota(order.begin(), order.end(), 0);
  const size_t k = std::min<size_t>(size, order.size());
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](uint32_t a, uint32_t b) {
    if (score[a] != score[b]) return score[a] > score[b];
    return sales[a] != sales[b] ? sales[a] > sales[b] : a < b;
  });
  config::FallbackList f;
  f.set_as_of(FormatDate(ds.last_day + 1));
  for (size_t i = 0; i < k; ++i) {
    f.add_article_ids(ds.articles[order[i]].article_id);
    f.add_scores(score[order[i]]);
  }
  return f;
}

}  // namespace

absl::StatusOr<BuildReport> BuildServableBundle(const std::string& bundle_dir, const Dataset& ds,
                                                const config::IndexBuilderConfig& cfg, bool show_progress) {
  ASSIGN_OR_RETURN(config::BundleManifest manifest, ReadManifest(bundle_dir));
  if (manifest.sealed()) {
    return absl::FailedPreconditionError(absl::StrCat(bundle_dir, " is already sealed"));
  }
  RETURN_IF_ERROR(VerifyBundleFiles(bundle_dir, manifest));
  if (!manifest.ranking_schema().empty()) {
    for (const char* needed : {kRankerFile, kRankingTablesFile}) {
      if (!ManifestLists(manifest, needed)) {
        return absl::FailedPreconditionError(
            absl::StrCat(bundle_dir, ": the manifest names a ranking schema but not ", needed));
      }
    }
  }
  const fs::path dir(bundle_dir);
  ASSIGN_OR_RETURN(ArticleEmbeddings emb, ReadArticleEmbeddings((dir / kArticleEmbeddingsFile).string()));
  config::FeatureVocabularies vocab;
  RETURN_IF_ERROR(ReadTextProto((dir / kVocabulariesFile).string(), &vocab));
  ASSIGN_OR_RETURN(FeatureSpace space, FeatureSpace::FromProto(vocab));

  // The data must be what the bundle was trained on.
  if (emb.article_ids.size() != ds.articles.size()) {
    return absl::FailedPreconditionError(
        absl::StrCat("bundle has ", emb.article_ids.size(), " articles, the data ", ds.articles.size()));
  }
  for (size_t i = 0; i < ds.articles.size(); ++i) {
    if (emb.article_ids[i] != ds.articles[i].article_id) {
      return absl::FailedPreconditionError(absl::StrCat("article row ", i, " is ", emb.article_ids[i],
                                                        " in the bundle but ", ds.articles[i].article_id,
                                                        " in the data"));
    }
  }
  if (manifest.data_last_day() != FormatDate(ds.last_day)) {
    return absl::FailedPreconditionError(absl::StrCat("bundle was trained on data up to ", manifest.data_last_day(),
                                                      ", this data ends ", FormatDate(ds.last_day)));
  }

  BuildReport report;
  report.articles = static_cast<int64_t>(emb.article_ids.size());
  auto t0 = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(BuiltIndex index, BuildArticleIndex(emb, cfg));
  const std::string index_tmp = (dir / (std::string(kIndexFile) + ".tmp")).string();
  RETURN_IF_ERROR(WriteArticleIndex(*index.index, index_tmp));
  fs::rename(index_tmp, dir / kIndexFile);
  CrashPoint("index_written");
  report.index_seconds = Since(t0);
  report.index_description = index.description;

  // One record per customer, as of the day after the data, sorted by id.
  t0 = std::chrono::steady_clock::now();
  CustomerHistory history = CustomerHistory::Build(ds.transactions, ds.customers.size());
  std::vector<uint32_t> order(ds.customers.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return ds.customer_id(a) < ds.customer_id(b); });
  std::vector<std::pair<std::string, config::CustomerRecord>> records(order.size());
  ProgressReporter progress("encoding customers", static_cast<int64_t>(order.size()), "customers");
  progress.set_enabled(show_progress);
  const int h = space.history_length();
  std::vector<int32_t> hist(h);
  int32_t fields[kCustomerFields];
  // Each record also carries the ranking's bounded history (the ranker's
  // features read it; request filters too, with or without a ranker).
  const HistoryLimits limits = HistoryLimitsOf(WithRankingDefaults(manifest.trainer().ranking()));
  CustomerView view;
  for (size_t i = 0; i < order.size(); ++i) {
    const uint32_t c = order[i];
    report.customers_without_purchases += history.count(c) == 0;
    space.EncodeCustomerStatic(ds, ds.customers[c], fields);
    space.EncodeCustomerHistory(history.articles(c), static_cast<int64_t>(history.count(c)), history.last_day(c),
                                ds.last_day + 1, fields, hist.data());
    records[i].first = std::string(ds.customer_id(c));
    config::CustomerRecord& rec = records[i].second;
    rec.mutable_fields()->Add(fields, fields + kCustomerFields);
    for (int32_t row : hist) {
      if (row == 0) break;
      rec.add_recent_article_ids(ds.articles[row - 1].article_id);
    }
    rec.set_age(ds.customers[c].age);
    rec.set_purchase_count(static_cast<int32_t>(history.count(c)));
    BuildCustomerView(history, c, ds.customers[c].age, ds.last_day + 1, limits, &view);
    for (const Purchase& p : view.purchases) {
      rec.add_purchase_article_ids(ds.articles[p.article].article_id);
      rec.add_purchase_days(p.day);
      rec.add_purchase_prices(p.price);
      rec.mutable_purchase_channels()->push_back(static_cast<char>(p.channel));
    }
    if ((i & 0xFFFF) == 0) progress.Update(static_cast<int64_t>(i));
  }
  progress.Finish(static_cast<int64_t>(order.size()));
  const fs::path store = dir / kFeatureStoreDir;
  std::error_code ec;
  fs::remove_all(store, ec);  // a previous, interrupted attempt
  RETURN_IF_ERROR(WriteFeatureStore(store.string(), records));
  CrashPoint("store_written");
  report.customers = static_cast<int64_t>(records.size());
  report.store_seconds = Since(t0);

  RETURN_IF_ERROR(WriteTextProto((dir / kFallbackFile).string(), PopularFallback(ds, cfg)));
  RETURN_IF_ERROR(ArticleTable::Build(ds.articles).Save((dir / kArticleTableFile).string()));

  // Seal: every file checksummed, then the flag.
  manifest.set_index_type(index.description);
  RETURN_IF_ERROR(RecordBundleFile(bundle_dir, kIndexFile, &manifest));
  RETURN_IF_ERROR(RecordBundleFile(bundle_dir, kFallbackFile, &manifest));
  RETURN_IF_ERROR(RecordBundleFile(bundle_dir, kArticleTableFile, &manifest));
  for (const auto& entry : fs::directory_iterator(store)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("LOG", 0) == 0 || name == "LOCK") continue;  // rewritten by every open
    RETURN_IF_ERROR(RecordBundleFile(bundle_dir, (fs::path(kFeatureStoreDir) / name).string(), &manifest));
  }
  manifest.set_sealed(true);
  CrashPoint("before_seal");
  RETURN_IF_ERROR(WriteManifest(bundle_dir, manifest));
  return report;
}

namespace {

std::vector<std::string> ReadHistory(const fs::path& root) {
  std::vector<std::string> versions;
  std::ifstream in(root / kCurrentHistoryFile);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) versions.push_back(line);
  }
  return versions;
}

absl::Status WriteHistory(const fs::path& root, const std::vector<std::string>& versions) {
  const fs::path tmp = root / absl::StrCat(".", kCurrentHistoryFile, ".tmp.", ::getpid());
  {
    std::ofstream out(tmp);
    for (const std::string& v : versions) out << v << '\n';
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp.string()));
  }
  std::error_code ec;
  fs::rename(tmp, root / kCurrentHistoryFile, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat("cannot write ", (root / kCurrentHistoryFile).string(), ": ", ec.message()));
  return absl::OkStatus();
}

// Verifies `bundle_dir` and switches the link, without the history.
absl::Status SwitchCurrent(const std::string& bundle_dir) {
  ASSIGN_OR_RETURN(config::BundleManifest manifest, ReadManifest(bundle_dir));
  if (!manifest.sealed()) {
    return absl::FailedPreconditionError(absl::StrCat(bundle_dir, " is not sealed; it cannot be made current"));
  }
  RETURN_IF_ERROR(VerifyBundleFiles(bundle_dir, manifest));
  const fs::path target = fs::path(bundle_dir).lexically_normal();
  const fs::path root = target.parent_path();
  const fs::path tmp = root / absl::StrCat(".current.tmp.", ::getpid());
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_directory_symlink(target.filename(), tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", tmp.string(), ": ", ec.message()));
  CrashPoint("before_current_switch");
  fs::rename(tmp, root / kCurrentLink, ec);  // atomic: readers see the old or the new link
  if (ec)
    return absl::InternalError(absl::StrCat("cannot switch ", (root / kCurrentLink).string(), ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

absl::Status MakeCurrent(const std::string& bundle_dir) {
  RETURN_IF_ERROR(SwitchCurrent(bundle_dir));
  // Recorded after the switch: a crash in between leaves the history one
  // short, and going back still finds the version before.
  const fs::path target = fs::path(bundle_dir).lexically_normal();
  std::vector<std::string> history = ReadHistory(target.parent_path());
  const std::string version = target.filename().string();
  if (!history.empty() && history.back() == version) return absl::OkStatus();
  history.push_back(version);
  return WriteHistory(target.parent_path(), history);
}

absl::StatusOr<std::string> RollBack(const std::string& bundles_root) {
  const fs::path root = fs::path(bundles_root).lexically_normal();
  std::error_code ec;
  const fs::path link = fs::read_symlink(root / kCurrentLink, ec);
  if (ec) return absl::FailedPreconditionError(absl::StrCat((root / kCurrentLink).string(), " names no bundle"));
  const std::string now = link.filename().string();
  // The history without the version now current (at its end), then back
  // to the last one before it. Written before the switch: a crash in
  // between leaves `current` on the newer version with the history already
  // pointing back, and a second roll back finishes it.
  std::vector<std::string> history = ReadHistory(root);
  while (!history.empty() && history.back() == now) history.pop_back();
  if (history.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no version before ", now, " in ", (root / kCurrentHistoryFile).string(), ": nothing to go back to"));
  }
  const std::string previous = history.back();
  const std::string dir = (root / previous).string();
  absl::StatusOr<config::BundleManifest> read = ReadManifest(dir);
  if (!read.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("cannot go back to ", previous, ": ", read.status().message()));
  }
  const config::BundleManifest& manifest = *read;
  if (!manifest.sealed()) {
    return absl::FailedPreconditionError(absl::StrCat("cannot go back to ", previous, ": it is not sealed"));
  }
  absl::Status ok = VerifyBundleFiles(dir, manifest);
  if (!ok.ok()) return absl::DataLossError(absl::StrCat("cannot go back to ", previous, ": ", ok.message()));
  RETURN_IF_ERROR(WriteHistory(root, history));
  RETURN_IF_ERROR(SwitchCurrent(dir));
  return dir;
}

}  // namespace hmrec
