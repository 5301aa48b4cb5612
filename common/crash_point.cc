#include "common/crash_point.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace hmrec {

void CrashPoint(const char* point) {
  static const char* const target = std::getenv("HMREC_CRASH_AT");
  if (target == nullptr || std::strcmp(target, point) != 0) return;
  std::fprintf(stderr, "crash point %s: SIGKILL\n", point);
  std::fflush(stderr);
  std::raise(SIGKILL);
}

}  // namespace hmrec
