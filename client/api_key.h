#pragma once

// The client side of API keys (server/auth.h): where a program's key comes
// from, and a channel that sends it with every call as
// `authorization: Bearer KEY`. The key is never printed.

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"

namespace hmrec {

// The key from `key_file` (the whole file, surrounding whitespace dropped)
// when given, else from the environment variable HMREC_API_KEY, else "" (no
// key). Errors name the file or the variable, never the key: an unreadable
// file, or a key that is not 1-1024 characters of A-Z a-z 0-9 - . _ ~ + /
// (then '=').
absl::StatusOr<std::string> LoadApiKey(const std::string& key_file);

// A channel to `target` whose every call carries `key` (none when empty).
// Works on plaintext channels too, where gRPC's call credentials are
// refused: the key is added as metadata by a client interceptor.
std::shared_ptr<grpc::Channel> CreateChannelWithKey(const std::string& target,
                                                    const std::shared_ptr<grpc::ChannelCredentials>& credentials,
                                                    const grpc::ChannelArguments& args, const std::string& key);

}  // namespace hmrec
