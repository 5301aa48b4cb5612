#pragma once

// The identifier formats of the H&M files: customer ids are 64 lowercase hex
// characters; article ids are integers written with 10 digits and leading
// zeros ("0108775015"), though some writers drop the zero.

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace hmrec {

inline constexpr size_t kCustomerIdLength = 64;
inline constexpr size_t kArticleIdDigits = 10;

// Returns true for exactly 64 characters of [0-9a-f].
bool IsValidCustomerId(absl::string_view id);

// Parses an article id of 1 to 10 decimal digits that fits an int32.
absl::StatusOr<int32_t> ParseArticleId(absl::string_view text);

// Writes the 10-digit, zero-padded form into out[0..9].
void FormatArticleIdTo(int32_t article_id, char* out);
std::string FormatArticleId(int32_t article_id);

// Parses an integer column; accepts pandas' float spelling of integers
// ("49.0") and a leading minus sign.
absl::StatusOr<int64_t> ParseIntegerField(absl::string_view text);

// Parses a decimal floating-point number (the whole field).
absl::StatusOr<double> ParseDoubleField(absl::string_view text);

}  // namespace hmrec
