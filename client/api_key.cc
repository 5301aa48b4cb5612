#include "client/api_key.h"

#include <cstdlib>
#include <vector>

#include <grpcpp/support/client_interceptor.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/text_proto.h"

namespace hmrec {
namespace {

bool ValidKey(absl::string_view key) {
  size_t body = 0;
  while (body < key.size() &&
         (absl::ascii_isalnum(static_cast<unsigned char>(key[body])) || key[body] == '-' || key[body] == '.' ||
          key[body] == '_' || key[body] == '~' || key[body] == '+' || key[body] == '/')) {
    ++body;
  }
  size_t pad = body;
  while (pad < key.size() && key[pad] == '=') ++pad;
  return body > 0 && pad == key.size() && key.size() <= 1024;
}

class KeyInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit KeyInterceptor(const std::string* value) : value_(value) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({"authorization", *value_});
    }
    methods->Proceed();
  }

 private:
  const std::string* value_;
};

class KeyInterceptorFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit KeyInterceptorFactory(const std::string& key) : value_("Bearer " + key) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo*) override {
    return new KeyInterceptor(&value_);
  }

 private:
  const std::string value_;  // lives as long as the channel (which owns the factory)
};

}  // namespace

absl::StatusOr<std::string> LoadApiKey(const std::string& key_file) {
  std::string key;
  std::string from;
  if (!key_file.empty()) {
    absl::StatusOr<std::string> text = ReadFileToString(key_file);
    if (!text.ok()) return absl::NotFoundError(absl::StrCat("--api_key_file ", key_file, ": cannot read it"));
    key = std::string(absl::StripAsciiWhitespace(*text));
    from = absl::StrCat("--api_key_file ", key_file);
  } else if (const char* env = std::getenv("HMREC_API_KEY"); env != nullptr && *env != '\0') {
    key = std::string(absl::StripAsciiWhitespace(env));
    from = "HMREC_API_KEY";
  } else {
    return std::string();
  }
  if (!ValidKey(key)) {
    return absl::InvalidArgumentError(
        absl::StrCat(from, ": the key must be 1-1024 characters of A-Z a-z 0-9 - . _ ~ + / (then '=')"));
  }
  return key;
}

std::shared_ptr<grpc::Channel> CreateChannelWithKey(const std::string& target,
                                                    const std::shared_ptr<grpc::ChannelCredentials>& credentials,
                                                    const grpc::ChannelArguments& args, const std::string& key) {
  if (key.empty()) return grpc::CreateCustomChannel(target, credentials, args);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<KeyInterceptorFactory>(key));
  return grpc::experimental::CreateCustomChannelWithInterceptors(target, credentials, args, std::move(interceptors));
}

}  // namespace hmrec
