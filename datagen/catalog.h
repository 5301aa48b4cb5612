#pragma once

// The attribute vocabularies of articles.csv that datagen draws from. Names
// and codes follow the real file's vocabulary where it is public knowledge
// (index codes, index groups, garment groups, graphical appearances, colour
// groups); product types and departments are a representative subset.
// Immutable; safe to share.

#include <cstdint>
#include <vector>
#include "absl/strings/string_view.h"

namespace hmrec::datagen {

// Who a product type is for; an index admits the types of its audience.
enum Audience : uint8_t { kWomen = 1, kMen = 2, kKids = 4, kAll = 7 };

struct IndexInfo {
  absl::string_view code;  // "A"
  absl::string_view name;  // "Ladieswear"
  int32_t group_no;
  absl::string_view group_name;
  Audience audience;
  double article_share;  // share of articles in the real catalogue (approx.)
  double age_center;     // where the customers buying it cluster
};

struct ProductTypeInfo {
  int32_t no;
  absl::string_view name;
  absl::string_view group;  // product_group_name
  int32_t garment_group_no;
  uint8_t audience;  // bit set of Audience
  double price;      // typical shelf price, SEK
};

struct NamedCode {
  int32_t code;
  absl::string_view name;
};

struct ColourInfo {
  int32_t code;
  absl::string_view name;
  int32_t value_id;
  absl::string_view value_name;
  int32_t master_id;
  absl::string_view master_name;
};

const std::vector<IndexInfo>& Indexes();
const std::vector<ProductTypeInfo>& ProductTypes();
const std::vector<NamedCode>& GarmentGroups();
const std::vector<NamedCode>& GraphicalAppearances();
const std::vector<ColourInfo>& Colours();
// Words for section and department names, product names and descriptions.
const std::vector<absl::string_view>& SectionWords();
const std::vector<absl::string_view>& NameWords();
const std::vector<absl::string_view>& Fabrics();
const std::vector<absl::string_view>& Features();

// Returns the garment group name of a code (or "Unknown").
absl::string_view GarmentGroupName(int32_t code);

}  // namespace hmrec::datagen
