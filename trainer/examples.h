#pragma once

// Training examples and their features, without LibTorch: one example per
// distinct (customer, article, day) in the training window, each with the
// customer's history as of that day (only purchases strictly before it) and
// the article's time-dependent features as of that day. Fills flat int32
// batches that the training loop hands to the towers.
//
// Immutable after Build(); FillBatch and the Encode* calls may run from
// several threads on distinct output buffers.

#include <cstdint>
#include <vector>

#include "data/history.h"
#include "data/hm_data.h"
#include "features/feature_space.h"
#include "proto/config.pb.h"

namespace hmrec {

struct Example {
  uint32_t customer;
  uint32_t article;
  int32_t day;
  uint32_t history_count;  // purchases of the customer before `day`
  float weight;            // recency weight
};

// A batch of examples as flat row-major arrays.
struct Batch {
  int64_t size = 0;
  std::vector<int32_t> customer_fields;  // size x kCustomerFields
  std::vector<int32_t> history;          // size x history_length
  std::vector<int32_t> article_fields;   // size x kArticleFields
  std::vector<int32_t> article_rows;     // size
  std::vector<float> weight;             // size
  std::vector<float> log_q;              // size: log sampling probability of the article
  // i * size + j for every i != j whose examples have the same article:
  // in-batch "negatives" that are really positives, masked out of the loss.
  std::vector<int64_t> same_article;
};

class TrainingData {
 public:
  // `ds` must outlive the TrainingData.
  static TrainingData Build(const Dataset& ds, const FeatureSpace& space, const config::TrainerConfig& cfg);

  const std::vector<Example>& examples() const { return examples_; }
  int32_t window_first_day() const { return window_first_day_; }
  // The day features of the exported model are computed as of: the day
  // after the last training day.
  int32_t as_of_day() const { return ds_->last_day + 1; }

  // Fills `batch` with the examples at positions order[begin, end). With
  // the model's article_id_dropout, that share of them (drawn from the
  // config's seed, the example and its position: the same order gives the
  // same batch) shows the article tower the unknown id instead of theirs.
  void FillBatch(const std::vector<uint32_t>& order, size_t begin, size_t end, Batch* batch) const;

  // Encodes customers as of `as_of_day()` from all their purchases.
  void EncodeCustomers(const std::vector<uint32_t>& customers, std::vector<int32_t>* fields,
                       std::vector<int32_t>* history) const;
  // Encodes every article as of `day`; with article_id_dropout, an article
  // without training examples by the unknown id (its own row never trained).
  void EncodeArticles(int32_t day, std::vector<int32_t>* fields) const;

 private:
  const Dataset* ds_ = nullptr;
  const FeatureSpace* space_ = nullptr;
  CustomerHistory history_;
  ArticleSales sales_;
  std::vector<Example> examples_;
  // Per example: the article's time-dependent fields as of its day.
  std::vector<int8_t> example_article_dynamic_;
  std::vector<int32_t> customer_static_;  // customers x 6
  std::vector<int32_t> article_static_;   // articles x 12
  std::vector<float> article_log_q_;
  int32_t window_first_day_ = 0;
  double article_id_dropout_ = 0;
  std::vector<bool> has_examples_;  // per article: at least one training example
  uint64_t seed_ = 0;
};

}  // namespace hmrec
