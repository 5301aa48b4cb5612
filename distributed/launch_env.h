#pragma once

// The process-group conventions of PyTorch's launchers (torchrun, Kubeflow's
// PyTorchJob, a Kubernetes Indexed Job that sets them): MASTER_ADDR,
// MASTER_PORT, RANK, WORLD_SIZE, and GLOO_SOCKET_IFNAME for the interface
// Gloo binds to. No LibTorch here: read and validated without it.

#include <functional>
#include <string>

#include "absl/status/statusor.h"

namespace hmrec {

struct LaunchEnv {
  int rank = 0;
  int world_size = 1;
  std::string master_addr;
  int master_port = 29500;
  // Network interface for Gloo's connections; empty = the address this
  // machine's hostname resolves to (loopback when it does not resolve).
  std::string socket_ifname;

  bool distributed() const { return world_size > 1; }
  // "rank 1/2 (rendezvous 10.0.0.5:29500)", for logs and errors.
  std::string Describe() const;
};

// WORLD_SIZE unset (or 1) = one process, as before. Otherwise RANK and
// MASTER_ADDR are required, MASTER_PORT defaults to 29500 (torchrun's);
// an invalid value is named. `getenv` is injectable for tests.
absl::StatusOr<LaunchEnv> ReadLaunchEnv(const std::function<const char*(const char*)>& getenv);
absl::StatusOr<LaunchEnv> ReadLaunchEnv();

}  // namespace hmrec
