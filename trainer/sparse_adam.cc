#include "trainer/sparse_adam.h"

#include <cmath>
#include <string>

#include <torch/csrc/autograd/generated/variable_factories.h>
#include <torch/utils.h>

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
  const double bc1 = 1.0 - std::pow(beta1_, static_cast<double>(s.step));
  const double bc2 = 1.0 - std::pow(beta2_, static_cast<double>(s.step));
  torch::Tensor m = s.m.index_select(0, rows).mul_(beta1_).add_(grad, 1.0 - beta1_);
  torch::Tensor v = s.v.index_select(0, rows).mul_(beta2_).addcmul_(grad, grad, 1.0 - beta2_);
  s.m.index_copy_(0, rows, m);
  s.v.index_copy_(0, rows, v);
  s.table.index_add_(0, rows, (m / bc1).div_((v / bc2).sqrt_().add_(eps_)).mul_(-lr_));
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
