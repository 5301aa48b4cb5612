#pragma once

// What the candidate sources and the ranking features read besides the
// customer: tables over all articles as of a day, computed only from the
// transactions before that day (point in time). The trainer builds them for
// each label week and for the bundle; the bundle carries the last ones
// (ranking_tables.bin) and the server reads them from there, so online and
// offline share both the tables and the code that reads them.
//
// Articles are rows: their index in articles.csv order (the bundle's
// article_embeddings order). Immutable after Build/Load; safe to share.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "candidates/clusters.h"
#include "common/stamped_array.h"
#include "data/customer_view.h"
#include "data/history.h"
#include "data/hm_data.h"
#include "proto/config.pb.h"

namespace hmrec {

// Sales of one article before the tables' day.
struct ArticleStats {
  float sales_1w = 0;       // rows in [day - 7, day)
  float sales_prev_1w = 0;  // rows in [day - 14, day - 7)
  float sales_4w = 0;       // rows in [day - 28, day)
  float sales_all = 0;      // rows before day
  int32_t first_sale_day = kNoDay;
  int32_t last_sale_day = kNoDay;
  float mean_price = 0;      // over [day - 28, day); else the last price paid; NaN if never sold
  float buyer_age_mean = 0;  // over [day - 28, day), buyers with a known age; NaN if none
  float online_share = 0;    // over [day - 28, day); NaN if none

  static constexpr int32_t kNoDay = INT32_MIN;
};

// Static attributes of one article that features compare with a customer's
// history (the *_no / *_code columns of articles.csv).
struct ArticleAttributes {
  int32_t product_code = 0;
  int32_t index_group = 0;
  int32_t product_type = 0;
  int32_t colour_group = 0;
  int32_t section = 0;
  int32_t department = 0;
  int32_t garment_group = 0;
};
inline constexpr int kAffinityAttributes = 6;  // index_group .. garment_group
// Affinity attribute i (0: index_group, 1: product_type, 2: colour_group,
// 3: section, 4: department, 5: garment_group) of `a`.
inline int32_t AffinityAttribute(const ArticleAttributes& a, int i) {
  switch (i) {
    case 0:
      return a.index_group;
    case 1:
      return a.product_type;
    case 2:
      return a.colour_group;
    case 3:
      return a.section;
    case 4:
      return a.department;
    default:
      return a.garment_group;
  }
}

// An article and a score, best first in every list.
struct ScoredArticle {
  uint32_t article = 0;
  float score = 0;
};

// Time decay shared by the sources, features and tables: 0.5 ^ (days /
// half_life), days below 0 counted as 0.
double Decay(int32_t days, double half_life);

// The time-decayed weight of each purchase of `view`: Decay(days before the
// day before view.as_of, half_life), in the view's order. Computed once a
// customer for the sources that weigh purchases by recency.
void PurchaseWeights(const CustomerView& view, double half_life, std::vector<double>* out);

class RankingTables;

// One customer's sums over the values of each affinity attribute, by the
// values' dense codes (RankingTables::code): a StampedArray per attribute
// the size of the catalogue's values, where a hash map by value cost a hash
// on every purchase and every lookup. Reused by one thread.
template <typename T>
class CodeSums {
 public:
  // Empties the sums and sizes them for `tables`' codes.
  void Reset(const RankingTables& tables);
  void Add(int attribute, uint32_t code, T x) { sums_[attribute][code] += x; }
  // The sum of `code` (0 when nothing was added).
  T of(int attribute, uint32_t code) const { return sums_[attribute].get(code); }
  // The codes added since Reset, in the order first added.
  const std::vector<uint32_t>& added(int attribute) const { return sums_[attribute].touched(); }

 private:
  StampedArray<T> sums_[kAffinityAttributes];
};

// A customer's taste: the summed weight (PurchaseWeights) of the purchases
// holding each value of each affinity attribute, and the weight of all of
// them. The taste and new-arrival sources score articles by it; the style
// profile (below) is its values with the largest shares.
struct Taste {
  CodeSums<double> weight;
  double total = 0;
};
void BuildTaste(const CustomerView& view, const RankingTables& tables, const std::vector<double>& weights, Taste* out);

// A customer's style profile: the values of their taste whose share of the
// total weight is at least kStyleMinShare, by key. The tables' style-buyers
// lists are built from the buyers' profiles and the source reads them with
// the customer's: one definition for both.
struct StyleValue {
  int32_t key = 0;  // StyleKey(attribute, value)
  float share = 0;
};
inline constexpr double kStyleMinShare = 0.1;
inline int32_t StyleKey(int attribute, int32_t value) {
  return static_cast<int32_t>(static_cast<uint32_t>(attribute) << 24 | (static_cast<uint32_t>(value) & 0xFFFFFFu));
}

// Age bands of the segment lists: <20, 20-24, ..., 60-64, 65+, and one for
// an unknown age (the whole population's list).
inline constexpr int kAgeBands = 11;
inline constexpr int kUnknownAgeBand = kAgeBands;
int AgeBand(int age);

// The customers who bought in the neighbour window before a day and their
// customer-tower embeddings as of that day (the trainer runs the tower;
// trainer/ranking_passes.h EmbedRecentBuyers).
struct BuyerEmbeddings {
  std::vector<uint32_t> customers;  // customer rows
  std::vector<float> values;        // customers x dim
  int dim = 0;
};

class RankingTables {
 public:
  // From the transactions of `ds` before `day` (`history` is ds's history).
  // Without `recent` buyers (or with none) the tables have no neighbour clusters
  // and the neighbours source proposes nothing.
  static RankingTables Build(const Dataset& ds, const CustomerHistory& history, int32_t day,
                             const config::RankingConfig& cfg, const BuyerEmbeddings* recent = nullptr);
  absl::Status Save(const std::string& path) const;
  static absl::StatusOr<RankingTables> Load(const std::string& path);

  // These tables with `added` appended as articles num_articles() and on (a
  // catalogue refresh): new in the catalogue, so never sold (no sales, no
  // co-purchases, price, buyer age and channel unknown). Each joins its
  // product_code's sibling list (after the articles that sold) and its
  // product type's new-arrival list, scored as the median new arrival of the
  // type (of every type when the type has none; one sale a day when there
  // are none at all): what an article of the type sells in its first days,
  // its best guess until it sells. Nothing else moves.
  RankingTables WithArticles(const std::vector<ArticleAttributes>& added) const;

  int32_t day() const { return day_; }
  size_t num_articles() const { return stats_.size(); }
  const ArticleStats& stats(uint32_t article) const { return stats_[article]; }
  const ArticleAttributes& attributes(uint32_t article) const { return attributes_[article]; }
  // Dense codes of the affinity attributes: one per distinct value of
  // attribute i in the catalogue, in [0, num_codes(i)), and the value back.
  // Derived from the attributes whenever they are set (not stored).
  uint32_t code(uint32_t article, int i) const {
    return codes_[static_cast<size_t>(article) * kAffinityAttributes + static_cast<size_t>(i)];
  }
  const uint32_t* codes(uint32_t article) const { return &codes_[static_cast<size_t>(article) * kAffinityAttributes]; }
  size_t num_codes(int i) const { return code_values_[i].size(); }
  int32_t value_of(int i, uint32_t code) const { return code_values_[i][code]; }
  // Articles bought by the same customers within a few days, with cosine
  // scores: count(a, b) / sqrt(buyers(a) * buyers(b)).
  const ScoredArticle* neighbours_begin(uint32_t article) const {
    return neighbours_.data() + neighbour_offsets_[article];
  }
  const ScoredArticle* neighbours_end(uint32_t article) const {
    return neighbours_.data() + neighbour_offsets_[article + 1];
  }
  // Every article of `article`'s product_code (itself included), by recent
  // sales; scores are sales_1w.
  const ScoredArticle* siblings_begin(uint32_t article) const;
  const ScoredArticle* siblings_end(uint32_t article) const;
  // Best sellers of an age band (kUnknownAgeBand: everyone), by sales over
  // the segment window weighted towards its last days: every article sold in
  // the window (a filtered request reads past the first few).
  const std::vector<ScoredArticle>& segment(int band) const { return segments_[static_cast<size_t>(band)]; }
  // Every article selling faster in the last week than in the week before,
  // fastest first.
  const std::vector<ScoredArticle>& trending() const { return trending_; }
  // The best sellers now of a product type (product_type_no): last week's
  // sales plus half the week before's, best first, at most taste_depth;
  // empty for a type that sold nothing. [first, second) of one lookup.
  std::pair<const ScoredArticle*, const ScoredArticle*> selling(int32_t product_type) const {
    return selling_.of(product_type);
  }
  // The articles of a product type first sold within new_arrival_days
  // before the day, by sales per day since their first sale, best first, at
  // most taste_depth; the same lookup.
  std::pair<const ScoredArticle*, const ScoredArticle*> new_arrivals(int32_t product_type) const {
    return new_arrivals_.of(product_type);
  }
  // log1p of an entry's score, for an entry of selling() / new_arrivals():
  // derived from the lists at Build, Load and refresh (not stored), so the
  // taste sources do not take a logarithm per listed article per customer.
  float selling_log1p(const ScoredArticle* entry) const { return selling_.log1p_of(entry); }
  float new_arrival_log1p(const ScoredArticle* entry) const { return new_arrivals_.log1p_of(entry); }
  // Style buyers: for a StyleKey, what the customers whose profile holds it
  // bought in the last style_buyers_window_days (half-life of half the
  // window), by share of their purchases, each purchase weighted by its
  // buyer's share of the value; at most style_buyers_depth, best first.
  std::pair<const ScoredArticle*, const ScoredArticle*> style_buyers(int32_t key) const {
    return style_buyers_.of(key);
  }

  // Sales among the customers of an age band (kUnknownAgeBand: everyone) in
  // the last week / the last 4 weeks before the day: the band's row, indexed
  // by article, and the band's sales of every article over the same days.
  // An article's sales among a band's customers over the last week and the
  // last 4 weeks, side by side: one cache line for both.
  struct BandSales {
    float w1 = 0, w4 = 0;
  };
  const BandSales* band_sales_row(int band) const { return band_sales_.data() + BandRow(band); }
  float band_total_1w(int band) const { return band_totals_[static_cast<size_t>(band) * 2]; }
  float band_total_4w(int band) const { return band_totals_[static_cast<size_t>(band) * 2 + 1]; }

  // Neighbours: the recent buyers' clusters (unit centroids, cluster_dim() x
  // num_clusters(), dimension-major) and what each cluster's buyers bought in the last
  // neighbour_window_days, by time-decayed share of the cluster's
  // purchases, best first, at most taste_depth.
  int num_clusters() const { return cluster_dim_ > 0 ? static_cast<int>(centroids_.size() / cluster_dim_) : 0; }
  int cluster_dim() const { return cluster_dim_; }
  // The cluster of a customer embedding of cluster_dim() floats (its
  // nearest centroid by cosine); -1 without clusters or for another dim.
  int ClusterOf(const float* embedding, int dim) const;
  std::pair<const ScoredArticle*, const ScoredArticle*> cluster_articles(int cluster) const {
    return {cluster_articles_.data() + cluster_offsets_[static_cast<size_t>(cluster)],
            cluster_articles_.data() + cluster_offsets_[static_cast<size_t>(cluster) + 1]};
  }

  // Lists of articles by product type, one binary search a lookup.
  struct ByType {
    std::vector<int32_t> types;     // product types, ascending
    std::vector<uint64_t> offsets;  // types + 1
    std::vector<ScoredArticle> articles;
    std::vector<float> log1p_scores;  // articles' log1p(score), where derived
    std::pair<const ScoredArticle*, const ScoredArticle*> of(int32_t type) const;
    float log1p_of(const ScoredArticle* entry) const {
      return log1p_scores[static_cast<size_t>(entry - articles.data())];
    }
    void DeriveLog1p();
  };

 private:
  int32_t day_ = 0;
  std::vector<ArticleStats> stats_;
  std::vector<ArticleAttributes> attributes_;
  std::vector<uint64_t> neighbour_offsets_;  // num_articles + 1
  std::vector<ScoredArticle> neighbours_;
  std::vector<uint32_t> product_of_;                  // article -> product group
  std::vector<uint64_t> product_offsets_;             // groups + 1
  std::vector<ScoredArticle> products_;               // articles of each group, best first
  std::vector<std::vector<ScoredArticle>> segments_;  // kAgeBands + 1
  std::vector<ScoredArticle> trending_;
  ByType selling_;
  ByType new_arrivals_;
  ByType style_buyers_;
  std::vector<BandSales> band_sales_;  // (kAgeBands + 1) x num_articles
  std::vector<float> band_totals_;     // per band: 1w, 4w
  int32_t cluster_dim_ = 0;
  std::vector<float> centroids_;                 // cluster_dim_ x clusters (candidates/clusters.h layout)
  std::vector<uint64_t> cluster_offsets_ = {0};  // clusters + 1
  std::vector<ScoredArticle> cluster_articles_;

  std::vector<uint32_t> codes_;                            // num_articles x kAffinityAttributes
  std::vector<int32_t> code_values_[kAffinityAttributes];  // code -> value

  size_t BandRow(int band) const { return static_cast<size_t>(band) * stats_.size(); }
  // Sets codes_ and code_values_ from attributes_ (codes in order of first
  // appearance, so appended articles keep the others' codes).
  void IndexAttributes();
};

template <typename T>
void CodeSums<T>::Reset(const RankingTables& tables) {
  for (int i = 0; i < kAffinityAttributes; ++i) sums_[i].Reset(tables.num_codes(i));
}

// Fills `out` (sorted by key) with the style profile of `taste` (above),
// built with `tables`.
void StyleProfile(const Taste& taste, const RankingTables& tables, std::vector<StyleValue>* out);

}  // namespace hmrec
