// The CPU cost of one call's auth check (server/auth.h), alone: parse the
// authorization value, hash the key (SHA-256), compare it with every stored
// hash in constant time, check the scope. Prints ns per check for a keys
// file of --keys clients, the key being the last one, and for a refused one.
//
//   hmrec_auth_bench --keys 100 [--checks 2000000]

#include <chrono>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "server/auth.h"

ABSL_FLAG(int, keys, 100, "Clients in the keys file");
ABSL_FLAG(int64_t, checks, 2000000, "Checks timed per case");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int n = absl::GetFlag(FLAGS_keys);
  std::string text;
  std::string last;
  for (int i = 0; i < n; ++i) {
    last = absl::StrCat("bench-key-", i, "-0123456789abcdefghijklmnopqrstuv");
    absl::StrAppend(&text, "client-", i, " recommend sha256:", hmrec::KeyDigestHex(last), "\n");
  }
  auto keys = hmrec::KeySet::Parse(text, "bench");
  if (!keys.ok()) return 1;
  const std::string good = "Bearer " + last, bad = "Bearer not-a-key-0123456789abcdefghijklmnopqrstuv";
  for (const auto& [name, value] : {std::pair<const char*, const std::string*>{"known key", &good},
                                    std::pair<const char*, const std::string*>{"unknown key", &bad}}) {
    const std::vector<absl::string_view> authorization = {*value};
    const int64_t checks = absl::GetFlag(FLAGS_checks);
    int64_t found = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < checks; ++i) {
      absl::StatusOr<absl::string_view> token = hmrec::BearerToken(authorization);
      const hmrec::Caller* caller = token.ok() ? (*keys)->FindKey(*token) : nullptr;
      found += caller != nullptr && caller->Has(hmrec::kScopeRecommend);
    }
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    std::printf("auth check, %d keys, %s: %.0f ns per call (%lld of %lld allowed)\n", n, name, ns / checks,
                static_cast<long long>(found), static_cast<long long>(checks));
  }
  return 0;
}
