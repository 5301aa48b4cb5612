#include "common/runtime.h"

#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" char* openblas_get_corename(void);

namespace hmrec {

void ConfigureAllocator() {
  // Serve large blocks from the heap (not fresh mmaps) and never trim it.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
}

const char* BlasCoreName() { return openblas_get_corename(); }

void SelectBlasKernels(char** argv) {
  constexpr char kGuard[] = "HMREC_BLAS_REEXEC";
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr || std::getenv(kGuard) != nullptr) return;
  const char* core = openblas_get_corename();
  // Prescott is OpenBLAS's fallback for an x86-64 CPU it cannot identify.
  if (core == nullptr || std::strcmp(core, "Prescott") != 0) return;
  __builtin_cpu_init();
  const char* choice = nullptr;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq")) {
    choice = "SkylakeX";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    choice = "Haswell";
  }
  if (choice == nullptr) return;
  std::fprintf(stderr,
               "runtime: OpenBLAS did not recognise this CPU and chose %s kernels; restarting with "
               "OPENBLAS_CORETYPE=%s (set OPENBLAS_CORETYPE to choose)\n",
               core, choice);
  std::fflush(stderr);
  setenv("OPENBLAS_CORETYPE", choice, 1);
  setenv(kGuard, "1", 1);
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "runtime: cannot restart (%s); continuing with %s kernels\n", std::strerror(errno), core);
}

double ResidentMiB() {
  long pages = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  std::fclose(f);
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
}

}  // namespace hmrec
