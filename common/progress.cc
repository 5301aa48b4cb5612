#include "common/progress.h"

#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_format.h"

namespace hmrec {

ProgressReporter::ProgressReporter(std::string label, int64_t total, std::string unit,
                                   std::chrono::milliseconds interval)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      interval_(interval),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_),
      tty_(::isatty(STDERR_FILENO) == 1) {}

double ProgressReporter::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string ProgressReporter::HumanCount(double v) {
  if (v >= 1e9) return absl::StrFormat("%.2fG", v / 1e9);
  if (v >= 1e6) return absl::StrFormat("%.2fM", v / 1e6);
  if (v >= 1e4) return absl::StrFormat("%.1fk", v / 1e3);
  return absl::StrFormat("%.0f", v);
}

void ProgressReporter::Update(int64_t done) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_print_ < interval_) return;
  last_print_ = now;
  Print(done, false);
}

void ProgressReporter::Finish(int64_t done) {
  if (!enabled_) return;
  Print(done, true);
}

void ProgressReporter::Print(int64_t done, bool final) {
  const double secs = elapsed_seconds();
  const double rate = secs > 0 ? done / secs : 0.0;
  std::string line;
  if (final) {
    line = absl::StrFormat("%s: done, %s %s in %.1f s (%s %s/s)", label_, HumanCount(static_cast<double>(done)), unit_,
                           secs, HumanCount(rate), unit_);
  } else if (total_ > 0) {
    const double frac = static_cast<double>(done) / static_cast<double>(total_);
    const double eta = rate > 0 ? (total_ - done) / rate : 0.0;
    line = absl::StrFormat("%s: %5.1f%% %s/%s %s, %s %s/s, ETA %.0f s", label_, 100.0 * frac,
                           HumanCount(static_cast<double>(done)), HumanCount(static_cast<double>(total_)), unit_,
                           HumanCount(rate), unit_, eta);
  } else {
    line = absl::StrFormat("%s: %s %s, %s %s/s", label_, HumanCount(static_cast<double>(done)), unit_, HumanCount(rate),
                           unit_);
  }
  if (!suffix_.empty()) line += ", " + suffix_;
  if (tty_) {
    std::fprintf(stderr, "\r%-100s%s", line.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace hmrec
