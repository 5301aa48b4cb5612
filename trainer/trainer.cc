#include "trainer/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>

#include <c10/core/InferenceMode.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/adam.h>
#include <torch/serialize.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bundle/bundle.h"
#include "common/metrics.h"
#include "common/progress.h"
#include "common/rng.h"
#include "common/status_macros.h"
#include "common/text_proto.h"
#include "data/dates.h"
#include "distributed/collective.h"
#include "evaluate/score.h"
#include "glog/logging.h"
#include "google/protobuf/text_format.h"
#include "model/tower_runner.h"
#include "model/towers.h"
#include "trainer/examples.h"
#include "trainer/sparse_adam.h"

namespace hmrec {
namespace fs = std::filesystem;

namespace {

constexpr int kK = 12;
constexpr char kMetricsFile[] = "training_metrics.jsonl";
constexpr char kLossFile[] = "training_loss.tsv";
constexpr char kCurveFile[] = "training_curve.png";

torch::Tensor IntTensor(const std::vector<int32_t>& v, std::vector<int64_t> shape, const torch::Device& d) {
  return torch::from_blob(const_cast<int32_t*>(v.data()), shape, torch::kInt32).to(d, torch::kInt64);
}

torch::Tensor FloatTensor(const std::vector<float>& v, const torch::Device& d) {
  return torch::from_blob(const_cast<float*>(v.data()), {static_cast<int64_t>(v.size())}, torch::kFloat32).to(d);
}

std::string MetricsJson(const EpochMetrics& m) {
  std::string s = absl::StrFormat("{\"epoch\": %d, \"loss\": %.6f, \"examples_per_second\": %.1f, \"seconds\": %.2f",
                                  m.epoch, m.loss, m.examples_per_second, m.seconds);
  if (m.evaluated)
    absl::StrAppendFormat(&s, ", \"map_at_12\": %.6f, \"recall_at_12\": %.6f", m.map_at_12, m.recall_at_12);
  return s + "}";
}

absl::StatusOr<EpochMetrics> ParseMetricsJson(const std::string& line) {
  EpochMetrics m;
  // 4 fields for an epoch without evaluation, 6 with it (MetricsJson's two forms).
  const int n = std::sscanf(line.c_str(),
                            "{\"epoch\": %d, \"loss\": %lf, \"examples_per_second\": %lf, \"seconds\": %lf, "
                            "\"map_at_12\": %lf, \"recall_at_12\": %lf}",
                            &m.epoch, &m.loss, &m.examples_per_second, &m.seconds, &m.map_at_12, &m.recall_at_12);
  if (n != 4 && n != 6) return absl::DataLossError(absl::StrCat("bad metrics line: ", line));
  m.evaluated = n == 6;
  return m;
}

}  // namespace

absl::Status CheckGlobalBatch(int64_t batch_size, int world_size) {
  if (batch_size % world_size == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("batch_size ", batch_size, " (the global batch) is not a multiple of WORLD_SIZE ", world_size));
}

absl::StatusOr<Holdout> ReadHoldout(const std::string& truth_path, const Dataset& ds, int64_t* unknown) {
  ASSIGN_OR_RETURN(evaluate::Truth truth, evaluate::ReadTruth(truth_path));
  // Customer index order: the same held-out set in the same order every run.
  std::vector<std::pair<uint32_t, absl::flat_hash_set<int32_t>*>> known;
  *unknown = 0;
  for (auto& [id, articles] : truth) {
    std::optional<uint32_t> c = ds.FindCustomer(id);
    if (c) {
      known.emplace_back(*c, &articles);
    } else {
      ++*unknown;
    }
  }
  std::sort(known.begin(), known.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  Holdout h;
  for (auto& [c, articles] : known) {
    h.customers.push_back(c);
    h.articles.push_back(std::move(*articles));
  }
  return h;
}

// The rows of one embedding table a batch reads: the distinct rows, a leaf
// copy of them that collects the gradient, and the batch's row indices
// into that copy.
struct Gathered {
  torch::Tensor rows;   // [U] int64
  torch::Tensor slice;  // [U, d], requires grad
  torch::Tensor local;  // shaped like the batch's rows, indices into slice
  torch::Tensor Embeddings() const { return torch::embedding(slice, local); }
};

Gathered Gather(const torch::Tensor& table, const torch::Tensor& rows) {
  Gathered g;
  torch::Tensor flat = rows.reshape({-1});
  torch::Tensor local;
  if (flat.is_cpu()) {
    // Linear-time de-duplication; torch::unique would sort.
    thread_local std::vector<int32_t> position;
    if (position.size() < static_cast<size_t>(table.size(0))) position.assign(table.size(0), -1);
    torch::Tensor contiguous = flat.contiguous();
    const int64_t* r = contiguous.data_ptr<int64_t>();
    const int64_t n = contiguous.numel();
    std::vector<int64_t> unique;
    local = torch::empty({n}, torch::kInt64);
    int64_t* l = local.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      int32_t& p = position[r[i]];
      if (p < 0) {
        p = static_cast<int32_t>(unique.size());
        unique.push_back(r[i]);
      }
      l[i] = p;
    }
    for (int64_t u : unique) position[u] = -1;
    g.rows = torch::tensor(unique, torch::kInt64);
  } else {
    auto [u, inverse, counts] = at::_unique2(flat, /*sorted=*/false, /*return_inverse=*/true);
    g.rows = u;
    local = inverse;
  }
  g.slice = table.detach().index_select(0, g.rows).requires_grad_(true);
  g.local = local.view(rows.sizes());
  return g;
}

// One batch through both towers: the gathered table rows (which collect
// the tables' gradients), the embeddings and the example weights.
struct Forward {
  Gathered fields, history, article_fields;
  torch::Tensor u, v, weight;
};

struct Trainer::Impl {
  config::TrainerConfig cfg;
  const Dataset* ds = nullptr;
  const Holdout* holdout = nullptr;
  TrainerOptions options;
  FeatureSpace space;
  TrainingData data;
  torch::Device device{torch::kCPU};
  CustomerTower customer{nullptr};
  ArticleTower article{nullptr};
  // Dense layers: Adam; embedding tables: SparseAdam (rows the batch used).
  std::unique_ptr<torch::optim::Adam> customer_opt;
  std::unique_ptr<torch::optim::Adam> article_opt;
  std::unique_ptr<SparseAdam> customer_tables;
  std::unique_ptr<SparseAdam> article_tables;
  std::vector<EpochMetrics> history;
  int next_epoch = 0;
  // Data-parallel: the other ranks (null = one process).
  Collective* collective = nullptr;
  int rank() const { return collective ? collective->rank() : 0; }
  int world() const { return collective ? collective->size() : 1; }

  std::string CheckpointDir(int epoch) const {
    return (fs::path(options.work_dir) / "checkpoints" / absl::StrFormat("epoch-%03d", epoch)).string();
  }
  absl::Status SaveCheckpoint(int epoch);
  absl::Status LoadLastCheckpoint();
  absl::StatusOr<EpochMetrics> RunEpoch(int epoch);
  Forward Embed(const Batch& batch);
  // One step of this rank's share of a global batch; returns the global loss.
  absl::StatusOr<double> DistributedStep(const Batch& batch, double global_weight);
  // Every rank's rows and gradients of the embedding tables summed by row,
  // identically on every rank; then the lazy Adam steps.
  absl::Status StepTables(const std::vector<Gathered*>& tables);
  std::vector<torch::Tensor> AllParameters() const;
  absl::Status SyncStart();
  absl::Status WriteMetrics() const;
  void Plot() const;
  // Article embeddings of all articles as of `day`, [A, D] on the device.
  torch::Tensor ArticleMatrix(int32_t day);
  torch::Tensor CustomerMatrix(const std::vector<uint32_t>& customers);
};

Trainer::Trainer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Trainer::~Trainer() = default;

int64_t Trainer::num_examples() const { return static_cast<int64_t>(impl_->data.examples().size()); }

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const config::TrainerConfig& cfg, const Dataset& ds,
                                                         const Holdout* holdout, TrainerOptions options) {
  if (cfg.batch_size() < 2) return absl::InvalidArgumentError("batch_size must be >= 2");
  if (cfg.temperature() <= 0) return absl::InvalidArgumentError("temperature must be > 0");
  if (cfg.model().embedding_dim() <= 0 || cfg.model().feature_dim() <= 0) {
    return absl::InvalidArgumentError("model.embedding_dim and model.feature_dim must be > 0");
  }
  if (cfg.model().history_length() <= 0 || cfg.model().postal_buckets() <= 0) {
    return absl::InvalidArgumentError("model.history_length and model.postal_buckets must be > 0");
  }
  if (!(cfg.model().article_id_dropout() >= 0 && cfg.model().article_id_dropout() < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.article_id_dropout = ", cfg.model().article_id_dropout(), ": must be in [0, 1)"));
  }
  if (ds.transactions.size() == 0) return absl::InvalidArgumentError("no transactions to train on");
  RETURN_IF_ERROR(CheckDevice(cfg.device().empty() ? "cpu" : cfg.device()));
  auto impl = std::make_unique<Impl>();
  impl->cfg = cfg;
  impl->ds = &ds;
  impl->holdout = holdout;
  impl->options = std::move(options);
  impl->device = torch::Device(cfg.device().empty() ? "cpu" : cfg.device());
  impl->space = FeatureSpace::Build(ds, cfg.model());
  impl->data = TrainingData::Build(ds, impl->space, cfg);
  if (impl->data.examples().size() < 2) {
    return absl::InvalidArgumentError("fewer than 2 training examples in the window");
  }
  torch::manual_seed(cfg.seed());
  try {
    impl->customer =
        CustomerTower(impl->space.CustomerFieldSizes(), static_cast<int64_t>(ds.articles.size()) + 1,
                      impl->space.HistoryAttributeSizes(), impl->space.HistoryAttributeTable(ds.articles), cfg.model());
    impl->article = ArticleTower(impl->space.ArticleFieldSizes(), cfg.model());
    impl->customer->to(impl->device);
    impl->article->to(impl->device);
    // Embedding tables go to SparseAdam, everything else to Adam.
    auto dense = [](torch::nn::Module& m) {
      std::vector<torch::Tensor> out;
      for (const auto& p : m.named_parameters()) {
        const std::string& k = p.key();
        if (k.size() < 12 || k.compare(k.size() - 12, 12, "table.weight") != 0) out.push_back(p.value());
      }
      return out;
    };
    std::vector<torch::Tensor> cd = dense(*impl->customer), ad = dense(*impl->article);
    std::vector<torch::Tensor> ct = {impl->customer->field_table()->weight, impl->customer->history_table()->weight};
    std::vector<torch::Tensor> at = {impl->article->field_table()->weight};
    impl->customer_opt = std::make_unique<torch::optim::Adam>(
        cd, torch::optim::AdamOptions(cfg.customer_learning_rate()).weight_decay(cfg.weight_decay()));
    impl->article_opt = std::make_unique<torch::optim::Adam>(
        ad, torch::optim::AdamOptions(cfg.article_learning_rate()).weight_decay(cfg.weight_decay()));
    impl->customer_tables = std::make_unique<SparseAdam>(ct, cfg.customer_learning_rate());
    impl->article_tables = std::make_unique<SparseAdam>(at, cfg.article_learning_rate());
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("cannot build the towers: ", e.what_without_backtrace()));
  }
  std::error_code ec;
  fs::create_directories(impl->options.work_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", impl->options.work_dir, ": ", ec.message()));
  if (impl->options.resume) RETURN_IF_ERROR(impl->LoadLastCheckpoint());
  impl->collective = impl->options.collective;
  if (impl->collective != nullptr) {
    RETURN_IF_ERROR(CheckGlobalBatch(cfg.batch_size(), impl->world()));
    RETURN_IF_ERROR(impl->SyncStart());
  }
  return std::unique_ptr<Trainer>(new Trainer(std::move(impl)));
}

std::vector<torch::Tensor> Trainer::Impl::AllParameters() const {
  std::vector<torch::Tensor> out;
  for (const torch::nn::Module* m :
       {static_cast<const torch::nn::Module*>(customer.get()), static_cast<const torch::nn::Module*>(article.get())}) {
    for (const torch::Tensor& p : m->parameters()) out.push_back(p);
    for (const torch::Tensor& b : m->buffers()) out.push_back(b);
  }
  return out;
}

uint64_t Trainer::ParameterDigest() const { return TensorDigest(impl_->AllParameters()); }

// Every rank starts where rank 0 starts: the same epoch (a rank that found
// no checkpoint while rank 0 resumes is refused) and rank 0's parameters.
absl::Status Trainer::Impl::SyncStart() {
  RETURN_IF_ERROR(
      collective->CheckSame(static_cast<uint64_t>(next_epoch),
                            absl::StrCat("the epoch to start from (this rank: ", next_epoch + 1,
                                         "; with several ranks --work_dir must be one directory all ranks read)")));
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> params = AllParameters();
  RETURN_IF_ERROR(collective->Broadcast(params, "broadcasting rank 0's parameters"));
  return collective->CheckSame(TensorDigest(params), "the parameters after the broadcast");
}

absl::Status Trainer::Impl::StepTables(const std::vector<Gathered*>& tables) {
  const size_t nt = tables.size();
  const int w = world();
  // 1. How many rows each rank has of each table.
  torch::Tensor sizes = torch::empty({static_cast<int64_t>(nt)}, torch::kInt64);
  for (size_t t = 0; t < nt; ++t) sizes[t] = tables[t]->rows.numel();
  ASSIGN_OR_RETURN(std::vector<torch::Tensor> all_sizes, collective->AllGather(sizes, "gathering table row counts"));
  std::vector<int64_t> max_rows(nt, 0), dims(nt), row_off(nt + 1, 0), grad_off(nt + 1, 0);
  for (size_t t = 0; t < nt; ++t) {
    for (int r = 0; r < w; ++r) max_rows[t] = std::max(max_rows[t], all_sizes[r][t].item<int64_t>());
    dims[t] = tables[t]->slice.size(1);
    row_off[t + 1] = row_off[t] + max_rows[t];
    grad_off[t + 1] = grad_off[t] + max_rows[t] * dims[t];
  }
  // 2. Every rank's rows and gradients, padded to the largest rank's.
  torch::Tensor rows = torch::full({row_off[nt]}, -1, torch::kInt64);
  torch::Tensor grads = torch::zeros({grad_off[nt]}, torch::kFloat32);
  for (size_t t = 0; t < nt; ++t) {
    const int64_t n = tables[t]->rows.numel();
    rows.narrow(0, row_off[t], n).copy_(tables[t]->rows);
    grads.narrow(0, grad_off[t], n * dims[t]).copy_(tables[t]->slice.grad().reshape({-1}));
  }
  ASSIGN_OR_RETURN(std::vector<torch::Tensor> all_rows, collective->AllGather(rows, "gathering table rows"));
  ASSIGN_OR_RETURN(std::vector<torch::Tensor> all_grads, collective->AllGather(grads, "gathering table gradients"));
  // 3. Sum by row in rank order: the same floats in the same order on every
  // rank, so every rank applies bit-identical updates.
  for (size_t t = 0; t < nt; ++t) {
    const torch::Tensor& table = t < 2 ? (t == 0 ? customer->field_table()->weight : customer->history_table()->weight)
                                       : article->field_table()->weight;
    thread_local std::vector<int32_t> position;  // as in Gather: -1 everywhere between uses
    if (position.size() < static_cast<size_t>(table.size(0))) position.resize(table.size(0), -1);
    const int64_t d = dims[t];
    std::vector<int64_t> unique;
    std::vector<float> sum;
    for (int r = 0; r < w; ++r) {
      const int64_t n = all_sizes[r][t].item<int64_t>();
      const int64_t* rp = all_rows[r].data_ptr<int64_t>() + row_off[t];
      const float* gp = all_grads[r].data_ptr<float>() + grad_off[t];
      for (int64_t i = 0; i < n; ++i) {
        int32_t& p = position[rp[i]];
        if (p < 0) {
          p = static_cast<int32_t>(unique.size());
          unique.push_back(rp[i]);
          sum.resize(sum.size() + d, 0.0f);
        }
        float* dst = sum.data() + static_cast<int64_t>(p) * d;
        for (int64_t k = 0; k < d; ++k) dst[k] += gp[i * d + k];
      }
    }
    for (int64_t u : unique) position[u] = -1;
    const torch::Tensor urows = torch::tensor(unique, torch::kInt64);
    const torch::Tensor ugrad =
        torch::from_blob(sum.data(), {static_cast<int64_t>(unique.size()), d}, torch::kFloat32).clone();
    if (t < 2) {
      customer_tables->Step(t, urows.to(device), ugrad.to(device));
    } else {
      article_tables->Step(0, urows.to(device), ugrad.to(device));
    }
  }
  return absl::OkStatus();
}

Forward Trainer::Impl::Embed(const Batch& batch) {
  const int64_t bs = batch.size;
  torch::Tensor cf = IntTensor(batch.customer_fields, {bs, kCustomerFields}, device);
  torch::Tensor hist = IntTensor(batch.history, {bs, space.history_length()}, device);
  torch::Tensor af = IntTensor(batch.article_fields, {bs, kArticleFields}, device);
  Forward f;
  f.weight = FloatTensor(batch.weight, device);
  // Each table contributes only the rows this batch reads, gathered into
  // a small leaf tensor; SparseAdam then updates just those rows.
  f.fields = Gather(customer->field_table()->weight, customer->FieldRows(cf));
  f.history = Gather(customer->history_table()->weight, customer->HistoryRows(hist));
  f.article_fields = Gather(article->field_table()->weight, article->FieldRows(af));
  f.u = customer->FromEmbeddings(f.fields.Embeddings(),
                                 CustomerTowerImpl::PoolHistory(f.history.slice, f.history.local, hist));
  f.v = article->FromEmbeddings(f.article_fields.Embeddings());
  return f;
}

absl::StatusOr<double> Trainer::Impl::DistributedStep(const Batch& batch, double global_weight) {
  const int64_t bs = batch.size;
  const int64_t first = static_cast<int64_t>(rank()) * bs;  // this rank's rows in the global batch
  Forward f = Embed(batch);
  const torch::Tensor& u = f.u;
  const torch::Tensor& v = f.v;
  const torch::Tensor& w = f.weight;
  const int64_t d = v.size(1);
  // Every rank's article embeddings (with their log Q) are this rank's
  // in-batch candidates: the logits are this rank's rows of the global
  // batch's logits.
  torch::Tensor mine = torch::cat({v.detach(), FloatTensor(batch.log_q, device).unsqueeze(1)}, 1).to(torch::kCPU);
  ASSIGN_OR_RETURN(std::vector<torch::Tensor> vs, collective->AllGather(mine, "gathering article embeddings"));
  torch::Tensor my_rows =
      torch::from_blob(const_cast<int32_t*>(batch.article_rows.data()), {bs}, torch::kInt32).to(torch::kInt64);
  ASSIGN_OR_RETURN(std::vector<torch::Tensor> rs, collective->AllGather(my_rows, "gathering article rows"));
  torch::Tensor all = torch::cat(vs, 0).to(device);
  torch::Tensor all_rows = torch::cat(rs, 0).to(device);
  torch::Tensor vall = all.narrow(1, 0, d).clone().requires_grad_(true);
  torch::Tensor bias =
      cfg.logq_correction() ? all.select(1, d).neg().unsqueeze(0) : torch::zeros({1, all.size(0)}, u.options());
  torch::Tensor logits = torch::addmm(bias, u * (1.0 / cfg.temperature()), vall.t());
  torch::Tensor target = torch::arange(first, first + bs, torch::TensorOptions().dtype(torch::kInt64).device(device));
  // Other examples of the same article are not negatives.
  torch::Tensor same = my_rows.to(device).unsqueeze(1).eq(all_rows.unsqueeze(0));
  same.scatter_(1, target.unsqueeze(1), false);
  logits = logits.masked_fill(same, -1e9);
  torch::Tensor per_example = torch::nn::functional::cross_entropy(
      logits, target, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  torch::Tensor loss = (per_example * w).sum() / global_weight;
  customer_opt->zero_grad();
  article_opt->zero_grad();
  loss.backward();
  // The article embeddings' gradient from every rank's rows, summed; this
  // rank's part goes back through its article tower.
  torch::Tensor gv = vall.grad().to(torch::kCPU).contiguous();
  RETURN_IF_ERROR(collective->AllReduceSum(gv, "all-reduce of the article embeddings' gradient"));
  v.backward(gv.narrow(0, first, bs).to(device));
  // Dense gradients and the loss in one flattened buffer.
  std::vector<torch::Tensor> dense;
  for (auto* opt : {customer_opt.get(), article_opt.get()}) {
    for (auto& group : opt->param_groups()) {
      for (torch::Tensor& p : group.params()) {
        if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
        dense.push_back(p);
      }
    }
  }
  std::vector<torch::Tensor> flat_parts;
  for (const torch::Tensor& p : dense) flat_parts.push_back(p.grad().reshape({-1}).to(torch::kCPU));
  flat_parts.push_back(loss.detach().reshape({1}).to(torch::kCPU, torch::kFloat32));
  torch::Tensor flat = torch::cat(flat_parts);
  RETURN_IF_ERROR(collective->AllReduceSum(flat, "all-reduce of the dense gradients"));
  int64_t off = 0;
  for (torch::Tensor& p : dense) {
    p.mutable_grad().copy_(flat.narrow(0, off, p.numel()).view_as(p));
    off += p.numel();
  }
  customer_opt->step();
  article_opt->step();
  RETURN_IF_ERROR(StepTables({&f.fields, &f.history, &f.article_fields}));
  return static_cast<double>(flat[off].item<float>());
}

absl::StatusOr<EpochMetrics> Trainer::Impl::RunEpoch(int epoch) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto& examples = data.examples();
  std::vector<uint32_t> order(examples.size());
  std::iota(order.begin(), order.end(), 0);
  Rng rng(cfg.seed(), 1000 + static_cast<uint64_t>(epoch));
  for (size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[rng.Below(i + 1)]);
  torch::manual_seed(cfg.seed() + 7919 * static_cast<uint64_t>(epoch + 1) + static_cast<uint64_t>(rank()));

  // bs: the global batch; each rank fills its share `local` of it.
  const int64_t bs = cfg.batch_size();
  const int64_t local = bs / world();
  // Drop the last partial batch: in-batch negatives need a full batch.
  const size_t steps = examples.size() / static_cast<size_t>(bs);
  ProgressReporter progress(absl::StrCat("epoch ", epoch + 1, "/", cfg.epochs()), static_cast<int64_t>(steps * bs),
                            "examples");
  progress.set_enabled(options.show_progress && rank() == 0);
  std::ofstream loss_log;
  if (rank() == 0) loss_log.open((fs::path(options.work_dir) / kLossFile).string(), std::ios::app);
  if (collective != nullptr) collective->reset_seconds();
  customer->train();
  article->train();
  Batch batch;
  double loss_sum = 0, smoothed = 0;
  try {
    for (size_t s = 0; s < steps; ++s) {
      double l = 0;
      if (collective != nullptr) {
        const size_t begin = s * bs + static_cast<size_t>(rank() * local);
        data.FillBatch(order, begin, begin + local, &batch);
        double global_weight = 0;
        for (size_t i = s * bs; i < (s + 1) * bs; ++i) global_weight += examples[order[i]].weight;
        absl::StatusOr<double> dl = DistributedStep(batch, global_weight);
        if (!dl.ok()) {
          return absl::Status(dl.status().code(),
                              absl::StrCat("epoch ", epoch + 1, " step ", s + 1, ": ", dl.status().message()));
        }
        l = *dl;
      } else {
        data.FillBatch(order, s * bs, (s + 1) * bs, &batch);
        Forward f = Embed(batch);
        const torch::Tensor& u = f.u;
        const torch::Tensor& v = f.v;
        const torch::Tensor& w = f.weight;
        // logits = u v^T / temperature - log Q(article), in one GEMM.
        torch::Tensor bias = cfg.logq_correction() ? FloatTensor(batch.log_q, device).neg().unsqueeze(0)
                                                   : torch::zeros({1, bs}, u.options());
        torch::Tensor logits = torch::addmm(bias, u * (1.0 / cfg.temperature()), v.t());
        if (!batch.same_article.empty()) {
          logits.view({-1}).index_fill_(0, torch::tensor(batch.same_article, torch::kInt64).to(device), -1e9);
        }
        torch::Tensor target = torch::arange(bs, torch::TensorOptions().dtype(torch::kInt64).device(device));
        torch::Tensor per_example = torch::nn::functional::cross_entropy(
            logits, target, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
        torch::Tensor loss = (per_example * w).sum() / w.sum();
        customer_opt->zero_grad();
        article_opt->zero_grad();
        loss.backward();
        customer_opt->step();
        article_opt->step();
        customer_tables->Step(0, f.fields.rows, f.fields.slice.grad());
        customer_tables->Step(1, f.history.rows, f.history.slice.grad());
        article_tables->Step(0, f.article_fields.rows, f.article_fields.slice.grad());
        l = loss.item<double>();
      }
      if (!std::isfinite(l)) {
        return absl::InternalError(absl::StrCat("loss is not finite at epoch ", epoch + 1, " step ", s));
      }
      loss_sum += l;
      smoothed = s == 0 ? l : 0.98 * smoothed + 0.02 * l;
      if (s % 20 == 0) {
        loss_log << epoch + 1 << "\t" << s << "\t" << static_cast<double>(epoch) + static_cast<double>(s) / steps
                 << "\t" << l << "\n";
        progress.set_suffix(absl::StrFormat("step %zu/%zu, loss %.4f", s + 1, steps, smoothed));
        progress.Update(static_cast<int64_t>((s + 1) * bs));
      }
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("training step failed: ", e.what_without_backtrace()));
  }
  progress.set_suffix(absl::StrFormat("mean loss %.4f", steps ? loss_sum / steps : 0.0));
  progress.Finish(static_cast<int64_t>(steps * bs));
  EpochMetrics m;
  m.epoch = epoch + 1;
  m.loss = steps ? loss_sum / steps : 0;
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  m.examples_per_second = m.seconds > 0 ? steps * bs / m.seconds : 0;
  if (collective != nullptr && steps > 0) m.collective_ms_per_step = 1000.0 * collective->seconds() / steps;
  return m;
}

torch::Tensor Trainer::Impl::ArticleMatrix(int32_t day) {
  std::vector<int32_t> fields;
  data.EncodeArticles(day, &fields);
  const int64_t n = static_cast<int64_t>(ds->articles.size());
  std::vector<torch::Tensor> parts;
  for (int64_t b = 0; b < n; b += 8192) {
    const int64_t e = std::min(n, b + 8192);
    torch::Tensor f = torch::from_blob(fields.data() + b * kArticleFields, {e - b, kArticleFields}, torch::kInt32)
                          .to(device, torch::kInt64);
    parts.push_back(article->forward(f));
  }
  return torch::cat(parts, 0);
}

torch::Tensor Trainer::Impl::CustomerMatrix(const std::vector<uint32_t>& customers) {
  std::vector<int32_t> fields, hist;
  data.EncodeCustomers(customers, &fields, &hist);
  const int64_t n = static_cast<int64_t>(customers.size());
  const int64_t h = space.history_length();
  torch::Tensor f = torch::from_blob(fields.data(), {n, kCustomerFields}, torch::kInt32).to(device, torch::kInt64);
  torch::Tensor hi = torch::from_blob(hist.data(), {n, h}, torch::kInt32).to(device, torch::kInt64);
  return customer->forward(f, hi);
}

absl::StatusOr<EpochMetrics> Trainer::Evaluate(int64_t max_customers) {
  Impl& m = *impl_;
  if (m.holdout == nullptr || m.holdout->customers.empty()) {
    return absl::FailedPreconditionError("no holdout to evaluate on");
  }
  EpochMetrics out;
  try {
    c10::InferenceMode guard;
    m.customer->eval();
    m.article->eval();
    torch::Tensor articles = m.ArticleMatrix(m.data.as_of_day());
    const size_t n =
        max_customers > 0 ? std::min<size_t>(max_customers, m.holdout->customers.size()) : m.holdout->customers.size();
    double ap = 0, recall = 0;
    std::vector<int32_t> pred;
    for (size_t b = 0; b < n; b += 2048) {
      const size_t e = std::min(n, b + 2048);
      std::vector<uint32_t> chunk(m.holdout->customers.begin() + b, m.holdout->customers.begin() + e);
      torch::Tensor scores = m.CustomerMatrix(chunk).mm(articles.t());
      torch::Tensor top = std::get<1>(scores.topk(kK, 1)).to(torch::kCPU).contiguous();
      const int64_t* idx = top.data_ptr<int64_t>();
      for (size_t i = 0; i < chunk.size(); ++i) {
        pred.clear();
        for (int k = 0; k < kK; ++k) pred.push_back(m.ds->articles[idx[i * kK + k]].article_id);
        ap += AveragePrecisionAtK(pred, m.holdout->articles[b + i], kK);
        recall += RecallAtK(pred, m.holdout->articles[b + i], kK);
      }
    }
    out.evaluated = true;
    out.map_at_12 = ap / n;
    out.recall_at_12 = recall / n;
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("evaluation failed: ", e.what_without_backtrace()));
  }
  m.customer->train();
  m.article->train();
  return out;
}

absl::StatusOr<std::vector<EpochMetrics>> Trainer::Train() {
  Impl& m = *impl_;
  for (int epoch = m.next_epoch; epoch < m.cfg.epochs(); ++epoch) {
    ASSIGN_OR_RETURN(EpochMetrics em, m.RunEpoch(epoch));
    const bool last = epoch + 1 == m.cfg.epochs();
    if (m.collective != nullptr) {
      // The ranks applied the same summed gradients: their parameters must
      // be bit-identical; a difference is a bug, not noise.
      RETURN_IF_ERROR(
          m.collective->CheckSame(ParameterDigest(), absl::StrCat("the parameters after epoch ", epoch + 1)));
      if (m.rank() != 0) {
        // Rank 0 evaluates, checkpoints and writes the metrics.
        if (m.options.show_progress) {
          std::fprintf(stderr, "epoch %d: loss %.4f, %.0f examples/s, collectives %.2f ms/step\n", em.epoch, em.loss,
                       em.examples_per_second, em.collective_ms_per_step);
        }
        m.history.push_back(em);
        m.next_epoch = epoch + 1;
        continue;
      }
    }
    if (m.holdout != nullptr && !m.holdout->customers.empty() && (m.cfg.evaluate_every_epoch() || last)) {
      ASSIGN_OR_RETURN(EpochMetrics ev, Evaluate(last ? 0 : m.options.eval_max_customers));
      em.evaluated = true;
      em.map_at_12 = ev.map_at_12;
      em.recall_at_12 = ev.recall_at_12;
    }
    if (m.options.show_progress) {
      std::fprintf(
          stderr, "epoch %d: loss %.4f, %.0f examples/s, %.1f s%s%s\n", em.epoch, em.loss, em.examples_per_second,
          em.seconds,
          m.collective
              ? absl::StrFormat(", %d ranks, collectives %.2f ms/step", m.world(), em.collective_ms_per_step).c_str()
              : "",
          em.evaluated ? absl::StrFormat(", holdout MAP@12 %.5f recall@12 %.4f", em.map_at_12, em.recall_at_12).c_str()
                       : "");
    }
    m.history.push_back(em);
    RETURN_IF_ERROR(m.SaveCheckpoint(epoch));
    RETURN_IF_ERROR(m.WriteMetrics());
    m.Plot();
    m.next_epoch = epoch + 1;
  }
  return m.history;
}

absl::Status Trainer::Impl::WriteMetrics() const {
  const std::string path = (fs::path(options.work_dir) / kMetricsFile).string();
  std::ofstream out(path + ".tmp", std::ios::trunc);
  for (const EpochMetrics& e : history) out << MetricsJson(e) << "\n";
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  std::error_code ec;
  fs::rename(path + ".tmp", path, ec);
  return ec ? absl::InternalError(absl::StrCat("cannot write ", path)) : absl::OkStatus();
}

void Trainer::Impl::Plot() const {
  if (options.plot_script.empty() || !fs::exists(options.plot_script)) return;
  const fs::path dir(options.work_dir);
  const std::string cmd =
      absl::StrCat("'", options.python, "' '", options.plot_script, "' '", (dir / kMetricsFile).string(), "' '",
                   (dir / kLossFile).string(), "' '", (dir / kCurveFile).string(), "' > /dev/null 2>&1");
  if (std::system(cmd.c_str()) != 0) LOG(WARNING) << "training curve not plotted (python3 with matplotlib needed)";
}

absl::Status Trainer::Impl::SaveCheckpoint(int epoch) {
  const std::string dir = CheckpointDir(epoch);
  const std::string tmp = dir + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", ec.message()));
  try {
    torch::save(customer, (fs::path(tmp) / "customer_tower.pt").string());
    torch::save(article, (fs::path(tmp) / kArticleTowerFile).string());
    torch::save(*customer_opt, (fs::path(tmp) / "customer_optimizer.pt").string());
    torch::save(*article_opt, (fs::path(tmp) / "article_optimizer.pt").string());
    torch::serialize::OutputArchive tables;
    torch::serialize::OutputArchive ctab, atab;
    customer_tables->Save(ctab);
    article_tables->Save(atab);
    tables.write("customer", ctab);
    tables.write("article", atab);
    tables.save_to((fs::path(tmp) / "table_optimizers.pt").string());
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("cannot save checkpoint: ", e.what_without_backtrace()));
  }
  {
    std::ofstream state((fs::path(tmp) / "state.txt").string());
    config::TrainerConfig c = cfg;
    c.set_epochs(0);  // the epoch count may change on resume
    std::string text;
    google::protobuf::TextFormat::PrintToString(c, &text);
    state << "epoch " << epoch << "\n";
    for (const EpochMetrics& e : history) state << MetricsJson(e) << "\n";
    std::ofstream((fs::path(tmp) / "config.pbtxt").string()) << text;
    if (!state) return absl::InternalError(absl::StrCat("cannot write checkpoint state in ", tmp));
  }
  fs::remove_all(dir, ec);
  fs::rename(tmp, dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot publish checkpoint ", dir, ": ", ec.message()));
  // Keep the last two.
  if (epoch >= 2) fs::remove_all(CheckpointDir(epoch - 2), ec);
  return absl::OkStatus();
}

absl::Status Trainer::Impl::LoadLastCheckpoint() {
  const fs::path root = fs::path(options.work_dir) / "checkpoints";
  int last = -1;
  std::error_code ec;
  if (fs::exists(root, ec)) {
    for (const auto& entry : fs::directory_iterator(root, ec)) {
      const std::string name = entry.path().filename().string();
      int epoch = -1;
      if (name.size() == 9 && std::sscanf(name.c_str(), "epoch-%d", &epoch) == 1) last = std::max(last, epoch);
    }
  }
  if (last < 0) {
    LOG(INFO) << "no checkpoint in " << root.string() << ": starting from epoch 1";
    return absl::OkStatus();
  }
  const std::string dir = CheckpointDir(last);
  config::TrainerConfig saved;
  {
    absl::StatusOr<std::string> text = ReadFileToString((fs::path(dir) / "config.pbtxt").string());
    if (!text.ok() || !google::protobuf::TextFormat::ParseFromString(*text, &saved)) {
      return absl::DataLossError(absl::StrCat("checkpoint ", dir, ": unreadable config.pbtxt"));
    }
  }
  config::TrainerConfig now = cfg;
  now.set_epochs(0);
  if (saved.SerializeAsString() != now.SerializeAsString()) {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint ", dir,
                     " was written with another trainer config; start fresh without --resume "
                     "or restore that config"));
  }
  try {
    torch::load(customer, (fs::path(dir) / "customer_tower.pt").string());
    torch::load(article, (fs::path(dir) / kArticleTowerFile).string());
    torch::load(*customer_opt, (fs::path(dir) / "customer_optimizer.pt").string());
    torch::load(*article_opt, (fs::path(dir) / "article_optimizer.pt").string());
    torch::serialize::InputArchive tables, ctab, atab;
    tables.load_from((fs::path(dir) / "table_optimizers.pt").string());
    tables.read("customer", ctab);
    tables.read("article", atab);
    customer_tables->Load(ctab);
    article_tables->Load(atab);
    customer->to(device);
    article->to(device);
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat("cannot load checkpoint ", dir, ": ", e.what_without_backtrace()));
  }
  std::ifstream state((fs::path(dir) / "state.txt").string());
  std::string line;
  std::getline(state, line);
  history.clear();
  while (std::getline(state, line)) {
    if (line.empty()) continue;
    ASSIGN_OR_RETURN(EpochMetrics e, ParseMetricsJson(line));
    history.push_back(e);
  }
  next_epoch = last + 1;
  LOG(INFO) << "resuming after epoch " << last + 1 << " from " << dir;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> Trainer::EmbedCustomers(const std::vector<uint32_t>& customers) {
  Impl& m = *impl_;
  try {
    c10::InferenceMode guard;
    m.customer->eval();
    torch::Tensor u = m.CustomerMatrix(customers).to(torch::kCPU).contiguous();
    m.customer->train();
    return std::vector<float>(u.data_ptr<float>(), u.data_ptr<float>() + u.numel());
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("customer embedding failed: ", e.what_without_backtrace()));
  }
}

absl::StatusOr<std::string> Trainer::Export(const std::string& bundles_dir, const std::string& version_in) {
  Impl& m = *impl_;
  const std::string version = version_in.empty() ? FormatUtcNow("%Y%m%dT%H%M%SZ") : version_in;
  const fs::path final_dir = fs::path(bundles_dir) / version;
  const fs::path tmp = fs::path(bundles_dir) / (version + ".partial");
  std::error_code ec;
  if (fs::exists(final_dir, ec)) {
    return absl::AlreadyExistsError(absl::StrCat("bundle ", final_dir.string(), " exists; pick another --version"));
  }
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", tmp.string(), ": ", ec.message()));

  config::BundleManifest manifest;
  manifest.set_version(version);
  manifest.set_created_at(FormatUtcNow("%Y-%m-%dT%H:%M:%SZ"));
  manifest.set_data_first_day(FormatDate(m.data.window_first_day()));
  manifest.set_data_last_day(FormatDate(m.ds->last_day));
  manifest.set_features_as_of(FormatDate(m.data.as_of_day()));
  manifest.set_num_customers(static_cast<int64_t>(m.ds->customers.size()));
  manifest.set_num_articles(static_cast<int64_t>(m.ds->articles.size()));
  manifest.set_embedding_dim(m.cfg.model().embedding_dim());
  *manifest.mutable_trainer() = m.cfg;
  if (!m.history.empty() && m.history.back().evaluated) {
    config::OfflineMetric* mm = manifest.add_metrics();
    mm->set_name("holdout_map_at_12");
    mm->set_value(m.history.back().map_at_12);
    mm = manifest.add_metrics();
    mm->set_name("holdout_recall_at_12");
    mm->set_value(m.history.back().recall_at_12);
  }

  try {
    c10::InferenceMode guard;
    m.customer->eval();
    m.article->eval();
    torch::Tensor v = m.ArticleMatrix(m.data.as_of_day()).to(torch::kCPU).contiguous();
    ArticleEmbeddings emb;
    emb.dim = static_cast<int32_t>(v.size(1));
    for (const Article& a : m.ds->articles) emb.article_ids.push_back(a.article_id);
    emb.values.assign(v.data_ptr<float>(), v.data_ptr<float>() + v.numel());
    RETURN_IF_ERROR(WriteArticleEmbeddings((tmp / kArticleEmbeddingsFile).string(), emb));
    m.customer->to(torch::kCPU);
    torch::save(m.customer, (tmp / kCustomerTowerFile).string());
    m.customer->to(m.device);
    m.article->to(torch::kCPU);
    torch::save(m.article, (tmp / kArticleTowerFile).string());
    m.article->to(m.device);
    m.customer->train();
    m.article->train();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("export failed: ", e.what_without_backtrace()));
  }
  RETURN_IF_ERROR(WriteTextProto((tmp / kVocabulariesFile).string(), m.space.ToProto()));
  for (const char* name : {kMetricsFile, kCurveFile}) {
    const fs::path src = fs::path(m.options.work_dir) / name;
    if (fs::exists(src, ec)) fs::copy_file(src, tmp / name, fs::copy_options::overwrite_existing, ec);
  }
  for (const auto& entry : fs::directory_iterator(tmp, ec)) {
    RETURN_IF_ERROR(RecordBundleFile(tmp.string(), entry.path().filename().string(), &manifest));
  }
  RETURN_IF_ERROR(WriteManifest(tmp.string(), manifest));
  fs::rename(tmp, final_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot publish bundle ", final_dir.string(), ": ", ec.message()));
  return final_dir.string();
}

}  // namespace hmrec
