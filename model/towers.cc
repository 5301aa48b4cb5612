#include "model/towers.h"

#include <torch/nn/functional/embedding.h>
#include <torch/nn/functional/normalization.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>

#include <numeric>

#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include "features/feature_space.h"

namespace hmrec {

torch::nn::Sequential MakeMlp(int64_t in, const std::vector<int64_t>& hidden, int64_t out, double dropout) {
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

// Returns the starting row of each field in a table holding them back to back.
torch::Tensor Offsets(const std::vector<int64_t>& sizes, int64_t start = 0) {
  std::vector<int64_t> offsets;
  for (int64_t s : sizes) {
    offsets.push_back(start);
    start += s;
  }
  return torch::tensor(offsets, torch::kInt64);
}

int64_t Sum(const std::vector<int64_t>& v) { return std::accumulate(v.begin(), v.end(), int64_t{0}); }

}  // namespace

CustomerTowerImpl::CustomerTowerImpl(const std::vector<int64_t>& field_sizes, int64_t num_article_rows,
                                     const std::vector<int64_t>& attribute_sizes,
                                     const std::vector<int32_t>& history_attributes, const config::ModelConfig& cfg) {
  const int64_t d = cfg.feature_dim();
  const int64_t k = static_cast<int64_t>(attribute_sizes.size());
  field_table_ = register_module("field_table", Table(Sum(field_sizes), d));
  field_offsets_ = register_buffer("field_offsets", Offsets(field_sizes));
  history_table_ = register_module("history_table", Table(num_article_rows + Sum(attribute_sizes), d));
  // Row of each article's id and attributes in history_table.
  torch::Tensor rows = torch::zeros({num_article_rows, 1 + k}, torch::kInt64);
  rows.select(1, 0).copy_(torch::arange(num_article_rows, torch::kInt64));
  if (!history_attributes.empty()) {
    rows.narrow(1, 1, k).copy_(torch::tensor(history_attributes, torch::kInt32)
                                   .to(torch::kInt64)
                                   .view({num_article_rows, k})
                                   .add(Offsets(attribute_sizes, num_article_rows).unsqueeze(0)));
  }
  attribute_rows_ = register_buffer("attribute_rows", rows);
  const int64_t in = d * (static_cast<int64_t>(field_sizes.size()) + 1);
  mlp_ = register_module("mlp", MakeMlp(in, Hidden(cfg), cfg.embedding_dim(), cfg.dropout()));
}

torch::Tensor CustomerTowerImpl::FieldRows(const torch::Tensor& fields) const {
  return fields + field_offsets_.unsqueeze(0);
}

torch::Tensor CustomerTowerImpl::HistoryRows(const torch::Tensor& history) const {
  return attribute_rows_.index_select(0, history.reshape({-1})).view({history.size(0), history.size(1), -1});
}

namespace {

// out[b] = sum_l weight[b, l] * table[rows[b, l]]: a weighted bag per row of
// `rows`. The same result as embedding_bag(mode sum, per_sample_weights),
// whose CPU backward sorts all B*L indices and cost a third of a training
// step; this backward scatters in place, threads splitting the columns.
class WeightedBag : public torch::autograd::Function<WeightedBag> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& table,
                               const torch::Tensor& rows, const torch::Tensor& weight) {
    const torch::Tensor t = table.contiguous();
    const torch::Tensor r = rows.contiguous();
    const torch::Tensor w = weight.contiguous();
    const int64_t b = r.size(0), l = r.size(1), d = t.size(1);
    torch::Tensor out = torch::zeros({b, d}, t.options());
    const float* tp = t.data_ptr<float>();
    const int64_t* rp = r.data_ptr<int64_t>();
    const float* wp = w.data_ptr<float>();
    float* op = out.data_ptr<float>();
    at::parallel_for(0, b, 64, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        float* o = op + i * d;
        for (int64_t j = 0; j < l; ++j) {
          const float wij = wp[i * l + j];
          if (wij == 0.0f) continue;
          const float* row = tp + rp[i * l + j] * d;
          for (int64_t k = 0; k < d; ++k) o[k] += wij * row[k];
        }
      }
    });
    ctx->save_for_backward({r, w});
    ctx->saved_data["rows"] = t.size(0);
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& r = saved[0];
    const torch::Tensor& w = saved[1];
    const torch::Tensor g = grads[0].contiguous();
    const int64_t b = r.size(0), l = r.size(1), d = g.size(1);
    torch::Tensor grad_table = torch::zeros({ctx->saved_data["rows"].toInt(), d}, g.options());
    const int64_t* rp = r.data_ptr<int64_t>();
    const float* wp = w.data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    float* tp = grad_table.data_ptr<float>();
    // Threads own disjoint column ranges, so no two write the same float.
    at::parallel_for(0, d, 8, [&](int64_t k0, int64_t k1) {
      for (int64_t i = 0; i < b; ++i) {
        for (int64_t j = 0; j < l; ++j) {
          const float wij = wp[i * l + j];
          if (wij == 0.0f) continue;
          float* row = tp + rp[i * l + j] * d;
          const float* gi = gp + i * d;
          for (int64_t k = k0; k < k1; ++k) row[k] += wij * gi[k];
        }
      }
    });
    return {grad_table, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor CustomerTowerImpl::PoolHistory(const torch::Tensor& table, const torch::Tensor& rows,
                                             const torch::Tensor& history) {
  // One weighted bag per customer holding all H x (1+K) rows, each weighted
  // mask / count: the mean of the items without materialising [B, H, 1+K, d].
  const int64_t b = rows.size(0);
  const int64_t per_item = rows.size(2);
  torch::Tensor mask = history.gt(0).to(table.scalar_type());  // [B, H]
  torch::Tensor weight = mask / mask.sum(1, /*keepdim=*/true).clamp_min(1.0);
  weight = weight.unsqueeze(2).expand({b, history.size(1), per_item}).reshape({b, -1});
  if (table.is_cpu() && table.scalar_type() == torch::kFloat32) {
    return WeightedBag::apply(table, rows.reshape({b, -1}), weight);
  }
  namespace F = torch::nn::functional;
  return F::embedding_bag(rows.reshape({b, -1}), table,
                          F::EmbeddingBagFuncOptions().mode(torch::kSum).per_sample_weights(weight));
}

torch::Tensor CustomerTowerImpl::FromEmbeddings(const torch::Tensor& field_embeddings,
                                                const torch::Tensor& pooled_history) {
  torch::Tensor f = field_embeddings.reshape({field_embeddings.size(0), -1});
  torch::Tensor x = mlp_->forward(torch::cat({f, pooled_history}, 1));
  return torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().dim(1));
}

torch::Tensor CustomerTowerImpl::forward(const torch::Tensor& fields, const torch::Tensor& history) {
  return FromEmbeddings(field_table_->forward(FieldRows(fields)),
                        PoolHistory(history_table_->weight, HistoryRows(history), history));
}

ArticleTowerImpl::ArticleTowerImpl(const std::vector<int64_t>& field_sizes, const config::ModelConfig& cfg) {
  const int64_t d = cfg.feature_dim();
  field_table_ = register_module("field_table", Table(Sum(field_sizes), d));
  field_offsets_ = register_buffer("field_offsets", Offsets(field_sizes));
  mlp_ = register_module(
      "mlp", MakeMlp(d * static_cast<int64_t>(field_sizes.size()), Hidden(cfg), cfg.embedding_dim(), cfg.dropout()));
}

torch::Tensor ArticleTowerImpl::FieldRows(const torch::Tensor& fields) const {
  return fields + field_offsets_.unsqueeze(0);
}

torch::Tensor ArticleTowerImpl::FromEmbeddings(const torch::Tensor& field_embeddings) {
  torch::Tensor x = mlp_->forward(field_embeddings.reshape({field_embeddings.size(0), -1}));
  return torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().dim(1));
}

torch::Tensor ArticleTowerImpl::forward(const torch::Tensor& fields) {
  return FromEmbeddings(field_table_->forward(FieldRows(fields)));
}

}  // namespace hmrec
