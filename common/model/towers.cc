#include "common/model/towers.h"

#include <torch/nn/functional/normalization.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/linear.h>

#include "common/features.h"

namespace hmrec {

torch::nn::Sequential MakeMlp(int64_t in, const std::vector<int64_t>& hidden, int64_t out,
                              double dropout) {
  torch::nn::Sequential mlp;
  int64_t width = in;
  for (int64_t h : hidden) {
    mlp->push_back(torch::nn::Linear(width, h));
    mlp->push_back(torch::nn::ReLU());
    if (dropout > 0) mlp->push_back(torch::nn::Dropout(dropout));
    width = h;
  }
  mlp->push_back(torch::nn::Linear(width, out));
  return mlp;
}

namespace {

std::vector<int64_t> Hidden(const config::ModelConfig& cfg) {
  return std::vector<int64_t>(cfg.hidden().begin(), cfg.hidden().end());
}

torch::nn::Embedding Table(int64_t rows, int64_t dim) {
  torch::nn::Embedding e(torch::nn::EmbeddingOptions(rows, dim));
  torch::nn::init::normal_(e->weight, 0.0, 0.05);
  return e;
}

}  // namespace

CustomerTowerImpl::CustomerTowerImpl(const std::vector<int64_t>& field_sizes,
                                     int64_t num_article_rows,
                                     const std::vector<int64_t>& attribute_sizes,
                                     const std::vector<int32_t>& history_attributes,
                                     const config::ModelConfig& cfg) {
  const int64_t d = cfg.feature_dim();
  for (int64_t rows : field_sizes) fields_->push_back(Table(rows, d));
  register_module("fields", fields_);
  history_ids_ = register_module("history_ids", Table(num_article_rows, d));
  for (int64_t rows : attribute_sizes) history_attributes_->push_back(Table(rows, d));
  register_module("history_attributes", history_attributes_);
  torch::Tensor table = torch::zeros({num_article_rows, static_cast<int64_t>(attribute_sizes.size())},
                                     torch::kInt64);
  if (!history_attributes.empty()) {
    table.copy_(torch::tensor(history_attributes, torch::kInt32)
                    .to(torch::kInt64)
                    .view({num_article_rows, static_cast<int64_t>(attribute_sizes.size())}));
  }
  attribute_table_ = register_buffer("attribute_table", table);
  const int64_t in = d * (static_cast<int64_t>(field_sizes.size()) + 1);
  mlp_ = register_module("mlp", MakeMlp(in, Hidden(cfg), cfg.embedding_dim(), cfg.dropout()));
}

torch::Tensor CustomerTowerImpl::forward(const torch::Tensor& fields, const torch::Tensor& history) {
  std::vector<torch::Tensor> parts;
  parts.reserve(fields_->size() + 1);
  for (size_t i = 0; i < fields_->size(); ++i) {
    parts.push_back(fields_[i]->as<torch::nn::Embedding>()->forward(fields.select(1, static_cast<int64_t>(i))));
  }
  // Mean over the non-padding history items of id + attribute embeddings.
  torch::Tensor items = history_ids_->forward(history);  // [B, H, d]
  torch::Tensor attrs = attribute_table_.index_select(0, history.reshape({-1}))
                            .view({history.size(0), history.size(1), -1});
  for (size_t k = 0; k < history_attributes_->size(); ++k) {
    items = items + history_attributes_[k]->as<torch::nn::Embedding>()->forward(
                        attrs.select(2, static_cast<int64_t>(k)));
  }
  torch::Tensor mask = history.gt(0).to(items.scalar_type()).unsqueeze(2);  // [B, H, 1]
  torch::Tensor pooled = (items * mask).sum(1) / mask.sum(1).clamp_min(1.0);
  parts.push_back(pooled);
  torch::Tensor x = mlp_->forward(torch::cat(parts, 1));
  return torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().dim(1));
}

ArticleTowerImpl::ArticleTowerImpl(const std::vector<int64_t>& field_sizes,
                                   const config::ModelConfig& cfg) {
  const int64_t d = cfg.feature_dim();
  for (int64_t rows : field_sizes) fields_->push_back(Table(rows, d));
  register_module("fields", fields_);
  mlp_ = register_module(
      "mlp", MakeMlp(d * static_cast<int64_t>(field_sizes.size()), Hidden(cfg), cfg.embedding_dim(),
                     cfg.dropout()));
}

torch::Tensor ArticleTowerImpl::forward(const torch::Tensor& fields) {
  std::vector<torch::Tensor> parts;
  parts.reserve(fields_->size());
  for (size_t i = 0; i < fields_->size(); ++i) {
    parts.push_back(fields_[i]->as<torch::nn::Embedding>()->forward(fields.select(1, static_cast<int64_t>(i))));
  }
  torch::Tensor x = mlp_->forward(torch::cat(parts, 1));
  return torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().dim(1));
}

}  // namespace hmrec
