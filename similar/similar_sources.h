#pragma once

// The sources of SimilarArticles (similar/similar_articles.h), apart from
// the engine: the request code names them without linking the search.

namespace hmrec {

enum SimilarSource : int {
  kSimilarEmbedding = 0,       // nearest by the article tower's embedding
  kSimilarBoughtTogether = 1,  // bought by the same customers within days
  kSimilarSameProduct = 2,     // another colour or variant (product_code)
  kSimilarPopularInType = 3,   // a best seller now of the same product type
};
inline constexpr int kNumSimilarSources = 4;
// Not a source of candidates: the requesting customer's order of them (the
// customer tower's score), blended in when a request names a customer.
inline constexpr int kSimilarForCustomer = kNumSimilarSources;

// "embedding", "bought_together", "same_product", "popular_in_type",
// "for_customer"; "unknown" otherwise.
inline const char* SimilarSourceName(int source) {
  switch (source) {
    case kSimilarEmbedding:
      return "embedding";
    case kSimilarBoughtTogether:
      return "bought_together";
    case kSimilarSameProduct:
      return "same_product";
    case kSimilarPopularInType:
      return "popular_in_type";
    case kSimilarForCustomer:
      return "for_customer";
    default:
      return "unknown";
  }
}

}  // namespace hmrec
