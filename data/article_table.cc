#include "data/article_table.h"

#include "absl/strings/str_cat.h"
#include "common/binary_io.h"
#include "common/status_macros.h"

namespace hmrec {
namespace {

constexpr uint32_t kMagic = 0x54524148;  // "HART"
constexpr uint32_t kFormat = 1;

const std::string& Field(const Article& a, int column) {
  switch (column) {
    case ArticleTable::kProdName:
      return a.prod_name;
    case ArticleTable::kProductType:
      return a.product_type_name;
    case ArticleTable::kProductGroup:
      return a.product_group_name;
    case ArticleTable::kColourGroup:
      return a.colour_group_name;
    case ArticleTable::kPerceivedColourMaster:
      return a.perceived_colour_master_name;
    case ArticleTable::kGraphicalAppearance:
      return a.graphical_appearance_name;
    case ArticleTable::kDepartment:
      return a.department_name;
    case ArticleTable::kIndexName:
      return a.index_name;
    case ArticleTable::kIndexGroup:
      return a.index_group_name;
    case ArticleTable::kSection:
      return a.section_name;
    default:
      return a.garment_group_name;
  }
}

}  // namespace

const char* ArticleTable::ColumnName(int column) {
  static const char* const kNames[kColumns] = {"prod_name",
                                               "product_type_name",
                                               "product_group_name",
                                               "colour_group_name",
                                               "perceived_colour_master_name",
                                               "graphical_appearance_name",
                                               "department_name",
                                               "index_name",
                                               "index_group_name",
                                               "section_name",
                                               "garment_group_name"};
  return column >= 0 && column < kColumns ? kNames[column] : "unknown";
}

ArticleTable ArticleTable::Build(const std::vector<Article>& articles) { return ArticleTable().WithArticles(articles); }

ArticleTable ArticleTable::WithArticles(const std::vector<Article>& added) const {
  ArticleTable t = *this;
  absl::flat_hash_map<std::string, uint32_t> seen[kColumns];
  for (int c = 0; c < kColumns; ++c) {
    for (uint32_t id = 0; id < t.values_[c].size(); ++id) seen[c].emplace(t.values_[c][id], id);
  }
  for (const Article& a : added) {
    const uint32_t row = static_cast<uint32_t>(t.article_ids_.size());
    t.article_ids_.push_back(a.article_id);
    t.product_codes_.push_back(a.product_code);
    t.row_of_[a.article_id] = row;
    for (int c = 0; c < kColumns; ++c) {
      auto [it, inserted] = seen[c].emplace(Field(a, c), static_cast<uint32_t>(t.values_[c].size()));
      if (inserted) t.values_[c].push_back(Field(a, c));
      t.ids_[c].push_back(it->second);
    }
  }
  return t;
}

int64_t ArticleTable::Row(int32_t article_id) const {
  auto it = row_of_.find(article_id);
  return it == row_of_.end() ? -1 : static_cast<int64_t>(it->second);
}

int64_t ArticleTable::FindValue(int column, absl::string_view value) const {
  const std::vector<std::string>& v = values_[column];
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == value) return static_cast<int64_t>(i);
  }
  return -1;
}

absl::Status ArticleTable::Save(const std::string& path) const {
  ASSIGN_OR_RETURN(std::unique_ptr<BinaryWriter> w, BinaryWriter::Open(path));
  w->Pod(kMagic);
  w->Pod(kFormat);
  w->Vector(article_ids_);
  w->Vector(product_codes_);
  for (int c = 0; c < kColumns; ++c) {
    w->Vector(ids_[c]);
    w->Pod<uint64_t>(values_[c].size());
    for (const std::string& s : values_[c]) w->String(s);
  }
  return w->Close();
}

absl::StatusOr<ArticleTable> ArticleTable::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<BinaryReader> r, BinaryReader::Open(path));
  uint32_t magic = 0, format = 0;
  RETURN_IF_ERROR(r->Pod(&magic));
  RETURN_IF_ERROR(r->Pod(&format));
  if (magic != kMagic || format != kFormat) return r->Corrupt("not an article table of this hmrec version");
  ArticleTable t;
  RETURN_IF_ERROR(r->Vector(&t.article_ids_));
  RETURN_IF_ERROR(r->Vector(&t.product_codes_));
  if (t.product_codes_.size() != t.article_ids_.size()) return r->Corrupt("columns of different lengths");
  for (int c = 0; c < kColumns; ++c) {
    RETURN_IF_ERROR(r->Vector(&t.ids_[c]));
    uint64_t n = 0;
    RETURN_IF_ERROR(r->Pod(&n));
    if (n > r->remaining()) return r->Corrupt("more values than bytes");
    t.values_[c].resize(n);
    for (std::string& s : t.values_[c]) RETURN_IF_ERROR(r->String(&s));
    if (t.ids_[c].size() != t.article_ids_.size()) return r->Corrupt("columns of different lengths");
    for (uint32_t id : t.ids_[c]) {
      if (id >= n) return r->Corrupt(absl::StrCat(ColumnName(c), ": value id out of range"));
    }
  }
  RETURN_IF_ERROR(r->VerifyChecksum());
  for (uint32_t row = 0; row < t.article_ids_.size(); ++row) t.row_of_[t.article_ids_[row]] = row;
  return t;
}

}  // namespace hmrec
