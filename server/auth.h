#pragma once

// Who may call what: the one place both edges (gRPC, HTTP) ask who a caller
// is and whether it may do what it asks.
//
// A keys file (config `auth { keys_file }`) names the clients, one a line:
//
//   # comment
//   NAME SCOPES sha256:HEX       a key, stored as the hex SHA-256 of the key
//   NAME SCOPES cn:COMMON_NAME   a client certificate's subject CN (mutual TLS)
//
// NAME is [a-z0-9_-]{1,64}, unique in the file; SCOPES a comma-separated
// subset of recommend, record, inspect, erase. A caller sends its key as
// `authorization: Bearer KEY` (gRPC metadata, HTTP header); the key is
// hashed and compared with every stored hash in constant time (OpenSSL's
// CRYPTO_memcmp, no early exit), so neither the key nor its hash is ever
// kept or logged. A verified client certificate's CN stands for a key when
// a `cn:` line names it; a bearer key, when sent, is what counts.
//
// The file is re-read on RequestReload() (SIGHUP) and when it changes
// (polled; a Kubernetes Secret is replaced by a symlink swap, which the
// poll sees). A file that does not parse, or that every user may write, is
// refused with file:line and the keys in force stay. Calls in flight keep
// the key set they were checked against.
//
// Thread-safe: Check() may run on any thread while a reload swaps the set.

#include <array>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/config.pb.h"

namespace hmrec {

// What a call needs. Bit flags: a caller holds a set of them.
enum Scope : uint32_t {
  kScopeRecommend = 1u << 0,  // Recommend, POST /v1/recommend
  kScopeRecord = 1u << 1,     // RecordPurchases
  kScopeInspect = 1u << 2,    // the inspector's customer and article views
  kScopeErase = 1u << 3,      // EraseCustomer (a privacy officer's tool, not a shop's)
  kAnyScope = 0,              // any known caller (GET /v1/bundle)
};

// "recommend", "record", "inspect", "erase".
const char* ScopeName(Scope scope);

// Who is calling: a name from the keys file (a metric label; never a key)
// and the scopes it holds.
struct Caller {
  std::string name;
  uint32_t scopes = 0;
  bool Has(Scope s) const { return (scopes & s) == s; }
};

// Why a call was refused: a metric label.
enum class Refusal { kNone, kNoCredential, kMalformed, kUnknownKey, kUnknownCertificate, kScope };
const char* RefusalName(Refusal r);

// What a call presented: every `authorization` value it carried (gRPC
// metadata and HTTP headers may repeat) and the subject CN of its client
// certificate when the transport verified one (else empty).
struct Credentials {
  std::vector<absl::string_view> authorization;
  std::string peer_cn;
};

// One parsed keys file; immutable.
class KeySet {
 public:
  // Parses a keys file's text; errors are INVALID_ARGUMENT "PATH:LINE: what".
  static absl::StatusOr<std::shared_ptr<const KeySet>> Parse(absl::string_view text, absl::string_view path);
  // Reads and parses `path`; a world-writable file is refused naming it.
  static absl::StatusOr<std::shared_ptr<const KeySet>> Read(const std::string& path);

  // The caller whose key is `key`, or null. Hashes `key`, then compares the
  // hash with every stored one in constant time.
  const Caller* FindKey(absl::string_view key) const;
  // The caller a verified certificate's CN stands for, or null.
  const Caller* FindCommonName(absl::string_view cn) const;

  size_t size() const { return keys_.size() + common_names_.size(); }
  // The clients' names, in file order.
  std::vector<std::string> Names() const;

 private:
  struct KeyEntry {
    std::array<unsigned char, 32> digest;
    Caller caller;
  };
  struct NameEntry {
    std::string common_name;
    Caller caller;
  };
  std::vector<KeyEntry> keys_;
  std::vector<NameEntry> common_names_;
};

// The token of `authorization` values: exactly one value "Bearer TOKEN"
// (scheme case-insensitive, one space), the token 1-1024 characters of
// RFC 6750's token68 alphabet. Errors are UNAUTHENTICATED saying what was
// wrong, never quoting the value.
absl::StatusOr<absl::string_view> BearerToken(const std::vector<absl::string_view>& authorization);

// The hex SHA-256 of `key`: what a keys file stores for it.
std::string KeyDigestHex(absl::string_view key);

class Authenticator {
 public:
  // Called after every reload attempt that saw a change, with its outcome
  // and the number of entries in force afterwards.
  using ReloadListener = std::function<void(const absl::Status& status, size_t entries)>;

  // With `config.keys_file`: reads it (an error stops the server from
  // starting) and watches it every reload_ms. Without: disabled: every
  // call is the caller "anonymous" holding every scope.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Open(const config::AuthConfig& config,
                                                             ReloadListener listener = nullptr);
  ~Authenticator();  // stops the watcher

  bool enabled() const { return enabled_; }

  // The caller of a call that needs `scope`: UNAUTHENTICATED (no
  // credential, a malformed or unknown one) or PERMISSION_DENIED naming the
  // scope needed. `why`, when given, gets the refusal's kind, and `known`
  // the name of a caller that was identified but lacks the scope.
  absl::StatusOr<Caller> Check(const Credentials& credentials, Scope scope, Refusal* why = nullptr,
                               std::string* known = nullptr) const;

  // Re-reads the keys file now (SIGHUP); the old keys stay on an error.
  absl::Status Reload();
  // Entries in force.
  size_t entries() const;

 private:
  Authenticator() = default;
  std::shared_ptr<const KeySet> keys() const;
  // Reads the file if its identity (inode, size, mtime) changed since the
  // last attempt, or when `force`.
  absl::Status ReloadIfChanged(bool force);
  void Watch(int every_ms);

  bool enabled_ = false;
  std::string path_;
  ReloadListener listener_;
  mutable std::mutex mu_;  // guards keys_ and seen_
  std::shared_ptr<const KeySet> keys_;
  std::string seen_;      // the file identity last read
  std::mutex reload_mu_;  // one reload at a time
  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  bool stopping_ = false;
  std::thread watcher_;
};

}  // namespace hmrec
