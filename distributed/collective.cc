#include "distributed/collective.h"

#include <cstring>
#include <thread>

#include <c10/util/Exception.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef HMREC_WITH_CUDA
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace hmrec {

namespace {

using Clock = std::chrono::steady_clock;

std::string JoinedKey(int rank) { return absl::StrCat("hmrec/joined/", rank); }

// c10d errors carry a C++ backtrace; the first line is the message.
std::string FirstLine(const std::string& s) {
  const size_t nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

}  // namespace

struct Collective::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> group;
};

Collective::Collective() : impl_(std::make_unique<Impl>()) {}
Collective::~Collective() = default;

absl::StatusOr<std::unique_ptr<Collective>> Collective::Connect(const LaunchEnv& env, std::chrono::milliseconds timeout,
                                                                bool cuda) {
  std::unique_ptr<Collective> c(new Collective());
  c->env_ = env;
  c->timeout_ = timeout;
  const std::string where = absl::StrCat(env.master_addr, ":", env.master_port);
  const double secs = std::chrono::duration<double>(timeout).count();
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<uint16_t>(env.master_port);
  opts.isServer = env.rank == 0;
  opts.numWorkers = env.world_size;
  opts.waitWorkers = false;  // missing ranks are named below instead
  opts.timeout = timeout;
  try {
    c->impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, opts);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        env.rank == 0
            ? absl::StrCat("rank 0 cannot host the rendezvous on ", where, ": ", FirstLine(e.what()))
            : absl::StrCat("rank ", env.rank, " cannot reach rank 0's rendezvous at ", where, " within ", secs,
                           " s (is rank 0 running, and MASTER_ADDR/MASTER_PORT right?): ", FirstLine(e.what())));
  }
  // Every rank announces itself, then waits for the others: on a timeout
  // the error says which ranks never came.
  std::vector<std::string> keys;
  for (int r = 0; r < env.world_size; ++r) keys.push_back(JoinedKey(r));
  try {
    c->impl_->store->set(JoinedKey(env.rank), std::vector<uint8_t>{1});
    const Clock::time_point deadline = Clock::now() + timeout;
    while (!c->impl_->store->check(keys)) {
      if (Clock::now() >= deadline) {
        std::vector<int> missing;
        for (int r = 0; r < env.world_size; ++r) {
          if (!c->impl_->store->check({JoinedKey(r)})) missing.push_back(r);
        }
        return absl::DeadlineExceededError(
            absl::StrCat("rank", missing.size() > 1 ? "s " : " ", absl::StrJoin(missing, ", "), " of ", env.world_size,
                         " did not join the rendezvous at ", where, " within ", secs, " s"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("rendezvous at ", where, " failed for rank ", env.rank, ": ", FirstLine(e.what())));
  }
  try {
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("hmrec/pg", c->impl_->store);
    if (cuda) {
#ifdef HMREC_WITH_CUDA
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = timeout;
      c->impl_->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, env.rank, env.world_size, o);
#else
      return absl::FailedPreconditionError(
          "device cuda with several ranks needs NCCL: this build has none (configure with -DHMREC_WITH_CUDA=ON "
          "against a CUDA LibTorch)");
#endif
    } else {
      auto o = c10d::ProcessGroupGloo::Options::create(timeout);
      o->devices.push_back(env.socket_ifname.empty()
                               ? c10d::ProcessGroupGloo::createDefaultDevice()
                               : c10d::ProcessGroupGloo::createDeviceForInterface(env.socket_ifname));
      o->threads = 1;
      c->impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, env.rank, env.world_size, o);
    }
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("rank ", env.rank, " cannot connect to the other ranks (",
                     env.socket_ifname.empty() ? "default interface" : "GLOO_SOCKET_IFNAME=" + env.socket_ifname,
                     "): ", FirstLine(e.what())));
  }
  return c;
}

absl::Status Collective::Failed(const std::string& what, const std::string& error) const {
  return absl::UnavailableError(absl::StrCat("rank ", env_.rank, "/", env_.world_size, ": ", what,
                                             " failed: another rank stopped or cannot be reached (", FirstLine(error),
                                             ")"));
}

absl::Status Collective::Broadcast(std::vector<torch::Tensor>& tensors, const std::string& what) {
  const Clock::time_point t0 = Clock::now();
  try {
    for (torch::Tensor& t : tensors) {
      std::vector<at::Tensor> one{t};
      impl_->group->broadcast(one)->wait(timeout_);
    }
  } catch (const std::exception& e) {
    return Failed(what, e.what());
  }
  seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
  return absl::OkStatus();
}

absl::Status Collective::AllReduceSum(torch::Tensor& t, const std::string& what) {
  const Clock::time_point t0 = Clock::now();
  try {
    std::vector<at::Tensor> one{t};
    impl_->group->allreduce(one)->wait(timeout_);
  } catch (const std::exception& e) {
    return Failed(what, e.what());
  }
  seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<torch::Tensor>> Collective::AllGather(const torch::Tensor& t, const std::string& what) {
  const Clock::time_point t0 = Clock::now();
  std::vector<std::vector<at::Tensor>> out(1);
  try {
    for (int r = 0; r < env_.world_size; ++r) out[0].push_back(torch::empty_like(t));
    std::vector<at::Tensor> in{t.contiguous()};
    impl_->group->allgather(out, in)->wait(timeout_);
  } catch (const std::exception& e) {
    return Failed(what, e.what());
  }
  seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
  return std::move(out[0]);
}

absl::Status Collective::CheckSame(uint64_t digest, const std::string& what) {
  torch::Tensor mine = torch::tensor({static_cast<int64_t>(digest)}, torch::kInt64);
  absl::StatusOr<std::vector<torch::Tensor>> all = AllGather(mine, absl::StrCat("comparing ", what));
  if (!all.ok()) return all.status();
  std::vector<int> differ;
  const int64_t zero = (*all)[0].item<int64_t>();
  for (int r = 1; r < env_.world_size; ++r) {
    if ((*all)[r].item<int64_t>() != zero) differ.push_back(r);
  }
  if (!differ.empty()) {
    return absl::InternalError(absl::StrCat(what, " of rank", differ.size() > 1 ? "s " : " ",
                                            absl::StrJoin(differ, ", "), " differ from rank 0's"));
  }
  return absl::OkStatus();
}

uint64_t TensorDigest(const std::vector<torch::Tensor>& tensors) {
  uint64_t h = 1469598103934665603ULL;
  for (const torch::Tensor& t : tensors) {
    const torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    const auto* p = static_cast<const unsigned char*>(c.data_ptr());
    const size_t n = static_cast<size_t>(c.numel()) * c.element_size();
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  }
  return h;
}

}  // namespace hmrec
