#include "similar/similar_eval.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/metrics.h"
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
  for (auto& [c, rows] : relevant) out.push_back({last_article[c], c, std::move(rows)});
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
  std::vector<int32_t> predicted;
  absl::flat_hash_set<int32_t> relevant;
  double ap_sum = 0, hits = 0, recall_sum = 0;
  constexpr size_t kBatch = 1000;
  for (size_t begin = 0; begin < examples.size(); begin += kBatch) {
    const size_t end = std::min(examples.size(), begin + kBatch);
    anchors.clear();
    for (size_t i = begin; i < end; ++i) anchors.push_back({examples[i].query});
    similar.Find(anchors, mix, nullptr, threads, &scratch, &found);
    for (size_t i = begin; i < end; ++i) {
      // Scored as Kaggle scores a submission (common/metrics.h).
      predicted.clear();
      for (const SimilarCandidate& c : found[i - begin]) predicted.push_back(static_cast<int32_t>(c.row));
      relevant.clear();
      relevant.insert(examples[i].relevant.begin(), examples[i].relevant.end());
      ap_sum += AveragePrecisionAtK(predicted, relevant, k);
      const double recall = RecallAtK(predicted, relevant, k);
      hits += recall > 0;
      recall_sum += recall;
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
