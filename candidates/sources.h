#pragma once

// Candidate sources: cheap ways to propose the ~100 articles a customer is
// most likely to buy next, each a small function of the customer's bounded
// history (data/customer_view.h) and the tables (candidates/tables.h):
//
//   repurchase      the customer's own articles, by time-decayed count
//   two_tower       the customer tower's nearest articles (given by the caller:
//                   it runs the tower and the search)
//   copurchase      articles bought within days of the customer's recent
//                   articles by the same customers (cosine of co-purchases)
//   same_product    other colours/variants (product_code) of recent articles
//   segment_popular best sellers of the customer's age band
//   trending        articles selling faster than the week before
//   taste           what sells now in the product types the customer buys,
//                   matched to the colours, departments, ... they buy
//   new_arrival     articles first sold in the last days, in those product
//                   types, matched the same way
//   neighbours      what customers like this one bought lately: the recent
//                   buyers' cluster nearest the customer's tower embedding
//   style_buyers    what sells now among the customers who buy the kinds of
//                   articles this customer buys (product types, colours,
//                   departments, ...: the style profile, candidates/tables.h)
//
// Every candidate keeps its provenance: its rank and score in each source
// that proposed it (the ranker's features and the served explanations), and
// the customer's article that led the co-purchase / same-product sources to
// it. The same code runs offline and in the server. Stateless; thread-safe
// with one CandidateScratch per thread.

#include <cstdint>
#include <utility>
#include <vector>

#include "candidates/tables.h"
#include "common/stamped_array.h"
#include "data/customer_view.h"
#include "proto/config.pb.h"

namespace hmrec {

enum Source : int {
  kRepurchase = 0,
  kTwoTower = 1,
  kCoPurchase = 2,
  kSameProduct = 3,
  kSegmentPopular = 4,
  kTrending = 5,
  kTaste = 6,
  kNewArrival = 7,
  kNeighbours = 8,
  kStyleBuyers = 9,
};
inline constexpr int kNumSources = 10;

// "repurchase", "two_tower", "copurchase", "same_product", "segment_popular", "trending", "taste",
// "new_arrival", "neighbours", "style_buyers".
const char* SourceName(int source);

struct Candidate {
  uint32_t article = 0;
  // 0-based rank in each source's list; -1 where the source did not propose it.
  int16_t rank[kNumSources] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
  float score[kNumSources] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  // The customer's article that contributed most to the co-purchase score /
  // whose product this is; -1 when none.
  int32_t copurchase_anchor = -1;
  int32_t product_anchor = -1;

  bool from(int source) const { return rank[source] >= 0; }
};

// The customer tower's output for this customer: the search's articles,
// best first (may be empty; the two-tower source), and the embedding (may
// be null; the neighbours source finds the customer's cluster with it).
struct TwoTowerHits {
  const int64_t* articles = nullptr;  // article rows; negative entries are skipped
  const float* scores = nullptr;
  int count = 0;
  const float* embedding = nullptr;
  int dim = 0;
};

// The article rows the two-tower source searches as of `tables.day()`: those
// sold in the last `cfg.two_tower_active_weeks()` weeks (every row when that
// is negative, or when fewer than `cfg.two_tower_candidates()` were sold).
// Articles out of sale rarely sell the next week; leaving them out makes the
// search over the catalogue a fraction of its cost. Rows from
// `trained_articles` on (appended by a catalogue refresh: new, never sold
// yet) are always searched; -1 = every row was trained. Ascending rows.
std::vector<int64_t> TwoTowerSearchRows(const RankingTables& tables, const config::RankingConfig& cfg,
                                        int64_t trained_articles = -1);

// A subset of the catalogue the sources must stay within (a request's
// attribute filters): each source then proposes its best allowed articles,
// as many as it would over the whole catalogue. A candidate's rank in a
// source stays its rank in the source's whole list (so the ranker sees the
// values it was trained on: the best seller of a small group is not the best
// seller), except the two-tower source's, which only sees the allowed
// articles. Built once per filter (it keeps the allowed part of the tables'
// segment and trending lists); immutable.
class ArticleFilter {
 public:
  // allowed[row] != 0 for the article rows that may be proposed; `tables`
  // (may be null: then segment() and trending() are empty) gives the lists.
  ArticleFilter(std::vector<uint8_t> allowed, const RankingTables* tables);

  bool allows(uint32_t row) const { return row < allowed_.size() && allowed_[row] != 0; }
  // The allowed rows, ascending.
  const std::vector<int64_t>& rows() const { return rows_; }
  // An allowed entry of a tables list and its position in the whole list.
  struct Entry {
    ScoredArticle article;
    int32_t rank;
  };
  const std::vector<Entry>& segment(int band) const { return segments_[static_cast<size_t>(band)]; }
  const std::vector<Entry>& trending() const { return trending_; }

 private:
  std::vector<uint8_t> allowed_;
  std::vector<int64_t> rows_;
  std::vector<std::vector<Entry>> segments_;
  std::vector<Entry> trending_;
};

// Reused between customers by one thread.
struct CandidateScratch {
  // By article row, each emptied in O(1) a customer (StampedArray):
  StampedArray<uint32_t> index;  // the article's position in the output
  StampedArray<double> acc;      // a source's summed scores
  struct CoPurchase {            // the summed score, the best anchor's contribution, that anchor
    double sum = 0, best = 0;
    uint32_t anchor = 0;
  };
  StampedArray<CoPurchase> copurchase;
  std::vector<ScoredArticle> list;
  std::vector<std::pair<uint32_t, int32_t>> anchors;  // article, last day bought
  std::vector<double> weights;                        // PurchaseWeights of the view
  Taste taste;                                        // the customer's, from `weights`
  std::vector<std::pair<double, int32_t>> types;      // weight, product type
  std::vector<StyleValue> style;                      // the customer's style profile
};

// Proposes `view`'s candidates from every source (limits from `cfg`, a
// filled RankingConfig), in a deterministic order, into `out`. With a
// `filter`, only articles it allows (the two-tower hits should come from a
// search over filter->rows()).
void GenerateCandidates(const CustomerView& view, const RankingTables& tables, const TwoTowerHits& two_tower,
                        const config::RankingConfig& cfg, CandidateScratch* scratch, std::vector<Candidate>* out,
                        const ArticleFilter* filter = nullptr);

// The "fixed rule" merge, without a ranker: candidates ordered by source
// priority (repurchase, co-purchase, same product, two-tower, taste,
// neighbours, style buyers, segment popular, trending, new arrivals), then by rank within the source. Writes positions
// into `candidates`, best first.
void HeuristicOrder(const std::vector<Candidate>& candidates, std::vector<uint32_t>* order);

}  // namespace hmrec
