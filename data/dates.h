#pragma once

// Calendar dates as day numbers (days since 1970-01-01, proleptic Gregorian),
// the form every table in hmrec stores.

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace hmrec {

// Returns the day number of a valid civil date.
int32_t DaysFromCivil(int year, int month, int day);

// Parses "YYYY-MM-DD" strictly (exactly 10 characters, a real date).
absl::StatusOr<int32_t> ParseDate(absl::string_view text);

// Formats a day number as "YYYY-MM-DD".
std::string FormatDate(int32_t day);

// Writes "YYYY-MM-DD" into out[0..9] without allocating.
void FormatDateTo(int32_t day, char* out);

// Returns 0 for Monday .. 6 for Sunday.
int DayOfWeek(int32_t day);

// Today's day number by the system clock, UTC.
int32_t TodayUtc();

// The current UTC time formatted by strftime's `format` (bundle versions,
// manifest timestamps).
std::string FormatUtcNow(const char* format);

}  // namespace hmrec
