#pragma once

// Trains the two towers on a Dataset and exports a bundle.
//
// Loss: in-batch sampled softmax over cosine similarities / temperature,
// with logQ correction (log of each article's sampling probability
// subtracted from its column) and other rows' copies of the same article
// masked out; examples weighted by recency. One Adam optimiser per tower so
// each has its own learning rate. Deterministic for a seed on CPU (shuffle
// and dropout are seeded per epoch), so a resumed run matches an
// uninterrupted one.
//
// LibTorch stays behind this header (pimpl). Not thread-safe.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "data/hm_data.h"
#include "proto/config.pb.h"

namespace hmrec {

class Collective;

// With several ranks, batch_size is the global batch: each rank takes an
// equal share, so it must divide by the number of ranks.
absl::Status CheckGlobalBatch(int64_t batch_size, int world_size);

// Held-out purchases: customer index -> distinct article ids bought.
struct Holdout {
  std::vector<uint32_t> customers;
  std::vector<absl::flat_hash_set<int32_t>> articles;
};

// Reads truth.csv (held-out transactions) for the customers of `ds`;
// customers it names that `ds` lacks are counted in `unknown`.
absl::StatusOr<Holdout> ReadHoldout(const std::string& truth_path, const Dataset& ds, int64_t* unknown);

struct EpochMetrics {
  int epoch = 0;
  double loss = 0;
  double examples_per_second = 0;
  double seconds = 0;
  bool evaluated = false;
  double map_at_12 = 0;
  double recall_at_12 = 0;
  // With several ranks: wall time in collective calls per step (not saved).
  double collective_ms_per_step = 0;
};

struct TrainerOptions {
  // Checkpoints, metrics and plots go here.
  std::string work_dir;
  // Python script that renders the training curve PNG; empty = no plot.
  std::string plot_script;
  std::string python = "python3";
  // Continue from the last checkpoint in work_dir.
  bool resume = false;
  bool show_progress = true;
  // Evaluate on at most this many held-out customers per epoch (0 = all);
  // the final evaluation uses all.
  int64_t eval_max_customers = 0;
  // Data-parallel training with the other ranks of this collective (null =
  // one process). Each rank computes its share of every global batch
  // (batch_size / ranks examples, all ranks' article embeddings as in-batch
  // negatives, so the loss is the single-process loss of the global batch);
  // gradients are summed over the ranks, the embedding tables' sparse
  // gradients by their union of rows. Only rank 0 evaluates and writes
  // checkpoints; every rank resumes from --work_dir (one shared directory).
  Collective* collective = nullptr;
};

class Trainer {
 public:
  // `ds` and `holdout` (may be null) must outlive the Trainer.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(const config::TrainerConfig& cfg, const Dataset& ds,
                                                         const Holdout* holdout, TrainerOptions options);
  ~Trainer();

  // Trains the remaining epochs (all, or those after the last checkpoint
  // when resuming). Returns every epoch's metrics, including resumed ones.
  absl::StatusOr<std::vector<EpochMetrics>> Train();

  // MAP@12 and recall@12 on the holdout by exact search over all articles.
  absl::StatusOr<EpochMetrics> Evaluate(int64_t max_customers);

  // Writes bundles_dir/<version>/ (customer tower, article embeddings,
  // vocabularies, metrics, manifest) via a temporary directory renamed in
  // place. Returns the bundle's path.
  absl::StatusOr<std::string> Export(const std::string& bundles_dir, const std::string& version);

  // Returns the embeddings the trainer's model gives `customers` (as of the
  // day after the data), row-major; for parity checks.
  absl::StatusOr<std::vector<float>> EmbedCustomers(const std::vector<uint32_t>& customers);

  int64_t num_examples() const;

  // Digest of every model parameter (equal on all ranks after training).
  uint64_t ParameterDigest() const;

 private:
  struct Impl;
  explicit Trainer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hmrec
