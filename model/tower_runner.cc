#include "model/tower_runner.h"

#include <omp.h>

#include <cstring>
#include <thread>

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/cuda.h>
#include <torch/serialize.h>

#include "absl/strings/str_cat.h"
#include "model/towers.h"

namespace hmrec {

void ConfigureWorkerThreads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  omp_set_num_threads(threads);
  at::set_num_threads(threads);
}

ThreadCounts CurrentThreadCounts() { return {omp_get_max_threads(), at::get_num_threads()}; }

void ConfigureThreads(int threads) {
  ConfigureWorkerThreads(threads);
  try {
    at::set_num_interop_threads(1);
  } catch (const c10::Error&) {
    // Already set, or inter-op work already started: keep what is there.
  }
}

absl::Status CheckDevice(const std::string& device) {
  try {
    torch::Device d(device);
    if (d.is_cuda() && !torch::cuda::is_available()) {
      return absl::FailedPreconditionError(
          absl::StrCat("device '", device,
                       "' requested, but this LibTorch has no usable CUDA (built without it, "
                       "or no GPU present); use --device cpu"));
    }
    if (!d.is_cpu() && !d.is_cuda()) {
      return absl::InvalidArgumentError(absl::StrCat("device '", device, "' is neither cpu nor cuda"));
    }
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat("bad device '", device, "': ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

namespace {

// Builds a tower with `make`, loads its exported weights onto `device` and
// puts it in eval mode.
template <typename Make, typename Tower>
absl::Status LoadTower(Make make, const std::string& weights_path, const std::string& device, const char* which,
                       Tower* tower, torch::Device* on) {
  absl::Status dev = CheckDevice(device);
  if (!dev.ok()) return dev;
  try {
    *on = torch::Device(device);
    *tower = make();
    torch::load(*tower, weights_path);
    (*tower)->to(*on);
    (*tower)->eval();
  } catch (const c10::Error& e) {
    return absl::DataLossError(
        absl::StrCat("cannot load ", which, " tower ", weights_path, ": ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

}  // namespace

struct CustomerTowerRunner::Impl {
  CustomerTower tower{nullptr};
  torch::Device device{torch::kCPU};
  int history_length = 0;
};

CustomerTowerRunner::CustomerTowerRunner(std::unique_ptr<Impl> impl, int dim) : impl_(std::move(impl)), dim_(dim) {}
CustomerTowerRunner::~CustomerTowerRunner() = default;

absl::StatusOr<std::unique_ptr<CustomerTowerRunner>> CustomerTowerRunner::Load(const std::string& weights_path,
                                                                               const config::ModelConfig& model,
                                                                               const FeatureSpace& space,
                                                                               const std::string& device) {
  auto impl = std::make_unique<Impl>();
  impl->history_length = space.history_length();
  absl::Status s = LoadTower(
      [&] {
        return CustomerTower(space.CustomerFieldSizes(), static_cast<int64_t>(space.num_articles()) + 1,
                             space.HistoryAttributeSizes(), std::vector<int32_t>(), model);
      },
      weights_path, device, "customer", &impl->tower, &impl->device);
  if (!s.ok()) return s;
  return std::unique_ptr<CustomerTowerRunner>(new CustomerTowerRunner(std::move(impl), model.embedding_dim()));
}

absl::Status CustomerTowerRunner::Embed(const int32_t* fields, const int32_t* history, int64_t n, float* out) {
  if (n == 0) return absl::OkStatus();
  try {
    c10::InferenceMode guard;
    const int64_t h = impl_->history_length;
    torch::Tensor f = torch::from_blob(const_cast<int32_t*>(fields), {n, kCustomerFields}, torch::kInt32)
                          .to(impl_->device, torch::kInt64);
    torch::Tensor hist =
        torch::from_blob(const_cast<int32_t*>(history), {n, h}, torch::kInt32).to(impl_->device, torch::kInt64);
    torch::Tensor emb = impl_->tower->forward(f, hist).to(torch::kCPU, torch::kFloat32).contiguous();
    std::memcpy(out, emb.data_ptr<float>(), sizeof(float) * n * dim_);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("customer tower forward failed: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

struct ArticleTowerRunner::Impl {
  ArticleTower tower{nullptr};
  torch::Device device{torch::kCPU};
};

ArticleTowerRunner::ArticleTowerRunner(std::unique_ptr<Impl> impl, int dim) : impl_(std::move(impl)), dim_(dim) {}
ArticleTowerRunner::~ArticleTowerRunner() = default;

absl::StatusOr<std::unique_ptr<ArticleTowerRunner>> ArticleTowerRunner::Load(const std::string& weights_path,
                                                                             const config::ModelConfig& model,
                                                                             const FeatureSpace& space,
                                                                             const std::string& device) {
  auto impl = std::make_unique<Impl>();
  absl::Status s = LoadTower([&] { return ArticleTower(space.ArticleFieldSizes(), model); }, weights_path, device,
                             "article", &impl->tower, &impl->device);
  if (!s.ok()) return s;
  return std::unique_ptr<ArticleTowerRunner>(new ArticleTowerRunner(std::move(impl), model.embedding_dim()));
}

absl::Status ArticleTowerRunner::Embed(const int32_t* fields, int64_t n, float* out) {
  if (n == 0) return absl::OkStatus();
  try {
    c10::InferenceMode guard;
    torch::Tensor f = torch::from_blob(const_cast<int32_t*>(fields), {n, kArticleFields}, torch::kInt32)
                          .to(impl_->device, torch::kInt64);
    torch::Tensor emb = impl_->tower->forward(f).to(torch::kCPU, torch::kFloat32).contiguous();
    std::memcpy(out, emb.data_ptr<float>(), sizeof(float) * n * dim_);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("article tower forward failed: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

}  // namespace hmrec
