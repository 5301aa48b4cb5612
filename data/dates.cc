#include "data/dates.h"

#include <ctime>

#include "absl/strings/str_cat.h"

namespace hmrec {
namespace {

// Howard Hinnant's civil calendar algorithms (public domain description).
void CivilFromDays(int32_t z, int* year, int* month, int* day) {
  z += 719468;
  const int32_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int32_t doe = z - era * 146097;
  const int32_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int32_t y = yoe + era * 400;
  const int32_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int32_t mp = (5 * doy + 2) / 153;
  *day = doy - (153 * mp + 2) / 5 + 1;
  *month = mp < 10 ? mp + 3 : mp - 9;
  *year = y + (*month <= 2);
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

}  // namespace

int32_t DaysFromCivil(int year, int month, int day) {
  year -= month <= 2;
  const int32_t era = (year >= 0 ? year : year - 399) / 400;
  const int32_t yoe = year - era * 400;
  const int32_t doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const int32_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

absl::StatusOr<int32_t> ParseDate(absl::string_view t) {
  auto digit = [&](size_t i) { return t[i] >= '0' && t[i] <= '9'; };
  if (t.size() != 10 || t[4] != '-' || t[7] != '-' || !digit(0) || !digit(1) || !digit(2) || !digit(3) || !digit(5) ||
      !digit(6) || !digit(8) || !digit(9)) {
    return absl::InvalidArgumentError(absl::StrCat("bad date '", t, "', expected YYYY-MM-DD"));
  }
  int y = (t[0] - '0') * 1000 + (t[1] - '0') * 100 + (t[2] - '0') * 10 + (t[3] - '0');
  int m = (t[5] - '0') * 10 + (t[6] - '0');
  int d = (t[8] - '0') * 10 + (t[9] - '0');
  if (m < 1 || m > 12 || d < 1 || d > DaysInMonth(y, m)) {
    return absl::InvalidArgumentError(absl::StrCat("bad date '", t, "': no such day"));
  }
  return DaysFromCivil(y, m, d);
}

void FormatDateTo(int32_t day, char* out) {
  int y, m, d;
  CivilFromDays(day, &y, &m, &d);
  out[0] = static_cast<char>('0' + (y / 1000) % 10);
  out[1] = static_cast<char>('0' + (y / 100) % 10);
  out[2] = static_cast<char>('0' + (y / 10) % 10);
  out[3] = static_cast<char>('0' + y % 10);
  out[4] = '-';
  out[5] = static_cast<char>('0' + m / 10);
  out[6] = static_cast<char>('0' + m % 10);
  out[7] = '-';
  out[8] = static_cast<char>('0' + d / 10);
  out[9] = static_cast<char>('0' + d % 10);
}

std::string FormatDate(int32_t day) {
  std::string s(10, ' ');
  FormatDateTo(day, s.data());
  return s;
}

int DayOfWeek(int32_t day) {
  // 1970-01-01 was a Thursday (3 when Monday is 0).
  int w = (day + 3) % 7;
  return w < 0 ? w + 7 : w;
}

int32_t TodayUtc() { return static_cast<int32_t>(std::time(nullptr) / 86400); }

std::string FormatUtcNow(const char* format) {
  const std::time_t t = std::time(nullptr);
  std::tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  return std::string(buf, std::strftime(buf, sizeof(buf), format, &tm));
}

}  // namespace hmrec
