#pragma once

// Collective operations between the trainer's processes through PyTorch's
// c10d: a TCPStore hosted by rank 0 for the rendezvous, then
// ProcessGroupGloo (CPU tensors) or, in a build with HMREC_WITH_CUDA,
// ProcessGroupNCCL (CUDA tensors). Nothing home-made goes over the wire.
//
// Every call blocks until all ranks made the same call or the timeout passed;
// a rank that died makes the others' next call fail at once (Gloo sees the
// connection close) and the error names the operation. Not thread-safe: one
// training loop drives it.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "distributed/launch_env.h"

namespace hmrec {

class Collective {
 public:
  // Meets the other ranks at env.master_addr:master_port. Fails after
  // `timeout` naming the ranks that did not arrive (or, on a rank other than
  // 0, that rank 0's rendezvous cannot be reached). `cuda` picks NCCL.
  static absl::StatusOr<std::unique_ptr<Collective>> Connect(const LaunchEnv& env, std::chrono::milliseconds timeout,
                                                             bool cuda);
  ~Collective();

  int rank() const { return env_.rank; }
  int size() const { return env_.world_size; }

  // Overwrites every rank's `tensors` with rank 0's, in place.
  absl::Status Broadcast(std::vector<torch::Tensor>& tensors, const std::string& what);
  // Sums `t` over the ranks, in place.
  absl::Status AllReduceSum(torch::Tensor& t, const std::string& what);
  // Every rank's `t` (the same shape and type on every rank), in rank order.
  absl::StatusOr<std::vector<torch::Tensor>> AllGather(const torch::Tensor& t, const std::string& what);
  // Fails naming the ranks whose `digest` differs from rank 0's.
  absl::Status CheckSame(uint64_t digest, const std::string& what);

  // Wall time spent inside collective calls since the last reset.
  double seconds() const { return seconds_; }
  void reset_seconds() { seconds_ = 0; }

 private:
  struct Impl;
  Collective();
  absl::Status Failed(const std::string& what, const std::string& error) const;

  LaunchEnv env_;
  std::chrono::milliseconds timeout_{0};
  std::unique_ptr<Impl> impl_;  // the c10d store and process group
  double seconds_ = 0;
};

// FNV-1a over the bytes of the tensors (moved to the CPU, contiguous): equal
// on two ranks exactly when their values are bit-identical (up to the hash).
uint64_t TensorDigest(const std::vector<torch::Tensor>& tensors);

}  // namespace hmrec
