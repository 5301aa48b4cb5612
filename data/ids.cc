#include "data/ids.h"

#include <charconv>
#include <limits>

#include "absl/strings/str_cat.h"

namespace hmrec {

bool IsValidCustomerId(absl::string_view id) {
  if (id.size() != kCustomerIdLength) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::StatusOr<int32_t> ParseArticleId(absl::string_view text) {
  if (text.empty() || text.size() > kArticleIdDigits) {
    return absl::InvalidArgumentError(absl::StrCat("bad article id '", text, "': expected 1 to 10 digits"));
  }
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return absl::InvalidArgumentError(absl::StrCat("bad article id '", text, "': not all digits"));
    }
    v = v * 10 + (c - '0');
  }
  if (v > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("bad article id '", text, "': too large"));
  }
  return static_cast<int32_t>(v);
}

void FormatArticleIdTo(int32_t article_id, char* out) {
  uint32_t v = static_cast<uint32_t>(article_id);
  for (int i = static_cast<int>(kArticleIdDigits) - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

std::string FormatArticleId(int32_t article_id) {
  std::string s(kArticleIdDigits, '0');
  FormatArticleIdTo(article_id, s.data());
  return s;
}

absl::StatusOr<int64_t> ParseIntegerField(absl::string_view text) {
  int64_t v = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(first, last, v);
  if (ec == std::errc() && ptr != first) {
    if (ptr == last) return v;
    // pandas writes integer columns holding NaN as floats: "49.0".
    if (*ptr == '.') {
      const char* q = ptr + 1;
      while (q < last && *q == '0') ++q;
      if (q == last) return v;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("bad integer '", text, "'"));
}

absl::StatusOr<double> ParseDoubleField(absl::string_view text) {
  double v = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(first, last, v);
  if (ec != std::errc() || ptr != last || first == last) {
    return absl::InvalidArgumentError(absl::StrCat("bad number '", text, "'"));
  }
  return v;
}

}  // namespace hmrec
