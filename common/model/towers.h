#pragma once

// The two towers as LibTorch modules: the one definition of the tower math,
// used by the trainer (training, export) and through CustomerTowerRunner by
// the server. Include only where tensors are needed: this header pulls in
// LibTorch's nn API.
//
// Customer tower: one embedding per customer field, plus the mean of the
// recent purchases (each an id embedding plus its pooled attribute
// embeddings); concatenated; MLP; L2-normalised.
// Article tower: one embedding per article field; concatenated; MLP;
// L2-normalised. Modules are not thread-safe for training; forward in eval
// mode under c10::InferenceMode may run from several threads.

#include <cstdint>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include "proto/config.pb.h"

namespace hmrec {

// Builds Linear/ReLU/Dropout layers from `in` through `hidden` to `out`.
torch::nn::Sequential MakeMlp(int64_t in, const std::vector<int64_t>& hidden, int64_t out,
                              double dropout);

class CustomerTowerImpl : public torch::nn::Module {
 public:
  // `history_attributes` is [num_articles + 1, kHistoryAttributes] (row 0
  // padding) of attribute ids; `attribute_sizes` their vocabulary sizes.
  CustomerTowerImpl(const std::vector<int64_t>& field_sizes, int64_t num_article_rows,
                    const std::vector<int64_t>& attribute_sizes,
                    const std::vector<int32_t>& history_attributes, const config::ModelConfig& cfg);

  // fields: [B, kCustomerFields] int64; history: [B, H] int64 (0 = none).
  // Returns [B, embedding_dim], rows of unit length.
  torch::Tensor forward(const torch::Tensor& fields, const torch::Tensor& history);

 private:
  torch::nn::ModuleList fields_;
  torch::nn::Embedding history_ids_{nullptr};
  torch::nn::ModuleList history_attributes_;
  torch::Tensor attribute_table_;  // buffer
  torch::nn::Sequential mlp_{nullptr};
};
TORCH_MODULE(CustomerTower);

class ArticleTowerImpl : public torch::nn::Module {
 public:
  ArticleTowerImpl(const std::vector<int64_t>& field_sizes, const config::ModelConfig& cfg);
  // fields: [B, kArticleFields] int64. Returns [B, embedding_dim], unit rows.
  torch::Tensor forward(const torch::Tensor& fields);

 private:
  torch::nn::ModuleList fields_;
  torch::nn::Sequential mlp_{nullptr};
};
TORCH_MODULE(ArticleTower);

}  // namespace hmrec
