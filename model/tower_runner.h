#pragma once

// Runs the exported towers without the trainer and without LibTorch in the
// caller's headers: loads customer_tower.pt (or article_tower.pt) of a
// bundle and turns encoded features into embeddings. Used by the server, the
// index builder and the parity test.
//
// Thread safety: Embed() may be called from one thread at a time per runner
// (it reuses input buffers); load one runner per worker thread.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "features/feature_space.h"
#include "proto/config.pb.h"

namespace hmrec {

// ConfigureWorkerThreads(threads) for the calling thread, and LibTorch's
// inter-op pool (process-wide) to 1. Call once at program start, before any
// tensor work: the defaults oversubscribe 2 cores.
void ConfigureThreads(int threads);

// Sets the calling thread's OpenMP and LibTorch intra-op thread counts to
// `threads` (0 = number of cores). OpenMP keeps these per thread: every
// thread that runs tower or search work calls this itself (the batch
// workers at start), or it runs with whatever it inherited.
void ConfigureWorkerThreads(int threads);

// The calling thread's thread counts as OpenMP and LibTorch see them.
struct ThreadCounts {
  int openmp = 0;
  int torch_intra_op = 0;
};
ThreadCounts CurrentThreadCounts();

// Returns true if `device` ("cpu", "cuda", "cuda:1") can be used here;
// otherwise an error saying why.
absl::Status CheckDevice(const std::string& device);

class CustomerTowerRunner {
 public:
  static absl::StatusOr<std::unique_ptr<CustomerTowerRunner>> Load(const std::string& weights_path,
                                                                   const config::ModelConfig& model,
                                                                   const FeatureSpace& space,
                                                                   const std::string& device);
  ~CustomerTowerRunner();

  // fields: n x kCustomerFields, history: n x history_length (row-major).
  // Writes n x dim() floats to `out`.
  absl::Status Embed(const int32_t* fields, const int32_t* history, int64_t n, float* out);
  int dim() const { return dim_; }

 private:
  struct Impl;
  explicit CustomerTowerRunner(std::unique_ptr<Impl> impl, int dim);
  std::unique_ptr<Impl> impl_;
  int dim_;
};

// Runs an exported article tower (article_tower.pt): encoded article fields
// (FeatureSpace::EncodeArticleStatic/Dynamic) to embeddings. The index
// builder embeds with it the articles a bundle's trainer never saw. Same
// thread rule as CustomerTowerRunner.
class ArticleTowerRunner {
 public:
  static absl::StatusOr<std::unique_ptr<ArticleTowerRunner>> Load(const std::string& weights_path,
                                                                  const config::ModelConfig& model,
                                                                  const FeatureSpace& space, const std::string& device);
  ~ArticleTowerRunner();

  // fields: n x kArticleFields (row-major). Writes n x dim() floats to `out`.
  absl::Status Embed(const int32_t* fields, int64_t n, float* out);
  int dim() const { return dim_; }

 private:
  struct Impl;
  explicit ArticleTowerRunner(std::unique_ptr<Impl> impl, int dim);
  std::unique_ptr<Impl> impl_;
  int dim_;
};

}  // namespace hmrec
