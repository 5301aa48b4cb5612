#pragma once

// A progress line on stderr for long work: done/total, percent, rate and ETA.
// Prints at most once per `interval`; on a terminal the line is rewritten in
// place, otherwise (CI logs) one line is printed per interval.
// Not thread-safe: one thread calls Update().

#include <chrono>
#include <cstdint>
#include <string>

namespace hmrec {

class ProgressReporter {
 public:
  // `total` may be 0 when unknown (no percent or ETA then).
  ProgressReporter(std::string label, int64_t total, std::string unit,
                   std::chrono::milliseconds interval = std::chrono::milliseconds(2000));

  // Records that `done` units are complete; prints when the interval passed.
  void Update(int64_t done);
  // Prints the final line with the total time and mean rate.
  void Finish(int64_t done);
  // Sets text appended to every line (e.g. "loss 3.21").
  void set_suffix(std::string suffix) { suffix_ = std::move(suffix); }
  // Turns all output off (tests, --quiet).
  void set_enabled(bool enabled) { enabled_ = enabled; }
  double elapsed_seconds() const;

  // Returns "1.2M", "34.5k" or "950" for counts.
  static std::string HumanCount(double v);

 private:
  void Print(int64_t done, bool final);

  std::string label_;
  int64_t total_;
  std::string unit_;
  std::chrono::milliseconds interval_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_print_;
  std::string suffix_;
  bool enabled_ = true;
  bool tty_;
};

}  // namespace hmrec
