#pragma once

// Adam for embedding tables, updating only the rows a batch used ("lazy"
// Adam, like PyTorch's SparseAdam). The trainer gathers the rows a batch
// reads into a small leaf tensor, so the gradient arrives as [rows, dim]
// for just those rows: no full-table gradient, no sparse-tensor coalescing.
// A dense Adam step would read and write every row of every table (13 M
// floats at full scale) on every batch. Not thread-safe.

#include <vector>

#include <torch/serialize/archive.h>
#include <torch/types.h>

namespace hmrec {

class SparseAdam {
 public:
  // One slot per table, in the order of `tables`.
  SparseAdam(std::vector<torch::Tensor> tables, double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8);

  // Applies `grad` ([rows.size(0), dim]) to rows `rows` (int64, distinct) of
  // table `slot`.
  void Step(size_t slot, const torch::Tensor& rows, const torch::Tensor& grad);

  void Save(torch::serialize::OutputArchive& archive) const;
  void Load(torch::serialize::InputArchive& archive);

 private:
  struct Slot {
    torch::Tensor table;
    torch::Tensor m;
    torch::Tensor v;
    int64_t step = 0;
  };
  std::vector<Slot> slots_;
  double lr_, beta1_, beta2_, eps_;
};

}  // namespace hmrec
