#pragma once

// A compact copy of articles.csv's descriptive columns, for programs that
// show or filter articles without reading the CSV: the server's request
// filters and explanations, the inspector page, the client. Each text
// column is stored as ids into its own list of distinct values. Written by
// the index builder into every bundle (articles.bin), checksummed like the
// rest. Immutable after Build/Load; safe to share.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "data/hm_data.h"

namespace hmrec {

class ArticleTable {
 public:
  // The text columns kept, in this order.
  enum Column : int {
    kProdName = 0,
    kProductType,
    kProductGroup,
    kColourGroup,
    kPerceivedColourMaster,
    kGraphicalAppearance,
    kDepartment,
    kIndexName,
    kIndexGroup,
    kSection,
    kGarmentGroup,
  };
  static constexpr int kColumns = 11;
  // Their articles.csv names.
  static const char* ColumnName(int column);

  static ArticleTable Build(const std::vector<Article>& articles);
  // This table with `added` appended as rows size() and on (a catalogue
  // refresh: the rows already here keep their row, id and values). The
  // caller ensures `added` holds no id the table has.
  ArticleTable WithArticles(const std::vector<Article>& added) const;
  absl::Status Save(const std::string& path) const;
  static absl::StatusOr<ArticleTable> Load(const std::string& path);

  size_t size() const { return article_ids_.size(); }
  int32_t article_id(uint32_t row) const { return article_ids_[row]; }
  int32_t product_code(uint32_t row) const { return product_codes_[row]; }
  // The row of `article_id`, or -1.
  int64_t Row(int32_t article_id) const;
  // The value of `column` for `row`, and its id among the column's values.
  absl::string_view Get(uint32_t row, int column) const { return values_[column][ids_[column][row]]; }
  uint32_t ValueId(uint32_t row, int column) const { return ids_[column][row]; }
  // The id of `value` in `column`, or -1 when no article has it.
  int64_t FindValue(int column, absl::string_view value) const;
  // Every distinct value of `column`, by id.
  const std::vector<std::string>& values(int column) const { return values_[column]; }

 private:
  std::vector<int32_t> article_ids_;
  std::vector<int32_t> product_codes_;
  std::vector<uint32_t> ids_[kColumns];
  std::vector<std::string> values_[kColumns];
  absl::flat_hash_map<int32_t, uint32_t> row_of_;
};

}  // namespace hmrec
