#include "common/runtime.h"

#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

extern "C" char* openblas_get_corename(void);

namespace hmrec {

void ConfigureAllocator() {
  // Serve large blocks from the heap (not fresh mmaps) and never trim it.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
}

void ReleaseFreeHeap() { malloc_trim(0); }

const char* BlasCoreName() { return openblas_get_corename(); }

namespace {

constexpr char kReexecGuard[] = "HMREC_REEXEC";
constexpr char kHugetlbTunable[] = "glibc.malloc.hugetlb";

// The kernel's transparent huge page mode: "always", "madvise", "never",
// or "" when it has none.
std::string TransparentHugePageMode() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  if (!std::getline(f, line)) return "";
  const size_t open = line.find('['), close = line.find(']');
  if (open == std::string::npos || close == std::string::npos || close < open) return "";
  return line.substr(open + 1, close - open - 1);
}

std::string Tunables() {
  const char* t = std::getenv("GLIBC_TUNABLES");
  return t == nullptr ? "" : t;
}

// The OpenBLAS kernel set to ask for, or nullptr when its own choice stands.
const char* BlasCoreChoice() {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return nullptr;
  const char* core = openblas_get_corename();
  // Prescott is OpenBLAS's fallback for an x86-64 CPU it cannot identify.
  if (core == nullptr || std::strcmp(core, "Prescott") != 0) return nullptr;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq")) {
    return "SkylakeX";
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return nullptr;
}

}  // namespace

void PrepareProcess(char** argv, const ProcessOptions& options) {
  if (std::getenv(kReexecGuard) != nullptr) return;
  bool changed = false;
  if (const char* choice = BlasCoreChoice(); choice != nullptr) {
    std::fprintf(stderr,
                 "runtime: OpenBLAS did not recognise this CPU and chose %s kernels; restarting with "
                 "OPENBLAS_CORETYPE=%s (set OPENBLAS_CORETYPE to choose)\n",
                 openblas_get_corename(), choice);
    setenv("OPENBLAS_CORETYPE", choice, 1);
    changed = true;
  }
  const std::string tunables = Tunables();
  if (options.heap_huge_pages && TransparentHugePageMode() == "madvise" &&
      tunables.find(kHugetlbTunable) == std::string::npos) {
    const std::string value = (tunables.empty() ? "" : tunables + ":") + kHugetlbTunable + "=1";
    setenv("GLIBC_TUNABLES", value.c_str(), 1);
    changed = true;
  }
  if (!changed) return;
  std::fflush(stderr);
  setenv(kReexecGuard, "1", 1);
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "runtime: cannot restart (%s); continuing without the settings above\n", std::strerror(errno));
}

std::string HeapPagesStatus() {
  const std::string mode = TransparentHugePageMode();
  if (mode.empty()) return "heap on 4 KiB pages (this kernel has no transparent huge pages)";
  if (mode == "never") return "heap on 4 KiB pages (transparent huge pages: never)";
  if (mode == "always") return "heap on transparent huge pages (the kernel's mode: always)";
  const std::string tunables = Tunables();
  if (tunables.find(std::string(kHugetlbTunable) + "=1") != std::string::npos) {
    return std::string("heap on transparent huge pages (GLIBC_TUNABLES ") + kHugetlbTunable + "=1)";
  }
  return std::string("heap on 4 KiB pages (GLIBC_TUNABLES does not set ") + kHugetlbTunable + "=1)";
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
