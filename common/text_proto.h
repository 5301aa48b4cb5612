#pragma once

// Reads typed configuration written as text-format protobuf.

#include <functional>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/text_format.h"

namespace hmrec {

// The whole content of the file at `path`; NOT_FOUND naming it when it
// cannot be read.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// Writes the file at `path` through `path`.tmp and a rename, so a reader
// sees the old file or the whole new one; INTERNAL naming the file that
// could not be written. An error `write` returns leaves `path` as it was
// and is returned.
absl::Status WriteFileAtomically(const std::string& path, const std::function<absl::Status(std::ostream&)>& write);
absl::Status WriteFileAtomically(const std::string& path, const std::string& content);

// Parses the text-format file at `path` into `message`. Errors name the file,
// line and column.
absl::Status ReadTextProto(const std::string& path, google::protobuf::Message* message);

// Parses text-format `text` (named `source` in errors) into `message`.
// With `locations` (may be null), where each field was read, for errors a
// caller finds after parsing (rules/merch_rules.h names file:line).
absl::Status ParseTextProto(const std::string& text, const std::string& source, google::protobuf::Message* message,
                            google::protobuf::TextFormat::ParseInfoTree* locations = nullptr);

}  // namespace hmrec
