#pragma once

// Feature encoding shared by the trainer, the index builder and the server:
// how a customer and an article become rows of integer ids for the towers'
// embedding tables. One definition, so training and serving cannot drift.
//
// Customer fields: age band, club status, news frequency, FN, Active,
// hashed postal code, history-length band, days-since-last-purchase band,
// plus the ids of the last `history_length` purchases (most recent first).
// Article fields: article row, eleven categorical attributes, and two
// time-dependent ones computed as of a day (days since first sale, sales in
// the 7 days before) so the tower can tell a new best seller from a faded one.
// Every time-dependent feature of a day uses only purchases strictly before it.
//
// A FeatureSpace is immutable after Build/FromProto; safe to share.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/history.h"
#include "data/hm_data.h"
#include "data/vocab.h"
#include "proto/config.pb.h"

namespace hmrec {

inline constexpr int kCustomerFields = 8;
inline constexpr int kArticleCategoricalFields = 11;
inline constexpr int kArticleFields = 1 + kArticleCategoricalFields + 2;
// Article attributes pooled with the history ids (indices into the
// categorical fields): product type, department, colour group, section.
inline constexpr int kHistoryAttributes = 4;

// Each article's sale days, sorted: answers "first sale before day d" and
// "sales in [d - 7, d)" in O(log n).
class ArticleSales {
 public:
  static ArticleSales Build(const Transactions& tx, size_t num_articles);
  // Returns -1 if the article sold nothing before `day`.
  int32_t FirstSaleBefore(uint32_t article, int32_t day) const;
  int64_t SalesInWindow(uint32_t article, int32_t from_day, int32_t to_day_exclusive) const;

 private:
  std::vector<uint64_t> offsets_;
  std::vector<int32_t> days_;
};

// A customer's encoded features.
struct CustomerFeatures {
  int32_t fields[kCustomerFields] = {0};
  std::vector<int32_t> history;  // article rows + 1, most recent first, 0-padded
};

class FeatureSpace {
 public:
  // Builds vocabularies from the dataset's articles and customers.
  static FeatureSpace Build(const Dataset& ds, const config::ModelConfig& model);
  static absl::StatusOr<FeatureSpace> FromProto(const config::FeatureVocabularies& proto);
  config::FeatureVocabularies ToProto() const;

  // Embedding table sizes, field by field.
  std::vector<int64_t> CustomerFieldSizes() const;
  // The text behind an encoded customer field value, for people: field 1
  // (club_member_status) and 2 (fashion_news_frequency) give the vocabulary
  // value, 3 (FN) and 4 (Active) "1", "0"; "" for unknown values and other
  // fields.
  std::string CustomerFieldText(int field, int32_t value) const;
  std::vector<int64_t> ArticleFieldSizes() const;
  // Vocabulary sizes of the attributes pooled with history items.
  std::vector<int64_t> HistoryAttributeSizes() const;
  int history_length() const { return history_length_; }
  size_t num_articles() const { return num_articles_; }

  // Encodes the static customer fields (0..5) from a customer record whose
  // categorical strings come from `ds`.
  void EncodeCustomerStatic(const Dataset& ds, const Customer& c, int32_t* fields) const;
  // Encodes fields 6..7 and the history from the customer's `n` purchases
  // before `as_of` (article rows, oldest first; the last one on
  // `last_purchase_day`).
  void EncodeCustomerHistory(const uint32_t* articles, int64_t n, int32_t last_purchase_day, int32_t as_of,
                             int32_t* fields, int32_t* history) const;

  // Encodes the static article fields (0..11).
  void EncodeArticleStatic(uint32_t article_row, const Article& a, int32_t* fields) const;
  // Encodes fields 12..13 as of `day`.
  static void EncodeArticleDynamic(const ArticleSales& sales, uint32_t article_row, int32_t day, int32_t* fields);

  // Returns per article row + 1 (row 0 = padding) the categorical ids
  // pooled with history items, [num_articles + 1][kHistoryAttributes].
  std::vector<int32_t> HistoryAttributeTable(const std::vector<Article>& articles) const;

  // Field 6: the band of a customer's purchase count, and the least count
  // in a band.
  static int32_t HistoryCountBand(int64_t n);
  static int64_t HistoryCountBandFloor(int32_t band);
  static int32_t AgeBand(int age);
  static int32_t CountBand(int64_t n);
  static int32_t DaysBand(int64_t days);

 private:
  // Returns the 1-based id of `value` in `vocab`, 0 when unknown.
  static int32_t Lookup(const StringVocab& vocab, absl::string_view value);

  StringVocab club_, news_;
  std::vector<StringVocab> article_vocabs_;  // kArticleCategoricalFields
  size_t num_articles_ = 0;
  int postal_buckets_ = 0;
  int history_length_ = 0;
};

// Returns a stable 64-bit hash (FNV-1a) of `s`.
uint64_t StableHash(absl::string_view s);

}  // namespace hmrec
