#pragma once

// The server's config as the server uses it: read from a text-proto file
// with relative paths resolved against the file's directory, every unset
// field given its default, and checked as a whole: limits that contradict
// each other are refused at start, naming the fields, instead of failing
// requests later.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/config.pb.h"

namespace hmrec {

// gRPC clients refuse responses over 4 MiB unless they raise their limit.
inline constexpr int64_t kDefaultMaxResponseBytes = 4 << 20;

// Reads `path` (ServerConfig, text format) and makes bundle_path and the TLS
// file paths absolute, relative ones taken from the config file's directory,
// so the server runs the same from any working directory.
absl::StatusOr<config::ServerConfig> ReadServerConfig(const std::string& path);

// Returns `config` with every field left 0 or empty set to its default.
config::ServerConfig WithDefaults(config::ServerConfig config);

// Checks a config after WithDefaults: INVALID_ARGUMENT naming the fields of
// the first contradiction (a request the limits allow that the queue could
// never take, a response the limits allow that clients could not receive,
// a negative count, an unknown flat_search), and a non-loopback gRPC or HTTP
// address without auth { keys_file } unless allow_unauthenticated.
absl::Status ValidateServerConfig(const config::ServerConfig& config);

// True when `address` (host:port) is on this machine only: 127.0.0.0/8,
// ::1 or localhost.
bool IsLoopbackAddress(const std::string& address);

// An upper bound on the serialised size of a RecommendResponse for `ids`
// customers and `k` articles each.
int64_t MaxResponseBytes(int64_t ids, int64_t k);

}  // namespace hmrec
