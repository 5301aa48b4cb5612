#include "trainer/sparse_adam.h"

#include <cmath>
#include <string>

#include <torch/csrc/autograd/generated/variable_factories.h>
#include <torch/utils.h>

#include <ATen/Parallel.h>

namespace hmrec {

SparseAdam::SparseAdam(std::vector<torch::Tensor> tables, double lr, double beta1, double beta2, double eps)
    : lr_(lr), beta1_(beta1), beta2_(beta2), eps_(eps) {
  for (torch::Tensor& p : tables) {
    slots_.push_back({p, torch::zeros_like(p, torch::MemoryFormat::Contiguous),
                      torch::zeros_like(p, torch::MemoryFormat::Contiguous), 0});
  }
}

void SparseAdam::Step(size_t slot, const torch::Tensor& rows, const torch::Tensor& grad) {
  torch::NoGradGuard no_grad;
  Slot& s = slots_[slot];
  ++s.step;
  const float bc1 = static_cast<float>(1.0 - std::pow(beta1_, static_cast<double>(s.step)));
  const float bc2 = static_cast<float>(1.0 - std::pow(beta2_, static_cast<double>(s.step)));
  const float b1 = static_cast<float>(beta1_), b2 = static_cast<float>(beta2_);
  const float lr = static_cast<float>(lr_), eps = static_cast<float>(eps_);
  if (!s.table.is_cpu()) {
    torch::Tensor m = s.m.index_select(0, rows).mul_(b1).add_(grad, 1.0f - b1);
    torch::Tensor v = s.v.index_select(0, rows).mul_(b2).addcmul_(grad, grad, 1.0f - b2);
    s.m.index_copy_(0, rows, m);
    s.v.index_copy_(0, rows, v);
    s.table.index_add_(0, rows, (m / bc1).div_((v / bc2).sqrt_().add_(eps)).mul_(-lr));
    return;
  }
  // One pass over the touched rows; rows are distinct, so threads never
  // share a row.
  const torch::Tensor r = rows.contiguous();
  const torch::Tensor g = grad.contiguous();
  const int64_t n = r.numel(), d = s.table.size(1);
  const int64_t* rp = r.data_ptr<int64_t>();
  const float* gp = g.data_ptr<float>();
  float* tp = s.table.data_ptr<float>();
  float* mp = s.m.data_ptr<float>();
  float* vp = s.v.data_ptr<float>();
  at::parallel_for(0, n, 256, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t off = rp[i] * d;
      const float* gi = gp + i * d;
      for (int64_t k = 0; k < d; ++k) {
        float& m = mp[off + k];
        float& v = vp[off + k];
        m = b1 * m + (1.0f - b1) * gi[k];
        v = b2 * v + (1.0f - b2) * gi[k] * gi[k];
        tp[off + k] -= lr * (m / bc1) / (std::sqrt(v / bc2) + eps);
      }
    }
  });
}

void SparseAdam::Save(torch::serialize::OutputArchive& archive) const {
  for (size_t i = 0; i < slots_.size(); ++i) {
    const std::string k = std::to_string(i);
    archive.write("m" + k, slots_[i].m, /*is_buffer=*/true);
    archive.write("v" + k, slots_[i].v, /*is_buffer=*/true);
    archive.write("step" + k, torch::tensor(slots_[i].step), /*is_buffer=*/true);
  }
}

void SparseAdam::Load(torch::serialize::InputArchive& archive) {
  for (size_t i = 0; i < slots_.size(); ++i) {
    const std::string k = std::to_string(i);
    torch::Tensor step;
    archive.read("m" + k, slots_[i].m, /*is_buffer=*/true);
    archive.read("v" + k, slots_[i].v, /*is_buffer=*/true);
    archive.read("step" + k, step, /*is_buffer=*/true);
    slots_[i].step = step.item<int64_t>();
  }
}

}  // namespace hmrec
