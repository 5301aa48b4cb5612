#pragma once

// A string as a JSON string literal: quotes, backslashes and control
// characters escaped, and bytes that are not printable ASCII written as
// \u00XX, so a client's value can neither break the JSON around it nor put
// raw bytes into a log.

#include <string>

#include "absl/strings/string_view.h"

namespace hmrec {

std::string JsonText(absl::string_view s);

}  // namespace hmrec
