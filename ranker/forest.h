#pragma once

// The native forest evaluator: the ranker's boosted trees, read from
// XGBoost's own JSON model, laid out for the CPU and evaluated without
// XGBoost. XGBoost stays the trainer and the reference (ranker/ranker.h
// serves through it when asked, or when a model is one this evaluator does
// not support); tests/unit/forest_test.cc requires the same margins as
// XGBoost for every model the trainer can write.
//
// Layout: every tree is padded to a perfect binary tree of its own depth
// (a leaf above the bottom is copied into every leaf slot below it), so a
// row walks exactly `depth` levels with no leaf test: node i's children are
// 2i+1 and 2i+2, and each level is one 8-byte load of (feature,
// threshold), one load of the row's value and one compare, no branch: a
// block's rows are copied once with missing values as +inf and once as
// -inf, and a node whose missing values go left reads the second copy.
// Eight rows walk one tree level by level together (they are independent,
// so their loads overlap); a block of 64 rows and the tree's nodes stay in
// L1 while the whole forest goes by; blocks are shared between threads.
// (AVX-512 gathers of 2 x 16 rows were measured slower than this on an AMD
// EPYC: 11.1 against 9.3-9.9 ns per tree per row; docs/PERFORMANCE.md.)
//
// Semantics are XGBoost's: x < threshold goes left, NaN goes to the node's
// default side, leaf values and the base margin summed in float in tree
// order (so margins agree bit for bit on the models tested).
//
// Thread safety: immutable after FromXGBoostJson; Margins() may run on many
// threads at once.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hmrec {

class Forest {
 public:
  // Deeper trees are not laid out (a perfect tree of depth 16 holds 65,535
  // nodes); such a model is served by XGBoost.
  static constexpr int kMaxDepth = 12;

  // Reads a model saved by XGBoost as JSON. UnimplementedError names what is
  // not supported (another booster than gbtree, categorical splits, several
  // outputs or parallel trees, an objective whose base margin or link is not
  // known here, trees deeper than kMaxDepth); InvalidArgumentError names what
  // is malformed.
  static absl::StatusOr<Forest> FromXGBoostJson(const std::string& json);

  // margins[r] = base margin + the leaves of trees [begin, end) for row r
  // (end <= 0: the last tree) of `n` rows of num_features() floats,
  // row-major, NaN = missing; on `threads` threads.
  absl::Status Margins(const float* rows, int64_t n, int num_features, int begin, int end, float* out,
                       int threads) const;
  // The objective's link applied in place (the logistic for
  // binary:logistic and reg:logistic; identity for the ranking objectives).
  void Transform(float* margins, int64_t n) const;

  // `n` rows that exercise the model's splits: each feature drawn from the
  // thresholds it is split at (exactly, just below, or near), or NaN; for
  // checking this evaluator against XGBoost on a loaded model.
  std::vector<float> ProbeRows(int n, uint64_t seed) const;

  int num_trees() const { return static_cast<int>(depth_.size()); }
  int num_features() const { return num_features_; }
  int max_depth() const { return max_depth_; }
  const std::string& objective() const { return objective_; }
  float base_margin() const { return base_margin_; }

 private:
  Forest() = default;
  template <int kDepth>
  void EvalTree(int tree, const float* rows, int rows_in_block, int num_features, float* acc) const;
  void EvalBlock(const float* rows, int rows_in_block, int num_features, int begin, int end, float* out) const;

  // Node j of tree t is node_[node_offset_[t] + j], one 8-byte load; its
  // leaves from leaf_offset_[t].
  struct Node {
    uint32_t feature;  // + num_features_ when a missing value goes left
    float threshold;
  };
  std::vector<Node> node_;
  std::vector<float> leaf_;
  std::vector<uint32_t> node_offset_, leaf_offset_;
  std::vector<uint8_t> depth_;
  int num_features_ = 0;
  int max_depth_ = 0;
  float base_margin_ = 0;
  bool logistic_ = false;
  std::string objective_;
};

}  // namespace hmrec
