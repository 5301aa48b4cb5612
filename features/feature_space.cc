#include "features/feature_space.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "data/ids.h"

namespace hmrec {
namespace {

constexpr const char* kArticleFieldNames[kArticleCategoricalFields] = {"product_type_no",
                                                                       "product_group_name",
                                                                       "graphical_appearance_no",
                                                                       "colour_group_code",
                                                                       "perceived_colour_value_id",
                                                                       "perceived_colour_master_id",
                                                                       "department_no",
                                                                       "index_code",
                                                                       "index_group_no",
                                                                       "section_no",
                                                                       "garment_group_no"};
// Which categorical fields are pooled with history ids.
constexpr int kHistoryAttributeFields[kHistoryAttributes] = {0, 6, 3, 9};

std::string ArticleKey(const Article& a, int field) {
  switch (field) {
    case 0:
      return absl::StrCat(a.product_type_no);
    case 1:
      return a.product_group_name;
    case 2:
      return absl::StrCat(a.graphical_appearance_no);
    case 3:
      return absl::StrCat(a.colour_group_code);
    case 4:
      return absl::StrCat(a.perceived_colour_value_id);
    case 5:
      return absl::StrCat(a.perceived_colour_master_id);
    case 6:
      return absl::StrCat(a.department_no);
    case 7:
      return a.index_code;
    case 8:
      return absl::StrCat(a.index_group_no);
    case 9:
      return absl::StrCat(a.section_no);
    default:
      return absl::StrCat(a.garment_group_no);
  }
}

constexpr int32_t kAgeBands = 30;
constexpr int32_t kCountBands = 16;
constexpr int32_t kDaysBands = 9;
constexpr int32_t kHistoryLengthBands = 9;
// Purchase-count band b > 0 holds the counts in (kLengthLimits[b - 1], kLengthLimits[b]].
constexpr int64_t kLengthLimits[] = {0, 1, 2, 4, 8, 16, 32, 64};

}  // namespace

uint64_t StableHash(absl::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// ------------------------------------------------------------ ArticleSales

ArticleSales ArticleSales::Build(const Transactions& tx, size_t num_articles) {
  ArticleSales s;
  s.offsets_.assign(num_articles + 1, 0);
  for (uint32_t a : tx.article) ++s.offsets_[a + 1];
  std::partial_sum(s.offsets_.begin(), s.offsets_.end(), s.offsets_.begin());
  std::vector<uint64_t> next(s.offsets_.begin(), s.offsets_.end() - 1);
  s.days_.resize(tx.size());
  for (size_t i = 0; i < tx.size(); ++i) s.days_[next[tx.article[i]]++] = tx.day[i];
  for (size_t a = 0; a < num_articles; ++a) {
    std::sort(s.days_.begin() + s.offsets_[a], s.days_.begin() + s.offsets_[a + 1]);
  }
  return s;
}

int32_t ArticleSales::FirstSaleBefore(uint32_t article, int32_t day) const {
  if (article + 1 >= offsets_.size()) return -1;
  const uint64_t b = offsets_[article], e = offsets_[article + 1];
  if (b == e || days_[b] >= day) return -1;
  return days_[b];
}

int64_t ArticleSales::SalesInWindow(uint32_t article, int32_t from, int32_t to) const {
  if (article + 1 >= offsets_.size()) return 0;
  auto b = days_.begin() + offsets_[article], e = days_.begin() + offsets_[article + 1];
  return std::lower_bound(b, e, to) - std::lower_bound(b, e, from);
}

// ------------------------------------------------------------ FeatureSpace

int32_t FeatureSpace::AgeBand(int age) {
  if (age < 0) return 0;
  return 1 + std::clamp((age - 16) / 3, 0, kAgeBands - 2);
}

int32_t FeatureSpace::HistoryCountBand(int64_t n) {
  int32_t band = 0;
  while (band < kHistoryLengthBands - 1 && n > kLengthLimits[band]) ++band;
  return band;
}

int64_t FeatureSpace::HistoryCountBandFloor(int32_t band) {
  band = std::clamp(band, 0, kHistoryLengthBands - 1);
  return band == 0 ? 0 : kLengthLimits[band - 1] + 1;
}

int32_t FeatureSpace::CountBand(int64_t n) {
  if (n <= 0) return 0;
  int32_t b = 1;
  while (n > 1 && b < kCountBands - 1) {
    n >>= 1;
    ++b;
  }
  return b;
}

int32_t FeatureSpace::DaysBand(int64_t days) {
  // 0: none; 1: 1-7 days; then doubling: 8-14, 15-28, 29-56, ...
  if (days <= 0) return 0;
  int32_t b = 1;
  int64_t limit = 7;
  while (days > limit && b < kDaysBands - 1) {
    limit *= 2;
    ++b;
  }
  return b;
}

int32_t FeatureSpace::Lookup(const StringVocab& vocab, absl::string_view value) {
  std::optional<uint32_t> id = vocab.Find(value);
  return id ? static_cast<int32_t>(*id) + 1 : 0;
}

FeatureSpace FeatureSpace::Build(const Dataset& ds, const config::ModelConfig& model) {
  FeatureSpace fs;
  fs.postal_buckets_ = model.postal_buckets();
  fs.history_length_ = model.history_length();
  for (uint32_t i = 0; i < ds.club_member_status.size(); ++i) fs.club_.Add(ds.club_member_status.Get(i));
  for (uint32_t i = 0; i < ds.fashion_news_frequency.size(); ++i) {
    fs.news_.Add(ds.fashion_news_frequency.Get(i));
  }
  fs.article_vocabs_.resize(kArticleCategoricalFields);
  for (const Article& a : ds.articles) {
    for (int f = 0; f < kArticleCategoricalFields; ++f) fs.article_vocabs_[f].Add(ArticleKey(a, f));
  }
  fs.num_articles_ = ds.articles.size();
  return fs;
}

config::FeatureVocabularies FeatureSpace::ToProto() const {
  config::FeatureVocabularies p;
  p.set_postal_buckets(postal_buckets_);
  p.set_history_length(history_length_);
  auto add = [](google::protobuf::RepeatedPtrField<config::Vocabulary>* list, const char* name, const StringVocab& v) {
    config::Vocabulary* voc = list->Add();
    voc->set_field(name);
    for (uint32_t i = 0; i < v.size(); ++i) voc->add_values(std::string(v.Get(i)));
  };
  add(p.mutable_customer(), "club_member_status", club_);
  add(p.mutable_customer(), "fashion_news_frequency", news_);
  for (int f = 0; f < kArticleCategoricalFields; ++f) {
    add(p.mutable_article(), kArticleFieldNames[f], article_vocabs_[f]);
  }
  config::Vocabulary* n = p.add_article();
  n->set_field("num_articles");
  n->add_values(absl::StrCat(num_articles_));
  return p;
}

absl::StatusOr<FeatureSpace> FeatureSpace::FromProto(const config::FeatureVocabularies& p) {
  FeatureSpace fs;
  if (p.postal_buckets() <= 0 || p.history_length() <= 0) {
    return absl::InvalidArgumentError("vocabularies: postal_buckets and history_length must be > 0");
  }
  fs.postal_buckets_ = p.postal_buckets();
  fs.history_length_ = p.history_length();
  if (p.customer_size() != 2 || p.customer(0).field() != "club_member_status" ||
      p.customer(1).field() != "fashion_news_frequency") {
    return absl::InvalidArgumentError("vocabularies: customer fields are not the expected ones");
  }
  for (const std::string& v : p.customer(0).values()) fs.club_.Add(v);
  for (const std::string& v : p.customer(1).values()) fs.news_.Add(v);
  if (p.article_size() != kArticleCategoricalFields + 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("vocabularies: ", p.article_size(), " article fields, expected ", kArticleCategoricalFields + 1));
  }
  fs.article_vocabs_.resize(kArticleCategoricalFields);
  for (int f = 0; f < kArticleCategoricalFields; ++f) {
    if (p.article(f).field() != kArticleFieldNames[f]) {
      return absl::InvalidArgumentError(absl::StrCat("vocabularies: article field ", f, " is ", p.article(f).field(),
                                                     ", expected ", kArticleFieldNames[f]));
    }
    for (const std::string& v : p.article(f).values()) fs.article_vocabs_[f].Add(v);
  }
  const auto& n = p.article(kArticleCategoricalFields);
  absl::StatusOr<int64_t> num =
      n.values_size() == 1 ? ParseIntegerField(n.values(0)) : absl::InvalidArgumentError("missing");
  if (n.field() != "num_articles" || !num.ok() || *num < 0) {
    return absl::InvalidArgumentError("vocabularies: bad num_articles");
  }
  fs.num_articles_ = static_cast<size_t>(*num);
  return fs;
}

std::vector<int64_t> FeatureSpace::CustomerFieldSizes() const {
  return {kAgeBands,
          static_cast<int64_t>(club_.size()) + 1,
          static_cast<int64_t>(news_.size()) + 1,
          3,
          3,
          postal_buckets_ + 1,
          kHistoryLengthBands,
          kDaysBands};
}

std::vector<int64_t> FeatureSpace::ArticleFieldSizes() const {
  std::vector<int64_t> sizes{static_cast<int64_t>(num_articles_) + 1};
  for (const StringVocab& v : article_vocabs_) sizes.push_back(static_cast<int64_t>(v.size()) + 1);
  sizes.push_back(kDaysBands);
  sizes.push_back(kCountBands);
  return sizes;
}

std::vector<int64_t> FeatureSpace::HistoryAttributeSizes() const {
  std::vector<int64_t> sizes;
  for (int field : kHistoryAttributeFields) sizes.push_back(static_cast<int64_t>(article_vocabs_[field].size()) + 1);
  return sizes;
}

std::string FeatureSpace::CustomerFieldText(int field, int32_t value) const {
  if (value <= 0) return "";
  switch (field) {
    case 1:
      return static_cast<size_t>(value) <= club_.size() ? std::string(club_.Get(value - 1)) : "";
    case 2:
      return static_cast<size_t>(value) <= news_.size() ? std::string(news_.Get(value - 1)) : "";
    case 3:
    case 4:
      return value == 2 ? "1" : "0";
    default:
      return "";
  }
}

void FeatureSpace::EncodeCustomerStatic(const Dataset& ds, const Customer& c, int32_t* f) const {
  f[0] = AgeBand(c.age);
  f[1] = Lookup(club_, ds.club_member_status.Get(c.club_member_status));
  f[2] = Lookup(news_, ds.fashion_news_frequency.Get(c.fashion_news_frequency));
  f[3] = c.fn < 0 ? 0 : (c.fn == 0 ? 1 : 2);
  f[4] = c.active < 0 ? 0 : (c.active == 0 ? 1 : 2);
  const absl::string_view postal = ds.postal_codes.Get(c.postal_code);
  f[5] = postal.empty() ? 0 : 1 + static_cast<int32_t>(StableHash(postal) % postal_buckets_);
}

void FeatureSpace::EncodeCustomerHistory(const uint32_t* articles, int64_t n, int32_t last_purchase_day, int32_t as_of,
                                         int32_t* f, int32_t* history) const {
  f[6] = HistoryCountBand(n);
  f[7] = n == 0 ? 0 : DaysBand(as_of - last_purchase_day);
  int h = 0;
  for (int64_t i = n - 1; i >= 0 && h < history_length_; --i) history[h++] = static_cast<int32_t>(articles[i]) + 1;
  for (; h < history_length_; ++h) history[h] = 0;
}

void FeatureSpace::EncodeArticleStatic(uint32_t row, const Article& a, int32_t* f) const {
  f[0] = static_cast<int32_t>(row) + 1;
  for (int k = 0; k < kArticleCategoricalFields; ++k) f[1 + k] = Lookup(article_vocabs_[k], ArticleKey(a, k));
}

void FeatureSpace::EncodeArticleDynamic(const ArticleSales& sales, uint32_t row, int32_t day, int32_t* f) {
  const int32_t first = sales.FirstSaleBefore(row, day);
  f[1 + kArticleCategoricalFields] = first < 0 ? 0 : DaysBand(day - first + 1);
  f[2 + kArticleCategoricalFields] = CountBand(sales.SalesInWindow(row, day - 7, day));
}

std::vector<int32_t> FeatureSpace::HistoryAttributeTable(const std::vector<Article>& articles) const {
  std::vector<int32_t> table((articles.size() + 1) * kHistoryAttributes, 0);
  for (size_t i = 0; i < articles.size(); ++i) {
    for (int k = 0; k < kHistoryAttributes; ++k) {
      const int field = kHistoryAttributeFields[k];
      table[(i + 1) * kHistoryAttributes + k] = Lookup(article_vocabs_[field], ArticleKey(articles[i], field));
    }
  }
  return table;
}

}  // namespace hmrec
