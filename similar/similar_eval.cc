#include "similar/similar_eval.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "data/csv.h"
#include "data/dates.h"
#include "data/ids.h"

namespace hmrec {

absl::StatusOr<std::vector<SimilarExample>> SimilarExamples(const Dataset& ds, const std::string& truth_path,
                                                            int within_days) {
  // Each customer's last purchase in the training days.
  std::vector<int32_t> last_day(ds.customers.size(), INT32_MIN);
  std::vector<uint32_t> last_article(ds.customers.size(), 0);
  const Transactions& tx = ds.transactions;
  for (size_t i = 0; i < tx.size(); ++i) {
    const uint32_t c = tx.customer[i];
    if (tx.day[i] >= last_day[c]) {
      last_day[c] = tx.day[i];
      last_article[c] = tx.article[i];
    }
  }
  const int32_t first_holdout_day = ds.last_day + 1;
  ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> r, CsvReader::Open(truth_path));
  ASSIGN_OR_RETURN(bool has_header, r->Next());
  if (!has_header || r->fields().size() != 5 || r->fields()[1] != "customer_id" || r->fields()[2] != "article_id") {
    return absl::InvalidArgumentError(absl::StrCat(truth_path, ":1: expected the transactions_train.csv header"));
  }
  absl::flat_hash_map<uint32_t, std::vector<uint32_t>> relevant;  // customer row -> article rows
  while (true) {
    ASSIGN_OR_RETURN(bool has_row, r->Next());
    if (!has_row) break;
    const auto& f = r->fields();
    if (f.size() != 5) return r->RecordError(absl::StrCat("expected 5 fields, got ", f.size()));
    absl::StatusOr<int32_t> day = ParseDate(f[0]);
    if (!day.ok()) return r->RecordError(absl::StrCat("bad t_dat '", f[0], "'"));
    if (!IsValidCustomerId(f[1])) return r->RecordError(absl::StrCat("bad customer_id '", f[1], "'"));
    absl::StatusOr<int32_t> article = ParseArticleId(f[2]);
    if (!article.ok()) return r->RecordError(std::string(article.status().message()));
    const std::optional<uint32_t> c = ds.FindCustomer(f[1]);
    const std::optional<uint32_t> a = ds.FindArticle(*article);
    if (!c.has_value() || !a.has_value()) continue;
    if (last_day[*c] < first_holdout_day - within_days || *day > last_day[*c] + within_days) continue;
    const uint32_t row = static_cast<uint32_t>(*a);
    if (row == last_article[*c]) continue;
    std::vector<uint32_t>& v = relevant[*c];
    if (std::find(v.begin(), v.end(), row) == v.end()) v.push_back(row);
  }
  std::vector<SimilarExample> out;
  out.reserve(relevant.size());
  for (auto& [c, rows] : relevant) out.push_back({last_article[c], std::move(rows)});
  // One order whatever the hash map's: by query, then by the relevant set.
  std::sort(out.begin(), out.end(), [](const SimilarExample& x, const SimilarExample& y) {
    return x.query != y.query ? x.query < y.query : x.relevant < y.relevant;
  });
  return out;
}

SimilarScore ScoreSimilar(const SimilarArticles& similar, const std::vector<SimilarExample>& examples,
                          const SimilarMix& mix, int k, int threads) {
  SimilarScore score;
  SimilarArticles::Scratch scratch;
  std::vector<std::vector<uint32_t>> anchors;
  std::vector<std::vector<SimilarCandidate>> found;
  double ap_sum = 0, hits = 0, recall_sum = 0;
  constexpr size_t kBatch = 1000;
  for (size_t begin = 0; begin < examples.size(); begin += kBatch) {
    const size_t end = std::min(examples.size(), begin + kBatch);
    anchors.clear();
    for (size_t i = begin; i < end; ++i) anchors.push_back({examples[i].query});
    similar.Find(anchors, mix, nullptr, threads, &scratch, &found);
    for (size_t i = begin; i < end; ++i) {
      const std::vector<uint32_t>& rel = examples[i].relevant;
      const std::vector<SimilarCandidate>& list = found[i - begin];
      const size_t n = std::min(list.size(), static_cast<size_t>(k));
      double correct = 0, ap = 0;
      for (size_t j = 0; j < n; ++j) {
        if (std::find(rel.begin(), rel.end(), list[j].row) == rel.end()) continue;
        correct += 1;
        ap += correct / static_cast<double>(j + 1);
      }
      ap_sum += ap / static_cast<double>(std::min(rel.size(), static_cast<size_t>(k)));
      hits += correct > 0;
      recall_sum += correct / static_cast<double>(rel.size());
    }
  }
  score.queries = static_cast<int64_t>(examples.size());
  if (score.queries > 0) {
    score.map_at_k = ap_sum / score.queries;
    score.hit_rate = hits / score.queries;
    score.recall = recall_sum / score.queries;
  }
  return score;
}

}  // namespace hmrec
