#include "ranker/forest.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <tuple>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "proto/xgboost_model.pb.h"

namespace hmrec {
namespace {

// Rows a block walks through the forest together: 64 rows of the ranker's
// ~60 features, in the two copies a block keeps (below), are 32 KB.
constexpr int kBlockRows = 64;
// Rows that walk one tree level by level together.
constexpr int kLanes = 8;

// XGBoost writes integer parameters as strings; "" means its default.
absl::StatusOr<int64_t> IntParam(const std::string& text, int64_t if_empty, const char* name) {
  if (text.empty()) return if_empty;
  int64_t v = 0;
  if (!absl::SimpleAtoi(text, &v)) {
    return absl::InvalidArgumentError(absl::StrCat("xgboost model: ", name, " is '", text, "', not an integer"));
  }
  return v;
}

enum class Link { kIdentity, kLogistic, kLogitRaw };

// The objectives whose base margin and output link this evaluator knows
// (XGBoost's ProbToMargin and PredTransform for them).
absl::StatusOr<Link> LinkOf(const std::string& objective) {
  if (objective == "binary:logistic" || objective == "reg:logistic") return Link::kLogistic;
  if (objective == "binary:logitraw") return Link::kLogitRaw;
  if (objective == "rank:pairwise" || objective == "rank:ndcg" || objective == "rank:map" ||
      objective == "reg:squarederror") {
    return Link::kIdentity;
  }
  return absl::UnimplementedError(absl::StrCat("objective '", objective,
                                               "' (its base margin and link are not known "
                                               "to the native evaluator)"));
}

// The tree's nodes as read, checked: every index in range, every node
// reached once from the root; its depth (a lone leaf: 0).
absl::StatusOr<int> CheckTree(const xgb::Tree& t, int index, int num_features) {
  const int n = t.left_children_size();
  const auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("xgboost model: tree ", index, ": ", what));
  };
  if (n == 0) return bad("no nodes");
  if (t.right_children_size() != n || t.split_indices_size() != n || t.split_conditions_size() != n ||
      t.default_left_size() != n || (t.split_type_size() != 0 && t.split_type_size() != n)) {
    return bad("its node arrays differ in length");
  }
  std::vector<int> depth(n, -1);
  std::vector<int> stack = {0};
  depth[0] = 0;
  int deepest = 0;
  while (!stack.empty()) {
    const int i = stack.back();
    stack.pop_back();
    deepest = std::max(deepest, depth[i]);
    if (depth[i] > Forest::kMaxDepth) {
      return absl::UnimplementedError(absl::StrCat("tree ", index, " is deeper than ", Forest::kMaxDepth,
                                                   " levels (the native evaluator lays trees out in full)"));
    }
    const int l = t.left_children(i), r = t.right_children(i);
    if (l == -1 && r == -1) continue;
    if (t.split_type_size() != 0 && t.split_type(i) != 0) {
      return absl::UnimplementedError(absl::StrCat("tree ", index, " has a categorical split at node ", i));
    }
    if (t.split_indices(i) < 0 || t.split_indices(i) >= num_features) {
      return bad(absl::StrCat("node ", i, " splits on feature ", t.split_indices(i), " of ", num_features));
    }
    for (int c : {l, r}) {
      if (c <= 0 || c >= n || depth[c] != -1) return bad(absl::StrCat("node ", i, " has a bad child ", c));
      depth[c] = depth[i] + 1;
      stack.push_back(c);
    }
  }
  return deepest;
}

}  // namespace

absl::StatusOr<Forest> Forest::FromXGBoostJson(const std::string& json) {
  xgb::Model model;
  google::protobuf::util::JsonParseOptions parse;
  parse.ignore_unknown_fields = true;
  const auto parsed = google::protobuf::util::JsonStringToMessage(json, &model, parse);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("xgboost model: not its JSON: ", parsed.message().as_string()));
  }
  const xgb::Learner& learner = model.learner();
  if (learner.gradient_booster().name() != "gbtree") {
    return absl::UnimplementedError(absl::StrCat("booster '", learner.gradient_booster().name(), "' (only gbtree)"));
  }
  const xgb::GBTreeModel& trees = learner.gradient_booster().model();
  const xgb::LearnerModelParam& lp = learner.learner_model_param();
  int64_t num_class = 0, num_target = 0, parallel = 0, num_trees = 0, num_features = 0;
  {
    auto c = IntParam(lp.num_class(), 0, "num_class");
    auto t = IntParam(lp.num_target(), 1, "num_target");
    auto p = IntParam(trees.gbtree_model_param().num_parallel_tree(), 1, "num_parallel_tree");
    auto n = IntParam(trees.gbtree_model_param().num_trees(), trees.trees_size(), "num_trees");
    auto f = IntParam(lp.num_feature(), 0, "num_feature");
    for (const auto* s : {&c, &t, &p, &n, &f}) {
      if (!s->ok()) return s->status();
    }
    num_class = *c, num_target = *t, parallel = *p, num_trees = *n, num_features = *f;
  }
  if (num_class > 1 || num_target > 1) {
    return absl::UnimplementedError(absl::StrCat("a model of ", std::max(num_class, num_target), " outputs"));
  }
  if (parallel != 1) return absl::UnimplementedError(absl::StrCat(parallel, " parallel trees a round"));
  if (num_trees != trees.trees_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("xgboost model: num_trees says ", num_trees, ", it holds ", trees.trees_size()));
  }
  if (num_features <= 0) return absl::InvalidArgumentError("xgboost model: no num_feature");
  for (int g : trees.tree_info()) {
    if (g != 0) return absl::UnimplementedError("trees of several output groups");
  }

  Forest f;
  f.objective_ = learner.objective().name();
  auto link = LinkOf(f.objective_);
  if (!link.ok()) return link.status();
  float base_score = 0;
  if (!absl::SimpleAtof(lp.base_score(), &base_score)) {
    return absl::InvalidArgumentError(absl::StrCat("xgboost model: base_score '", lp.base_score(), "'"));
  }
  if (*link == Link::kIdentity) {
    f.base_margin_ = base_score;
  } else {
    if (!(base_score > 0 && base_score < 1)) {
      return absl::InvalidArgumentError(absl::StrCat("xgboost model: base_score ", base_score, " is not in (0, 1)"));
    }
    f.base_margin_ = -std::log(1.0f / base_score - 1.0f);  // XGBoost's ProbToMargin, in float like it
  }
  f.logistic_ = *link == Link::kLogistic;
  f.num_features_ = static_cast<int>(num_features);

  for (int ti = 0; ti < trees.trees_size(); ++ti) {
    const xgb::Tree& t = trees.trees(ti);
    auto depth = CheckTree(t, ti, f.num_features_);
    if (!depth.ok()) return depth.status();
    const int d = *depth;
    const uint32_t internal = (1u << d) - 1;
    f.depth_.push_back(static_cast<uint8_t>(d));
    f.max_depth_ = std::max(f.max_depth_, d);
    f.node_offset_.push_back(static_cast<uint32_t>(f.node_.size()));
    f.leaf_offset_.push_back(static_cast<uint32_t>(f.leaf_.size()));
    const size_t nodes_at = f.node_.size(), leaves_at = f.leaf_.size();
    // Padding nodes split on feature 0 at 0: both sides hold the same leaf.
    f.node_.resize(nodes_at + internal, Node{0, 0.0f});
    f.leaf_.resize(leaves_at + internal + 1, 0.0f);
    // (source node, slot in the perfect tree, level)
    std::vector<std::tuple<int, uint32_t, int>> todo = {{0, 0, 0}};
    while (!todo.empty()) {
      const auto [src, slot, level] = todo.back();
      todo.pop_back();
      const bool leaf = t.left_children(src) == -1;
      if (level == d) {
        f.leaf_[leaves_at + (slot - internal)] = t.split_conditions(src);
        continue;
      }
      if (leaf) {
        todo.emplace_back(src, 2 * slot + 1, level + 1);
        todo.emplace_back(src, 2 * slot + 2, level + 1);
        continue;
      }
      // Read from the block's copy where a missing value sorts to the
      // node's default side (EvalBlock).
      const float threshold = t.split_conditions(src);
      if (!(threshold > -std::numeric_limits<float>::infinity())) {
        return absl::UnimplementedError(
            absl::StrCat("tree ", ti, " splits at ", threshold, " (the native evaluator needs thresholds above -inf)"));
      }
      f.node_[nodes_at + slot] = Node{
          static_cast<uint32_t>(t.split_indices(src)) + (t.default_left(src) != 0 ? f.num_features_ : 0), threshold};
      todo.emplace_back(t.left_children(src), 2 * slot + 1, level + 1);
      todo.emplace_back(t.right_children(src), 2 * slot + 2, level + 1);
    }
  }
  return f;
}

template <int kDepth>
void Forest::EvalTree(int tree, const float* rows, int m, int nf, float* acc) const {
  const Node* node = node_.data() + node_offset_[tree];
  const float* leaf = leaf_.data() + leaf_offset_[tree] - ((1u << kDepth) - 1);
  // One level for one row of the block's two copies (`nf` = 2 x features):
  // x < t goes left, a missing value was replaced by the infinity that
  // sends it to the node's default side.
  const auto step = [&](uint32_t i, const float* row) {
    const Node nd = node[i];
    return 2 * i + 2 - static_cast<uint32_t>(row[nd.feature] < nd.threshold);
  };
  int r = 0;
  for (; r + kLanes <= m; r += kLanes) {
    uint32_t idx[kLanes] = {};
    for (int level = 0; level < kDepth; ++level) {
      for (int k = 0; k < kLanes; ++k) idx[k] = step(idx[k], rows + static_cast<size_t>(r + k) * nf);
    }
    for (int k = 0; k < kLanes; ++k) acc[r + k] += leaf[idx[k]];
  }
  for (; r < m; ++r) {
    uint32_t i = 0;
    for (int level = 0; level < kDepth; ++level) i = step(i, rows + static_cast<size_t>(r) * nf);
    acc[r] += leaf[i];
  }
}

void Forest::EvalBlock(const float* rows, int m, int nf, int begin, int end, float* out) const {
  // Each row twice: missing values as +inf (read by nodes whose default is
  // right: +inf < t is false for every finite threshold) and as -inf (read
  // by default-left nodes, whose feature index is offset by nf: -inf < t is
  // true for every threshold above -inf, which loading checks). One compare
  // a level then decides every case, for one copy of the block's rows.
  thread_local std::vector<float> both;
  both.resize(static_cast<size_t>(m) * 2 * nf);
  constexpr float kInf = std::numeric_limits<float>::infinity();
  for (int r = 0; r < m; ++r) {
    const float* in = rows + static_cast<size_t>(r) * nf;
    float* right = both.data() + static_cast<size_t>(r) * 2 * nf;
    float* left = right + nf;
    for (int j = 0; j < nf; ++j) {
      const float v = in[j];
      const bool missing = std::isnan(v);
      right[j] = missing ? kInf : v;
      left[j] = missing ? -kInf : v;
    }
  }
  rows = both.data();
  nf *= 2;
  float acc[kBlockRows];
  std::fill(acc, acc + m, base_margin_);
  for (int t = begin; t < end; ++t) {
    switch (depth_[t]) {
#define HMREC_DEPTH(D)                \
  case D:                             \
    EvalTree<D>(t, rows, m, nf, acc); \
    break;
      HMREC_DEPTH(0)
      HMREC_DEPTH(1)
      HMREC_DEPTH(2)
      HMREC_DEPTH(3)
      HMREC_DEPTH(4)
      HMREC_DEPTH(5)
      HMREC_DEPTH(6)
      HMREC_DEPTH(7)
      HMREC_DEPTH(8)
      HMREC_DEPTH(9)
      HMREC_DEPTH(10)
      HMREC_DEPTH(11)
      HMREC_DEPTH(12)
#undef HMREC_DEPTH
    }
  }
  std::copy(acc, acc + m, out);
}

absl::Status Forest::Margins(const float* rows, int64_t n, int nf, int begin, int end, float* out, int threads) const {
  if (nf != num_features_) {
    return absl::InvalidArgumentError(absl::StrCat("ranker expects ", num_features_, " features per row, got ", nf));
  }
  if (n <= 0) return absl::OkStatus();
  begin = std::max(0, begin);
  if (end <= 0 || end > num_trees()) end = num_trees();
  if (begin > end) begin = end;
  const int64_t blocks = (n + kBlockRows - 1) / kBlockRows;
  const int nt = static_cast<int>(std::min<int64_t>(std::max(1, threads), blocks));
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t r0 = b * kBlockRows;
    const int m = static_cast<int>(std::min<int64_t>(kBlockRows, n - r0));
    EvalBlock(rows + r0 * nf, m, nf, begin, end, out + r0);
  }
  return absl::OkStatus();
}

std::vector<float> Forest::ProbeRows(int n, uint64_t seed) const {
  // Each feature's thresholds, so that probe rows land on both sides of
  // splits and exactly on them (x == t goes right).
  std::vector<std::vector<float>> cuts(num_features_);
  for (const Node& nd : node_) cuts[nd.feature % num_features_].push_back(nd.threshold);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<float> rows(static_cast<size_t>(n) * num_features_);
  for (int r = 0; r < n; ++r) {
    for (int j = 0; j < num_features_; ++j) {
      float& v = rows[static_cast<size_t>(r) * num_features_ + j];
      const float u = unit(rng);
      if (u < 0.1f || cuts[j].empty()) {
        v = cuts[j].empty() ? unit(rng) : std::numeric_limits<float>::quiet_NaN();
        continue;
      }
      v = cuts[j][rng() % cuts[j].size()];
      if (u < 0.4f)
        v = std::nextafter(v, -std::numeric_limits<float>::infinity());
      else if (u < 0.7f)
        v = v + (1.0f + std::fabs(v)) * (unit(rng) - 0.5f);
    }
  }
  return rows;
}

void Forest::Transform(float* margins, int64_t n) const {
  if (!logistic_) return;
  for (int64_t i = 0; i < n; ++i) margins[i] = 1.0f / (1.0f + std::exp(-margins[i]));
}

}  // namespace hmrec
