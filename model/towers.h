#pragma once

// The two towers as LibTorch modules: the one definition of the tower math,
// used by the trainer (training, export) and through CustomerTowerRunner by
// the server. Include only where tensors are needed: this header pulls in
// LibTorch's nn API.
//
// Customer tower: one embedding per customer field, plus the mean of the
// recent purchases (each an id embedding plus its attribute embeddings);
// concatenated; MLP; L2-normalised.
// Article tower: one embedding per article field; concatenated; MLP;
// L2-normalised.
// The embeddings of all fields of a tower live in one table, each field at
// its own row offset, so a batch costs one lookup per table instead of one
// per field: on 2 cores the per-op overhead of ~30
// small lookups cost more than the matrix products. Modules are not thread-safe for training; forward in eval
// mode under c10::InferenceMode may run from several threads.

#include <cstdint>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include "proto/config.pb.h"

namespace hmrec {

// Builds Linear/ReLU/Dropout layers from `in` through `hidden` to `out`.
torch::nn::Sequential MakeMlp(int64_t in, const std::vector<int64_t>& hidden, int64_t out, double dropout);

class CustomerTowerImpl : public torch::nn::Module {
 public:
  // `history_attributes` is [num_articles + 1, kHistoryAttributes] (row 0
  // padding) of attribute ids; `attribute_sizes` their vocabulary sizes.
  CustomerTowerImpl(const std::vector<int64_t>& field_sizes, int64_t num_article_rows,
                    const std::vector<int64_t>& attribute_sizes, const std::vector<int32_t>& history_attributes,
                    const config::ModelConfig& cfg);

  // fields: [B, kCustomerFields] int64; history: [B, H] int64 (0 = none).
  // Returns [B, embedding_dim], rows of unit length.
  torch::Tensor forward(const torch::Tensor& fields, const torch::Tensor& history);

  // The same computation in parts, so a trainer can read the tables its own
  // way (e.g. from a gathered slice of them): FieldRows -> [B, F] rows of
  // field_table(); HistoryRows -> [B, H, 1+K] rows of history_table();
  // PoolHistory -> [B, d] mean over the non-padding history items of their
  // id + attribute embeddings, read from `table` at `rows`; FromEmbeddings
  // finishes the tower.
  torch::Tensor FieldRows(const torch::Tensor& fields) const;
  torch::Tensor HistoryRows(const torch::Tensor& history) const;
  static torch::Tensor PoolHistory(const torch::Tensor& table, const torch::Tensor& rows, const torch::Tensor& history);
  torch::Tensor FromEmbeddings(const torch::Tensor& field_embeddings, const torch::Tensor& pooled_history);
  torch::nn::Embedding& field_table() { return field_table_; }
  torch::nn::Embedding& history_table() { return history_table_; }

 private:
  torch::nn::Embedding field_table_{nullptr};
  torch::Tensor field_offsets_;  // buffer [F]
  // Rows: article ids (num_article_rows), then each attribute vocabulary.
  torch::nn::Embedding history_table_{nullptr};
  torch::Tensor attribute_rows_;  // buffer [num_article_rows, 1 + K]: table rows of each article
  torch::nn::Sequential mlp_{nullptr};
};
TORCH_MODULE(CustomerTower);

class ArticleTowerImpl : public torch::nn::Module {
 public:
  ArticleTowerImpl(const std::vector<int64_t>& field_sizes, const config::ModelConfig& cfg);
  // fields: [B, kArticleFields] int64. Returns [B, embedding_dim], unit rows.
  torch::Tensor forward(const torch::Tensor& fields);

  // The two halves of forward (see CustomerTowerImpl).
  torch::Tensor FieldRows(const torch::Tensor& fields) const;
  torch::Tensor FromEmbeddings(const torch::Tensor& field_embeddings);
  torch::nn::Embedding& field_table() { return field_table_; }

 private:
  torch::nn::Embedding field_table_{nullptr};
  torch::Tensor field_offsets_;  // buffer [F]
  torch::nn::Sequential mlp_{nullptr};
};
TORCH_MODULE(ArticleTower);

}  // namespace hmrec
