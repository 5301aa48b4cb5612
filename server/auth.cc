#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/text_proto.h"

namespace hmrec {
namespace {

constexpr size_t kMaxToken = 1024;
constexpr absl::string_view kHashPrefix = "sha256:";
constexpr absl::string_view kNamePrefix = "cn:";

struct ScopeWord {
  absl::string_view word;
  Scope scope;
};
constexpr ScopeWord kScopes[] = {
    {"recommend", kScopeRecommend}, {"record", kScopeRecord}, {"inspect", kScopeInspect}, {"erase", kScopeErase}};
constexpr uint32_t kAllScopes = kScopeRecommend | kScopeRecord | kScopeInspect | kScopeErase;

bool ValidName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

bool TokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == '~' ||
         c == '+' || c == '/';
}

std::array<unsigned char, 32> Sha256(absl::string_view data) {
  std::array<unsigned char, 32> digest{};
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest.data(), &size, EVP_sha256(), nullptr);
  return digest;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The identity of the file at `path` (following symlinks): what changes
// when it is rewritten or replaced. Empty when it cannot be stat'ed.
std::string FileIdentity(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return "";
  return absl::StrCat(st.st_dev, ":", st.st_ino, ":", st.st_size, ":", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, ":",
                      st.st_ctim.tv_sec, ".", st.st_ctim.tv_nsec);
}

}  // namespace

const char* ScopeName(Scope scope) {
  for (const ScopeWord& s : kScopes) {
    if (s.scope == scope) return s.word.data();
  }
  return "any";
}

const char* RefusalName(Refusal r) {
  switch (r) {
    case Refusal::kNone:
      return "none";
    case Refusal::kNoCredential:
      return "no_credential";
    case Refusal::kMalformed:
      return "malformed";
    case Refusal::kUnknownKey:
      return "unknown_key";
    case Refusal::kUnknownCertificate:
      return "unknown_certificate";
    case Refusal::kScope:
      return "scope";
  }
  return "unknown";
}

std::string KeyDigestHex(absl::string_view key) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : Sha256(key)) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

absl::StatusOr<std::shared_ptr<const KeySet>> KeySet::Parse(absl::string_view text, absl::string_view path) {
  auto set = std::shared_ptr<KeySet>(new KeySet());
  struct Seen {
    std::string what;
    int line;
  };
  std::vector<Seen> names, digests, common_names;
  auto first_line = [](const std::vector<Seen>& seen, absl::string_view what) {
    for (const Seen& s : seen) {
      if (s.what == what) return s.line;
    }
    return 0;
  };
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    auto fail = [&](const std::string& why) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": ", why));
    };
    line = line.substr(0, line.find('#'));
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    // NAME, SCOPES, then the credential: the rest of the line (a CN may
    // hold spaces). Values are never quoted back: a key pasted in by
    // mistake must not reach a log.
    std::vector<absl::string_view> head;
    absl::string_view rest = line;
    for (int i = 0; i < 2 && !rest.empty(); ++i) {
      const size_t end = std::min(rest.find_first_of(" \t"), rest.size());
      head.push_back(rest.substr(0, end));
      rest = absl::StripLeadingAsciiWhitespace(rest.substr(end));
    }
    if (head.size() != 2 || rest.empty()) {
      return fail("expected NAME SCOPES sha256:HEX or NAME SCOPES cn:COMMON_NAME");
    }
    head.push_back(rest);
    const absl::string_view name = head[0];
    if (!ValidName(name)) return fail("the client name must be 1-64 characters of a-z 0-9 _ -");
    if (const int first = first_line(names, name); first > 0) {
      return fail(absl::StrCat("client '", name, "' is named twice (first on line ", first, ")"));
    }
    names.push_back({std::string(name), line_no});
    Caller caller;
    caller.name = std::string(name);
    for (absl::string_view word : absl::StrSplit(head[1], ',')) {
      uint32_t bit = 0;
      for (const ScopeWord& s : kScopes) {
        if (s.word == word) bit = s.scope;
      }
      if (bit == 0) {
        const bool printable = !word.empty() && word.size() <= 32 &&
                               std::all_of(word.begin(), word.end(), [](char c) { return absl::ascii_isgraph(c); });
        return fail(absl::StrCat(word.empty() ? "an empty scope" : "unknown scope ",
                                 word.empty() ? ""
                                 : printable  ? absl::StrCat("'", word, "'")
                                              : "(unprintable)",
                                 " of client '", name,
                                 "': expected a comma-separated subset of recommend, record, "
                                 "inspect, erase"));
      }
      if (caller.scopes & bit) return fail(absl::StrCat("scope '", word, "' twice for client '", name, "'"));
      caller.scopes |= bit;
    }
    absl::string_view credential = absl::StripAsciiWhitespace(head[2]);
    if (absl::StartsWith(credential, kHashPrefix)) {
      const absl::string_view hex = credential.substr(kHashPrefix.size());
      KeyEntry entry;
      bool ok = hex.size() == 64;
      for (size_t i = 0; ok && i < 32; ++i) {
        const int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
        ok = hi >= 0 && lo >= 0;
        if (ok) entry.digest[i] = static_cast<unsigned char>(hi * 16 + lo);
      }
      if (!ok) {
        return fail(absl::StrCat("the credential of client '", name, "' must be sha256: and 64 hex digits (the ",
                                 "SHA-256 of the key, e.g. from scripts/make_api_key.sh), got ", hex.size(),
                                 " characters after sha256:"));
      }
      const std::string lower = absl::AsciiStrToLower(hex);
      if (const int first = first_line(digests, lower); first > 0) {
        return fail(absl::StrCat("client '", name, "' has the same key as line ", first));
      }
      digests.push_back({lower, line_no});
      entry.caller = std::move(caller);
      set->keys_.push_back(std::move(entry));
    } else if (absl::StartsWith(credential, kNamePrefix)) {
      const absl::string_view cn = absl::StripAsciiWhitespace(credential.substr(kNamePrefix.size()));
      if (cn.empty() || cn.size() > 256) {
        return fail(absl::StrCat("the cn: of client '", name, "' must be 1-256 characters"));
      }
      if (const int first = first_line(common_names, cn); first > 0) {
        return fail(absl::StrCat("client '", name, "' has the same certificate CN as line ", first));
      }
      common_names.push_back({std::string(cn), line_no});
      set->common_names_.push_back({std::string(cn), std::move(caller)});
    } else {
      return fail(absl::StrCat("the credential of client '", name, "' must start with sha256: or cn:"));
    }
  }
  return std::shared_ptr<const KeySet>(std::move(set));
}

absl::StatusOr<std::shared_ptr<const KeySet>> KeySet::Read(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("auth.keys_file ", path, ": cannot read it"));
  }
  if (st.st_mode & S_IWOTH) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return absl::PermissionDeniedError(absl::StrCat("auth.keys_file ", path, ": every user may write it (mode ", mode,
                                                    "): refused; make it writable by its owner only (chmod o-w)"));
  }
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return absl::NotFoundError(absl::StrCat("auth.keys_file ", path, ": cannot read it"));
  return Parse(*text, path);
}

const Caller* KeySet::FindKey(absl::string_view key) const {
  const std::array<unsigned char, 32> digest = Sha256(key);
  // Every entry is compared; the match is selected without a branch on
  // the comparison, so the time depends on the number of keys only.
  size_t found = keys_.size();
  for (size_t i = 0; i < keys_.size(); ++i) {
    const size_t equal = static_cast<size_t>(CRYPTO_memcmp(keys_[i].digest.data(), digest.data(), 32) == 0);
    const size_t mask = ~(equal - 1);  // all ones when equal
    found = (i & mask) | (found & ~mask);
  }
  return found < keys_.size() ? &keys_[found].caller : nullptr;
}

const Caller* KeySet::FindCommonName(absl::string_view cn) const {
  for (const NameEntry& e : common_names_) {
    if (e.common_name == cn) return &e.caller;
  }
  return nullptr;
}

std::vector<std::string> KeySet::Names() const {
  std::vector<std::string> out;
  for (const KeyEntry& e : keys_) out.push_back(e.caller.name);
  for (const NameEntry& e : common_names_) out.push_back(e.caller.name);
  return out;
}

absl::StatusOr<absl::string_view> BearerToken(const std::vector<absl::string_view>& authorization) {
  if (authorization.empty()) {
    return absl::UnauthenticatedError("no credential: send the header 'authorization: Bearer KEY'");
  }
  if (authorization.size() > 1) {
    return absl::UnauthenticatedError(
        absl::StrCat("the call carries ", authorization.size(), " authorization values: send exactly one"));
  }
  absl::string_view value = authorization[0];
  constexpr absl::string_view kScheme = "bearer ";
  if (value.size() < kScheme.size() || !absl::EqualsIgnoreCase(value.substr(0, kScheme.size()), kScheme)) {
    return absl::UnauthenticatedError("the authorization value is not 'Bearer KEY'");
  }
  const absl::string_view token = value.substr(kScheme.size());
  size_t body = 0;
  while (body < token.size() && TokenChar(token[body])) ++body;
  size_t pad = body;
  while (pad < token.size() && token[pad] == '=') ++pad;
  if (token.empty() || token.size() > kMaxToken || body == 0 || pad != token.size()) {
    return absl::UnauthenticatedError(absl::StrCat("the bearer key is malformed: expected 1-", kMaxToken,
                                                   " characters of A-Z a-z 0-9 - . _ ~ + / (then '=')"));
  }
  return token;
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Open(const config::AuthConfig& config,
                                                                   ReloadListener listener) {
  std::unique_ptr<Authenticator> a(new Authenticator());
  a->listener_ = std::move(listener);
  if (config.keys_file().empty()) return a;
  a->enabled_ = true;
  a->path_ = config.keys_file();
  a->seen_ = FileIdentity(a->path_);
  auto keys = KeySet::Read(a->path_);
  if (!keys.ok()) return keys.status();
  a->keys_ = *std::move(keys);
  if (config.reload_ms() >= 0) {
    const int every = config.reload_ms() > 0 ? config.reload_ms() : 1000;
    a->watcher_ = std::thread([p = a.get(), every] { p->Watch(every); });
  }
  return a;
}

Authenticator::~Authenticator() {
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    stopping_ = true;
  }
  watch_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

std::shared_ptr<const KeySet> Authenticator::keys() const {
  std::lock_guard<std::mutex> lock(mu_);
  return keys_;
}

size_t Authenticator::entries() const {
  std::shared_ptr<const KeySet> k = keys();
  return k ? k->size() : 0;
}

absl::StatusOr<Caller> Authenticator::Check(const Credentials& credentials, Scope scope, Refusal* why,
                                            std::string* known) const {
  auto refuse = [why](Refusal r, absl::Status s) {
    if (why != nullptr) *why = r;
    return s;
  };
  if (why != nullptr) *why = Refusal::kNone;
  if (!enabled_) return Caller{"anonymous", kAllScopes};
  const std::shared_ptr<const KeySet> keys = this->keys();
  const Caller* caller = nullptr;
  if (!credentials.authorization.empty()) {
    absl::StatusOr<absl::string_view> token = BearerToken(credentials.authorization);
    if (!token.ok()) return refuse(Refusal::kMalformed, token.status());
    caller = keys->FindKey(*token);
    if (caller == nullptr) return refuse(Refusal::kUnknownKey, absl::UnauthenticatedError("unknown key"));
  } else if (!credentials.peer_cn.empty()) {
    caller = keys->FindCommonName(credentials.peer_cn);
    if (caller == nullptr) {
      return refuse(Refusal::kUnknownCertificate,
                    absl::UnauthenticatedError("no key sent, and the client certificate's CN is not in the keys file"));
    }
  } else {
    return refuse(Refusal::kNoCredential, BearerToken({}).status());
  }
  if (!caller->Has(scope)) {
    if (known != nullptr) *known = caller->name;
    return refuse(Refusal::kScope,
                  absl::PermissionDeniedError(absl::StrCat("client '", caller->name, "' does not hold the scope '",
                                                           ScopeName(scope), "' this call needs")));
  }
  return *caller;
}

absl::Status Authenticator::Reload() { return ReloadIfChanged(true); }

absl::Status Authenticator::ReloadIfChanged(bool force) {
  if (!enabled_) return absl::OkStatus();
  std::lock_guard<std::mutex> one(reload_mu_);
  const std::string identity = FileIdentity(path_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!force && identity == seen_) return absl::OkStatus();
    seen_ = identity;
  }
  absl::StatusOr<std::shared_ptr<const KeySet>> read = KeySet::Read(path_);
  absl::Status status = read.status();
  if (read.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    keys_ = *std::move(read);
  }
  if (listener_) listener_(status, entries());
  return status;
}

void Authenticator::Watch(int every_ms) {
  std::unique_lock<std::mutex> lock(watch_mu_);
  while (!stopping_) {
    watch_cv_.wait_for(lock, std::chrono::milliseconds(every_ms), [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    ReloadIfChanged(false).IgnoreError();
    lock.lock();
  }
}

}  // namespace hmrec
