#include "distributed/launch_env.h"

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace hmrec {

namespace {

absl::StatusOr<int> IntVar(const std::function<const char*(const char*)>& getenv, const char* name, int lo, int hi) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') return absl::InvalidArgumentError(absl::StrCat(name, " is not set"));
  int x = 0;
  if (!absl::SimpleAtoi(v, &x) || x < lo || x > hi) {
    return absl::InvalidArgumentError(absl::StrCat(name, "=\"", v, "\" is not an integer in [", lo, ", ", hi, "]"));
  }
  return x;
}

}  // namespace

std::string LaunchEnv::Describe() const {
  if (!distributed()) return "single process";
  return absl::StrCat("rank ", rank, "/", world_size, " (rendezvous ", master_addr, ":", master_port, ")");
}

absl::StatusOr<LaunchEnv> ReadLaunchEnv(const std::function<const char*(const char*)>& getenv) {
  LaunchEnv env;
  const char* ws = getenv("WORLD_SIZE");
  if (ws == nullptr || *ws == '\0') return env;
  absl::StatusOr<int> world = IntVar(getenv, "WORLD_SIZE", 1, 1 << 16);
  if (!world.ok()) return world.status();
  env.world_size = *world;
  if (env.world_size == 1) return env;
  absl::StatusOr<int> rank = IntVar(getenv, "RANK", 0, env.world_size - 1);
  if (!rank.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(rank.status().message(), " (WORLD_SIZE=", env.world_size, " needs RANK in [0, WORLD_SIZE))"));
  }
  env.rank = *rank;
  const char* addr = getenv("MASTER_ADDR");
  if (addr == nullptr || *addr == '\0') {
    return absl::InvalidArgumentError("MASTER_ADDR is not set (the host of rank 0, where the ranks meet)");
  }
  env.master_addr = addr;
  const char* port = getenv("MASTER_PORT");
  if (port != nullptr && *port != '\0') {
    absl::StatusOr<int> p = IntVar(getenv, "MASTER_PORT", 1, 65535);
    if (!p.ok()) return p.status();
    env.master_port = *p;
  }
  const char* ifname = getenv("GLOO_SOCKET_IFNAME");
  if (ifname != nullptr) env.socket_ifname = ifname;
  return env;
}

absl::StatusOr<LaunchEnv> ReadLaunchEnv() {
  return ReadLaunchEnv([](const char* name) { return std::getenv(name); });
}

}  // namespace hmrec
