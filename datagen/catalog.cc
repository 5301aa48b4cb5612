#include "datagen/catalog.h"

namespace hmrec::datagen {

const std::vector<IndexInfo>& Indexes() {
  static const auto* k = new std::vector<IndexInfo>{
      {"A", "Ladieswear", 1, "Ladieswear", kWomen, 0.25, 38},
      {"B", "Lingeries/Tights", 1, "Ladieswear", kWomen, 0.066, 34},
      {"C", "Ladies Accessories", 1, "Ladieswear", kWomen, 0.06, 33},
      {"D", "Divided", 2, "Divided", kWomen, 0.15, 23},
      {"F", "Menswear", 3, "Menswear", kMen, 0.12, 33},
      {"G", "Baby Sizes 50-98", 4, "Baby/Children", kKids, 0.08, 34},
      {"H", "Children Sizes 92-140", 4, "Baby/Children", kKids, 0.12, 38},
      {"I", "Children Sizes 134-170", 4, "Baby/Children", kKids, 0.09, 44},
      {"J", "Children Accessories, Swimwear", 4, "Baby/Children", kKids, 0.04, 40},
      {"S", "Sport", 26, "Sport", kAll, 0.03, 30},
  };
  return *k;
}

const std::vector<ProductTypeInfo>& ProductTypes() {
  constexpr uint8_t W = kWomen, M = kMen, K = kKids, WM = kWomen | kMen, WK = kWomen | kKids, A = kAll;
  static const auto* k = new std::vector<ProductTypeInfo>{
      {255, "T-shirt", "Garment Upper body", 1002, A, 99},
      {254, "Top", "Garment Upper body", 1005, WK, 149},
      {253, "Vest top", "Garment Upper body", 1002, WK, 79},
      {252, "Sweater", "Garment Upper body", 1003, A, 299},
      {245, "Hoodie", "Garment Upper body", 1005, A, 249},
      {258, "Blouse", "Garment Upper body", 1010, W, 249},
      {259, "Shirt", "Garment Upper body", 1011, WM, 249},
      {264, "Jacket", "Garment Upper body", 1007, A, 499},
      {262, "Coat", "Garment Upper body", 1007, WM, 799},
      {257, "Cardigan", "Garment Upper body", 1003, WK, 299},
      {256, "Polo shirt", "Garment Upper body", 1002, M, 199},
      {272, "Trousers", "Garment Lower body", 1009, A, 299},
      {274, "Shorts", "Garment Lower body", 1017, A, 199},
      {275, "Skirt", "Garment Lower body", 1014, WK, 249},
      {273, "Leggings/Tights", "Garment Lower body", 1020, WK, 129},
      {265, "Dress", "Garment Full body", 1013, WK, 349},
      {267, "Jumpsuit/Playsuit", "Garment Full body", 1008, WK, 349},
      {270, "Garment Set", "Garment Full body", 1006, K, 199},
      {269, "Bodysuit", "Garment Full body", 1006, K, 99},
      {306, "Bra", "Underwear", 1012, W, 199},
      {286, "Underwear bottom", "Underwear", 1012, A, 79},
      {283, "Underwear body", "Underwear", 1012, W, 149},
      {304, "Underwear Tights", "Socks & Tights", 1020, WK, 99},
      {302, "Socks", "Socks & Tights", 1020, A, 49},
      {298, "Bikini top", "Swimwear", 1018, W, 149},
      {59, "Swimwear bottom", "Swimwear", 1018, W, 129},
      {60, "Swimsuit", "Swimwear", 1018, WK, 249},
      {61, "Swimwear set", "Swimwear", 1018, K, 199},
      {95, "Pyjama set", "Nightwear", 1012, A, 249},
      {94, "Sneakers", "Shoes", 1025, A, 399},
      {89, "Boots", "Shoes", 1025, WM, 599},
      {91, "Sandals", "Shoes", 1025, WK, 249},
      {66, "Bag", "Accessories", 1019, W, 249},
      {72, "Hat/beanie", "Accessories", 1019, A, 99},
      {71, "Earring", "Accessories", 1019, W, 79},
      {77, "Necklace", "Accessories", 1019, W, 99},
      {73, "Sunglasses", "Accessories", 1019, WM, 129},
      {81, "Scarf", "Accessories", 1019, WM, 149},
      {82, "Belt", "Accessories", 1019, WM, 149},
      {87, "Hair clip", "Accessories", 1019, WK, 49},
      {93, "Cap/peaked", "Accessories", 1019, A, 129},
      {515, "Wallet", "Accessories", 1019, WM, 149},
  };
  return *k;
}

const std::vector<NamedCode>& GarmentGroups() {
  static const auto* k = new std::vector<NamedCode>{
      {1001, "Unknown"},
      {1002, "Jersey Basic"},
      {1003, "Knitwear"},
      {1005, "Jersey Fancy"},
      {1006, "Woven/Jersey/Knitted mix Baby"},
      {1007, "Outdoor"},
      {1008, "Dressed"},
      {1009, "Trousers"},
      {1010, "Blouses"},
      {1011, "Shirts"},
      {1012, "Under-, Nightwear"},
      {1013, "Dresses Ladies"},
      {1014, "Skirts"},
      {1016, "Trousers Denim"},
      {1017, "Shorts"},
      {1018, "Swimwear"},
      {1019, "Accessories"},
      {1020, "Socks and Tights"},
      {1021, "Special Offers"},
      {1023, "Dresses/Skirts girls"},
      {1025, "Shoes"},
  };
  return *k;
}

absl::string_view GarmentGroupName(int32_t code) {
  for (const NamedCode& g : GarmentGroups()) {
    if (g.code == code) return g.name;
  }
  return "Unknown";
}

const std::vector<NamedCode>& GraphicalAppearances() {
  static const auto* k = new std::vector<NamedCode>{
      {1010016, "Solid"},
      {1010001, "All over pattern"},
      {1010010, "Melange"},
      {1010017, "Stripe"},
      {1010021, "Lace"},
      {1010023, "Denim"},
      {1010004, "Check"},
      {1010008, "Front print"},
      {1010014, "Placement print"},
      {1010026, "Other pattern"},
      {1010002, "Application/3D"},
      {1010005, "Colour blocking"},
      {1010007, "Embroidery"},
      {1010012, "Jacquard"},
      {1010013, "Metallic"},
      {1010018, "Treatment"},
      {1010019, "Sequin"},
      {1010020, "Contrast"},
      {1010022, "Neps"},
      {1010024, "Mesh"},
      {1010025, "Glittering/Metallic"},
      {1010027, "Chambray"},
      {1010028, "Hologram"},
      {1010029, "Argyle"},
      {1010006, "Dot"},
      {1010009, "Mixed solid/pattern"},
      {1010011, "Transparent"},
      {1010015, "Slub"},
      {-1, "Unknown"},
  };
  return *k;
}

const std::vector<ColourInfo>& Colours() {
  static const auto* k = new std::vector<ColourInfo>{
      {9, "Black", 4, "Dark", 5, "Black"},
      {10, "White", 3, "Bright", 9, "White"},
      {11, "Off White", 1, "Dusty Light", 9, "White"},
      {12, "Light Beige", 1, "Dusty Light", 11, "Beige"},
      {13, "Beige", 2, "Medium Dusty", 11, "Beige"},
      {19, "Greenish Khaki", 2, "Medium Dusty", 12, "Khaki green"},
      {23, "Dark Yellow", 4, "Dark", 8, "Yellow"},
      {42, "Red", 3, "Bright", 18, "Red"},
      {43, "Dark Red", 4, "Dark", 18, "Red"},
      {51, "Light Pink", 1, "Dusty Light", 4, "Pink"},
      {52, "Pink", 7, "Medium", 4, "Pink"},
      {53, "Dark Pink", 4, "Dark", 4, "Pink"},
      {62, "Light Turquoise", 1, "Dusty Light", 7, "Turquoise"},
      {71, "Light Blue", 1, "Dusty Light", 2, "Blue"},
      {72, "Blue", 7, "Medium", 2, "Blue"},
      {73, "Dark Blue", 4, "Dark", 2, "Blue"},
      {81, "Light Green", 1, "Dusty Light", 19, "Green"},
      {83, "Dark Green", 4, "Dark", 19, "Green"},
      {91, "Light Grey", 1, "Dusty Light", 13, "Grey"},
      {92, "Grey", 2, "Medium Dusty", 13, "Grey"},
      {93, "Dark Grey", 4, "Dark", 13, "Grey"},
      {7, "Grey melange", 2, "Medium Dusty", 13, "Grey"},
      {17, "Yellowish Brown", 2, "Medium Dusty", 15, "Brown"},
      {33, "Dark Orange", 4, "Dark", 6, "Orange"},
      {63, "Turquoise", 7, "Medium", 7, "Turquoise"},
      {3, "Silver", 3, "Bright", 10, "Metal"},
      {5, "Gold", 3, "Bright", 10, "Metal"},
      {1, "Other", -1, "Unknown", -1, "Unknown"},
      {2, "Transparent", 5, "Light", 20, "undefined"},
      {61, "Light Purple", 1, "Dusty Light", 14, "Lilac Purple"},
      {67, "Other Turquoise", 7, "Medium", 7, "Turquoise"},
  };
  return *k;
}

const std::vector<absl::string_view>& SectionWords() {
  static const auto* k = new std::vector<absl::string_view>{
      "Womens Everyday Collection",
      "Womens Tailoring",
      "Womens Casual",
      "Womens Trend",
      "Womens Lingerie",
      "Womens Nightwear, Socks & Tigh",
      "Womens Swimwear, beachwear",
      "Womens Small accessories",
      "Womens Big accessories",
      "Womens Shoes",
      "Ladies Denim",
      "Divided Basics",
      "Divided Collection",
      "Divided Projects",
      "Divided Selected",
      "Divided Accessories",
      "Mens Underwear",
      "Men Project",
      "Contemporary Smart",
      "Contemporary Casual",
      "Contemporary Street",
      "Men Accessories",
      "Men Shoes",
      "Denim Men",
      "Baby Essentials & Complements",
      "Baby Girl",
      "Baby Boy",
      "Kids Girl",
      "Kids Boy",
      "Young Girl",
      "Young Boy",
      "Kids & Baby Shoes",
      "Kids Accessories, Swimwear & D",
      "Kids Outerwear",
      "Ladies H&M Sport",
      "Men H&M Sport",
      "Kids Sports",
      "Collaborations",
      "EQ Divided",
      "Mama",
  };
  return *k;
}

const std::vector<absl::string_view>& NameWords() {
  static const auto* k = new std::vector<absl::string_view>{
      "Tilly",  "Luna",    "Bella",  "Sara",  "Mika",    "Nora", "Ines",    "Alva",      "Ebba",
      "Juno",   "Hugo",    "Leo",    "Otto",  "Max",     "Theo", "Nils",    "Svea",      "Cleo",
      "Vera",   "Ivy",     "Basic",  "Slim",  "Relaxed", "Wide", "Cropped", "Oversized", "Soft",
      "Chunky", "Classic", "Ribbed", "Fancy", "Sporty",  "Cosy", "Bold",    "Sweet",     "Cool",
  };
  return *k;
}

const std::vector<absl::string_view>& Fabrics() {
  static const auto* k = new std::vector<absl::string_view>{
      "soft cotton jersey", "fine-knit fabric",   "woven viscose", "washed denim",
      "sweatshirt fabric",  "ribbed jersey",      "lyocell blend", "recycled polyester",
      "linen-blend weave",  "thick cotton twill", "stretch lace",  "organic cotton",
  };
  return *k;
}

const std::vector<absl::string_view>& Features() {
  static const auto* k = new std::vector<absl::string_view>{
      "a round neckline",
      "long sleeves",
      "short sleeves",
      "a V-neck",
      "a relaxed fit",
      "an elasticated waist",
      "side pockets",
      "a zip at the front",
      "buttons down the front",
      "dropped shoulders",
      "ribbing at the cuffs and hem",
      "a drawstring hood",
      "narrow, adjustable shoulder straps",
      "a slightly longer back",
      "a print motif",
      "a concealed zip in one side",
      "a wrapover front",
      "flared legs",
      "a high waist",
      "a sheen",
      "lined cups",
      "a chest pocket",
      "a turn-down collar",
      "a double-layered hood",
  };
  return *k;
}

}  // namespace hmrec::datagen
